//! Stage states on disk: reading a model's `HEAD` and its chain of states, publishing a
//! new state, and swapping `HEAD` to it only if it still names the state that was read.
//!
//! States are immutable and named by their hash, so publishing one never conflicts; the
//! swap is the one step that can, and it runs under `HEAD.lock`. A reader reads `HEAD`
//! (replaced by rename, so never torn), then the state it names (complete before its
//! name appeared), and checks the state's bytes against that name.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

pub use super::atomic::Swap;
use super::lock::{Holder, Lock};
use super::{Registry, atomic, files, keys};
use crate::error::Failure;
use crate::id::StateId;
use crate::manifest::StageState;

/// Returns where a state is stored.
pub fn state_path(reg: &Registry, model: &str, id: &StateId) -> PathBuf {
    reg.path(&keys::state(model, id))
}

/// Returns the bytes of a `HEAD` that names `id`.
pub fn head_bytes(id: &StateId) -> Vec<u8> {
    format!("{id}\n").into_bytes()
}

/// Returns the state the bytes of a `HEAD` name, if they name one.
pub fn parse_head(bytes: &[u8]) -> Option<StateId> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| StateId::parse(t.trim()))
}

/// Returns the id of a model's newest state, or `None` when no stage ever moved.
///
/// A `HEAD` this registry wrote before (every stage move leaves `HEAD.seen` beside it)
/// that is gone now was lost: deleted by hand, or by a tool that does not know the layout.
/// That is an error naming the command that restores it, never an empty set of
/// stages, which a promotion would start a new history over. A `HEAD` not written yet
/// (a first stage move, a sync that fetched the states first) is not lost.
pub fn read_head(reg: &Registry, model: &str) -> Result<Option<StateId>> {
    let found = head_file(reg, model)?;
    if found.is_some() || fs::symlink_metadata(reg.path(&keys::head_seen(model))).is_err() {
        return Ok(found);
    }
    // The marker is written after the HEAD it marks, and mreg never removes a HEAD: a
    // HEAD absent at the first read but present now was being written in between.
    let found = head_file(reg, model)?;
    if found.is_none() {
        let path = reg.head_path(model);
        let states = state_ids(reg, model)?.len();
        return Err(Failure::error(format!(
            "{} is missing, though {model} had one and has {states} stage state{}: its stages cannot be read",
            path.display(),
            if states == 1 { "" } else { "s" }
        ))
        .hint(format!(
            "`mreg fsck --restore-head {model}` points HEAD at the newest state again"
        ))
        .into());
    }
    Ok(found)
}

/// Leaves the marker saying this registry wrote a `HEAD` for `model`, after it did.
/// A marker that cannot be written only loses the lost-`HEAD` check.
fn mark_written<T>(reg: &Registry, model: &str, swap: Swap<T>) -> Swap<T> {
    if matches!(swap, Swap::Done(_)) {
        let _ = files::mark(&reg.path(&keys::head_seen(model)));
    }
    swap
}

/// Returns the state a model's `HEAD` file names, or `None` when there is no file,
/// without the lost-`HEAD` check of [`read_head`]: for a sync, which writes a model's
/// states before its `HEAD` and so heals a `HEAD` it did not get to write (or one lost)
/// from the other side's.
pub fn head_file(reg: &Registry, model: &str) -> Result<Option<StateId>> {
    let path = reg.head_path(model);
    let Some(text) = reg
        .read_text(&keys::head(model))
        .with_context(|| format!("reading {}", path.display()))?
    else {
        return Ok(None);
    };
    let id = StateId::parse(text.trim()).ok_or_else(|| {
        Failure::error(format!(
            "{} does not name a stage state: {:?}",
            path.display(),
            text.trim()
        ))
        .hint("`mreg fsck` checks the registry; `mreg history` lists the states that exist")
    })?;
    Ok(Some(id))
}

/// Returns the ids of the stage states a model's folder holds, in no order.
pub fn state_ids(reg: &Registry, model: &str) -> Result<Vec<StateId>> {
    let dir = reg.states_dir(model);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_suffix(".toml"))
            .and_then(StateId::parse)
        {
            out.push(id);
        }
    }
    Ok(out)
}

/// Returns the states of a model no other state names as the one before it, the
/// highest-numbered first: where a lost `HEAD` may have pointed. States that do not
/// read are left out.
pub fn tips(reg: &Registry, model: &str) -> Result<Vec<(StateId, StageState)>> {
    let mut states = Vec::new();
    for id in state_ids(reg, model)? {
        if let Ok(state) = load_state(reg, model, &id) {
            states.push((id, state));
        }
    }
    let named: std::collections::HashSet<StateId> = states
        .iter()
        .filter_map(|(_, s)| s.previous.clone())
        .collect();
    states.retain(|(id, _)| !named.contains(id));
    states.sort_by(|a, b| b.1.number.cmp(&a.1.number).then(a.0.cmp(&b.0)));
    Ok(states)
}

