//! Sync: a registry and a remote each get what the other has and they lack.
//!
//! Immutable things are copied only when missing, with create-only writes, in the order
//! that keeps every reader safe: objects, then run records and events, then version
//! records, then stage states, then a model's `HEAD`. So neither side ever names data it
//! lacks, whatever interrupts the sync. A version is written on a side only after every
//! object of its tree is there, which is why versions present on both sides need no
//! look at their objects, and why a sync with nothing new lists only the small
//! `models/` and `runs/` keys, never the objects.
//!
//! Nothing is ever overwritten. A version number that holds different records on the
//! two sides, or stage chains that grew apart, is a conflict: that model is left as it
//! is on both sides, the rest syncs, and the command exits 4 saying how to resolve it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use super::known::Known;
use super::{Created, Remote, Swap, transfer};
use crate::id::TreeId;
use crate::manifest::{RunEvent, RunRecord, StateId, VersionRecord};
use crate::store::keys::{self, Key};
use crate::store::lock::Holder;
use crate::store::stages;
use crate::store::{ObjectId, Progress, Registry, atomic, read};

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
    /// Stage states.
    pub states: u64,
    /// Models whose `HEAD` moved.
    pub stages: u64,
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

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// What came from the remote.
    pub fetched: Counts,
    /// What went to the remote.
    pub sent: Counts,
    /// What was left unsynced.
    pub conflicts: Vec<Conflict>,
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

/// The metadata keys of one side, by kind.
#[derive(Debug, Default)]
struct Keys {
    /// Model → version numbers.
    versions: BTreeMap<String, BTreeSet<u64>>,
    /// Model → state file names (`ID.toml`).
    states: BTreeMap<String, BTreeSet<String>>,
    /// Models with a `HEAD`.
    heads: BTreeSet<String>,
    /// Run id → its files (`run.toml`, `log/NAME.toml`).
    runs: BTreeMap<String, BTreeSet<String>>,
}

impl Keys {
    fn of<'a>(listed: impl Iterator<Item = &'a str>) -> Keys {
        let mut out = Keys::default();
        for key in listed {
            match keys::parse(key) {
                Some(Key::Version { model, number }) => {
                    out.versions
                        .entry(model.to_owned())
                        .or_default()
                        .insert(number);
                }
                Some(Key::State { model, id }) => {
                    out.states
                        .entry(model.to_owned())
                        .or_default()
                        .insert(format!("{id}.toml"));
                }
                Some(Key::Head { model }) => {
                    out.heads.insert(model.to_owned());
                }
                Some(Key::RunRecord { run }) => {
                    out.runs
                        .entry(run.to_string())
                        .or_default()
                        .insert(keys::RUN_RECORD.to_owned());
                }
                Some(Key::RunEvent { run, name }) => {
                    out.runs
                        .entry(run.to_string())
                        .or_default()
                        .insert(format!("log/{name}"));
                }
                None => {}
            }
        }
        out
    }

    fn models(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.versions.keys().cloned().collect();
        out.extend(self.states.keys().cloned());
        out.extend(self.heads.iter().cloned());
        out
    }
}

/// Returns the metadata keys a remote holds.
fn remote_keys(remote: &dyn Remote) -> Result<Keys> {
    let mut listed = remote.list(keys::MODELS)?;
    listed.extend(remote.list(keys::RUNS)?);
    Ok(Keys::of(listed.iter().map(|l| l.key.as_str())))
}

