//! Signing versions and verifying signatures: OMS bundles made from a version's tree
//! (no byte of the weights read once their SHA-256 digests are known), checked against
//! a version or a pulled folder, and chosen for a pull to write beside its files.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::Failure;
use crate::id::{ObjectId, TreeId};
use crate::manifest::VersionRecord;
use crate::refspec::ModelRef;
use crate::sign::keys::{PrivateKey, PublicKey};
use crate::sign::oms::{self, Algorithm, Bundle, Manifest, SIGNATURE_FILE};
use crate::store::keys::Signed as Record;
use crate::store::{Progress, Registry, files, models, signatures};

use super::digested::{self, DigestedFile, VersionFiles};

/// A trusted signer: a name for people and the public key.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The name given to the key (`--signers`), or its file's name (`--key`).
    pub name: String,
    /// The key.
    pub key: PublicKey,
}

/// What `mreg sign` did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Signed {
    /// The model.
    pub model: String,
    /// The version.
    pub version: u64,
    /// Its tree.
    pub tree: TreeId,
    /// The signing key's hint (SHA-256 of its PEM), if the bundle gives one.
    pub key: Option<String>,
    /// The signature's name in the registry.
    pub signature: String,
    /// Whether it was new (signing the same version with the same key again stores
    /// nothing new).
    pub new: bool,
    /// Files the signature lists.
    pub files: usize,
    /// Bytes read to compute digests not known before.
    pub digested_bytes: u64,
    /// Whether the signature was made elsewhere (`--bundle`): stored, its signer not
    /// judged until `mreg verify`.
    pub imported: bool,
    /// Files of the version the signature leaves out (its `ignore_paths`).
    pub uncovered: Vec<String>,
}

/// Returns the files of a version with their digests, as a signature lists them
/// ([`digested::version_files`]); a top-level [`SIGNATURE_FILE`] is refused: every
/// verifier skips that name.
fn version_files(
    reg: &Registry,
    record: &VersionRecord,
    progress: &dyn Progress,
) -> Result<VersionFiles> {
    digested::version_files(reg, record, Some(SIGNATURE_FILE), None, progress)
}

/// Signs the version `reference` names with the key at `key`, or stores the bundle at
/// `bundle` (a signature made elsewhere, by the stock tool) once it is checked to list
/// exactly the version's files.
pub fn sign(
    reg: &Registry,
    reference: &str,
    key: Option<&Path>,
    bundle: Option<&Path>,
    progress: &dyn Progress,
) -> Result<Signed> {
    let record = models::resolve(reg, &ModelRef::parse(reference)?)?;
    let VersionFiles {
        files,
        digested: digested_bytes,
        links,
    } = version_files(reg, &record, progress)?;
    let (bytes, hint, listed, uncovered) = match (key, bundle) {
        (Some(key), None) => {
            let key = PrivateKey::read(key).map_err(|e| Failure::usage(format!("{e:#}")))?;
            let listed: Vec<(String, [u8; 32])> =
                files.iter().map(|f| (f.path.clone(), f.sha256)).collect();
            let payload = oms::statement(&record.model, &listed, links);
            let bytes = oms::bundle(&key, &payload);
            if bytes.len() as u64 > oms::BUNDLE_LIMIT {
                return Err(Failure::error(format!(
                    "the signature of {} would be {} bytes, more than the {} a signature may be: it lists {} files",
                    record.reference(),
                    bytes.len(),
                    oms::BUNDLE_LIMIT,
                    files.len()
                ))
                .hint("a version of that many files cannot be signed; pack small files into archives (one file each) and push again")
                .into());
            }
            (bytes, Some(key.public().hint()), files.len(), Vec::new())
        }
        (None, Some(path)) => {
            let bytes = files::read_user_file(path, oms::BUNDLE_LIMIT)?;
            let bundle = Bundle::parse(&bytes).map_err(|e| {
                Failure::error(format!(
                    "{} is not a model signature: {e:#}",
                    path.display()
                ))
            })?;
            let manifest = bundle.manifest().map_err(|e| {
                Failure::error(format!(
                    "{} is not a model signature: {e:#}",
                    path.display()
                ))
            })?;
            let problems = compare(&manifest, &files);
            if !problems.is_empty() {
                return Err(Failure::error(format!(
                    "{} is not a signature of {}: {}",
                    path.display(),
                    record.reference(),
                    problems.join("; ")
                ))
                .hint("sign the folder that was pushed as this version, or push the folder that was signed")
                .into());
            }
            let uncovered = uncovered(&manifest, &files);
            (bytes, bundle.hint, manifest.resources.len(), uncovered)
        }
        _ => unreachable!("the command asks for exactly one of --key and --bundle"),
    };
    let (signature, new) = signatures::add(
        reg,
        &record.model,
        Record::Signature,
        &record.tree.0.to_hex(),
        &bytes,
    )?;
    Ok(Signed {
        model: record.model.clone(),
        version: record.version,
        tree: record.tree,
        key: hint,
        signature,
        new,
        files: listed,
        digested_bytes,
        imported: bundle.is_some(),
        uncovered,
    })
}

