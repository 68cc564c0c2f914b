//! `mreg log`: add metrics, params, tags, data inputs or parents to a run.

use anyhow::Result;

use super::args::{self, LineageArgs, MetricArgs, ParamArgs};
use super::{Ctx, output};
use crate::ops::log;

/// Add metrics, params or tags to a run
///
/// The run defaults to MREG_RUN_ID, which `mreg run` gives its command. Each call
/// writes one small immutable file, so calls from a training loop are cheap and may
/// run concurrently for one run without losing values. With --step, metrics are
/// points of a series; without, final values. A later value of a param, tag or final
/// metric replaces an earlier one.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg log --metric loss=0.41 --metric acc=0.83 --step 3
  mreg log --metrics-file eval.json                  # final values, nested keys dotted
  mreg log --metrics-file metrics.jsonl              # one {\"step\": N, …} record per line
  mreg log --run 3f9a0c1e --param lr=0.001 --tag team=growth
  mreg log --run last --metrics-file eval.json       # the last `mreg run` of this checkout")]
pub struct LogArgs {
    /// Run to log into: its id, a unique prefix, `last` (the newest finished run
    /// `mreg run` started from this work tree and commit) or `last:EXPERIMENT` [default: $MREG_RUN_ID]
    #[arg(long, value_name = "ID")]
    run: Option<String>,
    /// Step of the --metric values given: they become series points at this step
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    step: Option<i64>,
    #[command(flatten)]
    metrics: MetricArgs,
    #[command(flatten)]
    params: ParamArgs,
    #[command(flatten)]
    lineage: LineageArgs,
}

/// Runs `mreg log`.
pub fn run(ctx: &Ctx, args: &LogArgs) -> Result<()> {
    let reg = ctx.registry()?;
    let inputs = args::inputs(
        &args.params,
        Some(&args.metrics),
        Some(&args.lineage),
        args.step,
    );
    let logged = log::log(
        &reg,
        args.run.as_deref(),
        ctx.cwd(),
        &inputs,
        &ctx.out.progress(),
        &mut |w| ctx.out.warn(&w),
    )?;
    let mut parts = Vec::new();
    for (n, noun) in [
        (logged.metrics, "metric"),
        (logged.points, "series point"),
        (logged.params, "param"),
        (logged.tags, "tag"),
        (logged.data, "data input"),
        (logged.parents, "parent"),
    ] {
        if n > 0 {
            parts.push(output::count(n as u64, noun));
        }
    }
    ctx.out.status(&format!(
        "Logged {} to run {}",
        parts.join(", "),
        logged.run
    ));
    if ctx.out.is_json() {
        ctx.out.emit(&logged, String::new)?;
    }
    Ok(())
}
