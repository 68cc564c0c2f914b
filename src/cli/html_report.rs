//! `mreg report`: runs drawn in one self-contained HTML file.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::report::html;
use super::{Ctx, output};
use crate::error::Failure;
use crate::ops::report::{self, RUN_LIMIT};
use crate::ops::runs::{self, Query};
use crate::store::runs as stored;

/// Write an HTML report of runs (their series as charts, params and metrics) or a model
///
/// Given two sides of which one is a version (NAME@REF), the report is their diff, as
/// `mreg diff` shows it (params, metrics, files, the tensors of changed .safetensors
/// files, lineage). Given one name that is no run, the report is the model's: each metric over its
/// versions, the stage history with refusals marked, and per version its run, commit,
/// data hashes and Python environment.
///
/// The file is self-contained (inline CSS and SVG, no script, no network), so it opens
/// from disk on a machine without a network and can be attached to a CI job. Each metric
/// series is a line chart with the runs overlaid and a legend, on a log scale when its
/// values span a decade or more, with each run's best point circled (lower or higher is
/// better by the metric's name, as in `mreg diff`). Long series are drawn from each
/// stretch's lowest and highest points, so no spike is lost and the file stays small.
/// A table gives the runs' params and final metrics, rows that differ highlighted.
/// Runs are named, or selected as `mreg runs` selects them (at most 20). --vega writes
/// the same charts as one Vega-Lite spec with the data inline instead.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg report 3f9a0c1e 7b2e4d10 --out compare.html
  mreg report churn --out churn.html                  # a model: versions and stages
  mreg report churn@3 churn@4 --out diff.html         # a diff, down to the tensors
  mreg report --experiment churn --where 'metrics.acc > 0.8' --limit 5
  mreg report $(mreg runs --json --limit 3 | jq -r '.[].id') --out latest.html
  mreg report --experiment churn --limit 5 --vega --out churn.vl.json   # Vega-Lite")]
pub struct ReportArgs {
    /// Runs to report on (ids or unique prefixes), or one model's name
    #[arg(value_name = "RUN")]
    runs: Vec<String>,
    /// Only runs of this experiment (with --where or alone)
    #[arg(long)]
    experiment: Option<String>,
    /// Select the runs for which EXPR holds, as `mreg runs --where`
    #[arg(long = "where", value_name = "EXPR")]
    filter: Option<String>,
    /// With a selection, its order, as `mreg runs --sort` [default: -start]
    #[arg(long, value_name = "KEY")]
    sort: Option<String>,
    /// With a selection, at most N runs
    #[arg(long, value_name = "N", default_value_t = RUN_LIMIT)]
    limit: usize,
    /// Write the charts as one Vega-Lite spec (JSON, data inline) instead of HTML
    #[arg(long)]
    vega: bool,
    /// The file to write, or /dev/stdout [default: mreg-report.html, with --vega mreg-report.vl.json]
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs `mreg report`.
pub fn run(ctx: &Ctx, args: &ReportArgs) -> Result<()> {
    let selecting = args.filter.is_some() || args.experiment.is_some();
    if selecting && !args.runs.is_empty() {
        return Err(Failure::usage(
            "name runs, or select them with --where/--experiment, not both",
        )
        .hint("mreg report RUN RUN…, or mreg report --where EXPR")
        .into());
    }
    if args.limit > RUN_LIMIT {
        return Err(Failure::usage(format!(
            "--limit {} is more runs than one report overlays ({RUN_LIMIT})",
            args.limit
        ))
        .hint("narrow the selection with --where or --experiment")
        .into());
    }
    let reg = ctx.registry()?;
    let generated = format!(
        "Written by mreg {} at {}.",
        env!("CARGO_PKG_VERSION"),
        crate::clock::format_time(crate::clock::now()?)
    );
    // Two sides, one of them a version: a diff.
    if let [old, new] = args.runs.as_slice()
        && (old.contains('@') || new.contains('@'))
    {
        return diff_report(ctx, &reg, args, (old, new), &generated);
    }
    // One name that is no run: a model.
    if let [name] = args.runs.as_slice()
        && stored::named(&reg, name)?.is_none()
    {
        return model_report(ctx, &reg, args, name, &generated);
    }
    let ids = if selecting {
        let query = Query::parse(
            args.experiment.as_deref(),
            args.filter.as_deref(),
            args.sort.as_deref(),
            Some(args.limit),
            &[],
        )?;
        let selection = runs::select(&reg, &query)?;
        for warning in &selection.warnings {
            ctx.out.warn(warning);
        }
        selection.runs().iter().map(|r| r.id.clone()).collect()
    } else {
        args.runs
            .iter()
            .map(|r| stored::resolve(&reg, r))
            .collect::<Result<Vec<_>>>()?
    };
    let gathered = report::runs(&reg, &ids)?;
    let (page, default) = if args.vega {
        let spec = super::report::vega::spec(&gathered, html::BUCKETS);
        (
            super::report::vega::text(&spec)? + "\n",
            "mreg-report.vl.json",
        )
    } else {
        (html::runs_page(&gathered, &generated)?, "mreg-report.html")
    };
    let what = output::count(gathered.runs.len() as u64, "run");
    let json = serde_json::json!({ "runs": gathered.runs.len() });
    publish(ctx, args, default, &page, &what, json)
}

/// Writes a report's `page` to `--out` (else `default`), says so, and prints its path
/// (with `--json`, `json` plus `path` and `bytes`).
fn publish(
    ctx: &Ctx,
    args: &ReportArgs,
    default: &str,
    page: &str,
    what: &str,
    mut json: serde_json::Value,
) -> Result<()> {
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from(default));
    write(&out, page.as_bytes(), default)?;
    let bytes = output::bytes(page.len() as u64);
    ctx.out.status(&format!(
        "Wrote a report of {what} ({bytes}) to {}.",
        out.display()
    ));
    let path = out.display().to_string();
    json["path"] = path.clone().into();
    json["bytes"] = page.len().into();
    ctx.out.emit(&json, || path.clone())
}

