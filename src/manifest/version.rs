//! The version record: `models/NAME/versions/N.toml`, one per pushed version.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::store::TreeId;

/// The version-record format this build reads and writes.
pub const FORMAT: u32 = 1;

/// Returns the record of one model version, as stored in TOML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        #[derive(Deserialize)]
        struct Probe {
            format: u32,
        }
        let probe: Probe = toml::from_str(text)?;
        if probe.format > FORMAT {
            bail!(
                "it has format {}, newer than this mreg reads ({FORMAT}); upgrade mreg",
                probe.format
            );
        }
        Ok(toml::from_str(text)?)
    }
}
