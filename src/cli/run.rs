//! `mreg run`: run a training command as a child and record it as a run.

use anyhow::Result;

use super::args::{self, LineageArgs, ParamArgs};
use super::{Ctx, output};
use crate::manifest::run::Status;
use crate::ops::run::{self, Child, Request};

/// Run a command and record it as a run: params, source, environment, exit code
///
/// The command runs as a child with MREG_RUN_ID and MREG_REGISTRY in its environment,
/// so `mreg log` and `mreg push` called from it record into this run. In GitHub Actions
/// MREG_RUN_ID also goes to the job's later steps (through GITHUB_ENV), so a separate
/// `mreg push` step links to this run too; elsewhere, a later step can name it with
/// `--run last` (the newest run `mreg run` started from the same work tree and commit). mreg exits with
/// the command's exit code (128+N when a signal N ended it). Ctrl-C reaches the command
/// as usual and the run is recorded as interrupted; SIGTERM and SIGHUP sent to mreg are
/// passed on to the command. With --json the command's stdout goes to stderr, so that
/// stdout holds only mreg's JSON.
///
/// The command line is recorded with its secrets masked, also inside an `sh -c` script:
/// the values of secret-looking flags and variables (--hf-token X, --key X, HF_TOKEN=X),
/// Authorization, Cookie and API-key headers, Bearer tokens, and URL credentials; so
/// are credentials in --name and --experiment.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg run --experiment churn -- python train.py --lr 0.001
  mreg run --experiment churn --params-file params.yaml --data data/train.csv -- python train.py
  mreg run --name nightly --tag team=growth --parent churn@3 -- ./finetune.sh

Inside the command:
  mreg log --metric loss=0.41 --step 3
  mreg push ./out --model churn            # links churn@N to this run

In a later CI step (or shell command):
  mreg push ./out --model churn --run last # the newest `mreg run` of this checkout")]
pub struct RunArgs {
    /// Experiment the run belongs to; credentials in it are masked, as in --name
    #[arg(long, env = "MREG_EXPERIMENT", default_value = "default")]
    experiment: String,
    /// A name for the run; credentials in it (URL passwords, tokens, secret KEY=VALUE)
    /// are masked
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    params: ParamArgs,
    #[command(flatten)]
    lineage: LineageArgs,
    /// The command and its arguments (after --)
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true)]
    command: Vec<String>,
}

/// Runs `mreg run` and returns the exit code to leave with: the command's.
pub fn run(ctx: &Ctx, args: &RunArgs) -> Result<u8> {
    run::check_names(&args.experiment, args.name.as_deref())?;
    let reg = ctx.registry()?;
    args::warn_masked(ctx, "--experiment", Some(&args.experiment));
    args::warn_masked(ctx, "--name", args.name.as_deref());
    let inputs = args::inputs(&args.params, None, Some(&args.lineage), None);
    let request = Request {
        experiment: &args.experiment,
        name: args.name.as_deref(),
        inputs: &inputs,
        argv: &args.command,
        cwd: ctx.cwd(),
    };
    let started = run::start(&reg, &request, &ctx.out.progress(), &mut |w| {
        ctx.out.warn(&w);
    })?;
    ctx.out.status(&format!(
        "Started run {} (experiment {}): {}",
        started.record.id,
        started.record.experiment,
        // As recorded: the terminal and CI logs see no more secrets than the registry.
        started
            .record
            .command
            .as_ref()
            .map_or(args.command.as_slice(), |c| c.argv.as_slice())
            .iter()
            .map(|w| output::shell_word(w))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    match &started.exported {
        Some(Ok(to)) => ctx.out.status(&format!(
            "MREG_RUN_ID={} goes to the job's later steps through {to}.",
            started.record.id
        )),
        Some(Err(why)) => ctx.out.warn(&format!(
            "later steps of this job will not link to this run: {why}"
        )),
        None => {}
    }
    let child = Child {
        quiet: ctx.out.is_quiet(),
        stdout_to_stderr: ctx.out.is_json(),
    };
    let ended = run::execute(&reg, &started, &args.command, &child)?;
    let end = &ended.end;
    let how = match (&end.error, &end.signal, end.exit_code) {
        (Some(error), _, _) => format!("could not start its command: {error}"),
        (None, Some(signal), _) => format!("ended by {signal}"),
        (None, None, Some(code)) => format!("exit code {code}"),
        (None, None, None) => "no exit code".to_owned(),
    };
    let line = format!(
        "Run {} {} after {} ({how}).",
        started.record.id,
        end.status.as_str(),
        output::seconds(end.duration_s)
    );
    if end.status == Status::Finished {
        ctx.out.status(&line);
    } else {
        ctx.out.warn(&line);
    }
    if ctx.out.is_json() {
        let printed = ctx.out.emit(&ended.outcome, String::new);
        return output::after_print(printed, || Ok(ended.code));
    }
    Ok(ended.code)
}
