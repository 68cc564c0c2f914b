//! The run index: a local cache of every run's queryable summary, so that
//! `mreg runs --where … --sort …` over thousands of runs reads one file.
//!
//! An entry is keyed by the stamps (`lstat`: size, times, inode, mode) of every file the
//! run is folded from: its `run.toml`, its `log/` folder (which changes whenever an event
//! is added or removed) and each event in it, so a record replaced or edited on disk (by
//! a sync, a copy, a hand) is folded again. It is trusted only when those stamps are
//! safely older than the moment the entry was made, as the stat cache does for files. Losing the index only costs
//! time: every run is folded again from its record and events.
//!
//! The file is built to load fast: each param, metric and tag name is written once, and
//! a run holds `[name id, value]` pairs, so ten thousand runs read as a few megabytes of
//! flat arrays rather than ten thousand nested maps.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use rayon::prelude::*;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::statcache::{RACY_NS, Stamp};
use super::{Registry, atomic, files, runs};
use crate::id::RunId;
use crate::manifest::run::{ModelLink, Status};
use crate::manifest::value::{JsonFloat, format_float};
use crate::manifest::{RunRecord, Value};
use crate::query::Namespace;

const FORMAT: u32 = 3;

/// The largest index read back; a larger one is rebuilt.
const CACHE_LIMIT: u64 = 1 << 30;

/// Returns what a run table and a query need of one run. Its params, metrics and tags
/// are `(name id, value)` pairs; [`RunIndex`] holds the names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run's id.
    #[serde(rename = "i")]
    pub id: RunId,
    /// Its experiment.
    #[serde(rename = "e")]
    pub experiment: String,
    /// Its name, if given.
    #[serde(rename = "n")]
    pub name: Option<String>,
    /// Where it stands.
    #[serde(rename = "s")]
    pub status: Status,
    /// Start time, RFC 3339.
    #[serde(rename = "b")]
    pub start: String,
    /// End time, once ended.
    #[serde(rename = "f")]
    pub end: Option<String>,
    /// Seconds from start to end, once ended.
    #[serde(rename = "d")]
    pub duration_s: Option<f64>,
    /// Who started it.
    #[serde(rename = "a")]
    pub actor: String,
    /// The command's exit code, if it exited.
    #[serde(rename = "x")]
    pub exit_code: Option<i32>,
    /// Params by name id, typed.
    #[serde(rename = "p")]
    pub params: Vec<(u32, IndexValue)>,
    /// Final metrics by name id.
    #[serde(rename = "m")]
    pub metrics: Vec<(u32, JsonFloat)>,
    /// Tags by name id.
    #[serde(rename = "t")]
    pub tags: Vec<(u32, String)>,
    /// Versions pushed from it, as `NAME@N`.
    #[serde(rename = "o")]
    pub outputs: Vec<String>,
}

/// Returns a typed param value as the index writes it: JSON's own types, a float always
/// with a fraction (`3.0`) so it reads back as a float, NaN and infinities as
/// `{"f": "NaN"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexValue(pub Value);

/// The names of one namespace: a list, and where each name is in it.
#[derive(Debug, Default)]
struct Names {
    list: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Names {
    fn from_list(list: Vec<String>) -> Names {
        let ids = list
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        Names { list, ids }
    }

    fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.list.len() as u32;
        self.list.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    fn name(&self, id: u32) -> &str {
        self.list.get(id as usize).map_or("", String::as_str)
    }
}

/// Returns the runs of a registry, summarized, with the names their values use.
#[derive(Debug, Default)]
pub struct RunIndex {
    params: Names,
    metrics: Names,
    tags: Names,
    /// Every run that could be read.
    pub runs: Vec<RunSummary>,
    /// Runs that could not be read, with the reason, so that one damaged run does not
    /// hide the others.
    pub broken: Vec<(RunId, String)>,
    /// How many runs were removed (`mreg rm`), and so are left out.
    pub removed: usize,
}

impl RunIndex {
    /// Returns the names of params, metrics or tags the runs hold (attributes: none).
    pub fn names(&self, ns: Namespace) -> impl Iterator<Item = &str> {
        let names: &[String] = match ns {
            Namespace::Params => &self.params.list,
            Namespace::Metrics => &self.metrics.list,
            Namespace::Tags => &self.tags.list,
            Namespace::Attributes => &[],
        };
        names.iter().map(String::as_str)
    }

