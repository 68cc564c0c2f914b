//! `mreg import`: models and runs from other tools.

use std::path::PathBuf;

use anyhow::Result;

use super::{Ctx, output};
use crate::ops::import::hf::{self, HfRequest};
use crate::ops::import::mlflow;
use crate::ops::push::Notice;

/// Bring models and runs in from other tools
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    what: ImportCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ImportCommand {
    Hf(HfArgs),
    Mlflow(MlflowArgs),
}

/// Import an MLflow tracking store: its runs, and its registered models' versions
///
/// PATH is an `mlruns` folder (the file store) or an MLflow SQLite database
/// (`mlflow.db`). Runs keep experiment, name, status, start and end, user, params
/// (typed; secret-looking ones masked), tags, every metric point with its step and
/// time, and the git commit and repository MLflow recorded. Registered model versions
/// become versions of the mreg model of the same name (their artifact folder stored,
/// linked to their run); MLflow's legacy stages (Staging, Production, Archived) and
/// aliases move the mreg stages of the same name, or those --alias names. Importing
/// again adds only what is new: runs are known by their MLflow id. Runs still running
/// are left for a later import; deleted ones are left out.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg import mlflow ./mlruns
  mreg import mlflow ./mlflow.db --alias champion=production --alias challenger=staging
  mreg runs --experiment churn --sort -acc            # the imported runs, as any others
  mreg history churn                                  # stages the import moved

Exit codes: 0 imported (versions that could not be are listed), 1 error, 2 usage.")]
pub struct MlflowArgs {
    /// An mlruns folder, or an MLflow database file (mlflow.db)
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// Map an MLflow alias onto an mreg stage, ALIAS=STAGE (repeatable) [default: an
    /// alias moves the stage of its own name, if there is one]
    #[arg(long, value_name = "ALIAS=STAGE")]
    alias: Vec<String>,
    /// A folder the store's artifacts may be in besides the store's own (repeatable):
    /// versions whose files are elsewhere are not imported
    #[arg(long, value_name = "DIR")]
    artifacts: Vec<PathBuf>,
    /// Record param or tag KEY as it is, though its name looks like a secret (repeatable)
    #[arg(long, value_name = "KEY")]
    not_secret: Vec<String>,
}

/// Import a Hugging Face model: a cache snapshot, a cache entry or a repository folder
///
/// PATH may be a snapshot (`~/.cache/huggingface/hub/models--ORG--NAME/snapshots/REV`),
/// a cache entry (`models--ORG--NAME`: the revision `refs/main` names, or --revision),
/// or a repository folder (a `git clone` of the Hub, whose `.git` is left out, or plain
/// files). The files become the model's next version (nothing new when they equal its
/// latest); the run recorded for it keeps the repo id and revision as its source
/// (`https://huggingface.co/ORG/NAME` at the commit) and as the tags `hf.repo_id` and
/// `hf.revision`, which `mreg show`, `mreg card` and `mreg export` carry on.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg import hf ~/.cache/huggingface/hub/models--acme--llm        # refs/main's snapshot
  mreg import hf ~/.cache/huggingface/hub/models--acme--llm --revision v1.2
  mreg import hf ./llm-clone --model llm      # a `git clone https://huggingface.co/acme/llm`
  hf download acme/llm && mreg import hf ~/.cache/huggingface/hub/models--acme--llm

A snapshot's links are read as the files they name only inside the cache entry's
blobs/; a link anywhere else is refused.

Exit codes: 0 imported (or nothing new), 1 error (no such revision, a Git LFS pointer
instead of a file, a link out of the cache), 2 usage.")]
pub struct HfArgs {
    /// A snapshot folder, a cache entry (models--ORG--NAME) or a repository folder
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// The model to import into [default: the repo's name]
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// The repo id (ORG/NAME), when PATH does not say it
    #[arg(long, value_name = "ORG/NAME")]
    repo_id: Option<String>,
    /// For a cache entry: the branch, tag or commit to import [default: main]
    #[arg(long, value_name = "REV")]
    revision: Option<String>,
    /// A message kept with the version [default: where it came from]
    #[arg(long, value_name = "TEXT")]
    message: Option<String>,
}

/// Runs `mreg import`.
pub fn run(ctx: &Ctx, args: &ImportArgs) -> Result<()> {
    match &args.what {
        ImportCommand::Hf(args) => run_hf(ctx, args),
        ImportCommand::Mlflow(args) => run_mlflow(ctx, args),
    }
}

