//! Syncing the changes of models' own fields: each side gets the changes it lacks.
//! Changes are immutable and fold in the order of their names, so copying them both
//! ways leaves both sides with the same fields and never meets a conflict.

use std::collections::BTreeSet;
use std::sync::Mutex;

use anyhow::Result;

use super::{Keys, Side, Sync};
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

/// Returns the changes of `model` among the first [`CHANGES_LIMIT`] `from` holds (by
/// name) that `to` lacks, the oldest first.
///
/// A reader folds a model's first [`CHANGES_LIMIT`] changes by name, and each side
/// sends its own first ones: after a sync both sides hold the first of the changes
/// either held, so both fold the same fields. Changes past them no reader folds, and
/// they are not copied.
fn missing(model: &str, from: &Keys, to: &Keys) -> Vec<String> {
    let empty = BTreeSet::new();
    let have = to.info.get(model).unwrap_or(&empty);
    from.info
        .get(model)
        .unwrap_or(&empty)
        .iter()
        .take(CHANGES_LIMIT)
        .filter(|name| !have.contains(*name))
        .cloned()
        .collect()
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
            let fits = missing(model, theirs, ours);
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
                // A change that cannot be written here (its folder is no folder) is
                // refused by name; the sync goes on.
                Ok(bytes) => {
                    match self.reg.make_parents(&key).and_then(|path| {
                        atomic::create_exclusive(&self.reg.tmp_dir(), &path, &bytes)
                    }) {
                        Ok(true) => self.report.fetched.info += 1,
                        Ok(false) => {}
                        Err(err) => self.refuse(&key, Side::Local, None, &err),
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
            for name in missing(model, ours, theirs) {
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
        self.report.sent.info += self.create_each(&pending)?;
        Ok(())
    }
}
