//! `mreg upgrade`: raise a registry's layout format.

use anyhow::Result;

use super::Ctx;
use crate::ops::upgrade;

/// Raise the registry's layout format to this mreg's (3): large files in parts, small ones in packs
///
/// A registry made by `mreg init` has the newest format already. One made by an older
/// mreg keeps working as it is until it is upgraded. From format 1 (every file stored
/// whole), files over 16 MiB are then stored in parts (a `.safetensors` file cut at
/// its tensors), so a version that changed a few tensors stores only those. From
/// format 1 or 2, the small objects a push adds go in packs, a few files rather than
/// one per file. Only the `format` line of config.toml changes; nothing stored is
/// rewritten. An mreg older than this one refuses the registry afterwards, with a
/// sentence saying to upgrade it. A sync sends a remote of an older format only what
/// that format holds.
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
            "Raised {} from layout format {} to {}: large files pushed from now on are stored in parts, small ones in packs.",
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
