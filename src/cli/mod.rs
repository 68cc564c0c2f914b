//! The command line: global flags, the command list, and dispatch.
//!
//! Only this module knows about clap, terminals, color and progress bars.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::remote::sync::Refused;
use crate::store::Registry;

mod args;
mod card;
mod compare;
mod completions;
mod demo;
mod diff;
mod du;
mod export;
mod fsck;
mod gate;
mod gc;
mod history;
mod html_report;
mod import;
mod init;
mod log;
mod ls;
mod man;
mod model;
pub mod output;
mod promote;
mod pull;
mod push;
mod remote;
mod removal;
mod report;
mod rm;
mod rollback;
mod run;
mod runs;
mod show;
mod sign;
mod sync;
mod upgrade;
mod verdict;

use output::Printer;

const AFTER_HELP: &str = "\
Examples:
  mreg init
  mreg run --experiment churn -- python train.py --lr 0.001
  mreg push ./out --model churn --metrics-file eval.json --data data/train.csv
  mreg runs --where 'metrics.acc > 0.8' --sort -metrics.acc
  mreg diff churn@production churn@latest
  mreg compare churn@3 churn@4 churn@5
  mreg ls churn
  mreg promote churn@4 production --gate 'acc>0.85' --gate 'acc>=@production'
  mreg history churn
  mreg pull churn@production --to /srv/model
  mreg push ./out --model churn --json | jq -r .ref
  mreg remote add team s3://ml-models/registry && mreg sync
  mreg ls --registry s3://ml-models/registry

Exit codes: 0 done, 1 error, 2 usage error, 3 a gate did not hold (nothing moved),
4 a conflict (a stage moved under you); `mreg run` exits with its command's code.
The registry is the nearest .mreg folder above the current one, unless --registry
or MREG_REGISTRY names one.";

/// A model registry in one binary: which files, built how, promoted by whom
#[derive(Debug, Parser)]
#[command(name = "mreg", version, about, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Flags every command takes.
#[derive(Debug, clap::Args)]
struct Global {
    /// Registry to use: a folder holding .mreg, the .mreg folder, a file:// URL, or
    /// s3://BUCKET/PREFIX (used directly; see `mreg remote --help` for the AWS settings)
    #[arg(long, global = true, env = "MREG_REGISTRY", value_name = "PATH|URL")]
    registry: Option<String>,
    /// Print machine-readable JSON on stdout instead of text
    #[arg(long, global = true)]
    json: bool,
    /// Print no status lines, only data and errors (`mreg run -q` quiets its command's
    /// mreg calls too, through MREG_QUIET)
    #[arg(
        long,
        short,
        global = true,
        env = "MREG_QUIET",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    quiet: bool,
    /// Never draw progress bars
    #[arg(long, global = true)]
    no_progress: bool,
    /// When to use color: on stderr, and on stdout for diff and compare
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    color: ColorChoice,
}

/// Returns when color is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set
    Auto,
    /// Always
    Always,
    /// Never
    Never,
}

#[derive(Debug, Subcommand)]
enum Command {
    Init(init::InitArgs),
    Run(run::RunArgs),
    Log(log::LogArgs),
    Push(push::PushArgs),
    Pull(pull::PullArgs),
    Ls(ls::LsArgs),
    Promote(promote::PromoteArgs),
    Gate(gate::GateArgs),
    History(history::HistoryArgs),
    Rollback(rollback::RollbackArgs),
    Rm(rm::RmArgs),
    Gc(gc::GcArgs),
    Du(du::DuArgs),
    Runs(runs::RunsArgs),
    Show(show::ShowArgs),
    Diff(diff::DiffArgs),
    Compare(compare::CompareArgs),
    Fsck(fsck::FsckArgs),
    Sign(sign::SignArgs),
    Verify(sign::VerifyArgs),
    Approve(sign::ApproveArgs),
    Remote(remote::RemoteArgs),
    Sync(sync::SyncArgs),
    Clone(sync::CloneArgs),
    Demo(demo::DemoArgs),
    Model(model::ModelArgs),
    Upgrade(upgrade::UpgradeArgs),
    Card(card::CardArgs),
    Export(export::ExportArgs),
    PushOci(export::PushOciArgs),
    Import(import::ImportArgs),
    Report(html_report::ReportArgs),
    Completions(completions::CompletionsArgs),
    Man(man::ManArgs),
}

/// What every command gets: the printer and the way to the registry.
pub struct Ctx {
    /// Where output goes.
    pub out: Printer,
    registry: Option<String>,
    cwd: PathBuf,
    /// Items of a bucket that opening it refused, told at the end of the command.
    refused: std::cell::RefCell<Vec<Refused>>,
}

