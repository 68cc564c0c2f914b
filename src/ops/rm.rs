//! Removing versions: the references checked before anything is written, then one
//! recorded removal per model ([`crate::stage::remove`]), and what happened returned as
//! `--json` prints it.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::error::Failure;
use crate::lineage;
use crate::names::ModelName;
use crate::refspec::ModelRef;
use crate::stage::Stamp;
use crate::stage::remove::{self, Request as Removal};
use crate::store::{Registry, models, removals};

/// What `mreg rm` is asked to remove, as given.
pub struct Request<'a> {
    /// Version references: `churn@3`, `churn@staging`, `churn@latest`, a tree prefix.
    pub refs: &'a [String],
    /// A whole model: every version it has.
    pub model: Option<&'a str>,
    /// Whether stages holding a version may be emptied; needs `reason`.
    pub force: bool,
    /// Why; recorded with its credentials masked ([`lineage::mask_text`]).
    pub reason: Option<&'a str>,
    /// Seconds to wait for another move of the model to finish.
    pub wait_s: f64,
    /// Whether to decide only, writing nothing.
    pub dry_run: bool,
}

/// Returns what `mreg rm` did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// `removed`, `would-remove`, or `unchanged` when everything named was removed before.
    pub result: &'static str,
    /// The versions removed (or that would be), ascending by model and number.
    pub removed: Vec<Row>,
    /// The versions named that were removed before, untouched.
    pub already_removed: Vec<String>,
    /// The history entry written for each model.
    pub models: Vec<ModelRow>,
}

/// One removed version.
#[derive(Debug, Serialize)]
pub struct Row {
    /// The model.
    pub model: String,
    /// The version number.
    pub version: u64,
    /// Its tree hash.
    pub tree: String,
    /// The bytes of its files.
    pub bytes: u64,
    /// The stages it held, emptied with `--force`.
    pub emptied: Vec<String>,
    /// The run it came from, kept.
    pub run: Option<String>,
}

/// The removal recorded in one model's history.
#[derive(Debug, Serialize)]
pub struct ModelRow {
    /// The model.
    pub model: String,
    /// The state written; `null` in a dry run.
    pub state: Option<String>,
    /// Its number in the history.
    pub number: Option<u64>,
    /// How many times another writer moved the stages first.
    pub retries: u32,
}

/// Removes the versions named, one recorded move per model.
pub fn rm(reg: &Registry, request: &Request) -> Result<Outcome> {
    if request.force && request.reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(
            Failure::usage("--force needs --reason TEXT: the reason is recorded")
                .hint(
                    "say why a stage may lose its version, e.g. --reason 'trained on leaked data'",
                )
                .into(),
        );
    }
    let targets = targets(reg, request)?;
    let stamp = Stamp::now(request.wait_s)?;
    let reason = request.reason.map(lineage::mask_text);
    let mut outcome = Outcome {
        result: "unchanged",
        removed: Vec::new(),
        already_removed: Vec::new(),
        models: Vec::new(),
    };
    for (model, target) in &targets {
        outcome
            .already_removed
            .extend(target.already.iter().map(|n| format!("{model}@{n}")));
        if target.live.is_empty() {
            continue;
        }
        let report = remove::remove(
            reg,
            &Removal {
                model,
                versions: &target.live,
                force: request.force,
                reason: reason.as_deref(),
                dry_run: request.dry_run,
            },
            &stamp,
        )?;
        for &n in &target.live {
            let record = models::load_version(reg, model, n)?;
            outcome.removed.push(Row {
                model: model.clone(),
                version: n,
                tree: record.tree.to_string(),
                bytes: record.bytes,
                emptied: report
                    .emptied
                    .iter()
                    .filter(|e| e.version == n)
                    .map(|e| e.stage.clone())
                    .collect(),
                run: record.run.map(|r| r.to_string()),
            });
        }
        outcome.models.push(ModelRow {
            model: model.clone(),
            state: report.state.as_ref().map(|(id, _)| id.to_string()),
            number: report.state.as_ref().map(|(_, n)| *n),
            retries: report.retries,
        });
    }
    if !outcome.removed.is_empty() {
        outcome.result = if request.dry_run {
            "would-remove"
        } else {
            "removed"
        };
    }
    Ok(outcome)
}

/// The versions of one model a removal names.
#[derive(Default)]
struct Target {
    /// Not removed yet, ascending.
    live: Vec<u64>,
    /// Removed before.
    already: Vec<u64>,
}

/// Resolves every reference before anything is written: one that names nothing fails
/// the whole command.
fn targets(reg: &Registry, request: &Request) -> Result<BTreeMap<String, Target>> {
    let mut out: BTreeMap<String, Target> = BTreeMap::new();
    if request.refs.is_empty() && request.model.is_none() {
        return Err(Failure::usage("name the versions to remove")
            .hint("mreg rm churn@3, or mreg rm --model churn for every version of churn")
            .into());
    }
    if let Some(name) = request.model {
        let model = ModelName::parse(name)?;
        models::require_model(reg, &model)?;
        let removed = removals::list(reg, model.as_str())?;
        let target = out.entry(model.to_string()).or_default();
        for n in models::list_versions(reg, model.as_str())? {
            if removed.contains_key(&n) {
                target.already.push(n);
            } else {
                target.live.push(n);
            }
        }
    }
    for text in request.refs {
        let reference = ModelRef::parse(text)?;
        let (record, removal) = models::resolve_any(reg, &reference)?;
        let target = out.entry(record.model.clone()).or_default();
        let list = if removal.is_some() {
            &mut target.already
        } else {
            &mut target.live
        };
        if !list.contains(&record.version) {
            list.push(record.version);
        }
    }
    for target in out.values_mut() {
        target.live.sort_unstable();
        target.already.sort_unstable();
    }
    Ok(out)
}
