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

/// Returns a page that `man` neither hyphenates nor justifies (`.nh`, `.ad l` after its
/// title): hyphenated flags and stretched examples could not be copied as written.
fn plain_lines(page: &str) -> String {
    let mut out = String::with_capacity(page.len() + 16);
    for line in page.lines() {
        out.push_str(line);
        out.push('\n');
        if line.starts_with(".TH ") {
            out.push_str(".nh\n.ad l\n");
        }
    }
    out
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
        return ctx
            .out
            .line(plain_lines(&String::from_utf8_lossy(&page)).trim_end());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("writing manual pages to {}", dir.display()))?;
    let mut pages = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !(name.starts_with("mreg") && name.ends_with(".1")) {
            continue;
        }
        let page = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        std::fs::write(&path, plain_lines(&page))
            .with_context(|| format!("writing {}", path.display()))?;
        pages += 1;
    }
    ctx.out.status(&format!(
        "Wrote {} to {}.",
        super::output::count(pages as u64, "manual page"),
        dir.display()
    ));
    Ok(())
}
