//! The version record: `models/NAME/versions/N.toml`, one per pushed version.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::RunId;
use super::run::check_format;
use crate::id::TreeId;

/// The version-record format this build writes; it reads this one and older ones.
///
/// Format 2 added `run` and `metrics`.
pub const FORMAT: u32 = 2;

/// Returns the record of one model version, as stored in TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionRecord {
    /// Record format version.
    pub format: u32,
    /// Model name.
    pub model: String,
    /// Version number, from 1.
    pub version: u64,
    /// Tree hash of the model's files: its content identity.
    pub tree: TreeId,
    /// Number of regular files.
    pub files: u64,
    /// Bytes of all files.
    pub bytes: u64,
    /// When it was pushed (RFC 3339, UTC).
    pub created: String,
    /// Who pushed it.
    pub actor: String,
    /// The message given at push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The run that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunId>,
    /// 16 hex digits unique to the push that wrote the record, so a push whose reply
    /// was lost can tell its own record from another push's at the same number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The number this version had in the registry it was pushed to, when `mreg sync
    /// --renumber` published it under a new number because another version had taken
    /// that one on the remote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renumbered_from: Option<u64>,
    /// The run's final metrics when the version was pushed: what gates read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}

impl VersionRecord {
    /// Returns the reference `NAME@N`.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.model, self.version)
    }

    /// Returns the record as TOML.
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }

    /// Parses a record, refusing one from a newer format.
    pub fn parse(text: &str) -> Result<VersionRecord> {
        check_format(text, FORMAT)?;
        let record: VersionRecord = toml::from_str(text)?;
        super::fields::time("created", &record.created)?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::VersionRecord;
    use crate::testing::fuzz;

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn parsing_any_text_never_panics(text in any::<String>()) {
            fuzz::check_manifest(&text, VersionRecord::parse, VersionRecord::to_toml)?;
        }

        #[test]
        fn parsing_a_mutated_record_never_panics(text in fuzz::mutated_text(include_str!("../../fixtures/manifests/version-2.toml"))) {
            fuzz::check_manifest(&text, VersionRecord::parse, VersionRecord::to_toml)?;
        }
    }
}
