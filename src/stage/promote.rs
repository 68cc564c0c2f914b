//! Promotion: moving a stage to a version, on the evidence of its gates.
//!
//! The stage's policy is checked first (its required previous stage, then its gates),
//! then the gates of the command line. All must hold, or the promotion is refused and the
//! refusal recorded, unless `--force` with a reason overrides them. When the stage's
//! policy names `replaced_to`, the version it held moves there in the same state.

use anyhow::Result;

use super::{SourcedGate, Stamp, Step, VersionFields, evaluate, new_state, policy_gates};
use crate::error::Failure;
use crate::id::StateId;
use crate::manifest::state::{Action, CheckRecord, Move};
use crate::manifest::{StageState, VersionRecord};
use crate::store::Registry;
use crate::store::config::{Config, StagePolicy};

/// Returns what the stage must hold when the swap is made, from `--expect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The stage must be empty.
    Empty,
    /// The stage must hold this version.
    Version(u64),
}

/// Returns one promotion request.
pub struct Promotion {
    /// The version to promote.
    pub candidate: VersionRecord,
    /// The stage to move.
    pub stage: String,
    /// Gates from the command line.
    pub gates: Vec<SourcedGate>,
    /// Whether failing gates and policy may be overridden; needs `reason`.
    pub force: bool,
    /// Why; recorded.
    pub reason: Option<String>,
    /// What the stage must hold, or the promotion fails at once.
    pub expect: Option<Expect>,
    /// Whether a version older than the holder may be promoted.
    pub allow_downgrade: bool,
    /// Whether to decide only, writing nothing.
    pub dry_run: bool,
    /// The checks of the stage's signing rules (a required signature, approvals),
    /// made by the caller, which knows the keys; recorded with the gates'.
    pub signed: Vec<CheckRecord>,
}

/// Returns how a promotion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The stage moved.
    Moved,
    /// The stage already held the version; nothing was written. The checks were still
    /// evaluated, and the caller reports any that failed.
    Unchanged,
    /// A gate or the policy refused; the refusal was recorded, nothing moved.
    Refused,
    /// Dry run: the stage would move.
    WouldMove,
    /// Dry run: a gate or the policy would refuse.
    WouldRefuse,
}

/// Returns what a promotion did and saw.
#[derive(Debug, Clone)]
pub struct Report {
    /// How it ended.
    pub verdict: Verdict,
    /// The version the stage held before.
    pub from: Option<u64>,
    /// The stages that moved (or would move).
    pub moves: Vec<Move>,
    /// Every check, with its values.
    pub checks: Vec<CheckRecord>,
    /// Whether failing checks were overridden.
    pub forced: bool,
    /// The state written, with its number in the chain.
    pub state: Option<(StateId, u64)>,
    /// How many times another writer moved the stages first.
    pub retries: u32,
}

/// Promotes a version, retrying lost races; see the module docs.
///
/// Fails with a usage error for an unknown stage or `--force` without a reason, a
/// conflict (exit 4) when `--expect` does not hold, when the promotion would move the
/// stage to an older version, or when races keep being lost.
pub fn promote(reg: &Registry, config: &Config, req: &Promotion, stamp: &Stamp) -> Result<Report> {
    config.require_stage(&req.stage)?;
    if req.force && req.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(
            Failure::usage("--force needs --reason TEXT, which is recorded")
                .hint("say why the gates may be skipped: --force --reason 'hotfix for incident 42'")
                .into(),
        );
    }
    super::require_objects(reg, &req.candidate)?;
    let policy = config.policy(&req.stage);
    let mut gates = policy_gates(&req.stage, &policy)?;
    gates.extend_from_slice(&req.gates);
    let decision = Decision {
        reg,
        req,
        fields: VersionFields::load(reg, req.candidate.clone())?,
        policy,
        gates,
        stamp,
    };
    let done = super::transact(reg, &req.candidate.model, stamp, |state| {
        decision.decide(state)
    })?;
    let mut report = done.report;
    report.state = done.written;
    report.retries = done.retries;
    Ok(report)
}

/// What a promotion decides on, read once; [`Decision::decide`] runs for each attempt.
struct Decision<'a> {
    reg: &'a Registry,
    req: &'a Promotion,
    fields: VersionFields,
    policy: StagePolicy,
    gates: Vec<SourcedGate>,
    stamp: &'a Stamp,
}