impl Ctx {
    /// Returns the registry named by `--registry`/`MREG_REGISTRY` or found above the
    /// current folder.
    pub fn registry(&self) -> Result<Registry> {
        let (reg, refused) = crate::ops::open(
            self.registry_spec(),
            &self.cwd,
            Box::new(self.out.progress()),
        )?;
        let out = self.out.clone();
        let reg = reg.with_notice(crate::store::registry::Notice(std::sync::Arc::new(
            move |sentence| out.status(sentence),
        )));
        let mut told = self.refused.borrow_mut();
        for item in refused {
            if !told.contains(&item) {
                told.push(item);
            }
        }
        Ok(reg)
    }

    /// Returns the folder mreg was started in.
    pub fn cwd(&self) -> &std::path::Path {
        &self.cwd
    }

    /// Returns the registry named by `--registry`/`MREG_REGISTRY`, if any.
    pub fn registry_spec(&self) -> Option<&str> {
        self.registry.as_deref().filter(|s| !s.is_empty())
    }
}

/// Runs the parsed command line and returns the exit code to leave with.
pub fn run(cli: Cli) -> Result<u8> {
    let g = cli.global;
    let ctx = Ctx {
        out: Printer::new(g.json, g.quiet, g.no_progress, g.color),
        registry: g.registry,
        cwd: std::env::current_dir().context("reading the current folder")?,
        refused: std::cell::RefCell::new(Vec::new()),
    };
    // A listing (or a count, du) that left out a refused item is not complete: it
    // exits 1.
    let lists = matches!(
        cli.command,
        Command::Ls(_) | Command::Runs(_) | Command::Du(_)
    );
    let code = dispatch(&ctx, cli.command);
    let refused = ctx.refused.take();
    for item in &refused {
        ctx.out.warn(&format!(
            "refused {} on {}: {}",
            item.key, item.on, item.message
        ));
    }
    if !refused.is_empty() {
        ctx.out.hint(
            "the bucket holds items this mreg will not read; everything else is usable, and `mreg fsck` on a clone of the bucket names what is wrong",
        );
    }
    match code {
        Ok(crate::error::EXIT_OK) if lists && !refused.is_empty() => Ok(crate::error::EXIT_ERROR),
        code => code,
    }
}

/// Runs one command.
fn dispatch(ctx: &Ctx, command: Command) -> Result<u8> {
    let done = match command {
        Command::Run(args) => return run::run(ctx, &args),
        Command::Diff(args) => return diff::run(ctx, &args),
        Command::Compare(args) => return compare::run(ctx, &args),
        Command::Remote(args) => return remote::run(ctx, &args),
        Command::Sync(args) => return sync::run(ctx, &args),
        Command::Clone(args) => return sync::clone(ctx, &args),
        Command::Init(args) => init::run(ctx, &args),
        Command::Log(args) => log::run(ctx, &args),
        Command::Runs(args) => runs::run(ctx, &args),
        Command::Push(args) => push::run(ctx, &args),
        Command::Pull(args) => pull::run(ctx, &args),
        Command::Ls(args) => ls::run(ctx, &args),
        Command::Promote(args) => promote::run(ctx, &args),
        Command::Gate(args) => gate::run(ctx, &args),
        Command::History(args) => history::run(ctx, &args),
        Command::Rollback(args) => rollback::run(ctx, &args),
        Command::Rm(args) => rm::run(ctx, &args),
        Command::Gc(args) => gc::run(ctx, &args),
        Command::Du(args) => du::run(ctx, &args),
        Command::Show(args) => show::run(ctx, &args),
        Command::Fsck(args) => fsck::run(ctx, &args),
        Command::Sign(args) => sign::run_sign(ctx, &args),
        Command::Verify(args) => sign::run_verify(ctx, &args),
        Command::Approve(args) => sign::run_approve(ctx, &args),
        Command::Demo(args) => demo::run(ctx, &args),
        Command::Model(args) => model::run(ctx, &args),
        Command::Upgrade(args) => upgrade::run(ctx, &args),
        Command::Card(args) => card::run(ctx, &args),
        Command::Export(args) => export::run_export(ctx, &args),
        Command::PushOci(args) => export::run_push(ctx, &args),
        Command::Import(args) => import::run(ctx, &args),
        Command::Report(args) => html_report::run(ctx, &args),
        Command::Completions(args) => completions::run(ctx, &args),
        Command::Man(args) => man::run(ctx, &args),
    };
    done.map(|()| crate::error::EXIT_OK)
}

/// Prints an error the way every command does: `error: …` and `hint: …` on stderr.
pub fn report_error(err: &anyhow::Error) {
    let color = output::stderr_color(ColorChoice::Auto);
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    // A message may quote a record, which may come from a remote.
    let message = output::visible_lines(&format!("{err:#}"));
    output::to_stderr(&format!("{} {message}", paint("1;31", "error:")));
    if let Some(hint) = crate::error::failure_of(err).and_then(|f| f.hint.as_deref()) {
        let hint = output::visible_lines(hint);
        output::to_stderr(&format!("{} {hint}", paint("1;36", "hint:")));
    }
}
