//! Logging into a run: metrics, series points, params, tags, data inputs and parents,
//! as one immutable event.

use anyhow::Result;
use serde::Serialize;

use super::inputs::{self, Inputs};
use super::record;
use crate::clock;
use crate::error::Failure;
use crate::id::RunId;
use crate::store::{Progress, Registry};

/// Returns what one `mreg log` added, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Logged {
    /// The run logged into.
    pub run: RunId,
    /// Params set.
    pub params: usize,
    /// Final metrics set.
    pub metrics: usize,
    /// Series points added.
    pub points: usize,
    /// Tags set.
    pub tags: usize,
    /// Data inputs added.
    pub data: usize,
    /// Parents added.
    pub parents: usize,
}

/// Logs `inputs` into the run `run` names (`last`: the newest of the work tree of `cwd`;
/// else `MREG_RUN_ID`'s); `warn` hears of
/// values of metrics files that are not numbers.
pub fn log(
    reg: &Registry,
    run: Option<&str>,
    cwd: &std::path::Path,
    inputs: &Inputs,
    progress: &dyn Progress,
    warn: &mut dyn FnMut(String),
) -> Result<Logged> {
    let id = record::target_run(reg, run, cwd)?;
    let time = clock::format_time_ms(clock::now()?);
    if inputs.step.is_some() && inputs.metrics.is_empty() {
        return Err(
            Failure::usage("--step applies to --metric values, and none was given")
                .hint("write mreg log --metric loss=0.41 --step 3")
                .into(),
        );
    }
    let _writing = reg.writing()?;
    let add = inputs::collect(reg, inputs, &time, progress, warn)?;
    if add.is_empty() {
        return Err(Failure::usage("nothing to log")
            .hint("give --metric KEY=NUMBER, --metrics-file, --param, --params-file, --tag, --data or --parent")
            .into());
    }
    let logged = Logged {
        run: id.clone(),
        params: add.params.len(),
        metrics: add.metrics.len(),
        points: add.points(),
        tags: add.tags.len(),
        data: add.data.len(),
        parents: add.parents.len(),
    };
    record::log(reg, &id, &time, add)?;
    Ok(logged)
}
