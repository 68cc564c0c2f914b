//! Running a training command as a run: its record created first, the command run as
//! a child that logs and pushes into it, and how it ended recorded last.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use serde::Serialize;

use super::inputs::{self, Inputs};
use super::record;
use crate::clock;
use crate::id::RunId;
use crate::lineage;
use crate::manifest::RunRecord;
use crate::manifest::run::{End, Status};
use crate::names;
use crate::store::{Progress, Registry};

/// What `mreg run` is asked to run.
pub struct Request<'a> {
    /// The experiment the run belongs to.
    pub experiment: &'a str,
    /// A name for the run.
    pub name: Option<&'a str>,
    /// Params, tags, data inputs and parents to record at the start.
    pub inputs: &'a Inputs,
    /// The command and its arguments.
    pub argv: &'a [String],
    /// The folder the run starts in.
    pub cwd: &'a Path,
}

/// How the child is started.
pub struct Child {
    /// Whether the command's own mreg calls are quiet (`MREG_QUIET`).
    pub quiet: bool,
    /// Whether the command's stdout goes to stderr, leaving stdout to mreg's JSON.
    pub stdout_to_stderr: bool,
}

/// A run whose record is published and whose command has not run yet.
pub struct Started {
    /// The record as published.
    pub record: RunRecord,
    /// Where the run's id was handed to the CI job's later steps, or why it could not be
    /// ([`export_to_ci`]); `None` outside a CI that offers it.
    pub exported: Option<Result<String, String>>,
    began_at: SystemTime,
}

/// Returns how a run ended, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The run.
    pub run: RunId,
    /// Its experiment.
    pub experiment: String,
    /// How it ended.
    pub status: Status,
    /// The command's exit code, when it exited (`null` otherwise).
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did (`null` otherwise).
    pub signal: Option<String>,
    /// Wall-clock seconds it ran.
    pub duration_s: f64,
}

/// Returns how a run ended: its end event, and the exit code to leave with.
pub struct Ended {
    /// What the end event records.
    pub end: End,
    /// The exit code a shell would give: the command's, or 128+N for signal N.
    pub code: u8,
    /// The outcome for `--json`.
    pub outcome: Outcome,
}

/// Checks the request and publishes the run's first record: params, tags, data inputs
/// and parents, source and environment. `warn` hears of inputs left out.
pub fn start(
    reg: &Registry,
    request: &Request,
    progress: &dyn Progress,
    warn: &mut dyn FnMut(String),
) -> Result<Started> {
    let began_at = clock::now()?;
    let start = clock::format_time_ms(began_at);
    // Held while the run's first record is made, not while its command runs.
    let _writing = reg.writing()?;
    let add = inputs::collect(reg, request.inputs, &start, progress, warn)?;
    let record = record::start_record(
        request.cwd,
        &lineage::mask_text(request.experiment),
        request.name.map(lineage::mask_text),
        start,
        Some(request.argv),
    );
    let record = record::create_with(reg, record, add, request.cwd)?;
    let exported = export_to_ci(&record.id, &lineage::process_env);
    Ok(Started {
        record,
        exported,
        began_at,
    })
}

/// Hands the run's id to the later steps of the CI job, where the CI offers a way:
/// in GitHub Actions, a `MREG_RUN_ID=ID` line appended to the file `GITHUB_ENV` names,
/// so a later step's `mreg push` or `mreg log` links to this run. Returns where it went,
/// or why it could not; `None` outside such a CI.
fn export_to_ci(
    id: &RunId,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Option<Result<String, String>> {
    use std::io::Write as _;
    // A run inside another (`mreg run -- make train`, whose Makefile runs `mreg run`)
    // leaves the outer run, the one the step wrapped, to the later steps.
    if getenv("GITHUB_ACTIONS").as_deref() != Some("true")
        || getenv("MREG_RUN_ID").is_some_and(|v| !v.is_empty())
    {
        return None;
    }
    let path = getenv("GITHUB_ENV").filter(|p| !p.is_empty())?;
    // Only a regular file: opening a FIFO would wait for a reader.
    if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
        return Some(Err(format!(
            "GITHUB_ENV ({path}) is not a file this job can append to"
        )));
    }
    let written = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| {
            // A step that wrote its last line without a newline would swallow ours.
            let len = file.metadata()?.len();
            let mut last = [b'\n'];
            if len > 0 {
                use std::io::{Read as _, Seek as _};
                file.seek(std::io::SeekFrom::Start(len - 1))?;
                file.read_exact(&mut last)?;
            }
            let lead = if last[0] == b'\n' { "" } else { "\n" };
            writeln!(file, "{lead}MREG_RUN_ID={id}")
        });
    Some(match written {
        Ok(()) => Ok(format!("GITHUB_ENV ({path})")),
        Err(err) => Err(format!(
            "appending MREG_RUN_ID to GITHUB_ENV ({path}): {err}"
        )),
    })
}

/// Checks the experiment and run names before anything is read or written.
pub fn check_names(experiment: &str, name: Option<&str>) -> Result<()> {
    names::check_label("--experiment", experiment)?;
    if let Some(name) = name {
        names::check_label("--name", name)?;
    }
    Ok(())
}

/// Runs the command of a started run to its end, then records how it ended. The child
/// has `MREG_RUN_ID` and `MREG_REGISTRY` in its environment; SIGTERM and SIGHUP sent to
/// this process are passed on to it.
pub fn execute(reg: &Registry, started: &Started, argv: &[String], child: &Child) -> Result<Ended> {
    let id = &started.record.id;
    let signals = Signals::register()?;
    let began = Instant::now();
    let ended = supervise(reg.spec(), child, id, argv, &signals);
    let duration_s = began.elapsed().as_secs_f64();
    let time = clock::format_time_ms(started.began_at + Duration::from_secs_f64(duration_s));
    let end = match ended {
        Ok(status) => end_of(status, signals.received(), &time, duration_s),
        Err(spawn_error) => End {
            status: Status::Failed,
            time,
            duration_s,
            exit_code: Some(spawn_error.exit_code),
            signal: None,
            received: None,
            error: Some(spawn_error.message.clone()),
        },
    };
    record::finish(reg, id, end.clone())
        .with_context(|| format!("recording the end of run {id}"))?;
    let code = exit_code(&end);
    let outcome = Outcome {
        run: id.clone(),
        experiment: started.record.experiment.clone(),
        status: end.status,
        exit_code: end.exit_code,
        signal: end.signal.clone(),
        duration_s,
    };
    Ok(Ended { end, code, outcome })
}

struct SpawnError {
    message: String,
    exit_code: i32,
}

/// Runs the command to its end; `signals` passes SIGTERM and SIGHUP on to it. Its mreg
/// calls go to `registry`: for a mirror, the bucket itself, not this machine's copy.
fn supervise(
    registry: OsString,
    child: &Child,
    id: &RunId,
    argv: &[String],
    signals: &Signals,
) -> Result<ExitStatus, SpawnError> {
    let mut command = std::process::Command::new(&argv[0]);
    command.args(&argv[1..]).env("MREG_RUN_ID", id.as_str());
    command.env("MREG_REGISTRY", registry);
    if child.quiet {
        command.env("MREG_QUIET", "1");
    }
    if child.stdout_to_stderr
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