/// Returns the files of `files` a signature leaves out by its `ignore_paths`.
fn uncovered(manifest: &Manifest, files: &[DigestedFile]) -> Vec<String> {
    files
        .iter()
        .filter(|f| manifest.ignores(&f.path))
        .map(|f| f.path.clone())
        .collect()
}

/// Returns what differs between what a signature lists and the files it should cover,
/// a sentence each (at most a few of each kind): files changed, missing or added.
/// Paths the signature ignores are left out on both sides.
pub fn compare(manifest: &Manifest, files: &[DigestedFile]) -> Vec<String> {
    let listed: BTreeMap<&str, &oms::Resource> = manifest
        .resources
        .iter()
        .filter(|r| !manifest.ignores(&r.name))
        .map(|r| (r.name.as_str(), r))
        .collect();
    let present: BTreeMap<&str, &DigestedFile> = files
        .iter()
        .filter(|f| !manifest.ignores(&f.path))
        .map(|f| (f.path.as_str(), f))
        .collect();
    let mut changed = Vec::new();
    let mut missing = Vec::new();
    for (name, resource) in &listed {
        match present.get(name) {
            None => missing.push(*name),
            Some(file) => {
                let same = match resource.algorithm {
                    Algorithm::Sha256 => resource.digest == file.sha256,
                    Algorithm::Blake3 => resource.digest == *file.id.as_bytes(),
                };
                if !same {
                    changed.push(*name);
                }
            }
        }
    }
    let added: Vec<&str> = present
        .keys()
        .filter(|p| !listed.contains_key(*p))
        .copied()
        .collect();
    let mut out = Vec::new();
    for ((one, many), names) in [
        (
            (
                "differs from what was signed",
                "differ from what was signed",
            ),
            changed,
        ),
        (("is listed but absent", "are listed but absent"), missing),
        (
            ("is not in the signature", "are not in the signature"),
            added,
        ),
    ] {
        if names.is_empty() {
            continue;
        }
        let what = if names.len() == 1 { one } else { many };
        let shown: Vec<&str> = names.iter().take(5).copied().collect();
        let more = names.len().saturating_sub(shown.len());
        let tail = if more > 0 {
            format!(" (and {more} more)")
        } else {
            String::new()
        };
        out.push(format!("{} {what}{tail}", shown.join(", ")));
    }
    out
}

/// One signature as a verification saw it.
#[derive(Debug, Serialize)]
pub struct Checked {
    /// Its name in the registry, or the file it was read from.
    pub signature: String,
    /// The key hint the bundle gives.
    pub key: Option<String>,
    /// The trusted signer whose key made it, if one did.
    pub signer: Option<String>,
    /// Whether it is a valid signature of these files by a trusted signer.
    pub valid: bool,
    /// Why not, when not.
    pub problem: Option<String>,
    /// Files it lists.
    pub files: usize,
    /// Files it leaves out by its `ignore_paths`, which it does not vouch for.
    pub ignored: Vec<String>,
}

