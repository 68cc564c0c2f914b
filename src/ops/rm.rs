//! Removing versions and runs: every reference checked before anything is written,
//! then one recorded removal per model ([`crate::stage::remove`]), then a removal
//! record per run, and what happened returned as `--json` prints it.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use serde::Serialize;

use crate::error::Failure;
use crate::id::RunId;
use crate::lineage;
use crate::manifest::RunRemoval;
use crate::names::ModelName;
use crate::refspec::ModelRef;
use crate::stage::Stamp;
use crate::stage::remove::{self, Request as Removal};
use crate::store::{Registry, models, removals, retention, runs};

/// What `mreg rm` is asked to remove, as given.
pub struct Request<'a> {
    /// Version references (`churn@3`, `churn@staging`, `churn@latest`, a tree prefix)
    /// and run ids (or unique prefixes).
    pub refs: &'a [String],
    /// Whether the runs the versions came from go too.
    pub runs: bool,
    /// Whether the versions are those the retention policy of `config.toml` does not
    /// keep (of `model` only, when given), rather than `refs`.
    pub policy: bool,
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
    /// The versions and runs named that were removed before, untouched.
    pub already_removed: Vec<String>,
    /// The history entry written for each model.
    pub models: Vec<ModelRow>,
    /// The runs removed (or that would be).
    pub runs: Vec<RunRow>,
    /// The runs `--runs` left in place, because a surviving version came from them.
    pub kept_runs: Vec<KeptRun>,
}

/// One removed run.
#[derive(Debug, Serialize)]
pub struct RunRow {
    /// The run id.
    pub run: String,
    /// Its experiment.
    pub experiment: String,
}

