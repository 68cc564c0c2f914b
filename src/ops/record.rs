//! Recording runs: the record a run starts with (who, when, where, source and
//! environment), the run a command logs into, and the events that add to a run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::inputs::Additions;
use crate::clock;
use crate::error::Failure;
use crate::id::{ObjectId, RunId};
use crate::lineage;
use crate::manifest::lineage::Source;
use crate::manifest::run::{Command, End, FORMAT, ModelLink, Status};
use crate::manifest::{RunEvent, RunRecord, VersionRecord};
use crate::store::runindex::{self, RunSummary};
use crate::store::write::Staging;
use crate::store::{Registry, runs};

/// Returns a run record as a run starts in `cwd`: who, when, where, and the source and
/// environment it runs in. With `argv`, the run executes that command (`mreg run`) and
/// is running; without, it is recorded complete (`mreg push` recording its own run).
pub fn start_record(
    cwd: &Path,
    experiment: &str,
    name: Option<String>,
    start: String,
    argv: Option<&[String]>,
) -> RunRecord {
    let source = lineage::source(cwd);
    let root = source
        .as_ref()
        .map_or(cwd.to_path_buf(), |s| s.root.clone().into());
    let environment = lineage::environment(&root);
    let host = environment.hostname.clone();
    RunRecord {
        format: FORMAT,
        id: RunId::parse("0000000000000000").expect("a valid placeholder id"),
        experiment: experiment.to_owned(),
        name,
        status: if argv.is_some() {
            Status::Running
        } else {
            Status::Finished
        },
        start,
        actor: clock::actor(),
        end: None,
        command: argv.map(|argv| Command {
            argv: lineage::recorded_argv(argv),
            cwd: Some(cwd.display().to_string()),
            host,
            pid: Some(std::process::id()),
        }),
        params: BTreeMap::new(),
        metrics: BTreeMap::new(),
        tags: BTreeMap::new(),
        series: BTreeMap::new(),
        source,
        data: Vec::new(),
        parents: Vec::new(),
        outputs: Vec::new(),
        environment: Some(environment),
    }
}

/// Publishes a new run holding `record` plus `add`, and returns it with its id. The
/// content of its environment's lock files (found in its source folder, else `cwd`) and
/// its Python package list are stored first, once for any number of runs that share
/// them.
pub fn create_with(
    reg: &Registry,
    mut record: RunRecord,
    add: Additions,
    cwd: &Path,
) -> Result<RunRecord> {
    add.apply_to(reg, &mut record)?;
    store_environment(reg, &mut record, cwd)?;
    runs::create(reg, record)
}

/// Returns the object an earlier run stored for lock-file content of hash `raw`, masked,
/// when the registry still holds it: masking a large lock file costs tens of
/// milliseconds, and most runs find the lock files the previous run found.
fn masked_before(reg: &Registry, raw: &str) -> Option<ObjectId> {
    let text = lineage::small_text_file(&reg.cache_dir().join("lockfiles").join(raw))?;
    let id: ObjectId = text.trim().parse().ok()?;
    reg.has_object(id).then_some(id)
}

/// Remembers which object holds lock-file content of hash `raw`, masked; a cache, so a
/// failure to write it only costs the next run the masking.
fn remember_masked(reg: &Registry, raw: &str, id: ObjectId) {
    let dir = reg.cache_dir().join("lockfiles");
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| tempfile::NamedTempFile::new_in(&dir))
        .and_then(|mut temp| {
            std::io::Write::write_all(&mut temp, id.to_string().as_bytes())?;
            temp.persist(dir.join(raw)).map(drop).map_err(|e| e.error)
        });
    drop(written);
}

/// Stores the content of the record's lock files and its Python package list as
/// objects, and names them in the record. A lock file that cannot be read now (or has
/// grown past the limit) keeps the hash it was found with, unstored.
fn store_environment(reg: &Registry, record: &mut RunRecord, cwd: &Path) -> Result<()> {
    let root = record
        .source
        .as_ref()
        .map_or_else(|| cwd.to_path_buf(), |s| s.root.clone().into());
    let Some(environment) = record.environment.as_mut() else {
        return Ok(());
    };
    let staging = Staging::new(reg);
    for lock in &mut environment.lockfiles {
        // The content found a moment ago, stored by an earlier run: no second read.
        if let Some(id) = masked_before(reg, &lock.blake3) {
            lock.blake3 = id.to_string();
            lock.stored = true;
            continue;
        }
        // Read again as when found: a regular file inside the folder.
        let Some(raw) = lineage::lockfile_content(&root, &lock.path) else {
            continue;
        };
        let raw_hash = blake3::hash(&raw).to_hex().to_string();
        let id = if let Some(id) = masked_before(reg, &raw_hash) {
            id
        } else {
            let id = staging.add_bytes(&lineage::masked_lockfile(raw))?.id;
            remember_masked(reg, &raw_hash, id);
            id
        };
        lock.blake3 = id.to_string();
        lock.stored = true;
    }
    if let Some(python) = environment.python.as_mut()
        && let Some(list) = lineage::package_list(python)
        && list.len() as u64 <= lineage::PACKAGE_LIST_LIMIT
    {
        python.packages = list.lines().count() as u64;
        python.packages_object = Some(staging.add_bytes(list.as_bytes())?.id.to_string());
    }
    staging.publish()
}

