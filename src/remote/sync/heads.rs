//! Syncing stages: states each side lacks (each checked against its name), then each
//! model's `HEAD` brought to the newer of the two chains, by compare-and-swap on both
//! sides, or reported as a conflict when the chains grew apart.

use anyhow::Result;

use super::{
    Keys, LOCK_WAIT, SWAP_TRIES, Side, Sync, create_or_same, local_keys, parse_head, remote_keys,
};
use crate::id::StateId;
use crate::remote::Swap;
use crate::store::lock::Holder;
use crate::store::{atomic, keys, models, removals, stages};

impl Sync<'_> {
    /// Returns the state files `from` holds and `to` lacks, of models not blocked (and
    /// only of `only` when given), as (model, file name, key).
    pub(super) fn missing_states(
        &self,
        from: &Keys,
        to: &Keys,
        only: Option<&str>,
    ) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for (model, files) in &from.states {
            if !self.stages_may_sync(model) || only.is_some_and(|m| m != model) {
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
    pub(super) fn fetch_states(
        &mut self,
        theirs: &Keys,
        ours: &Keys,
        only: Option<&str>,
    ) -> Result<()> {
        for (model, file, key) in self.missing_states(theirs, ours, only) {
            let fetched = match self.remote.get(&key) {
                Ok(Some(fetched)) => fetched,
                Ok(None) => continue,
                Err(err) => {
                    self.refuse(&key, Side::Remote, Some(&model), &err);
                    continue;
                }
            };
            let id = file.trim_end_matches(".toml");
            if StateId::of(&fetched.bytes).as_str() != id {
                let err = anyhow::anyhow!("the stage state does not match its name");
                self.refuse(&key, Side::Remote, Some(&model), &err);
                continue;
            }
            let target = self.reg.make_parents(&key)?;
            if atomic::create_exclusive(&self.reg.tmp_dir(), &target, &fetched.bytes)? {
                self.report.fetched.states += 1;
            }
        }
        Ok(())
    }

    /// Sends the stage states the remote lacks.
    pub(super) fn send_states(
        &mut self,
        theirs: &Keys,
        ours: &Keys,
        only: Option<&str>,
    ) -> Result<()> {
        for (_, _, key) in self.missing_states(ours, theirs, only) {
            let bytes = match self.local_record(&key) {
                Ok(bytes) => bytes,
                Err(err) => {
                    let model = key.split('/').nth(1).map(str::to_owned);
                    self.refuse(&key, Side::Local, model.as_deref(), &err);
                    continue;
                }
            };
            if create_or_same(self.remote, &key, &bytes)? {
                self.report.sent.states += 1;
            }
        }
        Ok(())
    }

    /// Brings a model's `HEAD` to the newer of the two chains, or reports that they
    /// grew apart. A compare-and-swap lost to another writer is tried again, a bounded
    /// number of times.
    pub(super) fn reconcile_head(&mut self, model: &str) -> Result<()> {
        let holder = Holder::this_process(
            "mreg sync".to_owned(),
            crate::clock::format_time(std::time::SystemTime::now()),
        );
        for _ in 0..SWAP_TRIES {
            if let Attempt::Settled = self.reconcile_once(model, &holder)? {
                return Ok(());
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

    /// Makes one attempt at bringing the two `HEAD`s together.
    fn reconcile_once(&mut self, model: &str, holder: &Holder) -> Result<Attempt> {
        let key = keys::head(model);
        let ours = stages::head_file(self.reg, model)?;
        let theirs = match self.remote.get(&key)? {
            Some(f) => Some((parse_head(&f.bytes, &key, self.remote.url())?, f.tag)),
            None => None,
        };
        let theirs_id = theirs.as_ref().map(|(id, _)| id.clone());
        if ours == theirs_id {
            return Ok(Attempt::Settled);
        }
        if theirs_id.is_none() && self.remote.size(&keys::head_seen(model))?.is_some() {
            // Its HEAD was lost: sending ours over it would hide the remote's own moves.
            let err = anyhow::anyhow!(
                "the remote's HEAD of {model} is missing, though stages moved there; \
                 `mreg --registry {} fsck --restore-head {model}` points it at its newest state again",
                self.remote.url()
            );
            self.refuse(&key, Side::Remote, Some(model), &err);
            return Ok(Attempt::Settled);
        }
        if let Some(id) = &theirs_id {
            self.fetch_state_named(model, id, &key)?;
        }
        let Some(take_theirs) = self.newer_side(model, ours.as_ref(), theirs_id.as_ref())? else {
            return Ok(Attempt::Settled);
        };
        if take_theirs {
            let target = theirs_id.expect("taken only when the remote has a HEAD");
            return self.take_remote_head(model, ours.as_ref(), &target, holder);
        }
        if !self.options.send || self.withheld_from_remote(model)? {
            return Ok(Attempt::Settled);
        }
        let ours = ours.expect("sent only when there is a local HEAD");
        self.send_head(model, &ours, theirs.as_ref().map(|(_, tag)| tag.as_str()))
    }

    /// Returns whether the remote's chain is the one to keep (`Some(true)`) or ours
    /// (`Some(false)`); `None` for chains that grew apart, recorded as a conflict.
    fn newer_side(
        &mut self,
        model: &str,
        ours: Option<&StateId>,
        theirs: Option<&StateId>,
    ) -> Result<Option<bool>> {
        let (o, t) = match (ours, theirs) {
            (_, None) => return Ok(Some(false)),
            (None, Some(_)) => return Ok(Some(true)),
            (Some(o), Some(t)) => (o, t),
        };
        if self.descends(model, t, o)? {
            return Ok(Some(true));
        }
        if self.descends(model, o, t)? {
            return Ok(Some(false));
        }
        if self.options.take_remote_stages.iter().any(|m| m == model) {
            return Ok(Some(true));
        }
        if self.agree_apart(model, o, t)? {
            return Ok(Some(true));
        }
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
        Ok(None)
    }

    /// Points the local `HEAD` at the remote's, a state this registry now holds.
    fn take_remote_head(
        &mut self,
        model: &str,
        ours: Option<&StateId>,
        target: &StateId,
        holder: &Holder,
    ) -> Result<Attempt> {
        let state = stages::load_state(self.reg, model, target)?;
        // Stages pointing at a version this registry does not hold (the remote lacks it,
        // or it was refused) would make every pull of them fail: the remote's `HEAD`
        // is refused, and the stages here stay as they are.
        let missing: Vec<String> = state
            .stages
            .iter()
            .filter(|(_, n)| !models::version_path(self.reg, model, **n).is_file())
            .map(|(stage, n)| format!("{model}@{stage} at version {n}"))
            .collect();
        if !missing.is_empty() {
            let err = anyhow::anyhow!(
                "its newest stage state points {}, which this registry does not hold",
                missing.join(", ")
            );
            self.refuse(&keys::head(model), Side::Remote, Some(model), &err);
            return Ok(Attempt::Settled);
        }
        for (stage, &n) in &state.stages {
            if removals::load(self.reg, model, n)?.is_some() {
                self.removal_conflict(model, n, stage, Side::Remote);
                return Ok(Attempt::Settled);
            }
        }
        if let Some(guard) = self.stage_guard {
            let before = ours
                .map(|id| stages::load_state(self.reg, model, id))
                .transpose()?;
            for (stage, &n) in &state.stages {
                if before.as_ref().and_then(|s| s.stages.get(stage)) == Some(&n) {
                    continue;
                }
                if let Err(why) = guard(model, stage, n) {
                    let err = anyhow::anyhow!(
                        "its newest stage state puts {model}@{n} in {stage}, which this registry's signing rules for {stage} do not allow: {why}"
                    );
                    self.refuse(&keys::head(model), Side::Remote, Some(model), &err);
                    return Ok(Attempt::Settled);
                }
            }
        }
        if let Swap::Done(_) = stages::advance(self.reg, model, ours, target, holder, LOCK_WAIT)? {
            self.report.fetched.stages += 1;
            return Ok(Attempt::Settled);
        }
        Ok(Attempt::Again)
    }

    /// Sends the local chain's states, then swaps the remote's `HEAD` to ours if it
    /// still has the tag `expected`; a remote `HEAD` that moved meanwhile is fetched.
    fn send_head(
        &mut self,
        model: &str,
        ours: &StateId,
        expected: Option<&str>,
    ) -> Result<Attempt> {
        let key = keys::head(model);
        let theirs_keys = remote_keys(self.remote)?;
        let ours_keys = local_keys(self.reg)?;
        let state = stages::load_state(self.reg, model, ours)?;
        let removed_there = theirs_keys.removals.get(model);
        if let Some((stage, &n)) = state
            .stages
            .iter()
            .find(|(_, n)| removed_there.is_some_and(|r| r.contains(n)))
        {
            self.removal_conflict(model, n, stage, Side::Local);
            return Ok(Attempt::Settled);
        }
        self.send_states(&theirs_keys, &ours_keys, Some(model))?;
        match self
            .remote
            .swap(&key, expected, &stages::head_bytes(ours))?
        {
            Swap::Done(()) => {
                self.report.sent.stages += 1;
                mark_head(self.remote, model)?;
                Ok(Attempt::Settled)
            }
            Swap::Moved => {
                let theirs_keys = remote_keys(self.remote)?;
                self.fetch_states(&theirs_keys, &ours_keys, Some(model))?;
                Ok(Attempt::Again)
            }
        }
    }

    /// Makes sure the state the remote's `HEAD` names is here: one that arrived after
    /// the listing is fetched; one the remote lacks is an error naming its `HEAD`.
    pub(super) fn fetch_state_named(&mut self, model: &str, id: &StateId, key: &str) -> Result<()> {
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
    pub(super) fn withheld_from_remote(&mut self, model: &str) -> Result<bool> {
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
    /// here passed this registry's gates, `from` and signing rules (with its
    /// `[signers]`), which must be the remote's for the moves to stand there.
    pub(super) fn same_stage_policy(&mut self) -> Result<bool> {
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
                        && theirs.signers == ours.signers
                })
            }
            None => true,
        };
        self.same_policy = Some(same);
        Ok(same)
    }

    /// Returns whether chains that grew apart came to the same place: the two newest
    /// states give every stage the same version, and no move only here removed a
    /// version. Taking the remote's chain then loses no stage and no removal (the moves
    /// made only here stay in the files, unreachable, as with `--take-remote-stages`).
    fn agree_apart(&self, model: &str, ours: &StateId, theirs: &StateId) -> Result<bool> {
        let (o, t) = (
            stages::load_state(self.reg, model, ours)?,
            stages::load_state(self.reg, model, theirs)?,
        );
        if o.stages != t.stages {
            return Ok(false);
        }
        let mut shared = std::collections::HashSet::new();
        let mut next = Some(theirs.clone());
        while let Some(id) = next {
            if !stages::state_path(self.reg, model, &id).is_file() || !shared.insert(id.clone()) {
                break;
            }
            next = stages::load_state(self.reg, model, &id)?.previous;
        }
        let mut seen = std::collections::HashSet::new();
        let mut next = Some(ours.clone());
        while let Some(id) = next.filter(|id| !shared.contains(id)) {
            // A chain that loops (a damaged or hostile state) ends at its first repeat.
            if !stages::state_path(self.reg, model, &id).is_file() || !seen.insert(id.clone()) {
                break;
            }
            let state = stages::load_state(self.reg, model, &id)?;
            if state.action == crate::manifest::state::Action::Remove {
                return Ok(false);
            }
            next = state.previous;
        }
        Ok(true)
    }

    /// Returns whether the state `newer` has `older` in its chain (or is it).
    pub(super) fn descends(&self, model: &str, newer: &StateId, older: &StateId) -> Result<bool> {
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

    pub(super) fn describe_state(&self, model: &str, id: &StateId) -> String {
        match stages::load_state(self.reg, model, id) {
            Ok(s) if s.action == crate::manifest::state::Action::Remove => {
                let removed: Vec<String> = s
                    .removed
                    .iter()
                    .map(|n| format!("{}@{n}", s.model))
                    .collect();
                format!(
                    "#{} remove {} by {} at {}",
                    s.number,
                    removed.join(" "),
                    s.actor,
                    s.time
                )
            }
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

/// How one attempt at reconciling a model's `HEAD`s ended.
enum Attempt {
    /// Nothing more to do: the two agree, one side took the other's, or a conflict was
    /// recorded.
    Settled,
    /// Another writer moved a `HEAD` meanwhile: try again.
    Again,
}

/// Leaves on `remote` the marker saying a `HEAD` of `model` was written there, as every
/// stage move in a registry folder does, so that a `HEAD` lost there later is noticed.
pub(crate) fn mark_head(remote: &dyn crate::remote::Remote, model: &str) -> Result<()> {
    let key = keys::head_seen(model);
    if remote.size(&key)?.is_none() {
        remote.create(&key, b"")?;
    }
    Ok(())
}
