//! Models and their versions: listing, loading, numbering, and resolving references.
//!
//! A version number is allocated by publishing `versions/N.toml` with an exclusive
//! create: two pushes racing for one number never both get it, and the loser takes
//! the next free one. There is no counter to lose.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::tree::Tree;
use super::walk::{self, Graph, Shape};
use super::{Registry, TreeId, atomic, files, keys, read, removals, stages};
use crate::error::Failure;
use crate::id::RunId;
use crate::manifest::version::FORMAT;
use crate::manifest::{Removal, VersionRecord};
use crate::names::ModelName;
use crate::refspec::{ModelRef, Selector};

/// How many numbers a push tries before giving up on a storm of concurrent pushes.
const ALLOCATION_TRIES: usize = 1000;

/// Returns the names of all models, sorted.
pub fn list_models(reg: &Registry) -> Result<Vec<String>> {
    let dir = reg.models_dir();
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if let Some(name) = entry.file_name().to_str()
            && ModelName::parse(name).is_ok()
            && reg.versions_dir(name).is_dir()
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Returns a model's version numbers, ascending; empty when the model is unknown.
///
/// Only a canonical name is a version ([`keys::version_number`]: `7.toml`, not `07.toml`
/// or `+7.toml`), so no two files claim one number; `fsck` reports the others as stray.
pub fn list_versions(reg: &Registry, model: &str) -> Result<Vec<u64>> {
    let dir = reg.versions_dir(model);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
    };
    let mut numbers = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        if let Some(n) = name.to_str().and_then(keys::version_number) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Returns a model's version numbers that were not removed, ascending.
pub fn live_versions(reg: &Registry, model: &str) -> Result<Vec<u64>> {
    let removed = removals::list(reg, model)?;
    let mut numbers = list_versions(reg, model)?;
    numbers.retain(|n| !removed.contains_key(n));
    Ok(numbers)
}

/// Returns the error that a reference named a removed version: when, by whom, why.
pub fn removed_error(removal: &Removal, named_as: Option<&str>) -> anyhow::Error {
    let what = removal.reference();
    let by = match &removal.reason {
        Some(reason) => format!("{} by {}: {reason}", removal.time, removal.actor),
        None => format!("{} by {}", removal.time, removal.actor),
    };
    let message = match named_as {
        Some(stage) => format!(
            "{stage} of {} holds {what}, which was removed at {by}",
            removal.model
        ),
        None => format!("{what} was removed at {by}"),
    };
    Failure::error(message)
        .hint(format!(
            "`mreg show {what}` shows what it was; `mreg ls {}` lists the versions there are",
            removal.model
        ))
        .into()
}

/// Returns where a version record lives.
pub fn version_path(reg: &Registry, model: &str, version: u64) -> PathBuf {
    reg.path(&keys::version(model, version))
}

/// Returns a version record, checked to be the one its path says.
pub fn load_version(reg: &Registry, model: &str, version: u64) -> Result<VersionRecord> {
    let path = version_path(reg, model, version);
    let text = reg
        .read_text(&keys::version(model, version))
        .and_then(|t| t.ok_or_else(|| anyhow::anyhow!("it is missing")))
        .with_context(|| {
            format!(
                "reading the record of {model}@{version} at {}",
                path.display()
            )
        })?;
    let record = VersionRecord::parse(&text).with_context(|| {
        format!(
            "parsing the record of {model}@{version} at {}",
            path.display()
        )
    })?;
    if record.model != model || record.version != version {
        anyhow::bail!(
            "the record at {} says it is {}, not {model}@{version}",
            path.display(),
            record.reference()
        );
    }
    Ok(record)
}

/// Returns the tree graph of a version, read and held to the walk limits, refusing a
/// record whose `files` or `bytes` differ from what its tree holds.
pub fn graph(reg: &Registry, record: &VersionRecord) -> Result<Graph> {
    graph_with(record, &mut |t| read::read_tree(reg, t))
}

/// Returns the tree graph of a version as [`graph`] does, reading each tree with `read`.
pub fn graph_with(
    record: &VersionRecord,
    read: &mut dyn FnMut(TreeId) -> Result<Tree>,
) -> Result<Graph> {
    let graph = walk::load(record.tree, &walk::LIMITS, read)
        .with_context(|| format!("reading the files of {}", record.reference()))?;
    check_declared(record, &graph.shape())?;
    Ok(graph)
}

/// Fails when a version record's `files` or `bytes` differ from its tree's shape.
pub fn check_declared(record: &VersionRecord, shape: &Shape) -> Result<()> {
    if record.files != shape.files || record.bytes != shape.bytes {
        bail!(
            "the record of {} declares {} files of {} bytes, but its tree holds {} files of {} bytes",
            record.reference(),
            record.files,
            record.bytes,
            shape.files,
            shape.bytes
        );
    }
    Ok(())
}

/// Returns every version record of a model, ascending.
pub fn load_versions(reg: &Registry, model: &str) -> Result<Vec<VersionRecord>> {
    list_versions(reg, model)?
        .into_iter()
        .map(|n| load_version(reg, model, n))
        .collect()
}

/// Returns the version records of a model that were not removed, ascending.
pub fn load_live_versions(reg: &Registry, model: &str) -> Result<Vec<VersionRecord>> {
    live_versions(reg, model)?
        .into_iter()
        .map(|n| load_version(reg, model, n))
        .collect()
}

/// What a new version records, apart from its number.
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// The model.
    pub model: ModelName,
    /// Its content.
    pub tree: TreeId,
    /// Regular files in the tree.
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// RFC 3339 time of the push.
    pub created: String,
    /// Who pushed.
    pub actor: String,
    /// The push message.
    pub message: Option<String>,
    /// The run that produced it.
    pub run: Option<RunId>,
    /// The run's final metrics.
    pub metrics: BTreeMap<String, f64>,
}

