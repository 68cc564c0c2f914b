//! Moving stages: promotions with their gates and policy, and rollbacks.
//!
//! Every move reads the model's newest stage state, decides, writes a new state naming
//! the one it read, and swaps `HEAD` to it only if `HEAD` still names the state read
//! (see [`crate::store::stages`]). When another writer got there first, the decision is
//! made again against what that writer left, a bounded number of times.

pub mod promote;
pub mod remove;
pub mod rollback;
pub mod subject;

use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::error::Failure;
use crate::gate::{self, Gate};
use crate::id::StateId;
use crate::lineage;
use crate::manifest::state::CheckRecord;
use crate::manifest::{StageState, VersionRecord};
use crate::store::config::StagePolicy;
use crate::store::lock::Holder;
use crate::store::stages::{self, Swap};
use crate::store::{Registry, models, read};

pub use subject::{Candidate, VersionFields};

/// How many times a move is decided again after losing a race, before giving up.
pub const MAX_ATTEMPTS: u32 = 20;

/// Returns who moves a stage, when, from where: the part of a state the caller knows.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// RFC 3339 time, UTC.
    pub time: String,
    /// `MREG_ACTOR`, else `user@host`.
    pub actor: String,
    /// A link to the CI job, when running in one.
    pub ci_job: Option<String>,
    /// The command line, secrets masked.
    pub command: String,
    /// How long to wait for another writer's lock.
    pub wait: Duration,
}

impl Stamp {
    /// Returns the stamp of a stage move made by this process: now, who, which CI job,
    /// the masked command line, and how long to wait for the lock.
    pub fn now(wait_s: f64) -> Result<Stamp> {
        if !(0.0..=86_400.0).contains(&wait_s) {
            return Err(Failure::usage(format!(
                "--wait {wait_s} is not a number of seconds between 0 and 86400"
            ))
            .into());
        }
        let command = lineage::this_command();
        Ok(Stamp {
            time: crate::clock::format_time(crate::clock::now()?),
            actor: crate::clock::actor(),
            ci_job: lineage::ci_job().and_then(|ci| ci.job_url),
            command,
            wait: Duration::from_secs_f64(wait_s),
        })
    }
}

/// Returns what one decision leads to.
pub(crate) enum Step<T> {
    /// Write this state (its `number` and `previous` are filled in), then report `T`.
    Write(Box<StageState>, T),
    /// Write nothing and report `T`.
    Stop(T),
}

/// Returns what a transaction did: the decision's report, the state written if any,
/// and how many races it lost on the way.
pub(crate) struct Done<T> {
    pub report: T,
    pub written: Option<(StateId, u64)>,
    pub retries: u32,
}

/// Decides and writes one state of `model`, compare-and-swap, retrying lost races.
///
/// `decide` gets the newest state (or `None`) and returns a [`Step`]. It is called
/// again after every lost race, so it must read everything it needs through its
/// argument or afresh.
pub(crate) fn transact<T>(
    reg: &Registry,
    model: &str,
    stamp: &Stamp,
    mut decide: impl FnMut(Option<&StageState>) -> Result<Step<T>>,
) -> Result<Done<T>> {
    let holder = Holder::this_process(stamp.command.clone(), stamp.time.clone());
    let deadline = Instant::now() + stamp.wait;
    for attempt in 0..MAX_ATTEMPTS {
        let current = stages::current(reg, model)?;
        remove::finish_pending(reg, current.as_ref())?;
        let (head, state) = match &current {
            Some((id, state)) => (Some(id), Some(state)),
            None => (None, None),
        };
        let (mut new, report) = match decide(state)? {
            Step::Stop(report) => {
                return Ok(Done {
                    report,
                    written: None,
                    retries: attempt,
                });
            }
            Step::Write(new, report) => (new, report),
        };
        new.previous = head.cloned();
        new.number = state.map_or(1, |s| s.number + 1);
        crate::crash::pause("move-decided");
        let wait = deadline.saturating_duration_since(Instant::now());
        match stages::commit(reg, head, &new, &holder, wait)? {
            Swap::Done(id) => {
                return Ok(Done {
                    report,
                    written: Some((id, new.number)),
                    retries: attempt,
                });
            }
            Swap::Moved => backoff(attempt),
        }
    }
    Err(Failure::conflict(format!(
        "the stages of {model} kept moving: {MAX_ATTEMPTS} attempts in a row found that another \
         command had moved them first"
    ))
    .hint("re-run the command; `mreg history` shows who is moving them")
    .into())
}

/// Sleeps a little, more after each lost race, spread so racing writers drift apart.
fn backoff(attempt: u32) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let spread = u64::from(nanos % 1000) * u64::from(attempt.min(6) + 1);
    thread::sleep(Duration::from_micros(200 + spread));
}