impl Decision<'_> {
    /// Decides the promotion against the newest state: nothing to do, a refusal to
    /// record, a move, or (dry run) what would happen.
    fn decide(&self, state: Option<&StageState>) -> Result<Step<Report>> {
        let (req, policy) = (self.req, &self.policy);
        let (model, version) = (&req.candidate.model, req.candidate.version);
        super::remove::require_live(self.reg, model, version)?;
        let from = state.and_then(|s| s.holder(&req.stage));
        let required_from = policy.from.as_deref().map(|f| (req.stage.as_str(), f));
        let checks = || {
            let mut checks = evaluate(self.reg, &self.fields, state, required_from, &self.gates);
            checks.extend(req.signed.iter().cloned());
            checks
        };
        if from == Some(version) {
            // Nothing moves, but the gates still answer: a CI step that promotes and
            // relies on the exit code must not pass a version that fails them.
            let checks = checks();
            return Ok(Step::Stop(report(
                Verdict::Unchanged,
                from,
                vec![],
                checks,
                false,
            )));
        }
        check_expect(req, model, from)?;
        let downgrade = from.is_some_and(|held| version < held);
        if downgrade && !req.allow_downgrade && !policy.allow_downgrade {
            return Err(self.backwards(from.unwrap_or_default()));
        }
        let checks = checks();
        let passed = checks.iter().all(|c| c.passed);
        let mut new = new_state(
            state,
            model,
            &req.stage,
            version,
            Action::Promote,
            self.stamp,
        );
        new.reason.clone_from(&req.reason);
        new.checks.clone_from(&checks);
        if !passed && !req.force {
            if req.dry_run {
                return Ok(Step::Stop(report(
                    Verdict::WouldRefuse,
                    from,
                    vec![],
                    checks,
                    false,
                )));
            }
            new.action = Action::Refused;
            return Ok(Step::Write(
                Box::new(new),
                report(Verdict::Refused, from, vec![], checks, false),
            ));
        }
        new.forced = !passed;
        new.downgrade = downgrade;
        new.moves = apply_move(&mut new, &req.stage, version, policy.replaced_to.as_deref());
        let moves = new.moves.clone();
        if req.dry_run {
            return Ok(Step::Stop(report(
                Verdict::WouldMove,
                from,
                moves,
                checks,
                !passed,
            )));
        }
        Ok(Step::Write(
            Box::new(new),
            report(Verdict::Moved, from, moves, checks, !passed),
        ))
    }

    /// Returns the conflict of a promotion that would move the stage to a version older
    /// than `held`, the one it holds.
    fn backwards(&self, held: u64) -> anyhow::Error {
        let req = self.req;
        let (model, version) = (&req.candidate.model, req.candidate.version);
        Failure::conflict(format!(
            "{} holds {model}@{held}, newer than {model}@{version}: this would move {} backwards",
            req.stage, req.stage
        ))
        .hint(format!(
            "to go back on purpose, run `mreg rollback {model} {}` or promote with --allow-downgrade",
            req.stage
        ))
        .into()
    }
}

fn report(
    verdict: Verdict,
    from: Option<u64>,
    moves: Vec<Move>,
    checks: Vec<CheckRecord>,
    forced: bool,
) -> Report {
    Report {
        verdict,
        from,
        moves,
        checks,
        forced,
        state: None,
        retries: 0,
    }
}

/// Fails with a conflict unless the stage holds what `--expect` said.
fn check_expect(req: &Promotion, model: &str, from: Option<u64>) -> Result<(), Failure> {
    let Some(expect) = req.expect else {
        return Ok(());
    };
    let expected = match expect {
        Expect::Empty => None,
        Expect::Version(v) => Some(v),
    };
    if from == expected {
        return Ok(());
    }
    let held = from.map_or_else(|| "nothing".to_owned(), |v| format!("{model}@{v}"));
    let said = expected.map_or_else(|| "nothing".to_owned(), |v| format!("{model}@{v}"));
    Err(Failure::conflict(format!(
        "{} holds {held}, not {said} as --expect said",
        req.stage
    ))
    .hint("another promotion moved it; check `mreg history` before promoting again"))
}

/// Points `stage` at `version` in the state `new` and, when `replaced_to` is set, moves the
/// replaced holder there; returns the moves, the asked-for stage first.
pub(crate) fn apply_move(
    new: &mut StageState,
    stage: &str,
    version: u64,
    replaced_to: Option<&str>,
) -> Vec<Move> {
    let from = new.stages.insert(stage.to_owned(), version);
    let mut moves = vec![Move {
        stage: stage.to_owned(),
        from,
        to: version,
    }];
    if let (Some(target), Some(replaced)) = (replaced_to, from)
        && replaced != version
    {
        let before = new.stages.insert(target.to_owned(), replaced);
        if before != Some(replaced) {
            moves.push(Move {
                stage: target.to_owned(),
                from: before,
                to: replaced,
            });
        }
    }
    moves
}
