//! Sync: a registry and a remote each get what the other has and they lack.
//!
//! Immutable things are copied only when missing, with create-only writes, in the order
//! that keeps every reader safe: objects, then run records and events, then version
//! records, then stage states, then a model's `HEAD`; the changes of a model's own
//! fields once its versions are there. So neither side ever names data it
//! lacks, whatever interrupts the sync. A version is written on a side only after every
//! object of its tree is there, which is why versions present on both sides need no
//! look at their objects, and why a sync with nothing new lists only the small
//! `models/` and `runs/` keys, never the objects.
//!
//! Nothing is ever overwritten. A version number that holds different records on the
//! two sides, or stage chains that grew apart, is a conflict: that model is left as it
//! is on both sides, the rest syncs, and the command exits 4 saying how to resolve it.
//!
//! Everything read from either side is untrusted. An item that cannot be read, does not
//! parse, is not what its key names, holds a tree over the walk limits, or needs an
//! object that cannot be fetched intact is refused: it is not copied, the stages of its
//! model are left as they are (they could name it), and everything else syncs. The
//! report lists each refused item with why.

mod heads;
pub(crate) use heads::mark_head;
mod info;
mod listing;
mod renumber;
mod runs;
mod signatures;
#[cfg(test)]
mod tests;
mod versions;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use listing::{Keys, local_keys, remote_keys};

use super::known::Known;
use super::{Created, Remote, transfer};
use crate::id::{StateId, TreeId};
use crate::manifest::VersionRecord;
use crate::store::{Progress, Registry, keys};

/// How many times a model's stages are re-read after a lost compare-and-swap.
const SWAP_TRIES: usize = 20;

/// How long a sync waits for a local `HEAD.lock`.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// What a sync does.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Copy the objects of fetched versions and runs (false for a mirror, which fetches
    /// objects when they are read).
    pub objects: bool,
    /// Send what the remote lacks (false for a clone or a mirror's refresh).
    pub send: bool,
    /// Models whose diverged stages are resolved by taking the remote's chain.
    pub take_remote_stages: Vec<String>,
    /// Whether the remote may have its stages moved: it enforces conditional writes,
    /// or its user acknowledged single-writer use.
    pub may_move_remote_stages: bool,
    /// Models whose versions that differ from the remote's at the same number are
    /// published there under the next free numbers instead of being a conflict.
    pub renumber: Vec<String>,
    /// Check that the remote holds every object of every version and run on both
    /// sides, sending what it lacks (after objects were lost there).
    pub recheck: bool,
}

/// Counts of what moved one way.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Objects.
    pub objects: u64,
    /// Their stored bytes.
    pub bytes: u64,
    /// Run records.
    pub runs: u64,
    /// Run events.
    pub events: u64,
    /// Version records.
    pub versions: u64,
    /// Removal records.
    pub removals: u64,
    /// Stage states.
    pub states: u64,
    /// Models whose `HEAD` moved.
    pub stages: u64,
    /// Changes of models' own fields.
    pub info: u64,
    /// Signatures of versions.
    pub signatures: u64,
}

impl Counts {
    /// Returns whether nothing moved.
    pub fn is_empty(&self) -> bool {
        *self == Counts::default()
    }
}

/// A model (or run) left unsynced, and how to resolve it.
#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    /// The model, or `run ID`.
    pub subject: String,
    /// What differs.
    pub message: String,
    /// What to do.
    pub hint: String,
}

/// An item one side holds that was refused, and so not copied; the rest synced.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Refused {
    /// The item's key, the same on both sides.
    pub key: String,
    /// Which side holds it: the remote's URL, or `this registry`.
    pub on: String,
    /// Why it was refused.
    pub message: String,
}

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// What came from the remote.
    pub fetched: Counts,
    /// What went to the remote.
    pub sent: Counts,
    /// What was left unsynced.
    pub conflicts: Vec<Conflict>,
    /// Items refused as unreadable or unsafe, each left where it was.
    pub refused: Vec<Refused>,
    /// Versions `--renumber` published under a new number.
    pub renumbered: Vec<Renumbered>,
}

/// One version published under a new number.
#[derive(Debug, Clone, Serialize)]
pub struct Renumbered {
    /// The model.
    pub model: String,
    /// Its number here before.
    pub from: u64,
    /// Its number now, on both sides.
    pub to: u64,
}

