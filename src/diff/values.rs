//! Params and metrics of two sides, key by key: old and new values, deltas, and the best
//! point of each metric series.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{Change, Goal, Goals, Side};
use crate::manifest::Value;
use crate::manifest::series::Series;
use crate::manifest::value::JsonFloat;

/// Returns one param: its value on each side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueRow {
    /// The param's name.
    pub key: String,
    /// How it changed.
    pub change: Change,
    /// The old side's value.
    #[serde(serialize_with = "super::serialize_value")]
    pub old: Option<Value>,
    /// The new side's value.
    #[serde(serialize_with = "super::serialize_value")]
    pub new: Option<Value>,
}

/// Returns whether a metric got better or worse, by its goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The new value is better.
    Better,
    /// The new value is worse.
    Worse,
    /// Neither is better: the values are equal.
    Equal,
}

/// Returns the best point of a metric's series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SeriesBest {
    /// Points logged.
    pub count: u64,
    /// The best value, by the metric's goal (NaN is never best).
    pub best: JsonFloat,
    /// The step at which it was first reached.
    pub step: i64,
    /// The highest step logged.
    pub last_step: i64,
}

impl SeriesBest {
    /// Returns the best point of `series` for `goal`, if it has a value that is not NaN.
    pub fn of(series: &Series, goal: Goal) -> Option<SeriesBest> {
        let (best, step) = match goal {
            Goal::Max => (series.max?, series.max_step?),
            Goal::Min => (series.min?, series.min_step?),
        };
        Some(SeriesBest {
            count: series.count,
            best: JsonFloat(best),
            step,
            last_step: series.last_step,
        })
    }
}

/// Returns one metric: final values, deltas, and series bests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricRow {
    /// The metric's name.
    pub key: String,
    /// How its final value changed.
    pub change: Change,
    /// The old side's final value.
    pub old: Option<JsonFloat>,
    /// The new side's final value.
    pub new: Option<JsonFloat>,
    /// `new - old`, when both are finite.
    pub delta: Option<JsonFloat>,
    /// `(new - old) / |old|`, when both are finite and old is not 0.
    pub relative: Option<JsonFloat>,
    /// Which way the metric improves.
    pub goal: Goal,
    /// Whether the new value is better, when both sides have one and neither is NaN.
    pub verdict: Option<Verdict>,
    /// The best point of the old side's series, when it has one.
    pub old_series: Option<SeriesBest>,
    /// The best point of the new side's series, when it has one.
    pub new_series: Option<SeriesBest>,
}

/// Returns whether two floats are the same value: equal, or both NaN.
#[allow(
    clippy::float_cmp,
    reason = "a recorded value either changed or it did not"
)]
pub fn same_float(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Returns whether two typed values are the same; NaN is the same as NaN.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => same_float(*x, *y),
        _ => a == b,
    }
}

/// Returns a row per param of either side, sorted by name.
pub fn params(old: &BTreeMap<String, Value>, new: &BTreeMap<String, Value>) -> Vec<ValueRow> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .map(|key| {
            let (a, b) = (old.get(key), new.get(key));
            let change = match (a, b) {
                (Some(x), Some(y)) if same_value(x, y) => Change::Same,
                (Some(_), Some(_)) => Change::Changed,
                _ => Change::of(a, b),
            };
            ValueRow {
                key: key.clone(),
                change,
                old: a.cloned(),
                new: b.cloned(),
            }
        })
        .collect()
}

/// Returns a row per metric of either side (final values or series), sorted by name.
pub fn metrics(old: &Side, new: &Side, goals: &Goals) -> Vec<MetricRow> {
    let (old_values, new_values) = (old.metrics(), new.metrics());
    let (old_series, new_series) = (old.series(), new.series());
    let keys: BTreeSet<&String> = old_values
        .keys()
        .chain(new_values.keys())
        .chain(old_series.keys())
        .chain(new_series.keys())
        .collect();
    keys.into_iter()
        .map(|key| {
            let goal = goals.of(key);
            let (a, b) = (old_values.get(key).copied(), new_values.get(key).copied());
            metric_row(
                key,
                goal,
                (a, b),
                (
                    old_series.get(key).and_then(|s| SeriesBest::of(s, goal)),
                    new_series.get(key).and_then(|s| SeriesBest::of(s, goal)),
                ),
            )
        })
        .collect()
}

