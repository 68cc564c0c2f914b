//! An MLflow tracking store, read: the `mlruns/` file store ([`files`]) or an MLflow
//! SQLite database ([`sqlite`]), into one neutral form for `mreg import mlflow`.
//!
//! A store is untrusted input: every file and row is bounded (points per metric, bytes
//! per value, runs and versions per store), and one that does not read is named, not
//! guessed at.

pub mod files;
pub mod sqlite;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::Failure;

/// The most points of one metric of one run read.
pub const POINTS_LIMIT: usize = 1_000_000;

/// The most metric points read from one store, all runs together: an import holds them
/// in memory (about 330 MB per million), so a larger store is refused rather than
/// exhaust the machine.
pub const TOTAL_POINTS_LIMIT: usize = 20_000_000;

/// The most runs, and model versions, read from one store.
pub const ROWS_LIMIT: usize = 1_000_000;

/// The longest param value, tag value or description kept, in bytes (MLflow's own
/// limits are 6,000 for params and 8,000 for tags; a hand-written store may hold more).
pub const VALUE_LIMIT: usize = 64 << 10;

/// One metric point: step, value, timestamp in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    /// The step.
    pub step: i64,
    /// The value (NaN kept).
    pub value: f64,
    /// When, in milliseconds since the epoch.
    pub timestamp_ms: i64,
}

/// One MLflow run.
#[derive(Debug, Clone, Default)]
pub struct MlRun {
    /// Its id (32 hex digits).
    pub id: String,
    /// Its experiment's name.
    pub experiment: String,
    /// Its name (`mlflow.runName`).
    pub name: Option<String>,
    /// `FINISHED`, `FAILED`, `KILLED`, `RUNNING` or `SCHEDULED`.
    pub status: String,
    /// When it started, in milliseconds.
    pub start_ms: i64,
    /// When it ended, in milliseconds.
    pub end_ms: Option<i64>,
    /// Who ran it.
    pub user: String,
    /// Whether it was deleted (in MLflow's trash).
    pub deleted: bool,
    /// Params, as text.
    pub params: BTreeMap<String, String>,
    /// Tags, system ones (`mlflow.*`) included.
    pub tags: BTreeMap<String, String>,
    /// Metrics, each with every point.
    pub metrics: BTreeMap<String, Vec<MetricPoint>>,
    /// Where its artifacts are: a local folder, when they are local.
    pub artifacts: Option<PathBuf>,
}

/// One version of a registered model.
#[derive(Debug, Clone, Default)]
pub struct MlVersion {
    /// The registered model's name.
    pub model: String,
    /// The version number.
    pub version: u64,
    /// Its source: `runs:/RUN/PATH`, `models:/m-ID`, a path or URI.
    pub source: String,
    /// The run it came from.
    pub run_id: Option<String>,
    /// Its legacy stage: `None`, `Staging`, `Production`, `Archived`.
    pub stage: Option<String>,
    /// When it was registered, in milliseconds.
    pub created_ms: i64,
    /// Its description.
    pub description: Option<String>,
    /// `READY`, or a state in which it has no files yet.
    pub status: String,
}

/// A tracking store's content.
#[derive(Debug, Default)]
pub struct MlStore {
    /// What it is, for messages: `the MLflow file store at …`.
    pub what: String,
    /// Its runs, by start time.
    pub runs: Vec<MlRun>,
    /// Registered model versions, by model and number.
    pub versions: Vec<MlVersion>,
    /// Aliases: (model, alias) → version.
    pub aliases: BTreeMap<(String, String), u64>,
    /// Logged models (MLflow 3) by id → their artifact folder, when local.
    pub logged_models: BTreeMap<String, PathBuf>,
    /// Metric points read so far, all runs together.
    pub points: usize,
    /// The folders artifacts may be read from: the store's own (the `mlruns` folder,
    /// or the database's folder), and those the user adds (`--artifacts`).
    pub roots: Vec<PathBuf>,
}

impl MlStore {
    /// Returns the local folder holding a version's files, or why there is none: it
    /// must be inside one of [`MlStore::roots`], so a store cannot have a folder such as
    /// `/etc` imported as a model.
    pub fn artifacts_of(&self, version: &MlVersion) -> Result<PathBuf, String> {
        let dir = self.artifacts_named(version)?;
        let real = std::fs::canonicalize(&dir)
            .map_err(|_| format!("its files are not at {}", dir.display()))?;
        let inside = self
            .roots
            .iter()
            .filter_map(|r| std::fs::canonicalize(r).ok())
            .any(|root| real.starts_with(root));
        if !inside {
            return Err(format!(
                "its files are at {}, outside the store's folder (--artifacts DIR allows a folder)",
                real.display()
            ));
        }
        Ok(real)
    }

    /// Returns the folder a version's source names.
    fn artifacts_named(&self, version: &MlVersion) -> Result<PathBuf, String> {
        let source = version.source.as_str();
        if let Some(rest) = source.strip_prefix("runs:/") {
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            let run = self
                .runs
                .iter()
                .find(|r| r.id == run_id)
                .ok_or_else(|| format!("its run {run_id} is not in the store"))?;
            let base = run.artifacts.as_ref().ok_or_else(|| {
                format!("the artifacts of run {run_id} are not in a local folder")
            })?;
            return Ok(base.join(path));
        }
        if let Some(id) = source.strip_prefix("models:/") {
            return self
                .logged_models
                .get(id)
                .cloned()
                .ok_or_else(|| format!("its logged model {id} has no local artifact folder"));
        }
        local_path(source).ok_or_else(|| format!("its source {source} is not a local folder"))
    }
}

/// Returns the local path an artifact location names (`file:///…` or an absolute path),
/// `None` for a remote one (`s3://`, `mlflow-artifacts:`, `dbfs:`, …).
pub fn local_path(location: &str) -> Option<PathBuf> {
    if let Some(path) = location.strip_prefix("file://") {
        let path = path.strip_prefix("localhost").unwrap_or(path);
        return Some(PathBuf::from(percent_decode(path)));
    }
    if location.starts_with('/') {
        return Some(PathBuf::from(location));
    }
    None
}

/// Decodes `%XX` escapes of a `file://` URL.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads the store at `path`: a SQLite database file, or an `mlruns` folder (or a
/// folder holding one).
pub fn read(path: &Path) -> Result<MlStore> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Failure::error(format!("{} cannot be read: {e}", path.display()))
            .hint("give an mlruns folder, or an MLflow database file (mlflow.db)")
    })?;
    if meta.is_file() {
        return sqlite::read(path);
    }
    let inner = path.join("mlruns");
    if !path.join("0").is_dir() && !path.join("models").is_dir() && inner.is_dir() {
        return files::read(&inner);
    }
    files::read(path)
}

/// Returns `text` cut to [`VALUE_LIMIT`] bytes (at a character boundary).
pub(crate) fn bounded(mut text: String) -> String {
    if text.len() > VALUE_LIMIT {
        let mut end = VALUE_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_locations_are_local_or_not() {
        assert_eq!(
            local_path("file:///tmp/a%20b"),
            Some(PathBuf::from("/tmp/a b"))
        );
        assert_eq!(
            local_path("/srv/mlruns/1"),
            Some(PathBuf::from("/srv/mlruns/1"))
        );
        assert_eq!(local_path("s3://bucket/x"), None);
        assert_eq!(local_path("mlflow-artifacts:/1/x"), None);
        assert_eq!(bounded("é".repeat(VALUE_LIMIT)).len(), VALUE_LIMIT);
    }
}
