//! A model's stage history: its chain of states, newest first, optionally of one stage.

use anyhow::Result;

use crate::id::StateId;
use crate::manifest::StageState;
use crate::manifest::json::json_of_manifest;
use crate::names::ModelName;
use crate::store::{Registry, models, stages};

/// Returns the states of `model`, newest first: only those that moved `stage` (asked
/// for, or moved along with another) when given, at most `limit`.
pub fn history(
    reg: &Registry,
    model: &str,
    stage: Option<&str>,
    limit: Option<usize>,
) -> Result<Vec<(StateId, StageState)>> {
    let model = ModelName::parse(model)?;
    models::require_model(reg, &model)?;
    if let Some(stage) = stage {
        reg.config()?.require_stage(stage)?;
    }
    // Without a stage, only the newest entries are read: a damaged old state does not
    // hide the recent ones.
    let read_limit = if stage.is_none() { limit } else { None };
    let mut entries: Vec<(StateId, StageState)> = stages::chain(reg, model.as_str(), read_limit)?
        .into_iter()
        .filter(|(_, s)| {
            stage.is_none_or(|stage| s.stage == stage || s.moves.iter().any(|m| m.stage == stage))
        })
        .collect();
    if let Some(limit) = limit {
        entries.truncate(limit);
    }
    Ok(entries)
}

/// Returns the states as `--json` prints them: each record with its id, and every
/// field present (the record leaves empty ones out; scripts get all, always).
pub fn json(entries: &[(StateId, StageState)]) -> Result<Vec<serde_json::Value>> {
    entries
        .iter()
        .map(|(id, state)| {
            let mut value = json_of_manifest(state)?;
            if let Some(object) = value.as_object_mut() {
                object.insert("id".to_owned(), id.to_string().into());
                for key in ["previous", "ci_job", "command", "reason"] {
                    object.entry(key).or_insert(serde_json::Value::Null);
                }
                for key in ["forced", "downgrade"] {
                    object.entry(key).or_insert(false.into());
                }
                for key in ["moves", "checks"] {
                    object
                        .entry(key)
                        .or_insert(serde_json::Value::Array(Vec::new()));
                }
                if let Some(moves) = object.get_mut("moves").and_then(|m| m.as_array_mut()) {
                    for m in moves.iter_mut().filter_map(|m| m.as_object_mut()) {
                        m.entry("from").or_insert(serde_json::Value::Null);
                    }
                }
            }
            Ok(value)
        })
        .collect()
}
