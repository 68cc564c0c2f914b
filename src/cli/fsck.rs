//! `mreg fsck`: verify every object and manifest in the registry.

use anyhow::Result;

use super::{Ctx, output};
use crate::error::Failure;
use crate::ops::fsck;
use crate::store::check::Report;

/// Verify the registry: re-hash every object, parse every manifest, walk every tree
///
/// Exits 1 and names each bad file when anything is wrong: objects missing, corrupt or
/// of another size than their trees declare, records that do not parse or hold
/// impossible values, trees over the limits of docs/threat-model.md, links a pull
/// would refuse, stage chains that are broken or have lost their HEAD, symlinks, FIFOs
/// and devices inside the registry. What a killed command left (temp folders and locks
/// of processes that are gone, which the next command that writes removes) is listed
/// but is not an error.
///
/// With --restore-head MODEL, instead points the lost HEAD of MODEL at its newest stage
/// state (the one with the highest number that no other state follows), or at the
/// state --state names when the history forked.
///
/// With --repair, takes each damaged object out of the pack that holds it (the pack's
/// other objects stay): it then counts as missing, and comes back with a push of a
/// folder holding its content or `mreg sync NAME --recheck`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg fsck
  mreg fsck --json | jq '.problems[].path'
  mreg fsck --restore-head churn
  mreg fsck --restore-head churn --state 3f2a9c
  mreg fsck --repair")]
pub struct FsckArgs {
    /// Point the lost HEAD of MODEL at its newest stage state, and check nothing
    #[arg(long, value_name = "MODEL")]
    restore_head: Option<String>,
    /// With --restore-head: the state to point HEAD at (a prefix of its id)
    #[arg(long, value_name = "ID", requires = "restore_head")]
    state: Option<String>,
    /// Take each object that does not match its id out of its pack (the pack's other
    /// objects stay), so that it counts as missing until pushed or synced again
    #[arg(long, conflicts_with = "restore_head")]
    repair: bool,
}

/// Runs `mreg fsck`.
pub fn run(ctx: &Ctx, args: &FsckArgs) -> Result<()> {
    let reg = ctx.registry()?;
    if let Some(model) = &args.restore_head {
        let restored = fsck::restore_head(&reg, model, args.state.as_deref())?;
        return ctx.out.emit(&restored, String::new).map(|()| {
            ctx.out.status(&format!(
                "Restored the HEAD of {}: it names state {} (move {}, {} by {}).",
                restored.model,
                restored.state.short(),
                restored.number,
                restored.time,
                restored.actor
            ));
        });
    }
    if args.repair {
        let repaired = fsck::repair(&reg, std::time::Duration::from_secs(60))?;
        return ctx.out.emit(&repaired, String::new).map(|()| {
            ctx.out.status(&if repaired.dropped.is_empty() {
                "No object in a pack is damaged; nothing to repair.".to_owned()
            } else {
                format!(
                    "Took {} out of their packs; they now count as missing: push the folders holding them again, or `mreg sync NAME --recheck` from a registry holding them, then `mreg fsck`.",
                    output::count(repaired.dropped.len() as u64, "damaged object")
                )
            });
        });
    }
    let report = fsck::fsck(&reg, &ctx.out.progress())?;
    let printed = ctx.out.emit(&report, || {
        let lines: Vec<String> = report
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.path.display(), p.message))
            .collect();
        lines.join("\n")
    });
    output::after_print(printed, || tell(ctx, &report))
}

/// Says what fsck found: a status line, or the failure that exits 1.
fn tell(ctx: &Ctx, report: &Report) -> Result<()> {
    if !report.leftovers.is_empty() {
        let shown = 10;
        let mut text = format!(
            "{} left by interrupted commands (harmless: the next command that writes removes temp files and locks; the rest is safe to delete):",
            output::count(report.leftovers.len() as u64, "item")
        );
        for path in report.leftovers.iter().take(shown) {
            text.push_str("\n  ");
            text.push_str(&path.display().to_string());
        }
        if report.leftovers.len() > shown {
            let more = report.leftovers.len() - shown;
            text.push_str("\n  and ");
            text.push_str(&more.to_string());
            text.push_str(" more");
        }
        ctx.out.status(&text);
    }
    if !report.unfinished_removals.is_empty() {
        ctx.out.status(&format!(
            "The removal of {} was recorded but left unfinished by an interrupted command; the next `mreg gc` or stage move of the model finishes it.",
            report.unfinished_removals.join(", ")
        ));
    }
    if !report.removed_runs_in_use.is_empty() {
        ctx.out.status(&format!(
            "Note: removed runs that surviving versions came from: {}. Their records and stored data are kept as those versions' evidence; remove the versions too to let them go.",
            report.removed_runs_in_use.join("; ")
        ));
    }
    if let Some(amount) = report.reclaimable.as_ref().filter(|a| a.count > 0) {
        ctx.out.status(&format!(
            "Note: {} ({}) no surviving version, stage or run holds; `mreg gc` frees them.",
            output::count(amount.count, "item"),
            output::bytes(amount.bytes)
        ));
    }
    if report.problems.is_empty() {
        ctx.out.status(&format!(
            "Checked {} ({}) and {}: all good.",
            output::count(report.objects, "object"),
            output::bytes(report.bytes),
            output::count(report.manifests, "manifest")
        ));
        Ok(())
    } else {
        Err(Failure::error(format!(
            "fsck found {}",
            output::count(report.problems.len() as u64, "problem")
        ))
        .hint(
            "each line above names a bad file and what to do. A missing or corrupt object \
             (delete a corrupt object file first, or for one in a pack run `mreg fsck --repair`) comes \
             back from a remote holding it with \
             `mreg sync NAME --recheck`, or when a folder holding its content is pushed \
             again (`mreg push DIR --model NAME`; the same content records no new version)",
        )
        .into())
    }
}