/// One sync between `reg` and `remote`.
pub struct Sync<'a> {
    reg: &'a Registry,
    remote: &'a dyn Remote,
    known: &'a Known,
    options: Options,
    progress: &'a dyn Progress,
    report: Report,
    /// Models left alone because of a conflict.
    blocked: BTreeSet<String>,
    /// Models whose stages are left alone because an item of theirs was refused.
    held: BTreeSet<String>,
    /// Whether the two sides' stage policies are the same, once asked.
    same_policy: Option<bool>,
    /// Trees fetched while walking versions, counted into the report at the end.
    trees_fetched: std::cell::Cell<u64>,
    /// The runs this registry's surviving versions came from, with those versions,
    /// once asked.
    runs_in_use: Option<BTreeMap<String, Vec<String>>>,
    /// What decides whether a stage move the remote made may be taken here
    /// ([`Sync::with_stage_guard`]).
    stage_guard: Option<&'a StageGuard<'a>>,
}

/// Decides whether this registry takes a stage move that puts `(model, stage, version)`:
/// `Err` says why not (the stage's signing rules fail for that version here).
pub type StageGuard<'g> = dyn Fn(&str, &str, u64) -> Result<(), String> + std::marker::Sync + 'g;

impl<'a> Sync<'a> {
    /// Prepares a sync.
    pub fn new(
        reg: &'a Registry,
        remote: &'a dyn Remote,
        known: &'a Known,
        options: Options,
        progress: &'a dyn Progress,
    ) -> Sync<'a> {
        Sync {
            reg,
            remote,
            known,
            options,
            progress,
            report: Report::default(),
            blocked: BTreeSet::new(),
            held: BTreeSet::new(),
            same_policy: None,
            trees_fetched: std::cell::Cell::new(0),
            runs_in_use: None,
            stage_guard: None,
        }
    }

    /// Has the sync take a stage move made on the remote only when `guard` allows each
    /// stage it moves: a move that fails this registry's signing rules is refused by
    /// name, and the model's stages here stay as they are.
    #[must_use]
    pub fn with_stage_guard(mut self, guard: &'a StageGuard<'a>) -> Sync<'a> {
        self.stage_guard = Some(guard);
        self
    }

    /// Runs the sync and returns what it did; conflicts are in the report, not errors.
    pub fn run(mut self) -> Result<Report> {
        // Held from the first listing to the last record, on each side that is written.
        let _ours = self.reg.writing()?;
        let _theirs = if self.options.send {
            self.remote.writing(&|m| self.reg.notice(m))?
        } else {
            None
        };
        let done = self.steps();
        if self.options.send && crate::remote::lease::require_held(self.remote.url()).is_err() {
            // The lease was lost while a record was on its way: a gc that took it for
            // abandoned may have deleted objects the record names. Once the lease is
            // taken again, every object of every version and run is checked there.
            self.remote.retake_writing(&|m| self.reg.notice(m))?;
            self.known.forget()?;
            self.send_every_object(&local_keys(self.reg)?)?;
        }
        done?;
        self.report.fetched.objects += self.trees_fetched.get();
        Ok(self.report)
    }

    /// Runs every step of the sync, in order.
    fn steps(&mut self) -> Result<()> {
        if self.remote.size(keys::CONFIG)?.is_none() {
            // A new (or emptied) remote: nothing remembered about it can be trusted.
            self.known.forget()?;
        } else {
            super::bootstrap::check_config(self.remote)?;
        }
        self.known.check_identity(self.remote, self.options.send)?;
        if self.options.send {
            // Only a sync that sends relies on what it remembers being there.
            self.known.check_epoch(self.remote)?;
        }
        let mut theirs = remote_keys(self.remote)?;
        let mut ours = local_keys(self.reg)?;
        for key in std::mem::take(&mut theirs.hostile) {
            let err = anyhow::anyhow!(
                "the key holds a `.`, `..` or empty part or a control character, which no registry writes; it was not read"
            );
            self.refuse(&key, Side::Remote, None, &err);
        }
        for (keys, side) in [(&mut theirs, Side::Remote), (&mut ours, Side::Local)] {
            for (key, kind) in std::mem::take(&mut keys.special) {
                let err = anyhow::anyhow!(
                    "it is {kind}, not a regular file; a registry holds only files there, so it was not read"
                );
                self.refuse(&key, side, key_model(&key), &err);
            }
        }
        let mut known_models = theirs.models();
        known_models.extend(ours.models());
        for (flag, names) in [
            ("--take-remote-stages", &self.options.take_remote_stages),
            ("--renumber", &self.options.renumber),
        ] {
            if let Some(unknown) = names.iter().find(|m| !known_models.contains(*m)) {
                return Err(crate::error::Failure::usage(format!(
                    "{flag} {unknown}: no model of that name here or on {}",
                    self.remote.url()
                ))
                .hint("`mreg ls` lists this registry's models")
                .into());
            }
        }
        if self.options.send && !self.options.renumber.is_empty() {
            // Runs first: a renumbered version record names its run.
            self.send_config()?;
            self.send_runs(&theirs, &ours)?;
            for model in self.options.renumber.clone() {
                self.renumber(&model, &theirs, &ours)?;
            }
            theirs = remote_keys(self.remote)?;
            ours = local_keys(self.reg)?;
        }
        self.fetch_runs(&theirs, &ours)?;
        self.fetch_versions(&theirs, &ours)?;
        self.fetch_states(&theirs, &ours, None)?;
        self.fetch_info(&theirs, &ours)?;
        self.fetch_signatures(&theirs, &ours)?;
        if self.options.send {
            self.send_config()?;
            self.send_runs(&theirs, &ours)?;
            self.send_versions(&theirs, &ours)?;
            self.send_info(&theirs, &ours)?;
            self.send_signatures(&theirs, &ours)?;
            if self.options.recheck {
                self.send_every_object(&ours)?;
            }
            self.send_states(&theirs, &ours, None)?;
        }
        let mut models = theirs.models();
        models.extend(ours.models());
        for model in models {
            if self.blocked.contains(&model) || self.held.contains(&model) {
                continue;
            }
            if let Err(err) = self.reconcile_head(&model) {
                self.refuse(&keys::head(&model), Side::Remote, Some(&model), &err);
            }
        }
        // Removals last: each is taken only where the stages, as they now are, do not
        // hold the version it removes.
        self.sync_removals(&theirs, &ours)?;
        self.sync_run_removals(&theirs, &ours)?;
        Ok(())
    }

    /// Returns the surviving versions of this registry that came from `run`: a run's
    /// removal is taken from either side only when none did.
    fn versions_from_run(&mut self, run: &str) -> Result<Vec<String>> {
        if self.runs_in_use.is_none() {
            let mut by_run: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for model in crate::store::models::list_models(self.reg)? {
                for n in crate::store::models::live_versions(self.reg, &model)? {
                    if let Some(run) = crate::store::models::load_version(self.reg, &model, n)?.run
                    {
                        by_run
                            .entry(run.to_string())
                            .or_default()
                            .push(format!("{model}@{n}"));
                    }
                }
            }
            self.runs_in_use = Some(by_run);
        }
        Ok(self
            .runs_in_use
            .as_ref()
            .and_then(|m| m.get(run).cloned())
            .unwrap_or_default())
    }

    /// Copies the removal record at `key` from the remote once `check` accepts its
    /// bytes; a record it refuses is refused by name (holding `model`'s stages).
    fn fetch_removal(
        &mut self,
        key: &str,
        model: Option<&str>,
        check: &dyn Fn(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let fetched = self.remote.get(key).and_then(|fetched| {
            let fetched = fetched.ok_or_else(|| anyhow::anyhow!("it is missing"))?;
            check(&fetched.bytes)?;
            Ok(fetched.bytes)
        });
        match fetched {
            Ok(bytes) => {
                let path = self.reg.make_parents(key)?;
                if crate::store::atomic::create_exclusive(&self.reg.tmp_dir(), &path, &bytes)? {
                    self.report.fetched.removals += 1;
                }
            }
            Err(err) => self.refuse(key, Side::Remote, model, &err),
        }
        Ok(())
    }

    /// Records that a run's removal from one side meets surviving versions that came
    /// from the run: the removal is not synced.
    fn run_removal_conflict(&mut self, run: &str, versions: &[String], removed_on: &str) {
        self.conflict(
            run,
            format!(
                "run {run} was removed {removed_on}, but {} came from it, so the removal was not synced",
                versions.join(" and ")
            ),
            format!(
                "a run is the evidence of the versions it made: remove them too (`mreg rm {} --runs`), then sync again",
                versions.join(" ")
            ),
        );
    }

    /// Reads a tree, fetching it from the remote first when this registry lacks it.
    fn read_tree(&self, id: TreeId) -> Result<crate::store::tree::Tree> {
        if !self.reg.has_object(id.0) {
            self.trees_fetched.set(self.trees_fetched.get() + 1);
        }
        transfer::read_tree_fetching(self.reg, self.remote, self.known, id)
    }

    /// Reads this registry's record at `key`, bounded and refusing a link or special
    /// file there.
    fn local_record(&self, key: &str) -> Result<Vec<u8>> {
        self.reg
            .read_record(key)
            .and_then(|found| found.ok_or_else(|| anyhow::anyhow!("it is missing")))
            .with_context(|| format!("reading {key} in this registry"))
    }

    /// Records a refused item; its model's stages are then left as they are.
    fn refuse(&mut self, key: &str, side: Side, model: Option<&str>, err: &anyhow::Error) {
        if let Some(model) = model {
            self.held.insert(model.to_owned());
        }
        self.report.refused.push(Refused {
            key: key.to_owned(),
            on: match side {
                Side::Remote => self.remote.url().to_owned(),
                Side::Local => "this registry".to_owned(),
            },
            message: format!("{err:#}"),
        });
    }

    /// Returns whether stage states and `HEAD` of `model` may be synced.
    fn stages_may_sync(&self, model: &str) -> bool {
        !self.blocked.contains(model) && !self.held.contains(model)
    }

    fn conflict(&mut self, subject: &str, message: String, hint: String) {
        self.blocked.insert(subject.to_owned());
        self.report.conflicts.push(Conflict {
            subject: subject.to_owned(),
            message,
            hint,
        });
    }

    /// Creates the remote's `config.toml` from the local one when the remote has none,
    /// and then its `registry-id`, so the registry made there names itself from its
    /// first sync on (before anything is sent that would be remembered).
    fn send_config(&mut self) -> Result<()> {
        if self.remote.size(keys::CONFIG)?.is_none() {
            let text = self.local_record(keys::CONFIG)?;
            self.remote.create(keys::CONFIG, &text)?;
            self.known.check_identity(self.remote, true)?;
        }
        Ok(())
    }
}

