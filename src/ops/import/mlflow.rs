//! `mreg import mlflow PATH`: an MLflow tracking store becomes mreg runs and versions.
//!
//! Runs keep their experiment, name, status, start and end, user, params (typed as
//! `--param` types them, secret-looking ones masked), tags, every metric point with its
//! step and time, and the git commit and repository MLflow recorded. Each is named by
//! its MLflow run id (the mreg id is a hash of it), so importing again finds the runs
//! it imported and adds only new ones. A run still running is left for a later import;
//! a deleted one is left out.
//!
//! Registered model versions become versions of the mreg model of the same name, their
//! artifact folder stored as the tree, linked to their run; the run then carries the
//! tag `mlflow.version.NAME.N` naming the mreg version, which is how an import knows a
//! version is in. Legacy stages (Staging, Production, Archived) and aliases move the
//! mreg stages of the same names (or those `--alias ALIAS=STAGE` gives).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use serde::Serialize;

use crate::clock;
use crate::id::RunId;
use crate::ingest::mlflow::{MlRun, MlStore, MlVersion};
use crate::manifest::RunRecord;
use crate::manifest::lineage::Source;
use crate::manifest::run::{End, FORMAT, Status};
use crate::manifest::series::{Point, Series, chunk_of};
use crate::names::ModelName;
use crate::ops::inputs::{Additions, Inputs, mask_secrets};
use crate::ops::push::{self, Notice, Request};
use crate::ops::record;
use crate::stage::promote::Verdict;
use crate::store::snapshot::Reading;
use crate::store::write::Staging;
use crate::store::{Progress, Registry, runs, stages};

/// What `mreg import mlflow` is asked to do.
pub struct MlflowRequest<'a> {
    /// The store: an `mlruns` folder or a database file.
    pub path: &'a Path,
    /// Aliases mapped onto stages (`--alias champion=production`).
    pub aliases: &'a BTreeMap<String, String>,
    /// Folders artifacts may also be read from (`--artifacts`), beside the store's.
    pub artifacts: &'a [std::path::PathBuf],
    /// Param and tag keys kept as they are though they look secret (`--not-secret`).
    pub not_secret: &'a [String],
    /// The folder the command runs in.
    pub cwd: &'a Path,
}

/// What an import did, as `--json` prints it.
#[derive(Debug, Default, Serialize)]
pub struct MlflowImported {
    /// The store read.
    pub store: String,
    /// Runs the store holds.
    pub runs_found: usize,
    /// Runs imported now.
    pub runs_imported: usize,
    /// Runs imported before.
    pub runs_already: usize,
    /// Runs left out, with why (`running`, `deleted`).
    pub runs_left_out: BTreeMap<String, usize>,
    /// Each registered model version, and what became of it.
    pub versions: Vec<VersionOutcome>,
    /// Stage moves made for legacy stages and aliases.
    pub stages: Vec<StageOutcome>,
    /// Aliases that moved no stage, as `MODEL:ALIAS`: no stage here stands for them
    /// (`--alias ALIAS=STAGE` maps one), or, with why, their version was not imported or
    /// another alias took their stage.
    pub aliases_unmapped: Vec<String>,
}

