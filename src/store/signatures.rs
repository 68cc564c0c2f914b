//! Signed records of a model's versions: signatures (`models/NAME/signatures/TREE/H.sig`,
//! OMS bundles of the tree's files), approvals (`models/NAME/approvals/TREE/H.sig`,
//! bundles approving the tree for a stage) and signed stage moves
//! (`models/NAME/moves/STATE/H.sig`), each named by the BLAKE3 of its bytes. A signature
//! or approval is of a tree, so it holds for every version of the model with that tree,
//! whatever number a sync gives it; `subject` is that tree's (or state's) id in hex.
//! Records are created once and never changed; reading one checks its bytes against its
//! name.

use anyhow::{Context, Result, bail};

use super::keys::{self, Signed};
use super::{Registry, atomic, files};

/// The most records of one kind of one subject a registry holds, and reads: a version is
/// signed and approved by a few keys.
pub const LIMIT: usize = 10_000;

/// The most records of one kind of one subject a sync brings in when the registry's
/// `[signers]` do not sign them. What a remote holds is untrusted: records planted there
/// in bulk stop at this many, far below [`LIMIT`], so they can neither hide a genuine
/// record from `verify` and `promote` nor keep anyone from signing here; records by the
/// registry's signers are always taken.
pub const UNTRUSTED_LIMIT: usize = 256;

/// Stores a signed record of `tree` (already checked by the caller); returns its name
/// and whether it is new (the same bytes stored before are the same record).
pub fn add(
    reg: &Registry,
    model: &str,
    kind: Signed,
    subject: &str,
    bytes: &[u8],
) -> Result<(String, bool)> {
    let name = keys::signature_name(bytes);
    let key = keys::signed(model, kind, subject, &name);
    if reg.path(&key).exists() {
        return Ok((name, false));
    }
    if list(reg, model, kind, subject)?.len() >= LIMIT {
        return Err(crate::error::Failure::error(format!(
            "this version already has {LIMIT} {}, the most a registry holds for one",
            kind.folder()
        ))
        .hint(format!(
            "`mreg fsck` names them; ones by keys nobody trusts can be deleted from {} by hand",
            reg.path(&keys::signed_dir(model, kind, subject)).display()
        ))
        .into());
    }
    let path = reg.make_parents(&key)?;
    let new = atomic::create_exclusive(&reg.tmp_dir(), &path, bytes)?;
    if new {
        reg.backend().publish_file(reg, &key, bytes)?;
    }
    Ok((name, new))
}

/// Returns the names of the records of one kind of `tree`, sorted; the first
/// [`LIMIT`] of them. Entries that are no record's name are left out.
pub fn list(reg: &Registry, model: &str, kind: Signed, subject: &str) -> Result<Vec<String>> {
    let dir = reg.path(&keys::signed_dir(model, kind, subject));
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(err).with_context(|| format!("listing {}", dir.display()));
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let name = file.strip_suffix(".sig")?;
            let key = keys::signed(model, kind, subject, name);
            matches!(keys::parse(&key), Some(keys::Key::Signed { .. })).then(|| name.to_owned())
        })
        .collect();
    names.sort();
    names.truncate(LIMIT);
    Ok(names)
}

/// Returns the bytes of one record of `tree`, checked against its name.
pub fn read(
    reg: &Registry,
    model: &str,
    kind: Signed,
    subject: &str,
    name: &str,
) -> Result<Vec<u8>> {
    read_key(reg, &keys::signed(model, kind, subject, name))
}

/// Returns the bytes of the signed record at `key`, checked against its name.
pub fn read_key(reg: &Registry, key: &str) -> Result<Vec<u8>> {
    let bytes =
        files::read_record(reg.root(), key)?.with_context(|| format!("{key} is missing"))?;
    let name = key
        .rsplit('/')
        .next()
        .and_then(|f| f.strip_suffix(".sig"))
        .unwrap_or_default();
    if keys::signature_name(&bytes) != name {
        bail!("{key} is damaged: its bytes are not the ones its name is the hash of");
    }
    Ok(bytes)
}