/// Publishes a complete run for a push that names none: it starts and ends at `time`.
pub fn create_finished(
    reg: &Registry,
    cwd: &Path,
    experiment: &str,
    time: &str,
    add: Additions,
    source: Option<Source>,
) -> Result<RunRecord> {
    let mut start = start_record(cwd, experiment, None, time.to_owned(), None);
    if source.is_some() {
        // An import: the files were made elsewhere, so neither this work tree's git
        // state nor this machine's environment says anything of them.
        start.source = source;
        start.environment = None;
    }
    start.end = Some(End {
        status: Status::Finished,
        time: time.to_owned(),
        duration_s: 0.0,
        exit_code: None,
        signal: None,
        received: None,
        error: None,
    });
    create_with(reg, start, add, cwd)
}

/// The word `--run` takes for the newest run started from the caller's work tree.
pub const LAST: &str = "last";

/// How long after it ended a run that pushed no model is still worth a warning when a
/// push from its work tree records a run of its own.
const RECENT: Duration = Duration::from_secs(24 * 3600);

/// Returns the run `flag` (`--run`: an id, a prefix, or `last`, the newest finished run
/// started from the work tree of `cwd`, `last:EXPERIMENT` the newest of that experiment)
/// names, else the one `MREG_RUN_ID` names. A removed run takes no more events.
pub fn target_run(reg: &Registry, flag: Option<&str>, cwd: &Path) -> Result<RunId> {
    let id = match (flag, inherited_run()) {
        (Some(LAST), _) => last_run(reg, cwd, None)?,
        (Some(text), _) if text.starts_with("last:") => {
            last_run(reg, cwd, Some(&text["last:".len()..]))?
        }
        (Some(text), _) => runs::resolve(reg, text)?,
        (None, Some(text)) => runs::resolve(reg, &text).map_err(|err| {
            err.context(format!("MREG_RUN_ID={text} names no run of this registry"))
        })?,
        (None, None) => return Err(Failure::usage("no run to log into")
            .hint("pass --run ID, or call mreg log from a command started by `mreg run`, which sets MREG_RUN_ID")
            .into()),
    };
    crate::store::removals::require_live_run(reg, &id)?;
    Ok(id)
}

/// Where a run started, as `--run last` matches it: the top folder of its git work
/// tree and the commit checked out, or outside git the folder itself.
#[derive(Debug, PartialEq, Eq)]
struct WorkTree {
    root: String,
    commit: Option<String>,
}

impl WorkTree {
    /// Returns the work tree of `cwd` as a run started there records it.
    fn here(cwd: &Path) -> WorkTree {
        lineage::source(cwd).map_or_else(
            || WorkTree {
                root: cwd.display().to_string(),
                commit: None,
            },
            |s| WorkTree {
                root: s.root,
                commit: s.commit,
            },
        )
    }

    /// Returns the work tree a run started in, for a run `mreg run` made (a run a push
    /// recorded for itself ran no command, and is no candidate).
    fn of_command_run(record: &RunRecord) -> Option<WorkTree> {
        let command = record.command.as_ref()?;
        Some(match &record.source {
            Some(s) => WorkTree {
                root: s.root.clone(),
                commit: s.commit.clone(),
            },
            None => WorkTree {
                root: command.cwd.clone()?,
                commit: None,
            },
        })
    }

    fn describe(&self) -> String {
        match &self.commit {
            Some(commit) => format!(
                "{} at commit {}",
                self.root,
                &commit[..commit.len().min(12)]
            ),
            None => self.root.clone(),
        }
    }
}

