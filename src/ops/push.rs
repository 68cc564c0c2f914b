//! Pushing a model folder: every file hashed into the store (what is stored already is
//! not stored again), the tree published after its objects, the run it comes from
//! recorded or linked, and the version record created last.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::inputs::{self, Additions, Inputs};
use super::promote::{self, Pending};
use super::record;
use crate::clock;
use crate::error::Failure;
use crate::id::{RunId, TreeId};
use crate::lineage;
use crate::manifest::VersionRecord;
use crate::names::{self, ModelName};
use crate::stage::promote::Report;
use crate::store::runindex::RunSummary;
use crate::store::snapshot::{self, Sink, Skipped};
use crate::store::statcache::StatCache;
use crate::store::write::Staging;
use crate::store::{Progress, Registry, models, runs};

/// What `mreg push` is asked to do, as given.
pub struct Request<'a> {
    /// The folder to push.
    pub dir: &'a Path,
    /// The model.
    pub model: &'a ModelName,
    /// A message kept with the version, its credentials masked ([`lineage::mask_text`]).
    pub message: Option<&'a str>,
    /// The run that produced the model (`--run`), else `MREG_RUN_ID`'s.
    pub run: Option<&'a str>,
    /// The experiment of a run push records itself.
    pub experiment: Option<&'a str>,
    /// Params, metrics, data and parents for the run.
    pub inputs: &'a Inputs,
    /// A stage to promote the version to afterwards, and its gates.
    pub stage: Option<(&'a str, &'a [String])>,
    /// The folder push runs in (a run it records starts there).
    pub cwd: &'a Path,
    /// How the folder is read: links out of it followed, names left out (an import).
    pub reading: snapshot::Reading,
    /// Where the files came from, for the run push records, when not the git work
    /// tree of `cwd` (an import of a Hugging Face snapshot).
    pub source: Option<crate::manifest::lineage::Source>,
}

/// Returns what a push did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The model.
    pub model: String,
    /// The version pushed, or the latest one when nothing changed.
    pub version: u64,
    /// `NAME@N`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Whether a new version was created.
    pub created: bool,
    /// The folder's tree hash.
    pub tree: TreeId,
    /// The version's run.
    pub run: Option<RunId>,
    /// Regular files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Bytes the store did not hold before.
    pub new_bytes: u64,
    /// Bytes sent to the bucket, for a registry used as `--registry s3://…`.
    pub sent_bytes: Option<u64>,
    /// Bytes read and hashed (files unchanged since the last push are not).
    pub hashed_bytes: u64,
    /// Paths left out.
    pub skipped: Vec<Skipped>,
    /// The `--stage` promotion, when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<promote::Outcome>,
}

impl Outcome {
    /// Returns the outcome of a push that found `record` holding its content already.
    pub fn unchanged(record: &VersionRecord, sent_bytes: Option<u64>) -> Outcome {
        Outcome {
            model: record.model.clone(),
            version: record.version,
            reference: record.reference(),
            created: false,
            tree: record.tree,
            run: record.run.clone(),
            files: record.files,
            bytes: record.bytes,
            new_bytes: 0,
            sent_bytes,
            hashed_bytes: 0,
            skipped: Vec::new(),
            promotion: None,
        }
    }
}

/// Returns what a push did, and what is left to do: the `--stage` promotion.
pub struct Pushed {
    /// What `--json` prints; its `promotion` is filled in by whoever promotes.
    pub outcome: Outcome,
    /// The version record pushed (or the unchanged latest).
    pub record: VersionRecord,
    /// The bucket the push sent its objects to, for a mirror.
    pub sent_to: Option<String>,
    /// The promotion to run next, checked already.
    pub stage: Option<Pending>,
}

impl Pushed {
    /// Runs the `--stage` promotion, if one was asked for, through the stage's policy
    /// and the gates, and puts it in the outcome; returns the stage and its report.
    pub fn promote(&mut self, reg: &Registry) -> Result<Option<(String, Report)>> {
        let Some(pending) = self.stage.take() else {
            return Ok(None);
        };
        let promoted = pending.promote(reg, &self.record)?;
        self.outcome.promotion = Some(promoted.outcome);
        Ok(Some((promoted.stage, promoted.report)))
    }
}

/// Checks the names a push is given, before the registry is even opened.
pub fn check_names(model: &str, experiment: Option<&str>) -> Result<ModelName> {
    let model = ModelName::parse(model)?;
    if let Some(experiment) = experiment {
        names::check_label("--experiment", experiment)?;
    }
    Ok(model)
}

