//! A model's stage history: its chain of states, newest first, optionally of one stage.

use anyhow::Result;

use crate::id::StateId;
use crate::manifest::json::json_of_manifest;
use crate::manifest::state::Action;
use crate::manifest::{Removal, StageState};
use crate::names::ModelName;
use crate::store::{Registry, models, removals, stages};

/// Returns the states of `model`, newest first: only those that moved `stage` (asked
/// for, or moved along with another) when given, at most `limit`. Without a stage, the
/// removals no state records are entries too, in time order, without an id and with
/// number 0: a removal that emptied no stage is no stage move.
pub fn history(
    reg: &Registry,
    model: &str,
    stage: Option<&str>,
    limit: Option<usize>,
) -> Result<Vec<(Option<StateId>, StageState)>> {
    let model = ModelName::parse(model)?;
    models::require_model(reg, &model)?;
    if let Some(stage) = stage {
        reg.config()?.require_stage(stage)?;
    }
    // Without a stage, only the newest entries are read: a damaged old state does not
    // hide the recent ones.
    let read_limit = if stage.is_none() { limit } else { None };
    let mut entries: Vec<(Option<StateId>, StageState)> =
        stages::chain(reg, model.as_str(), read_limit)?
            .into_iter()
            .map(|(id, state)| (Some(id), state))
            .filter(|(_, s)| {
                stage.is_none_or(|stage| {
                    s.stage == stage
                        || s.moves.iter().any(|m| m.stage == stage)
                        || s.emptied.iter().any(|e| e.stage == stage)
                })
            })
            .collect();
    if stage.is_none() {
        let mut loose: Vec<StageState> = removals::list(reg, model.as_str())?
            .into_values()
            .filter(|r| r.state.is_none())
            .map(|r| removal_entry(&r))
            .collect();
        loose.sort_by(|a, b| b.time.cmp(&a.time));
        entries = merge_newest_first(entries, loose);
    }
    if let Some(limit) = limit {
        entries.truncate(limit);
    }
    Ok(entries)
}

/// Returns the chain's entries with the removals between them by time, newest first:
/// the chain keeps its order (clocks of two machines may disagree), and a removal goes
/// before the first entry that is not newer than it.
fn merge_newest_first(
    chain: Vec<(Option<StateId>, StageState)>,
    removals: Vec<StageState>,
) -> Vec<(Option<StateId>, StageState)> {
    let mut out = Vec::with_capacity(chain.len() + removals.len());
    let mut removals = removals.into_iter().peekable();
    for entry in chain {
        while let Some(removal) = removals.next_if(|r| r.time > entry.1.time) {
            out.push((None, removal));
        }
        out.push(entry);
    }
    out.extend(removals.map(|r| (None, r)));
    out
}

/// Returns a removal that no stage move records as a history entry.
fn removal_entry(removal: &Removal) -> StageState {
    StageState {
        format: StageState::format_for(Action::Remove),
        model: removal.model.clone(),
        number: 0,
        previous: None,
        action: Action::Remove,
        version: removal.version,
        stage: String::new(),
        time: removal.time.clone(),
        actor: removal.actor.clone(),
        ci_job: removal.ci_job.clone(),
        command: removal.command.clone(),
        forced: false,
        downgrade: false,
        reason: removal.reason.clone(),
        stages: std::collections::BTreeMap::new(),
        moves: Vec::new(),
        checks: Vec::new(),
        removed: vec![removal.version],
        emptied: Vec::new(),
    }
}

/// The keys of a check, in the order `--json` prints them.
const CHECK_KEYS: [&str; 8] = [
    "gate",
    "source",
    "required",
    "threshold",
    "against",
    "actual",
    "passed",
    "why",
];

/// Returns the states as `--json` prints them: each record with its id, and every
/// field present (the record leaves empty ones out; scripts get all, always).
pub fn json(entries: &[(Option<StateId>, StageState)]) -> Result<Vec<serde_json::Value>> {
    entries
        .iter()
        .map(|(id, state)| {
            let mut value = json_of_manifest(state)?;
            if let Some(object) = value.as_object_mut() {
                object.insert(
                    "id".to_owned(),
                    id.as_ref()
                        .map_or(serde_json::Value::Null, |id| id.to_string().into()),
                );
                if id.is_none() {
                    for key in ["number", "stages"] {
                        object.insert(key.to_owned(), serde_json::Value::Null);
                    }
                }
                for key in ["previous", "ci_job", "command", "reason", "stage"] {
                    object.entry(key).or_insert(serde_json::Value::Null);
                }
                for key in ["forced", "downgrade"] {
                    object.entry(key).or_insert(false.into());
                }
                for key in ["moves", "checks", "removed", "emptied"] {
                    object
                        .entry(key)
                        .or_insert(serde_json::Value::Array(Vec::new()));
                }
                if let Some(moves) = object.get_mut("moves").and_then(|m| m.as_array_mut()) {
                    for m in moves.iter_mut().filter_map(|m| m.as_object_mut()) {
                        m.entry("from").or_insert(serde_json::Value::Null);
                    }
                }
                if let Some(checks) = object.get_mut("checks").and_then(|c| c.as_array_mut()) {
                    for c in checks.iter_mut().filter_map(|c| c.as_object_mut()) {
                        // In the order of promote's and gate's rows, nulls included.
                        let mut row = serde_json::Map::new();
                        for key in CHECK_KEYS {
                            row.insert(
                                key.to_owned(),
                                c.remove(key).unwrap_or(serde_json::Value::Null),
                            );
                        }
                        row.append(c);
                        *c = row;
                    }
                }
            }
            Ok(value)
        })
        .collect()
}
