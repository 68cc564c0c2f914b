//! Comparing runs and model versions: what changed between two sides ([`diff`]), and
//! many sides side by side ([`compare`]).
//!
//! A side is a model version (with the run that produced it, when it names one) or a
//! run. Every list in a [`Diff`] holds each key of either side, unchanged ones included,
//! so a caller shows everything or only the changes ([`Diff::retain_changed`]).

pub mod compare;
pub mod files;
pub mod goal;
pub mod lineage;
pub mod parts;
mod tensor_bytes;
pub mod tensors;
pub mod values;

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Serialize, Serializer};

use crate::error::Failure;
use crate::id::{RunId, TreeId};
use crate::manifest::series::Series;
use crate::manifest::value::JsonFloat;
use crate::manifest::{RunRecord, Value, VersionRecord};
use crate::refspec::ModelRef;
use crate::store::{Progress, Registry, models, runs};

pub use files::{FileChange, FileRow, FilesDiff};
pub use goal::{Goal, Goals};
pub use lineage::TextRow;
pub use tensors::TensorDiff;
pub use values::{MetricRow, ValueRow};

/// Returns how one key differs between the old side and the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Only the new side has it.
    Added,
    /// Only the old side has it.
    Removed,
    /// Both have it, with different values.
    Changed,
    /// Both have it, with the same value.
    Same,
}

impl Change {
    /// Returns the change between two optional values.
    pub fn of<T: PartialEq>(old: Option<&T>, new: Option<&T>) -> Change {
        match (old, new) {
            (None, Some(_)) => Change::Added,
            (Some(_), None) => Change::Removed,
            (Some(a), Some(b)) if a != b => Change::Changed,
            _ => Change::Same,
        }
    }
}

/// Returns one side of a comparison: a model version, or a run.
#[derive(Debug, Clone)]
pub struct Side {
    /// The text that named it, as given.
    pub given: String,
    /// The version, when the side is one.
    pub version: Option<VersionRecord>,
    /// The run: the side itself, or the run that produced the version.
    pub run: Option<RunRecord>,
}

impl Side {
    /// Loads the version or run that `text` names: a run id (or unique prefix of one),
    /// else a version reference such as `churn@3` or `churn@production`.
    pub fn load(reg: &Registry, text: &str) -> Result<Side> {
        if let Some(id) = runs::named(reg, text)? {
            crate::store::removals::require_live_run(reg, &id)?;
            return Ok(Side {
                given: text.to_owned(),
                version: None,
                run: Some(runs::load(reg, &id)?),
            });
        }
        let lower = text.to_ascii_lowercase();
        if runs::looks_like_id(&lower) && models::list_versions(reg, text)?.is_empty() {
            return Err(Failure::error(format!("{text:?} names no run and no model"))
                .hint("`mreg runs` lists runs (ids are hex, 4 or more digits name one); `mreg ls` lists models")
                .into());
        }
        let version = models::resolve(reg, &ModelRef::parse(text)?)?;
        let run = match &version.run {
            Some(id) if runs::record_path(reg, id).is_file() => Some(runs::load(reg, id)?),
            _ => None,
        };
        Ok(Side {
            given: text.to_owned(),
            version: Some(version),
            run,
        })
    }

    /// Returns a side made of a run alone.
    pub fn of_run(run: RunRecord) -> Side {
        Side {
            given: run.id.to_string(),
            version: None,
            run: Some(run),
        }
    }

    /// Returns the short name people read: `churn@3`, or the run's first 8 digits.
    pub fn label(&self) -> String {
        match (&self.version, &self.run) {
            (Some(v), _) => v.reference(),
            (None, Some(r)) => r.id.short().to_owned(),
            (None, None) => self.given.clone(),
        }
    }

    /// Returns the run's params; a version without a run has none.
    pub fn params(&self) -> BTreeMap<String, Value> {
        self.run
            .as_ref()
            .map(|r| r.params.clone())
            .unwrap_or_default()
    }

