//! Promoting a version to a stage: the request checked before anything is read, the
//! stage's policy and the gates evaluated, the move made compare-and-swap (see
//! [`crate::stage`]), and what happened returned as `--json` prints it.

use anyhow::Result;
use serde::Serialize;

use super::gate::{CheckRow, check_gate_keys, check_gate_stages, check_rows, parse_gates};
use crate::error::Failure;
use crate::lineage;
use crate::manifest::VersionRecord;
use crate::manifest::state::Move;
use crate::refspec::ModelRef;
use crate::stage::promote::{Expect, Promotion, Report, Verdict, promote as decide};
use crate::stage::{SourcedGate, Stamp, VersionFields};
use crate::store::{Registry, models};

/// What `mreg promote` is asked to do, as given.
pub struct Request<'a> {
    /// The version: `NAME@3`, `NAME@staging`, …
    pub reference: &'a str,
    /// The stage to move.
    pub stage: &'a str,
    /// Gates from the command line.
    pub gates: &'a [String],
    /// Whether failing gates and policy are overridden; needs `reason`.
    pub force: bool,
    /// Why; recorded with its credentials masked ([`lineage::mask_text`]).
    pub reason: Option<&'a str>,
    /// What the stage must hold when it moves: `3`, `churn@3`, `none`.
    pub expect: Option<&'a str>,
    /// Whether a version older than the holder may be promoted.
    pub allow_downgrade: bool,
    /// Seconds to wait for another move of the model to finish.
    pub wait_s: f64,
    /// Whether to decide only, writing nothing.
    pub dry_run: bool,
}

/// Returns what a promotion did, as `--json` prints it (and `push --stage` embeds it).
#[derive(Debug, Serialize)]
pub struct Outcome {
    model: String,
    version: u64,
    stage: String,
    /// `moved`, `unchanged`, `refused`, `would-move` or `would-refuse`.
    result: &'static str,
    from: Option<u64>,
    moves: Vec<MoveRow>,
    checks: Vec<CheckRow>,
    forced: bool,
    state: Option<String>,
    number: Option<u64>,
    retries: u32,
}

/// Returns one stage's move as `--json` prints it: `from` is `null` for an empty stage.
#[derive(Debug, Serialize)]
pub struct MoveRow {
    stage: String,
    from: Option<u64>,
    to: u64,
}

/// Returns the moves as `--json` rows.
pub fn move_rows(moves: &[Move]) -> Vec<MoveRow> {
    moves
        .iter()
        .map(|m| MoveRow {
            stage: m.stage.clone(),
            from: m.from,
            to: m.to,
        })
        .collect()
}

impl Outcome {
    /// Returns the outcome of `report`, a promotion of `model@version` to `stage`.
    pub fn of(model: &str, version: u64, stage: &str, report: &Report) -> Outcome {
        let result = match report.verdict {
            Verdict::Moved => "moved",
            Verdict::Unchanged => "unchanged",
            Verdict::Refused => "refused",
            Verdict::WouldMove => "would-move",
            Verdict::WouldRefuse => "would-refuse",
        };
        Outcome {
            model: model.to_owned(),
            version,
            stage: stage.to_owned(),
            result,
            from: report.from,
            moves: move_rows(&report.moves),
            checks: check_rows(&report.checks),
            forced: report.forced,
            state: report.state.as_ref().map(|(id, _)| id.to_string()),
            number: report.state.as_ref().map(|(_, n)| *n),
            retries: report.retries,
        }
    }
}

/// Returns what a promotion did: the JSON outcome, and the report it is made of.
pub struct Promoted {
    /// What `--json` prints.
    pub outcome: Outcome,
    /// The decision, its checks and the state written.
    pub report: Report,
    /// The model.
    pub model: String,
    /// The version promoted.
    pub version: u64,
    /// The stage.
    pub stage: String,
}

/// Parses `--expect`: `3`, `v3`, `NAME@3`, or `none` for an empty stage.
fn parse_expect(text: &str, model: &str) -> Result<Expect, Failure> {
    if matches!(text, "none" | "empty") {
        return Ok(Expect::Empty);
    }
    let number = match text.split_once('@') {
        Some((name, n)) if name == model => n,
        Some(_) => {
            return Err(Failure::usage(format!(
                "--expect {text} names another model than {model}"
            )));
        }
        None => text,
    };
    number
        .strip_prefix('v')
        .unwrap_or(number)
        .parse()
        .map(Expect::Version)
        .map_err(|_| {
            Failure::usage(format!("--expect {text:?} is not a version"))
                .hint("write the version number the stage must hold (3, v3, churn@3), or none")
        })
}

