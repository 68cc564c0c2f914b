//! `mreg promote`: move a stage to a version when its gates and the stage's policy hold.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::gate::{CheckRow, check_gate_stages, check_rows, checks_table, failures, parse_gates};
use super::record::recorded_argv;
use super::{Ctx, output};
use crate::error::Failure;
use crate::manifest::state::Move;
use crate::refspec::ModelRef;
use crate::stage::Stamp;
use crate::stage::promote::{Expect, Promotion, Report, Verdict, promote};
use crate::store::models;

/// Move a stage to a model version, if its gates and the stage's policy hold
///
/// Every gate must hold: the stage's own gates from config.toml, then each --gate. A
/// gate is one comparison, KEY OP VALUE, where VALUE may be @STAGE (what the version in
/// that stage scored) with a tolerance: @production-0.005, @production*1.1. A missing
/// metric, NaN or an empty stage fails the gate. A refused promotion moves nothing and
/// is recorded, with the values that refused it; --force --reason TEXT overrides the
/// gates and the policy, and is recorded too. A promotion to production moves the
/// version production held to archived in the same step (the stage's `replaced_to`).
///
/// Two promotions at once never overwrite each other: when the stages moved since they
/// were read, the gates are evaluated again against the new holders and the promotion
/// retried; with --expect, the stage must still hold that version, or it fails (exit 4).
/// Promoting a version older than the stage holds needs `mreg rollback` or
/// --allow-downgrade, so a delayed job cannot move production backwards.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg promote churn@4 staging
  mreg promote churn@4 production --gate 'acc>0.85' --gate 'acc>=@production-0.005'
  mreg promote churn@staging production --gate 'latency_ms<=@production*1.1'
  mreg promote churn@4 production --expect 3 --json | jq -r .result
  mreg promote churn@4 production --force --reason 'hotfix for incident 42'
  mreg promote churn@4 production --dry-run

Exit codes: 0 moved (or already there), 1 error, 2 usage error, 3 a gate did not hold
(nothing moved; the refusal is recorded), 4 the stage moved under you (--expect) or
would move backwards, or another promotion held the lock for all of --wait.")]
pub struct PromoteArgs {
    /// The version to promote: NAME@3, NAME@latest, NAME@staging, NAME@<tree hash>
    #[arg(value_name = "REF")]
    reference: String,
    /// The stage to move: staging, production, archived, or one config.toml declares
    #[arg(value_name = "STAGE")]
    stage: String,
    /// A gate that must hold, quoted: --gate 'acc>0.85' (repeatable; all must hold)
    #[arg(long = "gate", value_name = "EXPR")]
    gates: Vec<String>,
    /// Promote even if gates or the stage's policy refuse; needs --reason
    #[arg(long)]
    force: bool,
    /// Why this promotion happens; recorded, and required with --force
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Fail (exit 4) unless the stage holds this version when it moves: 3, churn@3, none
    #[arg(long, value_name = "VERSION")]
    expect: Option<String>,
    /// Allow promoting a version older than the one the stage holds
    #[arg(long)]
    allow_downgrade: bool,
    /// Seconds to wait for another promotion of the same model to finish
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    wait: f64,
    /// Evaluate and show what would move, writing nothing
    #[arg(long)]
    dry_run: bool,
}

/// Returns what a promotion did, as `--json` prints it (and `push --stage` embeds it).
#[derive(Serialize)]
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
#[derive(Serialize)]
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

