//! Garbage collection: the objects no surviving version, stage, or run reaches, and the
//! temp files of processes that are gone, counted and (unless a dry run) deleted.

use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::error::Failure;
use crate::remote::collect;
use crate::stage::remove::publish_removals;
use crate::store::gc::{self, Amount, Collection};
use crate::store::{Registry, chunks, gclock};

/// What `mreg gc` is asked to do.
pub struct Request {
    /// Whether to count only, deleting nothing.
    pub dry_run: bool,
    /// Seconds to wait for writers already running to finish.
    pub wait_s: f64,
    /// Versions and runs to count as removed, in a dry run only (of `gc --policy`):
    /// a collection that deletes reads only the removals written.
    pub as_if: gc::AsIf,
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
    /// One of [`gc::KINDS`].
    pub kind: &'static str,
    /// Objects, or temp entries.
    pub count: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

/// Counts the garbage and, unless a dry run, deletes it: in a registry folder under
/// the gc lock, on a bucket under the collector's lease (`remote::collect`).
pub fn gc(reg: &Registry, request: &Request) -> Result<Outcome> {
    if !(0.0..=86_400.0).contains(&request.wait_s) {
        return Err(Failure::usage(format!(
            "--wait {} is not a number of seconds between 0 and 86400",
            request.wait_s
        ))
        .into());
    }
    let wait = Duration::from_secs_f64(request.wait_s);
    let done = match collect::bucket_of(reg) {
        Some(bucket) => on_bucket(reg, &bucket, request, wait)?,
        None => folder(reg, request, wait)?,
    };
    let kinds: Vec<KindRow> = gc::KINDS
        .iter()
        .zip(done.amounts)
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
        kept: done.kept,
        records: done.records,
        finished_removals: done.finished_removals,
    })
}

/// Returns what a collection counts as removed beyond the removals written: nothing,
/// unless it is a dry run.
fn as_if(request: &Request) -> &gc::AsIf {
    static NONE: std::sync::OnceLock<gc::AsIf> = std::sync::OnceLock::new();
    if request.dry_run {
        &request.as_if
    } else {
        NONE.get_or_init(gc::AsIf::default)
    }
}

/// Collects a registry folder under its gc lock (none for a dry run, which deletes
/// nothing and so never holds a push up).
fn folder(reg: &Registry, request: &Request, wait: Duration) -> Result<Collection> {
    let dry_run = request.dry_run;
    let _collecting = if dry_run {
        None
    } else {
        Some(gclock::collecting(reg.root(), wait, &|m| reg.notice(m))?)
    };
    let mut census = gc::census_as_if(reg, as_if(request))?;
    if !dry_run {
        for (id, state) in &census.pending {
            publish_removals(reg, state, id)?;
        }
    }
    let stored = gc::stored_objects(reg)?;
    gc::add_parts(&mut census, &stored, &|key| {
        chunks::ChunkList::read_if_present(&reg.path(key))
    })
    .context("gc deleted nothing")?;
    let kept = gc::kept(&census, &stored);
    let garbage = gc::garbage(reg, &census, stored);
    crate::crash::point("gc-marked");
    let amounts = if dry_run {
        garbage.amounts()
    } else {
        gc::sweep(reg, &garbage)?
    };
    Ok(Collection {
        finished_removals: gc::unfinished(&census),
        records: census.records,
        kept,
        amounts,
    })
}

/// Collects a bucket under the collector's lease (none for a dry run), then tidies the
/// local mirror.
fn on_bucket(
    reg: &Registry,
    bucket: &collect::Bucket,
    request: &Request,
    wait: Duration,
) -> Result<Collection> {
    let dry_run = request.dry_run;
    let session = bucket.begin(reg, dry_run, wait)?;
    let mut census = gc::census_as_if(reg, as_if(request))?;
    if !dry_run {
        for (id, state) in &census.pending {
            publish_removals(reg, state, id)?;
        }
    }
    let stored = bucket.stored()?;
    gc::add_parts(&mut census, &stored, &|key| bucket.read_list(reg, key))
        .context("gc deleted nothing")?;
    let kept = gc::kept(&census, &stored);
    let garbage = gc::classify(&census, stored);
    crate::crash::point("gc-marked");
    let amounts = if dry_run {
        garbage.amounts()
    } else {
        session.sweep(&garbage)?
    };
    drop(session);
    if !dry_run {
        collect::tidy_mirror(reg, &census)?;
    }
    Ok(Collection {
        finished_removals: gc::unfinished(&census),
        records: census.records,
        kept,
        amounts,
    })
}