    /// Returns the final metrics: a version's own copy (what its gates read) over its
    /// run's, which may hold values logged after the push.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let mut metrics = self
            .run
            .as_ref()
            .map(|r| r.metrics.clone())
            .unwrap_or_default();
        if let Some(v) = &self.version {
            metrics.extend(v.metrics.iter().map(|(k, x)| (k.clone(), *x)));
        }
        metrics
    }

    /// Returns the run's metric series.
    pub fn series(&self) -> BTreeMap<String, Series> {
        self.run
            .as_ref()
            .map(|r| r.series.clone())
            .unwrap_or_default()
    }

    /// Returns what the JSON output says of this side.
    pub fn info(&self) -> SideInfo {
        let version = self.version.as_ref();
        let run = self.run.as_ref();
        SideInfo {
            given: self.given.clone(),
            kind: if version.is_some() { "version" } else { "run" },
            label: self.label(),
            model: version.map(|v| v.model.clone()),
            version: version.map(|v| v.version),
            tree: version.map(|v| v.tree),
            run: run.map(|r| r.id.clone()),
            experiment: run.map(|r| r.experiment.clone()),
            name: run.and_then(|r| r.name.clone()),
            created: version
                .map(|v| v.created.clone())
                .or_else(|| run.map(|r| r.start.clone())),
            actor: version
                .map(|v| v.actor.clone())
                .or_else(|| run.map(|r| r.actor.clone())),
        }
    }
}

/// Returns what a comparison says of one side.
#[derive(Debug, Clone, Serialize)]
pub struct SideInfo {
    /// The text that named it, as given (`churn@production`).
    pub given: String,
    /// `version` or `run`.
    pub kind: &'static str,
    /// `churn@3`, or a run's first 8 digits.
    pub label: String,
    /// The model, for a version.
    pub model: Option<String>,
    /// The version number, for a version.
    pub version: Option<u64>,
    /// The tree hash, for a version.
    pub tree: Option<TreeId>,
    /// The run: the side itself, or the one that produced the version.
    pub run: Option<RunId>,
    /// The run's experiment.
    pub experiment: Option<String>,
    /// The run's name.
    pub name: Option<String>,
    /// When the version was pushed, or the run started.
    pub created: Option<String>,
    /// Who pushed the version, or started the run.
    pub actor: Option<String>,
}

/// Options of [`diff`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// List unchanged files too, which reads every folder of both versions.
    pub all: bool,
    /// Compare the tensors of `.safetensors` files that changed.
    pub tensors: bool,
}

/// Returns everything that differs between two sides, unchanged keys included.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    /// The old side.
    pub old: SideInfo,
    /// The new side.
    pub new: SideInfo,
    /// Whether anything differs, in any section.
    pub differs: bool,
    /// Hyperparameters.
    pub params: Vec<ValueRow>,
    /// Final metrics, with series summaries.
    pub metrics: Vec<MetricRow>,
    /// Files, when both sides are versions.
    pub files: Option<FilesDiff>,
    /// Tensors of the `.safetensors` files that changed.
    pub tensors: Vec<FileTensors>,
    /// The git state the runs' code was in.
    pub source: Vec<TextRow>,
    /// Data inputs, by path.
    pub data: Vec<TextRow>,
    /// Model versions the runs started from, by model.
    pub parents: Vec<TextRow>,
    /// Machines, GPUs, containers, CI jobs and lock files.
    pub environment: Vec<TextRow>,
    /// Python distributions of the runs' environments, by name: their versions.
    pub packages: Vec<TextRow>,
    /// Why a side has no package list to compare (not recorded, or unreadable): then
    /// `packages` is empty rather than every package of the other side added.
    #[serde(rename = "package_notes")]
    pub package_problems: Vec<String>,
}

/// Returns the tensor comparison of one `.safetensors` file, or why it could not be made.
#[derive(Debug, Clone, Serialize)]
pub struct FileTensors {
    /// The file's path in the model folder.
    pub path: String,
    /// Why the tensors could not be compared (a malformed header, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The comparison.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub diff: Option<TensorDiff>,
}

