//! What `mreg report` draws for runs: each run's record and every point of its series.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use crate::diff::goal::{Goal, Goals};
use crate::error::Failure;
use crate::id::RunId;
use crate::manifest::RunRecord;
use crate::manifest::series::Point;
use crate::store::{Registry, removals, runs};

/// The most runs one report overlays.
pub const RUN_LIMIT: usize = 20;

/// Returns the runs of a report, with their series and which way each metric improves.
pub struct RunsReport {
    /// Each run, in the order asked for, with its series' points by key.
    pub runs: Vec<(RunRecord, BTreeMap<String, Vec<Point>>)>,
    /// Which way each series' metric improves.
    pub goals: BTreeMap<String, Goal>,
}

/// Gathers the runs `ids` name (at most [`RUN_LIMIT`]), their series read within one
/// command's budget.
pub fn runs(reg: &Registry, ids: &[RunId]) -> Result<RunsReport> {
    if ids.is_empty() {
        return Err(Failure::usage("no run to report on")
            .hint("name runs (`mreg report 3f9a0c1e 7b2e…`) or select them with --where")
            .into());
    }
    if ids.len() > RUN_LIMIT {
        return Err(Failure::usage(format!(
            "{} runs are more than one report overlays ({RUN_LIMIT})",
            ids.len()
        ))
        .hint(format!("narrow the selection, or add --limit {RUN_LIMIT}"))
        .into());
    }
    let config_goals = Goals::new(&reg.config()?.metrics);
    let mut budget = runs::SeriesBudget::new();
    let mut out = Vec::with_capacity(ids.len());
    let mut goals = BTreeMap::new();
    for id in ids {
        removals::require_live_run(reg, id)?;
        let record = runs::load(reg, id)?;
        let mut series = BTreeMap::new();
        for (key, s) in &record.series {
            let points = runs::load_points(reg, &s.chunk, &mut budget)
                .with_context(|| format!("reading series {key:?} of run {id}"))?;
            goals.insert(key.clone(), config_goals.of(key));
            series.insert(key.clone(), points);
        }
        out.push((record, series));
    }
    Ok(RunsReport { runs: out, goals })
}
