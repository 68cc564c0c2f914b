//! Removing versions: a removal record per version, after a recorded stage move that
//! empties the stages holding them, when any does.
//!
//! The removal records are the removal: each is its own immutable record, so removals
//! made in two registries never conflict. When stages held a version, the move that
//! empties them comes first and is the removal's place in the stage history; the
//! removal records follow. Every later move starts by finishing the removal its newest
//! state records ([`finish_pending`]), and `gc` finishes those of every state before it
//! reads what is removed. So a kill between the two leaves a history that says what was
//! meant, and the next writer completes it; no stage ever holds a removed version.

use anyhow::Result;

use super::{Stamp, Step, new_state};
use crate::error::Failure;
use crate::id::StateId;
use crate::manifest::state::{Action, Emptied};
use crate::manifest::{Removal, StageState};
use crate::store::lock::{Holder, Lock};
use crate::store::{Registry, models, removals};

/// What a removal of some versions of one model asks for.
pub struct Request<'a> {
    /// The model.
    pub model: &'a str,
    /// The versions to remove, ascending, none removed yet.
    pub versions: &'a [u64],
    /// Whether the stages holding any of them may be emptied; needs `reason`.
    pub force: bool,
    /// Why, recorded.
    pub reason: Option<&'a str>,
    /// Whether to decide only, writing nothing.
    pub dry_run: bool,
    /// Whether versions a stage holds by the time the removal is decided are left out
    /// rather than refused (a retention policy, whose decision a promotion made just
    /// before can overtake).
    pub keep_held: bool,
}

/// Returns what a removal did (or would do).
#[derive(Debug, Clone)]
pub struct Report {
    /// The stages emptied, with the version each held.
    pub emptied: Vec<Emptied>,
    /// The state written, with its number; `None` in a dry run.
    pub state: Option<(StateId, u64)>,
    /// How many times another writer moved the stages first.
    pub retries: u32,
    /// The versions actually removed (or that would be), ascending: all asked for,
    /// less those `keep_held` left out.
    pub removed: Vec<u64>,
}

/// Removes `request.versions` of `request.model`: refused when a stage holds one of
/// them unless forced, then a removal record per version.
///
/// In a registry folder, a removal that empties no stage is no stage move: it writes
/// only its removal records, under the model's `HEAD.lock` so that no promotion decides
/// on a version in between, and no two registries' removals ever make their stage
/// histories diverge. One that empties stages is recorded as a stage move first. On a
/// bucket there is no lock a promotion made elsewhere would respect, so every removal
/// is a stage move, swapped compare-and-swap: a promotion of the same version at the
/// same moment either lands first (and the removal is refused, or forced) or is decided
/// again and finds the version removed.
pub fn remove(reg: &Registry, request: &Request, stamp: &Stamp) -> Result<Report> {
    let model = request.model;
    let holder = Holder::this_process(stamp.command.clone(), stamp.time.clone());
    let lock = if reg.bucket_url().is_none() {
        let head = reg.make_parents(&crate::store::keys::head(model))?;
        Some(Lock::acquire(&reg.tmp_dir(), &head, &holder, stamp.wait)?)
    } else {
        None
    };
    let current = crate::store::stages::current(reg, model)?;
    finish_pending(reg, current.as_ref())?;
    let (versions, emptied) = decide(request, current.as_ref().map(|(_, s)| s))?;
    let on_bucket = reg.bucket_url().is_some();
    if request.dry_run || (emptied.is_empty() && !on_bucket) {
        if !request.dry_run {
            for &version in &versions {
                publish_removal(reg, model, version, stamp, request.reason)?;
            }
        }
        return Ok(Report {
            emptied,
            state: None,
            retries: 0,
            removed: versions,
        });
    }
    drop(lock);
    let done = super::transact(reg, model, stamp, |state| {
        let (versions, emptied) = decide(request, state)?;
        let report = Report {
            emptied: emptied.clone(),
            state: None,
            retries: 0,
            removed: versions.clone(),
        };
        let Some(&first) = versions.first() else {
            return Ok(Step::Stop(report));
        };
        let mut new = new_state(state, model, "", first, Action::Remove, stamp);
        new.reason = request.reason.map(str::to_owned);
        new.forced = !emptied.is_empty();
        new.removed = versions;
        for e in &emptied {
            new.stages.remove(&e.stage);
        }
        new.emptied = emptied;
        Ok(Step::Write(Box::new(new), report))
    })?;
    let mut report = done.report;
    report.retries = done.retries;
    if let Some((id, number)) = done.written {
        let state = crate::store::stages::load_state(reg, model, &id)?;
        crate::crash::point("removal-recorded");
        publish_removals(reg, &state, &id)?;
        report.state = Some((id, number));
    }
    Ok(report)
}

