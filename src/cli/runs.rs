//! `mreg runs`: list runs as a table, filtered, sorted and with chosen columns.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, compare, output};
use crate::diff::Side;
use crate::error::Failure;
use crate::manifest::value::JsonFloat;
use crate::manifest::{RunId, Value};
use crate::query::{self, Expr, Fields, Key, Namespace, SortKey};
use crate::store::runindex::{self, RunIndex, RunSummary};
use crate::store::{Registry, runs};

/// Attribute names a query may use, with what they hold.
pub const ATTRIBUTES: [&str; 9] = [
    "id",
    "experiment",
    "name",
    "status",
    "start",
    "end",
    "duration",
    "actor",
    "exit_code",
];

/// How many metric columns the table shows when --columns is not given.
const DEFAULT_METRIC_COLUMNS: usize = 6;

/// List runs: filter with --where, sort, choose columns
///
/// EXPR compares params, metrics, tags and attributes (id, experiment, name, status,
/// start, end, duration, actor, exit_code): `metrics.acc > 0.8 and (params.lr < 0.01
/// or tags.team == "growth") and not params.debug`. A bare name means a metric. A run
/// missing a key fails that comparison; it is never an error. Newest runs first unless
/// --sort says otherwise; prefix a key with '-' to sort descending. Missing values sort
/// last. See docs/query.md for the grammar.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg runs
  mreg runs --experiment churn --where 'metrics.acc > 0.8 and params.lr < 0.01' --sort -metrics.acc
  mreg runs --where 'attributes.status == \"failed\"' --limit 5
  mreg runs --columns params.lr,acc,f1 --sort -acc
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
    /// attribute names mean attributes here)
    #[arg(long, value_name = "KEYS", value_delimiter = ',')]
    columns: Vec<String>,
    /// Compare the runs found instead of listing them: a column per run (at most 20),
    /// a row per param and metric that differs, the best value of each metric marked
    #[arg(long, conflicts_with = "columns")]
    compare: bool,
}

/// The most runs `--compare` puts side by side.
const MAX_COMPARED: usize = 20;

/// Returns the value of a query key in a run summary.
struct Row<'a> {
    index: &'a RunIndex,
    run: &'a RunSummary,
}

impl Fields for Row<'_> {
    fn field(&self, key: &Key) -> Option<Value> {
        let (index, run) = (self.index, self.run);
        match key.ns {
            Namespace::Params => index.param(run, &key.name).cloned(),
            Namespace::Metrics => index.metric(run, &key.name).map(Value::Float),
            Namespace::Tags => index.tag(run, &key.name).map(|v| Value::Str(v.to_owned())),
            Namespace::Attributes => attribute(run, &key.name),
        }
    }
}

/// Returns the row of a run, to look its keys up.
fn row<'a>(index: &'a RunIndex, run: &'a RunSummary) -> Row<'a> {
    Row { index, run }
}

fn attribute(run: &RunSummary, name: &str) -> Option<Value> {
    let text = |s: &str| Some(Value::Str(s.to_owned()));
    match name {
        "id" => text(run.id.as_str()),
        "experiment" => text(&run.experiment),
        "name" => run.name.as_deref().and_then(text),
        "status" => text(run.status.as_str()),
        "start" => text(&run.start),
        "end" => run.end.as_deref().and_then(text),
        "duration" => run.duration_s.map(Value::Float),
        "actor" => text(&run.actor),
        "exit_code" => run.exit_code.map(|c| Value::Int(i64::from(c))),
        _ => None,
    }
}

/// Returns the attribute a bare name in `--sort` or `--columns` means (`start`,
/// `status`), or the key as parsed. In `--where` a bare name is always a metric.
fn bare_attribute(text: &str, key: Key) -> Key {
    let bare = !text.contains('.') && !text.starts_with('`');
    if bare && key.ns == Namespace::Metrics && ATTRIBUTES.contains(&key.name.as_str()) {
        Key {
            ns: Namespace::Attributes,
            name: key.name,
        }
    } else {
        key
    }
}