/// Writes the report of a diff of `old` and `new`.
fn diff_report(
    ctx: &Ctx,
    reg: &crate::store::Registry,
    args: &ReportArgs,
    (old, new): (&str, &str),
    generated: &str,
) -> Result<()> {
    if args.vega {
        return Err(Failure::usage("--vega draws runs; a diff's report is HTML")
            .hint(format!("mreg report {old} {new} --out diff.html"))
            .into());
    }
    let request = crate::ops::diff::Request {
        old,
        new,
        all: false,
        only: &[],
        tensors: true,
    };
    let diffed = crate::ops::diff::diff(reg, &request, &ctx.out.progress())?;
    let shown =
        super::report::diff::report(&diffed.diff, &diffed.old, &diffed.new, diffed.files_wanted);
    let page = html::diff_page(&shown, generated);
    let json = serde_json::json!({});
    publish(ctx, args, "mreg-report.html", &page, &shown.title, json)
}

/// Writes the report of the model `name`.
fn model_report(
    ctx: &Ctx,
    reg: &crate::store::Registry,
    args: &ReportArgs,
    name: &str,
    generated: &str,
) -> Result<()> {
    if args.vega {
        return Err(
            Failure::usage("--vega draws runs; a model's report is HTML")
                .hint(format!("mreg report {name} --out {name}.html"))
                .into(),
        );
    }
    let gathered = report::model(reg, name)?;
    super::model::warn_left_out(ctx, &gathered.info.refused);
    let page = html::model_page(&gathered, generated)?;
    let what = format!(
        "{}, {}",
        gathered.model,
        output::count(gathered.versions.len() as u64, "version")
    );
    let json = serde_json::json!({ "model": gathered.model, "versions": gathered.versions.len() });
    publish(ctx, args, "mreg-report.html", &page, &what, json)
}

/// Writes `bytes` to `path` as a shell redirection would, but a file whole or not at all.
///
/// A regular file (or a new one) is written beside itself and renamed into place. A
/// symbolic link is followed, so the link keeps naming its file. A pipe or a device
/// (`/dev/stdout`, `/dev/null`) is written through: a rename would replace it. A folder
/// is refused, with `default` inside it as the hint.
fn write(path: &std::path::Path, bytes: &[u8], default: &str) -> Result<()> {
    let writing = || format!("writing {}", path.display());
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(Failure::error(format!(
                "{} is a folder; --out names the file to write.",
                path.display()
            ))
            .hint(format!("--out {}", path.join(default).display()))
            .into());
        }
        Ok(meta) if !meta.is_file() => {
            let mut through = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(writing)?;
            return std::io::Write::write_all(&mut through, bytes).with_context(writing);
        }
        _ => {}
    }
    let resolved;
    let path = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            resolved = std::fs::canonicalize(path).with_context(writing)?;
            resolved.as_path()
        }
        _ => path,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut temp, bytes)
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt as _;
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .with_context(|| format!("writing {}", path.display()))?;
    temp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