    /// Returns a run's param.
    pub fn param<'a>(&self, run: &'a RunSummary, name: &str) -> Option<&'a Value> {
        let id = *self.params.ids.get(name)?;
        run.params.iter().find(|(k, _)| *k == id).map(|(_, v)| &v.0)
    }

    /// Returns a run's final metric.
    pub fn metric(&self, run: &RunSummary, name: &str) -> Option<f64> {
        let id = *self.metrics.ids.get(name)?;
        run.metrics.iter().find(|(k, _)| *k == id).map(|(_, v)| v.0)
    }

    /// Returns a run's tag.
    pub fn tag<'a>(&self, run: &'a RunSummary, name: &str) -> Option<&'a str> {
        let id = *self.tags.ids.get(name)?;
        run.tags
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, v)| v.as_str())
    }

    /// Returns a run's params with their names.
    pub fn params_of<'a>(
        &'a self,
        run: &'a RunSummary,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> {
        run.params.iter().map(|(k, v)| (self.params.name(*k), &v.0))
    }

    /// Returns a run's final metrics with their names.
    pub fn metrics_of<'a>(&'a self, run: &'a RunSummary) -> impl Iterator<Item = (&'a str, f64)> {
        run.metrics
            .iter()
            .map(|(k, v)| (self.metrics.name(*k), v.0))
    }

    /// Returns a run's tags with their names.
    pub fn tags_of<'a>(&'a self, run: &'a RunSummary) -> impl Iterator<Item = (&'a str, &'a str)> {
        run.tags
            .iter()
            .map(|(k, v)| (self.tags.name(*k), v.as_str()))
    }

    /// Returns the summary of a folded run record, naming its values in this index.
    fn summarize(&mut self, record: &RunRecord) -> RunSummary {
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
            params: record
                .params
                .iter()
                .map(|(k, v)| (self.params.id(k), IndexValue(v.clone())))
                .collect(),
            metrics: record
                .metrics
                .iter()
                .map(|(k, v)| (self.metrics.id(k), JsonFloat(*v)))
                .collect(),
            tags: record
                .tags
                .iter()
                .map(|(k, v)| (self.tags.id(k), v.clone()))
                .collect(),
            outputs: record.outputs.iter().map(ModelLink::reference).collect(),
        }
    }
}

/// The index as stored.
#[derive(Serialize, Deserialize)]
struct IndexFile {
    format: u32,
    params: Vec<String>,
    metrics: Vec<String>,
    tags: Vec<String>,
    entries: Vec<Entry>,
}

/// One run in the stored index: what its files looked like, when the summary was made,
/// and the summary.
#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(rename = "k")]
    stamp: (u64, i64, i64),
    #[serde(rename = "r")]
    summary: RunSummary,
}

/// The stamps of the files a run is folded from, as one: a fingerprint for equality,
/// and the newest of their times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RunStamp {
    fingerprint: u64,
    newest_ns: i64,
}

/// What stamping a run folder found.
enum Stamped {
    /// The folder holds no record: it is not a run.
    NoRecord,
    /// The run was removed.
    Removed,
    /// One of the files could not be stamped; the run is folded every time.
    Unknown,
    /// The run's stamp.
    Known(RunStamp),
}