/// Returns the metadata keys the local registry holds.
fn local_keys(reg: &Registry) -> Result<Keys> {
    let local = super::folder::FolderRemote::at_root(reg.root());
    let mut listed = local.list(keys::MODELS)?;
    listed.extend(local.list(keys::RUNS)?);
    Ok(Keys::of(listed.iter().map(|l| l.key.as_str())))
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
    /// Whether the two sides' stage policies are the same, once asked.
    same_policy: Option<bool>,
    /// Trees fetched while walking versions, counted into the report at the end.
    trees_fetched: std::cell::Cell<u64>,
}

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
            same_policy: None,
            trees_fetched: std::cell::Cell::new(0),
        }
    }

    /// Runs the sync and returns what it did; conflicts are in the report, not errors.
    pub fn run(mut self) -> Result<Report> {
        if self.remote.size(keys::CONFIG)?.is_none() {
            // A new (or emptied) remote: nothing remembered about it can be trusted.
            self.known.forget()?;
        } else {
            super::bootstrap::check_config(self.remote)?;
        }
        self.known.check_identity(self.remote, self.options.send)?;
        let mut theirs = remote_keys(self.remote)?;
        let mut ours = local_keys(self.reg)?;
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
        if self.options.send {
            self.send_config()?;
            self.send_runs(&theirs, &ours)?;
            self.send_versions(&theirs, &ours)?;
            if self.options.recheck {
                self.send_every_object(&ours)?;
            }
            self.send_states(&theirs, &ours, None)?;
        }
        let mut models = theirs.models();
        models.extend(ours.models());
        for model in models {
            if !self.blocked.contains(&model) {
                self.reconcile_head(&model)?;
            }
        }
        self.report.fetched.objects += self.trees_fetched.get();
        Ok(self.report)
    }

    /// Reads a tree, fetching it from the remote first when this registry lacks it.
    fn read_tree(&self, id: TreeId) -> Result<crate::store::tree::Tree> {
        if !self.reg.has_object(id.0) {
            self.trees_fetched.set(self.trees_fetched.get() + 1);
        }
        transfer::read_tree_fetching(self.reg, self.remote, self.known, id)
    }

    fn conflict(&mut self, subject: &str, message: String, hint: String) {
        self.blocked.insert(subject.to_owned());
        self.report.conflicts.push(Conflict {
            subject: subject.to_owned(),
            message,
            hint,
        });
    }

    /// Copies the remote's runs and events the registry lacks: all read at once, then
    /// the objects they name, then each run's record before its events.
    fn fetch_runs(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        let mut keys = Vec::new();
        for (id, files) in &theirs.runs {
            let have = ours.runs.get(id);
            keys.extend(
                files
                    .iter()
                    .filter(|f| have.is_none_or(|h| !h.contains(*f)))
                    .map(|f| keys::run_file(id, f)),
            );
        }
        if keys.is_empty() {
            return Ok(());
        }
        let bodies = Mutex::new(Vec::with_capacity(keys.len()));
        transfer::parallel(&keys, transfer::PARALLEL, &|key| {
            if let Some(fetched) = self.remote.get(key)? {
                bodies
                    .lock()
                    .expect("bodies")
                    .push((key.clone(), fetched.bytes));
            }
            Ok(())
        })?;
        let mut bodies = bodies.into_inner().expect("bodies");
        if self.options.objects {
            let mut objects = Vec::new();
            for (key, bytes) in &bodies {
                objects.extend(run_objects(key, bytes, &|t| self.read_tree(t))?);
            }
            let (count, bytes) =
                transfer::fetch_all(self.reg, self.remote, self.known, &objects, self.progress)?;
            self.report.fetched.objects += count;
            self.report.fetched.bytes += bytes;
        }
        // Records before events, as a run is created.
        bodies.sort_by_key(|(key, _)| !key.ends_with(keys::RUN_RECORD));
        for (key, bytes) in bodies {
            let path = self.reg.root().join(&key);
            let run = key.split('/').nth(1).expect("a run key names its run");
            let log = self.reg.path(&keys::run_file(run, "log"));
            fs::create_dir_all(&log).with_context(|| format!("creating {}", log.display()))?;
            if atomic::create_exclusive(&self.reg.tmp_dir(), &path, &bytes)? {
                if key.ends_with(keys::RUN_RECORD) {
                    self.report.fetched.runs += 1;
                } else {
                    self.report.fetched.events += 1;
                }
            }
        }
        Ok(())
    }

    /// Copies the remote's versions the registry lacks, each after its objects.
    fn fetch_versions(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        let mut records = Vec::new();
        for (model, numbers) in &theirs.versions {
            let have = ours.versions.get(model);
            for n in numbers {
                let key = keys::version(model, *n);
                if have.is_some_and(|h| h.contains(n)) {
                    let local = fs::read(self.reg.root().join(&key))
                        .with_context(|| format!("reading {key}"))?;
                    if self.known.same_record(&key, &local)
                        || !self.differs_from_local(model, *n, &key)?
                    {
                        continue;
                    }
                    break;
                }
                let Some(fetched) = self.remote.get(&key)? else {
                    continue;
                };
                let record = parse_version(&fetched.bytes, model, *n, self.remote.url())?;
                records.push((model.clone(), *n, record, fetched.bytes));
            }
        }
        records.retain(|(model, ..)| !self.blocked.contains(model));
        if self.options.objects {
            let mut objects = Vec::new();
            for (_, _, record, _) in &records {
                objects.extend(transfer::closure(record.tree, &|t| self.read_tree(t))?);
            }
            let (count, bytes) =
                transfer::fetch_all(self.reg, self.remote, self.known, &objects, self.progress)?;
            self.report.fetched.objects += count;
            self.report.fetched.bytes += bytes;
        }
        for (model, n, _, bytes) in records {
            let dir = self.reg.versions_dir(&model);
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = self.reg.path(&keys::version(&model, n));
            if atomic::create_exclusive(&self.reg.tmp_dir(), &path, &bytes)? {
                self.report.fetched.versions += 1;
            }
            self.known
                .note_same_record(&keys::version(&model, n), &bytes)?;
        }
        Ok(())
    }

    /// Publishes this registry's versions of `model` that differ from the remote's at
    /// the same number (and every local version after the first of them) under the
    /// remote's next free numbers, then makes the local registry hold the remote's
    /// versions at the old numbers and its own at the new ones.
    fn renumber(&mut self, model: &str, theirs: &Keys, ours: &Keys) -> Result<()> {
        let empty = BTreeSet::new();
        let remote_numbers = theirs.versions.get(model).unwrap_or(&empty);
        let local_numbers = ours.versions.get(model).unwrap_or(&empty);
        let mut moving = Vec::new();
        for n in local_numbers {
            let key = keys::version(model, *n);
            let differs = if remote_numbers.contains(n) {
                let local = fs::read(self.reg.root().join(&key))
                    .with_context(|| format!("reading {key}"))?;
                self.remote.get(&key)?.is_some_and(|f| f.bytes != local)
            } else {
                false
            };
            if differs || (!moving.is_empty() && !remote_numbers.contains(n)) {
                moving.push(*n);
            }
        }
        if moving.is_empty() {
            return Ok(());
        }
        // Stages that name a moving number would change meaning: they are replaced by
        // the remote's when asked, and refused otherwise.
        let chain = stages::chain(self.reg, model, None)?;
        let named = chain.iter().any(|(_, s)| {
            moving.contains(&s.version) || s.stages.values().any(|v| moving.contains(v))
        });
        if named && !self.options.take_remote_stages.iter().any(|m| m == model) {
            return Err(crate::error::Failure::conflict(format!(
                "the stages of {model} here name {model}@{}, which --renumber would move",
                moving[0]
            ))
            .hint(format!(
                "add --take-remote-stages {model} to keep the remote's stage history, then promote the renumbered version again"
            ))
            .into());
        }
        let mut records = Vec::new();
        let mut objects = Vec::new();
        for n in &moving {
            let record = crate::store::models::load_version(self.reg, model, *n)?;
            objects.extend(
                transfer::closure(record.tree, &|t| read::read_tree(self.reg, t))?
                    .into_iter()
                    .map(|(o, _)| o),
            );
            records.push(record);
        }
        self.send_objects(&objects)?;
        let published = self.publish_renumbered(model, records)?;
        // The remote's records at the moved numbers, with their objects, replace ours.
        let mut replacements = Vec::new();
        for n in moving.iter().filter(|n| remote_numbers.contains(n)) {
            let key = keys::version(model, *n);
            let fetched = self.remote.get(&key)?.ok_or_else(|| {
                anyhow::anyhow!("{key} vanished from {} during the sync", self.remote.url())
            })?;
            let record = parse_version(&fetched.bytes, model, *n, self.remote.url())?;
            let closure = transfer::closure(record.tree, &|t| self.read_tree(t))?;
            transfer::fetch_all(self.reg, self.remote, self.known, &closure, self.progress)?;
            replacements.push((*n, fetched.bytes));
        }
        if named {
            self.reset_stages_to_remote(model)?;
        }
        let tmp = self.reg.tmp_dir();
        let path = |n: u64| self.reg.path(&keys::version(model, n));
        for n in &moving {
            if !remote_numbers.contains(n) && !published.iter().any(|r| r.version == *n) {
                let path = path(*n);
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
        for (n, bytes) in replacements {
            atomic::replace(&tmp, &path(n), &bytes)?;
        }
        for record in published {
            atomic::replace(&tmp, &path(record.version), record.to_toml()?.as_bytes())?;
        }
        Ok(())
    }

    /// Creates each record on the remote at its next free number, keeping its old
    /// number in `renumbered_from`; returns the records as published.
    fn publish_renumbered(
        &mut self,
        model: &str,
        records: Vec<VersionRecord>,
    ) -> Result<Vec<VersionRecord>> {
        let mut next = super::highest_version(self.remote, model)? + 1;
        let mut published = Vec::new();
        for mut record in records {
            let from = record.version;
            record.renumbered_from = Some(record.renumbered_from.unwrap_or(from));
            loop {
                record.version = next;
                next += 1;
                let key = keys::version(model, record.version);
                let text = record.to_toml()?;
                if self.remote.create(&key, text.as_bytes())? == Created::New {
                    self.known.note_same_record(&key, text.as_bytes())?;
                    break;
                }
            }
            self.report.sent.versions += 1;
            self.report.renumbered.push(Renumbered {
                model: model.to_owned(),
                from,
                to: record.version,
            });
            published.push(record);
        }
        Ok(published)
    }

    /// Points this registry's stages of `model` at the remote's chain, or removes them
    /// when the remote has none: the `--take-remote-stages` of a renumbering.
    fn reset_stages_to_remote(&mut self, model: &str) -> Result<()> {
        let key = keys::head(model);
        let local_head = stages::read_head(self.reg, model)?;
        let Some(theirs) = self.remote.get(&key)? else {
            let head = self.reg.head_path(model);
            if head.exists() {
                fs::remove_file(&head).with_context(|| format!("removing {}", head.display()))?;
            }
            return Ok(());
        };
        let id = parse_head(&theirs.bytes, &key, self.remote.url())?;
        let theirs_keys = remote_keys(self.remote)?;
        self.fetch_states(&theirs_keys, &local_keys(self.reg)?, Some(model))?;
        let holder = Holder::this_process(
            "mreg sync --renumber".to_owned(),
            crate::clock::format_time(std::time::SystemTime::now()),
        );
        stages::advance(
            self.reg,
            model,
            local_head.as_ref(),
            &id,
            &holder,
            LOCK_WAIT,
        )?;
        Ok(())
    }

    /// Returns whether the local record at a number the remote also holds differs
    /// from the remote's; a difference is recorded as a conflict.
    fn differs_from_local(&mut self, model: &str, n: u64, key: &str) -> Result<bool> {
        let path = self.reg.path(&keys::version(model, n));
        let local = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let Some(remote) = self.remote.get(key)? else {
            return Ok(false);
        };
        if remote.bytes == local {
            self.known.note_same_record(key, &local)?;
            return Ok(false);
        }
        let describe = |bytes: &[u8]| {
            std::str::from_utf8(bytes)
                .ok()
                .and_then(|t| VersionRecord::parse(t).ok())
                .map_or_else(
                    || "an unreadable record".to_owned(),
                    |r| {
                        format!(
                            "tree {} pushed by {} at {}",
                            r.tree.0.short(12),
                            r.actor,
                            r.created
                        )
                    },
                )
        };
        self.conflict(
            model,
            format!(
                "{model}@{n} differs: here it is {}, on {} it is {}",
                describe(&local),
                self.remote.url(),
                describe(&remote.bytes)
            ),
            format!(
                "version numbers are never reused: `mreg sync --renumber {model}` publishes this registry's {model}@{n} (and any later local version) under the remote's next free numbers, and takes the remote's {model}@{n} here"
            ),
        );
        Ok(true)
    }

    /// Returns the state files `from` holds and `to` lacks, of models not blocked (and
    /// only of `only` when given), as (model, file name, key).
    fn missing_states(
        &self,
        from: &Keys,
        to: &Keys,
        only: Option<&str>,
    ) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for (model, files) in &from.states {
            if self.blocked.contains(model) || only.is_some_and(|m| m != model) {
                continue;
            }
            let have = to.states.get(model);
            for file in files
                .iter()
                .filter(|f| have.is_none_or(|h| !h.contains(*f)))
            {
                let key = format!("{}{file}", keys::states(model));
                out.push((model.clone(), file.clone(), key));
            }
        }
        out
    }

    /// Copies the stage states the registry lacks from the remote, each checked
    /// against its name.
    fn fetch_states(&mut self, theirs: &Keys, ours: &Keys, only: Option<&str>) -> Result<()> {
        for (model, file, key) in self.missing_states(theirs, ours, only) {
            let Some(fetched) = self.remote.get(&key)? else {
                continue;
            };
            let id = file.trim_end_matches(".toml");
            if StateId::of(&fetched.bytes).as_str() != id {
                anyhow::bail!(
                    "stage state {key} on {} does not match its name; it was not used",
                    self.remote.url()
                );
            }
            let dir = self.reg.states_dir(&model);
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            if atomic::create_exclusive(&self.reg.tmp_dir(), &dir.join(&file), &fetched.bytes)? {
                self.report.fetched.states += 1;
            }
        }
        Ok(())
    }

    /// Creates the remote's `config.toml` from the local one when the remote has none.
    fn send_config(&mut self) -> Result<()> {
        if self.remote.size(keys::CONFIG)?.is_none() {
            let text = fs::read(self.reg.path(keys::CONFIG))?;
            self.remote.create(keys::CONFIG, &text)?;
        }
        Ok(())
    }

    /// Sends the runs and events the remote lacks: the objects they name, then every
    /// run record, then the events, many at once.
    fn send_runs(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        let mut pending = Vec::new();
        let mut objects = Vec::new();
        for (id, files) in &ours.runs {
            let have = theirs.runs.get(id);
            for file in files
                .iter()
                .filter(|f| have.is_none_or(|h| !h.contains(*f)))
            {
                let key = keys::run_file(id, file);
                let bytes = fs::read(self.reg.root().join(&key))
                    .with_context(|| format!("reading {key}"))?;
                objects.extend(
                    run_objects(&key, &bytes, &|t| read::read_tree(self.reg, t))?
                        .into_iter()
                        .map(|(o, _)| o),
                );
                pending.push((key, bytes));
            }
        }
        self.send_objects(&objects)?;
        let (records, events): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|(key, _)| key.ends_with(keys::RUN_RECORD));
        for (batch, is_record) in [(records, true), (events, false)] {
            let created = AtomicU64::new(0);
            transfer::parallel(&batch, transfer::PARALLEL, &|(key, bytes)| {
                if create_or_same(self.remote, key, bytes)? {
                    created.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })?;
            if is_record {
                self.report.sent.runs += created.into_inner();
            } else {
                self.report.sent.events += created.into_inner();
            }
        }
        Ok(())
    }

    fn send_objects(&mut self, objects: &[ObjectId]) -> Result<()> {
        let (count, bytes) =
            transfer::send_all(self.reg, self.remote, self.known, objects, self.progress)?;
        self.report.sent.objects += count;
        self.report.sent.bytes += bytes;
        Ok(())
    }

    /// Sends the versions the remote lacks, each after its objects.
    fn send_versions(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        let mut records = Vec::new();
        for (model, numbers) in &ours.versions {
            if self.blocked.contains(model) {
                continue;
            }
            let have = theirs.versions.get(model);
            for n in numbers {
                if have.is_some_and(|h| h.contains(n)) {
                    continue;
                }
                let key = keys::version(model, *n);
                let bytes = fs::read(self.reg.root().join(&key))
                    .with_context(|| format!("reading {key}"))?;
                let record = parse_version(&bytes, model, *n, "this registry")?;
                records.push((model.clone(), *n, key, bytes, record));
            }
        }
        let mut objects = Vec::new();
        for (.., record) in &records {
            objects.extend(
                transfer::closure(record.tree, &|t| read::read_tree(self.reg, t))?
                    .into_iter()
                    .map(|(o, _)| o),
            );
        }
        self.send_objects(&objects)?;
        for (model, n, key, bytes, _) in records {
            if self.blocked.contains(&model) {
                continue;
            }
            match self.remote.create(&key, &bytes)? {
                Created::New => {
                    self.report.sent.versions += 1;
                    self.known.note_same_record(&key, &bytes)?;
                }
                Created::Exists => {
                    // Taken since the listing: by this registry's own earlier attempt
                    // (same bytes), or by another writer (a conflict, recorded).
                    self.differs_from_local(&model, n, &key)?;
                }
            }
        }
        Ok(())
    }

    /// Sends every object of every local version the remote lacks, whether or not
    /// the version is new there.
    /// Objects lost here are fetched back from the remote on the way.
    fn send_every_object(&mut self, ours: &Keys) -> Result<()> {
        let mut objects = Vec::new();
        for (model, numbers) in &ours.versions {
            if self.blocked.contains(model) {
                continue;
            }
            for n in numbers {
                let record = crate::store::models::load_version(self.reg, model, *n)?;
                objects.extend(transfer::closure(record.tree, &|t| self.read_tree(t))?);
            }
        }
        let (count, bytes) =
            transfer::fetch_all(self.reg, self.remote, self.known, &objects, self.progress)?;
        self.report.fetched.objects += count;
        self.report.fetched.bytes += bytes;
        let ids: Vec<ObjectId> = objects.into_iter().map(|(id, _)| id).collect();
        self.send_objects(&ids)
    }

    /// Sends the stage states the remote lacks.
    fn send_states(&mut self, theirs: &Keys, ours: &Keys, only: Option<&str>) -> Result<()> {
        for (_, _, key) in self.missing_states(ours, theirs, only) {
            let bytes =
                fs::read(self.reg.root().join(&key)).with_context(|| format!("reading {key}"))?;
            if create_or_same(self.remote, &key, &bytes)? {
                self.report.sent.states += 1;
            }
        }
        Ok(())
    }

    /// Brings a model's `HEAD` to the newer of the two chains, or reports that they
    /// grew apart.
    fn reconcile_head(&mut self, model: &str) -> Result<()> {
        let key = keys::head(model);
        let holder = Holder::this_process(
            "mreg sync".to_owned(),
            crate::clock::format_time(std::time::SystemTime::now()),
        );
        for _ in 0..SWAP_TRIES {
            let ours = stages::read_head(self.reg, model)?;
            let theirs = match self.remote.get(&key)? {
                Some(f) => Some((parse_head(&f.bytes, &key, self.remote.url())?, f.tag)),
                None => None,
            };
            let theirs_id = theirs.as_ref().map(|(id, _)| id.clone());
            if ours == theirs_id {
                return Ok(());
            }
            if let Some(id) = &theirs_id {
                self.fetch_state_named(model, id, &key)?;
            }
            let take_theirs = match (&ours, &theirs_id) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(o), Some(t)) => {
                    if self.descends(model, t, o)? {
                        true
                    } else if self.descends(model, o, t)? {
                        false
                    } else if self.options.take_remote_stages.iter().any(|m| m == model) {
                        true
                    } else {
                        let (a, b) = (self.describe_state(model, o), self.describe_state(model, t));
                        self.conflict(
                            model,
                            format!(
                                "the stages of {model} moved apart: here the newest move is {a}, on {} it is {b}",
                                self.remote.url()
                            ),
                            format!(
                                "keep the remote's moves with `mreg sync --take-remote-stages {model}`, then promote again where needed"
                            ),
                        );
                        return Ok(());
                    }
                }
            };
            if take_theirs {
                let target = theirs_id.expect("taken only when the remote has a HEAD");
                stages::load_state(self.reg, model, &target)?;
                if let Swap::Done(_) =
                    stages::advance(self.reg, model, ours.as_ref(), &target, &holder, LOCK_WAIT)?
                {
                    self.report.fetched.stages += 1;
                    return Ok(());
                }
                continue;
            }
            if !self.options.send {
                return Ok(());
            }
            if self.withheld_from_remote(model)? {
                return Ok(());
            }
            let ours = ours.expect("sent only when there is a local HEAD");
            let theirs_keys = remote_keys(self.remote)?;
            let ours_keys = local_keys(self.reg)?;
            self.send_states(&theirs_keys, &ours_keys, Some(model))?;
            let expected = theirs.as_ref().map(|(_, tag)| tag.as_str());
            match self
                .remote
                .swap(&key, expected, format!("{ours}\n").as_bytes())?
            {
                Swap::Done(()) => {
                    self.report.sent.stages += 1;
                    return Ok(());
                }
                Swap::Moved => {
                    let theirs_keys = remote_keys(self.remote)?;
                    self.fetch_states(&theirs_keys, &ours_keys, Some(model))?;
                }
            }
        }
        self.conflict(
            model,
            format!(
                "the stages of {model} kept moving on {} while syncing",
                self.remote.url()
            ),
            "run `mreg sync` again".to_owned(),
        );
        Ok(())
    }

    /// Makes sure the state the remote's `HEAD` names is here: one that arrived after
    /// the listing is fetched; one the remote lacks is an error naming its `HEAD`.
    fn fetch_state_named(&mut self, model: &str, id: &StateId, key: &str) -> Result<()> {
        if stages::state_path(self.reg, model, id).is_file() {
            return Ok(());
        }
        let theirs_keys = remote_keys(self.remote)?;
        self.fetch_states(&theirs_keys, &local_keys(self.reg)?, Some(model))?;
        if stages::state_path(self.reg, model, id).is_file() {
            return Ok(());
        }
        Err(crate::error::Failure::error(format!(
            "{key} on {} names stage state {}, which the remote does not hold",
            self.remote.url(),
            id.short()
        ))
        .hint("the remote's stage pointer is damaged; `mreg history` in a registry that synced before lists the states it can point to")
        .into())
    }

    /// Returns whether the model's local stage moves must not go to the remote (and
    /// records why): a remote not shown to enforce conditional writes, or a stage
    /// policy other than this registry's.
    fn withheld_from_remote(&mut self, model: &str) -> Result<bool> {
        if !self.options.may_move_remote_stages {
            self.conflict(
                model,
                format!(
                    "the stages of {model} moved here, but {} is not known to enforce conditional writes, so mreg does not move stages there",
                    self.remote.url()
                ),
                "`mreg remote check` tells whether it does now; if only one writer ever uses that remote, remove it and add it again with --single-writer".to_owned(),
            );
            return Ok(true);
        }
        if !self.same_stage_policy()? {
            self.conflict(
                model,
                format!(
                    "the stages of {model} moved here under a stage policy that differs from the one in {}'s config.toml, so mreg does not move them there",
                    self.remote.url()
                ),
                format!(
                    "make this registry's [stages] the remote's (copy its config.toml), or promote on the remote itself with --registry {}",
                    self.remote.url()
                ),
            );
            return Ok(true);
        }
        Ok(false)
    }

    /// Returns whether this registry's stage policy is the remote's: stage moves made
    /// here passed this registry's gates and `from` rules, which must be the remote's
    /// for the moves to stand there.
    fn same_stage_policy(&mut self) -> Result<bool> {
        if let Some(same) = self.same_policy {
            return Ok(same);
        }
        let ours = self.reg.config()?;
        let same = match self.remote.get(keys::CONFIG)? {
            Some(theirs) => {
                let text = String::from_utf8_lossy(&theirs.bytes);
                let path = std::path::Path::new(keys::CONFIG);
                crate::store::config::Config::parse(&text, path).is_ok_and(|theirs| {
                    serde_json::to_value(&theirs.stages).ok()
                        == serde_json::to_value(&ours.stages).ok()
                })
            }
            None => true,
        };
        self.same_policy = Some(same);
        Ok(same)
    }

    /// Returns whether the state `newer` has `older` in its chain (or is it).
    fn descends(&self, model: &str, newer: &StateId, older: &StateId) -> Result<bool> {
        let mut next = Some(newer.clone());
        while let Some(id) = next {
            if id == *older {
                return Ok(true);
            }
            if !stages::state_path(self.reg, model, &id).is_file() {
                return Ok(false);
            }
            next = stages::load_state(self.reg, model, &id)?.previous;
        }
        Ok(false)
    }

    fn describe_state(&self, model: &str, id: &StateId) -> String {
        match stages::load_state(self.reg, model, id) {
            Ok(s) => format!(
                "#{} {} {}@{} to {} by {} at {}",
                s.number,
                s.action.as_str(),
                s.model,
                s.version,
                s.stage,
                s.actor,
                s.time
            ),
            Err(_) => format!("state {}", id.short()),
        }
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
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| StateId::parse(t.trim()))
        .ok_or_else(|| anyhow::anyhow!("{key} on {whence} does not name a stage state"))
}