impl Diff {
    /// Drops every unchanged row, keeping what differs.
    pub fn retain_changed(&mut self) {
        self.params.retain(|r| r.change != Change::Same);
        self.metrics.retain(|r| r.change != Change::Same);
        if let Some(files) = &mut self.files {
            files.entries.retain(|r| r.change != FileChange::Same);
        }
        for file in &mut self.tensors {
            if let Some(diff) = &mut file.diff {
                diff.tensors.retain(|t| t.change != tensors::Change::Same);
                diff.metadata.retain(|m| m.change != Change::Same);
            }
        }
        for rows in [
            &mut self.source,
            &mut self.data,
            &mut self.parents,
            &mut self.environment,
            &mut self.packages,
        ] {
            rows.retain(|r| r.change != Change::Same);
        }
    }

    /// Returns the tensor comparisons that failed, with their paths.
    pub fn tensor_errors(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tensors
            .iter()
            .filter_map(|t| t.error.as_deref().map(|e| (t.path.as_str(), e)))
    }
}

/// Compares two sides: params, metrics, files (and tensors), and lineage.
///
/// Reading the tensors of large files reports through `progress`. A `.safetensors` file
/// whose header is malformed gets an `error` in [`Diff::tensors`]; the rest of the
/// comparison is made all the same.
pub fn diff(
    reg: &Registry,
    old: &Side,
    new: &Side,
    goals: &Goals,
    options: Options,
    progress: &dyn Progress,
) -> Result<Diff> {
    let params = values::params(&old.params(), &new.params());
    let metrics = values::metrics(old, new, goals);
    let (files, tensors) = match (&old.version, &new.version) {
        (Some(a), Some(b)) => {
            let files = files::diff(reg, a.tree, b.tree, options.all)?;
            let tensors = if options.tensors {
                files::tensors(reg, &files, progress)?
            } else {
                Vec::new()
            };
            (Some(files), tensors)
        }
        _ => (None, Vec::new()),
    };
    let (a, b) = (old.run.as_ref(), new.run.as_ref());
    let source = lineage::source(a, b);
    let data = lineage::data(a, b);
    let parents = lineage::parents(a, b);
    let environment = lineage::environment(a, b);
    let (packages, package_problems) = lineage::packages(reg, a, b);
    let mut diff = Diff {
        old: old.info(),
        new: new.info(),
        differs: false,
        params,
        metrics,
        files,
        tensors,
        source,
        data,
        parents,
        environment,
        packages,
        package_problems,
    };
    diff.differs = diff.any_change();
    Ok(diff)
}

impl Diff {
    /// Returns whether anything differs in the sections the diff holds.
    pub fn any_change(&self) -> bool {
        let text = |rows: &[TextRow]| rows.iter().any(|r| r.change != Change::Same);
        self.params.iter().any(|r| r.change != Change::Same)
            || self.metrics.iter().any(|r| r.change != Change::Same)
            || self
                .files
                .as_ref()
                .is_some_and(|f| f.entries.iter().any(|r| r.change != FileChange::Same))
            || self.tensors.iter().any(|t| {
                t.error.is_some()
                    || t.diff.as_ref().is_some_and(|d| {
                        d.tensors.iter().any(|x| x.change != tensors::Change::Same)
                            || d.metadata.iter().any(|m| m.change != Change::Same)
                    })
            })
            || text(&self.source)
            || text(&self.data)
            || text(&self.parents)
            || text(&self.environment)
            || text(&self.packages)
    }
}

/// Serializes a typed value as JSON keeps it: NaN and the infinities as strings.
#[allow(
    clippy::ref_option,
    reason = "serde's serialize_with passes a reference"
)]
pub(crate) fn serialize_value<S: Serializer>(
    value: &Option<Value>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(Value::Float(f)) => JsonFloat(*f).serialize(s),
        Some(other) => other.serialize(s),
        None => s.serialize_none(),
    }
}