impl RunStamp {
    /// Returns the stamp of run `id`: of its record and its `log/` folder (which an event
    /// added or removed changes), or what kept it from one. Events are
    /// immutable, and stamping each would cost a folder read and a `stat` per event
    /// (2.5 times the time of a warm `mreg runs` over 10,000 runs): one edited in place
    /// shows in `show` at once, and in `runs` once its run changes again.
    fn of(reg: &Registry, id: &RunId) -> Stamped {
        let record = match fs::symlink_metadata(runs::record_path(reg, id)) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Stamped::NoRecord,
            Err(_) => return Stamped::Unknown,
        };
        if super::removals::run_is_removed(reg, id) {
            return Stamped::Removed;
        }
        let Ok(log) = fs::symlink_metadata(runs::log_dir(reg, id)) else {
            return Stamped::Unknown;
        };
        let mut hasher = blake3::Hasher::new();
        let mut newest_ns = i64::MIN;
        for (name, meta) in [(&b"run.toml"[..], &record), (&b"log/"[..], &log)] {
            let stamp = Stamp::of(meta);
            hasher.update(&(name.len() as u64).to_le_bytes());
            hasher.update(name);
            hasher.update(&stamp.fingerprint().to_le_bytes());
            newest_ns = newest_ns.max(stamp.newest_ns());
        }
        let bytes = hasher.finalize();
        Stamped::Known(RunStamp {
            fingerprint: u64::from_le_bytes(
                bytes.as_bytes()[..8]
                    .try_into()
                    .expect("a hash has 8 bytes"),
            ),
            newest_ns,
        })
    }

    /// Returns whether an entry made at `made_ns` with this stamp may be trusted: the
    /// files' times are safely older, so a change after it would show in the stamp.
    fn settled_before(self, made_ns: i64) -> bool {
        self.newest_ns < made_ns - RACY_NS
    }
}

/// Returns a stamp as the index keeps it: a fingerprint for equality, the newest of its
/// times, and when the entry was made.
fn keep_stamp(stamp: RunStamp, made_ns: i64) -> (u64, i64, i64) {
    (stamp.fingerprint, stamp.newest_ns, made_ns)
}

/// Returns every run's summary, folding again only runs that changed since the index
/// last saw them, and saving the index when anything changed.
pub fn summaries(reg: &Registry) -> Result<RunIndex> {
    let path = reg.cache_dir().join("runs-index.json");
    let (mut index, mut old) = load(&path);
    // Run folders, each checked for its record by the stamp below rather than by a
    // `stat` of its own: a folder without one is not a run.
    let ids = runs::list_folders(reg)?;
    let removed = std::sync::atomic::AtomicUsize::new(0);
    let stamped: Vec<(RunId, Option<RunStamp>)> = ids
        .into_par_iter()
        .filter_map(|id| match RunStamp::of(reg, &id) {
            Stamped::NoRecord => None,
            Stamped::Removed => {
                removed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                None
            }
            Stamped::Unknown => Some((id, None)),
            Stamped::Known(stamp) => Some((id, Some(stamp))),
        })
        .collect();
    index.removed = removed.into_inner();
    let stale = old.len() != stamped.len();
    let mut kept = Vec::with_capacity(stamped.len());
    let mut todo = Vec::new();
    for (id, stamp) in stamped {
        match (stamp, old.remove(&id)) {
            (Some(stamp), Some(entry))
                if entry.stamp.0 == stamp.fingerprint && stamp.settled_before(entry.stamp.2) =>
            {
                kept.push(entry);
            }
            (stamp, _) => todo.push((id, stamp)),
        }
    }
    let changed = stale || !todo.is_empty();
    let made_ns = now_ns();
    let folded: Vec<(RunId, Option<RunStamp>, Result<RunRecord, String>)> = todo
        .into_par_iter()
        .map(|(id, stamp)| {
            let record = runs::load(reg, &id).map_err(|err| format!("{err:#}"));
            (id, stamp, record)
        })
        .collect();
    let mut uncached = Vec::new();
    for (id, stamp, record) in folded {
        match (record, stamp) {
            (Ok(record), Some(stamp)) => {
                let summary = index.summarize(&record);
                kept.push(Entry {
                    stamp: keep_stamp(stamp, made_ns),
                    summary,
                });
            }
            // A run whose files cannot be stamped is folded every time.
            (Ok(record), None) => uncached.push(index.summarize(&record)),
            (Err(err), _) => index.broken.push((id, err)),
        }
    }
    if changed {
        kept = save(reg, &path, &mut index, kept);
    }
    index.runs = kept.into_iter().map(|e| e.summary).collect();
    index.runs.extend(uncached);
    Ok(index)
}

