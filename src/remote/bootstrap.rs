//! A registry on a remote as a whole: making one there, and reading its `config.toml`
//! before anything else on it is trusted.
//!
//! A registry on a remote is made by creating `config.toml` create-only, then naming it
//! in `registry-id`. Opening one reads `config.toml` first: a missing bucket is told
//! from a missing registry, and a config of a newer format (or one that does not parse)
//! is refused before anything is read or written there.

use std::path::Path;

use anyhow::{Context, Result};

use super::{Created, Remote};
use crate::error::Failure;
use crate::store::registry::{self, FORMAT};
use crate::store::{Registry, atomic, config, keys};

/// Makes an empty registry on `remote`; returns whether it was made (`false`: one was
/// there already, and is left as it is).
pub fn init(remote: &dyn Remote) -> Result<bool> {
    let text = config::initial_text(FORMAT);
    // Asked first, for stores that ignore create-only writes and would overwrite it.
    let created = remote.size(keys::CONFIG)?.is_none()
        && remote.create(keys::CONFIG, text.as_bytes())? == Created::New;
    if created {
        let id = registry::new_registry_id();
        remote.create(keys::REGISTRY_ID, format!("{id}\n").as_bytes())?;
    }
    Ok(created)
}

/// Returns the bytes of the remote's `config.toml`, checked; a remote with none is an
/// error with `hint`, and a missing bucket says so rather than passing for an empty one.
pub fn config_of(remote: &dyn Remote, hint: String) -> Result<Vec<u8>> {
    let config = remote.get(keys::CONFIG)?;
    if config.is_none() {
        // A missing bucket says so here, rather than passing for a missing registry.
        remote.list(keys::TMP)?;
    }
    let config = config.ok_or_else(|| {
        Failure::error(format!("no mreg registry at {}", remote.url())).hint(hint)
    })?;
    check_bytes(remote, &config.bytes)?;
    Ok(config.bytes)
}

/// Returns the remote's `config.toml` with its tag, checked as [`config_of`] checks it.
pub fn config_fetched(remote: &dyn Remote) -> Result<super::Fetched> {
    let config = remote
        .get(keys::CONFIG)?
        .ok_or_else(|| Failure::error(format!("no mreg registry at {}", remote.url())))?;
    check_bytes(remote, &config.bytes)?;
    Ok(config)
}

/// Refuses a remote whose `config.toml` this mreg cannot honour: a newer layout format,
/// or a config that does not parse. Nothing is written to such a remote.
pub fn check_config(remote: &dyn Remote) -> Result<()> {
    match remote.get(keys::CONFIG)? {
        Some(config) => check_bytes(remote, &config.bytes),
        None => Ok(()),
    }
}

fn check_bytes(remote: &dyn Remote, bytes: &[u8]) -> Result<()> {
    let text = String::from_utf8_lossy(bytes);
    let path = format!("{}/config.toml", remote.url().trim_end_matches('/'));
    registry::check_config(&text, remote.url(), Path::new(&path))?;
    Ok(())
}

/// Makes `reg` hold the remote's configuration, `bytes` from [`config_of`]; a local
/// copy that is the same already is left untouched.
pub fn adopt_config(reg: &Registry, bytes: &[u8], url: &str) -> Result<()> {
    let path = reg.path(keys::CONFIG);
    if std::fs::read(&path).ok().as_deref() != Some(bytes) {
        atomic::replace(&reg.tmp_dir(), &path, bytes)?;
    }
    reg.config()
        .with_context(|| format!("reading the config.toml of {url}"))?;
    Ok(())
}