/// Returns the versions to remove and the stages that emptying them empties: refused
/// when a stage holds one, unless forced (or, with `keep_held`, left out).
fn decide(request: &Request, state: Option<&StageState>) -> Result<(Vec<u64>, Vec<Emptied>)> {
    let mut versions = request.versions.to_vec();
    let mut emptied = held_by_stages(state, &versions);
    if !emptied.is_empty() && request.keep_held {
        versions.retain(|v| !emptied.iter().any(|e| e.version == *v));
        emptied.clear();
    }
    if !emptied.is_empty() && !request.force {
        return Err(held_error(request.model, &emptied));
    }
    Ok((versions, emptied))
}

/// Returns the stages of `state` that hold one of `versions`, in stage order.
fn held_by_stages(state: Option<&StageState>, versions: &[u64]) -> Vec<Emptied> {
    let Some(state) = state else {
        return Vec::new();
    };
    state
        .stages
        .iter()
        .filter(|(_, v)| versions.contains(v))
        .map(|(stage, v)| Emptied {
            stage: stage.clone(),
            version: *v,
        })
        .collect()
}

/// Returns the refusal of a removal of versions that stages hold.
fn held_error(model: &str, emptied: &[Emptied]) -> anyhow::Error {
    let held: Vec<String> = emptied
        .iter()
        .map(|e| format!("{} holds {model}@{}", e.stage, e.version))
        .collect();
    Failure::error(format!("{}, so nothing was removed", held.join(" and ")))
    .hint(format!(
        "promote another version first, or add --force --reason TEXT to empty {} in the same recorded move",
        if emptied.len() == 1 { "that stage" } else { "those stages" }
    ))
    .into()
}

/// Publishes the removal record of every version a removal state removed that lacks
/// one: after the state, or to finish a removal a kill interrupted.
pub fn publish_removals(reg: &Registry, state: &StageState, id: &StateId) -> Result<()> {
    for &version in &state.removed {
        if removals::load(reg, &state.model, version)?.is_some() {
            continue;
        }
        let record = models::load_version(reg, &state.model, version)?;
        let removal = Removal {
            format: crate::manifest::removal::FORMAT,
            model: state.model.clone(),
            version,
            tree: record.tree,
            time: state.time.clone(),
            actor: state.actor.clone(),
            reason: state.reason.clone(),
            command: state.command.clone(),
            ci_job: state.ci_job.clone(),
            forced: state.emptied.iter().any(|e| e.version == version),
            state: Some(id.clone()),
        };
        removals::publish(reg, &removal)?;
    }
    Ok(())
}

/// Publishes the removal record of one version that no stage move records.
fn publish_removal(
    reg: &Registry,
    model: &str,
    version: u64,
    stamp: &Stamp,
    reason: Option<&str>,
) -> Result<()> {
    let record = models::load_version(reg, model, version)?;
    removals::publish(
        reg,
        &Removal {
            format: crate::manifest::removal::FORMAT,
            model: model.to_owned(),
            version,
            tree: record.tree,
            time: stamp.time.clone(),
            actor: stamp.actor.clone(),
            reason: reason.map(str::to_owned),
            command: Some(stamp.command.clone()),
            ci_job: stamp.ci_job.clone(),
            forced: false,
            state: None,
        },
    )
}

/// Finishes the removal the newest state of a model records, when a kill left its
/// removal records unwritten: run by every stage move before it decides, so a removed
/// version can never take a stage again.
pub(crate) fn finish_pending(
    reg: &Registry,
    current: Option<&(StateId, StageState)>,
) -> Result<()> {
    match current {
        Some((id, state)) if state.action == Action::Remove => publish_removals(reg, state, id),
        _ => Ok(()),
    }
}

/// Fails when `version` of `model` was removed, saying when and by whom.
pub fn require_live(reg: &Registry, model: &str, version: u64) -> Result<()> {
    match removals::load(reg, model, version)? {
        Some(removal) => Err(models::removed_error(&removal, None)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempRegistry;

    #[test]
    fn a_policy_removal_leaves_out_what_a_stage_came_to_hold_and_an_asked_one_refuses_it() {
        let t = TempRegistry::new();
        for i in 1..=3 {
            t.push("m", &[("w.bin", format!("weights {i}").as_bytes())], &[]);
        }
        // Decided before this promotion landed, a removal of 1 and 2 meets staging.
        t.promote("m@1", "staging", &[]);
        let stamp = Stamp::now(1.0).unwrap();
        let request = |keep_held| Request {
            model: "m",
            versions: &[1, 2],
            force: false,
            reason: None,
            dry_run: false,
            keep_held,
        };
        let refused = remove(&t.reg, &request(false), &stamp).unwrap_err();
        assert!(
            refused.to_string().contains("staging holds m@1"),
            "{refused}"
        );
        assert!(removals::list(&t.reg, "m").unwrap().is_empty());
        let report = remove(&t.reg, &request(true), &stamp).unwrap();
        assert_eq!(report.removed, [2]);
        let removed: Vec<u64> = removals::list(&t.reg, "m").unwrap().into_keys().collect();
        assert_eq!(removed, [2]);
    }
}