/// Returns a state, checked against its id and its model.
pub fn load_state(reg: &Registry, model: &str, id: &StateId) -> Result<StageState> {
    let path = state_path(reg, model, id);
    let read = |found: Option<Vec<u8>>| found.ok_or_else(|| anyhow::anyhow!("it is missing"));
    let bytes = reg
        .read_record(&keys::state(model, id))
        .and_then(read)
        .with_context(|| {
            format!(
                "reading stage state {} of {model} at {}",
                id.short(),
                path.display()
            )
        })?;
    if StateId::of(&bytes) != *id {
        return Err(Failure::error(format!(
            "stage state {} of {model} is corrupt: its bytes no longer match its name ({})",
            id.short(),
            path.display()
        ))
        .hint("restore the file from a backup or a remote; `mreg fsck` lists every problem")
        .into());
    }
    let text = String::from_utf8(bytes)
        .with_context(|| format!("reading stage state at {}", path.display()))?;
    let state = StageState::parse(&text)
        .with_context(|| format!("parsing stage state at {}", path.display()))?;
    if state.model != model {
        anyhow::bail!(
            "the stage state at {} belongs to {}, not {model}",
            path.display(),
            state.model
        );
    }
    Ok(state)
}

/// Returns a model's newest state with its id, or `None` when no stage ever moved.
pub fn current(reg: &Registry, model: &str) -> Result<Option<(StateId, StageState)>> {
    let Some(id) = read_head(reg, model)? else {
        return Ok(None);
    };
    let state = load_state(reg, model, &id)?;
    Ok(Some((id, state)))
}

/// Returns up to `limit` states of a model, newest first, following `previous` from `HEAD`.
pub fn chain(
    reg: &Registry,
    model: &str,
    limit: Option<usize>,
) -> Result<Vec<(StateId, StageState)>> {
    let mut out = Vec::new();
    let mut next = read_head(reg, model)?;
    while let Some(id) = next.take() {
        if limit.is_some_and(|n| out.len() >= n) {
            break;
        }
        let state = load_state(reg, model, &id)?;
        if let Some((_, newer)) = out.last() {
            let newer: &StageState = newer;
            if state.number + 1 != newer.number {
                anyhow::bail!(
                    "the stage chain of {model} is broken: state {} is number {}, but the state after it is number {}",
                    id.short(),
                    state.number,
                    newer.number
                );
            }
        }
        next.clone_from(&state.previous);
        out.push((id, state));
    }
    Ok(out)
}

/// Publishes a state and returns its id; publishing the same bytes twice is a success.
pub fn publish_state(reg: &Registry, state: &StageState) -> Result<StateId> {
    let text = state.to_toml()?;
    let id = StateId::of(text.as_bytes());
    let target = reg.make_parents(&keys::state(&state.model, &id))?;
    atomic::create_exclusive(&reg.tmp_dir(), &target, text.as_bytes())?;
    Ok(id)
}

/// Publishes `new` and points a model's `HEAD` at it, if `HEAD` still names `expected`.
///
/// The registry's backend decides: a registry folder runs git's lockfile protocol
/// (`swap_in_folder`), a bucket mirror swaps the bucket's `HEAD` with a conditional
/// write first. A `HEAD` that moved is reported, never overwritten.
pub fn commit(
    reg: &Registry,
    expected: Option<&StateId>,
    new: &StageState,
    holder: &Holder,
    wait: Duration,
) -> Result<Swap<StateId>> {
    reg.backend().swap_head(reg, expected, new, holder, wait)
}

/// Swaps `HEAD` in a registry folder by git's lockfile protocol: `HEAD.lock` created
/// exclusively (waiting up to `wait` for another writer), `HEAD` re-read and compared,
/// the state published, the new `HEAD` published by rename, the lock removed. Nothing is
/// written when `HEAD` moved: a lost race leaves no stray state behind.
pub(crate) fn swap_in_folder(
    reg: &Registry,
    expected: Option<&StateId>,
    new: &StageState,
    holder: &Holder,
    wait: Duration,
) -> Result<Swap<StateId>> {
    let model = new.model.as_str();
    let lock = Lock::acquire(&reg.tmp_dir(), &reg.head_path(model), holder, wait)?;
    let swap = lock.swap(&reg.tmp_dir(), || {
        if read_head(reg, model)?.as_ref() != expected || moves_to_removed(reg, new) {
            // Moved, or a version the new stages hold was removed since the move was
            // decided (the removal holds the same lock): decided again.
            return Ok(None);
        }
        let id = publish_state(reg, new)?;
        crate::crash::point("state-written");
        Ok(Some((head_bytes(&id), id)))
    })?;
    crate::crash::point("head-swapped");
    Ok(mark_written(reg, model, swap))
}

