//! The run index: a local cache of every run's queryable summary, so that
//! `mreg runs --where … --sort …` over thousands of runs reads one file.
//!
//! An entry is keyed by the stamp of the run's `log/` folder (which changes whenever
//! an event is added) and trusted only when that stamp is safely older than the moment
//! the entry was made, as the stat cache does for files. Losing the index only costs
//! time: every run is folded again from its record and events.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::statcache::Stamp;
use super::{Registry, atomic, runs};
use crate::manifest::run::{ModelLink, Status};
use crate::manifest::{RunId, RunRecord, Value};

const FORMAT: u32 = 1;

/// Returns what a run table and a query need of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run's id.
    pub id: RunId,
    /// Its experiment.
    pub experiment: String,
    /// Its name, if given.
    pub name: Option<String>,
    /// Where it stands.
    pub status: Status,
    /// Start time, RFC 3339.
    pub start: String,
    /// End time, once ended.
    pub end: Option<String>,
    /// Seconds from start to end, once ended.
    pub duration_s: Option<f64>,
    /// Who started it.
    pub actor: String,
    /// The command's exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Params, typed.
    #[serde(with = "tagged_values")]
    pub params: BTreeMap<String, Value>,
    /// Final metrics.
    #[serde(with = "json_floats")]
    pub metrics: BTreeMap<String, f64>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Versions pushed from it, as `NAME@N`.
    pub outputs: Vec<String>,
}

