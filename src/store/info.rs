//! A model's own fields in the registry: the changes under `models/NAME/info/`, each
//! an immutable file published with an exclusive link, read back in the order of
//! their names and folded (`manifest::info`).

use std::fs;
use std::io::ErrorKind;

use anyhow::{Context, Result, bail};

use super::{Registry, atomic, files, keys};
use crate::error::Failure;
use crate::manifest::info::{CHANGE_LIMIT, InfoChange, ModelInfo};

/// The most changes a model's fields keep: a person edits them, and a reader folds
/// them all, so a registry (or a remote) holding more is refused rather than read.
pub const CHANGES_LIMIT: usize = 1000;

/// Returns the names of a model's changes, in the order they were written.
///
/// A folder holding more than [`CHANGES_LIMIT`] is an error, and none is read.
pub fn names(reg: &Registry, model: &str) -> Result<Vec<String>> {
    let dir = reg.path(&keys::infos(model));
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if let Some(name) = entry.file_name().to_str()
            && keys::is_event_name(name)
        {
            names.push(name.to_owned());
            if names.len() > CHANGES_LIMIT {
                bail!(
                    "{} holds more than {CHANGES_LIMIT} changes of {model}'s fields, the most a model keeps; none was read",
                    dir.display()
                );
            }
        }
    }
    names.sort();
    Ok(names)
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

/// Returns every change of a model's fields, oldest first, with its file name.
pub fn changes(reg: &Registry, model: &str) -> Result<Vec<(String, InfoChange)>> {
    names(reg, model)?
        .into_iter()
        .map(|name| read(reg, model, &name).map(|change| (name, change)))
        .collect()
}

/// Returns a model's fields as its changes leave them.
pub fn current(reg: &Registry, model: &str) -> Result<ModelInfo> {
    let mut info = ModelInfo::default();
    for (_, change) in changes(reg, model)? {
        info.apply(&change);
    }
    Ok(info)
}

/// Publishes a change of a model's fields under a new name; returns the name. The
/// caller has checked that the model exists.
pub fn append(reg: &Registry, change: &InfoChange) -> Result<String> {
    change.check()?;
    if names(reg, &change.model)?.len() >= CHANGES_LIMIT {
        return Err(Failure::error(format!(
            "{} already has {CHANGES_LIMIT} changes of its fields, the most a model keeps",
            change.model
        ))
        .hint("the fields stay as they are; set them in fewer, larger changes (`--file`)")
        .into());
    }
    let body = change.to_toml()?;
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