fn metric_row(
    key: &str,
    goal: Goal,
    (a, b): (Option<f64>, Option<f64>),
    (old_series, new_series): (Option<SeriesBest>, Option<SeriesBest>),
) -> MetricRow {
    let change = match (a, b) {
        (Some(x), Some(y)) if same_float(x, y) => Change::Same,
        (Some(_), Some(_)) => Change::Changed,
        (None, Some(_)) => Change::Added,
        (Some(_), None) => Change::Removed,
        (None, None) => Change::Same,
    };
    let both = a.zip(b).filter(|(x, y)| x.is_finite() && y.is_finite());
    let delta = both.map(|(x, y)| y - x);
    let relative = both
        .filter(|(x, _)| *x != 0.0)
        .map(|(x, y)| (y - x) / x.abs());
    // NaN is neither better nor worse than anything: no verdict.
    let verdict = a
        .zip(b)
        .filter(|(x, y)| !x.is_nan() && !y.is_nan())
        .map(|(x, y)| {
            if goal.better(y, x) {
                Verdict::Better
            } else if goal.better(x, y) {
                Verdict::Worse
            } else {
                Verdict::Equal
            }
        });
    MetricRow {
        key: key.to_owned(),
        change,
        old: a.map(JsonFloat),
        new: b.map(JsonFloat),
        delta: delta.map(JsonFloat),
        relative: relative.map(JsonFloat),
        goal,
        verdict,
        old_series,
        new_series,
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn params_are_added_removed_changed_or_same() {
        let old: BTreeMap<String, Value> = [
            ("lr".to_owned(), Value::Float(0.001)),
            ("epochs".to_owned(), Value::Int(3)),
            ("nan".to_owned(), Value::Float(f64::NAN)),
            ("gone".to_owned(), Value::Bool(true)),
        ]
        .into();
        let new: BTreeMap<String, Value> = [
            ("lr".to_owned(), Value::Float(0.002)),
            ("epochs".to_owned(), Value::Float(3.0)),
            ("nan".to_owned(), Value::Float(f64::NAN)),
            ("new".to_owned(), Value::Str("x".into())),
        ]
        .into();
        let rows = params(&old, &new);
        let changes: Vec<(&str, Change)> =
            rows.iter().map(|r| (r.key.as_str(), r.change)).collect();
        assert_eq!(
            changes,
            [
                ("epochs", Change::Changed),
                ("gone", Change::Removed),
                ("lr", Change::Changed),
                ("nan", Change::Same),
                ("new", Change::Added),
            ]
        );
    }

    #[test]
    fn metric_deltas_and_verdicts_follow_the_goal() {
        let row = metric_row("loss", Goal::Min, (Some(0.5), Some(0.4)), (None, None));
        assert_eq!(row.change, Change::Changed);
        assert!((row.delta.unwrap().0 + 0.1).abs() < 1e-12);
        assert!((row.relative.unwrap().0 + 0.2).abs() < 1e-12);
        assert_eq!(row.verdict, Some(Verdict::Better));

        let row = metric_row("acc", Goal::Max, (Some(0.0), Some(0.4)), (None, None));
        assert_eq!(row.relative, None, "no relative change from 0");
        assert_eq!(row.verdict, Some(Verdict::Better));

        let row = metric_row("acc", Goal::Max, (Some(0.9), Some(f64::NAN)), (None, None));
        assert_eq!(
            (row.change, row.delta, row.verdict),
            (Change::Changed, None, None)
        );

        let row = metric_row("acc", Goal::Max, (None, Some(0.9)), (None, None));
        assert_eq!((row.change, row.verdict), (Change::Added, None));
    }

    #[test]
    fn series_best_depends_on_the_goal() {
        let series = Series {
            count: 3,
            last_step: 30,
            last: 0.5,
            min: Some(0.2),
            min_step: Some(20),
            max: Some(0.9),
            max_step: Some(10),
            ..Series::default()
        };
        let min = SeriesBest::of(&series, Goal::Min).unwrap();
        assert_eq!((min.best.0, min.step, min.last_step), (0.2, 20, 30));
        let max = SeriesBest::of(&series, Goal::Max).unwrap();
        assert_eq!((max.best.0, max.step), (0.9, 10));
        assert!(SeriesBest::of(&Series::default(), Goal::Max).is_none());
    }
}