/// What `mreg verify` found, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Verified {
    /// `NAME@N`, or the folder checked.
    pub subject: String,
    /// The tree, for a version.
    pub tree: Option<TreeId>,
    /// Every signature looked at.
    pub signatures: Vec<Checked>,
    /// Whether at least one is valid.
    pub verified: bool,
}

impl Checked {
    /// Returns a signature not (yet) found valid, with why when known.
    fn refused(signature: String, problem: Option<String>) -> Checked {
        Checked {
            signature,
            key: None,
            signer: None,
            valid: false,
            problem,
            files: 0,
            ignored: Vec::new(),
        }
    }
}

/// Checks one bundle against trusted signers and the files it should cover.
fn check(name: String, bytes: &[u8], signers: &[Signer], files: &[DigestedFile]) -> Checked {
    let mut checked = Checked::refused(name, None);
    let bundle = match Bundle::parse(bytes) {
        Ok(bundle) => bundle,
        Err(err) => {
            checked.problem = Some(format!("it is not a model signature: {err:#}"));
            return checked;
        }
    };
    checked.key.clone_from(&bundle.hint);
    checked.signer = signers
        .iter()
        .find(|s| bundle.signed_by(&s.key))
        .map(|s| s.name.clone());
    let manifest = match bundle.manifest() {
        Ok(manifest) => manifest,
        Err(err) => {
            checked.problem = Some(format!("its statement is refused: {err:#}"));
            return checked;
        }
    };
    checked.files = manifest.resources.len();
    checked.ignored = uncovered(&manifest, files);
    if checked.signer.is_none() {
        checked.problem = Some("it was not made by a trusted key".to_owned());
        return checked;
    }
    let problems = compare(&manifest, files);
    if problems.is_empty() {
        checked.valid = true;
    } else {
        checked.problem = Some(problems.join("; "));
    }
    checked
}

/// Verifies every signature of the version `reference` names against `signers`.
pub fn verify_version(
    reg: &Registry,
    reference: &str,
    signers: &[Signer],
    progress: &dyn Progress,
) -> Result<Verified> {
    let record = models::resolve(reg, &ModelRef::parse(reference)?)?;
    let names = signatures::list(
        reg,
        &record.model,
        Record::Signature,
        &record.tree.0.to_hex(),
    )?;
    if names.is_empty() {
        return Err(Failure::error(format!("{} has no signature", record.reference()))
            .hint(format!(
                "sign it: `mreg sign {} --key KEY.pem`; a sync brings the signatures a remote holds",
                record.reference()
            ))
            .into());
    }
    let files = version_files(reg, &record, progress)?.files;
    let mut checked = Vec::with_capacity(names.len());
    for name in names {
        match signatures::read(
            reg,
            &record.model,
            Record::Signature,
            &record.tree.0.to_hex(),
            &name,
        ) {
            Ok(bytes) => checked.push(check(name, &bytes, signers, &files)),
            Err(err) => checked.push(Checked::refused(name, Some(format!("{err:#}")))),
        }
    }
    let verified = checked.iter().any(|c| c.valid);
    Ok(Verified {
        subject: record.reference(),
        tree: Some(record.tree),
        signatures: checked,
        verified,
    })
}

