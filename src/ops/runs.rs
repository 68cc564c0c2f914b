//! Finding runs: a query (`--experiment`, `--where`, `--sort`, `--limit`, columns)
//! checked before the registry is read, then evaluated over the run index.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::diff::Side;
use crate::error::Failure;
use crate::id::RunId;
use crate::manifest::Value;
use crate::manifest::json::json_of_value;
use crate::manifest::value::JsonFloat;
use crate::names;
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

/// A query over the runs, parsed and checked.
pub struct Query {
    /// Only runs of this experiment.
    pub experiment: Option<String>,
    /// Only runs for which this holds.
    pub filter: Option<Expr>,
    /// The order.
    pub sort: SortKey,
    /// At most this many runs.
    pub limit: Option<usize>,
    /// Columns asked for, if any.
    pub columns: Vec<Key>,
}

impl Query {
    /// Parses a query as given on the command line; refuses attributes runs do not have.
    pub fn parse(
        experiment: Option<&str>,
        filter: Option<&str>,
        sort: Option<&str>,
        limit: Option<usize>,
        columns: &[String],
    ) -> Result<Query> {
        let filter = filter.map(Expr::parse).transpose()?;
        let sort = match sort {
            Some(text) => {
                let mut sort = SortKey::parse(text)?;
                sort.key = bare_attribute(text.trim_start_matches(['-', '+']), sort.key);
                sort
            }
            None => SortKey::parse("-attributes.start")?,
        };
        let columns: Vec<Key> = columns
            .iter()
            .filter(|c| !c.trim().is_empty())
            .map(|c| query::parse_key(c.trim()).map(|key| bare_attribute(c.trim(), key)))
            .collect::<Result<_, _>>()?;
        if let Some(filter) = &filter {
            check_attributes(&filter.keys(), "--where")?;
        }
        check_attributes(std::slice::from_ref(&sort.key), "--sort")?;
        check_attributes(&columns, "--columns")?;
        Ok(Query {
            experiment: experiment.map(str::to_owned),
            filter,
            sort,
            limit,
            columns,
        })
    }
}

/// Returns the value of a query key in a run summary.
pub struct Row<'a> {
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
pub fn row<'a>(index: &'a RunIndex, run: &'a RunSummary) -> Row<'a> {
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

/// The runs a query found, in order, with the index they come from.
pub struct Selection {
    /// Every run's summary.
    pub index: RunIndex,
    /// The runs found, as positions in `index.runs`, in the query's order.
    pub found: Vec<usize>,
    /// Runs that cannot be read, and keys no run has.
    pub warnings: Vec<String>,
}

impl Selection {
    /// Returns the runs found, in order.
    pub fn runs(&self) -> Vec<&RunSummary> {
        self.found.iter().map(|&i| &self.index.runs[i]).collect()
    }

    /// Returns the runs found as `--json` prints them.
    pub fn json(&self) -> Vec<JsonRow<'_>> {
        self.runs()
            .into_iter()
            .map(|r| JsonRow::of(&self.index, r))
            .collect()
    }
}

/// Evaluates a query over the registry's runs.
pub fn select(reg: &Registry, query: &Query) -> Result<Selection> {
    let index = runindex::summaries(reg)?;
    let mut warnings: Vec<String> = index
        .broken
        .iter()
        .map(|(id, err)| format!("run {id} cannot be read and is left out: {err}"))
        .collect();
    check_redirect_shape(&index, query)?;
    warnings.extend(unknown_keys(&index, query));
    let all = &index.runs;
    let mut found: Vec<usize> = (0..all.len())
        .filter(|&i| {
            let r = &all[i];
            query
                .experiment
                .as_deref()
                .is_none_or(|e| r.experiment == e)
                && query
                    .filter
                    .as_ref()
                    .is_none_or(|f| f.matches(&row(&index, r)))
        })
        .collect();
    let sort = &query.sort;
    found.sort_by(|&a, &b| {
        let (a, b) = (&all[a], &all[b]);
        let (ka, kb) = (
            row(&index, a).field(&sort.key),
            row(&index, b).field(&sort.key),
        );
        query::compare_for_sort(ka.as_ref(), kb.as_ref(), sort.descending)
            .then_with(|| b.start.cmp(&a.start))
            .then_with(|| a.id.cmp(&b.id))
    });
    if let Some(limit) = query.limit {
        found.truncate(limit);
    }
    Ok(Selection {
        index,
        found,
        warnings,
    })
}

