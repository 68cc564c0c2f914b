//! `mreg ls`: list models, or the versions of one model.

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, output};
use crate::manifest::VersionRecord;
use crate::refspec::{ModelName, ModelRef};
use crate::store::Registry;
use crate::store::models;

/// List models, or the versions of one model
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  mreg ls\n  mreg ls churn\n  mreg ls churn --json | jq '.[-1].tree'"
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
    let json = if ctx.out.is_json() {
        // By way of TOML, so that NaN metrics come out as "NaN", not null.
        versions
            .iter()
            .map(output::json_of_manifest)
            .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    ctx.out.emit(&json, || versions_table(&versions))
}

fn list_models(ctx: &Ctx, reg: &Registry) -> Result<()> {
    let mut rows = Vec::new();
    for model in models::list_models(reg)? {
        let versions = models::load_versions(reg, &model)?;
        let Some(latest) = versions.last() else {
            continue;
        };
        rows.push(ModelRow {
            model,
            latest: latest.version,
            versions: versions.len() as u64,
            bytes: latest.bytes,
            updated: latest.created.clone(),
        });
    }
    if rows.is_empty() && !ctx.out.is_json() {
        ctx.out
            .status("No models yet; `mreg push DIR --model NAME` records the first.");
        return Ok(());
    }
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
                ]
            })
            .collect();
        output::table(&["MODEL", "LATEST", "VERSIONS", "SIZE", "UPDATED"], cells)
    })
}

fn versions_table(versions: &[VersionRecord]) -> String {
    let cells = versions
        .iter()
        .rev()
        .map(|v| {
            vec![
                v.reference(),
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
            "VERSION", "TREE", "FILES", "SIZE", "CREATED", "BY", "MESSAGE",
        ],
        cells,
    )
}
