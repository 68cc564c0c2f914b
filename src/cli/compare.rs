//! `mreg compare A B C…`: params and metrics of many versions or runs in one table.

use anyhow::Result;

use super::{Ctx, output, report};
use crate::error::{EXIT_ERROR, EXIT_OK};
use crate::ops::diff;

/// Compare the params and metrics of versions or runs, a column each
///
/// Each side is a version (churn@3, churn@production) or a run id (or a unique prefix
/// of 4 or more hex digits). Rows are params, then metrics; only rows that differ are
/// shown unless --all. The best value of each metric is marked with '*' (and in
/// color on a terminal). `mreg runs --where … --compare` compares the runs a query
/// finds.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg compare churn@production churn@staging churn@latest
  mreg compare 3f9a0c1e 7b2d4e6f 0c55aa12 --all
  mreg compare churn@3 churn@4 --md >> \"$GITHUB_STEP_SUMMARY\"
  mreg compare churn@3 churn@4 --json | jq '.rows[] | select(.section == \"metrics\")'
  mreg runs --experiment churn --where 'acc > 0.8' --limit 5 --compare

Metrics whose name has a word like loss, error, latency or ms are best when lowest,
all others when highest; [metrics] minimize/maximize in config.toml overrides that.")]
pub struct CompareArgs {
    /// Two or more versions (NAME@N, NAME@STAGE) or run ids
    #[arg(value_name = "REF|RUN", num_args = 2.., required = true)]
    sides: Vec<String>,
    /// Show rows that are the same on every side too
    #[arg(long)]
    all: bool,
    /// Print Markdown, for pull-request comments and CI step summaries
    #[arg(long)]
    md: bool,
    /// Exit 1 when any row differs (and 0 when none does)
    #[arg(long)]
    exit_code: bool,
}

/// Runs `mreg compare`.
pub fn run(ctx: &Ctx, args: &CompareArgs) -> Result<u8> {
    report::refuse_md_with_json(ctx, args.md)?;
    let reg = ctx.registry()?;
    let sides = diff::sides(&reg, &args.sides)?;
    let compared = diff::compare(&reg, &sides, args.all)?;
    let printed = report::compare::print(ctx, &reg, &compared, &sides, args.all, args.md);
    output::after_print(printed, || {
        Ok(if args.exit_code && compared.differs {
            EXIT_ERROR
        } else {
            EXIT_OK
        })
    })
}