/// Pushes a folder as the model's next version. Content identical to the latest version
/// records nothing and returns that version. `notify` hears, as they happen, of inputs
/// left out, of paths the folder's scan skipped, and of what was given but not recorded.
pub fn push(
    reg: &Registry,
    request: &Request,
    progress: &dyn Progress,
    notify: &mut dyn FnMut(Notice),
) -> Result<Pushed> {
    reg.backend()
        .require_conditional_writes("numbering a version")?;
    let dir = snapshot::check_folder(request.dir)?;
    refuse_case_twin(reg, request.model)?;
    let stage = request
        .stage
        .map(|(stage, gates)| Pending::check(reg, stage, gates, 10.0))
        .transpose()?;
    let now = clock::now()?;
    let created = clock::format_time(now);
    // Run records and events carry milliseconds, so runs sort in the order they started.
    let run_time = clock::format_time_ms(now);
    let target = linked_run(reg, request)?;
    // From the first look at what the store holds to the last record naming it.
    let _writing = reg.writing()?;
    let add = inputs::collect(reg, request.inputs, &run_time, progress, &mut |w| {
        notify(Notice::Warning(w));
    })?;
    let run = RunLink {
        created,
        time: &run_time,
        target: target.as_ref(),
    };
    let stored = store_and_record(reg, request, &dir, &run, add, progress, notify)?;
    let (record, snap) = (stored.record, stored.snapshot);
    let outcome = Outcome {
        model: record.model.clone(),
        version: record.version,
        reference: record.reference(),
        created: stored.created,
        tree: snap.tree,
        run: record.run.clone(),
        files: snap.files,
        bytes: snap.bytes,
        new_bytes: snap.new_bytes,
        sent_bytes: reg.backend().sent_bytes(),
        hashed_bytes: snap.hashed_bytes,
        skipped: snap.skipped,
        promotion: None,
    };
    Ok(Pushed {
        outcome,
        record,
        sent_to: reg.bucket_url().map(str::to_owned),
        stage,
    })
}

/// Refuses a new model whose name differs from an existing one only in case (`Churn`
/// beside `churn`): on a case-insensitive file system (macOS, Windows) the two would
/// share one folder, and a clone there would mix their versions.
fn refuse_case_twin(reg: &Registry, model: &ModelName) -> Result<()> {
    let name = model.as_str();
    let models = models::list_models(reg)?;
    if models.iter().any(|m| m == name) {
        return Ok(());
    }
    let Some(twin) = models.iter().find(|m| m.eq_ignore_ascii_case(name)) else {
        return Ok(());
    };
    Err(Failure::usage(format!(
        "model {name} differs from the existing model {twin} only in case"
    ))
    .hint(format!(
        "push to {twin}, or pick a name that differs in more than case: on a \
         case-insensitive file system (macOS, Windows) the two would share one folder"
    ))
    .into())
}

/// What storing a folder led to.
struct Stored {
    /// The new version, or the unchanged latest one.
    record: VersionRecord,
    /// What the folder holds.
    snapshot: snapshot::Snapshot,
    /// Whether the version is new.
    created: bool,
}

/// News of a push as it goes.
pub enum Notice<'a> {
    /// Something given was left out or not recorded.
    Warning(String),
    /// The paths the folder's scan left out (`.mregignore`, the registry itself).
    Skipped(&'a [Skipped]),
    /// The push recorded a run of its own (`recorded`) for the new version, while a
    /// recent run started by `mreg run` from the same work tree finished without pushing
    /// a model (`sibling`): most likely the training run it was meant to link to.
    UnlinkedRun {
        /// The run the push recorded.
        recorded: RunId,
        /// The recent run that pushed nothing.
        sibling: Box<RunSummary>,
        /// Whether it ran at the commit checked out now (else `--run last` misses it).
        same_commit: bool,
    },
}

/// When a push happens, and the run it links to.
struct RunLink<'a> {
    /// The version's time, whole seconds.
    created: String,
    /// The run's and its events' time, with milliseconds.
    time: &'a str,
    /// The existing run the version comes from, if any (else push records one).
    target: Option<&'a RunId>,
}

