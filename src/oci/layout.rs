//! Writing an artifact as an OCI image layout: `oci-layout`, `index.json` naming each
//! manifest by its tag, and `blobs/sha256/HEX`. A folder may hold several versions
//! (one tag each): blobs they share are written once, and exporting a tag again
//! replaces its entry in the index. Each blob is written to a temp file and renamed
//! into place ([`materialize::write_blobs`]), and the index last, so a reader of the layout never meets a manifest
//! whose blobs are not all there.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::{Artifact, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, REF_NAME};
use crate::error::Failure;
use crate::store::{Progress, Registry, atomic, materialize};

/// The largest `index.json` read back: a layout of some hundred thousand tags.
const INDEX_LIMIT: u64 = 64 << 20;

/// What writing a layout did.
#[derive(Debug, Default)]
pub struct Written {
    /// Blobs written (the others were there).
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Writes `artifact` into the layout at `dir` under `tag`, creating the folder when it
/// does not exist; a folder that is not empty and holds no layout is refused.
pub fn write(
    reg: &Registry,
    artifact: &Artifact,
    dir: &Path,
    tag: &str,
    progress: &dyn Progress,
) -> Result<Written> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // One export at a time into a layout: concurrent ones each add their tag, none lost.
    let held = fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("locking {}", dir.display()))?;
    let mut index = open(dir)?;
    // The layout marker first: a folder an interrupted export left is still a layout.
    atomic::replace(
        dir,
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let blobs = dir.join("blobs").join("sha256");
    let layers: Vec<(crate::id::ObjectId, u64, String)> = artifact
        .layers
        .iter()
        .map(|l| {
            (
                l.id,
                l.size,
                l.digest.trim_start_matches("sha256:").to_owned(),
            )
        })
        .collect();
    let (count, bytes) = materialize::write_blobs(reg, &blobs, &layers, progress)?;
    let mut written = Written {
        blobs: count,
        bytes,
    };
    for bytes in [&artifact.config, &artifact.manifest] {
        let digest = super::digest_of(bytes);
        let hex = digest.trim_start_matches("sha256:");
        if !materialize::holds_blob(&blobs.join(hex), bytes.len() as u64, hex) {
            let path = blobs.join(hex);
            atomic::replace(&blobs, &path, bytes)?;
            written.blobs += 1;
            written.bytes += bytes.len() as u64;
        }
    }
    let entry = json!({
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": super::ARTIFACT_TYPE,
        "digest": artifact.manifest_digest(),
        "size": artifact.manifest.len(),
        "annotations": { REF_NAME: tag },
    });
    index.retain(|m| m["annotations"][REF_NAME].as_str() != Some(tag));
    index.push(entry);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": index,
    });
    atomic::replace(
        dir,
        &dir.join("index.json"),
        &serde_json::to_vec_pretty(&index).expect("an index serializes"),
    )?;
    Ok(written)
}

/// Returns the manifests the layout at `dir` (a folder) names already (empty for an
/// empty folder), refusing a folder that holds other things, or a layout whose index does
/// not read.
fn open(dir: &Path) -> Result<Vec<Value>> {
    let mut entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    if entries.next().is_none() {
        return Ok(Vec::new());
    }
    if let Some(bytes) = crate::store::files::read_cache(&dir.join("oci-layout"), 4096) {
        let version = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["imageLayoutVersion"].as_str().map(str::to_owned));
        if version.as_deref() != Some("1.0.0") {
            return Err(Failure::error(format!(
                "{} is an OCI image layout of version {}, not 1.0.0, which mreg writes",
                dir.display(),
                version.as_deref().unwrap_or("(unreadable)")
            ))
            .hint("export into a new folder")
            .into());
        }
    }
    if !dir.join("oci-layout").is_file() {
        return Err(Failure::error(format!(
            "{} is not empty and is no OCI image layout (it has no oci-layout file)",
            dir.display()
        ))
        .hint("give a new or empty folder, or one an earlier export wrote")
        .into());
    }
    let path = dir.join("index.json");
    if fs::symlink_metadata(&path).is_err() {
        // Written last: an export interrupted before it left blobs and no index.
        return Ok(Vec::new());
    }
    let bytes = crate::store::files::read_cache(&path, INDEX_LIMIT).ok_or_else(|| {
        Failure::error(format!(
            "{} is an OCI image layout whose index.json cannot be read (missing, not a regular file, or over {} MiB)",
            dir.display(),
            INDEX_LIMIT >> 20
        ))
    })?;
    let index: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Failure::error(format!("{} is not an OCI image index: {e}", path.display()))
    })?;
    match index.get("manifests") {
        Some(Value::Array(manifests)) => Ok(manifests.clone()),
        _ => Err(Failure::error(format!(
            "{} is not an OCI image index: it has no list of manifests",
            path.display()
        ))
        .into()),
    }
}
