//! The signatures of a model's versions, as records: `models/NAME/signatures/TREE/H.sig`,
//! each an OMS bundle named by the BLAKE3 of its bytes. A signature is of a tree, so
//! it holds for every version of the model with that tree, whatever number a sync
//! gives it; a version has as many as it has signers. Records are created once and
//! never changed; reading one checks its bytes against its name.

use anyhow::{Context, Result, bail};

use super::{Registry, atomic, files, keys};
use crate::id::TreeId;

/// The most signatures of one tree listed: a version is signed by a few keys.
pub const PER_TREE_LIMIT: usize = 256;

/// Stores a signature of `tree` (already checked by the caller); returns its name and
/// whether it is new (the same bytes stored before are the same signature).
pub fn add(reg: &Registry, model: &str, tree: &TreeId, bytes: &[u8]) -> Result<(String, bool)> {
    let name = keys::signature_name(bytes);
    if list(reg, model, tree)?.len() >= PER_TREE_LIMIT {
        bail!("this version already has {PER_TREE_LIMIT} signatures, the most one keeps");
    }
    let key = keys::signature(model, tree, &name);
    let path = reg.make_parents(&key)?;
    let new = atomic::create_exclusive(&reg.tmp_dir(), &path, bytes)?;
    if new {
        reg.backend().publish_file(reg, &key, bytes)?;
    }
    Ok((name, new))
}

/// Returns the names of the signatures of `tree`, sorted; the first
/// [`PER_TREE_LIMIT`] of them. Entries that are no signature's name are left out.
pub fn list(reg: &Registry, model: &str, tree: &TreeId) -> Result<Vec<String>> {
    let dir = reg.path(&keys::signatures(model, tree));
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
            let key = keys::signature(model, tree, file.strip_suffix(".sig")?);
            matches!(keys::parse(&key), Some(keys::Key::Signature { .. }))
                .then(|| file.trim_end_matches(".sig").to_owned())
        })
        .collect();
    names.sort();
    names.truncate(PER_TREE_LIMIT);
    Ok(names)
}

/// Returns the bytes of one signature of `tree`, checked against its name.
pub fn read(reg: &Registry, model: &str, tree: &TreeId, name: &str) -> Result<Vec<u8>> {
    read_key(reg, &keys::signature(model, tree, name))
}

/// Returns the bytes of the signature at `key`, checked against its name.
pub fn read_key(reg: &Registry, key: &str) -> Result<Vec<u8>> {
    let bytes = files::read_record(reg.root(), key)?
        .with_context(|| format!("the signature {key} is missing"))?;
    let name = key
        .rsplit('/')
        .next()
        .and_then(|f| f.strip_suffix(".sig"))
        .unwrap_or_default();
    if keys::signature_name(&bytes) != name {
        bail!("the signature {key} is damaged: its bytes are not the ones its name is the hash of");
    }
    Ok(bytes)
}
