//! Removed versions and runs: their removal records, read and published.
//!
//! A version is removed when `models/NAME/removed/N.toml` exists and names the tree of
//! the version record at that number. Listings, references and pulls leave it out; its
//! record stays, so its number is never given again and `show` can say what it was.
//! A run is removed when `runs/ID/removed.toml` exists beside its record: `runs` leaves
//! it out, `compare`, `diff` and `log` refuse it, and `show` says what it was.

use std::collections::BTreeMap;
use std::fs;

use anyhow::{Context, Result, bail};

use super::{Registry, atomic, keys};
use crate::error::Failure;
use crate::id::RunId;
use crate::manifest::{Removal, RunRemoval, VersionRecord};

/// Returns the removal records of a model by version number; empty when it has none.
///
/// A record that cannot be read, does not parse, or is not the one its path says is an
/// error naming its path: what is removed decides what `gc` may delete, so a reader
/// never guesses.
pub fn list(reg: &Registry, model: &str) -> Result<BTreeMap<u64, Removal>> {
    let dir = reg.path(&keys::removals(model));
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
    };
    let mut out = BTreeMap::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if let Some(n) = entry.file_name().to_str().and_then(keys::version_number) {
            out.insert(n, load(reg, model, n)?.expect("listed just now"));
        }
    }
    Ok(out)
}

/// Returns whether `model@version` has a removal record, by whether the file exists:
/// what a stage swap asks under `HEAD.lock`, so that no stage comes to hold a version
/// removed while the move was being decided.
pub fn is_removed(reg: &Registry, model: &str, version: u64) -> bool {
    fs::symlink_metadata(reg.path(&keys::removal(model, version))).is_ok()
}

/// Returns the removal record of one version, or `None` when it was not removed.
pub fn load(reg: &Registry, model: &str, version: u64) -> Result<Option<Removal>> {
    let key = keys::removal(model, version);
    let path = reg.path(&key);
    let Some(text) = reg.read_text(&key).with_context(|| {
        format!(
            "reading the removal of {model}@{version} at {}",
            path.display()
        )
    })?
    else {
        return Ok(None);
    };
    parse(&text, model, version)
        .with_context(|| {
            format!(
                "parsing the removal of {model}@{version} at {}",
                path.display()
            )
        })
        .map(Some)
}

/// Parses a removal record, checked to be the one its key says.
pub fn parse(text: &str, model: &str, version: u64) -> Result<Removal> {
    let removal = Removal::parse(text)?;
    if removal.model != model || removal.version != version {
        bail!(
            "it says it removes {}, not {model}@{version}",
            removal.reference()
        );
    }
    Ok(removal)
}

/// Fails unless `removal` applies to `record`: the same model, number and tree.
pub fn check_applies(removal: &Removal, record: &VersionRecord) -> Result<()> {
    if removal.tree != record.tree {
        bail!(
            "the removal of {} names tree {}, but the version record there holds tree {}",
            removal.reference(),
            removal.tree.0.short(12),
            record.tree.0.short(12)
        );
    }
    Ok(())
}

/// Fails unless `bytes` are a removal record of `model@version` that applies to
/// `record`: how a sync checks a removal before copying it either way.
pub fn check_bytes(bytes: &[u8], model: &str, version: u64, record: &VersionRecord) -> Result<()> {
    let removal = parse(std::str::from_utf8(bytes)?, model, version)?;
    check_applies(&removal, record)
}

/// Publishes a removal record, create-only; one already there is kept (it records the
/// same removal, or an earlier one of the same version).
pub fn publish(reg: &Registry, removal: &Removal) -> Result<()> {
    let key = keys::removal(&removal.model, removal.version);
    let text = removal.to_toml()?;
    let target = reg.make_parents(&key)?;
    atomic::create_exclusive(&reg.tmp_dir(), &target, text.as_bytes())?;
    reg.backend().publish_file(reg, &key, text.as_bytes())
}

/// Returns the removal record of a run, or `None` when it was not removed; one that
/// does not read, or names another run, is an error naming its path.
pub fn of_run(reg: &Registry, id: &RunId) -> Result<Option<RunRemoval>> {
    let key = keys::run_removal(id);
    let path = reg.path(&key);
    let Some(text) = reg
        .read_text(&key)
        .with_context(|| format!("reading the removal of run {id} at {}", path.display()))?
    else {
        return Ok(None);
    };
    let removal = RunRemoval::parse(&text)
        .with_context(|| format!("parsing the removal of run {id} at {}", path.display()))?;
    if removal.run != *id {
        bail!(
            "the removal at {} says it removes run {}, not {id}",
            path.display(),
            removal.run
        );
    }
    Ok(Some(removal))
}

/// Returns whether a run was removed, by whether its removal record exists (read it
/// with [`of_run`]): what a listing of many runs asks.
pub fn run_is_removed(reg: &Registry, id: &RunId) -> bool {
    fs::symlink_metadata(reg.path(&keys::run_removal(id))).is_ok()
}

/// Publishes a run's removal record, create-only; one already there is kept.
pub fn publish_run(reg: &Registry, removal: &RunRemoval) -> Result<()> {
    let key = keys::run_removal(&removal.run);
    let text = removal.to_toml()?;
    let target = reg.make_parents(&key)?;
    atomic::create_exclusive(&reg.tmp_dir(), &target, text.as_bytes())?;
    reg.backend().publish_file(reg, &key, text.as_bytes())
}

/// Returns the error that a run was removed, saying when, by whom and why.
pub fn run_removed_error(removal: &RunRemoval) -> anyhow::Error {
    let by = match &removal.reason {
        Some(reason) => format!("{} by {}: {reason}", removal.time, removal.actor),
        None => format!("{} by {}", removal.time, removal.actor),
    };
    Failure::error(format!("run {} was removed at {by}", removal.run))
        .hint(format!(
            "`mreg show {}` shows what it was; `mreg runs` lists the runs there are",
            removal.run
        ))
        .into()
}

/// Fails when run `id` was removed, saying when and by whom.
pub fn require_live_run(reg: &Registry, id: &RunId) -> Result<()> {
    match of_run(reg, id)? {
        Some(removal) => Err(run_removed_error(&removal)),
        None => Ok(()),
    }
}
