//! `mreg history`: the stage moves of a model, newest first, with their evidence.

use std::fmt::Write as _;

use anyhow::Result;

use super::{Ctx, output};
use crate::manifest::state::{Action, CheckRecord};
use crate::manifest::{StageState, StateId};
use crate::names::ModelName;
use crate::store::{models, stages};

/// Show a model's stage moves, newest first: who, when, what moved, on what evidence
///
/// Every promotion, refused promotion and rollback is listed with the gates it
/// evaluated and their values. The records are the chain of states under
/// .mreg/models/NAME/states/, each naming the one before it.
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
    let model = ModelName::parse(&args.model)?;
    if models::list_versions(&reg, model.as_str())?.is_empty() {
        // Resolving gives the error that lists the models there are.
        models::resolve(&reg, &crate::refspec::ModelRef::parse(model.as_str())?)?;
    }
    if let Some(stage) = &args.stage {
        reg.config()?.require_stage(stage)?;
    }
    // Without --stage, only the newest entries are read: a damaged old state does not
    // hide the recent ones.
    let read_limit = if args.stage.is_none() {
        args.limit
    } else {
        None
    };
    let mut entries: Vec<(StateId, StageState)> = stages::chain(&reg, model.as_str(), read_limit)?
        .into_iter()
        .filter(|(_, s)| {
            args.stage
                .as_ref()
                .is_none_or(|stage| s.stage == *stage || s.moves.iter().any(|m| m.stage == *stage))
        })
        .collect();
    if let Some(limit) = args.limit {
        entries.truncate(limit);
    }
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
    if args.md {
        return ctx.out.emit(&(), || markdown(&entries));
    }
    let json = entries
        .iter()
        .map(|(id, state)| {
            let mut value = output::json_of_manifest(state)?;
            if let Some(object) = value.as_object_mut() {
                object.insert("id".to_owned(), id.to_string().into());
                // The record leaves empty fields out; scripts get every field, always.
                for key in ["previous", "ci_job", "command", "reason"] {
                    object.entry(key).or_insert(serde_json::Value::Null);
                }
                for key in ["forced", "downgrade"] {
                    object.entry(key).or_insert(false.into());
                }
                for key in ["moves", "checks"] {
                    object
                        .entry(key)
                        .or_insert(serde_json::Value::Array(Vec::new()));
                }
                if let Some(moves) = object.get_mut("moves").and_then(|m| m.as_array_mut()) {
                    for m in moves.iter_mut().filter_map(|m| m.as_object_mut()) {
                        m.entry("from").or_insert(serde_json::Value::Null);
                    }
                }
            }
            Ok(value)
        })
        .collect::<Result<Vec<_>>>()?;
    ctx.out.emit(&json, || table(&entries))
}

/// Returns the cells of one entry: number, time, action, moves, checks, actor, reason.
fn cells(state: &StageState, line_break: &str) -> Vec<String> {
    let model = &state.model;
    let mut action = state.action.as_str().to_owned();
    if state.forced {
        action.push_str(" (forced)");
    }
    if state.downgrade {
        action.push_str(" (downgrade)");
    }
    let moves = if state.action == Action::Refused {
        format!("{}: {model}@{} refused", state.stage, state.version)
    } else {
        state
            .moves
            .iter()
            .map(|m| {
                let from = m.from.map_or_else(|| "-".to_owned(), |v| v.to_string());
                format!("{}: {from} -> {}", m.stage, m.to)
            })
            .collect::<Vec<_>>()
            .join(line_break)
    };
    let checks = state
        .checks
        .iter()
        .map(check_cell)
        .collect::<Vec<_>>()
        .join(line_break);
    let mut by = state.actor.clone();
    if let Some(url) = &state.ci_job {
        by.push_str(line_break);
        by.push_str(url);
    }
    vec![
        state.number.to_string(),
        state.time.clone(),
        action,
        moves,
        if checks.is_empty() {
            "-".to_owned()
        } else {
            checks
        },
        by,
        state.reason.clone().unwrap_or_default(),
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

fn table(entries: &[(StateId, StageState)]) -> String {
    let rows = entries.iter().map(|(_, s)| cells(s, "\n")).collect();
    output::table(&HEADER, rows)
}

fn markdown(entries: &[(StateId, StageState)]) -> String {
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
    for (_, state) in entries {
        let row: Vec<String> = cells(state, "<br>").iter().map(|c| escape(c)).collect();
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}
