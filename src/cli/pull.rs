//! `mreg pull`: materialize a model version into a folder.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, output};
use crate::refspec::ModelRef;
use crate::remote::known::Known;
use crate::remote::settings::Settings;
use crate::store::materialize::{self, Options};
use crate::store::{Registry, TreeId, models, read};

/// Materialize a model version into a folder
///
/// The folder is built beside the target and renamed into place, so a serving
/// process never sees half a model. Every byte is verified against its hash. The
/// version's tree is checked before anything is written: no entry can land outside
/// the target. A target that is not empty is refused unless --force is given, which
/// replaces its whole contents.
///
/// Objects the registry lacks are fetched from its default remote (`mreg remote`),
/// re-hashed before use; a registry used as --registry s3://… fetches from the bucket.
///
/// References: NAME (latest), NAME@3, NAME@v3, NAME@latest, NAME@production (the
/// version a stage holds), NAME@<tree-hash prefix>.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg pull churn@3 --to ./model
  mreg pull churn@production --to /srv/model --force --durable")]
pub struct PullArgs {
    /// The version to pull
    #[arg(value_name = "REF")]
    reference: String,
    /// Folder to create or replace
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// Replace the contents of a folder that is not empty
    #[arg(long)]
    force: bool,
    /// Flush the files to disk before the folder appears (survives a power cut)
    #[arg(long)]
    durable: bool,
}

#[derive(Serialize)]
struct Outcome {
    model: String,
    version: u64,
    #[serde(rename = "ref")]
    reference: String,
    tree: TreeId,
    path: String,
    files: u64,
    bytes: u64,
}

/// Runs `mreg pull`.
pub fn run(ctx: &Ctx, args: &PullArgs) -> Result<()> {
    let reference = ModelRef::parse(&args.reference)?;
    let reg = ctx.registry()?;
    let record = models::resolve(&reg, &reference)?;
    fetch_missing(ctx, &reg, record.tree)?;
    let plan = materialize::plan(&reg, record.tree)?;
    let opts = Options {
        force: args.force,
        durable: args.durable,
    };
    let written = materialize::materialize(&reg, &plan, &args.to, opts, &ctx.out.progress())?;
    let path = written.display().to_string();
    ctx.out.status(&format!(
        "Pulled {} ({}, {}) into {path}.",
        record.reference(),
        output::count(plan.files.len() as u64, "file"),
        output::bytes(plan.bytes)
    ));
    if ctx.out.is_json() {
        let outcome = Outcome {
            model: record.model.clone(),
            version: record.version,
            reference: record.reference(),
            tree: record.tree,
            path,
            files: plan.files.len() as u64,
            bytes: plan.bytes,
        };
        ctx.out.emit(&outcome, String::new)?;
    }
    Ok(())
}

/// Fetches the objects of a version the registry lacks: from the bucket of a registry
/// used as `--registry s3://…`, else from the default remote, if there is one.
fn fetch_missing(ctx: &Ctx, reg: &Registry, tree: TreeId) -> Result<()> {
    if reg
        .backend()
        .fetch_tree(reg, tree, &ctx.out.progress())?
        .is_some()
    {
        return Ok(());
    }
    if read::missing_below(reg, tree).is_empty() {
        return Ok(());
    }
    let settings = Settings::load(reg)?;
    if settings.default.is_none() {
        return Ok(());
    }
    let (name, entry) = settings.pick(None)?;
    let remote = entry.open(false)?;
    let known = Known::load(reg, &entry.url)?;
    let moved = crate::remote::fetch_tree(reg, &*remote, &known, tree, &ctx.out.progress())?;
    ctx.out.status(&format!(
        "Fetched {} of missing objects from {name}.",
        output::bytes(moved)
    ));
    Ok(())
}