/// Points a model's `HEAD` at a state the registry already holds, if `HEAD` still names
/// `expected`: how a sync fast-forwards a model's stages to a chain it fetched.
pub fn advance(
    reg: &Registry,
    model: &str,
    expected: Option<&StateId>,
    id: &StateId,
    holder: &Holder,
    wait: Duration,
) -> Result<Swap<StateId>> {
    let head = reg.make_parents(&keys::head(model))?;
    let lock = Lock::acquire(&reg.tmp_dir(), &head, holder, wait)?;
    let swap = lock.swap(&reg.tmp_dir(), || {
        let still = head_file(reg, model)?.as_ref() == expected
            && !holds_removed(reg, &load_state(reg, model, id)?);
        Ok(still.then(|| (head_bytes(id), id.clone())))
    })?;
    Ok(mark_written(reg, model, swap))
}

/// Returns whether a move of `state` gives a stage a version this registry removed.
fn moves_to_removed(reg: &Registry, state: &StageState) -> bool {
    state
        .moves
        .iter()
        .any(|m| super::removals::is_removed(reg, &state.model, m.to))
}

/// Returns whether a stage of `state` holds a version this registry removed.
fn holds_removed(reg: &Registry, state: &StageState) -> bool {
    state
        .stages
        .values()
        .any(|&n| super::removals::is_removed(reg, &state.model, n))
}

/// Points a model's lost `HEAD` at `id`, a state the registry holds, under the lock;
/// refuses when a `HEAD` exists by then.
pub fn restore_head(
    reg: &Registry,
    model: &str,
    id: &StateId,
    holder: &Holder,
    wait: Duration,
) -> Result<Swap<StateId>> {
    load_state(reg, model, id)?;
    let lock = Lock::acquire(&reg.tmp_dir(), &reg.head_path(model), holder, wait)?;
    let swap = lock.swap(&reg.tmp_dir(), || {
        Ok(head_file(reg, model)?
            .is_none()
            .then(|| (head_bytes(id), id.clone())))
    })?;
    Ok(mark_written(reg, model, swap))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::manifest::state::Action;
    use crate::stage::{Stamp, new_state};
    use crate::testing::TempRegistry;

    fn holder() -> Holder {
        Holder::this_process("test".to_owned(), "2026-01-01T00:00:00Z".to_owned())
    }

    #[test]
    fn a_swap_that_read_an_old_head_writes_nothing() {
        let t = TempRegistry::new();
        t.push("m", &[("w.bin", b"one")], &[]);
        let stamp = Stamp {
            time: "2026-01-01T00:00:00Z".to_owned(),
            actor: "tester@ci".to_owned(),
            ci_job: None,
            command: "mreg promote m@1 staging".to_owned(),
            wait: Duration::ZERO,
        };
        let first = new_state(None, "m", "staging", 1, Action::Promote, &stamp);
        let Swap::Done(id) = commit(&t.reg, None, &first, &holder(), Duration::ZERO).unwrap()
        else {
            panic!("the first move is done");
        };
        let states = || std::fs::read_dir(t.reg.states_dir("m")).unwrap().count();
        assert_eq!(states(), 1);
        let late = new_state(None, "m", "production", 1, Action::Promote, &stamp);
        let swap = commit(&t.reg, None, &late, &holder(), Duration::ZERO).unwrap();
        assert_eq!(swap, Swap::Moved);
        assert_eq!(read_head(&t.reg, "m").unwrap(), Some(id));
        assert_eq!(states(), 1, "a lost race left a state behind");
        assert!(!t.reg.head_path("m").with_extension("lock").exists());
    }

    #[test]
    fn a_state_whose_bytes_changed_is_refused() {
        let t = TempRegistry::new();
        t.push("m", &[("w.bin", b"one")], &[]);
        t.promote("m@1", "staging", &[]);
        let (id, _) = current(&t.reg, "m").unwrap().unwrap();
        let path = state_path(&t.reg, "m", &id);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("staging", "production")).unwrap();
        let err = current(&t.reg, "m").unwrap_err();
        assert!(format!("{err:#}").contains("corrupt"), "{err:#}");
    }
}
