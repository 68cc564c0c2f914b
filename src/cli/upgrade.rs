//! `mreg upgrade`: raise a registry's layout format.

use anyhow::Result;

use super::Ctx;
use crate::ops::upgrade;

/// Raise the registry's layout format to this mreg's, so that pushes store large files in parts
///
/// A registry made by `mreg init` has the newest format already. One made by an older
/// mreg (format 1) keeps working as it is, storing each file whole, until it is
/// upgraded: then files over 16 MiB are stored in parts (a `.safetensors` file cut at
/// its tensors), so a version that changed a few tensors stores only those. Only the
/// `format` line of config.toml changes; nothing stored is rewritten. An mreg older
/// than this one refuses the registry afterwards, with a sentence saying to upgrade
/// it. A sync sends files whole to a remote of format 1, and a registry of format 1
/// stores whole what it fetches.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  mreg upgrade\n  mreg upgrade --registry /srv/registry\n  mreg upgrade --registry s3://ml-models/registry --json"
)]
pub struct UpgradeArgs {}

/// Runs `mreg upgrade`.
pub fn run(ctx: &Ctx, _args: &UpgradeArgs) -> Result<()> {
    let reg = ctx.registry()?;
    let outcome = upgrade::upgrade(&reg)?;
    let sentence = if outcome.changed {
        format!(
            "Raised {} from layout format {} to {}: large files pushed from now on are stored in parts.",
            outcome.registry, outcome.from, outcome.to
        )
    } else {
        format!(
            "{} is at layout format {} already; left as it is.",
            outcome.registry, outcome.from
        )
    };
    ctx.out.status(&sentence);
    if ctx.out.is_json() {
        ctx.out.emit(&outcome, String::new)?;
    }
    Ok(())
}
