//! Raising a registry's layout format, so that pushes store large files in parts.

use anyhow::Result;
use serde::Serialize;

use crate::error::Failure;
use crate::remote::{bootstrap, collect};
use crate::store::registry::{self, FORMAT};
use crate::store::{Registry, atomic, config, keys};

/// Returns what `mreg upgrade` did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The registry folder, or the bucket URL.
    pub registry: String,
    /// The format it had.
    pub from: u32,
    /// The format it has now.
    pub to: u32,
    /// Whether `config.toml` was rewritten (`false`: it was at this format already).
    pub changed: bool,
}

/// Raises the registry's layout format to this build's, rewriting only the `format`
/// line of its `config.toml` (the bucket's, through a compare-and-swap, for a mirror).
pub fn upgrade(reg: &Registry) -> Result<Outcome> {
    let name = reg.spec().to_string_lossy().into_owned();
    let upgraded = |text: &str| -> Result<Option<(u32, String)>> {
        let from = registry::format_of(text);
        if from >= FORMAT {
            return Ok(None);
        }
        let Some(new) = config::with_format(text, FORMAT) else {
            return Err(Failure::error(format!(
                "the config.toml of {name} has no `format = {from}` line to raise"
            ))
            .hint(format!("add `format = {FORMAT}` as its first setting"))
            .into());
        };
        Ok(Some((from, new)))
    };
    let outcome = |from: u32, changed: bool| Outcome {
        registry: name.clone(),
        from,
        to: from.max(FORMAT),
        changed,
    };
    if let Some(bucket) = collect::bucket_of(reg) {
        let remote = bucket.remote();
        let current = bootstrap::config_fetched(remote)?;
        let text = String::from_utf8_lossy(&current.bytes).into_owned();
        let Some((from, new)) = upgraded(&text)? else {
            return Ok(outcome(registry::format_of(&text), false));
        };
        match remote.swap(keys::CONFIG, Some(&current.tag), new.as_bytes())? {
            atomic::Swap::Done(()) => {}
            atomic::Swap::Moved => {
                return Err(Failure::conflict(format!(
                    "the config.toml of {name} changed while mreg was raising its format"
                ))
                .hint("run `mreg upgrade` again")
                .into());
            }
        }
        bootstrap::adopt_config(reg, new.as_bytes(), &name)?;
        return Ok(outcome(from, true));
    }
    let text = std::fs::read_to_string(reg.path(keys::CONFIG))?;
    let Some((from, new)) = upgraded(&text)? else {
        return Ok(outcome(registry::format_of(&text), false));
    };
    atomic::replace(&reg.tmp_dir(), &reg.path(keys::CONFIG), new.as_bytes())?;
    reg.config()?;
    Ok(outcome(from, true))
}
