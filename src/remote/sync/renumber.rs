//! `sync --renumber`: this registry's versions that differ from the remote's at the same
//! numbers are published there under the remote's next free numbers, keeping their old
//! number in `renumbered_from`, and the remote's versions take the old numbers here.

use std::collections::BTreeSet;
use std::fs;

use anyhow::{Context, Result};

use super::{
    Keys, LOCK_WAIT, Renumbered, Sync, local_keys, parse_head, parse_version, remote_keys,
};
use crate::manifest::VersionRecord;
use crate::remote::{Created, transfer};
use crate::store::lock::Holder;
use crate::store::{atomic, keys, read, stages};

impl Sync<'_> {
    /// Publishes this registry's versions of `model` that differ from the remote's at
    /// the same number (and every local version after the first of them) under the
    /// remote's next free numbers, then makes the local registry hold the remote's
    /// versions at the old numbers and its own at the new ones.
    pub(super) fn renumber(&mut self, model: &str, theirs: &Keys, ours: &Keys) -> Result<()> {
        let empty = BTreeSet::new();
        let remote_numbers = theirs.versions.get(model).unwrap_or(&empty);
        let local_numbers = ours.versions.get(model).unwrap_or(&empty);
        let moving = self.moving(model, remote_numbers, local_numbers)?;
        if moving.is_empty() {
            return Ok(());
        }
        let named = self.stages_name(model, &moving)?;
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
        if let Some((_, why)) = self.send_objects(&objects)?.into_iter().next() {
            return Err(crate::error::Failure::error(why)
                .hint("`mreg fsck` lists the damage; renumber once the version is whole again")
                .into());
        }
        let published = self.publish_renumbered(model, records)?;
        let replacements = self.remote_records(model, &moving, remote_numbers)?;
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

    /// Returns the local versions of `model` that move: the first that differs from the
    /// remote's at its number, and every local version after it the remote lacks.
    fn moving(
        &self,
        model: &str,
        remote_numbers: &BTreeSet<u64>,
        local_numbers: &BTreeSet<u64>,
    ) -> Result<Vec<u64>> {
        let mut moving = Vec::new();
        for n in local_numbers {
            let key = keys::version(model, *n);
            let differs = if remote_numbers.contains(n) {
                let local = self.local_record(&key)?;
                self.remote.get(&key)?.is_some_and(|f| f.bytes != local)
            } else {
                false
            };
            if differs || (!moving.is_empty() && !remote_numbers.contains(n)) {
                moving.push(*n);
            }
        }
        Ok(moving)
    }

    /// Returns whether the local stages of `model` name a moving number; such stages
    /// would change meaning, so they are replaced by the remote's when asked, and the
    /// renumbering is refused otherwise.
    fn stages_name(&self, model: &str, moving: &[u64]) -> Result<bool> {
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
        Ok(named)
    }

    /// Returns the remote's records at the moved numbers it holds, their objects
    /// fetched: they replace this registry's.
    fn remote_records(
        &mut self,
        model: &str,
        moving: &[u64],
        remote_numbers: &BTreeSet<u64>,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
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
        Ok(replacements)
    }

    /// Creates each record on the remote at its next free number, keeping its old
    /// number in `renumbered_from`; returns the records as published.
    pub(super) fn publish_renumbered(
        &mut self,
        model: &str,
        records: Vec<VersionRecord>,
    ) -> Result<Vec<VersionRecord>> {
        let mut next = crate::remote::highest_version(self.remote, model)? + 1;
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
    pub(super) fn reset_stages_to_remote(&mut self, model: &str) -> Result<()> {
        let key = keys::head(model);
        let local_head = stages::head_file(self.reg, model)?;
        let Some(theirs) = self.remote.get(&key)? else {
            // The marker goes first, so no reader ever takes the removal for a lost HEAD.
            let seen = self.reg.path(&keys::head_seen(model));
            if seen.exists() {
                fs::remove_file(&seen).with_context(|| format!("removing {}", seen.display()))?;
            }
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
}
