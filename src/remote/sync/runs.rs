//! Syncing runs: records and events each side lacks, copied after the objects they name
//! (stored series, stored data inputs), and each run's record before its events.

use std::fs;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};

use super::{Keys, Sync, create_or_same, run_objects};
use crate::remote::transfer;
use crate::store::{atomic, keys, read};

impl Sync<'_> {
    /// Copies the remote's runs and events the registry lacks: all read at once, then
    /// the objects they name, then each run's record before its events.
    pub(super) fn fetch_runs(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
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
            let path = self.reg.path(&key);
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
                let key = keys::run_file(id, file);
                let bytes =
                    fs::read(self.reg.path(&key)).with_context(|| format!("reading {key}"))?;
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
}
