//! Syncing runs: records and events each side lacks, copied after the objects they name
//! (stored series, stored data inputs), and each run's record before its events.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;

use super::{Keys, Side, Sync, create_or_same};
use crate::id::ObjectId;
use crate::remote::transfer;
use crate::store::runs::{parse_run_file, run_objects};
use crate::store::{atomic, files, keys, read};

impl Sync<'_> {
    /// Copies the remote's runs and events the registry lacks: all read at once, then
    /// the objects they name, then each run's record before its events.
    /// Run removals wait for [`Sync::sync_run_removals`].
    pub(super) fn fetch_runs(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        let mut keys = Vec::new();
        for (id, files) in &theirs.runs {
            let have = ours.runs.get(id);
            keys.extend(
                files
                    .iter()
                    .filter(|f| *f != keys::RUN_REMOVAL)
                    .filter(|f| have.is_none_or(|h| !h.contains(*f)))
                    .map(|f| keys::run_file(id, f)),
            );
        }
        if keys.is_empty() {
            return Ok(());
        }
        let bodies = Mutex::new(Vec::with_capacity(keys.len()));
        transfer::parallel(&keys, transfer::PARALLEL, &|key| {
            let fetched = self.remote.get(key);
            bodies.lock().expect("bodies").push((key.clone(), fetched));
            Ok(())
        })?;
        // Every file is parsed, objects or not: a file that is not a run record or
        // event is refused, never stored.
        let mut parsed = Vec::new();
        for (key, fetched) in bodies.into_inner().expect("bodies") {
            let checked = fetched.and_then(|fetched| {
                let Some(fetched) = fetched else {
                    return Ok(None);
                };
                let objects = if self.options.objects {
                    run_objects(&key, &fetched.bytes, &|t| self.read_tree(t))?
                } else {
                    parse_run_file(&key, &fetched.bytes)?;
                    Vec::new()
                };
                Ok(Some((fetched.bytes, objects)))
            });
            match checked {
                Ok(Some((bytes, objects))) => parsed.push((key, bytes, objects)),
                Ok(None) => {}
                Err(err) => self.refuse(&key, Side::Remote, None, &err),
            }
        }
        if self.options.objects {
            let wanted: Vec<(ObjectId, u64)> = parsed
                .iter()
                .flat_map(|(.., objects)| objects.iter().copied())
                .collect();
            let fetch =
                transfer::fetch_all(self.reg, self.remote, self.known, &wanted, self.progress)?;
            self.report.fetched.objects += fetch.objects;
            self.report.fetched.bytes += fetch.bytes;
            let mut kept = Vec::new();
            for (key, bytes, objects) in parsed {
                match objects.iter().find_map(|(id, _)| fetch.failed.get(id)) {
                    None => kept.push((key, bytes, objects)),
                    Some(why) => {
                        let err = anyhow::anyhow!("{why}");
                        self.refuse(&key, Side::Remote, None, &err);
                    }
                }
            }
            parsed = kept;
        }
        let mut bodies: Vec<(String, Vec<u8>)> = parsed
            .into_iter()
            .map(|(key, bytes, _)| (key, bytes))
            .collect();
        // An event waits for its run's record: one refused above holds its events back
        // with it, so no run folder is made without a record.
        let recorded: std::collections::HashSet<String> = bodies
            .iter()
            .filter(|(key, _)| key.ends_with(keys::RUN_RECORD))
            .filter_map(|(key, _)| key.split('/').nth(1).map(str::to_owned))
            .collect();
        bodies.retain(|(key, _)| {
            let run = key.split('/').nth(1).unwrap_or_default();
            recorded.contains(run)
                || ours
                    .runs
                    .get(run)
                    .is_some_and(|files| files.iter().any(|f| f == keys::RUN_RECORD))
        });
        // Records before events, as a run is created.
        bodies.sort_by_key(|(key, _)| !key.ends_with(keys::RUN_RECORD));
        for (key, bytes) in bodies {
            let run = key.split('/').nth(1).expect("a run key names its run");
            files::make_dir(self.reg.root(), &keys::run_file(run, "log"))?;
            let path = self.reg.make_parents(&key)?;
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

    /// Sends the runs and events the remote lacks: the objects they name, then every
    /// run record, then the events, many at once.
    pub(super) fn send_runs(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        let mut pending = Vec::new();
        let mut objects = Vec::new();
        for (id, files) in &ours.runs {
            let have = theirs.runs.get(id);
            for file in files
                .iter()
                .filter(|f| have.is_none_or(|h| !h.contains(*f)))
            {
                if file == keys::RUN_REMOVAL {
                    continue;
                }
                let key = keys::run_file(id, file);
                let checked = self.local_record(&key).and_then(|bytes| {
                    let named = run_objects(&key, &bytes, &|t| read::read_tree(self.reg, t))?;
                    Ok((bytes, named))
                });
                match checked {
                    Ok((bytes, named)) => {
                        let named: Vec<ObjectId> = named.into_iter().map(|(o, _)| o).collect();
                        objects.extend(named.iter().copied());
                        pending.push((key, bytes, named));
                    }
                    Err(err) => self.refuse(&key, Side::Local, None, &err),
                }
            }
        }
        let damaged = self.send_objects(&objects)?;
        let mut whole = Vec::with_capacity(pending.len());
        let mut refused_records = std::collections::HashSet::new();
        for (key, bytes, named) in pending {
            match named.iter().find_map(|o| damaged.get(o)) {
                None => whole.push((key, bytes)),
                Some(why) => {
                    if key.ends_with(keys::RUN_RECORD) {
                        refused_records
                            .insert(key.split('/').nth(1).unwrap_or_default().to_owned());
                    }
                    let err = anyhow::anyhow!("{why}");
                    self.refuse(&key, Side::Local, None, &err);
                }
            }
        }
        // A run's events wait with its record: sent alone they would be leftovers there.
        whole.retain(|(key, _)| {
            !refused_records.contains(key.split('/').nth(1).unwrap_or_default())
        });
        let (records, events): (Vec<_>, Vec<_>) = whole
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

    /// Copies run removals each side lacks, after the version removals: a run's
    /// removal is taken by a side only when it holds the run's record and none of its
    /// surviving versions came from the run (else a conflict naming them).
    pub(super) fn sync_run_removals(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        let removed = |keys: &Keys, id: &str| {
            keys.runs
                .get(id)
                .is_some_and(|f| f.iter().any(|f| f == keys::RUN_REMOVAL))
        };
        for id in theirs.runs.keys() {
            if !removed(theirs, id)
                || removed(ours, id)
                || !self
                    .reg
                    .path(&keys::run_file(id, keys::RUN_RECORD))
                    .is_file()
            {
                continue;
            }
            let versions = self.versions_from_run(id)?;
            if !versions.is_empty() {
                let on = format!("on {}", self.remote.url());
                self.run_removal_conflict(id, &versions, &on);
                continue;
            }
            let key = keys::run_file(id, keys::RUN_REMOVAL);
            self.fetch_removal(&key, None, &|bytes| parse_run_file(&key, bytes).map(drop))?;
        }
        if !self.options.send {
            return Ok(());
        }
        for id in ours.runs.keys() {
            if !removed(ours, id)
                || removed(theirs, id)
                || self
                    .remote
                    .size(&keys::run_file(id, keys::RUN_RECORD))?
                    .is_none()
            {
                continue;
            }
            let versions = self.versions_from_run(id)?;
            if !versions.is_empty() {
                self.run_removal_conflict(id, &versions, "here");
                continue;
            }
            let key = keys::run_file(id, keys::RUN_REMOVAL);
            let checked = self.local_record(&key).and_then(|bytes| {
                parse_run_file(&key, &bytes)?;
                Ok(bytes)
            });
            match checked {
                Ok(bytes) => {
                    if create_or_same(self.remote, &key, &bytes)? {
                        self.report.sent.removals += 1;
                    }
                }
                Err(err) => self.refuse(&key, Side::Local, None, &err),
            }
        }
        Ok(())
    }
}