/// Returns the model a key of `models/NAME/…` belongs to.
fn key_model(key: &str) -> Option<&str> {
    let mut parts = key.split('/');
    (parts.next() == Some("models"))
        .then(|| parts.next())
        .flatten()
}

/// Which side of a sync holds an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The remote.
    Remote,
    /// This registry.
    Local,
}

impl Sync<'_> {
    /// Creates each `(key, bytes)` on the remote, in parallel; returns how many were
    /// new. One that fails (the remote's folder for it is no folder, or a link, or it
    /// holds other bytes) is refused by name, and the others go on.
    fn create_each(&mut self, pending: &[(String, Vec<u8>)]) -> Result<u64> {
        let created = std::sync::atomic::AtomicU64::new(0);
        let failed = std::sync::Mutex::new(Vec::new());
        transfer::parallel(pending, transfer::PARALLEL, &|(key, bytes)| {
            match create_or_same(self.remote, key, bytes) {
                Ok(true) => {
                    created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(false) => {}
                Err(err) => failed.lock().expect("failed").push((key.clone(), err)),
            }
            Ok(())
        })?;
        let mut failed = failed.into_inner().expect("failed");
        failed.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, err) in failed {
            self.refuse(&key, Side::Remote, None, &err);
        }
        Ok(created.into_inner())
    }
}

