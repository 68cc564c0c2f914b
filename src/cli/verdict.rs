//! How gate checks and stage moves read, for `promote`, `push --stage`, `gate` and
//! `rollback`: the checks table, the failing checks, the side moves, and the sentence
//! (or the refusal that exits 3) a promotion ends with.

use std::fmt::Write as _;

use anyhow::Result;

use super::report::{self, Block, Cell, Tone};
use super::{Ctx, output};
use crate::error::Failure;
use crate::manifest::state::{CheckRecord, Move};
use crate::stage::COMMAND_LINE;
use crate::stage::promote::{Report, Verdict};

/// Returns the checks as a table: gate, required, actual, result.
pub fn checks_table(checks: &[CheckRecord]) -> String {
    if checks.is_empty() {
        return String::new();
    }
    let with_source = checks.iter().any(|c| c.source != COMMAND_LINE);
    let rows = checks
        .iter()
        .map(|c| {
            let gate = if with_source && c.source != COMMAND_LINE {
                format!("{} ({})", c.gate, c.source)
            } else {
                c.gate.clone()
            };
            vec![
                gate,
                c.required.clone(),
                c.actual
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), ToString::to_string),
                if c.passed { "pass" } else { "FAIL" }.to_owned(),
            ]
        })
        .collect();
    output::table(&["GATE", "REQUIRED", "ACTUAL", "RESULT"], rows)
}

/// Returns the checks as GitHub-flavored Markdown under `title` (`churn@4 → staging:
/// refused`), for `--md` and a CI step summary: a heading, then a table of gate,
/// required, actual and result, failures bold, with why each failed below.
pub fn checks_markdown(title: &str, checks: &[CheckRecord]) -> String {
    let rows = checks
        .iter()
        .map(|c| {
            let gate = if c.source == COMMAND_LINE {
                c.gate.clone()
            } else {
                format!("{} ({})", c.gate, c.source)
            };
            let result = if c.passed {
                Cell::toned("pass", Tone::Good)
            } else {
                Cell::toned("FAIL", Tone::Best)
            };
            vec![
                Cell::plain(gate),
                Cell::plain(c.required.clone()),
                Cell::plain(
                    c.actual
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), ToString::to_string),
                ),
                result,
            ]
        })
        .collect();
    let notes = checks
        .iter()
        .filter_map(|c| {
            c.why
                .as_ref()
                .map(|why| Cell::plain(format!("{}: {why}", c.gate)))
        })
        .collect();
    let block = Block {
        title: format!(
            "gates: {} of {} passed",
            checks.iter().filter(|c| c.passed).count(),
            checks.len()
        ),
        header: ["gate", "required", "actual", "result"]
            .map(str::to_owned)
            .to_vec(),
        right: Vec::new(),
        rows,
        notes,
    };
    report::markdown(&report::Report {
        title: title.to_owned(),
        heading: Vec::new(),
        blocks: if checks.is_empty() {
            Vec::new()
        } else {
            vec![block]
        },
        footer: None,
    })
}

/// Returns the Markdown title of a promotion: `churn@4 → production: promoted`.
pub fn promotion_title(model: &str, version: u64, stage: &str, report: &Report) -> String {
    let outcome = match report.verdict {
        Verdict::Moved if report.forced => "promoted, forced past failing checks",
        Verdict::Moved => "promoted",
        Verdict::Unchanged => "already there",
        Verdict::Refused => "refused",
        Verdict::WouldMove => "would be promoted (dry run)",
        Verdict::WouldRefuse => "would be refused (dry run)",
    };
    format!("{model}@{version} → {stage}: {outcome}")
}

/// Returns the failing checks as one line each, `GATE: why`, for an error message.
pub fn failures(checks: &[CheckRecord]) -> String {
    let mut out = String::new();
    for c in checks.iter().filter(|c| !c.passed) {
        let why = c.why.as_deref().unwrap_or("it does not hold");
        let _ = write!(out, "\n  {}: {why}", c.gate);
    }
    out
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

/// Prints how a promotion ended on stderr, or returns the refusal as a failure.
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
        Verdict::Refused | Verdict::WouldRefuse => Err(refusal(model, stage, &target, report)),
    }
}

/// Returns the failure a refused promotion exits 3 with.
fn refusal(model: &str, stage: &str, target: &str, report: &Report) -> anyhow::Error {
    let failed = report.checks.iter().filter(|c| !c.passed).count();
    // The stage's signing rules are not overridden by --force: what to do is to sign
    // and approve.
    let signing = |c: &&crate::manifest::state::CheckRecord| {
        c.gate.starts_with("signed by ") || c.gate.starts_with("approvals >= ")
    };
    let signing_failed = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .any(|c| signing(&c));
    let (what, hint) = if report.verdict == Verdict::Refused && signing_failed {
        (
            "was not promoted",
            format!(
                "the refusal is recorded (`mreg history {model}`); nothing moved. The stage's \
                 signing rules are not overridden by --force: sign it (`mreg sign {target} --key KEY.pem`) \
                 and have it approved (`mreg approve {target} {stage} --key KEY.pem`)"
            ),
        )
    } else if report.verdict == Verdict::Refused {
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
    Failure::gate(format!(
        "{target} {what} to {stage}: {failed} of {} failed:{}",
        output::count(report.checks.len() as u64, "check"),
        failures(&report.checks)
    ))
    .hint(hint)
    .into()
}