/// Returns the stamp of a stage move made by this process: now, who, which CI job,
/// the masked command line, and how long to wait for the lock.
pub fn stamp(wait_s: f64) -> Result<Stamp> {
    if !(0.0..=86_400.0).contains(&wait_s) {
        return Err(Failure::usage(format!(
            "--wait {wait_s} is not a number of seconds between 0 and 86400"
        ))
        .into());
    }
    let argv: Vec<String> = std::env::args().collect();
    let command = recorded_argv(&argv)
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                "mreg".to_owned()
            } else {
                output::shell_word(w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Stamp {
        time: crate::clock::format_time(crate::clock::now()?),
        actor: crate::clock::actor(),
        ci_job: crate::lineage::ci_job().and_then(|ci| ci.job_url),
        command,
        wait: Duration::from_secs_f64(wait_s),
    })
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

/// Returns "churn@3" or "nothing".
fn held(model: &str, version: Option<u64>) -> String {
    version.map_or_else(|| "nothing".to_owned(), |v| format!("{model}@{v}"))
}

/// Returns the moves after the first as "; churn@3 moved to archived", or "; churn@3
/// would move to archived" for a dry run.
pub fn side_moves(model: &str, moves: &[Move], dry_run: bool) -> String {
    let verb = if dry_run { "would move" } else { "moved" };
    let mut out = String::new();
    for m in moves.iter().skip(1) {
        let _ = write!(out, "; {model}@{} {verb} to {}", m.to, m.stage);
    }
    out
}

/// Runs `mreg promote`.
pub fn run(ctx: &Ctx, args: &PromoteArgs) -> Result<()> {
    let reg = ctx.registry()?;
    let config = reg.config()?;
    config.require_stage(&args.stage)?;
    let gates = parse_gates(&args.gates)?;
    check_gate_stages(&config, &gates)?;
    let stamp = stamp(args.wait)?;
    let reference = ModelRef::parse(&args.reference)?;
    let expect = args
        .expect
        .as_deref()
        .map(|e| parse_expect(e, reference.model.as_str()))
        .transpose()?;
    let candidate = models::resolve(&reg, &reference)?;
    let model = candidate.model.clone();
    let version = candidate.version;
    let request = Promotion {
        candidate,
        stage: args.stage.clone(),
        gates,
        force: args.force,
        reason: args.reason.clone(),
        expect,
        allow_downgrade: args.allow_downgrade,
        dry_run: args.dry_run,
    };
    let report = promote(&reg, &config, &request, &stamp)?;
    let outcome = Outcome::of(&model, version, &args.stage, &report);
    ctx.out.emit(&outcome, || checks_table(&report.checks))?;
    tell(ctx, &model, version, &args.stage, &report)
}

/// Prints how the promotion ended on stderr, or returns the refusal as a failure.
pub fn tell(ctx: &Ctx, model: &str, version: u64, stage: &str, report: &Report) -> Result<()> {
    let target = format!("{model}@{version}");
    let was = held(model, report.from);
    let also = side_moves(model, &report.moves, report.verdict == Verdict::WouldMove);
    let number = report.state.as_ref().map_or(0, |(_, n)| *n);
    match report.verdict {
        Verdict::Moved => {
            if report.forced {
                let failed = report.checks.iter().filter(|c| !c.passed).count();
                ctx.out.warn(&format!(
                    "forced past {}; the reason is recorded",
                    output::count(failed as u64, "failing check")
                ));
            }
            ctx.out.status(&format!(
                "Promoted {target} to {stage} (it held {was}{also}); history #{number}."
            ));
            Ok(())
        }
        Verdict::Unchanged if report.checks.iter().all(|c| c.passed) => {
            ctx.out
                .status(&format!("{stage} already holds {target}; nothing moved."));
            Ok(())
        }
        Verdict::Unchanged => Err(Failure::gate(format!(
            "{stage} already holds {target}, but it fails {} of {}:{}",
            report.checks.iter().filter(|c| !c.passed).count(),
            output::count(report.checks.len() as u64, "check"),
            failures(&report.checks)
        ))
        .hint(format!(
            "nothing moved and nothing was recorded; `mreg rollback {model} {stage}` takes it out"
        ))
        .into()),
        Verdict::WouldMove => {
            ctx.out.status(&format!(
                "Dry run: would promote {target} to {stage} (it holds {was}{also}); nothing was written."
            ));
            Ok(())
        }
        Verdict::Refused | Verdict::WouldRefuse => {
            let failed = report.checks.iter().filter(|c| !c.passed).count();
            let (what, hint) = if report.verdict == Verdict::Refused {
                (
                    "was not promoted",
                    format!(
                        "the refusal is recorded (`mreg history {model}`); nothing moved. \
                         To override: mreg promote {target} {stage} --force --reason TEXT"
                    ),
                )
            } else {
                (
                    "would not be promoted",
                    "dry run: nothing was written".to_owned(),
                )
            };
            Err(Failure::gate(format!(
                "{target} {what} to {stage}: {failed} of {} failed:{}",
                output::count(report.checks.len() as u64, "check"),
                failures(&report.checks)
            ))
            .hint(hint)
            .into())
        }
    }
}
