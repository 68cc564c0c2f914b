//! The run record: one training execution, as stored in `runs/ID/run.toml` and as
//! folded together with the run's log events.
//!
//! A run's record is written once, when the run starts (or, for a run that `push`
//! records itself, complete in one go). Everything logged later arrives as immutable
//! [`RunEvent`]s that [`RunRecord::apply`] folds in, in order.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::Value;
use super::event::RunEvent;
use super::lineage::{Environment, Source};
use crate::id::{ObjectId, RunId, TreeId};

/// The run-record format this build reads and writes.
pub const FORMAT: u32 = 1;

/// How many points of a series a record or event keeps inline; longer series go to
/// an object the record points at, so manifests stay small.
pub const INLINE_POINTS: usize = 16;

/// Returns where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Started and not ended (or its `mreg run` was killed before it could say).
    Running,
    /// The command exited 0, or the run was recorded complete by `push`.
    Finished,
    /// The command exited with another code, or could not be started.
    Failed,
    /// The command ended on SIGINT, SIGTERM or SIGHUP (Ctrl-C, a cancelled CI job).
    Interrupted,
    /// The command was killed by another signal (SIGKILL from the OOM killer, SIGSEGV).
    Killed,
}

impl Status {
    /// Returns the lowercase name used in manifests, tables and queries.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Finished => "finished",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
            Status::Killed => "killed",
        }
    }
}

/// Returns the command a run executed and how it ended.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// The command line, as given.
    pub argv: Vec<String>,
    /// The folder it ran in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The host it ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The process id of `mreg run` (not of the command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// Returns how a run ended, as its end event records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    /// The final status.
    pub status: Status,
    /// When it ended (RFC 3339, UTC).
    pub time: String,
    /// Wall-clock seconds from start to end, measured with a monotonic clock.
    pub duration_s: f64,
    /// The command's exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended the command (`SIGKILL`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// A signal `mreg run` itself received while waiting (`SIGINT` for Ctrl-C).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<String>,
    /// Why the command could not run, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Returns one point of a metric series: step, value, time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point(pub i64, pub f64, pub String);

impl Point {
    /// Returns the step.
    pub fn step(&self) -> i64 {
        self.0
    }

    /// Returns the value.
    pub fn value(&self) -> f64 {
        self.1
    }
}

/// Returns a part of a series: points inline, or stored in objects.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunk {
    /// Objects holding longer runs of points (see [`encode_points`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectId>,
    /// Points kept inline: `[step, value, time]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<Point>,
}

/// Returns one metric's series: a summary, and where its points are.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// Number of points.
    pub count: u64,
    /// The highest step.
    pub last_step: i64,
    /// The value at the highest step (the latest logged among equal steps).
    pub last: f64,
    /// The smallest value (NaN ignored), and the step of its first occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The step at which `min` was first reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_step: Option<i64>,
    /// The largest value (NaN ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The step at which `max` was first reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_step: Option<i64>,
    /// Where the points are.
    #[serde(flatten)]
    pub chunk: Chunk,
}

impl Series {
    /// Adds points (already stored in `chunk`) to the summary. Returns whether the
    /// newest of them reached the highest step, so it is the metric's final value.
    fn summarize(&mut self, points: &[Point]) -> bool {
        let mut reached_last = false;
        for p in points {
            if self.count == 0 || p.step() >= self.last_step {
                self.last_step = p.step();
                self.last = p.value();
                reached_last = true;
            }
            self.count += 1;
            let v = p.value();
            if v.is_nan() {
                continue;
            }
            if self.min.is_none_or(|m| v < m) {
                self.min = Some(v);
                self.min_step = Some(p.step());
            }
            if self.max.is_none_or(|m| v > m) {
                self.max = Some(v);
                self.max_step = Some(p.step());
            }
        }
        reached_last
    }
}

/// Returns the summary-and-location form of series points about to be written: inline
/// when short, else in an object the caller stores (`store` returns its id).
pub fn chunk_of(
    points: Vec<Point>,
    store: &mut dyn FnMut(&[u8]) -> Result<ObjectId>,
) -> Result<Chunk> {
    if points.len() <= INLINE_POINTS {
        return Ok(Chunk {
            objects: Vec::new(),
            points,
        });
    }
    let id = store(&encode_points(&points))?;
    Ok(Chunk {
        objects: vec![id],
        points: Vec::new(),
    })
}

