//! Rollback: a stage goes back to the version it held before its latest move.
//!
//! The chain is read oldest first, keeping one stack per stage: every move pushes the
//! version the stage held before it, and every rollback of the stage pops one. The top
//! of the stack is where the next rollback goes, so repeated rollbacks walk back through
//! earlier holders instead of flipping between two versions. A rollback runs no gates
//! (the version held the stage before) but is recorded like any move, with its reason;
//! the stage's `replaced_to` policy applies as in a promotion.

use anyhow::Result;

use super::promote::apply_move;
use super::{Stamp, Step, new_state};
use crate::error::Failure;
use crate::manifest::StageState;
use crate::manifest::state::{Action, Move};
use crate::store::config::Config;
use crate::store::{Registry, models, stages};

/// Returns what a rollback did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The version the stage held.
    pub from: u64,
    /// The version it holds now (or would, in a dry run).
    pub to: u64,
    /// The stages that moved.
    pub moves: Vec<Move>,
    /// The state written, with its number; `None` in a dry run.
    pub state: Option<(crate::id::StateId, u64)>,
    /// How many times another writer moved the stages first.
    pub retries: u32,
}

/// Moves `stage` of `model` back to its previous holder.
pub fn rollback(
    reg: &Registry,
    config: &Config,
    model: &str,
    stage: &str,
    reason: Option<&str>,
    dry_run: bool,
    stamp: &Stamp,
) -> Result<Report> {
    config.require_stage(stage)?;
    let policy = config.policy(stage);
    let done = super::transact(reg, model, stamp, |state| {
        let Some(from) = state.and_then(|s| s.holder(stage)) else {
            return Err(Failure::error(format!(
                "{stage} of {model} holds no version: there is nothing to roll back"
            ))
            .hint(format!(
                "`mreg history {model} --stage {stage}` shows its moves"
            ))
            .into());
        };
        let chain = stages::chain(reg, model, None)?;
        let Some(to) = previous_holder(chain.iter().rev().map(|(_, s)| s), stage) else {
            return Err(Failure::error(format!(
                "{stage} of {model} has no earlier holder to go back to: {model}@{from} is the first version it held"
            ))
            .hint(format!("promote another version: mreg promote {model}@N {stage}"))
            .into());
        };
        super::remove::require_live(reg, model, to)?;
        let target = models::load_version(reg, model, to)?;
        super::require_objects(reg, &target)?;
        let mut new = new_state(state, model, stage, to, Action::Rollback, stamp);
        new.reason = reason.map(str::to_owned);
        new.moves = apply_move(&mut new, stage, to, policy.replaced_to.as_deref());
        let report = Report {
            from,
            to,
            moves: new.moves.clone(),
            state: None,
            retries: 0,
        };
        if dry_run {
            return Ok(Step::Stop(report));
        }
        Ok(Step::Write(Box::new(new), report))
    })?;
    let mut report = done.report;
    report.state = done.written;
    report.retries = done.retries;
    Ok(report)
}

/// Returns where the next rollback of `stage` goes, from the states oldest first; `None`
/// when the stage has no earlier holder.
pub fn previous_holder<'a>(
    states: impl Iterator<Item = &'a StageState>,
    stage: &str,
) -> Option<u64> {
    let mut stack: Vec<Option<u64>> = Vec::new();
    for state in states {
        let undoing = state.action == Action::Rollback && state.stage == stage;
        for m in state.moves.iter().filter(|m| m.stage == stage) {
            if undoing {
                stack.pop();
            } else {
                stack.push(m.from);
            }
        }
    }
    stack.pop().flatten()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn state(action: Action, stage: &str, moves: &[(&str, Option<u64>, u64)]) -> StageState {
        StageState {
            format: 1,
            model: "m".into(),
            number: 0,
            previous: None,
            action,
            version: moves.first().map_or(0, |m| m.2),
            stage: stage.into(),
            time: String::new(),
            actor: String::new(),
            ci_job: None,
            command: None,
            forced: false,
            downgrade: false,
            reason: None,
            stages: BTreeMap::new(),
            moves: moves
                .iter()
                .map(|(s, from, to)| Move {
                    stage: (*s).into(),
                    from: *from,
                    to: *to,
                })
                .collect(),
            checks: Vec::new(),
            removed: Vec::new(),
            emptied: Vec::new(),
        }
    }

    #[test]
    fn repeated_rollbacks_walk_back_through_earlier_holders() {
        let p = "production";
        let mut chain = vec![
            state(Action::Promote, p, &[(p, None, 1)]),
            state(
                Action::Promote,
                p,
                &[(p, Some(1), 2), ("archived", None, 1)],
            ),
            state(Action::Refused, p, &[]),
            state(Action::Promote, "staging", &[("staging", None, 3)]),
            state(
                Action::Promote,
                p,
                &[(p, Some(2), 3), ("archived", Some(1), 2)],
            ),
        ];
        assert_eq!(previous_holder(chain.iter(), p), Some(2));
        chain.push(state(
            Action::Rollback,
            p,
            &[(p, Some(3), 2), ("archived", Some(2), 3)],
        ));
        assert_eq!(previous_holder(chain.iter(), p), Some(1));
        assert_eq!(
            previous_holder(chain.iter(), "archived"),
            Some(2),
            "a stage moved by another stage's rollback steps back normally"
        );
        chain.push(state(Action::Rollback, p, &[(p, Some(2), 1)]));
        assert_eq!(
            previous_holder(chain.iter(), p),
            None,
            "1 was the first holder"
        );
        assert_eq!(previous_holder(chain.iter(), "staging"), None);
    }
}