/// Verifies the signature at `signature` (default: `DIR/model.sig`) of the folder
/// `dir` against `signers`, hashing every file of the folder (links and special files
/// are refused, as the stock verifier refuses them).
pub fn verify_dir(
    dir: &Path,
    signature: Option<&Path>,
    signers: &[Signer],
    progress: &dyn Progress,
) -> Result<Verified> {
    let sig_path = signature.map_or_else(|| dir.join(SIGNATURE_FILE), Path::to_path_buf);
    let bytes = files::read_user_file(&sig_path, oms::BUNDLE_LIMIT).map_err(|e| {
        Failure::error(format!("{e:#}")).hint(
            "pull the version with `--signature` to write its signature beside its files, or name the file with --signature",
        )
    })?;
    // The signature file itself, when it is inside the folder, is no file of the
    // model: the stock verifier leaves it out too.
    let skip = sig_path.canonicalize().ok().and_then(|sig| {
        let dir = dir.canonicalize().ok()?;
        Some(sig.strip_prefix(dir).ok()?.to_path_buf())
    });
    // Links are followed to the files they stand for when the signature was made so
    // (`allow_symlinks`), as the stock verifier is told to with --allow_symlinks.
    let follow = Bundle::parse(&bytes)
        .and_then(|b| b.manifest())
        .is_ok_and(|m| m.allow_symlinks);
    let files = folder_files(dir, skip.as_deref(), follow, progress)?;
    let name = sig_path.display().to_string();
    let checked = check(name, &bytes, signers, &files);
    let verified = checked.valid;
    Ok(Verified {
        subject: dir.display().to_string(),
        tree: None,
        signatures: vec![checked],
        verified,
    })
}

/// Returns every regular file below `dir` with its SHA-256 and BLAKE3.
fn folder_files(
    dir: &Path,
    skip: Option<&Path>,
    follow: bool,
    progress: &dyn Progress,
) -> Result<Vec<DigestedFile>> {
    let mut paths = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if entry.depth() == 0 {
            // The folder itself (a link to one is followed, as the user named it).
            continue;
        }
        if skip.is_some_and(|s| entry.path().strip_prefix(dir).is_ok_and(|rel| rel == s)) {
            continue;
        }
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .expect("walkdir stays below its root")
            .to_str()
            .with_context(|| format!("{} is not a UTF-8 path", entry.path().display()))?
            .to_owned();
        let len = if kind.is_file() {
            entry.metadata()?.len()
        } else {
            match std::fs::metadata(entry.path()) {
                // A link to a file, listed with its target's content.
                Ok(meta) if follow && kind.is_symlink() && meta.is_file() => meta.len(),
                // A link to a folder: not gone into, as the stock verifier does not.
                Ok(meta) if follow && kind.is_symlink() && meta.is_dir() => continue,
                _ => bail!(
                    "{} is not a regular file ({}); the signature covers regular files{}",
                    entry.path().display(),
                    if kind.is_symlink() {
                        "a link"
                    } else {
                        "a special file"
                    },
                    if follow {
                        " and links to them"
                    } else {
                        " only"
                    }
                ),
            }
        };
        paths.push((rel, entry.path().to_path_buf(), len));
    }
    progress.start("hashing", paths.iter().map(|(_, _, n)| n).sum());
    let out = paths
        .into_par_iter()
        .map(|(rel, path, _)| -> Result<DigestedFile> {
            let mut file = std::fs::File::open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            let meta = file
                .metadata()
                .with_context(|| format!("reading {}", path.display()))?;
            let mut sha = Sha256::new();
            let mut blake = blake3::Hasher::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = std::io::Read::read(&mut file, &mut buf)
                    .with_context(|| format!("reading {}", path.display()))?;
                if n == 0 {
                    break;
                }
                sha.update(&buf[..n]);
                blake.update(&buf[..n]);
                progress.advance(n as u64);
            }
            Ok(DigestedFile {
                path: rel,
                id: ObjectId::from_hasher(&blake),
                sha256: sha.finalize().into(),
                size: meta.len(),
                exec: std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0,
            })
        })
        .collect();
    progress.finish();
    out
}