/// Publishes a new version under the next free number and returns its record.
///
/// The tree and every object it names must already be durable in the registry.
pub fn create_version(reg: &Registry, new: NewVersion) -> Result<VersionRecord> {
    let model = new.model.as_str();
    let dir = reg.versions_dir(model);
    if !files::dir_exists(reg.root(), &keys::versions(model))? {
        files::make_dir(reg.root(), &keys::versions(model))?;
        atomic::sync_dir(&reg.models_dir())?;
        atomic::sync_parent(&dir)?;
    }
    let mut record = VersionRecord {
        format: FORMAT,
        model: model.to_owned(),
        version: 0,
        tree: new.tree,
        files: new.files,
        bytes: new.bytes,
        created: new.created,
        actor: new.actor,
        message: new.message,
        run: new.run,
        nonce: Some(push_nonce(model, new.tree)),
        renumbered_from: None,
        metrics: new.metrics,
    };
    // A number a removal names is never given again, even where its version record is
    // not here (yet): a sync publishes a removal before the record it removes.
    let highest = list_versions(reg, model)?
        .last()
        .copied()
        .max(removals::list(reg, model)?.keys().next_back().copied());
    let first = match highest.as_ref() {
        None => 1,
        Some(&last) => last.checked_add(1).ok_or_else(|| {
            Failure::error(format!(
                "{model} has a version numbered {last}, the highest number there is, so no version can follow it"
            ))
            .hint(format!(
                "`mreg fsck` checks {model}'s records; push under another model name"
            ))
        })?,
    };
    let render = |n: u64| -> Result<String> {
        let mut numbered = record.clone();
        numbered.version = n;
        numbered.to_toml()
    };
    let number = reg
        .backend()
        .claim_version(reg, model, new.tree, first, &render)?;
    crate::crash::point("version-written");
    record.version = number;
    Ok(record)
}

