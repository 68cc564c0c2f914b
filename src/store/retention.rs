//! Retention: which versions of a model its policy (`[retention]` in `config.toml`)
//! keeps, and so which `mreg rm --policy` removes.
//!
//! A surviving version is kept when any rule keeps it: among the newest `keep_last`,
//! pushed within `keep_within` of now, held by a stage in one of the model's newest
//! `keep_stage_moves` history entries, and always when a stage holds it now or it is
//! the model's newest: a policy never empties a stage or a model. A version whose push
//! time does not read is kept: a policy never removes what it cannot judge.

use std::collections::BTreeSet;
use std::time::SystemTime;

use anyhow::Result;

use super::config::Retention;
use super::{Registry, models, stages};

/// Returns the surviving versions of `model` that `policy` does not keep, ascending.
pub fn to_remove(
    reg: &Registry,
    model: &str,
    policy: &Retention,
    now: SystemTime,
) -> Result<Vec<u64>> {
    let live = models::live_versions(reg, model)?;
    if policy.keep_all || live.is_empty() {
        return Ok(Vec::new());
    }
    let mut keep: BTreeSet<u64> = live.last().copied().into_iter().collect();
    let newest = usize::try_from(policy.keep_last.unwrap_or(0)).unwrap_or(usize::MAX);
    keep.extend(live.iter().rev().take(newest));
    if let Some(within) = policy.within() {
        let since = now.checked_sub(within).unwrap_or(SystemTime::UNIX_EPOCH);
        for &n in &live {
            let created = models::load_version(reg, model, n)?.created;
            let young = humantime::parse_rfc3339_weak(&created).map_or(true, |t| t >= since);
            if young {
                keep.insert(n);
            }
        }
    }
    // What the stages hold now is kept whatever the policy says.
    if let Some((_, state)) = stages::current(reg, model)? {
        keep.extend(state.stages.values().copied());
    }
    let moves = usize::try_from(policy.keep_stage_moves.unwrap_or(0)).unwrap_or(usize::MAX);
    if moves > 0 {
        for (_, state) in stages::chain(reg, model, Some(moves))? {
            keep.extend(state.stages.values().copied());
            keep.extend(
                state
                    .moves
                    .iter()
                    .flat_map(|m| m.from.into_iter().chain([m.to])),
            );
        }
    }
    Ok(live.into_iter().filter(|n| !keep.contains(n)).collect())
}

/// Returns a policy as the reason a removal records: `retention policy (keep_last = 10,
/// keep_within = 30d)`.
pub fn describe(policy: &Retention) -> String {
    let mut rules = Vec::new();
    if let Some(n) = policy.keep_last {
        rules.push(format!("keep_last = {n}"));
    }
    if let Some(d) = &policy.keep_within {
        rules.push(format!("keep_within = {d}"));
    }
    if let Some(n) = policy.keep_stage_moves {
        rules.push(format!("keep_stage_moves = {n}"));
    }
    format!("retention policy ({})", rules.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempRegistry;

    fn policy(text: &str) -> Retention {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_version_is_kept_when_any_rule_keeps_it_and_always_while_a_stage_holds_it() {
        let t = TempRegistry::new();
        for i in 1..=6 {
            t.push("m", &[("w.bin", format!("weights {i}").as_bytes())], &[]);
        }
        t.promote("m@2", "production", &[]);
        t.promote("m@3", "staging", &[]);
        t.promote("m@4", "staging", &[]);
        let now = SystemTime::now();
        let removed = |text: &str| to_remove(&t.reg, "m", &policy(text), now).unwrap();
        // Stage holders now: production 2, staging 4.
        assert_eq!(removed("keep_last = 1"), [1, 3, 5]);
        assert_eq!(removed("keep_last = 3"), [1, 3]);
        // The newest two history entries: staging 3 -> 4, and staging - -> 3.
        assert_eq!(removed("keep_last = 1\nkeep_stage_moves = 2"), [1, 5]);
        assert_eq!(removed("keep_within = \"1h\""), Vec::<u64>::new());
        assert_eq!(removed("keep_all = true"), Vec::<u64>::new());
        let later = now + std::time::Duration::from_secs(7200);
        let aged = to_remove(&t.reg, "m", &policy("keep_within = \"1h\""), later).unwrap();
        assert_eq!(aged, [1, 3, 5], "the newest is kept whatever the rules say");
    }
}