/// Refuses attribute names that no run has, which would otherwise silently match nothing.
fn check_attributes(keys: &[Key], what: &str) -> Result<(), Failure> {
    for key in keys {
        if key.ns == Namespace::Attributes && !ATTRIBUTES.contains(&key.name.as_str()) {
            return Err(Failure::usage(format!(
                "{what} names attributes.{}, which runs do not have",
                key.name
            ))
            .hint(format!("attributes are: {}", ATTRIBUTES.join(", "))));
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonRow<'a> {
    id: &'a RunId,
    experiment: &'a str,
    name: Option<&'a str>,
    status: &'static str,
    start: &'a str,
    end: Option<&'a str>,
    duration_s: Option<f64>,
    actor: &'a str,
    exit_code: Option<i32>,
    params: BTreeMap<&'a str, serde_json::Value>,
    metrics: BTreeMap<&'a str, JsonFloat>,
    tags: BTreeMap<&'a str, &'a str>,
    outputs: &'a [String],
}

impl<'a> JsonRow<'a> {
    fn of(index: &'a RunIndex, run: &'a RunSummary) -> JsonRow<'a> {
        JsonRow {
            id: &run.id,
            experiment: &run.experiment,
            name: run.name.as_deref(),
            status: run.status.as_str(),
            start: &run.start,
            end: run.end.as_deref(),
            duration_s: run.duration_s,
            actor: &run.actor,
            exit_code: run.exit_code,
            params: index
                .params_of(run)
                .map(|(k, v)| (k, output::json_of_value(v)))
                .collect(),
            metrics: index
                .metrics_of(run)
                .map(|(k, v)| (k, JsonFloat(v)))
                .collect(),
            tags: index.tags_of(run).collect(),
            outputs: &run.outputs,
        }
    }
}

/// Runs `mreg runs`.
pub fn run(ctx: &Ctx, args: &RunsArgs) -> Result<()> {
    let filter = args.filter.as_deref().map(Expr::parse).transpose()?;
    let sort = match args.sort.as_deref() {
        Some(text) => {
            let mut sort = SortKey::parse(text)?;
            sort.key = bare_attribute(text.trim_start_matches(['-', '+']), sort.key);
            sort
        }
        None => SortKey::parse("-attributes.start")?,
    };
    let columns: Vec<Key> = args
        .columns
        .iter()
        .filter(|c| !c.trim().is_empty())
        .map(|c| query::parse_key(c.trim()).map(|key| bare_attribute(c.trim(), key)))
        .collect::<Result<_, _>>()?;
    if let Some(filter) = &filter {
        check_attributes(&filter.keys(), "--where")?;
    }
    check_attributes(std::slice::from_ref(&sort.key), "--sort")?;
    check_attributes(&columns, "--columns")?;

    let reg = ctx.registry()?;
    let index = runindex::summaries(&reg)?;
    let all = &index.runs;
    for (id, err) in &index.broken {
        ctx.out
            .warn(&format!("run {id} cannot be read and is left out: {err}"));
    }
    warn_unknown_keys(ctx, &index, filter.as_ref(), &sort, &columns);
    let mut rows: Vec<&RunSummary> = all
        .iter()
        .filter(|r| args.experiment.as_deref().is_none_or(|e| r.experiment == e))
        .filter(|r| filter.as_ref().is_none_or(|f| f.matches(&row(&index, r))))
        .collect();
    rows.sort_by(|a, b| {
        let (ka, kb) = (
            row(&index, a).field(&sort.key),
            row(&index, b).field(&sort.key),
        );
        query::compare_for_sort(ka.as_ref(), kb.as_ref(), sort.descending)
            .then_with(|| b.start.cmp(&a.start))
            .then_with(|| a.id.cmp(&b.id))
    });
    if let Some(limit) = args.limit {
        rows.truncate(limit);
    }
    if args.compare {
        return compare_runs(ctx, &reg, &rows);
    }
    if ctx.out.is_json() {
        let json: Vec<JsonRow> = rows.iter().map(|r| JsonRow::of(&index, r)).collect();
        return ctx.out.emit(&json, String::new);
    }
    if rows.is_empty() {
        if all.is_empty() {
            ctx.out
                .status("No runs yet; `mreg run -- COMMAND` or `mreg push` records one.");
        } else if let Some(experiment) = args
            .experiment
            .as_deref()
            .filter(|e| !all.iter().any(|r| r.experiment == *e))
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
        return Ok(());
    }
    let (columns, hidden) = if columns.is_empty() {
        default_columns(&index, &rows, filter.as_ref(), &sort)
    } else {
        (columns, 0)
    };
    ctx.out.emit(&(), || table(&index, &rows, &columns))?;
    if hidden > 0 {
        ctx.out.status(&format!(
            "{} not shown; choose columns with --columns.",
            output::count(hidden as u64, "more metric")
        ));
    }
    Ok(())
}

/// Prints the compare table of the runs found.
fn compare_runs(ctx: &Ctx, reg: &Registry, rows: &[&RunSummary]) -> Result<()> {
    if rows.len() < 2 {
        return Err(Failure::usage(format!(
            "--compare needs at least 2 runs; {} matched",
            rows.len()
        ))
        .hint("widen --where or --experiment; `mreg runs` lists every run")
        .into());
    }
    if rows.len() > MAX_COMPARED {
        return Err(Failure::usage(format!(
            "{} runs match, and --compare puts at most {MAX_COMPARED} side by side",
            rows.len()
        ))
        .hint(format!(
            "narrow them with --where or --experiment, or take the first with --limit {MAX_COMPARED}"
        ))
        .into());
    }
    let sides = rows
        .iter()
        .map(|r| runs::load(reg, &r.id).map(Side::of_run))
        .collect::<Result<Vec<_>>>()?;
    compare::print(ctx, reg, &sides, false, false)?;
    Ok(())
}

/// Warns about keys that no run has: a typo in `--sort` or `--columns`, or a bare
/// attribute name in `--where`, where bare names mean metrics.
fn warn_unknown_keys(
    ctx: &Ctx,
    index: &RunIndex,
    filter: Option<&Expr>,
    sort: &SortKey,
    columns: &[Key],
) {
    let all = &index.runs;
    if all.is_empty() {
        return;
    }
    let present = |key: &Key| {
        key.ns == Namespace::Attributes || all.iter().any(|r| row(index, r).field(key).is_some())
    };
    for key in filter.map(Expr::keys).unwrap_or_default() {
        if key.ns == Namespace::Metrics && ATTRIBUTES.contains(&key.name.as_str()) && !present(&key)
        {
            ctx.out.warn(&format!(
                "no run has a metric {0:?}; in --where a bare name is a metric: for the \
                 attribute, write attributes.{0}",
                key.name
            ));
        }
    }
    for key in std::iter::once(&sort.key).chain(columns) {
        if !present(key) {
            ctx.out.warn(&format!(
                "no run has {key}; check the key's spelling and namespace"
            ));
        }
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

fn table(index: &RunIndex, rows: &[&RunSummary], columns: &[Key]) -> String {
    let mut headers = vec!["ID".to_owned()];
    headers.extend(columns.iter().map(header));
    let cells = rows
        .iter()
        .map(|run| {
            let mut line = vec![run.id.short().to_owned()];
            for key in columns {
                line.push(cell(index, run, key));
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