/// Returns points in the series-object form: a header line, then one
/// `step<TAB>value<TAB>time` line per point; values as TOML writes floats (`nan`, `inf`).
pub fn encode_points(points: &[Point]) -> Vec<u8> {
    let mut out = String::from("mreg series 1\n");
    for p in points {
        let _ = writeln!(out, "{}\t{}\t{}", p.0, toml_float(p.1), p.2);
    }
    out.into_bytes()
}

/// Parses a series object.
pub fn decode_points(bytes: &[u8]) -> Result<Vec<Point>> {
    let text = std::str::from_utf8(bytes)?;
    let mut lines = text.lines();
    if lines.next() != Some("mreg series 1") {
        bail!("it is not a series object (its first line is not `mreg series 1`)");
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            let mut parts = line.splitn(3, '\t');
            let (Some(step), Some(value), Some(time)) = (parts.next(), parts.next(), parts.next())
            else {
                bail!("line {}: expected step, value and time", i + 2);
            };
            let step = step
                .parse()
                .map_err(|_| anyhow::anyhow!("line {}: bad step", i + 2))?;
            let value = parse_toml_float(value)
                .ok_or_else(|| anyhow::anyhow!("line {}: bad value {value:?}", i + 2))?;
            Ok(Point(step, value, time.to_owned()))
        })
        .collect()
}

fn toml_float(f: f64) -> String {
    if f.is_nan() {
        "nan".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        format!("{f:?}")
    }
}

fn parse_toml_float(text: &str) -> Option<f64> {
    match text {
        "nan" => Some(f64::NAN),
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// Returns one data input of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataInput {
    /// The path or URI as given (a URI without credentials).
    pub path: String,
    /// `file`, `folder` or `uri`.
    pub kind: String,
    /// blake3 of a file's content, or a folder's tree hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Regular files (folders only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// Bytes of the file or of all files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The version or ETag given after `@` in a URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Whether the bytes were stored in the registry (`--store-data`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stored: bool,
}

/// Returns a model version a run started from (fine-tune, distillation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelLink {
    /// The model.
    pub model: String,
    /// Its version number.
    pub version: u64,
    /// Its tree hash.
    pub tree: TreeId,
}

impl ModelLink {
    /// Returns `NAME@N`.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.model, self.version)
    }
}

/// Returns the record of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    /// Record format version.
    pub format: u32,
    /// The run's id.
    pub id: RunId,
    /// The experiment it belongs to.
    pub experiment: String,
    /// A name given with `--name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the run stands.
    pub status: Status,
    /// When it started (RFC 3339, UTC).
    pub start: String,
    /// Who started it.
    pub actor: String,
    /// How it ended, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<End>,
    /// The command it ran; absent for runs recorded by `push`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    /// Hyperparameters, with their types.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Value>,
    /// Final metric values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Metric series by step.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub series: BTreeMap<String, Series>,
    /// The git state of the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Data the run read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<DataInput>,
    /// Model versions it started from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<ModelLink>,
    /// Model versions pushed from it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<ModelLink>,
    /// Where it ran: machine, GPUs, container, CI job, lock files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
}