/// A run `--runs` kept.
#[derive(Debug, Serialize)]
pub struct KeptRun {
    /// The run id.
    pub run: String,
    /// The surviving versions that came from it.
    pub versions: Vec<String>,
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
    let (targets, named_runs) = targets(reg, request)?;
    let stamp = Stamp::now(request.wait_s)?;
    let reason = request.reason.map(lineage::mask_text);
    let mut outcome = Outcome {
        result: "unchanged",
        removed: Vec::new(),
        already_removed: Vec::new(),
        models: Vec::new(),
        runs: Vec::new(),
        kept_runs: Vec::new(),
    };
    let run_plan = plan_runs(reg, request, &targets, &named_runs)?;
    outcome
        .already_removed
        .extend(run_plan.already.iter().cloned());
    outcome.kept_runs = run_plan.kept;
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
                reason: reason.as_deref().or(target.reason.as_deref()),
                dry_run: request.dry_run,
                keep_held: request.policy,
            },
            &stamp,
        )?;
        for &n in &report.removed {
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
    for (id, experiment) in run_plan.live {
        if !request.dry_run {
            removals::publish_run(
                reg,
                &RunRemoval {
                    format: crate::manifest::removal::FORMAT,
                    run: id.clone(),
                    time: stamp.time.clone(),
                    actor: stamp.actor.clone(),
                    reason: reason
                        .clone()
                        .or_else(|| request.policy.then(|| "retention policy".to_owned())),
                    command: Some(stamp.command.clone()),
                    ci_job: stamp.ci_job.clone(),
                },
            )?;
        }
        outcome.runs.push(RunRow {
            run: id.to_string(),
            experiment,
        });
    }
    if !outcome.removed.is_empty() || !outcome.runs.is_empty() {
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
    /// The reason recorded when none is given: the retention policy that decided.
    reason: Option<String>,
    /// Whether the runs of these versions go too (the policy's `remove_runs`).
    runs: bool,
}

/// Returns, by model, the versions the retention policy does not keep: of `model`
/// only, when given, else of every model with a policy.
fn policy_targets(reg: &Registry, request: &Request) -> Result<BTreeMap<String, Target>> {
    if !request.refs.is_empty() {
        return Err(Failure::usage(
            "--policy decides which versions go: name none (--model NAME limits it to one model)",
        )
        .into());
    }
    let config = reg.config()?;
    if config.retention.is_none() {
        return Err(Failure::error(
            "config.toml has no [retention] table, so --policy has nothing to apply; nothing was removed",
        )
        .hint("add one, e.g. [retention] keep_last = 10 and keep_within = \"30d\" (docs/lifecycle.md)")
        .into());
    }
    let names = match request.model {
        Some(name) => {
            let model = ModelName::parse(name)?;
            models::require_model(reg, &model)?;
            vec![model.to_string()]
        }
        None => models::list_models(reg)?,
    };
    let now = crate::clock::now()?;
    let mut out = BTreeMap::new();
    for model in names {
        let Some(policy) = config.retention_for(&model) else {
            continue;
        };
        let live = retention::to_remove(reg, &model, &policy, now)?;
        out.insert(
            model,
            Target {
                live,
                already: Vec::new(),
                reason: Some(retention::describe(&policy)),
                runs: policy.remove_runs,
            },
        );
    }
    Ok(out)
}

/// Resolves every reference before anything is written: one that names nothing fails
/// the whole command. Returns the versions by model, and the runs named by id.
fn targets(
    reg: &Registry,
    request: &Request,
) -> Result<(BTreeMap<String, Target>, BTreeSet<RunId>)> {
    if request.policy {
        return Ok((policy_targets(reg, request)?, BTreeSet::new()));
    }
    let mut out: BTreeMap<String, Target> = BTreeMap::new();
    let mut named_runs = BTreeSet::new();
    if request.refs.is_empty() && request.model.is_none() {
        return Err(Failure::usage("name the versions or runs to remove")
            .hint("mreg rm churn@3, mreg rm --model churn for every version of churn, or mreg rm RUN-ID")
            .into());
    }
    if let Some(name) = request.model {
        let model = ModelName::parse(name)?;
        models::require_model(reg, &model)?;
        let removed = removals::list(reg, model.as_str())?;
        let held = held_now(reg, model.as_str())?;
        let target = out.entry(model.to_string()).or_default();
        for n in models::list_versions(reg, model.as_str())? {
            if removed.contains_key(&n) && !held.contains(&n) {
                target.already.push(n);
            } else {
                target.live.push(n);
            }
        }
    }
    for text in request.refs {
        if let Some(id) = runs::named(reg, text)? {
            named_runs.insert(id);
            continue;
        }
        if !text.contains('@') {
            let model = ModelName::parse(text)?;
            if models::list_versions(reg, model.as_str())?.is_empty() {
                return Err(Failure::error(format!("{text:?} names no model and no run"))
                    .hint("`mreg ls` lists the models and `mreg runs` the runs (ids are hex, 4 or more digits name one)")
                    .into());
            }
            // A bare name would mean its newest version; a removal goes by what is said.
            return Err(Failure::usage(format!(
                "{text:?} names a model, not a version: rm takes NAME@N, NAME@STAGE or NAME@latest"
            ))
            .hint(format!(
                "mreg rm {text}@latest removes its newest version; mreg rm --model {text} removes every version"
            ))
            .into());
        }
        let reference = ModelRef::parse(text)?;
        let (record, removal) = models::resolve_any(reg, &reference)?;
        // A removed version a stage still holds (two registries' syncs crossed) is
        // removed again, so that --force can empty the stage.
        let held = removal.is_some() && held_now(reg, &record.model)?.contains(&record.version);
        let target = out.entry(record.model.clone()).or_default();
        let list = if removal.is_some() && !held {
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
    Ok((out, named_runs))
}

/// Returns the versions of `model` its stages hold now.
fn held_now(reg: &Registry, model: &str) -> Result<BTreeSet<u64>> {
    Ok(crate::store::stages::current(reg, model)?
        .map(|(_, s)| s.stages.into_values().collect())
        .unwrap_or_default())
}

/// What happens to runs: those removed, those removed before, those `--runs` keeps.
struct RunPlan {
    /// Runs to remove, with their experiments, by id.
    live: Vec<(RunId, String)>,
    /// Runs named that were removed before.
    already: Vec<String>,
    /// Runs `--runs` keeps, as surviving versions came from them.
    kept: Vec<KeptRun>,
}

/// Decides which runs go: the runs named, and with `--runs` those the versions being
/// removed came from. A run a surviving version came from is the evidence of that
/// version: named, it fails the command (nothing is written); reached through
/// `--runs`, it is kept and reported.
fn plan_runs(
    reg: &Registry,
    request: &Request,
    targets: &BTreeMap<String, Target>,
    named: &BTreeSet<RunId>,
) -> Result<RunPlan> {
    let mut wanted: BTreeSet<RunId> = named.clone();
    for (model, target) in targets {
        if request.runs || target.runs {
            for &n in target.live.iter().chain(&target.already) {
                if let Some(run) = models::load_version(reg, model, n)?.run {
                    wanted.insert(run);
                }
            }
        }
    }
    let mut plan = RunPlan {
        live: Vec::new(),
        already: Vec::new(),
        kept: Vec::new(),
    };
    if wanted.is_empty() {
        return Ok(plan);
    }
    let survivors = surviving_versions_by_run(reg, targets)?;
    for id in wanted {
        if removals::of_run(reg, &id)?.is_some() {
            plan.already.push(id.to_string());
            continue;
        }
        if let Some(versions) = survivors.get(&id) {
            if named.contains(&id) {
                return Err(Failure::error(format!(
                    "{} came from run {id}, so the run was not removed, nor anything else",
                    versions.join(" and ")
                ))
                .hint(format!(
                    "a run is the evidence of the versions it made: remove them too (mreg rm {} {id})",
                    versions.join(" ")
                ))
                .into());
            }
            plan.kept.push(KeptRun {
                run: id.to_string(),
                versions: versions.clone(),
            });
            continue;
        }
        let experiment = runs::load_start(reg, &id)?.experiment;
        plan.live.push((id, experiment));
    }
    Ok(plan)
}

/// Returns, by run, the versions that came from it and survive this removal.
fn surviving_versions_by_run(
    reg: &Registry,
    targets: &BTreeMap<String, Target>,
) -> Result<BTreeMap<RunId, Vec<String>>> {
    let mut out: BTreeMap<RunId, Vec<String>> = BTreeMap::new();
    for model in models::list_models(reg)? {
        let going = targets.get(&model).map_or(&[][..], |t| t.live.as_slice());
        for n in models::live_versions(reg, &model)? {
            if going.contains(&n) {
                continue;
            }
            if let Some(run) = models::load_version(reg, &model, n)?.run {
                out.entry(run).or_default().push(format!("{model}@{n}"));
            }
        }
    }
    Ok(out)
}
