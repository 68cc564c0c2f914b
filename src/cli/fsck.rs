//! `mreg fsck`: verify every object and manifest in the registry.

use anyhow::Result;

use super::{Ctx, output};
use crate::error::Failure;
use crate::ops::fsck;
use crate::store::Registry;
use crate::store::check::Report;

/// Verify the registry: re-hash every object, parse every manifest, walk every tree
///
/// Exits 1 and names each bad file when anything is wrong. Temp files left by an
/// interrupted command are reported but are not errors.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  mreg fsck\n  mreg fsck --json | jq '.problems[].path'")]
pub struct FsckArgs {}

/// Runs `mreg fsck`.
pub fn run(ctx: &Ctx, _args: &FsckArgs) -> Result<()> {
    let reg = ctx.registry()?;
    let report = fsck::fsck(&reg, &ctx.out.progress())?;
    let printed = ctx.out.emit(&report, || {
        let lines: Vec<String> = report
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.path.display(), p.message))
            .collect();
        lines.join("\n")
    });
    output::after_print(printed, || tell(ctx, &reg, &report))
}

/// Says what fsck found: a status line, or the failure that exits 1.
fn tell(ctx: &Ctx, reg: &Registry, report: &Report) -> Result<()> {
    if !report.leftovers.is_empty() {
        ctx.out.status(&format!(
            "{} left by interrupted commands in {} (safe to delete).",
            output::count(report.leftovers.len() as u64, "temp file"),
            reg.tmp_dir().display()
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
            "each line above names a bad file and what to do. A missing object comes back \
             when a folder holding its content is pushed again; delete a corrupt object file \
             first",
        )
        .into())
    }
}