/// Claims a version number in a registry folder: `render(n)` is created exclusively
/// at the first free `n` from `first`, so two pushes racing for a number never both
/// get it.
pub(crate) fn claim_in_folder(
    reg: &Registry,
    model: &str,
    first: u64,
    render: &dyn Fn(u64) -> Result<String>,
) -> Result<u64> {
    for next in (first..=u64::MAX).take(ALLOCATION_TRIES) {
        let path = version_path(reg, model, next);
        if atomic::create_exclusive(&reg.tmp_dir(), &path, render(next)?.as_bytes())? {
            return Ok(next);
        }
    }
    Err(Failure::conflict(format!(
        "could not allocate a version number for {model}: {ALLOCATION_TRIES} numbers were taken while trying"
    ))
    .hint("push again")
    .into())
}

/// Returns a nonce for a version record: unique to this push, or, when `MREG_NOW` pins
/// the clock, derived from the record alone so tests are reproducible.
fn push_nonce(model: &str, tree: TreeId) -> String {
    let pinned = std::env::var_os("MREG_NOW").is_some_and(|v| !v.is_empty());
    let entropy = if pinned {
        String::new()
    } else {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{}-{nanos}", std::process::id())
    };
    let hash = blake3::hash(format!("mreg version\0{model}\0{tree}\0{entropy}").as_bytes());
    hash.to_hex()[..16].to_owned()
}

/// Fails with the error that lists the models there are, unless `model` has a version.
pub fn require_model(reg: &Registry, model: &ModelName) -> Result<()> {
    if list_versions(reg, model.as_str())?.is_empty() {
        resolve(reg, &ModelRef::parse(model.as_str())?)?;
    }
    Ok(())
}

/// Returns the version a reference names, or an error saying what it could mean; a
/// removed version is an error saying when and by whom it was removed.
pub fn resolve(reg: &Registry, reference: &ModelRef) -> Result<VersionRecord> {
    let (record, removal) = resolve_any(reg, reference)?;
    match removal {
        None => Ok(record),
        Some(removal) => {
            let stage = match &reference.selector {
                Selector::Name(word) => Some(word.as_str()),
                _ => None,
            };
            Err(removed_error(&removal, stage))
        }
    }
}

/// Returns the version a reference names, removed or not, with its removal record.
///
/// `latest` and tree-hash prefixes name only versions that were not removed; a number
/// or a stage may name a removed one, so `show` can say what it was.
pub fn resolve_any(
    reg: &Registry,
    reference: &ModelRef,
) -> Result<(VersionRecord, Option<Removal>)> {
    let model = reference.model.as_str();
    let mut removed = removals::list(reg, model)?;
    let record = resolve_among(reg, reference, &removed)?;
    let removal = removed.remove(&record.version);
    if let Some(removal) = &removal {
        removals::check_applies(removal, &record)?;
    }
    Ok((record, removal))
}

/// Resolves a reference; `removed` are the model's removal records.
fn resolve_among(
    reg: &Registry,
    reference: &ModelRef,
    removed: &BTreeMap<u64, Removal>,
) -> Result<VersionRecord> {
    let model = reference.model.as_str();
    let all = list_versions(reg, model)?;
    if all.is_empty() {
        let models = list_models(reg)?;
        let known = if models.is_empty() {
            "the registry holds no models yet".to_owned()
        } else {
            format!("models: {}", models.join(", "))
        };
        return Err(Failure::error(format!("no model named {model:?}"))
            .hint(format!("{known}; `mreg ls` lists them"))
            .into());
    }
    let numbers: Vec<u64> = all
        .iter()
        .copied()
        .filter(|n| !removed.contains_key(n))
        .collect();
    // Read after "{model} has versions …".
    let range = if numbers.is_empty() {
        format!("{}, every one of them removed", describe_versions(&all))
    } else {
        describe_versions(&numbers)
    };
    match &reference.selector {
        Selector::Latest => match numbers.last() {
            Some(&n) => load_version(reg, model, n),
            None => Err(Failure::error(format!(
                "{model} has no version left: every one of them was removed"
            ))
            .hint(format!(
                "`mreg history {model}` shows the removals; push a new version to use the model again"
            ))
            .into()),
        },
        Selector::Number(n) => {
            if all.binary_search(n).is_ok() {
                load_version(reg, model, *n)
            } else {
                Err(Failure::error(format!("{model}@{n} does not exist"))
                    .hint(format!("{model} has versions {range}"))
                    .into())
            }
        }
        Selector::TreePrefix(prefix) => {
            let mut matches = Vec::new();
            for &n in &numbers {
                matches.push(load_version(reg, model, n)?);
            }
            let matches: Vec<VersionRecord> = matches
                .into_iter()
                .filter(|r| r.tree.to_string().starts_with(prefix.as_str()))
                .collect();
            match matches.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(Failure::error(format!(
                    "no version of {model} has a tree hash starting with {prefix}"
                ))
                .hint(format!(
                    "{model} has versions {range}; `mreg ls {model}` shows their trees"
                ))
                .into()),
                many => {
                    let list: Vec<String> = many
                        .iter()
                        .map(|r| format!("{} (tree {})", r.reference(), r.tree.0.short(12)))
                        .collect();
                    Err(Failure::usage(format!(
                        "{reference} is ambiguous: it matches {}",
                        list.join(", ")
                    ))
                    .hint(if many.iter().all(|r| r.tree == many[0].tree) {
                        "these versions hold the same content; name one by its number"
                    } else {
                        "use a version number or a longer hash prefix"
                    })
                    .into())
                }
            }
        }
        Selector::Name(word) => resolve_stage(reg, reference, word, &range),
    }
}

