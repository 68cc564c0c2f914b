//! `mreg gc`: delete what no surviving version, stage or run reaches.

use anyhow::Result;

use serde::Serialize;

use super::{Ctx, output, removal};
use crate::ops::gc::{self, Outcome, Request};
use crate::ops::rm;
use crate::store::gc::AsIf;

/// Delete the objects no surviving version, stage or run holds
///
/// Reads every record first (versions not removed, what each stage holds, every run's
/// series and stored data inputs): if one cannot be read, gc deletes nothing and names
/// it. Then deletes the objects none of them reach (the files of removed versions, and
/// objects an interrupted push or sync left unnamed) and the temp files of processes
/// that are gone, and prints the bytes freed.
///
/// Safe while other commands run: pushes, syncs and logs started before gc are waited
/// for (up to --wait), and those started during it wait until it is done, so nothing
/// they name is deleted (docs/lifecycle.md). Pulls never wait.
///
/// --policy first removes what the [retention] policy of config.toml does not keep, as
/// `mreg rm --policy` (docs/lifecycle.md).
///
/// A bucket (--registry s3://…) is collected the same way, with leases in the bucket
/// instead of a lock: gc waits for the writers on every machine, and they wait for it.
/// Its objects are deleted a thousand to a request. A gc or writer killed with its lease
/// held is taken for gone once the lease is five minutes old.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg gc --dry-run
  mreg rm churn@3 && mreg gc
  mreg gc --json | jq .freed_bytes
  mreg gc --wait 300
  mreg gc --policy --dry-run
  mreg gc --registry s3://ml-models/registry --dry-run

Exit codes: 0 done, 1 error (a record does not read: nothing was deleted), 2 usage
error, 4 writers kept the registry busy for all of --wait (nothing was deleted).")]
pub struct GcArgs {
    /// Count what would be deleted, by kind, deleting nothing
    #[arg(long)]
    dry_run: bool,
    /// Seconds to wait for pushes and syncs already running to finish
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    wait: f64,
    /// First remove what the [retention] policy of config.toml does not keep, as
    /// `mreg rm --policy` (with --dry-run: count what that would free too)
    #[arg(long)]
    policy: bool,
}

/// What `mreg gc --json` prints: the collection, and the policy's removal when asked.
#[derive(Serialize)]
struct Printed<'a> {
    #[serde(flatten)]
    collected: &'a Outcome,
    /// The removal `--policy` made (or would make); `null` without it.
    policy: Option<&'a rm::Outcome>,
}

/// Runs `mreg gc`.
pub fn run(ctx: &Ctx, args: &GcArgs) -> Result<()> {
    let reg = ctx.registry()?;
    let policy = if args.policy {
        let removed = rm::rm(
            &reg,
            &rm::Request {
                refs: &[],
                runs: false,
                policy: true,
                model: None,
                force: false,
                reason: None,
                wait_s: args.wait.min(60.0),
                dry_run: args.dry_run,
            },
        )?;
        for line in removal::status_lines(&removed, args.dry_run, true) {
            if !line.starts_with("Dry run") && !line.starts_with("`mreg gc`") {
                ctx.out.status(&line);
            }
        }
        Some(removed)
    } else {
        None
    };
    let mut as_if = AsIf::default();
    for row in policy.iter().flat_map(|p| &p.removed) {
        as_if
            .versions
            .entry(row.model.clone())
            .or_default()
            .insert(row.version);
    }
    as_if.runs.extend(
        policy
            .iter()
            .flat_map(|p| &p.runs)
            .filter_map(|r| crate::id::RunId::parse(&r.run)),
    );
    let outcome = gc::gc(
        &reg,
        &Request {
            dry_run: args.dry_run,
            wait_s: args.wait,
            as_if,
        },
    )?;
    let printed = Printed {
        collected: &outcome,
        policy: policy.as_ref(),
    };
    ctx.out.emit(&printed, || table(&outcome))?;
    for reference in &outcome.finished_removals {
        ctx.out.status(&format!(
            "Finished the removal of {reference}, which `mreg rm` recorded and had not finished (interrupted, or still running)."
        ));
    }
    let kept = format!(
        "{} objects ({}) are kept",
        outcome.kept.count,
        output::bytes(outcome.kept.bytes)
    );
    ctx.out.status(&if args.dry_run {
        format!(
            "Dry run: gc would free {}; {kept}. Nothing was deleted.",
            output::bytes(outcome.freed_bytes)
        )
    } else {
        format!("Freed {}; {kept}.", output::bytes(outcome.freed_bytes))
    });
    Ok(())
}

/// Returns the table of what was (or would be) deleted, by kind.
fn table(outcome: &Outcome) -> String {
    let cells = outcome
        .kinds
        .iter()
        .map(|k| {
            vec![
                k.kind.to_owned(),
                k.count.to_string(),
                output::bytes(k.bytes),
            ]
        })
        .collect();
    output::table(&["KIND", "COUNT", "SIZE"], cells)
}
