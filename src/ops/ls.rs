//! Listing models with their latest version and stages, or the versions of one model.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::manifest::VersionRecord;
use crate::manifest::json::json_of_manifest;
use crate::names::ModelName;
use crate::store::{Registry, models, stages};

/// One model as `mreg ls --json` prints it.
#[derive(Debug, Serialize)]
pub struct ModelRow {
    /// The model.
    pub model: String,
    /// Its highest version number.
    pub latest: u64,
    /// How many versions it has.
    pub versions: u64,
    /// The bytes of the latest version.
    pub bytes: u64,
    /// When the latest version was pushed.
    pub updated: String,
    /// Each stage's version, for the stages that hold one.
    pub stages: BTreeMap<String, u64>,
}

/// The models of a registry, as `mreg ls` lists them.
pub struct Listing {
    /// Every model that has a version and reads.
    pub rows: Vec<ModelRow>,
    /// The registry's stages, in order.
    pub stages: Vec<String>,
    /// Models left out because a record of theirs does not read, with why.
    pub unreadable: Vec<(String, String)>,
    /// Models left out because every version of theirs was removed.
    pub emptied: Vec<String>,
}

/// Returns every model that has a version; a model whose records do not read is left
/// out and named, and the others are listed.
pub fn models(reg: &Registry) -> Result<Listing> {
    let mut rows = Vec::new();
    let mut unreadable = Vec::new();
    let mut emptied = Vec::new();
    for model in models::list_models(reg)? {
        let read = models::load_live_versions(reg, &model)
            .and_then(|versions| Ok((stage_map(reg, model.as_str())?, versions)));
        let (stages, versions) = match read {
            Ok(read) => read,
            Err(err) => {
                unreadable.push((model, format!("{err:#}")));
                continue;
            }
        };
        let Some(latest) = versions.last() else {
            emptied.push(model);
            continue;
        };
        rows.push(ModelRow {
            latest: latest.version,
            versions: versions.len() as u64,
            bytes: latest.bytes,
            updated: latest.created.clone(),
            stages,
            model,
        });
    }
    Ok(Listing {
        rows,
        stages: reg.config()?.stage_names(),
        unreadable,
        emptied,
    })
}

/// The versions of one model, and which stages hold them.
pub struct Versions {
    /// Every version not removed, ascending.
    pub records: Vec<VersionRecord>,
    /// The numbers of removed versions, left out of `records`.
    pub removed: Vec<u64>,
    /// The stages in the registry's order, then any stage that still points somewhere
    /// though config.toml no longer declares it.
    pub order: Vec<String>,
    held: BTreeMap<String, u64>,
}

impl Versions {
    /// Returns the stages that hold `version`, in order.
    pub fn stages_of(&self, version: u64) -> Vec<String> {
        self.order
            .iter()
            .filter(|s| self.held.get(*s) == Some(&version))
            .cloned()
            .collect()
    }

    /// Returns the versions as `--json` prints them: each record (by way of TOML, so
    /// that NaN metrics come out as "NaN", not null) with the stages holding it.
    pub fn json(&self) -> Result<Vec<serde_json::Value>> {
        self.records
            .iter()
            .map(|v| {
                let mut value = json_of_manifest(v)?;
                if let Some(object) = value.as_object_mut() {
                    object.insert("stages".to_owned(), self.stages_of(v.version).into());
                }
                Ok(value)
            })
            .collect()
    }
}

/// Returns the versions of the model `name` names.
pub fn versions(reg: &Registry, name: &str) -> Result<Versions> {
    let model = ModelName::parse(name)?;
    let all = models::list_versions(reg, model.as_str())?;
    if all.is_empty() {
        models::require_model(reg, &model)?;
    }
    let live = models::live_versions(reg, model.as_str())?;
    let removed = all.iter().copied().filter(|n| !live.contains(n)).collect();
    let records = live
        .into_iter()
        .map(|n| models::load_version(reg, model.as_str(), n))
        .collect::<Result<Vec<_>>>()?;
    let held = stage_map(reg, model.as_str())?;
    let order = with_undeclared(&reg.config()?.stage_names(), &held);
    Ok(Versions {
        records,
        removed,
        order,
        held,
    })
}

/// Returns where each stage of a model points; empty when none ever moved.
fn stage_map(reg: &Registry, model: &str) -> Result<BTreeMap<String, u64>> {
    Ok(stages::current(reg, model)?
        .map(|(_, state)| state.stages)
        .unwrap_or_default())
}

/// Returns the declared stages in order, then the stages `map` holds that are not declared.
pub fn with_undeclared(order: &[String], map: &BTreeMap<String, u64>) -> Vec<String> {
    let mut all = order.to_vec();
    all.extend(map.keys().filter(|k| !order.contains(k)).cloned());
    all
}
