//! What gates read of a model version: its metrics, its run's params and tags, and facts
//! about the version itself; and the versions that stages hold, to compare with.

use std::cell::RefCell;
use std::collections::HashMap;

use anyhow::Result;

use crate::gate::Subject;
use crate::manifest::{RunRecord, StageState, Value, VersionRecord};
use crate::query::{Key, Namespace};
use crate::store::{Registry, models, runs};

/// The attributes a version has, for keys like `attributes.bytes`.
pub const VERSION_ATTRIBUTES: [&str; 7] = [
    "version", "files", "bytes", "created", "actor", "tree", "run",
];

/// Returns one version with its run, to look its keys up.
pub struct VersionFields {
    record: VersionRecord,
    run: Option<RunRecord>,
}

impl VersionFields {
    /// Loads the version's run, when it names one that exists.
    pub fn load(reg: &Registry, record: VersionRecord) -> Result<VersionFields> {
        let run = match &record.run {
            Some(id) if runs::record_path(reg, id).is_file() => Some(runs::load(reg, id)?),
            _ => None,
        };
        Ok(VersionFields { record, run })
    }

    /// Returns the version record.
    pub fn record(&self) -> &VersionRecord {
        &self.record
    }

    /// Returns the value under `key`: metrics from the version's own copy, else from its
    /// run (for values logged after the push); params and tags from the run.
    pub fn field(&self, key: &Key) -> Option<Value> {
        let run = self.run.as_ref();
        match key.ns {
            Namespace::Metrics => self
                .record
                .metrics
                .get(&key.name)
                .or_else(|| run.and_then(|r| r.metrics.get(&key.name)))
                .map(|f| Value::Float(*f)),
            Namespace::Params => run.and_then(|r| r.params.get(&key.name)).cloned(),
            Namespace::Tags => run
                .and_then(|r| r.tags.get(&key.name))
                .map(|t| Value::Str(t.clone())),
            Namespace::Attributes => self.attribute(&key.name),
        }
    }

    /// Returns the names the version has a value under in namespace `ns` (metrics, params
    /// or tags; attributes are fixed, [`VERSION_ATTRIBUTES`]), sorted.
    pub fn names(&self, ns: Namespace) -> Vec<&str> {
        let run = self.run.as_ref();
        let mut names: Vec<&str> = match ns {
            Namespace::Metrics => self
                .record
                .metrics
                .keys()
                .chain(run.into_iter().flat_map(|r| r.metrics.keys()))
                .map(String::as_str)
                .collect(),
            Namespace::Params => run
                .into_iter()
                .flat_map(|r| r.params.keys())
                .map(String::as_str)
                .collect(),
            Namespace::Tags => run
                .into_iter()
                .flat_map(|r| r.tags.keys())
                .map(String::as_str)
                .collect(),
            Namespace::Attributes => VERSION_ATTRIBUTES.to_vec(),
        };
        names.sort_unstable();
        names.dedup();
        names
    }

    fn attribute(&self, name: &str) -> Option<Value> {
        let r = &self.record;
        let int = |n: u64| Some(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)));
        match name {
            "version" => int(r.version),
            "files" => int(r.files),
            "bytes" => int(r.bytes),
            "created" => Some(Value::Str(r.created.clone())),
            "actor" => Some(Value::Str(r.actor.clone())),
            "tree" => Some(Value::Str(r.tree.to_string())),
            "run" => r.run.as_ref().map(|id| Value::Str(id.to_string())),
            _ => None,
        }
    }
}

/// Returns a candidate version and the stage holders its gates compare with.
pub struct Candidate<'a> {
    reg: &'a Registry,
    fields: &'a VersionFields,
    state: Option<&'a StageState>,
    holders: RefCell<HashMap<u64, Option<VersionFields>>>,
}

impl<'a> Candidate<'a> {
    /// Returns the candidate `fields`, judged against the stages of `state`.
    pub fn new(
        reg: &'a Registry,
        fields: &'a VersionFields,
        state: Option<&'a StageState>,
    ) -> Candidate<'a> {
        Candidate {
            reg,
            fields,
            state,
            holders: RefCell::new(HashMap::new()),
        }
    }
}

impl Subject for Candidate<'_> {
    fn label(&self) -> String {
        self.fields.record.reference()
    }

    fn value(&self, key: &Key) -> Option<Value> {
        self.fields.field(key)
    }

    fn holder(&self, stage: &str, key: &Key) -> Option<(String, Option<Value>)> {
        let version = self.state?.holder(stage)?;
        let model = &self.fields.record.model;
        let label = format!("{model}@{version}");
        let mut holders = self.holders.borrow_mut();
        let loaded = holders.entry(version).or_insert_with(|| {
            models::load_version(self.reg, model, version)
                .and_then(|record| VersionFields::load(self.reg, record))
                .ok()
        });
        Some((label, loaded.as_ref().and_then(|f| f.field(key))))
    }
}
