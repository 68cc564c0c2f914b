//! Disk usage: the stored bytes each model's surviving versions and the runs reach,
//! what they share, and what `gc` would free.

use std::collections::HashMap;

use anyhow::Result;
use serde::Serialize;

use crate::store::gc::{self, Amount, Owner};
use crate::store::{ObjectId, Registry, models};

/// Returns what `mreg du` prints, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// One row per model that has a surviving version or a stage, then `runs`.
    pub rows: Vec<Row>,
    /// Objects reached by more than one row, with their bytes.
    pub shared: Amount,
    /// Every object the registry stores.
    pub stored: Amount,
    /// What `mreg gc` would free now: objects nothing reaches, and temp files of
    /// processes that are gone.
    pub reclaimable: Amount,
}

/// The stored bytes one model (or the runs) reaches.
#[derive(Debug, Serialize)]
pub struct Row {
    /// The model's name, or `runs`.
    pub name: String,
    /// `model` or `runs`.
    pub kind: &'static str,
    /// Surviving versions, for a model.
    pub versions: Option<u64>,
    /// Objects reached.
    pub objects: u64,
    /// Their bytes on disk (compressed where stored compressed).
    pub bytes: u64,
    /// The bytes of the objects no other row reaches: what removing all of it frees.
    pub unique_bytes: u64,
}

/// Measures the registry: reads every record, as `gc` does, and deletes nothing.
pub fn du(reg: &Registry) -> Result<Outcome> {
    let mut census = gc::census(reg)?;
    let stored = crate::remote::collect::stored(reg)?;
    crate::remote::collect::add_parts(reg, &mut census, &stored)?;
    let mut owners_of: HashMap<ObjectId, u32> = HashMap::new();
    for set in census.owners.values() {
        for id in set {
            *owners_of.entry(*id).or_default() += 1;
        }
    }
    let size = |id: &ObjectId| stored.get(id).map_or(0, |s| s.bytes);
    let mut rows = Vec::new();
    for (owner, set) in &census.owners {
        let (name, kind, versions) = match owner {
            Owner::Model(model) => {
                let live = models::live_versions(reg, model)?.len() as u64;
                if live == 0 && set.is_empty() {
                    continue;
                }
                (model.clone(), "model", Some(live))
            }
            Owner::Runs => ("runs".to_owned(), "runs", None),
        };
        let present: Vec<&ObjectId> = set.iter().filter(|id| stored.contains_key(id)).collect();
        rows.push(Row {
            name,
            kind,
            versions,
            objects: present.len() as u64,
            bytes: present.iter().map(|id| size(id)).sum(),
            unique_bytes: present
                .iter()
                .filter(|id| owners_of.get(id) == Some(&1))
                .map(|id| size(id))
                .sum(),
        });
    }
    let mut shared = Amount::default();
    for (id, n) in &owners_of {
        if *n > 1 && stored.contains_key(id) {
            shared.count += 1;
            shared.bytes += size(id);
        }
    }
    let total = Amount {
        count: stored.len() as u64,
        bytes: stored.values().map(|s| s.bytes).sum(),
    };
    let garbage = gc::garbage(reg, &census, stored);
    let reclaimable = garbage
        .amounts()
        .iter()
        .fold(Amount::default(), |mut a, k| {
            a.count += k.count;
            a.bytes += k.bytes;
            a
        });
    Ok(Outcome {
        rows,
        shared,
        stored: total,
        reclaimable,
    })
}
