//! `mreg completions`: the shell completion script, from the same clap definitions as
//! `--help`.

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, Ctx};
use crate::error::Failure;

/// Print the completion script for a shell
///
/// The script completes commands, flags and their fixed values (--color, shells); it
/// comes from the same definitions as --help, so it always matches this mreg.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg completions bash > ~/.local/share/bash-completion/completions/mreg
  mreg completions zsh > ~/.zfunc/_mreg        # with fpath+=(~/.zfunc) before compinit
  mreg completions fish > ~/.config/fish/completions/mreg.fish
  source <(mreg completions bash)             # this shell only")]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    #[arg(value_enum)]
    shell: Shell,
}

/// Runs `mreg completions`.
pub fn run(ctx: &Ctx, args: &CompletionsArgs) -> Result<()> {
    if ctx.out.is_json() {
        return Err(
            Failure::usage("completions print a shell script and have no JSON form")
                .hint("run it without --json")
                .into(),
        );
    }
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "mreg", &mut script);
    ctx.out.line(String::from_utf8_lossy(&script).trim_end())
}