/// Returns the index saved at `path` with its entries by run, or an empty one when
/// there is none (or one of another format, or damaged: it is only a cache).
fn load(path: &std::path::Path) -> (RunIndex, HashMap<RunId, Entry>) {
    let stored = files::read_cache(path, CACHE_LIMIT)
        .and_then(|bytes| serde_json::from_slice::<IndexFile>(&bytes).ok())
        .filter(|f| f.format == FORMAT);
    let mut index = RunIndex::default();
    let Some(file) = stored else {
        return (index, HashMap::new());
    };
    index.params = Names::from_list(file.params);
    index.metrics = Names::from_list(file.metrics);
    index.tags = Names::from_list(file.tags);
    let old = file
        .entries
        .into_iter()
        .map(|e| (e.summary.id.clone(), e))
        .collect();
    (index, old)
}

/// Saves the index with `entries` at `path`, and returns the entries.
fn save(
    reg: &Registry,
    path: &std::path::Path,
    index: &mut RunIndex,
    entries: Vec<Entry>,
) -> Vec<Entry> {
    let file = IndexFile {
        format: FORMAT,
        params: std::mem::take(&mut index.params.list),
        metrics: std::mem::take(&mut index.metrics.list),
        tags: std::mem::take(&mut index.tags.list),
        entries,
    };
    // A failure to save the cache costs time next run, nothing else.
    if let Ok(bytes) = serde_json::to_vec(&file) {
        let _ = atomic::replace(&reg.tmp_dir(), path, &bytes);
    }
    index.params.list = file.params;
    index.metrics.list = file.metrics;
    index.tags.list = file.tags;
    file.entries
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl Serialize for IndexValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) if f.is_finite() => s.serialize_f64(*f),
            Value::Float(f) => {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("f", &format_float(*f))?;
                map.end()
            }
            Value::Str(text) => s.serialize_str(text),
        }
    }
}

impl<'de> Deserialize<'de> for IndexValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Typed;
        impl<'de> Visitor<'de> for Typed {
            type Value = IndexValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a bool, int, float, string or {\"f\": \"NaN\"}")
            }
            fn visit_bool<E>(self, v: bool) -> Result<IndexValue, E> {
                Ok(IndexValue(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<IndexValue, E> {
                Ok(IndexValue(Value::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IndexValue, E> {
                i64::try_from(v)
                    .map(|i| IndexValue(Value::Int(i)))
                    .map_err(|_| E::custom("an int beyond 64 bits"))
            }
            fn visit_f64<E>(self, v: f64) -> Result<IndexValue, E> {
                Ok(IndexValue(Value::Float(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<IndexValue, E> {
                Ok(IndexValue(Value::Str(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<IndexValue, E> {
                Ok(IndexValue(Value::Str(v)))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<IndexValue, A::Error> {
                let (_, float): (String, JsonFloat) = map
                    .next_entry()?
                    .ok_or_else(|| de::Error::custom("an empty map"))?;
                Ok(IndexValue(Value::Float(float.0)))
            }
        }
        d.deserialize_any(Typed)
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn index_values_keep_their_types_through_json() {
        let values = [
            Value::Float(3.0),
            Value::Int(3),
            Value::Float(f64::NAN),
            Value::Float(f64::NEG_INFINITY),
            Value::Str("NaN".into()),
            Value::Bool(false),
            Value::Float(0.001),
        ];
        let wrapped: Vec<IndexValue> = values.iter().cloned().map(IndexValue).collect();
        let json = serde_json::to_string(&wrapped).unwrap();
        let back: Vec<IndexValue> = serde_json::from_str(&json).unwrap();
        assert_eq!(back[0].0, Value::Float(3.0));
        assert_eq!(back[1].0, Value::Int(3));
        assert!(matches!(back[2].0, Value::Float(f) if f.is_nan()));
        assert_eq!(back[3].0, Value::Float(f64::NEG_INFINITY));
        assert_eq!(back[4].0, Value::Str("NaN".into()));
        assert_eq!(back[5].0, Value::Bool(false));
        assert_eq!(back[6].0, Value::Float(0.001));
    }
}