/// Refuses a filter whose last term is a bare key that no run holds a bool under: what
/// the shell leaves of an unquoted `--where acc>0.85` (`acc`, with `>0.85` taken as a
/// redirect of stdout to a file named `0.85`), which would otherwise match nothing in
/// silence.
fn check_redirect_shape(index: &RunIndex, query: &Query) -> Result<(), Failure> {
    let Some(key) = query.filter.as_ref().and_then(Expr::trailing_bare_key) else {
        return Ok(());
    };
    let holds_bool = index
        .runs
        .iter()
        .any(|r| matches!(row(index, r).field(key), Some(Value::Bool(_))));
    if holds_bool {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "--where ends with the bare key {key}, which matches only runs where it is true, and \
         no run has a true/false value there: the rest of the expression was most likely \
         taken by the shell"
    ))
    .hint(
        "quote the whole expression: --where 'acc>0.85' (unquoted, > and < redirect: the \
         shell may have created a file named after the value)",
    ))
}

/// Returns warnings about keys that no run has: a typo in `--where`, `--sort` or
/// `--columns` (with the closest name runs have), or a bare attribute name in `--where`,
/// where bare names mean metrics.
fn unknown_keys(index: &RunIndex, query: &Query) -> Vec<String> {
    let all = &index.runs;
    let mut out = Vec::new();
    if all.is_empty() {
        return out;
    }
    let present = |key: &Key| {
        key.ns == Namespace::Attributes || all.iter().any(|r| row(index, r).field(key).is_some())
    };
    let missing = |key: &Key, flag: &str| {
        let near = names::closest(&key.name, index.names(key.ns))
            .map(|near| Key::new(key.ns, near))
            .or_else(|| {
                [Namespace::Metrics, Namespace::Params, Namespace::Tags]
                    .into_iter()
                    .filter(|ns| *ns != key.ns)
                    .find_map(|ns| {
                        names::closest(&key.name, index.names(ns)).map(|n| Key::new(ns, n))
                    })
            })
            .map(|near| format!("; did you mean {near}?"))
            .unwrap_or_default();
        format!("no run has {key}, so {flag} cannot use it{near}")
    };
    for key in query.filter.as_ref().map(Expr::keys).unwrap_or_default() {
        if present(&key) {
            continue;
        }
        if key.ns == Namespace::Metrics && ATTRIBUTES.contains(&key.name.as_str()) {
            out.push(format!(
                "no run has a metric {0:?}; in --where a bare name is a metric: for the \
                 attribute, write attributes.{0}",
                key.name
            ));
        } else {
            out.push(missing(&key, "--where"));
        }
    }
    let sort = std::iter::once((&query.sort.key, "--sort"));
    for (key, flag) in sort.chain(query.columns.iter().map(|k| (k, "--columns"))) {
        if !present(key) {
            out.push(missing(key, flag));
        }
    }
    out
}

/// One run as `mreg runs --json` prints it.
#[derive(Serialize)]
pub struct JsonRow<'a> {
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
                .map(|(k, v)| (k, json_of_value(v)))
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

/// The most runs `--compare` puts side by side.
pub const MAX_COMPARED: usize = 20;

/// Returns the runs found as sides of a comparison: between 2 and [`MAX_COMPARED`].
pub fn compared(reg: &Registry, selection: &Selection) -> Result<Vec<Side>> {
    let rows = selection.runs();
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
    rows.iter()
        .map(|r| runs::load(reg, &r.id).map(Side::of_run))
        .collect()
}
