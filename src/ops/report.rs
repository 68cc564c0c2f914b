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

/// The most versions a model report shows: the newest.
pub const VERSION_LIMIT: usize = 200;

/// The most stage moves a model report lists: the newest.
pub const MOVE_LIMIT: usize = 500;

/// Returns what a model's report draws: its versions (oldest first) with their runs, and
/// its stage moves (newest first).
pub struct ModelReport {
    /// The model.
    pub model: String,
    /// Its versions not removed, at most [`VERSION_LIMIT`] (the newest), each with its run
    /// when the registry holds it.
    pub versions: Vec<(crate::manifest::VersionRecord, Option<RunRecord>)>,
    /// Its stage moves and refusals, newest first, at most [`MOVE_LIMIT`].
    pub moves: Vec<crate::manifest::StageState>,
    /// Which way each metric improves.
    pub goals: BTreeMap<String, Goal>,
    /// Its own fields (`mreg model set`).
    pub info: crate::manifest::info::ModelInfo,
}

/// Gathers the report of `model`.
pub fn model(reg: &Registry, model: &str) -> Result<ModelReport> {
    let name = crate::names::ModelName::parse(model)?;
    crate::store::models::require_model(reg, &name)?;
    let config_goals = Goals::new(&reg.config()?.metrics);
    let mut records = crate::store::models::load_live_versions(reg, model)?;
    if records.len() > VERSION_LIMIT {
        records.drain(..records.len() - VERSION_LIMIT);
    }
    let mut goals = BTreeMap::new();
    let mut versions = Vec::with_capacity(records.len());
    for record in records {
        for key in record.metrics.keys() {
            goals.insert(key.clone(), config_goals.of(key));
        }
        let run = match &record.run {
            Some(id) if runs::record_path(reg, id).is_file() => runs::load_start(reg, id).ok(),
            _ => None,
        };
        versions.push((record, run));
    }
    let moves = crate::store::stages::chain(reg, model, Some(MOVE_LIMIT))?
        .into_iter()
        .map(|(_, state)| state)
        .collect();
    Ok(ModelReport {
        info: crate::store::info::current(reg, model)?,
        model: model.to_owned(),
        versions,
        moves,
        goals,
    })
}
