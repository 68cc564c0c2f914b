//! A model's own fields in the registry: the changes under `models/NAME/info/`, each
//! an immutable file published with an exclusive link, read back in the order of
//! their names and folded (`manifest::info`). Reading them is bounded: at most
//! [`CHANGES_LIMIT`] names, each change at most [`CHANGE_LIMIT`] bytes.

use std::fs;
use std::io::ErrorKind;

use anyhow::{Context, Result, bail};

use super::{Registry, atomic, files, keys};
use crate::error::Failure;
use crate::manifest::info::{CHANGE_LIMIT, InfoChange, ModelInfo};

/// The most changes a model's fields keep: a person edits them, and a reader folds
/// them all. A writer refuses the change past it; a reader that meets more (writers
/// racing, or a remote written by hand) folds the first this many by name and says
/// how many it left, so every reader folds the same changes.
pub const CHANGES_LIMIT: usize = 1000;

/// How far past this machine's clock a change's name may be dated and still be read:
/// further, and it is the change of a machine whose clock is wrong (or of a hand), and
/// folding it would hide every later change until that date.
const FUTURE_SLACK_NANOS: u64 = 24 * 3600 * 1_000_000_000;

/// A model's `info/` folder as listed: the names of its changes, and what else it held.
#[derive(Debug, Default)]
pub struct Listing {
    /// The first [`CHANGES_LIMIT`] names of changes, in the order they were written.
    pub names: Vec<String>,
    /// How many more changes it holds.
    pub beyond: usize,
    /// Entries whose name is no change's (see [`keys::log_name_nanos`]), at most 10.
    pub strays: Vec<String>,
}

/// Lists a model's changes, keeping the first [`CHANGES_LIMIT`] names in memory
/// however many the folder holds.
pub fn names(reg: &Registry, model: &str) -> Result<Listing> {
    let dir = reg.path(&keys::infos(model));
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Listing::default()),
        Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
    };
    let mut first = std::collections::BinaryHeap::new();
    let mut listing = Listing::default();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        match name.to_str() {
            Some(name) if keys::log_name_nanos(name).is_some() => {
                first.push(name.to_owned());
                if first.len() > CHANGES_LIMIT {
                    first.pop();
                    listing.beyond += 1;
                }
            }
            _ if listing.strays.len() < 10 => {
                listing.strays.push(name.to_string_lossy().into_owned());
            }
            _ => {}
        }
    }
    listing.names = first.into_sorted_vec();
    Ok(listing)
}

/// Reads one change, refusing one longer than a change may be or that is not one of
/// `model`'s.
pub fn read(reg: &Registry, model: &str, name: &str) -> Result<InfoChange> {
    let key = keys::info(model, name);
    let path = reg.path(&key);
    let read = || -> Result<InfoChange> {
        let len = fs::symlink_metadata(&path)?.len();
        if len > CHANGE_LIMIT {
            bail!("it is {len} bytes long, longer than the {CHANGE_LIMIT} a change may be");
        }
        let text = reg
            .read_text(&key)?
            .ok_or_else(|| anyhow::anyhow!("it is missing"))?;
        let change = InfoChange::parse(&text)?;
        if change.model != model {
            bail!("it says it is a change of model {}", change.model);
        }
        Ok(change)
    };
    read().with_context(|| format!("reading the change {} of {model}'s fields", path.display()))
}

/// Returns whether a change's name is dated more than a day after this machine's clock.
pub fn is_future(name: &str) -> bool {
    let horizon = keys::unique_nanos().saturating_add(FUTURE_SLACK_NANOS);
    keys::log_name_nanos(name).is_some_and(|nanos| nanos > horizon)
}

/// A model's changes as read: those that could be, oldest first with their names,
/// and why the others were left.
#[derive(Debug, Default)]
pub struct Changes {
    /// The changes read.
    pub read: Vec<(String, InfoChange)>,
    /// A sentence for each change (or group of them) left unread.
    pub refused: Vec<String>,
}

/// Returns the changes of a model's fields, oldest first. A change that cannot be read
/// (damaged, hostile, dated in the future) is left out and said why, so that one bad
/// file never keeps a model's fields from being read; `mreg fsck` names it too.
pub fn changes(reg: &Registry, model: &str) -> Result<Changes> {
    let listing = names(reg, model)?;
    let mut changes = Changes::default();
    for name in listing.names {
        if is_future(&name) {
            changes.refused.push(format!(
                "the change {name} of {model}'s fields is dated more than a day after this machine's clock, so it was left out (a clock set wrong wrote it)"
            ));
            continue;
        }
        match read(reg, model, &name) {
            Ok(change) => changes.read.push((name, change)),
            Err(err) => changes.refused.push(format!("{err:#}; it was left out")),
        }
    }
    if listing.beyond > 0 {
        changes.refused.push(format!(
            "{model} has {} changes of its fields past the first {CHANGES_LIMIT}, the most a model keeps; they were left out",
            listing.beyond
        ));
    }
    Ok(changes)
}

/// Returns a model's fields as its changes leave them, with the changes left out.
pub fn current(reg: &Registry, model: &str) -> Result<ModelInfo> {
    let changes = changes(reg, model)?;
    let mut info = ModelInfo::default();
    for (_, change) in &changes.read {
        info.apply(change);
    }
    info.refused = changes.refused;
    Ok(info)
}

/// Publishes a change of a model's fields under a new name; returns the name. The
/// caller has checked that the model exists.
pub fn append(reg: &Registry, change: &InfoChange) -> Result<String> {
    change.check()?;
    let listing = names(reg, &change.model)?;
    if listing.names.len() + listing.beyond >= CHANGES_LIMIT {
        return Err(Failure::error(format!(
            "{} already has {CHANGES_LIMIT} changes of its fields, the most a model keeps",
            change.model
        ))
        .hint("the fields stay as they are; set them in fewer, larger changes (`--file`)")
        .into());
    }
    let body = change.to_toml()?;
    if body.len() as u64 > CHANGE_LIMIT {
        return Err(Failure::usage(format!(
            "this change of {}'s fields is {} bytes long written out, longer than the {CHANGE_LIMIT} a change may be",
            change.model,
            body.len()
        ))
        .hint("set the long texts in separate changes")
        .into());
    }
    files::make_dir(reg.root(), &keys::infos(&change.model))?;
    loop {
        let name = keys::new_log_name(body.as_bytes());
        let key = keys::info(&change.model, &name);
        if atomic::create_exclusive(&reg.tmp_dir(), &reg.path(&key), body.as_bytes())? {
            reg.backend().publish_file(reg, &key, body.as_bytes())?;
            return Ok(name);
        }
    }
}