/// What became of one MLflow model version.
#[derive(Debug, Serialize)]
pub struct VersionOutcome {
    /// The registered model.
    pub model: String,
    /// Its MLflow version number.
    pub version: u64,
    /// The mreg version it is, when imported.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// Whether it was imported now (else before, or not at all).
    pub new: bool,
    /// Why it was not imported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// A stage an MLflow stage or alias moved.
#[derive(Debug, Serialize)]
pub struct StageOutcome {
    /// The mreg version.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The mreg stage.
    pub stage: String,
    /// What in MLflow put it there: `stage Production`, `alias champion`.
    pub from: String,
    /// Whether the stage moved now (else it held the version already, or refused).
    pub moved: bool,
    /// Why the stage did not move, when it refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// The longest param or tag key kept (MLflow's own limit is 250).
const KEY_LIMIT: usize = 250;

/// Returns whether a param or tag key is kept: short, without control characters.
fn key_ok(key: &str) -> bool {
    !key.is_empty() && key.len() <= KEY_LIMIT && !key.chars().any(char::is_control)
}

/// Returns the mreg id of the run imported from MLflow run `id`.
pub fn run_id_of(id: &str) -> RunId {
    RunId::from_hash(&blake3::hash(format!("mlflow run\0{id}").as_bytes()))
}

/// Returns the mreg id of the run recorded for a model version that names no run.
fn registration_run_id(model: &str, version: u64) -> RunId {
    RunId::from_hash(&blake3::hash(
        format!("mlflow model version\0{model}\0{version}").as_bytes(),
    ))
}

/// Returns a time in milliseconds as RFC 3339 with milliseconds.
fn time_of(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    clock::format_time_ms(UNIX_EPOCH + Duration::from_millis(ms))
}

/// Returns the tag of a run naming the mreg version an MLflow version became.
fn version_tag(model: &str, version: u64) -> String {
    format!("mlflow.version.{model}.{version}")
}

/// Builds the mreg run record of an MLflow run, storing its long series in `staging`.
fn record_of(
    run: &MlRun,
    staging: &Staging,
    not_secret: &[String],
    warn: &mut dyn FnMut(String),
) -> Result<RunRecord> {
    let status = match run.status.as_str() {
        "FAILED" => Status::Failed,
        "KILLED" => Status::Killed,
        _ => Status::Finished,
    };
    let mut add = Additions::default();
    let mut odd = 0;
    for (key, value) in &run.params {
        if key_ok(key) {
            add.params.insert(key.clone(), crate::ingest::infer(value));
        } else {
            odd += 1;
        }
    }
    for (key, value) in &run.tags {
        if key_ok(key) {
            add.tags.insert(key.clone(), value.clone());
        } else {
            odd += 1;
        }
    }
    if odd > 0 {
        warn(format!(
            "run {}: {odd} params or tags were left out: their keys are longer than {KEY_LIMIT} bytes or hold control characters",
            run.id
        ));
    }
    add.tags.insert("mlflow.run_id".to_owned(), run.id.clone());
    mask_secrets(&mut add, not_secret, &mut |w| {
        warn(format!("run {}: {w}", run.id));
    });
    let mut series = BTreeMap::new();
    let mut metrics = BTreeMap::new();
    for (key, points) in &run.metrics {
        let mut points: Vec<Point> = points
            .iter()
            .map(|p| Point(p.step, p.value, time_of(p.timestamp_ms)))
            .collect();
        points.sort_by(|a, b| (a.0, &a.2).cmp(&(b.0, &b.2)));
        let chunk = chunk_of(points.clone(), &mut |bytes| {
            Ok(staging.add_bytes(bytes)?.id)
        })?;
        let s = Series::of(&points, chunk);
        metrics.insert(key.clone(), s.last);
        series.insert(key.clone(), s);
    }
    let tag = |k: &str| run.tags.get(k).filter(|v| !v.is_empty()).cloned();
    let source = tag("mlflow.source.git.commit").map(|commit| Source {
        commit: Some(commit),
        branch: tag("mlflow.source.git.branch"),
        dirty: false,
        diff_hash: None,
        remote: tag("mlflow.source.git.repoURL").map(|r| crate::lineage::mask_text(&r)),
        root: tag("mlflow.source.name").unwrap_or_default(),
    });
    let start = time_of(run.start_ms);
    let end_ms = run.end_ms.unwrap_or(run.start_ms).max(run.start_ms);
    Ok(RunRecord {
        format: FORMAT,
        id: run_id_of(&run.id),
        experiment: crate::lineage::mask_text(if run.experiment.is_empty() {
            "Default"
        } else {
            &run.experiment
        }),
        name: run.name.clone(),
        status,
        start,
        actor: if run.user.is_empty() {
            "mlflow".to_owned()
        } else {
            run.user.clone()
        },
        end: Some(End {
            status,
            time: time_of(end_ms),
            duration_s: (end_ms - run.start_ms) as f64 / 1000.0,
            exit_code: None,
            signal: None,
            received: None,
            error: None,
        }),
        command: None,
        params: add.params,
        metrics,
        tags: add.tags,
        series,
        source,
        data: Vec::new(),
        parents: Vec::new(),
        outputs: Vec::new(),
        environment: None,
    })
}

/// Returns the record of the run standing for a model version that names no run.
fn registration_record(version: &MlVersion) -> RunRecord {
    let time = time_of(version.created_ms);
    let mut tags = BTreeMap::new();
    tags.insert("mlflow.model_name".to_owned(), version.model.clone());
    tags.insert(
        "mlflow.model_version".to_owned(),
        version.version.to_string(),
    );
    RunRecord {
        format: FORMAT,
        id: registration_run_id(&version.model, version.version),
        experiment: "mlflow-registry".to_owned(),
        name: Some(format!("{} version {}", version.model, version.version)),
        status: Status::Finished,
        start: time.clone(),
        actor: "mlflow".to_owned(),
        end: Some(End {
            status: Status::Finished,
            time,
            duration_s: 0.0,
            exit_code: None,
            signal: None,
            received: None,
            error: None,
        }),
        command: None,
        params: BTreeMap::new(),
        metrics: BTreeMap::new(),
        tags,
        series: BTreeMap::new(),
        source: None,
        data: Vec::new(),
        parents: Vec::new(),
        outputs: Vec::new(),
        environment: None,
    }
}

/// Returns the mreg model name of an MLflow registered model: the name, with each
/// character a model name cannot hold made `-`.
fn model_name(name: &str) -> Option<ModelName> {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    ModelName::parse(cleaned.trim_matches('-')).ok()
}

/// Imports the store at `request.path`.
pub fn import(
    reg: &Registry,
    request: &MlflowRequest,
    progress: &dyn Progress,
    warn: &mut dyn FnMut(String),
) -> Result<MlflowImported> {
    progress.phase("reading the MLflow store");
    let store = crate::ingest::mlflow::read(request.path);
    progress.finish();
    let mut store = store?;
    store.roots.extend(request.artifacts.iter().cloned());
    let config = reg.config()?;
    for stage in request.aliases.values() {
        config.require_stage(stage)?;
    }
    let mut out = MlflowImported {
        store: store.what.clone(),
        runs_found: store.runs.len(),
        ..MlflowImported::default()
    };
    progress.phase("importing runs");
    let imported_runs = import_runs(reg, &store, request.not_secret, &mut out, warn);
    progress.finish();
    let imported_runs = imported_runs?;
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for version in &store.versions {
        let outcome = match claim_name(&mut names, &version.model) {
            Err(why) => VersionOutcome {
                model: version.model.clone(),
                version: version.version,
                reference: None,
                new: false,
                skipped: Some(why),
            },
            Ok(()) => import_version(reg, request, &store, version, &imported_runs, progress)
                .unwrap_or_else(|err| VersionOutcome {
                    model: version.model.clone(),
                    version: version.version,
                    reference: None,
                    new: false,
                    skipped: Some(format!("{err:#}")),
                }),
        };
        out.versions.push(outcome);
    }
    move_stages(reg, request, &store, &mut out)?;
    Ok(out)
}

/// Claims the mreg model name a registered model's name becomes, refusing one that
/// another registered model of the store claimed already (`churn model` and
/// `churn-model`, or `Churn` and `churn`): their versions would mix in one model.
fn claim_name(names: &mut BTreeMap<String, String>, model: &str) -> Result<(), String> {
    let Some(name) = model_name(model) else {
        return Ok(());
    };
    let key = name.as_str().to_ascii_lowercase();
    match names.get(&key) {
        Some(first) if first != model => Err(format!(
            "its name becomes the model {}, which the registered model {first:?} takes already",
            name.as_str()
        )),
        Some(_) => Ok(()),
        None => {
            names.insert(key, model.to_owned());
            Ok(())
        }
    }
}

/// Imports the runs not imported before, and the registration runs of versions that
/// name none; returns the MLflow ids of the runs that are in the registry now.
fn import_runs(
    reg: &Registry,
    store: &MlStore,
    not_secret: &[String],
    out: &mut MlflowImported,
    warn: &mut dyn FnMut(String),
) -> Result<std::collections::HashSet<String>> {
    let staging = Staging::new(reg);
    let mut records = Vec::new();
    let mut present = std::collections::HashSet::new();
    for run in &store.runs {
        let why = if run.deleted {
            Some("deleted")
        } else if matches!(run.status.as_str(), "RUNNING" | "SCHEDULED") {
            Some("still running")
        } else if present.contains(&run.id) {
            Some("given twice")
        } else {
            None
        };
        if let Some(why) = why {
            *out.runs_left_out.entry(why.to_owned()).or_default() += 1;
            continue;
        }
        present.insert(run.id.clone());
        if runs::record_path(reg, &run_id_of(&run.id)).is_file() {
            out.runs_already += 1;
            continue;
        }
        let record = record_of(run, &staging, not_secret, warn)?;
        match record.to_toml() {
            Ok(text) if text.len() as u64 <= crate::store::files::RECORD_LIMIT => {
                records.push(record);
            }
            _ => {
                present.remove(&run.id);
                *out.runs_left_out.entry("too large".to_owned()).or_default() += 1;
                warn(format!(
                    "run {} was left out: its params, tags and metrics make a record larger than {} MiB",
                    run.id,
                    crate::store::files::RECORD_LIMIT >> 20
                ));
            }
        }
    }
    for version in &store.versions {
        let named = version.run_id.as_ref().is_some_and(|r| present.contains(r));
        if !named
            && !runs::record_path(reg, &registration_run_id(&version.model, version.version))
                .is_file()
        {
            records.push(registration_record(version));
        }
    }
    // Series objects before the records that name them.
    staging.publish()?;
    let created = runs::create_imported(reg, &records)?;
    let registrations = records
        .iter()
        .filter(|r| r.experiment == "mlflow-registry" && created.contains(&r.id))
        .count();
    out.runs_imported = created.len() - registrations;
    Ok(present)
}

/// Imports one model version, unless its run says it was imported before.
fn import_version(
    reg: &Registry,
    request: &MlflowRequest,
    store: &MlStore,
    version: &MlVersion,
    present: &std::collections::HashSet<String>,
    progress: &dyn Progress,
) -> Result<VersionOutcome> {
    let mut outcome = VersionOutcome {
        model: version.model.clone(),
        version: version.version,
        reference: None,
        new: false,
        skipped: None,
    };
    let run_id = match &version.run_id {
        Some(id) if present.contains(id) => run_id_of(id),
        _ => registration_run_id(&version.model, version.version),
    };
    let tag = version_tag(&version.model, version.version);
    // The version may have been imported before its run was (it was still running):
    // then the registration run holds the tag.
    let registration = registration_run_id(&version.model, version.version);
    for id in [&run_id, &registration] {
        if !runs::record_path(reg, id).is_file() {
            continue;
        }
        if let Some(reference) = runs::load(reg, id)?.tags.get(&tag) {
            outcome.reference = Some(reference.clone());
            return Ok(outcome);
        }
    }
    let Some(model) = model_name(&version.model) else {
        outcome.skipped = Some(format!(
            "{:?} cannot be made a model name (letters, digits, `.`, `_`, `-`)",
            version.model
        ));
        return Ok(outcome);
    };
    if version.status != "READY" {
        outcome.skipped = Some(format!("its status is {}, not READY", version.status));
        return Ok(outcome);
    }
    let dir = match store.artifacts_of(version) {
        Ok(dir) if dir.is_dir() => dir,
        Ok(dir) => {
            outcome.skipped = Some(format!("its files are not at {}", dir.display()));
            return Ok(outcome);
        }
        Err(why) => {
            outcome.skipped = Some(why);
            return Ok(outcome);
        }
    };
    let message = format!(
        "imported from MLflow: {} version {} ({})",
        version.model, version.version, version.source
    );
    let run_text = run_id.to_string();
    let inputs = Inputs::default();
    let push_request = Request {
        dir: &dir,
        model: &model,
        message: Some(&message),
        run: Some(&run_text),
        experiment: None,
        inputs: &inputs,
        stage: None,
        cwd: request.cwd,
        reading: Reading::default(),
        source: None,
    };
    // A push into an imported run adds nothing to it: its warnings about what it did
    // not record have nothing to say here.
    let pushed = push::push(reg, &push_request, progress, &mut |_: Notice| {})?;
    let reference = pushed.outcome.reference.clone();
    let mut add = Additions::default();
    add.tags.insert(tag, reference.clone());
    record::log(reg, &run_id, &clock::format_time_ms(clock::now()?), add)?;
    outcome.reference = Some(reference);
    outcome.new = pushed.outcome.created;
    Ok(outcome)
}

/// Moves `stage` of `model` to `reference` (version `number`), unless it holds it.
fn move_stage(
    reg: &Registry,
    model: &str,
    number: u64,
    reference: &str,
    stage: &str,
    from: &str,
) -> Result<StageOutcome> {
    let holds =
        stages::current(reg, model)?.is_some_and(|(_, state)| state.holder(stage) == Some(number));
    let mut outcome = StageOutcome {
        reference: reference.to_owned(),
        stage: stage.to_owned(),
        from: from.to_owned(),
        moved: false,
        refused: None,
    };
    if !holds {
        let reason = format!("imported from MLflow ({from})");
        let promote_request = crate::ops::promote::Request {
            reference,
            stage,
            gates: &[],
            force: false,
            reason: Some(&reason),
            expect: None,
            allow_downgrade: true,
            wait_s: 10.0,
            dry_run: false,
        };
        match crate::ops::promote::promote(reg, &promote_request) {
            Ok(done) => match done.report.verdict {
                Verdict::Moved => outcome.moved = true,
                Verdict::Unchanged | Verdict::WouldMove => {}
                Verdict::Refused | Verdict::WouldRefuse => {
                    outcome.refused =
                        Some("the stage's policy refused it (`mreg history` says why)".to_owned());
                }
            },
            Err(err) => outcome.refused = Some(format!("{err:#}")),
        }
    }
    Ok(outcome)
}

/// Moves mreg stages as MLflow's legacy stages and aliases say: for each model and
/// stage, the highest version MLflow gives it, an alias winning over a legacy stage.
fn move_stages(
    reg: &Registry,
    request: &MlflowRequest,
    store: &MlStore,
    out: &mut MlflowImported,
) -> Result<()> {
    let config = reg.config()?;
    let reference_of = |model: &str, version: u64| {
        out.versions
            .iter()
            .find(|v| v.model == model && v.version == version)
            .and_then(|v| v.reference.clone())
    };
    // (model, stage) → (reference, from)
    let mut wanted: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for version in &store.versions {
        let Some(stage) = &version.stage else {
            continue;
        };
        let lower = stage.to_ascii_lowercase();
        if !config.has_stage(&lower) {
            continue;
        }
        if let Some(reference) = reference_of(&version.model, version.version) {
            wanted.insert(
                (version.model.clone(), lower),
                (reference, format!("stage {stage}")),
            );
        }
    }
    for ((model, alias), version) in &store.aliases {
        let stage = match request.aliases.get(alias) {
            Some(stage) => stage.clone(),
            None if config.has_stage(alias) => alias.clone(),
            None => {
                out.aliases_unmapped.push(format!("{model}:{alias}"));
                continue;
            }
        };
        let Some(reference) = reference_of(model, *version) else {
            out.aliases_unmapped.push(format!(
                "{model}:{alias} (its version {version} was not imported)"
            ));
            continue;
        };
        let key = (model.clone(), stage.clone());
        if let Some((_, from)) = wanted
            .get(&key)
            .filter(|(_, from)| from.starts_with("alias "))
        {
            out.aliases_unmapped
                .push(format!("{model}:{alias} ({stage} goes to the {from})"));
            continue;
        }
        if let Some((before, from)) = wanted
            .get(&key)
            .filter(|(_, from)| from.starts_with("stage "))
        {
            out.stages.push(StageOutcome {
                reference: before.clone(),
                stage: stage.clone(),
                from: from.clone(),
                moved: false,
                refused: Some(format!(
                    "the alias {alias} takes {stage}: an alias wins over a legacy stage"
                )),
            });
        }
        wanted.insert(key, (reference, format!("alias {alias}")));
    }
    for ((_, stage), (reference, from)) in wanted {
        let (model, number) = reference.split_once('@').unwrap_or((&reference, "0"));
        let number: u64 = number.parse().unwrap_or(0);
        out.stages
            .push(move_stage(reg, model, number, &reference, &stage, &from)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_registered_models_never_share_one_mreg_model() {
        let mut names = BTreeMap::new();
        assert!(claim_name(&mut names, "churn model").is_ok());
        assert!(
            claim_name(&mut names, "churn model").is_ok(),
            "its own name again"
        );
        let clash = claim_name(&mut names, "churn-model").unwrap_err();
        assert!(clash.contains("\"churn model\" takes already"), "{clash}");
        assert!(
            claim_name(&mut names, "Churn-Model").is_err(),
            "case twins too"
        );
        assert!(claim_name(&mut names, "vision").is_ok());
    }
}
