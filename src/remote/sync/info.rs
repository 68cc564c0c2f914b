//! Syncing the changes of models' own fields: each side gets the changes it lacks.
//! Changes are immutable and fold in the order of their names, so copying them both
//! ways leaves both sides with the same fields and never meets a conflict.

use std::collections::BTreeSet;
use std::sync::Mutex;

use anyhow::Result;

use super::{Keys, Side, Sync, create_or_same};
use crate::manifest::info::InfoChange;
use crate::remote::transfer;
use crate::store::info::CHANGES_LIMIT;
use crate::store::{atomic, files, keys};

/// Parses a change read from a side, checking it is one of the model its key names.
fn check(model: &str, bytes: &[u8]) -> Result<()> {
    let change = InfoChange::parse(std::str::from_utf8(bytes)?)?;
    if change.model != model {
        anyhow::bail!("it says it is a change of model {}", change.model);
    }
    Ok(())
}

/// Returns the changes of `model` that `from` holds and `to` lacks, the oldest first,
/// and those beyond what `to` may hold in all ([`CHANGES_LIMIT`]).
fn missing(model: &str, from: &Keys, to: &Keys) -> (Vec<String>, Vec<String>) {
    let empty = BTreeSet::new();
    let have = to.info.get(model).unwrap_or(&empty);
    let lacking: Vec<String> = from
        .info
        .get(model)
        .unwrap_or(&empty)
        .difference(have)
        .cloned()
        .collect();
    let room = CHANGES_LIMIT.saturating_sub(have.len()).min(lacking.len());
    let (fits, over) = lacking.split_at(room);
    (fits.to_vec(), over.to_vec())
}

/// Says why a change was not copied: the side would hold more than a model keeps.
fn over_limit(model: &str, side: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{side} would then hold more than {CHANGES_LIMIT} changes of {model}'s fields, the most a model keeps"
    )
}

impl Sync<'_> {
    /// Copies the changes of model fields the remote holds and this registry lacks,
    /// for the models this registry holds.
    pub(super) fn fetch_info(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        let mut wanted = Vec::new();
        for model in theirs.info.keys() {
            if !files::dir_exists(self.reg.root(), &keys::versions(model))? {
                // Its versions did not come (yet): the fields wait for them.
                continue;
            }
            let (fits, over) = missing(model, theirs, ours);
            for name in over {
                let err = over_limit(model, "this registry");
                self.refuse(&keys::info(model, &name), Side::Remote, None, &err);
            }
            wanted.extend(fits.into_iter().map(|name| (model.clone(), name)));
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let bodies = Mutex::new(Vec::with_capacity(wanted.len()));
        transfer::parallel(&wanted, transfer::PARALLEL, &|(model, name)| {
            let key = keys::info(model, name);
            let fetched = self.remote.get(&key).and_then(|fetched| {
                let bytes = fetched
                    .ok_or_else(|| anyhow::anyhow!("it is missing"))?
                    .bytes;
                check(model, &bytes)?;
                Ok(bytes)
            });
            bodies.lock().expect("bodies").push((key, fetched));
            Ok(())
        })?;
        let mut bodies = bodies.into_inner().expect("bodies");
        bodies.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, fetched) in bodies {
            match fetched {
                Ok(bytes) => {
                    let path = self.reg.make_parents(&key)?;
                    if atomic::create_exclusive(&self.reg.tmp_dir(), &path, &bytes)? {
                        self.report.fetched.info += 1;
                    }
                }
                Err(err) => self.refuse(&key, Side::Remote, None, &err),
            }
        }
        Ok(())
    }

    /// Sends the changes of model fields this registry holds and the remote lacks.
    pub(super) fn send_info(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        let mut pending = Vec::new();
        for model in ours.info.keys() {
            let (fits, over) = missing(model, ours, theirs);
            for name in over {
                let err = over_limit(model, "the remote");
                self.refuse(&keys::info(model, &name), Side::Local, None, &err);
            }
            for name in fits {
                let key = keys::info(model, &name);
                match self.local_record(&key).and_then(|bytes| {
                    check(model, &bytes)?;
                    Ok(bytes)
                }) {
                    Ok(bytes) => pending.push((key, bytes)),
                    Err(err) => self.refuse(&key, Side::Local, None, &err),
                }
            }
        }
        let created = std::sync::atomic::AtomicU64::new(0);
        transfer::parallel(&pending, transfer::PARALLEL, &|(key, bytes)| {
            if create_or_same(self.remote, key, bytes)? {
                created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })?;
        self.report.sent.info += created.into_inner();
        Ok(())
    }
}
