//! The run record: one training execution, as stored in `runs/ID/run.toml` and as
//! folded together with the run's log events.
//!
//! A run's record is written once, when the run starts (or, for a run that `push`
//! records itself, complete in one go). Everything logged later arrives as immutable
//! [`RunEvent`]s that [`RunRecord::apply`] folds in, in order.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::Value;
use super::event::RunEvent;
use super::lineage::{Environment, Source};
use super::series::Series;
use crate::id::{RunId, TreeId};

/// The run-record format this build writes; it reads this one and every earlier one.
///
/// Format 2 added objects the record names in its environment (the content of lock
/// files, `stored = true`, and the Python package list, `packages_object`): an mreg that
/// reads only format 1 would not count them as held, and a `gc` of it would delete them,
/// so it must refuse these records rather than read them without their objects.
pub const FORMAT: u32 = 2;

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

impl End {
    /// Refuses an end whose time or duration is not one, naming the field.
    pub fn check(&self) -> Result<()> {
        super::fields::time("end.time", &self.time)?;
        super::fields::duration("end.duration_s", self.duration_s)
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
        let record: RunRecord = toml::from_str(text)?;
        super::fields::time("start", &record.start)?;
        if let Some(end) = &record.end {
            end.check()?;
        }
        if let Some(environment) = &record.environment {
            environment.check()?;
        }
        Ok(record)
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
mod tests {
    use proptest::prelude::*;

    use super::RunRecord;
    use crate::testing::fuzz;

    #[test]
    fn deeply_nested_toml_is_an_error_not_a_stack_overflow() {
        for (open, close) in [("[", "]"), ("{a=", "}")] {
            let text = format!(
                "format = 1\nx = {}1{}\n",
                open.repeat(50_000),
                close.repeat(50_000)
            );
            assert!(RunRecord::parse(&text).is_err());
        }
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn parsing_any_text_never_panics(text in any::<String>()) {
            fuzz::check_manifest(&text, RunRecord::parse, RunRecord::to_toml)?;
        }

        #[test]
        fn parsing_a_mutated_record_never_panics(text in fuzz::mutated_text(include_str!("../../fixtures/manifests/run.toml"))) {
            fuzz::check_manifest(&text, RunRecord::parse, RunRecord::to_toml)?;
        }
    }
}
