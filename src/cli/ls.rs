//! `mreg ls`: list models, or the versions of one model.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, output};
use crate::manifest::VersionRecord;
use crate::names::ModelName;
use crate::refspec::ModelRef;
use crate::store::Registry;
use crate::store::{models, stages};

/// List models with their stages, or the versions of one model
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  mreg ls\n  mreg ls churn\n  mreg ls churn --json | jq '.[-1].tree'\n  mreg ls --json | jq -r '.[] | select(.stages.production) | .model'"
)]
pub struct LsArgs {
    /// Model whose versions to list
    model: Option<String>,
}

#[derive(Serialize)]
struct ModelRow {
    model: String,
    latest: u64,
    versions: u64,
    bytes: u64,
    updated: String,
    /// Each stage's version, for the stages that hold one.
    stages: BTreeMap<String, u64>,
}

/// Returns where each stage of a model points; empty when none ever moved.
fn stage_map(reg: &Registry, model: &str) -> Result<BTreeMap<String, u64>> {
    Ok(stages::current(reg, model)?
        .map(|(_, state)| state.stages)
        .unwrap_or_default())
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
    let model = ModelName::parse(name)?;
    let versions = models::load_versions(reg, model.as_str())?;
    if versions.is_empty() {
        // Resolving gives the error that lists the models there are.
        models::resolve(reg, &ModelRef::parse(model.as_str())?)?;
    }
    let held = stage_map(reg, model.as_str())?;
    let order = with_undeclared(&reg.config()?.stage_names(), &held);
    let stages_of = |version: u64| -> Vec<String> {
        order
            .iter()
            .filter(|s| held.get(*s) == Some(&version))
            .cloned()
            .collect()
    };
    let json = if ctx.out.is_json() {
        // By way of TOML, so that NaN metrics come out as "NaN", not null.
        versions
            .iter()
            .map(|v| {
                let mut value = output::json_of_manifest(v)?;
                if let Some(object) = value.as_object_mut() {
                    object.insert("stages".to_owned(), stages_of(v.version).into());
                }
                Ok(value)
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    ctx.out
        .emit(&json, || versions_table(&versions, &stages_of))
}

fn list_models(ctx: &Ctx, reg: &Registry) -> Result<()> {
    let mut rows = Vec::new();
    for model in models::list_models(reg)? {
        let versions = models::load_versions(reg, &model)?;
        let Some(latest) = versions.last() else {
            continue;
        };
        rows.push(ModelRow {
            latest: latest.version,
            versions: versions.len() as u64,
            bytes: latest.bytes,
            updated: latest.created.clone(),
            stages: stage_map(reg, model.as_str())?,
            model,
        });
    }
    if rows.is_empty() && !ctx.out.is_json() {
        ctx.out
            .status("No models yet; `mreg push DIR --model NAME` records the first.");
        return Ok(());
    }
    let order = reg.config()?.stage_names();
    ctx.out.emit(&rows, || {
        let cells = rows
            .iter()
            .map(|r| {
                vec![
                    r.model.clone(),
                    format!("{}@{}", r.model, r.latest),
                    r.versions.to_string(),
                    output::bytes(r.bytes),
                    r.updated.clone(),
                    stages_cell(&order, &r.stages),
                ]
            })
            .collect();
        output::table(
            &["MODEL", "LATEST", "VERSIONS", "SIZE", "UPDATED", "STAGES"],
            cells,
        )
    })
}

/// Returns the declared stages in order, then the stages `map` holds that are not declared.
fn with_undeclared(order: &[String], map: &BTreeMap<String, u64>) -> Vec<String> {
    let mut all = order.to_vec();
    all.extend(map.keys().filter(|k| !order.contains(k)).cloned());
    all
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
