//! The run event: `runs/ID/log/NAME.toml`, one immutable file per `mreg log` call,
//! per push linked to the run, and for the end of a `mreg run`.
//!
//! Events are never edited: concurrent writers each create their own file, so many
//! `mreg log` calls for one run never lose each other's values.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::Value;
use super::run::{DataInput, End, ModelLink, check_format};
use super::series::Series;
use crate::id::RunId;

/// The event format this build reads and writes.
pub const FORMAT: u32 = 1;

/// Returns what one event adds to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunEvent {
    /// Event format version.
    pub format: u32,
    /// The run it belongs to.
    pub run: RunId,
    /// When it was written (RFC 3339, UTC).
    pub time: String,
    /// Who wrote it.
    pub actor: String,
    /// Params set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Value>,
    /// Final metric values set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    /// Tags set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Series points added, per metric, with their own summary.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub series: BTreeMap<String, Series>,
    /// Data inputs added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<DataInput>,
    /// Parent models added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<ModelLink>,
    /// Model versions pushed from the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<ModelLink>,
    /// How the run ended, for the event `mreg run` writes when its command exits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<End>,
}

impl RunEvent {
    /// Returns an event that adds nothing yet.
    pub fn new(run: RunId, time: String, actor: String) -> RunEvent {
        RunEvent {
            format: FORMAT,
            run,
            time,
            actor,
            params: BTreeMap::new(),
            metrics: BTreeMap::new(),
            tags: BTreeMap::new(),
            series: BTreeMap::new(),
            data: Vec::new(),
            parents: Vec::new(),
            outputs: Vec::new(),
            end: None,
        }
    }

    /// Returns whether the event adds nothing.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
            && self.metrics.is_empty()
            && self.tags.is_empty()
            && self.series.is_empty()
            && self.data.is_empty()
            && self.parents.is_empty()
            && self.outputs.is_empty()
            && self.end.is_none()
    }

    /// Returns the event as TOML.
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }

    /// Parses an event, refusing one from a newer format.
    pub fn parse(text: &str) -> Result<RunEvent> {
        check_format(text, FORMAT)?;
        let event: RunEvent = toml::from_str(text)?;
        super::fields::time("time", &event.time)?;
        if let Some(end) = &event.end {
            end.check()?;
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::RunEvent;
    use crate::testing::fuzz;

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn parsing_any_text_never_panics(text in any::<String>()) {
            fuzz::check_manifest(&text, RunEvent::parse, RunEvent::to_toml)?;
        }

        #[test]
        fn parsing_a_mutated_record_never_panics(text in fuzz::mutated_text(include_str!("../../fixtures/manifests/event.toml"))) {
            fuzz::check_manifest(&text, RunEvent::parse, RunEvent::to_toml)?;
        }
    }
}