/// Returns the signature a pull writes beside a version's files: the one made by the
/// key whose hint starts with `which`, or the only one when `which` is empty. It is
/// checked to list exactly the version's files first.
pub fn for_pull(
    reg: &Registry,
    record: &VersionRecord,
    which: &str,
    progress: &dyn Progress,
) -> Result<Vec<u8>> {
    let names = signatures::list(
        reg,
        &record.model,
        Record::Signature,
        &record.tree.0.to_hex(),
    )?;
    let mut candidates = Vec::new();
    for name in names {
        let bytes = signatures::read(
            reg,
            &record.model,
            Record::Signature,
            &record.tree.0.to_hex(),
            &name,
        )?;
        let hint = Bundle::parse(&bytes)
            .ok()
            .and_then(|b| b.hint)
            .unwrap_or_default();
        if hint.starts_with(which) || name.starts_with(which) {
            candidates.push((name.clone(), bytes));
        }
    }
    let (_, bytes) = match candidates.len() {
        0 if which.is_empty() => {
            return Err(Failure::error(format!(
                "{} has no signature to write",
                record.reference()
            ))
            .hint(format!(
                "sign it first: `mreg sign {} --key KEY.pem`",
                record.reference()
            ))
            .into());
        }
        0 => {
            return Err(Failure::usage(format!(
                "{} has no signature by a key whose hint starts with {which}",
                record.reference()
            ))
            .hint(format!(
                "`mreg verify {} --key PUB.pem` lists its signatures",
                record.reference()
            ))
            .into());
        }
        1 => candidates.remove(0),
        _ => {
            let names: Vec<String> = candidates.iter().map(|(n, _)| n[..16].to_owned()).collect();
            return Err(Failure::usage(format!(
                    "{} has {} signatures; a pulled folder holds one: choose it by its id ({}) or its key's hint",
                    record.reference(),
                    candidates.len(),
                    names.join(", ")
                ))
                .hint(format!(
                    "`mreg verify {r} --key PUB.pem` lists them with their ids; then `mreg pull {r} --to DIR --signature {}`",
                    names[0],
                    r = record.reference(),
                ))
                .into());
        }
    };
    let files = version_files(reg, record, progress)?.files;
    let manifest = Bundle::parse(&bytes).and_then(|b| b.manifest())?;
    let problems = compare(&manifest, &files);
    if !problems.is_empty() {
        bail!(
            "the signature of {} in the registry does not match it ({}); `mreg fsck` names the damage",
            record.reference(),
            problems.join("; ")
        );
    }
    Ok(bytes)
}

/// Reads trusted signers: `--key` files (named by their short hints) and a signers
/// file (TOML: a `[signers]` table of NAME = PEM text).
pub fn read_signers(
    keys: &[std::path::PathBuf],
    signers_file: Option<&Path>,
) -> Result<Vec<Signer>> {
    let mut out = Vec::new();
    for path in keys {
        let key = PublicKey::read(path).map_err(|e| Failure::usage(format!("{e:#}")))?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        out.push(Signer { name, key });
    }
    if let Some(path) = signers_file {
        let bytes =
            files::read_user_file(path, 1 << 20).map_err(|e| Failure::usage(format!("{e:#}")))?;
        let text =
            String::from_utf8(bytes).with_context(|| format!("{} is not text", path.display()))?;
        out.extend(parse_signers(&text).map_err(|e| {
            Failure::usage(format!("{} is not a signers file: {e:#}", path.display())).hint(
                "a signers file is TOML: a [signers] table of NAME = \"\"\"PEM public key\"\"\"",
            )
        })?);
    }
    Ok(out)
}

/// Parses a signers table: `[signers]` with `NAME = "PEM"` entries.
pub fn parse_signers(text: &str) -> Result<Vec<Signer>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        signers: BTreeMap<String, String>,
    }
    let file: File = toml::from_str(text)?;
    file.signers
        .into_iter()
        .map(|(name, pem)| {
            let key = PublicKey::from_pem(&pem).with_context(|| format!("signer {name}"))?;
            Ok(Signer { name, key })
        })
        .collect()
}
