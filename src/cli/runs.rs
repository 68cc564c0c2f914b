//! `mreg runs`: list runs as a table, filtered, sorted and with chosen columns.

use anyhow::Result;

use super::report::spark;
use super::{Ctx, output, report};
use crate::ops::diff;
use crate::ops::runs::{self, Query, row};
use crate::query::{Expr, Fields, Key, Namespace, SortKey};
use crate::store::runindex::{RunIndex, RunSummary};

/// How many metric columns the table shows when --columns is not given.
const DEFAULT_METRIC_COLUMNS: usize = 6;

/// List runs: filter with --where, sort, choose columns
///
/// EXPR compares params, metrics, tags and attributes (id, experiment, name, status,
/// start, end, duration, actor, exit_code): `metrics.acc > 0.8 and (params.lr < 0.01
/// or tags.team == "growth") and not params.debug`. A bare name means a metric. A run
/// missing a key fails that comparison; it is never an error, but a key no run has is
/// warned of, with the closest one runs have. An expression ending in a bare key no run
/// holds true/false under is refused as an unquoted redirect (exit 2). Newest runs first unless
/// --sort says otherwise; prefix a key with '-' to sort descending. Missing values sort
/// last. See docs/query.md for the grammar.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg runs
  mreg runs --experiment churn --where 'metrics.acc > 0.8 and params.lr < 0.01' --sort -metrics.acc
  mreg runs --where 'attributes.status == \"failed\"' --limit 5
  mreg runs --columns params.lr,acc,f1 --sort -acc
  mreg runs --experiment churn --columns params.lr,acc,series.loss   # loss curves drawn
  mreg runs --where 'acc > 0.85' --json | jq -r '.[0].id'
  mreg runs --experiment churn --sort -acc --limit 4 --compare