/// Returns the newest finished run `mreg run` started from the work tree of `cwd` (same
/// git top folder and commit; outside git, the same folder), of `experiment` when given;
/// removed runs, failed runs and runs still going are left out.
fn last_run(reg: &Registry, cwd: &Path, experiment: Option<&str>) -> Result<RunId> {
    let here = WorkTree::here(cwd);
    let summaries = runindex::summaries(reg)?;
    // A run that does not read may be the newest: linking to an older one instead
    // would put another run's params behind the version, without a word.
    if let Some((id, why)) = summaries.broken.first() {
        return Err(Failure::error(format!(
            "--run last: run {id} cannot be read, so which run is the last cannot be told: {why}"
        ))
        .hint("`mreg fsck` names what is wrong with it; pass --run ID to name the run instead")
        .into());
    }
    let mut index = summaries.runs;
    index.retain(|r| r.status == Status::Finished && experiment.is_none_or(|e| r.experiment == e));
    index.sort_by(|a, b| b.start.cmp(&a.start).then_with(|| b.id.cmp(&a.id)));
    for summary in &index {
        let record = runs::load_start(reg, &summary.id)
            .with_context(|| format!("--run last: reading run {}", summary.id))?;
        if WorkTree::of_command_run(&record).as_ref() == Some(&here) {
            return Ok(summary.id.clone());
        }
    }
    let of = experiment
        .map(|e| format!(" of experiment {e}"))
        .unwrap_or_default();
    Err(Failure::error(format!(
        "--run last: no finished run{of} of this registry was started by `mreg run` from {}",
        here.describe()
    ))
    .hint(
        "`mreg runs` lists the runs; pass --run ID, or start the training with `mreg run` \
         from this work tree and commit",
    )
    .into())
}

/// Returns a recent run that pushed nothing, started by `mreg run` from the same folder
/// as `recorded`, and whether at the same commit (a run a push in `cwd` just recorded for itself): the run the
/// push most likely meant to link to, had it been a training run that pushed nothing.
/// Any trouble reading runs finds none: this only warns.
pub fn unlinked_sibling(
    reg: &Registry,
    recorded: &RunRecord,
    cwd: &Path,
) -> Option<(RunSummary, bool)> {
    let here = recorded.source.as_ref().map_or_else(
        || WorkTree {
            root: cwd.display().to_string(),
            commit: None,
        },
        |s| WorkTree {
            root: s.root.clone(),
            commit: s.commit.clone(),
        },
    );
    let now = clock::now().ok()?;
    let mut index = runindex::summaries(reg).ok()?.runs;
    index.retain(|r| {
        r.id != recorded.id
            && r.status == Status::Finished
            && r.outputs.is_empty()
            && r.end
                .as_deref()
                .and_then(|end| clock::parse_time(end).ok())
                .is_some_and(|end| now.duration_since(end).unwrap_or_default() <= RECENT)
    });
    index.sort_by(|a, b| b.start.cmp(&a.start).then_with(|| b.id.cmp(&a.id)));
    // The same folder, at this commit or an earlier one (a commit between training and
    // pushing is common): the second value says whether the commit is the same.
    index.into_iter().find_map(|summary| {
        let tree = WorkTree::of_command_run(&runs::load_start(reg, &summary.id).ok()?)?;
        (tree.root == here.root).then(|| {
            let same = tree.commit == here.commit;
            (summary, same)
        })
    })
}

/// Returns the run `mreg run` gave this process in `MREG_RUN_ID`, if any.
pub fn inherited_run() -> Option<String> {
    std::env::var("MREG_RUN_ID").ok().filter(|v| !v.is_empty())
}

/// Publishes one event adding `add` to run `id`, written at `time`.
pub fn log(reg: &Registry, id: &RunId, time: &str, add: Additions) -> Result<()> {
    let mut event = RunEvent::new(id.clone(), time.to_owned(), clock::actor());
    add.apply_to_event(reg, &mut event)?;
    runs::append(reg, &event)
}

/// Records in a run that it produced a version.
pub fn link_output(reg: &Registry, id: &RunId, time: &str, version: &VersionRecord) -> Result<()> {
    let mut event = RunEvent::new(id.clone(), time.to_owned(), clock::actor());
    event.outputs.push(ModelLink {
        model: version.model.clone(),
        version: version.version,
        tree: version.tree,
    });
    runs::append(reg, &event)
}

/// Records how a run ended.
pub fn finish(reg: &Registry, id: &RunId, end: End) -> Result<()> {
    let mut event = RunEvent::new(id.clone(), end.time.clone(), clock::actor());
    event.end = Some(end);
    runs::append(reg, &event)
}
