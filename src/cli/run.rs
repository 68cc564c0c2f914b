//! `mreg run`: run a training command as a child and record it as a run.

use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use super::inputs::{Additions, LineageArgs, ParamArgs};
use super::{Ctx, output, record};
use crate::clock;
use crate::manifest::run::{End, Status};
use crate::manifest::{RunEvent, RunId};
use crate::store::{Registry, runs};

/// Run a command and record it as a run: params, source, environment, exit code
///
/// The command runs as a child with MREG_RUN_ID and MREG_REGISTRY in its environment,
/// so `mreg log` and `mreg push` called from it record into this run. mreg exits with
/// the command's exit code (128+N when a signal N ended it). Ctrl-C reaches the command
/// as usual and the run is recorded as interrupted; SIGTERM and SIGHUP sent to mreg are
/// passed on to the command. With --json the command's stdout goes to stderr, so that
/// stdout holds only mreg's JSON.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg run --experiment churn -- python train.py --lr 0.001
  mreg run --experiment churn --params-file params.yaml --data data/train.csv -- python train.py
  mreg run --name nightly --tag team=growth --parent churn@3 -- ./finetune.sh

Inside the command:
  mreg log --metric loss=0.41 --step 3
  mreg push ./out --model churn            # links churn@N to this run")]
