//! `mreg rm`: remove versions from listings, references and pulls, recorded in history;
//! and runs from listings and comparisons.

use anyhow::Result;

use super::{Ctx, args, removal};
use crate::ops::rm::{self, Request};

/// Remove model versions or runs: they no longer list, resolve or pull
///
/// Each model's removal is one entry in its history (who, when, why), and each removed
/// version keeps its record with a removal record beside it: `mreg show churn@3` says
/// it was removed, when and by whom, its number is never given again, and a sync
/// carries the removal to other registries instead of bringing the version back.
/// Nothing is deleted yet: `mreg gc` then frees the files no surviving version, run or
/// stage holds.
///
/// A version a stage holds is refused, unless --force --reason TEXT empties that stage
/// in the same recorded move.
///
/// The runs the versions came from stay, as evidence, unless --runs; a run is also
/// removed by naming its id. A removed run no longer lists in `mreg runs`, compares or
/// takes events, and gc frees its stored series and data. A run a surviving version
/// came from is kept: named, it is refused.
///
/// --policy removes what the [retention] policy of config.toml does not keep (the
/// newest N, those pushed within a time, those a stage held in the last K moves; what
/// a stage holds is always kept), recording the policy as the reason.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg rm churn@3
  mreg rm churn@3 churn@4 fraud@2 --reason 'trained on leaked labels'
  mreg rm --model churn-experiment --reason 'abandoned'
  mreg rm churn@production --force --reason 'serving a model trained on bad data'
  mreg rm churn@3 --dry-run
  mreg rm churn@3 --json | jq .removed
  mreg rm churn@3 --runs --reason 'sweep abandoned'
  mreg rm 3f9a0c1e 7b21d04e
  mreg rm --policy --dry-run
  mreg rm --policy --model churn-nightly
  mreg rm churn@3 && mreg gc

Exit codes: 0 removed (or already removed), 1 error (a stage holds a version, a
surviving version came from a run named, or a reference names nothing: nothing is
removed), 2 usage error, 4 another command held the model's lock for all of --wait.")]
pub struct RmArgs {
    /// The versions to remove (NAME@N, NAME@STAGE, NAME@latest, NAME@TREE-PREFIX) and
    /// runs (an id or a unique prefix of 4 or more hex digits)
    #[arg(value_name = "REF|RUN")]
    refs: Vec<String>,
    /// Also remove the runs the versions came from, unless another surviving version
    /// came from one
    #[arg(long)]
    runs: bool,
    /// Remove every version of this model (with --policy: apply it to this model only)
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// Remove the versions the [retention] policy of config.toml does not keep
    #[arg(long, conflicts_with = "force")]
    policy: bool,
    /// Empty the stages that hold a version being removed; needs --reason
    #[arg(long)]
    force: bool,
    /// Why; recorded, credentials in it masked (URL passwords, tokens, secret KEY=VALUE)
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Seconds to wait for another move of the same model to finish
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    wait: f64,
    /// Show what would be removed, writing nothing
    #[arg(long)]
    dry_run: bool,
}

/// Runs `mreg rm`.
pub fn run(ctx: &Ctx, args: &RmArgs) -> Result<()> {
    let reg = ctx.registry()?;
    args::warn_masked(ctx, "--reason", args.reason.as_deref());
    let request = Request {
        refs: &args.refs,
        runs: args.runs,
        policy: args.policy,
        model: args.model.as_deref(),
        force: args.force,
        reason: args.reason.as_deref(),
        wait_s: args.wait,
        dry_run: args.dry_run,
    };
    let outcome = rm::rm(&reg, &request)?;
    ctx.out.emit(&outcome, String::new)?;
    for line in removal::status_lines(&outcome, args.dry_run, args.policy) {
        ctx.out.status(&line);
    }
    Ok(())
}
