//! The removal records: `models/NAME/removed/N.toml`, one per removed version, and
//! `runs/ID/removed.toml`, one per removed run.
//!
//! A removed version keeps its version record (the number is never given again, and
//! `show` can still say what it was); the removal record beside it says who removed it,
//! when and why. Both are immutable, so a removal travels through `sync` as one more
//! record, and a registry that lacks it learns it rather than bringing the version back.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::run::check_format;
use crate::id::{RunId, StateId, TreeId};

/// The removal format this build reads and writes.
pub const FORMAT: u32 = 1;

/// Returns the record of one removed version, as stored in TOML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Removal {
    /// Record format version.
    pub format: u32,
    /// Model name.
    pub model: String,
    /// The removed version's number.
    pub version: u64,
    /// The removed version's tree, so a removal never applies to another record that
    /// holds the same number elsewhere.
    pub tree: TreeId,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// Who: `MREG_ACTOR`, else `user@host`.
    pub actor: String,
    /// The reason given, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The command line, with secret values masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The CI job it ran in, when it ran in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_job: Option<String>,
    /// Whether a stage held the version, and `--force` emptied it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
    /// The stage state that recorded the removal in the model's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateId>,
}

impl Removal {
    /// Returns the reference `NAME@N` of the removed version.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.model, self.version)
    }

    /// Returns the record as TOML.
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }

    /// Parses a record, refusing one from a newer format or with a time that is none.
    pub fn parse(text: &str) -> Result<Removal> {
        check_format(text, FORMAT)?;
        let record: Removal = toml::from_str(text)?;
        super::fields::time("time", &record.time)?;
        if record.version == 0 {
            bail!("version is 0, and versions are numbered from 1");
        }
        Ok(record)
    }
}

/// Returns the record of one removed run, as stored in TOML: the run's own record and
/// events stay beside it, as the evidence they are; the run no longer lists, compares
/// or takes events, and `gc` frees what only it held (its stored series and data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRemoval {
    /// Record format version.
    pub format: u32,
    /// The removed run.
    pub run: RunId,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// Who: `MREG_ACTOR`, else `user@host`.
    pub actor: String,
    /// The reason given, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The command line, with secret values masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The CI job it ran in, when it ran in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_job: Option<String>,
}

impl RunRemoval {
    /// Returns the record as TOML.
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }

    /// Parses a record, refusing one from a newer format or with a time that is none.
    pub fn parse(text: &str) -> Result<RunRemoval> {
        check_format(text, FORMAT)?;
        let record: RunRemoval = toml::from_str(text)?;
        super::fields::time("time", &record.time)?;
        if RunId::parse(record.run.as_str()).is_none() {
            bail!("run {:?} is not a run id", record.run.as_str());
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::fuzz;

    fn sample() -> Removal {
        Removal {
            format: FORMAT,
            model: "churn".into(),
            version: 3,
            tree: "ab".repeat(32).parse().expect("a tree id"),
            time: "2026-01-01T00:00:00Z".into(),
            actor: "ana@ci".into(),
            reason: Some("leaked test data".into()),
            command: Some("mreg rm churn@3".into()),
            ci_job: None,
            forced: false,
            state: None,
        }
    }

    #[test]
    fn round_trips_and_refuses_what_no_mreg_writes() {
        let text = sample().to_toml().unwrap();
        assert_eq!(Removal::parse(&text).unwrap(), sample());
        assert!(Removal::parse(&text.replace("format = 1", "format = 2")).is_err());
        assert!(Removal::parse(&text.replace("version = 3", "version = 0")).is_err());
        assert!(Removal::parse(&text.replace("2026-01-01T00:00:00Z", "soon")).is_err());
    }

    fn run_sample() -> RunRemoval {
        RunRemoval {
            format: FORMAT,
            run: RunId::parse("0123456789abcdef").expect("a run id"),
            time: "2026-01-01T00:00:00Z".into(),
            actor: "ana@ci".into(),
            reason: Some("sweep abandoned".into()),
            command: Some("mreg rm 0123456789abcdef".into()),
            ci_job: None,
        }
    }

    #[test]
    fn a_run_removal_round_trips_and_refuses_what_no_mreg_writes() {
        let text = run_sample().to_toml().unwrap();
        assert_eq!(RunRemoval::parse(&text).unwrap(), run_sample());
        assert!(RunRemoval::parse(&text.replace("format = 1", "format = 2")).is_err());
        assert!(RunRemoval::parse(&text.replace("0123456789abcdef\"", "xyz\"")).is_err());
        assert!(RunRemoval::parse(&text.replace("2026-01-01T00:00:00Z", "soon")).is_err());
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn parsing_a_mutated_run_removal_never_panics(
            text in fuzz::mutated_text(&run_sample().to_toml().expect("a removal writes"))
        ) {
            fuzz::check_manifest(&text, RunRemoval::parse, RunRemoval::to_toml)?;
        }

        #[test]
        fn parsing_a_mutated_removal_never_panics(
            text in fuzz::mutated_text(&sample().to_toml().expect("a removal writes"))
        ) {
            fuzz::check_manifest(&text, Removal::parse, Removal::to_toml)?;
        }
    }
}