/// Stores the folder's content and records the version (or, for content equal to the
/// latest version, logs the additions into the linked run).
fn store_and_record(
    reg: &Registry,
    request: &Request,
    dir: &Path,
    run: &RunLink,
    add: Additions,
    progress: &dyn Progress,
    notify: &mut dyn FnMut(Notice),
) -> Result<Stored> {
    let model = request.model.as_str();
    let cache = StatCache::load(reg, dir);
    let staging = Staging::new(reg);
    let (snap, trees) = snapshot::snapshot(
        reg,
        dir,
        &Sink::Store(&staging),
        Some(&cache),
        &request.reading,
        progress,
    )?;
    if !snap.skipped.is_empty() {
        notify(Notice::Skipped(&snap.skipped));
    }
    let latest = models::live_versions(reg, model)?
        .last()
        .map(|n| models::load_version(reg, model, *n))
        .transpose()?;
    snapshot::publish(staging, &trees, progress)?;
    let unchanged = latest.filter(|l| l.tree == snap.tree);
    let created_new = unchanged.is_none();
    let record = if let Some(latest) = unchanged {
        if let Some(id) = run.target {
            if !add.is_empty() {
                record::log(reg, id, run.time, add)?;
            }
            record::link_output(reg, id, run.time, &latest)?;
        } else if !add.is_empty() {
            notify(Notice::Warning(
                "params, metrics, tags, data and parents were not recorded: no version was created."
                    .to_owned(),
            ));
        }
        latest
    } else {
        let content = models::NewVersion {
            model: request.model.clone(),
            tree: snap.tree,
            files: snap.files,
            bytes: snap.bytes,
            created: run.created.clone(),
            actor: clock::actor(),
            message: request.message.map(lineage::mask_text),
            run: None,
            metrics: BTreeMap::new(),
        };
        new_version(reg, request, (run.target, run.time), add, content, notify)?
    };
    cache.save(reg);
    Ok(Stored {
        record,
        snapshot: snap,
        created: created_new,
    })
}

/// Records a new version and the run it comes from: the linked run, with the push's
/// additions logged into it, or a run recorded here. The run is complete before the
/// version record names it, and the version is then listed among the run's outputs.
fn new_version(
    reg: &Registry,
    request: &Request,
    (target, time): (Option<&RunId>, &str),
    add: Additions,
    mut content: models::NewVersion,
    notify: &mut dyn FnMut(Notice),
) -> Result<VersionRecord> {
    let (run_id, metrics, recorded) = if let Some(id) = target {
        if !add.is_empty() {
            record::log(reg, id, time, add)?;
        }
        (id.clone(), runs::load(reg, id)?.metrics, None)
    } else {
        let experiment = request.experiment.unwrap_or(content.model.as_str());
        let experiment = lineage::mask_text(experiment);
        let recorded = record::create_finished(
            reg,
            request.cwd,
            &experiment,
            time,
            add,
            request.source.clone(),
        )?;
        (
            recorded.id.clone(),
            recorded.metrics.clone(),
            Some(recorded),
        )
    };
    content.run = Some(run_id.clone());
    content.metrics = metrics;
    let version = models::create_version(reg, content)?;
    record::link_output(reg, &run_id, time, &version)?;
    if let Some(recorded) = recorded
        && let Some((sibling, same_commit)) = record::unlinked_sibling(reg, &recorded, request.cwd)
    {
        notify(Notice::UnlinkedRun {
            recorded: recorded.id,
            sibling: Box::new(sibling),
            same_commit,
        });
    }
    Ok(version)
}

/// Returns the run a push links to: `--run`, else `MREG_RUN_ID`, else none (push
/// records its own).
fn linked_run(reg: &Registry, request: &Request) -> Result<Option<RunId>> {
    if request.run.is_none() && record::inherited_run().is_none() {
        return Ok(None);
    }
    if let Some(experiment) = request.experiment {
        return Err(Failure::usage(format!(
            "--experiment {experiment} applies only to a run push records itself, and this \
             push is linked to an existing run"
        ))
        .hint("leave out --experiment, or --run and MREG_RUN_ID")
        .into());
    }
    record::target_run(reg, request.run, request.cwd).map(Some)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::ops::inputs::Inputs;
    use crate::testing::TempRegistry;

    /// Records the phases a push reports, in order.
    #[derive(Default)]
    struct Phases(Mutex<Vec<String>>);

    impl Progress for Phases {
        fn start(&self, what: &str, _: u64) {
            self.0.lock().unwrap().push(what.to_owned());
        }
        fn advance(&self, _: u64) {}
        fn finish(&self) {
            self.0.lock().unwrap().push("done".to_owned());
        }
        fn phase(&self, what: &str) {
            self.0.lock().unwrap().push(what.to_owned());
        }
    }

    #[test]
    fn a_push_says_it_is_flushing_after_hashing() {
        let t = TempRegistry::new();
        let dir = t.dir.path().join("out");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("w.bin"), vec![7u8; 1 << 20]).unwrap();
        let model = ModelName::parse("m").unwrap();
        let request = Request {
            dir: &dir,
            model: &model,
            message: None,
            run: None,
            experiment: None,
            inputs: &Inputs::default(),
            stage: None,
            cwd: t.dir.path(),
            reading: crate::store::snapshot::Reading::default(),
            source: None,
        };
        let phases = Phases::default();
        push(&t.reg, &request, &phases, &mut |_| {}).unwrap();
        let seen = phases.0.into_inner().unwrap();
        assert_eq!(seen, ["hashing", "done", "flushing to disk", "done"]);
    }
}
