//! The stage state: `models/NAME/states/ID.toml`, one immutable record per stage move.
//!
//! A state holds where every stage of one model points after a move, what moved, who
//! moved it and on what evidence, and the id of the state before it. The states form a
//! chain like commits; `models/NAME/HEAD` names the newest. A state's id is the blake3
//! hash of its bytes, so an edited state no longer matches its name.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::Value;
use super::run::check_format;
use crate::id::StateId;

/// The newest state format this build reads.
///
/// Format 2 added the `remove` action and its `removed` list. A state is written in
/// the oldest format that holds it ([`StageState::format_for`]), so a registry whose
/// versions are never removed stays readable by mreg builds that know only format 1.
pub const FORMAT: u32 = 2;

/// Returns what a state records happening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A promotion moved stages.
    Promote,
    /// A promotion was refused by its gates; no stage moved.
    Refused,
    /// A stage went back to its previous holder.
    Rollback,
    /// Versions were removed; the stages that held them were emptied.
    Remove,
}

impl Action {
    /// Returns the action's name, as written in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Promote => "promote",
            Action::Refused => "refused",
            Action::Rollback => "rollback",
            Action::Remove => "remove",
        }
    }
}

/// Returns one stage's move: from the version it held (if any) to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Move {
    /// The stage.
    pub stage: String,
    /// The version it held before; absent when it was empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
    /// The version it holds now.
    pub to: u64,
}

/// Returns a stage a removal emptied, and the removed version it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Emptied {
    /// The stage.
    pub stage: String,
    /// The version it held, which was removed.
    pub version: u64,
}

/// Returns one gate as evaluated, with the values it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRecord {
    /// The gate as written, or `from STAGE` for a stage's required previous stage.
    pub gate: String,
    /// Where it came from: `command line`, or `policy of STAGE`.
    pub source: String,
    /// What it required, in words: `> 0.85`, `>= 0.912 (production churn@3: 0.917 - 0.005)`.
    pub required: String,
    /// The value compared against, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Value>,
    /// The stage holder compared against, for `@STAGE` gates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against: Option<String>,
    /// The candidate's value, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<Value>,
    /// Whether it held.
    pub passed: bool,
    /// Why it did not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Returns one stage state: every stage's holder after one move, and that move's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageState {
    /// State format version.
    pub format: u32,
    /// The model whose stages these are.
    pub model: String,
    /// Position in the chain, from 1.
    pub number: u64,
    /// The state this one follows; absent for the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<StateId>,
    /// What happened.
    pub action: Action,
    /// The version asked for: promoted, refused, or gone back to.
    pub version: u64,
    /// The stage asked for; empty for a removal, which asks for no stage.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stage: String,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// Who: `MREG_ACTOR`, else `user@host`.
    pub actor: String,
    /// The CI job it ran in, when it ran in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_job: Option<String>,
    /// The command line, with secret values masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Whether failing gates or policy were overridden with `--force`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
    /// Whether a version older than the holder was promoted with `--allow-downgrade`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub downgrade: bool,
    /// The reason given, required with `--force`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every stage's holder after this state; empty stages are absent.
    #[serde(default)]
    pub stages: BTreeMap<String, u64>,
    /// The stages that moved, the asked-for stage first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<Move>,
    /// The gates evaluated, with their values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckRecord>,
    /// The versions a removal removed, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<u64>,
    /// The stages a removal emptied, because they held a removed version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emptied: Vec<Emptied>,
}

impl StageState {
    /// Returns the record as TOML.
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }

    /// Parses a record, refusing one from a newer format.
    pub fn parse(text: &str) -> Result<StageState> {
        check_format(text, FORMAT)?;
        let state: StageState = toml::from_str(text)?;
        super::fields::time("time", &state.time)?;
        Ok(state)
    }

    /// Returns the oldest format that holds a state of `action`: 2 for a removal, 1
    /// for every other move.
    pub fn format_for(action: Action) -> u32 {
        if action == Action::Remove { 2 } else { 1 }
    }

    /// Returns the version a stage holds in this state.
    pub fn holder(&self, stage: &str) -> Option<u64> {
        self.stages.get(stage).copied()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::fuzz;

    fn sample() -> StageState {
        StageState {
            format: 1,
            model: "churn".into(),
            number: 2,
            previous: Some(StateId::of(b"first")),
            action: Action::Promote,
            version: 4,
            stage: "production".into(),
            time: "2026-01-01T00:00:00Z".into(),
            actor: "ana@ci".into(),
            ci_job: None,
            command: Some("mreg promote churn@4 production".into()),
            forced: false,
            downgrade: false,
            reason: None,
            stages: BTreeMap::from([("production".into(), 4), ("archived".into(), 3)]),
            moves: vec![
                Move {
                    stage: "production".into(),
                    from: Some(3),
                    to: 4,
                },
                Move {
                    stage: "archived".into(),
                    from: None,
                    to: 3,
                },
            ],
            checks: vec![CheckRecord {
                gate: "acc>0.85".into(),
                source: "command line".into(),
                required: "> 0.85".into(),
                threshold: Some(Value::Float(0.85)),
                against: None,
                actual: Some(Value::Float(f64::NAN)),
                passed: false,
                why: Some("acc of churn@4 is NaN".into()),
            }],
            removed: Vec::new(),
            emptied: Vec::new(),
        }
    }

    #[test]
    fn round_trips_through_toml_with_nan() {
        let state = sample();
        let text = state.to_toml().unwrap();
        let back = StageState::parse(&text).unwrap();
        assert_eq!(back.to_toml().unwrap(), text);
        assert!(matches!(back.checks[0].actual, Some(Value::Float(f)) if f.is_nan()));
        assert_eq!(back.holder("archived"), Some(3));
        assert_eq!(back.holder("staging"), None);
    }

    #[test]
    fn refuses_newer_formats_and_bad_ids() {
        let text = sample()
            .to_toml()
            .unwrap()
            .replace("format = 1", "format = 9");
        assert!(StageState::parse(&text).is_err());
        assert!(StateId::parse("ABC").is_none());
        assert!(StateId::parse(&"A".repeat(64)).is_none());
        assert!(StateId::parse(&"a".repeat(64)).is_some());
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn parsing_any_text_never_panics(text in any::<String>()) {
            fuzz::check_manifest(&text, StageState::parse, StageState::to_toml)?;
        }

        #[test]
        fn parsing_a_mutated_state_never_panics(
            text in fuzz::mutated_text(&sample().to_toml().expect("a state writes"))
        ) {
            fuzz::check_manifest(&text, StageState::parse, StageState::to_toml)?;
        }
    }
}