/// Returns the version a stage holds, or an error saying the stage is empty or unknown.
fn resolve_stage(
    reg: &Registry,
    reference: &ModelRef,
    word: &str,
    range: &str,
) -> Result<VersionRecord> {
    let model = reference.model.as_str();
    let config = reg.config()?;
    let held = stages::current(reg, model)?.and_then(|(_, state)| state.holder(word));
    // A stage removed from config.toml but still pointing somewhere keeps resolving, so a
    // server pulling it does not break on a config edit.
    if !config.has_stage(word) && held.is_none() {
        return Err(Failure::usage(format!(
            "{reference} names no version: {word:?} is not a stage, a version number, `latest` or a tree-hash prefix"
        ))
        .hint(format!(
            "{model} has versions {range}; stages are {}; write {model}@3, {model}@production, {model}@latest or {model}@<first {} or more hex digits of a tree hash>",
            config.stage_names().join(", "),
            crate::names::MIN_HASH_PREFIX
        ))
        .into());
    }
    match held {
        Some(version) => load_version(reg, model, version),
        None => Err(Failure::error(format!("{word} of {model} holds no version"))
            .hint(format!(
                "promote one: mreg promote {model}@N {word}; `mreg history {model}` shows past moves"
            ))
            .into()),
    }
}

/// Returns "1 to 5" or "1, 3, 4" for a list of version numbers ("none" when empty).
fn describe_versions(numbers: &[u64]) -> String {
    if numbers.is_empty() {
        return "none".to_owned();
    }
    let (first, last) = (numbers[0], numbers[numbers.len() - 1]);
    if last - first + 1 == numbers.len() as u64 {
        if first == last {
            format!("{first} only")
        } else {
            format!("{first} to {last}")
        }
    } else {
        let all: Vec<String> = numbers.iter().map(u64::to_string).collect();
        all.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempRegistry;

    #[test]
    fn a_number_taken_meanwhile_is_skipped_never_overwritten() {
        let t = TempRegistry::new();
        let first = t.push("m", &[("w.bin", b"one")], &[]);
        // Another writer claims 2 after this one listed the numbers.
        let taken = claim_in_folder(&t.reg, "m", 2, &|_| Ok("taken\n".to_owned())).unwrap();
        assert_eq!(taken, 2);
        let ours = claim_in_folder(&t.reg, "m", 2, &|n| Ok(format!("ours {n}\n"))).unwrap();
        assert_eq!(ours, 3);
        assert_eq!(
            fs::read_to_string(version_path(&t.reg, "m", 2)).unwrap(),
            "taken\n"
        );
        assert_eq!(load_version(&t.reg, "m", 1).unwrap(), first);
    }
}