/// Returns the objects a run file names: series stored as objects, and data inputs
/// stored with `--store-data` (a folder's whole tree).
pub fn run_objects(
    key: &str,
    bytes: &[u8],
    read_tree: &dyn Fn(TreeId) -> Result<crate::store::tree::Tree>,
) -> Result<Vec<(ObjectId, u64)>> {
    let text = std::str::from_utf8(bytes).with_context(|| format!("reading {key}"))?;
    let (series, data) = if key.ends_with(keys::RUN_RECORD) {
        let record = RunRecord::parse(text).with_context(|| format!("parsing {key}"))?;
        (record.series, record.data)
    } else {
        let event = RunEvent::parse(text).with_context(|| format!("parsing {key}"))?;
        (event.series, event.data)
    };
    let mut out = Vec::new();
    for s in series.values() {
        out.extend(s.chunk.objects.iter().map(|o| (*o, 0)));
    }
    for input in data.iter().filter(|d| d.stored) {
        let Some(hash) = input
            .hash
            .as_deref()
            .and_then(|h| h.parse::<ObjectId>().ok())
        else {
            continue;
        };
        if input.kind == "folder" {
            out.extend(transfer::closure(TreeId(hash), read_tree)?);
        } else {
            out.push((hash, input.bytes.unwrap_or(0)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_keys_are_sorted_by_kind_and_strays_ignored() {
        let state = "a".repeat(64);
        let keys = [
            "models/churn/versions/1.toml".to_owned(),
            "models/churn/versions/02.toml".to_owned(),
            "models/churn/versions/0.toml".to_owned(),
            format!("models/churn/states/{state}.toml"),
            "models/churn/states/short.toml".to_owned(),
            "models/churn/HEAD".to_owned(),
            "models/churn/HEAD.lock".to_owned(),
            "models/../versions/1.toml".to_owned(),
            "runs/0123456789abcdef/run.toml".to_owned(),
            "runs/0123456789abcdef/log/00000000000000000001-abcd1234.toml".to_owned(),
            "runs/0123456789abcdef/log/.tmp-x.toml".to_owned(),
            "runs/not-a-run/run.toml".to_owned(),
            "tmp/probe-1".to_owned(),
        ];
        let parsed = Keys::of(keys.iter().map(String::as_str));
        assert_eq!(parsed.versions["churn"], BTreeSet::from([1]));
        assert_eq!(
            parsed.states["churn"],
            BTreeSet::from([format!("{state}.toml")])
        );
        assert_eq!(parsed.heads, BTreeSet::from(["churn".to_owned()]));
        assert_eq!(parsed.runs.len(), 1);
        assert_eq!(parsed.runs["0123456789abcdef"].len(), 2);
        assert_eq!(parsed.models(), BTreeSet::from(["churn".to_owned()]));
    }
}
