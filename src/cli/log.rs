//! `mreg log`: add metrics, params, tags, data inputs or parents to a run.

use anyhow::Result;
use serde::Serialize;

use super::inputs::{Additions, LineageArgs, MetricArgs, ParamArgs};
use super::{Ctx, output};
use crate::clock;
use crate::error::Failure;
use crate::manifest::{RunEvent, RunId};
use crate::store::runs;

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
  mreg log --run 3f9a0c1e --param lr=0.001 --tag team=growth")]
pub struct LogArgs {
    /// Run to log into: its id or a unique prefix [default: $MREG_RUN_ID]
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

#[derive(Serialize)]
struct Outcome {
    run: RunId,
    params: usize,
    metrics: usize,
    points: usize,
    tags: usize,
    data: usize,
    parents: usize,
}

/// Runs `mreg log`.
pub fn run(ctx: &Ctx, args: &LogArgs) -> Result<()> {
    let reg = ctx.registry()?;
    let id = target_run(&reg, args.run.as_deref())?;
    let time = clock::format_time_ms(clock::now()?);
    if args.step.is_some() && args.metrics.metrics.is_empty() {
        return Err(
            Failure::usage("--step applies to --metric values, and none was given")
                .hint("write mreg log --metric loss=0.41 --step 3")
                .into(),
        );
    }
    let mut add = Additions::default();
    args.params.collect(&mut add)?;
    args.metrics.collect(ctx, args.step, &time, &mut add)?;
    args.lineage.collect(ctx, &reg, &mut add)?;
    if add.is_empty() {
        return Err(Failure::usage("nothing to log")
            .hint("give --metric KEY=NUMBER, --metrics-file, --param, --params-file, --tag, --data or --parent")
            .into());
    }
    let outcome = Outcome {
        run: id.clone(),
        params: add.params.len(),
        metrics: add.metrics.len(),
        points: add.points(),
        tags: add.tags.len(),
        data: add.data.len(),
        parents: add.parents.len(),
    };
    let mut event = RunEvent::new(id.clone(), time, clock::actor());
    add.apply_to_event(&reg, &mut event)?;
    runs::append(&reg, &event)?;
    let mut parts = Vec::new();
    for (n, noun) in [
        (outcome.metrics, "metric"),
        (outcome.points, "series point"),
        (outcome.params, "param"),
        (outcome.tags, "tag"),
        (outcome.data, "data input"),
        (outcome.parents, "parent"),
    ] {
        if n > 0 {
            parts.push(output::count(n as u64, noun));
        }
    }
    ctx.out
        .status(&format!("Logged {} to run {id}", parts.join(", ")));
    if ctx.out.is_json() {
        ctx.out.emit(&outcome, String::new)?;
    }
    Ok(())
}

/// Returns the run `--run` names, else the one `MREG_RUN_ID` names.
pub fn target_run(reg: &crate::store::Registry, flag: Option<&str>) -> Result<RunId> {
    if let Some(text) = flag {
        return runs::resolve(reg, text);
    }
    match std::env::var("MREG_RUN_ID") {
        Ok(text) if !text.is_empty() => runs::resolve(reg, &text).map_err(|err| {
            err.context(format!("MREG_RUN_ID={text} names no run of this registry"))
        }),
        _ => Err(Failure::usage("no run to log into")
            .hint("pass --run ID, or call mreg log from a command started by `mreg run`, which sets MREG_RUN_ID")
            .into()),
    }
}
