//! `mreg export --oci` and `mreg push-oci`: a version as a ModelPack OCI artifact.

use std::path::PathBuf;

use anyhow::Result;

use super::{Ctx, output};
use crate::ops::export::{self, Exported};

/// Write a version as an OCI artifact (CNCF ModelPack) into an OCI image layout
///
/// The artifact is an OCI image manifest of artifact type
/// application/vnd.cncf.model.manifest.v1+json: one uncompressed layer per file (a
/// link to a file becomes its target's content) with its path in the
/// `org.cncf.model.filepath` annotation, and a model config filled from the records
/// (name, version, commit, created, description, license, format). The version's
/// metrics and tree go into manifest annotations. The same version gives the same
/// digests on every export. DIR may hold several tags: shared blobs are written once.
/// Tools such as skopeo, oras and modctl read it; a blob already in DIR is kept only
/// when its content has its digest (it is read to know).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg export churn@production --oci ./churn-oci
  mreg export churn@4 --oci ./churn-oci --tag v4
  skopeo inspect --raw oci:./churn-oci:4
  skopeo copy oci:./churn-oci:4 docker://registry.example.com/ml/churn:4

Exit codes: 0 written, 1 error (DIR is not empty and holds no OCI layout), 2 usage.")]
pub struct ExportArgs {
    /// The version: NAME@3, NAME@production, NAME@latest
    #[arg(value_name = "REF")]
    reference: String,
    /// The OCI image layout folder to write into (created, or an earlier export's)
    #[arg(long, value_name = "DIR")]
    oci: PathBuf,
    /// The tag the version gets in the layout [default: its version number]
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
}

/// Send a version to an OCI registry as a ModelPack artifact
///
/// Sends the artifact `mreg export --oci` writes to a registry over the OCI
/// distribution API: only the blobs the repository lacks are sent, each streamed from
/// the registry's verified copy; the manifest goes last, so the tag never names an
/// artifact whose blobs are not all there. Credentials come from MREG_OCI_USERNAME and
/// MREG_OCI_PASSWORD (Basic, or traded for a Bearer token as the registry asks), sent
/// to the registry's own origin only; without them the push is anonymous. A registry
/// silent for MREG_OCI_TIMEOUT seconds (default 120) ends the push with exit 1.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg push-oci churn@production registry.example.com/ml/churn:prod
  mreg push-oci churn@4 localhost:5000/churn --plain-http      # tag 4
  skopeo inspect --raw docker://registry.example.com/ml/churn:prod

Exit codes: 0 sent, 1 error (unreachable, refused, credentials asked for), 2 usage.")]
pub struct PushOciArgs {
    /// The version: NAME@3, NAME@production, NAME@latest
    #[arg(value_name = "REF")]
    reference: String,
    /// Where to: HOST[:PORT]/REPOSITORY[:TAG] [default tag: the version number]
    #[arg(value_name = "DEST")]
    destination: String,
    /// Speak HTTP instead of HTTPS (a registry on localhost without TLS)
    #[arg(long)]
    plain_http: bool,
}

/// Runs `mreg export`.
pub fn run_export(ctx: &Ctx, args: &ExportArgs) -> Result<()> {
    let reg = ctx.registry()?;
    let done = export::to_layout(
        &reg,
        &args.reference,
        &args.oci,
        args.tag.as_deref(),
        &ctx.out.progress(),
    )?;
    tell(ctx, &done, "Wrote")
}

/// Runs `mreg push-oci`.
pub fn run_push(ctx: &Ctx, args: &PushOciArgs) -> Result<()> {
    let reg = ctx.registry()?;
    let done = export::to_registry(
        &reg,
        &args.reference,
        &args.destination,
        args.plain_http,
        &ctx.out.progress(),
    )?;
    tell(ctx, &done, "Sent")
}

/// Says what an export did.
fn tell(ctx: &Ctx, done: &Exported, verb: &str) -> Result<()> {
    ctx.out.emit(done, String::new)?;
    ctx.out.status(&format!(
        "{verb} {} as {}:{} ({}, {}; {} new, {}), manifest {}.",
        done.reference,
        done.to,
        done.tag,
        output::count(done.layers as u64, "layer"),
        output::bytes(done.bytes),
        output::count(done.blobs_moved, "blob"),
        output::bytes(done.bytes_moved),
        done.digest
    ));
    Ok(())
}
