//! `mreg diff A B`: what changed between two versions or runs.

use anyhow::Result;
use clap::ValueEnum;
use clap::builder::PossibleValue;

use super::{Ctx, output, report};
use crate::error::{EXIT_ERROR, EXIT_OK};
use crate::ops::diff::{self, Part, Request};

/// Show what changed between two model versions or runs
///
/// Each side is a version (churn@3, churn@production, churn@latest) or a run id (or a
/// unique prefix of 4 or more hex digits). Params, metrics (with deltas and the best
/// point of each series), files (added, removed, modified, renamed), the tensors of
/// changed .safetensors files, the git source, data inputs, parent models and the
/// environment are compared; only what changed is shown unless --all. Files are
/// compared when both sides are versions; a version's params and lineage are its run's.
///
/// Exits 0 whatever differs, like `git diff`; with --exit-code, 1 when something
/// differs. A .safetensors file whose header is malformed is reported in its place,
/// the rest of the diff is printed, and the exit code is 1.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg diff churn@production churn@latest
  mreg diff churn@3 churn@4 --only metrics,tensors
  mreg diff 3f9a0c1e 7b2d4e6f --all
  mreg diff churn@3 churn@4 --md >> \"$GITHUB_STEP_SUMMARY\"
  mreg diff churn@3 churn@4 --json | jq '.metrics[] | select(.verdict == \"worse\")'
  mreg diff churn@production churn@staging --exit-code --only files || echo changed

Metrics whose name has a word like loss, error, latency or ms improve downwards, all
others upwards; [metrics] minimize/maximize in the registry's config.toml overrides
that. docs/diff.md describes the JSON output.")]
pub struct DiffArgs {
    /// The old side: a version (NAME@N, NAME@STAGE, NAME@latest) or a run id
    #[arg(value_name = "OLD")]
    old: String,
    /// The new side: a version or a run id
    #[arg(value_name = "NEW")]
    new: String,
    /// Show unchanged params, metrics, files, tensors and lineage too
    #[arg(long)]
    all: bool,
    /// Print Markdown, for pull-request comments and CI step summaries
    #[arg(long)]
    md: bool,
    /// Exit 1 when anything differs (and 0 when nothing does)
    #[arg(long)]
    exit_code: bool,
    /// Only these sections, comma-separated
    #[arg(long, value_enum, value_delimiter = ',', value_name = "SECTIONS")]
    only: Vec<Part>,
    /// Do not read .safetensors files to compare their tensors
    #[arg(long)]
    no_tensors: bool,
}

/// The sections `--only` names, with the help each shows.
const PARTS: [(Part, &str, &str); 9] = [
    (Part::Params, "params", "Hyperparameters"),
    (Part::Metrics, "metrics", "Final metrics and series"),
    (Part::Files, "files", "Files of the versions"),
    (
        Part::Tensors,
        "tensors",
        "Tensors of changed .safetensors files",
    ),
    (Part::Source, "source", "Git commit, branch, dirty state"),
    (Part::Data, "data", "Data inputs"),
    (Part::Parents, "parents", "Parent models"),
    (
        Part::Environment,
        "environment",
        "Machine, GPUs, container, CI job, lock files",
    ),
    (
        Part::Packages,
        "packages",
        "Python packages: added, removed, changed",
    ),
];

impl ValueEnum for Part {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            Part::Params,
            Part::Metrics,
            Part::Files,
            Part::Tensors,
            Part::Source,
            Part::Data,
            Part::Parents,
            Part::Environment,
            Part::Packages,
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        PARTS
            .iter()
            .find(|(part, ..)| part == self)
            .map(|(_, name, help)| PossibleValue::new(*name).help(*help))
    }
}

/// Runs `mreg diff`.
pub fn run(ctx: &Ctx, args: &DiffArgs) -> Result<u8> {
    report::refuse_md_with_json(ctx, args.md)?;
    let reg = ctx.registry()?;
    let request = Request {
        old: &args.old,
        new: &args.new,
        all: args.all,
        only: &args.only,
        tensors: !args.no_tensors,
    };
    let diffed = diff::diff(&reg, &request, &ctx.out.progress())?;
    let color = ctx.out.stdout_color();
    let shown = report::diff::report(&diffed.diff, &diffed.old, &diffed.new, diffed.files_wanted);
    let printed = if args.md {
        ctx.out.emit(&(), || report::markdown(&shown))
    } else {
        ctx.out
            .emit_painted(&diffed.diff, || report::text(&shown, color))
    };
    output::after_print(printed, || {
        for (path, error) in &diffed.tensor_errors {
            ctx.out
                .warn(&format!("could not compare the tensors of {path}: {error}"));
        }
        if !diffed.tensor_errors.is_empty() {
            return Ok(EXIT_ERROR);
        }
        Ok(if args.exit_code && diffed.diff.differs {
            EXIT_ERROR
        } else {
            EXIT_OK
        })
    })
}