/// Creates `key` on the remote; returns whether it was new. Finding the same bytes
/// there is no error (a reply lost on the way, or another sync of the same data);
/// finding other bytes is.
fn create_or_same(remote: &dyn Remote, key: &str, bytes: &[u8]) -> Result<bool> {
    match remote.create(key, bytes)? {
        Created::New => Ok(true),
        Created::Exists => {
            let there = remote.get(key)?.map(|f| f.bytes);
            if there.as_deref() == Some(bytes) {
                Ok(false)
            } else {
                anyhow::bail!(
                    "{key} on {} holds other bytes than this registry's copy",
                    remote.url()
                )
            }
        }
    }
}

/// Parses a version record fetched from `whence`, checking it is the one its key names.
fn parse_version(bytes: &[u8], model: &str, n: u64, whence: &str) -> Result<VersionRecord> {
    let record = std::str::from_utf8(bytes)
        .map_err(anyhow::Error::from)
        .and_then(VersionRecord::parse)
        .with_context(|| format!("reading {model}@{n} from {whence}"))?;
    if record.model != model || record.version != n {
        anyhow::bail!(
            "the record of {model}@{n} on {whence} says it is {}",
            record.reference()
        );
    }
    Ok(record)
}

/// Parses the content of a `HEAD` key.
fn parse_head(bytes: &[u8], key: &str, whence: &str) -> Result<StateId> {
    crate::store::stages::parse_head(bytes)
        .ok_or_else(|| anyhow::anyhow!("{key} on {whence} does not name a stage state"))
}
