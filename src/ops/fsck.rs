//! Checking a registry: every object re-hashed, every manifest parsed, every tree
//! walked; a bucket is checked by cloning it.

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::error::Failure;
use crate::id::StateId;
use crate::lineage;
use crate::store::check::{self, Report};
use crate::store::lock::Holder;
use crate::store::stages::{self, Swap};
use crate::store::{Progress, Registry, models};

/// How long restoring a `HEAD` waits for another command's lock.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Checks a local registry and returns every problem found.
pub fn fsck(reg: &Registry, progress: &dyn Progress) -> Result<Report> {
    if let Some(url) = reg.bucket_url() {
        return Err(Failure::usage(format!(
            "fsck checks a local registry, not a bucket's ({url})"
        ))
        .hint(format!(
            "clone it (`mreg clone {url} DIR`: every object is re-hashed on the way) and run `mreg fsck` there"
        ))
        .into());
    }
    check::check(reg, progress)
}

/// What `fsck --repair` did.
#[derive(Debug, Clone, Serialize)]
pub struct Repaired {
    /// The damaged objects taken out of their packs, now missing.
    pub dropped: Vec<String>,
}

/// Takes every damaged object out of its pack, under the gc lock (waiting up to `wait`
/// for writers), so that it counts as missing while the rest of its pack stays.
pub fn repair(reg: &Registry, wait: Duration) -> Result<Repaired> {
    if let Some(url) = reg.bucket_url() {
        return Err(Failure::usage(format!(
            "fsck --repair repairs a local registry, not a bucket ({url})"
        ))
        .into());
    }
    let _alone = crate::store::gclock::collecting(reg.root(), wait, &|m| reg.notice(m))?;
    let dropped = crate::store::gc::repair_packs(reg)?;
    Ok(Repaired {
        dropped: dropped.iter().map(|id| id.to_hex()).collect(),
    })
}

/// What restoring a lost `HEAD` did: the state it now names.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The model.
    pub model: String,
    /// The state `HEAD` names now.
    pub state: StateId,
    /// Its number in the model's history.
    pub number: u64,
    /// When that move was made.
    pub time: String,
    /// Who made it.
    pub actor: String,
}

/// Points the lost `HEAD` of `model` at its newest stage state, or at the state whose
/// id starts with `state`. Newest is the highest-numbered state no other state follows;
/// when two such states share that number (the history forked), one must be named.
pub fn restore_head(reg: &Registry, model: &str, state: Option<&str>) -> Result<Restored> {
    if reg.bucket_url().is_some() {
        return Err(Failure::usage(
            "--restore-head repairs a local registry; a bucket's HEAD is restored where it is kept",
        )
        .into());
    }
    let model = crate::names::ModelName::parse(model)?;
    models::require_model(reg, &model)?;
    let model = model.as_str();
    let head = reg.head_path(model);
    if head.exists() {
        return Err(Failure::error(format!(
            "{} is there: {model} has a HEAD, so there is nothing to restore",
            head.display()
        ))
        .hint(format!("`mreg history {model}` shows its stage moves"))
        .into());
    }
    let tips = stages::tips(reg, model)?;
    let chosen = match state {
        Some(prefix) => {
            let found: Vec<StateId> = stages::state_ids(reg, model)?
                .into_iter()
                .filter(|id| id.as_str().starts_with(prefix))
                .collect();
            match found.as_slice() {
                [id] => id.clone(),
                [] => {
                    return Err(Failure::usage(format!(
                        "{model} has no stage state whose id starts with {prefix:?}"
                    ))
                    .into());
                }
                _ => {
                    return Err(Failure::usage(format!(
                        "{prefix:?} names {} stage states of {model}; give more of the id",
                        found.len()
                    ))
                    .into());
                }
            }
        }
        None => match tips.as_slice() {
            [] => {
                return Err(Failure::error(format!(
                    "{model} has no stage state that reads, so none to restore its HEAD to"
                ))
                .hint("`mreg fsck` names what is wrong with its states")
                .into());
            }
            [(id, _)] => id.clone(),
            [(id, first), (_, second), ..] if first.number > second.number => id.clone(),
            _ => {
                let listed: Vec<String> = tips
                    .iter()
                    .take_while(|(_, s)| s.number == tips[0].1.number)
                    .map(|(id, s)| format!("{} ({} by {})", id.short(), s.time, s.actor))
                    .collect();
                return Err(Failure::usage(format!(
                    "the stage history of {model} forked: states {} are each the newest",
                    listed.join(", ")
                ))
                .hint(format!(
                    "name the one to keep: `mreg fsck --restore-head {model} --state ID`"
                ))
                .into());
            }
        },
    };
    let holder = Holder::this_process(
        lineage::recorded_argv(&std::env::args().collect::<Vec<_>>()).join(" "),
        crate::clock::format_time(crate::clock::now()?),
    );
    match stages::restore_head(reg, model, &chosen, &holder, LOCK_WAIT)? {
        Swap::Done(id) => {
            let restored = stages::load_state(reg, model, &id)?;
            Ok(Restored {
                model: model.to_owned(),
                state: id,
                number: restored.number,
                time: restored.time,
                actor: restored.actor,
            })
        }
        Swap::Moved => Err(Failure::conflict(format!(
            "another command gave {model} a HEAD meanwhile; nothing was changed"
        ))
        .into()),
    }
}
