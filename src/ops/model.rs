//! A model's own fields: setting and clearing them (`mreg model set`, `unset`),
//! showing them and their history (`mreg model show`, `log`).

use anyhow::Result;
use serde::Serialize;

use crate::clock;
use crate::error::Failure;
use crate::manifest::info::{Field, Fields, InfoChange, ModelInfo};
use crate::names::ModelName;
use crate::store::{Registry, files, info, keys};

/// What one `mreg model set` or `unset` asks for.
#[derive(Debug, Clone, Default)]
pub struct Edit {
    /// The values to set.
    pub set: Fields,
    /// The fields to clear.
    pub unset: Vec<Field>,
    /// Why.
    pub message: Option<String>,
}

/// What an edit did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Edited {
    /// The model.
    pub model: String,
    /// The fields whose value changed (none: nothing was written).
    pub changed: Vec<Field>,
    /// The fields as they are now.
    pub info: ModelInfo,
}

/// Returns the model `name` names, refusing a name that is none or a model the
/// registry lacks.
fn model(reg: &Registry, name: &str) -> Result<String> {
    if name.contains('@') {
        return Err(Failure::usage(format!(
            "{name} names a version; a model's fields belong to the model"
        ))
        .hint(format!(
            "write the model's name alone: {}",
            name.split('@').next().unwrap_or_default()
        ))
        .into());
    }
    let model = ModelName::parse(name)?;
    if !files::dir_exists(reg.root(), &keys::versions(model.as_str()))? {
        return Err(Failure::error(format!("no model named {model}"))
            .hint("`mreg ls` lists the models; a model is made by its first `mreg push`")
            .into());
    }
    Ok(model.to_string())
}

/// Applies an edit: one change holding only the fields whose value it changes, or
/// nothing when it changes none.
pub fn edit(reg: &Registry, name: &str, edit: &Edit) -> Result<Edited> {
    let model = model(reg, name)?;
    if edit.set.is_empty() && edit.unset.is_empty() {
        return Err(Failure::usage("no field to change")
            .hint("give --description, --intended-use, --limitations, --license, --owner, --tag or --file")
            .into());
    }
    edit.set
        .check()
        .map_err(|err| Failure::usage(format!("{err:#}")))?;
    let mut info = info::current(reg, &model)?;
    let mut change = InfoChange {
        format: crate::manifest::info::FORMAT,
        model: model.clone(),
        time: clock::format_time_ms(clock::now()?),
        actor: clock::actor(),
        message: edit.message.clone(),
        unset: Vec::new(),
        set: Fields::default(),
    };
    let mut changed = Vec::new();
    for field in edit.set.present() {
        if !info.fields.same(&edit.set, field) {
            change.set.take(&edit.set, field);
            changed.push(field);
        }
    }
    for field in &edit.unset {
        if info.fields.is_set(*field) && !change.unset.contains(field) {
            change.unset.push(*field);
            changed.push(*field);
        }
    }
    if !changed.is_empty() {
        change
            .check()
            .map_err(|err| Failure::usage(format!("{err:#}")))?;
        info::append(reg, &change)?;
        info.apply(&change);
    }
    changed.sort();
    Ok(Edited {
        model,
        changed,
        info,
    })
}

/// Returns a model's fields.
pub fn show(reg: &Registry, name: &str) -> Result<ModelInfo> {
    info::current(reg, &model(reg, name)?)
}

/// Returns every change of a model's fields that could be read, oldest first, and why
/// the others were left out.
pub fn log(reg: &Registry, name: &str) -> Result<(Vec<InfoChange>, Vec<String>)> {
    let changes = info::changes(reg, &model(reg, name)?)?;
    Ok((
        changes.read.into_iter().map(|(_, change)| change).collect(),
        changes.refused,
    ))
}
