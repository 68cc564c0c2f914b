//! Rolling a stage back to the version it held before its latest move.

use anyhow::Result;
use serde::Serialize;

use super::promote::{MoveRow, move_rows};
use crate::lineage;
use crate::names::ModelName;
use crate::stage::Stamp;
use crate::stage::rollback::{Report, rollback as decide};
use crate::store::{Registry, models};

/// What `mreg rollback` is asked to do, as given.
pub struct Request<'a> {
    /// The model.
    pub model: &'a str,
    /// The stage to move back.
    pub stage: &'a str,
    /// Why; recorded with its credentials masked ([`lineage::mask_text`]).
    pub reason: Option<&'a str>,
    /// Seconds to wait for another move of the model to finish.
    pub wait_s: f64,
    /// Whether to decide only, writing nothing.
    pub dry_run: bool,
}

/// Returns what a rollback did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The model.
    pub model: String,
    /// The stage.
    pub stage: String,
    /// `moved`, or `would-move` with --dry-run.
    pub result: &'static str,
    /// The version the stage held.
    pub from: u64,
    /// The version it holds now.
    pub to: u64,
    /// Every stage that moved.
    pub moves: Vec<MoveRow>,
    /// The state written.
    pub state: Option<String>,
    /// Its number in the history.
    pub number: Option<u64>,
    /// How many times another writer moved the stages first.
    pub retries: u32,
}

/// Returns what a rollback did: the JSON outcome, and the report it is made of.
pub struct RolledBack {
    /// What `--json` prints.
    pub outcome: Outcome,
    /// The decision and the state written.
    pub report: Report,
}

/// Moves a stage back to its previous holder, recording the reason.
pub fn rollback(reg: &Registry, request: &Request) -> Result<RolledBack> {
    let config = reg.config()?;
    let model = ModelName::parse(request.model)?;
    config.require_stage(request.stage)?;
    models::require_model(reg, &model)?;
    let stamp = Stamp::now(request.wait_s)?;
    let policy = config.policy(request.stage);
    if !request.dry_run && (!policy.require_signature.is_empty() || policy.approvals > 0) {
        // A rollback runs no gates, but a stage with signing rules takes no version
        // that does not meet them now, whoever held it before: see where it would go,
        // then check that version.
        let would = decide(
            reg,
            &config,
            model.as_str(),
            request.stage,
            None,
            true,
            &stamp,
        )?;
        let target = models::load_version(reg, model.as_str(), would.to)?;
        super::approve::refuse_unsigned(reg, &config, &target, request.stage, "rolled back to")?;
    }
    let report = decide(
        reg,
        &config,
        model.as_str(),
        request.stage,
        request.reason.map(lineage::mask_text).as_deref(),
        request.dry_run,
        &stamp,
    )?;
    let outcome = Outcome {
        model: model.to_string(),
        stage: request.stage.to_owned(),
        from: report.from,
        to: report.to,
        result: if request.dry_run {
            "would-move"
        } else {
            "moved"
        },
        moves: move_rows(&report.moves),
        state: report.state.as_ref().map(|(id, _)| id.to_string()),
        number: report.state.as_ref().map(|(_, n)| *n),
        retries: report.retries,
    };
    Ok(RolledBack { outcome, report })
}
