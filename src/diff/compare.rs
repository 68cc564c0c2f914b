//! Many sides side by side: a column per run or version and a row per param and
//! metric, each metric's best value marked.

use std::collections::BTreeSet;

use serde::Serialize;

use super::values::same_value;
use super::{Goal, Goals, Side, SideInfo};
use crate::manifest::Value;

/// Returns which part of a run a row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    /// A hyperparameter.
    Params,
    /// A final metric.
    Metrics,
}

/// Returns one param or metric across every side.
#[derive(Debug, Clone, Serialize)]
pub struct CompareRow {
    /// Params or metrics.
    pub section: Section,
    /// The key's name.
    pub key: String,
    /// One value per column, in column order; `null` where a side lacks the key.
    #[serde(serialize_with = "serialize_values")]
    pub values: Vec<Option<Value>>,
    /// Whether every side has the same value (and every side has one).
    pub same: bool,
    /// For metrics, which way they improve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goal: Option<Goal>,
    /// For metrics, the columns (from 0) holding the best value; empty when all are
    /// equal or no side has one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub best: Vec<usize>,
}

/// Returns the comparison table.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// One per side, in the order given.
    pub columns: Vec<SideInfo>,
    /// Params sorted by name, then metrics sorted by name.
    pub rows: Vec<CompareRow>,
}

impl Table {
    /// Drops the rows where every side has the same value.
    pub fn retain_changed(&mut self) {
        self.rows.retain(|r| !r.same);
    }
}

/// Returns the table comparing `sides`, every row included.
pub fn compare(sides: &[Side], goals: &Goals) -> Table {
    let params: Vec<_> = sides.iter().map(Side::params).collect();
    let metrics: Vec<_> = sides.iter().map(Side::metrics).collect();
    let mut rows = Vec::new();
    let param_keys: BTreeSet<&String> = params.iter().flat_map(|p| p.keys()).collect();
    for key in param_keys {
        let values: Vec<Option<Value>> = params.iter().map(|p| p.get(key).cloned()).collect();
        rows.push(CompareRow {
            section: Section::Params,
            key: key.clone(),
            same: all_same(&values),
            values,
            goal: None,
            best: Vec::new(),
        });
    }
    let metric_keys: BTreeSet<&String> = metrics.iter().flat_map(|m| m.keys()).collect();
    for key in metric_keys {
        let goal = goals.of(key);
        let numbers: Vec<Option<f64>> = metrics.iter().map(|m| m.get(key).copied()).collect();
        let values: Vec<Option<Value>> = numbers.iter().map(|n| n.map(Value::Float)).collect();
        let same = all_same(&values);
        rows.push(CompareRow {
            section: Section::Metrics,
            key: key.clone(),
            best: if same {
                Vec::new()
            } else {
                best(&numbers, goal)
            },
            same,
            values,
            goal: Some(goal),
        });
    }
    Table {
        columns: sides.iter().map(Side::info).collect(),
        rows,
    }
}

/// Returns whether every value is present and the same.
fn all_same(values: &[Option<Value>]) -> bool {
    match values.first() {
        Some(Some(first)) => values
            .iter()
            .all(|v| v.as_ref().is_some_and(|v| same_value(v, first))),
        _ => values.is_empty(),
    }
}

/// Returns the columns holding the best value for `goal`; NaN is never best, and with
/// fewer than two values to rank there is no best.
fn best(numbers: &[Option<f64>], goal: Goal) -> Vec<usize> {
    if numbers.iter().flatten().filter(|x| !x.is_nan()).count() < 2 {
        return Vec::new();
    }
    let top = numbers
        .iter()
        .flatten()
        .copied()
        .filter(|x| !x.is_nan())
        .reduce(|a, b| if goal.better(b, a) { b } else { a });
    let Some(top) = top else {
        return Vec::new();
    };
    numbers
        .iter()
        .enumerate()
        .filter(|(_, n)| **n == Some(top))
        .map(|(i, _)| i)
        .collect()
}

fn serialize_values<S: serde::Serializer>(
    values: &[Option<Value>],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    struct One<'a>(&'a Option<Value>);
    impl Serialize for One<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            super::serialize_value(self.0, s)
        }
    }
    let mut seq = s.serialize_seq(Some(values.len()))?;
    for v in values {
        seq.serialize_element(&One(v))?;
    }
    seq.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_marks_every_column_with_the_top_value() {
        assert_eq!(
            best(&[Some(0.8), Some(0.9), None, Some(0.9)], Goal::Max),
            [1, 3]
        );
        assert_eq!(
            best(&[Some(0.8), Some(f64::NAN), Some(0.5)], Goal::Min),
            [2]
        );
        assert!(best(&[None, Some(f64::NAN)], Goal::Max).is_empty());
        assert!(
            best(&[None, Some(0.5)], Goal::Max).is_empty(),
            "one value ranks nothing"
        );
    }

    #[test]
    fn a_missing_value_makes_a_row_differ() {
        let v = |x: f64| Some(Value::Float(x));
        assert!(all_same(&[v(1.0), v(1.0)]));
        assert!(!all_same(&[v(1.0), None]));
        assert!(!all_same(&[None, None]));
        assert!(all_same(&[v(f64::NAN), v(f64::NAN)]));
    }
}
