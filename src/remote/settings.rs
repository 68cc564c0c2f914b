//! The remotes a registry knows: `.mreg/remotes.toml`, written by `mreg remote add`.
//!
//! ```toml
//! default = "team"
//!
//! [remotes.team]
//! url = "s3://ml-models/registry"
//! endpoint = "http://minio.lab:9000"   # AWS_ENDPOINT_URL when it was added, if any
//! conditional_writes = true          # what `remote add` / `remote check` found
//! checked = "2026-11-23T10:00:00Z"
//! single_writer = false              # true: the user vouches that one writer uses it
//! ```
//!
//! The file is local to the registry: a sync never sends it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::Failure;
use crate::store::{Registry, atomic, keys};

/// One remote's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Where it is: `s3://bucket/prefix` or a folder.
    pub url: String,
    /// The S3 endpoint the remote was added with (`AWS_ENDPOINT_URL` then), used for it
    /// whatever the shell sets later; none for AWS itself and for folders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Whether the last check found create-only writes and compare-and-swap enforced.
    #[serde(default)]
    pub conditional_writes: bool,
    /// When that check ran (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked: Option<String>,
    /// Whether the user vouched that only one writer ever uses the remote, so stages
    /// may move there without conditional writes.
    #[serde(default)]
    pub single_writer: bool,
}

impl Entry {
    /// Returns the settings of a remote just probed: `enforced` is what the probe found,
    /// checked now.
    pub fn probed(
        url: String,
        endpoint: Option<String>,
        enforced: bool,
        single_writer: bool,
    ) -> Entry {
        Entry {
            url,
            endpoint,
            conditional_writes: enforced,
            checked: Some(crate::clock::format_time(std::time::SystemTime::now())),
            single_writer,
        }
    }

    /// Opens the remote this entry names.
    pub fn open(&self, create: bool) -> Result<Box<dyn super::Remote>> {
        super::open_at(&self.url, self.endpoint.as_deref(), create)
    }

    /// Returns whether stages may be moved on this remote.
    pub fn may_move_stages(&self) -> bool {
        self.conditional_writes || self.single_writer
    }
}

/// Every remote of a registry, and which one is the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The remote `sync` and `pull` use when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The remotes by name.
    #[serde(default)]
    pub remotes: BTreeMap<String, Entry>,
}

fn path(reg: &Registry) -> PathBuf {
    reg.path(keys::REMOTES)
}

impl Settings {
    /// Reads a registry's remotes; a registry without the file has none.
    pub fn load(reg: &Registry) -> Result<Settings> {
        let path = path(reg);
        let Some(text) = reg
            .read_text(keys::REMOTES)
            .with_context(|| format!("reading {}", path.display()))?
        else {
            return Ok(Settings::default());
        };
        toml::from_str(&text).map_err(|err| {
            Failure::error(format!(
                "{} is not valid: {}",
                path.display(),
                err.message()
            ))
            .hint("fix the file, or remove it and add the remotes again with `mreg remote add`")
            .into()
        })
    }

    /// Writes the remotes back, atomically.
    pub fn save(&self, reg: &Registry) -> Result<()> {
        let text = format!(
            "# The remotes of this registry; `mreg remote add/remove` edits this file.\n{}",
            toml::to_string(self)?
        );
        atomic::replace(&reg.tmp_dir(), &path(reg), text.as_bytes())
    }

    /// Returns the remote `name` names, or the default one.
    pub fn pick(&self, name: Option<&str>) -> Result<(String, Entry)> {
        let name = match name {
            Some(name) => name.to_owned(),
            None => match &self.default {
                Some(name) => name.clone(),
                None if self.remotes.is_empty() => {
                    return Err(Failure::usage("this registry has no remote")
                        .hint("add one with `mreg remote add NAME URL`, e.g. `mreg remote add team s3://ml-models/registry`")
                        .into());
                }
                None => {
                    let names: Vec<&str> = self.remotes.keys().map(String::as_str).collect();
                    return Err(Failure::usage("this registry has no default remote")
                        .hint(format!(
                            "name one: {} (or make one the default: `mreg remote remove NAME`, then add it again with --default)",
                            names.join(", ")
                        ))
                        .into());
                }
            },
        };
        if let Some(entry) = self.remotes.get(&name) {
            Ok((name, entry.clone()))
        } else {
            {
                let known: Vec<&str> = self.remotes.keys().map(String::as_str).collect();
                let hint = if known.is_empty() {
                    "add one with `mreg remote add NAME URL`".to_owned()
                } else {
                    format!("remotes: {}", known.join(", "))
                };
                Err(Failure::usage(format!("no remote named {name:?}"))
                    .hint(hint)
                    .into())
            }
        }
    }
}
