//! A version's model card: what the registry knows of it, gathered for `mreg card`.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::manifest::info::ModelInfo;
use crate::manifest::state::StageState;
use crate::manifest::{RunRecord, VersionRecord};
use crate::refspec::ModelRef;
use crate::store::{Registry, info, models, runs, stages};

/// The most stage moves a card lists.
const HISTORY_LIMIT: usize = 20;

/// Returns what a model card is made of.
pub struct Card {
    /// The version.
    pub version: VersionRecord,
    /// The run it came from, when it names one the registry holds.
    pub run: Option<RunRecord>,
    /// The stages holding it now.
    pub held: Vec<String>,
    /// The stage moves that moved it or judged it, newest first (at most 20).
    pub moves: Vec<StageState>,
    /// Its run's Python packages, when stored and readable.
    pub packages: Option<BTreeMap<String, String>>,
    /// The model's own fields (`mreg model set`).
    pub info: ModelInfo,
}

/// Gathers the card of the version `reference` names.
pub fn card(reg: &Registry, reference: &str) -> Result<Card> {
    let version = models::resolve(reg, &ModelRef::parse(reference)?)?;
    let run = match &version.run {
        Some(id) if runs::record_path(reg, id).is_file() => Some(runs::load(reg, id)?),
        _ => None,
    };
    let held = stages::current(reg, &version.model)?
        .map(|(_, state)| {
            state
                .stages
                .iter()
                .filter(|(_, v)| **v == version.version)
                .map(|(stage, _)| stage.clone())
                .collect()
        })
        .unwrap_or_default();
    let moves = stages::chain(reg, &version.model, None)?
        .into_iter()
        .map(|(_, state)| state)
        .filter(|s| s.version == version.version || s.moves.iter().any(|m| m.to == version.version))
        .take(HISTORY_LIMIT)
        .collect();
    let packages = run
        .as_ref()
        .and_then(|r| crate::diff::lineage::package_list(reg, r).ok().flatten());
    let info = info::current(reg, &version.model)?;
    Ok(Card {
        version,
        run,
        held,
        moves,
        packages,
        info,
    })
}