impl RunRecord {
    /// Returns the record as TOML.
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }

    /// Parses a record, refusing one from a newer format.
    pub fn parse(text: &str) -> Result<RunRecord> {
        check_format(text, FORMAT)?;
        Ok(toml::from_str(text)?)
    }

    /// Returns the run's duration in seconds, once it has ended.
    pub fn duration_s(&self) -> Option<f64> {
        self.end.as_ref().map(|e| e.duration_s)
    }

    /// Folds one log event into the record.
    ///
    /// Params and tags are set (a later value replaces an earlier one), series
    /// grow, final metrics take the latest value, and data, parents and outputs are
    /// added unless already listed.
    pub fn apply(&mut self, event: &RunEvent) {
        self.params
            .extend(event.params.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.tags
            .extend(event.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        for (key, logged) in &event.series {
            let series = self.series.entry(key.clone()).or_default();
            let reached = series.summarize_logged(logged);
            series
                .chunk
                .objects
                .extend(logged.chunk.objects.iter().copied());
            series
                .chunk
                .points
                .extend(logged.chunk.points.iter().cloned());
            if reached {
                let last = series.last;
                self.metrics.insert(key.clone(), last);
            }
        }
        self.metrics
            .extend(event.metrics.iter().map(|(k, v)| (k.clone(), *v)));
        push_new(&mut self.data, &event.data);
        push_new(&mut self.parents, &event.parents);
        push_new(&mut self.outputs, &event.outputs);
        if let Some(end) = &event.end {
            self.status = end.status;
            self.end = Some(end.clone());
        }
    }
}

impl Series {
    /// Adds a logged part of a series, described by its own summary, to this one.
    fn summarize_logged(&mut self, logged: &Series) -> bool {
        if logged.count == 0 {
            return false;
        }
        let reached = self.count == 0 || logged.last_step >= self.last_step;
        if reached {
            self.last_step = logged.last_step;
            self.last = logged.last;
        }
        self.count += logged.count;
        if let (Some(v), Some(step)) = (logged.min, logged.min_step)
            && self.min.is_none_or(|m| v < m)
        {
            self.min = Some(v);
            self.min_step = Some(step);
        }
        if let (Some(v), Some(step)) = (logged.max, logged.max_step)
            && self.max.is_none_or(|m| v > m)
        {
            self.max = Some(v);
            self.max_step = Some(step);
        }
        reached
    }

    /// Returns a series holding exactly `points`, located by `chunk`.
    pub fn of(points: &[Point], chunk: Chunk) -> Series {
        let mut series = Series::default();
        series.summarize(points);
        series.chunk = chunk;
        series
    }
}

fn push_new<T: PartialEq + Clone>(list: &mut Vec<T>, new: &[T]) {
    for item in new {
        if !list.contains(item) {
            list.push(item.clone());
        }
    }
}

/// Refuses a manifest whose `format` is newer than `known`.
pub fn check_format(text: &str, known: u32) -> Result<()> {
    #[derive(Deserialize)]
    struct Probe {
        format: u32,
    }
    let probe: Probe = toml::from_str(text)?;
    if probe.format > known {
        bail!(
            "it has format {}, newer than this mreg reads ({known}); upgrade mreg",
            probe.format
        );
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    fn pts(values: &[(i64, f64)]) -> Vec<Point> {
        values
            .iter()
            .map(|&(s, v)| Point(s, v, "2026-01-01T00:00:00Z".to_owned()))
            .collect()
    }

    #[test]
    fn series_summary_tracks_last_min_max_and_ignores_nan() {
        let points = pts(&[(1, 0.7), (2, f64::NAN), (3, 0.4), (4, 0.5)]);
        let s = Series::of(&points, Chunk::default());
        assert_eq!((s.count, s.last_step, s.last), (4, 4, 0.5));
        assert_eq!((s.min, s.min_step), (Some(0.4), Some(3)));
        assert_eq!((s.max, s.max_step), (Some(0.7), Some(1)));
    }

    #[test]
    fn series_objects_round_trip_with_nan_and_infinities() {
        let points = pts(&[
            (0, f64::NAN),
            (1, f64::INFINITY),
            (2, f64::NEG_INFINITY),
            (3, 0.1),
        ]);
        let back = decode_points(&encode_points(&points)).unwrap();
        assert_eq!(back.len(), 4);
        assert!(back[0].1.is_nan());
        assert_eq!(back[1].1, f64::INFINITY);
        assert_eq!(back[2].1, f64::NEG_INFINITY);
        assert_eq!(back[3], points[3]);
        assert!(decode_points(b"not a series\n").is_err());
    }

    #[test]
    fn an_out_of_order_point_does_not_become_the_final_value() {
        let mut s = Series::of(&pts(&[(5, 0.3)]), Chunk::default());
        assert!(!s.summarize(&pts(&[(3, 0.9)])));
        assert_eq!((s.last_step, s.last, s.count), (5, 0.3, 2));
        assert!(s.summarize(&pts(&[(5, 0.2)])));
        assert_eq!(s.last, 0.2);
    }

    #[test]
    fn run_ids_are_sixteen_lowercase_hex_digits() {
        assert!(RunId::parse("0123456789abcdef").is_some());
        assert!(RunId::parse("0123456789ABCDEF").is_none());
        assert!(RunId::parse("0123456789abcde").is_none());
        assert!(RunId::parse("../../etc/passwd").is_none());
    }
}
