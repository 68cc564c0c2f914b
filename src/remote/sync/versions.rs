//! Syncing version records: each copied only after every object of its tree is on the
//! other side; a number that holds different records on the two sides is a conflict.

use std::fs;

use anyhow::{Context, Result};

use super::{Keys, Sync, parse_version};
use crate::id::ObjectId;
use crate::manifest::VersionRecord;
use crate::remote::{Created, transfer};
use crate::store::{atomic, keys, read};

impl Sync<'_> {
    /// Copies the remote's versions the registry lacks, each after its objects.
    pub(super) fn fetch_versions(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        let mut records = Vec::new();
        for (model, numbers) in &theirs.versions {
            let have = ours.versions.get(model);
            for n in numbers {
                let key = keys::version(model, *n);
                if have.is_some_and(|h| h.contains(n)) {
                    let local =
                        fs::read(self.reg.path(&key)).with_context(|| format!("reading {key}"))?;
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

    /// Returns whether the local record at a number the remote also holds differs
    /// from the remote's; a difference is recorded as a conflict.
    pub(super) fn differs_from_local(&mut self, model: &str, n: u64, key: &str) -> Result<bool> {
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

    pub(super) fn send_objects(&mut self, objects: &[ObjectId]) -> Result<()> {
        let (count, bytes) =
            transfer::send_all(self.reg, self.remote, self.known, objects, self.progress)?;
        self.report.sent.objects += count;
        self.report.sent.bytes += bytes;
        Ok(())
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
                let bytes =
                    fs::read(self.reg.path(&key)).with_context(|| format!("reading {key}"))?;
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
    pub(super) fn send_every_object(&mut self, ours: &Keys) -> Result<()> {
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
}
