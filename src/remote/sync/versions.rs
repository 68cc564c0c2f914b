//! Syncing version records: each copied only after every object of its tree is on the
//! other side; a number that holds different records on the two sides is a conflict.

use std::collections::BTreeMap;

use anyhow::Result;

use super::{Keys, Side, Sync, parse_version};
use crate::id::ObjectId;
use crate::manifest::VersionRecord;
use crate::remote::{Created, transfer};
use crate::store::object::Encoding;
use crate::store::{atomic, keys, models, removals, runs, stages};

impl Sync<'_> {
    /// Copies the remote's versions the registry lacks, each after its objects. A
    /// version whose record or tree is refused, or whose objects cannot all be fetched
    /// intact, is left out, and the rest are copied.
    pub(super) fn fetch_versions(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        let mut records = Vec::new();
        for (model, numbers) in &theirs.versions {
            let have = ours.versions.get(model);
            for n in numbers {
                let key = keys::version(model, *n);
                if have.is_some_and(|h| h.contains(n)) {
                    let local = self.local_record(&key)?;
                    if self.known.same_record(&key, &local)
                        || !self.differs_from_local(model, *n, &key)?
                    {
                        continue;
                    }
                    break;
                }
                let fetched = match self.remote.get(&key) {
                    Ok(Some(fetched)) => fetched,
                    Ok(None) => continue,
                    Err(err) => {
                        self.refuse(&key, Side::Remote, Some(model), &err);
                        continue;
                    }
                };
                match parse_version(&fetched.bytes, model, *n, self.remote.url()) {
                    Ok(record) => records.push((model.clone(), *n, record, fetched.bytes)),
                    Err(err) => self.refuse(&key, Side::Remote, Some(model), &err),
                }
            }
        }
        records.retain(|(model, ..)| !self.blocked.contains(model));
        // A version removed on the remote comes without its objects (they may be gone
        // there), and with its removal, which is published first, so this registry never
        // holds it as a version whose objects are missing.
        let (removed, live): (Vec<_>, Vec<_>) = records
            .into_iter()
            .partition(|(model, n, ..)| theirs.removals.get(model).is_some_and(|r| r.contains(n)));
        self.fetch_removed_versions(removed)?;
        let records = live;
        // Runs came first: a version whose run is neither here nor fetched (absent on
        // the remote, or refused) is refused with it, as fsck would report it.
        let mut with_run = Vec::with_capacity(records.len());
        for record in records {
            match &record.2.run {
                Some(run) if !runs::record_path(self.reg, run).is_file() => {
                    let key = keys::version(&record.0, record.1);
                    let err = anyhow::anyhow!("it names run {run}, which neither side holds whole");
                    self.refuse(&key, Side::Remote, Some(&record.0), &err);
                }
                Some(run) if removals::run_is_removed(self.reg, run) => {
                    let reference = format!("{}@{}", record.0, record.1);
                    self.version_of_removed_run(&record.0, &reference, run.as_str(), "here");
                }
                _ => with_run.push(record),
            }
        }
        let mut records = with_run;
        if self.options.objects {
            let graphs: Vec<Result<Vec<(ObjectId, u64)>>> = records
                .iter()
                .map(|(_, _, record, _)| {
                    models::graph_with(record, &mut |t| self.read_tree(t)).map(|g| g.objects())
                })
                .collect();
            let mut kept = Vec::new();
            for (record, graph) in records.into_iter().zip(graphs) {
                match graph {
                    Ok(objects) => kept.push((record, objects)),
                    Err(err) => {
                        let key = keys::version(&record.0, record.1);
                        self.refuse(&key, Side::Remote, Some(&record.0), &err);
                    }
                }
            }
            let wanted: Vec<(ObjectId, u64)> =
                kept.iter().flat_map(|(_, o)| o.iter().copied()).collect();
            let fetch =
                transfer::fetch_all(self.reg, self.remote, self.known, &wanted, self.progress)?;
            self.report.fetched.objects += fetch.objects;
            self.report.fetched.bytes += fetch.bytes;
            records = Vec::new();
            for (record, objects) in kept {
                match objects.iter().find_map(|(id, _)| fetch.failed.get(id)) {
                    None => records.push(record),
                    Some(why) => {
                        let key = keys::version(&record.0, record.1);
                        let err = anyhow::anyhow!("{why}");
                        self.refuse(&key, Side::Remote, Some(&record.0), &err);
                    }
                }
            }
        }
        for (model, n, _, bytes) in records {
            let path = self.reg.make_parents(&keys::version(&model, n))?;
            if atomic::create_exclusive(&self.reg.tmp_dir(), &path, &bytes)? {
                self.report.fetched.versions += 1;
            }
            self.known
                .note_same_record(&keys::version(&model, n), &bytes)?;
        }
        Ok(())
    }

    /// Copies versions removed on the remote: each removal, checked to name the tree of
    /// its record, first, then the record, and none of the objects.
    fn fetch_removed_versions(
        &mut self,
        removed: Vec<(String, u64, VersionRecord, Vec<u8>)>,
    ) -> Result<()> {
        for (model, n, record, bytes) in removed {
            let key = keys::removal(&model, n);
            let removal = self.remote.get(&key).and_then(|fetched| {
                let fetched = fetched.ok_or_else(|| anyhow::anyhow!("it is missing"))?;
                removals::check_bytes(&fetched.bytes, &model, n, &record)?;
                Ok(fetched.bytes)
            });
            match removal {
                Ok(removal) => {
                    let path = self.reg.make_parents(&key)?;
                    if atomic::create_exclusive(&self.reg.tmp_dir(), &path, &removal)? {
                        self.report.fetched.removals += 1;
                    }
                    let path = self.reg.make_parents(&keys::version(&model, n))?;
                    if atomic::create_exclusive(&self.reg.tmp_dir(), &path, &bytes)? {
                        self.report.fetched.versions += 1;
                    }
                }
                Err(err) => self.refuse(&key, Side::Remote, Some(&model), &err),
            }
        }
        Ok(())
    }

    /// Returns whether the local record at a number the remote also holds differs
    /// from the remote's; a difference is recorded as a conflict.
    pub(super) fn differs_from_local(&mut self, model: &str, n: u64, key: &str) -> Result<bool> {
        let local = self.local_record(&keys::version(model, n))?;
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

    /// Sends the objects the remote lacks; returns those refused because their content
    /// here no longer matches their name, each with why.
    pub(super) fn send_objects(
        &mut self,
        objects: &[ObjectId],
    ) -> Result<BTreeMap<ObjectId, String>> {
        let sent = transfer::send_all(self.reg, self.remote, self.known, objects, self.progress)?;
        self.report.sent.objects += sent.objects;
        self.report.sent.bytes += sent.bytes;
        Ok(sent.failed)
    }

    /// Sends the versions the remote lacks, each after its objects.
    pub(super) fn send_versions(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
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
                if ours.removals.get(model).is_some_and(|r| r.contains(n)) {
                    self.send_removed_version(model, *n, &key)?;
                    continue;
                }
                let record = self.local_record(&key).and_then(|bytes| {
                    let record = parse_version(&bytes, model, *n, "this registry")?;
                    let graph = models::graph(self.reg, &record)?;
                    Ok((bytes, graph.objects()))
                });
                match record {
                    Ok((bytes, objects)) => records.push((model.clone(), *n, key, bytes, objects)),
                    Err(err) => self.refuse(&key, Side::Local, Some(model), &err),
                }
            }
        }
        let objects: Vec<ObjectId> = records
            .iter()
            .flat_map(|(.., objects)| objects.iter().map(|(o, _)| *o))
            .collect();
        let damaged = self.send_objects(&objects)?;
        for (model, n, key, bytes, objects) in records {
            if self.blocked.contains(&model) {
                continue;
            }
            let run = parse_version(&bytes, &model, n, "this registry")?.run;
            if let Some(run) = run.filter(|r| {
                theirs
                    .runs
                    .get(r.as_str())
                    .is_some_and(|f| f.iter().any(|f| f == keys::RUN_REMOVAL))
            }) {
                let on = format!("on {}", self.remote.url());
                self.version_of_removed_run(&model, &format!("{model}@{n}"), run.as_str(), &on);
                continue;
            }
            if let Some(why) = objects.iter().find_map(|(o, _)| damaged.get(o)) {
                let err = anyhow::anyhow!("{why}");
                self.refuse(&key, Side::Local, Some(&model), &err);
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

    /// Sends a removed version the remote lacks: its removal first, then its record,
    /// and none of its objects, which may be gone here.
    fn send_removed_version(&mut self, model: &str, n: u64, key: &str) -> Result<()> {
        let removal_key = keys::removal(model, n);
        let checked = self.local_record(key).and_then(|bytes| {
            let record = parse_version(&bytes, model, n, "this registry")?;
            let removal = self.local_record(&removal_key)?;
            removals::check_bytes(&removal, model, n, &record)?;
            Ok((bytes, removal))
        });
        let (bytes, removal) = match checked {
            Ok(found) => found,
            Err(err) => {
                self.refuse(&removal_key, Side::Local, Some(model), &err);
                return Ok(());
            }
        };
        if self.remote.create(&removal_key, &removal)? == Created::New {
            self.report.sent.removals += 1;
        }
        match self.remote.create(key, &bytes)? {
            Created::New => {
                self.report.sent.versions += 1;
                self.known.note_same_record(key, &bytes)?;
            }
            Created::Exists => {
                self.differs_from_local(model, n, key)?;
            }
        }
        Ok(())
    }

    /// Copies the removals of versions both sides hold, each way, each checked to
    /// name the tree of the record it removes.
    pub(super) fn sync_removals(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        for (model, numbers) in &theirs.removals {
            if self.blocked.contains(model) {
                continue;
            }
            let mine = ours.removals.get(model);
            for &n in numbers {
                let both = ours.versions.get(model).is_some_and(|v| v.contains(&n));
                if !both || mine.is_some_and(|m| m.contains(&n)) {
                    continue;
                }
                // Under the model's lock, so that no promotion here decides around it.
                let holder = crate::store::lock::Holder::this_process(
                    "mreg sync (removal)".to_owned(),
                    crate::clock::format_time(std::time::SystemTime::now()),
                );
                let head_path = self.reg.make_parents(&keys::head(model))?;
                let _lock = crate::store::lock::Lock::acquire(
                    &self.reg.tmp_dir(),
                    &head_path,
                    &holder,
                    super::LOCK_WAIT,
                )?;
                let holding = stages::current(self.reg, model)?
                    .and_then(|(_, s)| s.stages.into_iter().find(|(_, v)| *v == n));
                if let Some((stage, _)) = holding {
                    self.removal_conflict(model, n, &stage, Side::Local);
                    break;
                }
                let reg = self.reg;
                self.fetch_removal(&keys::removal(model, n), Some(model), &|bytes| {
                    let record = models::load_version(reg, model, n)?;
                    removals::check_bytes(bytes, model, n, &record)
                })?;
            }
        }
        if !self.options.send {
            return Ok(());
        }
        for (model, numbers) in &ours.removals {
            if self.blocked.contains(model) {
                continue;
            }
            let there = theirs.removals.get(model);
            for &n in numbers {
                let both = theirs.versions.get(model).is_some_and(|v| v.contains(&n));
                if !both || there.is_some_and(|t| t.contains(&n)) {
                    continue;
                }
                let _lock = self.remote.lock_head(model)?;
                if let Some(stage) = self.remote_holder(model, n)? {
                    self.removal_conflict(model, n, &stage, Side::Remote);
                    break;
                }
                let key = keys::removal(model, n);
                let version_key = keys::version(model, n);
                let local = self.local_record(&version_key)?;
                if !self.known.same_record(&version_key, &local)
                    && self.differs_from_local(model, n, &version_key)?
                {
                    continue;
                }
                let checked = self.local_record(&key).and_then(|bytes| {
                    let record = parse_version(&local, model, n, "this registry")?;
                    removals::check_bytes(&bytes, model, n, &record)?;
                    Ok(bytes)
                });
                match checked {
                    Ok(bytes) => {
                        if self.remote.create(&key, &bytes)? == Created::New {
                            self.report.sent.removals += 1;
                        }
                    }
                    Err(err) => self.refuse(&key, Side::Local, Some(model), &err),
                }
            }
        }
        Ok(())
    }

    /// Records that a version came from a run removed on the other side (`where_`):
    /// the version is not synced, as the run removal would not be where it is.
    fn version_of_removed_run(&mut self, model: &str, reference: &str, run: &str, where_: &str) {
        self.conflict(
            model,
            format!("{reference} came from run {run}, which was removed {where_}, so {model} was not synced"),
            format!(
                "remove {reference} too (`mreg rm {reference}`), or push its files again without --run {run}, then sync again"
            ),
        );
    }

    /// Returns the stage of the remote's newest state that holds `model@n`, if one does.
    fn remote_holder(&mut self, model: &str, n: u64) -> Result<Option<String>> {
        let key = keys::head(model);
        let Some(head) = self.remote.get(&key)? else {
            return Ok(None);
        };
        let id = super::parse_head(&head.bytes, &key, self.remote.url())?;
        self.fetch_state_named(model, &id, &key)?;
        let state = stages::load_state(self.reg, model, &id)?;
        Ok(state
            .stages
            .into_iter()
            .find(|(_, v)| *v == n)
            .map(|(stage, _)| stage))
    }

    /// Records that a removal of `model@n` from one side meets a stage holding it on
    /// `holder`'s side: the model is left as it is on both sides.
    pub(super) fn removal_conflict(&mut self, model: &str, n: u64, stage: &str, holder: Side) {
        let there = format!("on {}", self.remote.url());
        let (removed_on, held_on) = match holder {
            Side::Local => (there, "here".to_owned()),
            Side::Remote => ("here".to_owned(), there),
        };
        self.conflict(
            model,
            format!("{model}@{n} was removed {removed_on}, and {stage} holds it {held_on}, so neither the removal nor the stages of {model} were synced"),
            format!(
                "where {stage} holds it, promote another version to {stage} or empty it with `mreg rm {model}@{n} --force --reason TEXT`, then sync again"
            ),
        );
    }

    /// Sends every object of every local version the remote lacks, whether or not
    /// the version is new there.
    /// Objects lost here are fetched back from the remote on the way.
    pub(super) fn send_every_object(&mut self, ours: &Keys) -> Result<()> {
        let mut objects = Vec::new();
        for (model, numbers) in &ours.versions {
            if self.blocked.contains(model) {
                continue;
            }
            for n in numbers {
                let graph = models::load_version(self.reg, model, *n)
                    .and_then(|record| models::graph_with(&record, &mut |t| self.read_tree(t)));
                match graph {
                    Ok(graph) => objects.extend(graph.objects()),
                    Err(err) => {
                        let key = keys::version(model, *n);
                        self.refuse(&key, Side::Local, Some(model), &err);
                    }
                }
            }
        }
        let fetch =
            transfer::fetch_all(self.reg, self.remote, self.known, &objects, self.progress)?;
        self.report.fetched.objects += fetch.objects;
        self.report.fetched.bytes += fetch.bytes;
        objects.retain(|(id, _)| !fetch.failed.contains_key(id));
        for (id, why) in fetch.failed {
            let err = anyhow::anyhow!("{why}");
            self.refuse(&keys::object(id, Encoding::Raw), Side::Remote, None, &err);
        }
        let ids: Vec<ObjectId> = objects.into_iter().map(|(id, _)| id).collect();
        for (id, why) in self.send_objects(&ids)? {
            let err = anyhow::anyhow!("{why}");
            self.refuse(&keys::object(id, Encoding::Raw), Side::Local, None, &err);
        }
        Ok(())
    }
}