pub struct RunArgs {
    /// Experiment the run belongs to
    #[arg(long, env = "MREG_EXPERIMENT", default_value = "default")]
    experiment: String,
    /// A name for the run
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

#[derive(Serialize)]
struct Outcome {
    run: RunId,
    experiment: String,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<String>,
    duration_s: f64,
}

/// Runs `mreg run` and returns the exit code to leave with: the command's.
pub fn run(ctx: &Ctx, args: &RunArgs) -> Result<u8> {
    crate::names::check_label("--experiment", &args.experiment)?;
    if let Some(name) = &args.name {
        crate::names::check_label("--name", name)?;
    }
    let reg = ctx.registry()?;
    let started_at = clock::now()?;
    let start = clock::format_time_ms(started_at);
    let mut add = Additions::default();
    args.params.collect(&mut add)?;
    args.lineage.collect(ctx, &reg, &mut add)?;
    let record = record::start_record(
        ctx,
        &args.experiment,
        args.name.clone(),
        start,
        Some(&args.command),
    );
    let record = record::create_with(&reg, record, add)?;
    let id = record.id.clone();
    ctx.out.status(&format!(
        "Started run {id} (experiment {}): {}",
        record.experiment,
        args.command
            .iter()
            .map(|w| output::shell_word(w))
            .collect::<Vec<_>>()
            .join(" ")
    ));

    let signals = Signals::register()?;
    let began = Instant::now();
    let ended = supervise(ctx, &reg, &id, &args.command, &signals);
    let duration_s = began.elapsed().as_secs_f64();
    let end = match ended {
        Ok(status) => end_of(
            status,
            signals.received(),
            &clock::format_time_ms(started_at + Duration::from_secs_f64(duration_s)),
            duration_s,
        ),
        Err(spawn_error) => End {
            status: Status::Failed,
            time: clock::format_time_ms(started_at + Duration::from_secs_f64(duration_s)),
            duration_s,
            exit_code: Some(spawn_error.exit_code),
            signal: None,
            received: None,
            error: Some(spawn_error.message.clone()),
        },
    };
    let mut event = RunEvent::new(id.clone(), end.time.clone(), clock::actor());
    event.end = Some(end.clone());
    runs::append(&reg, &event).with_context(|| format!("recording the end of run {id}"))?;

    let code = exit_code(&end);
    let how = match (&end.error, &end.signal, end.exit_code) {
        (Some(error), _, _) => format!("could not start its command: {error}"),
        (None, Some(signal), _) => format!("ended by {signal}"),
        (None, None, Some(code)) => format!("exit code {code}"),
        (None, None, None) => "no exit code".to_owned(),
    };
    let line = format!(
        "Run {id} {} after {} ({how}).",
        end.status.as_str(),
        output::seconds(duration_s)
    );
    if end.status == Status::Finished {
        ctx.out.status(&line);
    } else {
        ctx.out.warn(&line);
    }
    let outcome = Outcome {
        run: id,
        experiment: record.experiment,
        status: end.status,
        exit_code: end.exit_code,
        signal: end.signal,
        duration_s,
    };
    if ctx.out.is_json() {
        ctx.out.emit(&outcome, String::new)?;
    }
    Ok(code)
}

struct SpawnError {
    message: String,
    exit_code: i32,
}

/// Runs the command to its end; `signals` passes SIGTERM and SIGHUP on to it.
fn supervise(
    ctx: &Ctx,
    reg: &Registry,
    id: &RunId,
    argv: &[String],
    signals: &Signals,
) -> Result<ExitStatus, SpawnError> {
    let mut command = std::process::Command::new(&argv[0]);
    command.args(&argv[1..]).env("MREG_RUN_ID", id.as_str());
    // The child's mreg calls go where this one does: to the bucket itself, not to this
    // machine's mirror of it.
    command.env("MREG_REGISTRY", reg.spec());
    if ctx.out.is_quiet() {
        command.env("MREG_QUIET", "1");
    }
    if ctx.out.is_json()
        && let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned()
    {
        command.stdout(Stdio::from(fd));
    }
    let mut child = command.spawn().map_err(|err| {
        let not_found = err.kind() == std::io::ErrorKind::NotFound;
        SpawnError {
            message: if not_found {
                format!("{}: no such command; is it installed and on PATH?", argv[0])
            } else {
                format!("{}: {err}", argv[0])
            },
            exit_code: if not_found { 127 } else { 126 },
        }
    })?;
    signals.child.store(child.id() as i32, Ordering::SeqCst);
    // A SIGTERM or SIGHUP that came before the command started is passed on now.
    if let Some(sig) = signals.pending_for_child() {
        let _ = rustix::process::kill_process(rustix::process::Pid::from_child(&child), sig);
    }
    let status = child.wait().map_err(|err| SpawnError {
        message: format!("waiting for {}: {err}", argv[0]),
        exit_code: 1,
    });
    signals.child.store(0, Ordering::SeqCst);
    status
}

/// Returns how a run ended, from its command's exit status.
fn end_of(status: ExitStatus, received: Option<String>, time: &str, duration_s: f64) -> End {
    let signal = status.signal();
    let code = status.code();
    let run_status = match (code, signal) {
        (Some(0), _) => Status::Finished,
        (_, Some(sig)) if [libc_sig::INT, libc_sig::TERM, libc_sig::HUP].contains(&sig) => {
            Status::Interrupted
        }
        (_, Some(_)) => Status::Killed,
        _ if received.is_some() => Status::Interrupted,
        _ => Status::Failed,
    };
    End {
        status: run_status,
        time: time.to_owned(),
        duration_s,
        exit_code: code,
        signal: signal.map(signal_name),
        received,
        error: None,
    }
}

/// Returns the exit code a shell would give: the command's, or 128+N for signal N.
fn exit_code(end: &End) -> u8 {
    if let Some(code) = end.exit_code {
        return u8::try_from(code & 0xff).unwrap_or(1);
    }
    let sig = end
        .signal
        .as_deref()
        .and_then(|name| libc_sig::ALL.iter().find(|(_, n)| *n == name))
        .map_or(0, |(num, _)| *num);
    u8::try_from(128 + sig).unwrap_or(1)
}

/// Returns `SIGKILL` for 9, `signal 42` for an unnamed one.
fn signal_name(sig: i32) -> String {
    libc_sig::ALL
        .iter()
        .find(|(num, _)| *num == sig)
        .map_or_else(|| format!("signal {sig}"), |(_, name)| (*name).to_owned())
}

/// Signal numbers, as Linux numbers them.
mod libc_sig {
    pub const HUP: i32 = 1;
    pub const INT: i32 = 2;
    pub const TERM: i32 = 15;
    pub const ALL: [(i32, &str); 12] = [
        (1, "SIGHUP"),
        (2, "SIGINT"),
        (3, "SIGQUIT"),
        (4, "SIGILL"),
        (6, "SIGABRT"),
        (7, "SIGBUS"),
        (8, "SIGFPE"),
        (9, "SIGKILL"),
        (11, "SIGSEGV"),
        (13, "SIGPIPE"),
        (14, "SIGALRM"),
        (15, "SIGTERM"),
    ];
}

/// The signals `mreg run` catches while its command runs, so that it lives to record
/// how the run ended. SIGINT is only noted: a terminal's Ctrl-C reaches the whole
/// process group, the command included. SIGTERM and SIGHUP, usually sent to mreg
/// alone (a cancelled CI job, a closed session), are passed on to the command.
struct Signals {
    last: Arc<AtomicI32>,
    child: Arc<AtomicI32>,
}

impl Signals {
    fn register() -> Result<Signals> {
        let last = Arc::new(AtomicI32::new(0));
        let child = Arc::new(AtomicI32::new(0));
        let mut incoming =
            signal_hook::iterator::Signals::new([libc_sig::INT, libc_sig::TERM, libc_sig::HUP])
                .context("installing signal handlers")?;
        let (seen, target) = (Arc::clone(&last), Arc::clone(&child));
        std::thread::spawn(move || {
            for sig in incoming.forever() {
                seen.store(sig, Ordering::SeqCst);
                let pid = rustix::process::Pid::from_raw(target.load(Ordering::SeqCst));
                let forward = match sig {
                    libc_sig::TERM => Some(rustix::process::Signal::TERM),
                    libc_sig::HUP => Some(rustix::process::Signal::HUP),
                    _ => None,
                };
                if let (Some(pid), Some(forward)) = (pid, forward) {
                    let _ = rustix::process::kill_process(pid, forward);
                }
            }
        });
        Ok(Signals { last, child })
    }

    /// Returns the signal to pass on to a command that has just started, if SIGTERM
    /// or SIGHUP arrived before it did.
    fn pending_for_child(&self) -> Option<rustix::process::Signal> {
        match self.last.load(Ordering::SeqCst) {
            libc_sig::TERM => Some(rustix::process::Signal::TERM),
            libc_sig::HUP => Some(rustix::process::Signal::HUP),
            _ => None,
        }
    }

    /// Returns the name of the last signal received, if any.
    fn received(&self) -> Option<String> {
        match self.last.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(signal_name(sig)),
        }
    }
}
