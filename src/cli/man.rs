//! `mreg man`: the manual pages, from the same clap definitions as `--help`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::{Cli, Ctx};
use crate::error::Failure;

/// Print the manual page, or write one per command to a folder
///
/// The pages come from the same definitions as --help (descriptions, flags, examples),
/// so they always match this mreg. Without --out, mreg(1) goes to stdout; with --out
/// DIR, mreg.1 and one page per command (mreg-push.1, mreg-promote.1, …) are written
/// there, ready for a man1 folder on MANPATH.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg man | man -l -
  mreg man --out ~/.local/share/man/man1 && man mreg-promote")]
pub struct ManArgs {
    /// Write mreg.1 and a page per command into this folder (created if missing)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Runs `mreg man`.
pub fn run(ctx: &Ctx, args: &ManArgs) -> Result<()> {
    if ctx.out.is_json() {
        return Err(
            Failure::usage("man prints manual pages and has no JSON form")
                .hint("run it without --json")
                .into(),
        );
    }
    let command = Cli::command();
    let Some(dir) = &args.out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut page)
            .context("rendering the manual page")?;
        return ctx.out.line(String::from_utf8_lossy(&page).trim_end());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("writing manual pages to {}", dir.display()))?;
    let pages = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".1"))
        .count();
    ctx.out.status(&format!(
        "Wrote {} to {}.",
        super::output::count(pages as u64, "manual page"),
        dir.display()
    ));
    Ok(())
}