Quote the expression: in a shell, > and < redirect.")]
pub struct RunsArgs {
    /// Only runs of this experiment
    #[arg(long)]
    experiment: Option<String>,
    /// Only runs for which EXPR holds
    #[arg(long = "where", value_name = "EXPR")]
    filter: Option<String>,
    /// Sort by this key ('-' in front for descending); bare attribute names work here:
    /// start, duration, status, name… [default: -start]
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    sort: Option<String>,
    /// Show at most N runs
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Columns after the id, comma-separated keys: params.lr,acc,tags.team,status (bare
    /// attribute names mean attributes here); series.KEY draws that metric series
    /// (series.loss), after the other columns
    #[arg(long, value_name = "KEYS", value_delimiter = ',')]
    columns: Vec<String>,
    /// Compare the runs found instead of listing them: a column per run (at most 20),
    /// a row per param and metric that differs, the best value of each metric marked
    #[arg(long, conflicts_with = "columns")]
    compare: bool,
}

/// Runs `mreg runs`.
pub fn run(ctx: &Ctx, args: &RunsArgs) -> Result<()> {
    // A listing that left out runs it cannot read is not complete: it exits 1, after it.
    match list(ctx, args)? {
        0 => Ok(()),
        broken => Err(crate::error::Failure::error(format!(
            "{} cannot be read and {} left out",
            output::count(broken as u64, "run"),
            if broken == 1 { "was" } else { "were" }
        ))
        .hint("`mreg fsck` names what is wrong with each")
        .into()),
    }
}

/// Lists the runs a query finds; returns how many runs could not be read.
fn list(ctx: &Ctx, args: &RunsArgs) -> Result<usize> {
    // `series.KEY` columns are drawn, not queried.
    let (curves, keys): (Vec<&String>, Vec<&String>) = args
        .columns
        .iter()
        .partition(|c| c.trim().starts_with("series."));
    let keys: Vec<String> = keys.into_iter().cloned().collect();
    let curves: Vec<String> = curves
        .iter()
        .map(|c| c.trim()["series.".len()..].to_owned())
        .collect();
    let query = Query::parse(
        args.experiment.as_deref(),
        args.filter.as_deref(),
        args.sort.as_deref(),
        args.limit,
        &keys,
    )?;
    let reg = ctx.registry()?;
    let selection = runs::select(&reg, &query)?;
    let broken = selection.index.broken.len();
    for warning in &selection.warnings {
        ctx.out.warn(warning);
    }
    if selection.index.removed > 0 {
        ctx.out.status(&format!(
            "Not listed, as they were removed: {}. `mreg show RUN` says when and by whom.",
            crate::cli::output::count(selection.index.removed as u64, "run")
        ));
    }
    if args.compare {
        let sides = runs::compared(&reg, &selection)?;
        let compared = diff::compare(&reg, &sides, false)?;
        report::compare::print(ctx, &reg, &compared, &sides, false, false)?;
        return Ok(broken);
    }
    if ctx.out.is_json() {
        ctx.out.emit(&selection.json(), String::new)?;
        return Ok(broken);
    }
    let rows = selection.runs();
    let index = &selection.index;
    if rows.is_empty() {
        none_found(ctx, index, args.experiment.as_deref());
        return Ok(broken);
    }
    let (columns, hidden) = if query.columns.is_empty() {
        default_columns(index, &rows, query.filter.as_ref(), &query.sort)
    } else {
        (query.columns.clone(), 0)
    };
    let drawn = draw_curves(ctx, &reg, &rows, &curves);
    ctx.out
        .emit(&(), || table(index, &rows, &columns, &drawn))?;
    if hidden > 0 {
        ctx.out.status(&format!(
            "{} not shown; choose columns with --columns.",
            output::count(hidden as u64, "more metric")
        ));
    }
    Ok(broken)
}

/// Says why no run is listed: there are none, the experiment has none, or none match.
fn none_found(ctx: &Ctx, index: &RunIndex, experiment: Option<&str>) {
    let all = &index.runs;
    if all.is_empty() {
        ctx.out
            .status("No runs yet; `mreg run -- COMMAND` or `mreg push` records one.");
    } else if let Some(experiment) = experiment.filter(|e| !all.iter().any(|r| r.experiment == *e))
    {
        let mut known: Vec<&str> = all.iter().map(|r| r.experiment.as_str()).collect();
        known.sort_unstable();
        known.dedup();
        ctx.out.status(&format!(
            "No run is in experiment {experiment:?}; experiments: {}.",
            known.join(", ")
        ));
    } else {
        ctx.out.status("No runs match.");
    }
}

/// Returns the columns shown without --columns: the usual attributes, the keys the
/// query and sort use, then the runs' metrics, and how many metrics did not fit.
fn default_columns(
    index: &RunIndex,
    rows: &[&RunSummary],
    filter: Option<&Expr>,
    sort: &SortKey,
) -> (Vec<Key>, usize) {
    let attr = |name: &str| Key {
        ns: Namespace::Attributes,
        name: name.to_owned(),
    };
    let mut columns: Vec<Key> = ["experiment", "name", "status", "start", "duration"]
        .into_iter()
        .map(attr)
        .collect();
    let add = |key: Key, columns: &mut Vec<Key>| {
        let is_id = key.ns == Namespace::Attributes && key.name == "id";
        if !is_id && !columns.contains(&key) {
            columns.push(key);
        }
    };
    for key in filter.map(Expr::keys).unwrap_or_default() {
        add(key, &mut columns);
    }
    add(sort.key.clone(), &mut columns);
    let mut metrics: Vec<&str> = rows
        .iter()
        .flat_map(|r| index.metrics_of(r).map(|(k, _)| k))
        .collect();
    metrics.sort_unstable();
    metrics.dedup();
    let mut shown = columns
        .iter()
        .filter(|k| k.ns == Namespace::Metrics)
        .count();
    let mut hidden = 0;
    for name in metrics {
        let key = Key {
            ns: Namespace::Metrics,
            name: name.to_owned(),
        };
        if columns.contains(&key) {
            continue;
        }
        if shown < DEFAULT_METRIC_COLUMNS {
            columns.push(key);
            shown += 1;
        } else {
            hidden += 1;
        }
    }
    (columns, hidden)
}

/// Returns an RFC 3339 time without its fraction of a second: `2026-01-02T03:04:05Z`.
fn to_seconds(time: &str) -> String {
    match time.split_once('.') {
        Some((whole, _)) => format!("{whole}Z"),
        None => time.to_owned(),
    }
}

/// Returns the column header of a key: metrics bare, others with their namespace.
fn header(key: &Key) -> String {
    match key.ns {
        Namespace::Attributes => key.name.to_uppercase(),
        Namespace::Metrics => key.name.clone(),
        _ => key.to_string(),
    }
}

/// Returns each `series.KEY` column: its header and each listed run's drawing of that
/// series (blank where the run has none); warns of a series no listed run has.
fn draw_curves(
    ctx: &Ctx,
    reg: &crate::store::Registry,
    rows: &[&RunSummary],
    curves: &[String],
) -> Vec<(String, Vec<String>)> {
    if curves.is_empty() {
        return Vec::new();
    }
    let mut budget = crate::store::runs::SeriesBudget::new();
    let records: Vec<Option<crate::manifest::RunRecord>> = rows
        .iter()
        .map(|r| crate::store::runs::load(reg, &r.id).ok())
        .collect();
    curves
        .iter()
        .map(|name| {
            let cells: Vec<String> = records
                .iter()
                .map(|record| {
                    record
                        .as_ref()
                        .and_then(|r| r.series.get(name))
                        .and_then(|s| {
                            crate::store::runs::load_points(reg, &s.chunk, &mut budget).ok()
                        })
                        .map(|points| {
                            let values: Vec<f64> = points.iter().map(|p| p.1).collect();
                            spark::sparkline(&values, CURVE_WIDTH, ctx.out.unicode())
                        })
                        .unwrap_or_default()
                })
                .collect();
            if cells.iter().all(String::is_empty) {
                ctx.out.warn(&format!(
                    "no run listed has a series {name:?}, so --columns cannot draw it"
                ));
            }
            (format!("series.{name}"), cells)
        })
        .collect()
}

/// How wide a series column is drawn.
const CURVE_WIDTH: usize = 16;

fn table(
    index: &RunIndex,
    rows: &[&RunSummary],
    columns: &[Key],
    drawn: &[(String, Vec<String>)],
) -> String {
    let mut headers = vec!["ID".to_owned()];
    headers.extend(columns.iter().map(header));
    headers.extend(drawn.iter().map(|(h, _)| h.clone()));
    let cells = rows
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let mut line = vec![run.id.short().to_owned()];
            for key in columns {
                line.push(cell(index, run, key));
            }
            for (_, cells) in drawn {
                line.push(cells[i].clone());
            }
            line
        })
        .collect();
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    output::table(&refs, cells)
}

fn cell(index: &RunIndex, run: &RunSummary, key: &Key) -> String {
    if key.ns == Namespace::Attributes && key.name == "duration" {
        return run.duration_s.map(output::seconds).unwrap_or_default();
    }
    if key.ns == Namespace::Attributes && (key.name == "start" || key.name == "end") {
        // Whole seconds read better in a table; the record keeps milliseconds.
        let time = if key.name == "start" {
            Some(run.start.as_str())
        } else {
            run.end.as_deref()
        };
        return time.map(to_seconds).unwrap_or_default();
    }
    row(index, run)
        .field(key)
        .map(|v| v.to_string())
        .unwrap_or_default()
}
