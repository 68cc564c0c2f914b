//! `mreg push`: store a folder and record a new model version.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, output};
use crate::clock;
use crate::refspec::ModelName;
use crate::store::snapshot::{self, Sink, Skipped};
use crate::store::statcache::StatCache;
use crate::store::write::Staging;
use crate::store::{TreeId, models};

/// Store a model folder and record it as the model's next version
///
/// Every file is hashed (blake3) into the content-addressed store; content already
/// stored is not stored again, and files unchanged since the last push are not even
/// re-read. Prints the new reference (NAME@N) on stdout. Pushing content identical to
/// the model's latest version records nothing and prints that version.
///
/// A .mregignore file at the folder's top (gitignore syntax) leaves paths out; every
/// skipped path is reported.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg push ./out --model churn
  mreg push ./out --model churn --message 'retrained on November data'
  version=$(mreg push ./out --model churn --json | jq -r .version)")]
pub struct PushArgs {
    /// Folder holding the model's files
    dir: PathBuf,
    /// Model name: letters, digits, '.', '_' and '-'
    #[arg(long)]
    model: String,
    /// A message kept with the version
    #[arg(long)]
    message: Option<String>,
}

#[derive(Serialize)]
struct Outcome {
    model: String,
    version: u64,
    #[serde(rename = "ref")]
    reference: String,
    created: bool,
    tree: TreeId,
    files: u64,
    bytes: u64,
    new_bytes: u64,
    hashed_bytes: u64,
    skipped: Vec<Skipped>,
}

/// Runs `mreg push`.
pub fn run(ctx: &Ctx, args: &PushArgs) -> Result<()> {
    let model = ModelName::parse(&args.model)?;
    let reg = ctx.registry()?;
    let dir = snapshot::check_folder(&args.dir)?;
    let created = clock::format_time(clock::now()?);
    let cache = StatCache::load(&reg, &dir);
    let staging = Staging::new(&reg);
    let bar = ctx.out.progress();
    let (snap, trees) = snapshot::snapshot(&reg, &dir, &Sink::Store(&staging), Some(&cache), &bar)?;
    report_skipped(ctx, &snap.skipped);
    let latest = models::list_versions(&reg, model.as_str())?
        .last()
        .map(|n| models::load_version(&reg, model.as_str(), *n))
        .transpose()?;
    // Publishing also runs when the content is already the latest version: objects
    // that went missing from the store since are then put back.
    staging.publish()?;
    let trees_staging = Staging::new(&reg);
    for tree in &trees {
        trees_staging.add_bytes(tree)?;
    }
    trees_staging.publish()?;
    let (record, created_new) = match latest {
        Some(latest) if latest.tree == snap.tree => (latest, false),
        _ => {
            let record = models::create_version(
                &reg,
                models::NewVersion {
                    model: model.clone(),
                    tree: snap.tree,
                    files: snap.files,
                    bytes: snap.bytes,
                    created,
                    actor: clock::actor(),
                    message: args.message.clone(),
                },
            )?;
            (record, true)
        }
    };
    cache.save(&reg);
    let reference = record.reference();
    if created_new {
        ctx.out.status(&format!(
            "Stored {} ({}, {} new) as {reference}.",
            output::count(snap.files, "file"),
            output::bytes(snap.bytes),
            output::bytes(snap.new_bytes)
        ));
    } else {
        ctx.out.status(&format!(
            "Nothing to push: {reference} already holds this content (tree {}).",
            snap.tree.0.short(12)
        ));
        if args.message.is_some() {
            ctx.out
                .warn("--message was not recorded: no version was created.");
        }
    }
    let outcome = Outcome {
        model: record.model.clone(),
        version: record.version,
        reference: reference.clone(),
        created: created_new,
        tree: snap.tree,
        files: snap.files,
        bytes: snap.bytes,
        new_bytes: snap.new_bytes,
        hashed_bytes: snap.hashed_bytes,
        skipped: snap.skipped,
    };
    ctx.out.emit(&outcome, || reference)
}

fn report_skipped(ctx: &Ctx, skipped: &[Skipped]) {
    const SHOWN: usize = 10;
    if skipped.is_empty() {
        return;
    }
    let mut line = format!("Skipped {}:", output::count(skipped.len() as u64, "path"));
    for s in skipped.iter().take(SHOWN) {
        let why = if s.reason == "registry" {
            " (the registry)"
        } else {
            " (.mregignore)"
        };
        let _ = write!(line, "\n  {}{why}", s.path);
    }
    if skipped.len() > SHOWN {
        let _ = write!(
            line,
            "
  … and {} more (--json lists all)",
            skipped.len() - SHOWN
        );
    }
    ctx.out.status(&line);
}
