//! Garbage collection: the objects no surviving version, stage, or run reaches, and the
//! temp files of processes that are gone, counted and (unless a dry run) deleted.

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::error::Failure;
use crate::stage::remove::publish_removals;
use crate::store::gc::{self, Amount};
use crate::store::{Registry, gclock};

/// What `mreg gc` is asked to do.
pub struct Request {
    /// Whether to count only, deleting nothing.
    pub dry_run: bool,
    /// Seconds to wait for writers already running to finish.
    pub wait_s: f64,
}

/// Returns what a collection did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// `collected`, or `would-collect` with `--dry-run`.
    pub result: &'static str,
    /// What was (or would be) deleted, by kind.
    pub kinds: Vec<KindRow>,
    /// Bytes freed (or that would be), all kinds together.
    pub freed_bytes: u64,
    /// The objects kept: what surviving versions, stages and runs reach.
    pub kept: Amount,
    /// Records read to decide.
    pub records: u64,
    /// Removals a kill had left unfinished, finished now (or that would be).
    pub finished_removals: Vec<String>,
}

/// One kind of garbage.
#[derive(Debug, Serialize)]
pub struct KindRow {
    /// `removed-versions`: objects only removed versions held; `unreferenced`: objects
    /// no record names (a push or sync that was interrupted, a removed run);
    /// `temp-files`: entries of `tmp/` whose process is gone.
    pub kind: &'static str,
    /// Objects, or temp entries.
    pub count: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

/// The kinds, in the order [`gc::Garbage::amounts`] gives them.
const KINDS: [&str; 3] = ["removed-versions", "unreferenced", "temp-files"];

/// Counts the garbage and, unless a dry run, deletes it under the gc lock.
pub fn gc(reg: &Registry, request: &Request) -> Result<Outcome> {
    if let Some(url) = reg.bucket_url() {
        return Err(Failure::usage(format!(
            "gc works on a registry folder; collecting {url} directly is not supported by this mreg"
        ))
        .hint("`mreg rm` works on the bucket; collect a folder registry that syncs with it")
        .into());
    }
    if !(0.0..=86_400.0).contains(&request.wait_s) {
        return Err(Failure::usage(format!(
            "--wait {} is not a number of seconds between 0 and 86400",
            request.wait_s
        ))
        .into());
    }
    // A dry run takes no lock: it deletes nothing, so it never holds a push up.
    let _collecting = if request.dry_run {
        None
    } else {
        Some(gclock::collecting(
            reg.root(),
            Duration::from_secs_f64(request.wait_s),
            &|| {},
        )?)
    };
    let census = gc::census(reg)?;
    let finished_removals = census
        .pending
        .iter()
        .flat_map(|(_, s)| s.removed.iter().map(|n| format!("{}@{n}", s.model)))
        .collect();
    if !request.dry_run {
        for (id, state) in &census.pending {
            publish_removals(reg, state, id)?;
        }
    }
    let stored = gc::stored_objects(reg)?;
    let reachable = census.reachable();
    let kept = stored.iter().filter(|(id, _)| reachable.contains(id)).fold(
        Amount::default(),
        |mut a, (_, s)| {
            a.count += 1;
            a.bytes += s.bytes;
            a
        },
    );
    let garbage = gc::garbage(reg, &census, stored);
    crate::crash::point("gc-marked");
    let amounts = if request.dry_run {
        garbage.amounts()
    } else {
        gc::sweep(reg, &garbage)?
    };
    let kinds: Vec<KindRow> = KINDS
        .iter()
        .zip(amounts)
        .map(|(kind, a)| KindRow {
            kind,
            count: a.count,
            bytes: a.bytes,
        })
        .collect();
    Ok(Outcome {
        result: if request.dry_run {
            "would-collect"
        } else {
            "collected"
        },
        freed_bytes: kinds.iter().map(|k| k.bytes).sum(),
        kinds,
        kept,
        records: census.records,
        finished_removals,
    })
}