/// Runs a promotion: the request checked (stage, gates, wait, reference, `--expect`),
/// the candidate resolved, then decided and, unless a dry run, recorded.
pub fn promote(reg: &Registry, request: &Request) -> Result<Promoted> {
    let pending = Pending::check(reg, request.stage, request.gates, request.wait_s)?;
    let reference = ModelRef::parse(request.reference)?;
    let expect = request
        .expect
        .map(|e| parse_expect(e, reference.model.as_str()))
        .transpose()?;
    let candidate = models::resolve(reg, &reference)?;
    check_gate_keys(
        reg,
        &VersionFields::load(reg, candidate.clone())?,
        &pending.gates,
    )?;
    let config = reg.config()?;
    let signed = super::approve::policy_checks(
        reg,
        &config,
        &config.policy(&pending.stage),
        &candidate,
        &pending.stage,
        &crate::store::NoProgress,
    )?;
    if request.force {
        refuse_forced_signing(&signed, &candidate, &pending.stage)?;
    }
    let promotion = Promotion {
        candidate,
        stage: pending.stage,
        gates: pending.gates,
        force: request.force,
        reason: request.reason.map(lineage::mask_text),
        expect,
        allow_downgrade: request.allow_downgrade,
        dry_run: request.dry_run,
        signed,
    };
    let report = decide(reg, &config, &promotion, &pending.stamp)?;
    Ok(promoted(&promotion, report))
}

/// Refuses `--force` past a stage's signing rules: a missing signature or approval is
/// not a gate a person may skip on their own say, or one key could promote alone.
fn refuse_forced_signing(
    signed: &[crate::manifest::state::CheckRecord],
    candidate: &VersionRecord,
    stage: &str,
) -> Result<()> {
    let Some(failed) = super::approve::failing(signed) else {
        return Ok(());
    };
    Err(Failure::gate(format!(
        "{} was not promoted to {stage}: --force does not override the stage's signing rules ({failed})",
        candidate.reference(),
    ))
    .hint(format!(
        "sign and approve it (`mreg sign`, `mreg approve`), or change the policy of {stage} in config.toml"
    ))
    .into())
}

fn promoted(promotion: &Promotion, report: Report) -> Promoted {
    let record = &promotion.candidate;
    Promoted {
        outcome: Outcome::of(&record.model, record.version, &promotion.stage, &report),
        report,
        model: record.model.clone(),
        version: record.version,
        stage: promotion.stage.clone(),
    }
}

/// A promotion checked before anything is read or written: its stage, its gates and
/// its stamp. `mreg push --stage` checks one before it pushes.
pub struct Pending {
    stage: String,
    gates: Vec<SourcedGate>,
    stamp: Stamp,
}

impl Pending {
    /// Checks the stage and gates of a promotion to come, which waits up to `wait_s`
    /// seconds for another writer.
    pub fn check(reg: &Registry, stage: &str, gates: &[String], wait_s: f64) -> Result<Pending> {
        let config = reg.config()?;
        config.require_stage(stage)?;
        let gates = parse_gates(gates)?;
        check_gate_stages(&config, &gates)?;
        Ok(Pending {
            stage: stage.to_owned(),
            gates,
            stamp: Stamp::now(wait_s)?,
        })
    }

    /// Promotes the pushed version, through the stage's policy and the gates.
    pub fn promote(self, reg: &Registry, record: &VersionRecord) -> Result<Promoted> {
        check_gate_keys(reg, &VersionFields::load(reg, record.clone())?, &self.gates)?;
        let config = reg.config()?;
        let signed = super::approve::policy_checks(
            reg,
            &config,
            &config.policy(&self.stage),
            record,
            &self.stage,
            &crate::store::NoProgress,
        )?;
        let promotion = Promotion {
            candidate: record.clone(),
            stage: self.stage,
            gates: self.gates,
            force: false,
            reason: None,
            expect: None,
            allow_downgrade: false,
            dry_run: false,
            signed,
        };
        let report = decide(reg, &config, &promotion, &self.stamp)?;
        Ok(promoted(&promotion, report))
    }
}