impl RunSummary {
    /// Returns the summary of a folded run record.
    pub fn of(record: &RunRecord) -> RunSummary {
        RunSummary {
            id: record.id.clone(),
            experiment: record.experiment.clone(),
            name: record.name.clone(),
            status: record.status,
            start: record.start.clone(),
            end: record.end.as_ref().map(|e| e.time.clone()),
            duration_s: record.duration_s(),
            actor: record.actor.clone(),
            exit_code: record.end.as_ref().and_then(|e| e.exit_code),
            params: record.params.clone(),
            metrics: record.metrics.clone(),
            tags: record.tags.clone(),
            outputs: record.outputs.iter().map(ModelLink::reference).collect(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    made_ns: i64,
    summary: RunSummary,
}

#[derive(Serialize, Deserialize)]
struct IndexFile {
    format: u32,
    entries: HashMap<String, Entry>,
}

/// Returns the runs of a registry, summarized.
pub struct Summaries {
    /// Every run that could be read.
    pub runs: Vec<RunSummary>,
    /// Runs that could not be read, with the reason, so that one damaged run does not
    /// hide the others.
    pub broken: Vec<(RunId, String)>,
}

/// Returns the summary of every run, folding again only runs that changed since the
/// index last saw them, and saving the index when anything changed.
pub fn summaries(reg: &Registry) -> Result<Summaries> {
    let path = reg.cache_dir().join("runs-index.json");
    let mut old = fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<IndexFile>(&bytes).ok())
        .filter(|f| f.format == FORMAT)
        .map(|f| f.entries)
        .unwrap_or_default();
    let ids = runs::list(reg)?;
    let stale = old.len() != ids.len();
    let results: Vec<(RunId, Option<Stamp>)> = ids
        .into_par_iter()
        .map(|id| {
            let stamp = fs::symlink_metadata(runs::log_dir(reg, &id))
                .ok()
                .map(|m| Stamp::of(&m));
            (id, stamp)
        })
        .collect();
    let mut kept = Vec::with_capacity(results.len());
    let mut todo = Vec::new();
    for (id, stamp) in results {
        match (stamp, old.remove(id.as_str())) {
            (Some(stamp), Some(entry))
                if entry.stamp == stamp && stamp.settled_before(entry.made_ns) =>
            {
                kept.push((id, entry));
            }
            (stamp, _) => todo.push((id, stamp)),
        }
    }
    let changed = stale || !todo.is_empty();
    let made_ns = now_ns();
    let folded: Vec<(RunId, Option<Stamp>, Result<RunSummary, String>)> = todo
        .into_par_iter()
        .map(|(id, stamp)| {
            let summary = runs::load(reg, &id)
                .map(|record| RunSummary::of(&record))
                .map_err(|err| format!("{err:#}"));
            (id, stamp, summary)
        })
        .collect();
    let mut broken = Vec::new();
    let mut uncached = Vec::new();
    for (id, stamp, summary) in folded {
        match (summary, stamp) {
            (Ok(summary), Some(stamp)) => kept.push((
                id,
                Entry {
                    stamp,
                    made_ns,
                    summary,
                },
            )),
            // A run without a log folder cannot be stamped: fold it every time.
            (Ok(summary), None) => uncached.push(summary),
            (Err(err), _) => broken.push((id, err)),
        }
    }
    let mut summaries: Vec<RunSummary> = kept.iter().map(|(_, e)| e.summary.clone()).collect();
    summaries.extend(uncached);
    if changed {
        let file = IndexFile {
            format: FORMAT,
            entries: kept
                .into_iter()
                .map(|(id, e)| (id.as_str().to_owned(), e))
                .collect(),
        };
        // A failure to save the cache costs time next run, nothing else.
        if let Ok(bytes) = serde_json::to_vec(&file) {
            let _ = atomic::replace(&reg.tmp_dir(), &path, &bytes);
        }
    }
    Ok(Summaries {
        runs: summaries,
        broken,
    })
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Serde for typed values in JSON, with the type written out (`{"f": 0.1}`), so that
/// NaN survives and a string `"NaN"` stays a string.
mod tagged_values {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::manifest::Value;
    use crate::manifest::value::JsonFloat;

    #[derive(Serialize, Deserialize)]
    enum Tagged {
        #[serde(rename = "b")]
        Bool(bool),
        #[serde(rename = "i")]
        Int(i64),
        #[serde(rename = "f")]
        Float(JsonFloat),
        #[serde(rename = "s")]
        Str(String),
    }

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<String, Value>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let tagged: BTreeMap<&str, Tagged> = map
            .iter()
            .map(|(k, v)| {
                let t = match v {
                    Value::Bool(b) => Tagged::Bool(*b),
                    Value::Int(i) => Tagged::Int(*i),
                    Value::Float(f) => Tagged::Float(JsonFloat(*f)),
                    Value::Str(s) => Tagged::Str(s.clone()),
                };
                (k.as_str(), t)
            })
            .collect();
        tagged.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Value>, D::Error> {
        let tagged = BTreeMap::<String, Tagged>::deserialize(d)?;
        Ok(tagged
            .into_iter()
            .map(|(k, t)| {
                let v = match t {
                    Tagged::Bool(b) => Value::Bool(b),
                    Tagged::Int(i) => Value::Int(i),
                    Tagged::Float(f) => Value::Float(f.0),
                    Tagged::Str(s) => Value::Str(s),
                };
                (k, v)
            })
            .collect())
    }
}

/// Serde for a map of floats in JSON, NaN and infinities included.
mod json_floats {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::manifest::value::JsonFloat;

    pub fn serialize<S: Serializer>(map: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        let wrapped: BTreeMap<&str, JsonFloat> = map
            .iter()
            .map(|(k, v)| (k.as_str(), JsonFloat(*v)))
            .collect();
        wrapped.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let wrapped = BTreeMap::<String, JsonFloat>::deserialize(d)?;
        Ok(wrapped.into_iter().map(|(k, v)| (k, v.0)).collect())
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn summaries_survive_json_with_nan_and_typed_params() {
        let mut params = BTreeMap::new();
        params.insert("lr".to_owned(), Value::Float(f64::NAN));
        params.insert("name".to_owned(), Value::Str("NaN".to_owned()));
        params.insert("epochs".to_owned(), Value::Int(3));
        let mut metrics = BTreeMap::new();
        metrics.insert("loss".to_owned(), f64::INFINITY);
        let summary = RunSummary {
            id: RunId::parse("0123456789abcdef").unwrap(),
            experiment: "e".into(),
            name: None,
            status: Status::Finished,
            start: "2026-01-01T00:00:00Z".into(),
            end: None,
            duration_s: Some(1.5),
            actor: "a".into(),
            exit_code: Some(0),
            params,
            metrics,
            tags: BTreeMap::new(),
            outputs: vec![],
        };
        let json = serde_json::to_string(&summary).unwrap();
        let back: RunSummary = serde_json::from_str(&json).unwrap();
        assert!(matches!(back.params["lr"], Value::Float(f) if f.is_nan()));
        assert_eq!(back.params["name"], Value::Str("NaN".into()));
        assert_eq!(back.params["epochs"], Value::Int(3));
        assert_eq!(back.metrics["loss"], f64::INFINITY);
    }
}
