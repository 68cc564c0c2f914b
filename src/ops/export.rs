//! Exporting a version as a ModelPack OCI artifact: into an OCI image layout folder
//! (`mreg export --oci DIR`), or to an OCI registry (`mreg push-oci`).

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::error::Failure;
use crate::id::TreeId;
use crate::manifest::VersionRecord;
use crate::oci::{self, Artifact, Facts};
use crate::refspec::ModelRef;
use crate::store::{Progress, Registry, info, models, runs};

/// What an export did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Exported {
    /// `NAME@N`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The version's tree.
    pub tree: TreeId,
    /// Where it went: the layout folder, or `HOST/REPO`.
    pub to: String,
    /// The tag it has there.
    pub tag: String,
    /// The manifest's digest, `sha256:HEX`.
    pub digest: String,
    /// Layers (one per file).
    pub layers: usize,
    /// Bytes of the distinct layer blobs.
    pub bytes: u64,
    /// Blobs written or sent (the others were there).
    pub blobs_moved: u64,
    /// Their bytes.
    pub bytes_moved: u64,
}

/// A version ready to be exported: its record, artifact and tag.
pub struct Prepared {
    /// The version.
    pub record: VersionRecord,
    /// Its artifact.
    pub artifact: Artifact,
    /// The tag it gets.
    pub tag: String,
}

/// Resolves `reference`, fetches the objects the registry lacks, and builds its
/// artifact, tagged `tag` (default: the version number).
pub fn prepare(
    reg: &Registry,
    reference: &str,
    tag: Option<&str>,
    progress: &dyn Progress,
) -> Result<Prepared> {
    let record = models::resolve(reg, &ModelRef::parse(reference)?)?;
    let tag = tag.map_or_else(|| record.version.to_string(), str::to_owned);
    if !oci::valid_tag(&tag) {
        return Err(Failure::usage(format!("'{tag}' is not an OCI tag"))
            .hint("a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`")
            .into());
    }
    super::pull::fetch_missing(reg, record.tree, None, progress)?;
    let files = super::digested::version_files(reg, &record, None, None, progress)?.files;
    if files.is_empty() {
        return Err(Failure::error(format!(
            "{} holds no file, and an OCI model artifact needs at least one layer",
            record.reference()
        ))
        .into());
    }
    let artifact = Artifact::build(&facts(reg, &record)?, &files);
    Ok(Prepared {
        record,
        artifact,
        tag,
    })
}

/// Returns what the records say of `record` for its artifact.
fn facts(reg: &Registry, record: &VersionRecord) -> Result<Facts> {
    let run = match &record.run {
        Some(id) if runs::record_path(reg, id).is_file() => Some(runs::load(reg, id)?),
        _ => None,
    };
    let source = run.as_ref().and_then(|r| r.source.as_ref());
    let fields = info::current(reg, &record.model)?.fields;
    Ok(Facts {
        model: record.model.clone(),
        version: record.version,
        tree: record.tree.0.to_hex(),
        created: record.created.clone(),
        revision: source.and_then(|s| s.commit.clone()),
        source: source
            .and_then(|s| s.remote.clone())
            .filter(|r| r.starts_with("https://") || r.starts_with("http://")),
        description: fields.description,
        license: fields.license,
        metrics: record.metrics.clone(),
    })
}

/// Writes the version `reference` names into the OCI image layout at `dir`.
pub fn to_layout(
    reg: &Registry,
    reference: &str,
    dir: &Path,
    tag: Option<&str>,
    progress: &dyn Progress,
) -> Result<Exported> {
    let prepared = prepare(reg, reference, tag, progress)?;
    let written = oci::layout::write(reg, &prepared.artifact, dir, &prepared.tag, progress)?;
    Ok(outcome(
        &prepared,
        dir.display().to_string(),
        written.blobs,
        written.bytes,
    ))
}

/// Returns what an export of `prepared` to `to` did.
pub fn outcome(prepared: &Prepared, to: String, blobs_moved: u64, bytes_moved: u64) -> Exported {
    Exported {
        reference: prepared.record.reference(),
        tree: prepared.record.tree,
        to,
        tag: prepared.tag.clone(),
        digest: prepared.artifact.manifest_digest(),
        layers: prepared.artifact.layers.len(),
        bytes: prepared.artifact.blob_bytes(),
        blobs_moved,
        bytes_moved,
    }
}

/// Sends the version `reference` names to the OCI registry repository `to`
/// (`HOST[:PORT]/REPO[:TAG]`), sending only the blobs it lacks.
#[cfg(feature = "s3")]
pub fn to_registry(
    reg: &Registry,
    reference: &str,
    to: &str,
    plain_http: bool,
    progress: &dyn Progress,
) -> Result<Exported> {
    let destination = oci::distribution::Destination::parse(to)?;
    let prepared = prepare(reg, reference, destination.tag.as_deref(), progress)?;
    let sent = oci::distribution::push(
        reg,
        &prepared.artifact,
        &destination,
        &prepared.tag,
        plain_http,
        progress,
    )?;
    Ok(outcome(
        &prepared,
        format!("{}/{}", destination.host, destination.repository),
        sent.blobs,
        sent.bytes,
    ))
}

/// Refuses, in a build without the network client.
#[cfg(not(feature = "s3"))]
pub fn to_registry(
    _reg: &Registry,
    _reference: &str,
    to: &str,
    _plain_http: bool,
    _progress: &dyn Progress,
) -> Result<Exported> {
    Err(Failure::error(format!(
        "cannot send to {to}: this mreg was built without network support (the `s3` feature)"
    ))
    .hint("build mreg with its default features, or use `mreg export --oci DIR` and `skopeo copy`")
    .into())
}
