//! `mreg history`: the stage moves of a model, newest first, with their evidence.

use std::fmt::Write as _;

use anyhow::Result;

use super::{Ctx, output};
use crate::id::StateId;
use crate::manifest::StageState;
use crate::manifest::state::{Action, CheckRecord};
use crate::ops::history;

/// Show a model's stage moves, newest first: who, when, what moved, on what evidence
///
/// Every promotion, refused promotion and rollback is listed with the gates it
/// evaluated and their values, and every removal (`mreg rm`) with its reason. The
/// records are the chain of states under .mreg/models/NAME/states/, each naming the one
/// before it, and the removal records under .mreg/models/NAME/removed/; a removal that
/// emptied no stage is no stage move, and has no number (`-`).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg history churn
  mreg history churn --stage production --limit 5
  mreg history churn --md >> release-notes.md
  mreg history churn --json | jq '.[0].checks'")]
pub struct HistoryArgs {
    /// The model
    #[arg(value_name = "NAME")]
    model: String,
    /// Only moves of this stage (asked for, or moved along with another)
    #[arg(long, value_name = "STAGE")]
    stage: Option<String>,
    /// Show at most N entries
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Print a Markdown table, for release notes and pull-request comments
    #[arg(long, conflicts_with = "json")]
    md: bool,
}

/// Runs `mreg history`.
pub fn run(ctx: &Ctx, args: &HistoryArgs) -> Result<()> {
    let reg = ctx.registry()?;
    let entries = history::history(&reg, &args.model, args.stage.as_deref(), args.limit)?;
    let model = &args.model;
    if entries.is_empty() && !ctx.out.is_json() && args.limit != Some(0) {
        let which = args
            .stage
            .as_deref()
            .map_or(String::new(), |s| format!(" of {s}"));
        ctx.out.status(&format!(
            "No stage moves{which} for {model} yet; `mreg promote {model}@N STAGE` makes the first."
        ));
        return Ok(());
    }
    // Who signed each move (`promote --key`), by the names [signers] gives their keys.
    let signers = crate::ops::approve::config_signers(&reg.config()?)?;
    let signed: Vec<Vec<String>> = entries
        .iter()
        .map(|(id, _)| {
            id.as_ref().map_or_else(Vec::new, |id| {
                crate::ops::approve::move_signers(&reg, &signers, model, id)
            })
        })
        .collect();
    if args.md {
        return ctx.out.emit(&(), || markdown(&entries, &signed));
    }
    let mut json = history::json(&entries)?;
    for (value, names) in json.iter_mut().zip(&signed) {
        if let Some(object) = value.as_object_mut() {
            object.insert("signed_by".to_owned(), names.clone().into());
        }
    }
    ctx.out.emit(&json, || table(&entries, &signed))
}

/// Returns the cells of one entry, each a list of lines: number, time, action, moves,
/// checks, actor, reason.
fn cells(state: &StageState, signed: &[String]) -> Vec<Vec<String>> {
    let model = &state.model;
    let mut action = state.action.as_str().to_owned();
    if state.forced {
        action.push_str(" (forced)");
    }
    if state.downgrade {
        action.push_str(" (downgrade)");
    }
    let moves = if state.action == Action::Refused {
        vec![format!(
            "{}: {model}@{} refused",
            state.stage, state.version
        )]
    } else if state.action == Action::Remove {
        let mut lines: Vec<String> = state
            .removed
            .iter()
            .map(|v| format!("{model}@{v} removed"))
            .collect();
        lines.extend(
            state
                .emptied
                .iter()
                .map(|e| format!("{}: {} -> -", e.stage, e.version)),
        );
        lines
    } else {
        state
            .moves
            .iter()
            .map(|m| {
                let from = m.from.map_or_else(|| "-".to_owned(), |v| v.to_string());
                format!("{}: {from} -> {}", m.stage, m.to)
            })
            .collect()
    };
    let mut checks: Vec<String> = state.checks.iter().map(check_cell).collect();
    if checks.is_empty() {
        checks.push("-".to_owned());
    }
    let mut by = vec![state.actor.clone()];
    by.extend(state.ci_job.clone());
    by.extend(signed.iter().map(|s| format!("signed: {s}")));
    vec![
        vec![if state.number == 0 {
            "-".to_owned()
        } else {
            state.number.to_string()
        }],
        vec![state.time.clone()],
        vec![action],
        moves,
        checks,
        by,
        vec![state.reason.clone().unwrap_or_default()],
    ]
}

/// Returns `acc>0.85 = 0.91 pass`: a gate, the value it saw, and its result.
fn check_cell(check: &CheckRecord) -> String {
    let actual = check
        .actual
        .as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string);
    let result = if check.passed { "pass" } else { "FAIL" };
    format!("{} = {actual} {result}", check.gate)
}

const HEADER: [&str; 7] = ["#", "TIME", "ACTION", "MOVES", "GATES", "BY", "REASON"];

fn table(entries: &[(Option<StateId>, StageState)], signed: &[Vec<String>]) -> String {
    let rows = entries
        .iter()
        .zip(signed)
        .map(|((_, s), names)| cells(s, names))
        .collect();
    output::table_of_lines(&HEADER, rows)
}

fn markdown(entries: &[(Option<StateId>, StageState)], signed: &[Vec<String>]) -> String {
    let escape = |cell: &str| {
        cell.replace('|', "\\|")
            .replace("\r\n", "<br>")
            .replace(['\n', '\r'], "<br>")
    };
    let mut out = format!(
        "| {} |\n|{}\n",
        HEADER.join(" | "),
        "---|".repeat(HEADER.len())
    );
    for ((_, state), names) in entries.iter().zip(signed) {
        let row: Vec<String> = cells(state, names)
            .iter()
            .map(|lines| {
                lines
                    .iter()
                    .map(|l| escape(l))
                    .collect::<Vec<_>>()
                    .join("<br>")
            })
            .collect();
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}
