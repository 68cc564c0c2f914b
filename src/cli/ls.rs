//! `mreg ls`: list models, or the versions of one model.

use std::collections::BTreeMap;

use anyhow::Result;

use super::{Ctx, output};
use crate::error::Failure;
use crate::manifest::VersionRecord;
use crate::ops::ls::{self, with_undeclared};
use crate::store::Registry;

/// List models with their stages, or the versions of one model
///
/// Without a model: one row per model, its latest version, how many versions it has,
/// the size and push time of the latest (`mreg du` counts every version's bytes), and
/// where its stages point. With a model: its versions, newest first.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  mreg ls\n  mreg ls churn\n  mreg ls churn --json | jq '.[-1].tree'\n  mreg ls --json | jq -r '.[] | select(.stages.production) | .model'"
)]
pub struct LsArgs {
    /// Model whose versions to list
    model: Option<String>,
}

/// Returns `production=4 staging=5`, in the registry's stage order, then any stage that
/// still points somewhere though config.toml no longer declares it.
fn stages_cell(order: &[String], map: &BTreeMap<String, u64>) -> String {
    let mut parts: Vec<String> = with_undeclared(order, map)
        .iter()
        .filter_map(|s| map.get(s).map(|v| format!("{s}={v}")))
        .collect();
    if parts.is_empty() {
        parts.push("-".to_owned());
    }
    parts.join(" ")
}

/// Runs `mreg ls`.
pub fn run(ctx: &Ctx, args: &LsArgs) -> Result<()> {
    let reg = ctx.registry()?;
    match &args.model {
        Some(name) => list_versions(ctx, &reg, name),
        None => list_models(ctx, &reg),
    }
}

fn list_versions(ctx: &Ctx, reg: &Registry, name: &str) -> Result<()> {
    let versions = ls::versions(reg, name)?;
    let json = if ctx.out.is_json() {
        versions.json()?
    } else {
        Vec::new()
    };
    let printed = ctx.out.emit(&json, || {
        versions_table(&versions.records, &|v| versions.stages_of(v))
    });
    output::after_print(printed, || {
        if !versions.removed.is_empty() {
            let refs: Vec<String> = versions
                .removed
                .iter()
                .map(|n| format!("{name}@{n}"))
                .collect();
            ctx.out.status(&format!(
                "Not listed, as they were removed: {}. `mreg show {name}@N` says when and by whom.",
                refs.join(", ")
            ));
        }
        Ok(())
    })
}

fn list_models(ctx: &Ctx, reg: &Registry) -> Result<()> {
    let listing = ls::models(reg)?;
    let (rows, order) = (&listing.rows, &listing.stages);
    if listing.unreadable.is_empty() && rows.is_empty() && !ctx.out.is_json() {
        if listing.emptied.is_empty() {
            ctx.out
                .status("No models yet; `mreg push DIR --model NAME` records the first.");
        } else {
            ctx.out.status(&format!(
                "No model has a version left: every version of {} was removed. `mreg ls NAME` names them; `mreg push DIR --model NAME` records a new one.",
                listing.emptied.join(", ")
            ));
        }
        return Ok(());
    }
    let printed = ctx.out.emit(rows, || {
        let cells = rows
            .iter()
            .map(|r| {
                vec![
                    r.model.clone(),
                    format!("{}@{}", r.model, r.latest),
                    r.versions.to_string(),
                    output::bytes(r.bytes),
                    r.updated.clone(),
                    stages_cell(order, &r.stages),
                ]
            })
            .collect();
        output::table(
            &[
                "MODEL",
                "LATEST",
                "VERSIONS",
                "SIZE OF LATEST",
                "UPDATED",
                "STAGES",
            ],
            cells,
        )
    });
    output::after_print(printed, || {
        if !listing.emptied.is_empty() {
            ctx.out.status(&format!(
                "Not listed, as every version of theirs was removed: {}.",
                listing.emptied.join(", ")
            ));
        }
        for (model, why) in &listing.unreadable {
            ctx.out.warn(&format!("{model} is left out: {why}"));
        }
        match listing.unreadable.len() {
            0 => Ok(()),
            n => Err(Failure::error(if n == 1 {
                "1 model was not listed: its records do not read".to_owned()
            } else {
                format!("{n} models were not listed: their records do not read")
            })
            .hint("`mreg fsck` names every problem; the other models are listed above")
            .into()),
        }
    })
}

fn versions_table(versions: &[VersionRecord], stages_of: &dyn Fn(u64) -> Vec<String>) -> String {
    let cells = versions
        .iter()
        .rev()
        .map(|v| {
            vec![
                v.reference(),
                match stages_of(v.version) {
                    held if held.is_empty() => "-".to_owned(),
                    held => held.join(" "),
                },
                v.tree.0.short(12),
                v.files.to_string(),
                output::bytes(v.bytes),
                v.created.clone(),
                v.actor.clone(),
                v.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        &[
            "VERSION", "STAGES", "TREE", "FILES", "SIZE", "CREATED", "BY", "MESSAGE",
        ],
        cells,
    )
}