/// Returns a new state carrying `current`'s stages and the stamp, to be filled in.
pub(crate) fn new_state(
    current: Option<&StageState>,
    model: &str,
    stage: &str,
    version: u64,
    action: crate::manifest::state::Action,
    stamp: &Stamp,
) -> StageState {
    StageState {
        format: StageState::format_for(action),
        model: model.to_owned(),
        number: 0,
        previous: None,
        action,
        version,
        stage: stage.to_owned(),
        time: stamp.time.clone(),
        actor: stamp.actor.clone(),
        ci_job: stamp.ci_job.clone(),
        command: Some(stamp.command.clone()),
        forced: false,
        downgrade: false,
        reason: None,
        stages: current.map(|s| s.stages.clone()).unwrap_or_default(),
        moves: Vec::new(),
        checks: Vec::new(),
        removed: Vec::new(),
        emptied: Vec::new(),
    }
}

/// The source of gates given with `--gate` or as `mreg gate` arguments.
pub const COMMAND_LINE: &str = "command line";

/// Returns a gate to evaluate and where it came from.
#[derive(Clone)]
pub struct SourcedGate {
    /// The gate.
    pub gate: Gate,
    /// [`COMMAND_LINE`], or `policy of STAGE`.
    pub source: String,
}

impl SourcedGate {
    /// Parses gates that all come from `source`; a syntax error names the gate.
    pub fn parse_all(texts: &[String], source: &str) -> Result<Vec<SourcedGate>> {
        texts
            .iter()
            .map(|text| {
                Ok(SourcedGate {
                    gate: Gate::parse(text)?,
                    source: source.to_owned(),
                })
            })
            .collect()
    }
}

/// Returns the gates a stage's policy adds, parsed.
pub fn policy_gates(stage: &str, policy: &StagePolicy) -> Result<Vec<SourcedGate>> {
    SourcedGate::parse_all(&policy.gates, &format!("policy of {stage}"))
}

/// Evaluates a stage's required previous stage (when `from` is given) and every gate
/// against `candidate`, in that order.
pub fn evaluate(
    reg: &Registry,
    candidate: &VersionFields,
    state: Option<&StageState>,
    from: Option<(&str, &str)>,
    gates: &[SourcedGate],
) -> Vec<CheckRecord> {
    let mut checks = Vec::new();
    let record = candidate.record();
    if let Some((stage, required)) = from {
        checks.push(from_check(record, state, stage, required));
    }
    let subject = Candidate::new(reg, candidate, state);
    for sourced in gates {
        let check = gate::evaluate(&sourced.gate, &subject);
        checks.push(CheckRecord {
            gate: check.gate,
            source: sourced.source.clone(),
            required: check.required,
            threshold: check.threshold,
            against: check.against,
            actual: check.actual,
            passed: check.passed,
            why: check.why,
        });
    }
    checks
}

/// Returns the check of a policy's `from`: the candidate must be what `from` holds.
fn from_check(
    record: &VersionRecord,
    current: Option<&StageState>,
    stage: &str,
    required: &str,
) -> CheckRecord {
    let holder = current.and_then(|s| s.holder(required));
    let passed = holder == Some(record.version);
    let why = match holder {
        _ if passed => None,
        Some(v) => Some(format!(
            "{stage} takes only the version {required} holds, which is {}@{v}, not {}",
            record.model,
            record.reference()
        )),
        None => Some(format!(
            "{stage} takes only the version {required} holds, and {required} is empty"
        )),
    };
    CheckRecord {
        gate: format!("from {required}"),
        source: format!("policy of {stage}"),
        required: format!("{required} holds {}", record.reference()),
        threshold: None,
        against: holder.map(|v| format!("{}@{v}", record.model)),
        actual: holder.map(|v| crate::manifest::Value::Str(format!("{}@{v}", record.model))),
        passed,
        why,
    }
}

/// Refuses a version that pull would refuse: a tree graph over the walk limits or
/// disagreeing with its record, or objects the registry lacks.
pub fn require_objects(reg: &Registry, record: &VersionRecord) -> Result<()> {
    let missing = read::missing_below(reg, record.tree);
    if missing.is_empty() {
        models::graph(reg, record).map_err(|err| {
            Failure::error(format!(
                "{} cannot take a stage: {err:#}",
                record.reference()
            ))
            .hint("`mreg fsck` lists every problem of the registry")
        })?;
        return Ok(());
    }
    let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
    let more = if missing.len() > shown.len() {
        format!(" and {} more", missing.len() - shown.len())
    } else {
        String::new()
    };
    Err(Failure::error(format!(
        "{} cannot take a stage: the registry lacks the content of {}{more}",
        record.reference(),
        shown.join(", ")
    ))
    .hint("push the model folder again to restore it, or fetch it from a remote; `mreg fsck` lists every problem")
    .into())
}
