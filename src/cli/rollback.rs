//! `mreg rollback`: move a stage back to the version it held before its latest move.

use anyhow::Result;

use super::{Ctx, args, verdict};
use crate::ops::rollback::{self, Request};

/// Move a stage back to the version it held before its latest move
///
/// Repeated rollbacks keep going back: after promoting 2, 3 and 4 to production, two
/// rollbacks leave production on 2. A rollback runs no gates (the version held the
/// stage before), may move to an older version, and is recorded with its reason like
/// any move; the stage's `replaced_to` policy applies as in a promotion.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg rollback churn production --reason 'p99 latency regression'
  mreg rollback churn production --dry-run
  mreg rollback churn staging --json | jq .to

Exit codes: 0 moved, 1 error (nothing to go back to), 2 usage error, 4 another command
held the lock for all of --wait.")]
pub struct RollbackArgs {
    /// The model
    #[arg(value_name = "NAME")]
    model: String,
    /// The stage to move back
    #[arg(value_name = "STAGE")]
    stage: String,
    /// Why; recorded, credentials in it masked (URL passwords, tokens, secret KEY=VALUE)
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Seconds to wait for another move of the same model to finish
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    wait: f64,
    /// Show where the stage would go, writing nothing
    #[arg(long)]
    dry_run: bool,
}

/// Runs `mreg rollback`.
pub fn run(ctx: &Ctx, args: &RollbackArgs) -> Result<()> {
    let reg = ctx.registry()?;
    args::warn_masked(ctx, "--reason", args.reason.as_deref());
    let request = Request {
        model: &args.model,
        stage: &args.stage,
        reason: args.reason.as_deref(),
        wait_s: args.wait,
        dry_run: args.dry_run,
    };
    let done = rollback::rollback(&reg, &request)?;
    let (outcome, report) = (&done.outcome, &done.report);
    let model = &outcome.model;
    let also = verdict::side_moves(model, &report.moves, args.dry_run);
    let line = if args.dry_run {
        format!(
            "Dry run: would move {} back from {model}@{} to {model}@{}{also}; nothing was written.",
            args.stage, report.from, report.to
        )
    } else {
        format!(
            "Rolled {} back from {model}@{} to {model}@{}{also}; history #{}.",
            args.stage,
            report.from,
            report.to,
            outcome.number.unwrap_or_default()
        )
    };
    ctx.out.emit(outcome, String::new)?;
    ctx.out.status(&line);
    Ok(())
}