fn run_mlflow(ctx: &Ctx, args: &MlflowArgs) -> Result<()> {
    let mut aliases = std::collections::BTreeMap::new();
    for pair in &args.alias {
        let Some((alias, stage)) = pair
            .split_once('=')
            .filter(|(a, s)| !a.is_empty() && !s.is_empty())
        else {
            return Err(crate::error::Failure::usage(format!(
                "--alias {pair}: write ALIAS=STAGE, such as --alias champion=production"
            ))
            .into());
        };
        aliases.insert(alias.to_owned(), stage.to_owned());
    }
    let reg = ctx.registry()?;
    let request = mlflow::MlflowRequest {
        path: &args.path,
        aliases: &aliases,
        artifacts: &args.artifacts,
        not_secret: &args.not_secret,
        cwd: ctx.cwd(),
    };
    let done = mlflow::import(&reg, &request, &ctx.out.progress(), &mut |w| {
        ctx.out.warn(&w);
    })?;
    let left: Vec<String> = done
        .runs_left_out
        .iter()
        .map(|(why, n)| format!("{n} {why}"))
        .collect();
    ctx.out.status(&format!(
        "Read {}: {}; imported {}, {} already here{}.",
        done.store,
        output::count(done.runs_found as u64, "run"),
        done.runs_imported,
        done.runs_already,
        if left.is_empty() {
            String::new()
        } else {
            format!(", left out {}", left.join(", "))
        }
    ));
    for v in &done.versions {
        let line = match (&v.reference, &v.skipped) {
            (Some(r), _) if v.new => format!("  {} version {} -> {r} (new)", v.model, v.version),
            (Some(r), _) => format!("  {} version {} -> {r}", v.model, v.version),
            (None, Some(why)) => {
                format!("  {} version {}: not imported: {why}", v.model, v.version)
            }
            (None, None) => format!("  {} version {}", v.model, v.version),
        };
        ctx.out.status(&line);
    }
    for s in &done.stages {
        let line = match (&s.refused, s.moved) {
            (Some(why), _) => format!(
                "  {} ({}) not moved to {}: {why}",
                s.reference, s.from, s.stage
            ),
            (None, true) => format!("  {} ({}) moved to {}", s.reference, s.from, s.stage),
            (None, false) => format!("  {} ({}) holds {} already", s.reference, s.from, s.stage),
        };
        ctx.out.status(&line);
    }
    if !done.aliases_unmapped.is_empty() {
        ctx.out.warn(&format!(
            "these MLflow aliases moved no stage: {} (--alias ALIAS=STAGE maps one onto a stage)",
            done.aliases_unmapped.join(", ")
        ));
    }
    ctx.out.emit(&done, String::new)
}

fn run_hf(ctx: &Ctx, args: &HfArgs) -> Result<()> {
    let reg = ctx.registry()?;
    let request = HfRequest {
        path: &args.path,
        model: args.model.as_deref(),
        repo_id: args.repo_id.as_deref(),
        revision: args.revision.as_deref(),
        message: args.message.as_deref(),
        cwd: ctx.cwd(),
    };
    // Warnings wait for the outcome: the one about tags not recorded is no news when
    // the files were imported before.
    let mut warnings = Vec::new();
    let imported = hf::import(
        &reg,
        &request,
        &ctx.out.progress(),
        &mut |notice| match notice {
            Notice::Warning(w) => warnings.push(w),
            Notice::Skipped(skipped) => {
                for s in skipped {
                    ctx.out
                        .status(&format!("Left out {} ({}).", s.path, s.reason));
                }
            }
            Notice::UnlinkedRun { .. } => {}
        },
    )?;
    let outcome = &imported.pushed;
    if outcome.created {
        for w in &warnings {
            ctx.out.warn(w);
        }
    }
    let from = format!(
        "{}{}",
        imported
            .origin
            .repo_id
            .as_deref()
            .unwrap_or("a local folder"),
        imported
            .origin
            .revision
            .as_deref()
            .map(|r| format!(" at {}", &r[..r.len().min(12)]))
            .unwrap_or_default()
    );
    if outcome.created {
        ctx.out.status(&format!(
            "Imported {from} as {} ({}, {}, {} new).",
            outcome.reference,
            output::count(outcome.files, "file"),
            output::bytes(outcome.bytes),
            output::bytes(outcome.new_bytes)
        ));
    } else {
        ctx.out.status(&format!(
            "Nothing to import: {} already holds {from}.",
            outcome.reference
        ));
    }
    let reference = outcome.reference.clone();
    ctx.out.emit(&imported, || reference)
}
