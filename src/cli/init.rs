//! `mreg init`: create a registry.

use std::path::PathBuf;

use anyhow::Result;

use super::Ctx;
use crate::ops::init;

/// Create a registry (.mreg) in a folder
///
/// Other commands find it by walking up from the current folder, like git. Without
/// DIR, the registry goes where --registry or MREG_REGISTRY says, else in the current
/// folder. Running init where a registry exists leaves it as it is.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  mreg init\n  mreg init /srv/registry && export MREG_REGISTRY=/srv/registry\n  mreg init s3://ml-models/registry"
)]
pub struct InitArgs {
    /// Folder (or s3://BUCKET/PREFIX) to create the registry in [default: --registry,
    /// else the current folder]
    dir: Option<PathBuf>,
}

/// Runs `mreg init`.
pub fn run(ctx: &Ctx, args: &InitArgs) -> Result<()> {
    let outcome = init::init(args.dir.as_deref(), ctx.registry_spec())?;
    let (path, place) = (&outcome.path, if outcome.bucket { "at" } else { "in" });
    if outcome.created {
        ctx.out
            .status(&format!("Created an empty mreg registry {place} {path}."));
    } else {
        ctx.out.status(&format!(
            "A registry already exists {place} {path}; left as it is."
        ));
    }
    if ctx.out.is_json() {
        ctx.out.emit(&outcome, String::new)?;
    }
    Ok(())
}
