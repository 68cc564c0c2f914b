//! `mreg sync` and `mreg clone`: exchanging a registry's content with a remote.

use std::path::PathBuf;

use anyhow::Result;

use super::{Ctx, output};
use crate::error::{EXIT_CONFLICT, EXIT_ERROR, EXIT_OK};
use crate::ops::sync::{self, Outcome, Request};
use crate::remote::sync::Counts;

/// Send a remote what it lacks and fetch what this registry lacks
///
/// Objects, runs, version records, signatures, stage states and stage pointers are copied only
/// where missing, in the order that never lets either side name data it lacks; every
/// object fetched is re-hashed before it is stored. Nothing is overwritten: a version
/// number holding different records on the two sides, or stage moves made on both
/// sides since the last sync, leaves that model as it is and exits 4 saying how to
/// resolve it, while everything else syncs. An item either side cannot read or must
/// not trust (an unparsable record, a tree over the walk limits, an object that is
/// corrupt or larger than declared) is left where it is and named, the stages of its
/// model wait, everything else syncs, and the command exits 1. An interrupted sync
/// resumes where it stopped when run again.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg sync
  mreg sync team
  mreg sync team --take-remote-stages churn
  mreg sync team --renumber churn
  mreg sync --json | jq .sent.bytes")]
pub struct SyncArgs {
    /// The remote [default: the default remote]
    name: Option<String>,
    /// For a model whose stages moved on both sides, keep the remote's moves and drop
    /// this registry's (they stay in its files, unreachable)
    #[arg(long, value_name = "MODEL")]
    take_remote_stages: Vec<String>,
    /// For a model whose version numbers hold different records here and on the
    /// remote, publish this registry's versions under the remote's next free numbers
    /// (recording the old number in each) and take the remote's at the old ones
    #[arg(long, value_name = "MODEL")]
    renumber: Vec<String>,
    /// Forget what the remote is remembered to hold, ask it again, and send every
    /// object of every version it lacks (after objects were lost there)
    #[arg(long)]
    recheck: bool,
}

/// Start a local registry from a remote
///
/// Makes DIR/.mreg (DIR defaults to the current folder), adds the remote as `origin`,
/// the default remote, and fetches everything it holds: objects, runs, versions and
/// stages, each object re-hashed before it is stored. Run again on a clone of the same
/// URL (one that was interrupted, say), it fetches what is still missing.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg clone s3://ml-models/registry ./registry
  mreg clone /mnt/share/registry")]
pub struct CloneArgs {
    /// s3://BUCKET/PREFIX, or a registry folder
    url: String,
    /// Folder to make the registry in [default: the current folder]
    dir: Option<PathBuf>,
}

/// Runs `mreg sync`.
pub fn run(ctx: &Ctx, args: &SyncArgs) -> Result<u8> {
    let reg = ctx.registry()?;
    let request = Request {
        remote: args.name.as_deref(),
        take_remote_stages: &args.take_remote_stages,
        renumber: &args.renumber,
        recheck: args.recheck,
    };
    let outcome = sync::sync(&reg, &request, &ctx.out.progress())?;
    print(ctx, &outcome, true)
}

/// Runs `mreg clone`.
pub fn clone(ctx: &Ctx, args: &CloneArgs) -> Result<u8> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let cloned = sync::clone(&args.url, &dir, &ctx.out.progress())?;
    ctx.out
        .status(&format!("Cloned {} into {}.", args.url, cloned.root));
    if !cloned.enforced {
        ctx.out.warn("origin was not shown to enforce conditional writes; `mreg remote check origin` tells more");
    }
    print(ctx, &cloned.outcome, false)
}

/// Prints what a sync (`both_ways`) or a clone, which only fetches, moved.
fn print(ctx: &Ctx, outcome: &Outcome, both_ways: bool) -> Result<u8> {
    let (name, report) = (&outcome.remote, &outcome.report);
    let printed = if ctx.out.is_json() {
        ctx.out.emit(outcome, String::new)
    } else {
        let line = |verb: &str, c: &Counts| {
            let mut extra = if c.removals == 0 {
                String::new()
            } else {
                format!(", {}", output::count(c.removals, "removal"))
            };
            if c.signatures > 0 {
                extra = format!("{extra}, {}", output::count(c.signatures, "signature"));
            }
            format!(
                "{verb} {name}: {}, {}, {}{extra}, {}, {}, {}.",
                output::count(c.objects, "object"),
                output::bytes(c.bytes),
                output::count(c.versions, "version"),
                output::count(c.runs, "run"),
                output::count(c.events + c.states + c.info, "record"),
                output::count(c.stages, "stage pointer"),
            )
        };
        let moved = !report.fetched.is_empty() || !report.sent.is_empty();
        if !moved && report.conflicts.is_empty() && report.refused.is_empty() {
            ctx.out.status(&if both_ways {
                format!("{name} and this registry hold the same; nothing to do.")
            } else {
                format!("This registry holds everything of {name}; nothing to fetch.")
            });
        } else if !moved {
            // What kept them apart follows, as warnings.
            ctx.out
                .status(&format!("Nothing moved between {name} and this registry."));
        } else {
            if !report.fetched.is_empty() {
                ctx.out.status(&line("Fetched from", &report.fetched));
            }
            if !report.sent.is_empty() {
                ctx.out.status(&line("Sent to", &report.sent));
            }
        }
        Ok(())
    };
    output::after_print(printed, || Ok(()))?;
    for r in &report.renumbered {
        ctx.out.status(&format!(
            "Published {}@{} as {}@{} on {name}; {}@{} here is now the remote's.",
            r.model, r.from, r.model, r.to, r.model, r.from
        ));
    }
    for conflict in &report.conflicts {
        ctx.out.error(&format!("conflict: {}", conflict.message));
        ctx.out.hint(&conflict.hint);
    }
    for refused in &report.refused {
        ctx.out.warn(&format!(
            "refused {} on {}: {}",
            refused.key, refused.on, refused.message
        ));
    }
    if !report.refused.is_empty() {
        let what = match report.refused.len() {
            1 => "that item was left where it is".to_owned(),
            n => format!("those {n} items were left where they are"),
        };
        ctx.out.hint(&format!(
            "{what} and everything else synced; `mreg fsck` on the side holding an item names what is wrong, and the stages of its model wait until it is fixed"
        ));
    }
    Ok(if !report.conflicts.is_empty() {
        EXIT_CONFLICT
    } else if !report.refused.is_empty() {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}
