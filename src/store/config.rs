//! The registry's `config.toml`: its format version, and the stages with their policies.
//!
//! `staging`, `production` and `archived` always exist. A `[stages.NAME]` table declares
//! another stage, or replaces the default policy of one of those three:
//!
//! ```toml
//! [stages.production]
//! gates = ["acc>0.85", "acc>=@production-0.005"]  # every promotion here must pass these
//! from = "staging"            # only the version staging holds may be promoted here
//! replaced_to = "archived"    # the version production held moves there, in the same step
//! allow_downgrade = false     # a version older than the holder needs rollback or a flag
//! ```
//!
//! A stage may also require a signature and approvals from the keys a `[signers]` table
//! names (docs/signing.md):
//!
//! ```toml
//! [signers]
//! alice = """-----BEGIN PUBLIC KEY-----…"""
//! [stages.production]
//! require_signature = ["alice"]       # signed (`mreg sign`) by one of these
//! approvals = 2                       # approved (`mreg approve`) by 2 distinct keys
//! approvers = ["alice", "bob", "carol"]
//! ```
//!
//! A `[metrics]` table says which way metrics improve, where their names do not:
//! `minimize = ["mean_rank", "*_ms"]`, `maximize = ["reward_*"]`.
//!
//! A `[retention]` table says which versions `mreg rm --policy` keeps; a
//! `[retention.models.NAME]` table replaces it for one model (docs/lifecycle.md):
//!
//! ```toml
//! [retention]
//! keep_last = 10          # the 10 newest versions
//! keep_within = "30d"     # versions pushed in the last 30 days
//! keep_stage_moves = 20   # versions a stage held in the model's last 20 history entries
//! remove_runs = true      # the runs of removed versions go too (as `rm --runs`)
//! [retention.models.fraud]
//! keep_all = true
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::Failure;
use crate::gate::Gate;
use crate::names::is_stage_name;

/// Returns the registry's configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Layout format version; a registry newer than this build is refused.
    pub format: u32,
    /// Stages declared here, or default stages whose policy is changed here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stages: BTreeMap<String, StagePolicy>,
    /// Which way metrics improve, where their names do not say.
    #[serde(default)]
    pub metrics: MetricGoals,
    /// Which versions `mreg rm --policy` keeps; none: it removes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// The keys stage policies trust, by name: public keys in PEM (docs/signing.md).
    /// A key removed from here is revoked: its signatures and approvals no longer count.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signers: BTreeMap<String, String>,
}

/// Returns a retention policy: which versions of a model `mreg rm --policy` keeps. A
/// version is kept when any rule keeps it, and always while a stage holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Keep the newest N surviving versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u64>,
    /// Keep the versions pushed within this long of now (`30d`, `12h`, `2weeks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within: Option<String>,
    /// Keep every version a stage held in the model's newest N history entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_stage_moves: Option<u64>,
    /// Keep every version: a model's way out of the registry-wide policy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_all: bool,
    /// Remove the runs of the versions removed too, unless a surviving version came
    /// from one (as `mreg rm --runs`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remove_runs: bool,
    /// Policies of single models, each replacing this one for its model.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, Retention>,
}

impl Retention {
    /// Returns how long `keep_within` keeps a version, when it is set.
    pub fn within(&self) -> Option<std::time::Duration> {
        self.keep_within
            .as_deref()
            .and_then(|t| humantime::parse_duration(t).ok())
    }

    /// Returns what is wrong with this policy (`models` aside), if anything.
    fn problem(&self) -> Option<String> {
        if let Some(text) = &self.keep_within {
            match humantime::parse_duration(text) {
                Err(err) => {
                    return Some(format!(
                        "keep_within = {text:?} is not a duration ({err}); write e.g. \"30d\", \"12h\" or \"2weeks\""
                    ));
                }
                Ok(d) if d < std::time::Duration::from_secs(60) => {
                    return Some(format!(
                        "keep_within = {text:?} keeps almost nothing; give at least a minute, e.g. \"30d\""
                    ));
                }
                Ok(_) => {}
            }
        }
        let keeps = self.keep_last.is_some_and(|n| n > 0)
            || self.keep_within.is_some()
            || self.keep_stage_moves.is_some_and(|n| n > 0);
        if self.keep_all && keeps {
            return Some("keep_all = true keeps every version, so its other keep_ rules say nothing; keep one or the other".to_owned());
        }
        if !self.keep_all && !keeps {
            return Some("keeps nothing: give it keep_last, keep_within or keep_stage_moves (a policy that keeps nothing would remove every version), or keep_all = true".to_owned());
        }
        None
    }
}

/// Returns the metrics declared lower-is-better or higher-is-better: exact names, or
/// patterns where `*` matches any run of characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricGoals {
    /// Metrics for which lower is better (`loss`, `*_ms`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub minimize: Vec<String>,
    /// Metrics for which higher is better.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maximize: Vec<String>,
}

/// Returns the rules of one stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagePolicy {
    /// Gates every promotion to the stage must pass, as written in the config.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<String>,
    /// The stage that must hold a version before it may be promoted to this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The stage the replaced holder moves to when a promotion replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_to: Option<String>,
    /// Whether a version older than the holder may be promoted without `--allow-downgrade`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_downgrade: bool,
    /// Signers (names in `[signers]`) one of whom must have signed the version
    /// (`mreg sign`) for it to be promoted here; empty: no signature is required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require_signature: Vec<String>,
    /// How many distinct approvers must have approved the version for this stage
    /// (`mreg approve`) before it is promoted here.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub approvals: u32,
    /// Who may approve (names in `[signers]`); empty: every signer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The stages every registry has, in the order listings show them.
pub const DEFAULT_STAGES: [&str; 3] = ["staging", "production", "archived"];

/// Returns the policy a default stage has when the config does not declare it.
fn default_policy(stage: &str) -> StagePolicy {
    match stage {
        "production" => StagePolicy {
            replaced_to: Some("archived".to_owned()),
            ..StagePolicy::default()
        },
        "archived" => StagePolicy {
            allow_downgrade: true,
            ..StagePolicy::default()
        },
        _ => StagePolicy::default(),
    }
}

/// Returns `text` (a `config.toml`) declaring layout format `to` in place of the format
/// it declares, everything else kept byte for byte; `None` when no line of it is the
/// `format = N` line a config starts with.
pub fn with_format(text: &str, to: u32) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 1);
    let mut found = false;
    for line in text.split_inclusive('\n') {
        let is_format = !found
            && line.trim_start().starts_with("format")
            && toml::from_str::<toml::Table>(line).ok().is_some_and(|t| {
                t.len() == 1 && t.get("format").is_some_and(toml::Value::is_integer)
            });
        if is_format {
            found = true;
            // Only the number changes: what follows it (a comment) stays.
            let digits = line
                .find(|c: char| c.is_ascii_digit())
                .expect("an integer format has digits");
            let end = line[digits..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(line.len(), |n| digits + n);
            let replaced = format!("{}{to}{}", &line[..digits], &line[end..]);
            // A spelling the digits do not cover (`0x1`) is not rewritten.
            if toml::from_str::<toml::Table>(&replaced)
                .ok()
                .and_then(|t| t.get("format").and_then(toml::Value::as_integer))
                != Some(i64::from(to))
            {
                return None;
            }
            out.push_str(&replaced);
        } else {
            out.push_str(line);
        }
    }
    found.then_some(out)
}

/// Returns the text `mreg init` writes: the format, and the default stages spelled out
/// with commented examples, so a team sees where its policy goes.
pub fn initial_text(format: u32) -> String {
    format!(
        r#"# mreg registry configuration
format = {format}

# Stages are named pointers to one version of each model. staging, production and
# archived always exist; a [stages.NAME] table declares another one. Keys:
#   gates = ["acc>0.85", "acc>=@production-0.005"]  every promotion here must pass these
#   from = "staging"          only the version that stage holds may be promoted here
#   replaced_to = "archived"  where the version this stage held goes when replaced
#   allow_downgrade = true    allow promoting a version older than the holder
#   require_signature = ["alice"]  a signature (`mreg sign`) by one of these [signers]
#   approvals = 2             approvals (`mreg approve`) by that many distinct approvers
#   approvers = ["alice", "bob"]  who may approve (default: every one of [signers])
# Skipping a gate or `from` takes `mreg promote --force --reason TEXT`, which is recorded;
# the signing rules cannot be skipped.
# [signers] names the public keys those rules trust (docs/signing.md):
# [signers]
# alice = """
# -----BEGIN PUBLIC KEY-----
# ...
# -----END PUBLIC KEY-----
# """

[stages.staging]

[stages.production]
replaced_to = "archived"

[stages.archived]
allow_downgrade = true

# Which versions `mreg rm --policy` (and `mreg gc --policy`) keeps; a version is kept
# when any rule keeps it, and always while a stage holds it (docs/lifecycle.md).
# [retention]
# keep_last = 10          # the 10 newest versions of each model
# keep_within = "30d"     # versions pushed in the last 30 days
# keep_stage_moves = 20   # versions a stage held in the model's last 20 history entries
# remove_runs = true      # the runs of removed versions go too
# [retention.models.fraud]
# keep_all = true         # a model's own table replaces [retention] for it

# Which way metrics improve, for diff and compare, where a name does not say: names
# with a word like loss, error, latency or ms are minimized, all others maximized.
# [metrics]
# minimize = ["mean_rank", "*_s"]
# maximize = ["reward_*"]
"#
    )
}

impl Config {
    /// Parses `config.toml` and checks its stages; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|err| {
            Failure::error(format!(
                "registry config {} is not valid: {}",
                path.display(),
                err.to_string().trim_end()
            ))
            .hint(
                "a [stages.NAME] table takes gates = [\"acc>0.8\"], from = \"STAGE\", \
                 replaced_to = \"STAGE\", allow_downgrade = true|false, require_signature, \
                 approvals and approvers (docs/stages.md, docs/signing.md); [signers] takes \
                 NAME = \"PEM public key\"; \
                 [metrics] takes minimize = [\"loss\"] and maximize = [\"acc\"] (docs/diff.md); \
                 [retention] takes keep_last, keep_within, keep_stage_moves, keep_all and \
                 remove_runs (docs/lifecycle.md)",
            )
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Returns every stage name: the defaults first, then declared ones, sorted.
    pub fn stage_names(&self) -> Vec<String> {
        let mut names: Vec<String> = DEFAULT_STAGES.iter().map(|s| (*s).to_owned()).collect();
        for name in self.stages.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    /// Returns whether `stage` exists in this registry.
    pub fn has_stage(&self, stage: &str) -> bool {
        DEFAULT_STAGES.contains(&stage) || self.stages.contains_key(stage)
    }

    /// Returns the policy of a stage: the declared one, else its default.
    pub fn policy(&self, stage: &str) -> StagePolicy {
        self.stages
            .get(stage)
            .cloned()
            .unwrap_or_else(|| default_policy(stage))
    }

    /// Returns an error naming the stage unless it exists.
    pub fn require_stage(&self, stage: &str) -> Result<(), Failure> {
        if self.has_stage(stage) {
            return Ok(());
        }
        Err(
            Failure::usage(format!("there is no stage named {stage:?}")).hint(format!(
                "stages: {}; declare more as [stages.NAME] in config.toml",
                self.stage_names().join(", ")
            )),
        )
    }

    /// Returns the retention policy of `model`: its own table, else the registry's;
    /// `None` when the config has none for it.
    pub fn retention_for(&self, model: &str) -> Option<Retention> {
        let top = self.retention.as_ref()?;
        if let Some(own) = top.models.get(model) {
            return Some(own.clone());
        }
        let mut policy = top.clone();
        policy.models.clear();
        let any = policy.keep_all
            || policy.keep_last.is_some()
            || policy.keep_within.is_some()
            || policy.keep_stage_moves.is_some();
        any.then_some(policy)
    }

    /// Refuses a retention policy that keeps nothing, or says something it cannot mean.
    fn validate_retention(&self, path: &Path) -> Result<(), Failure> {
        let Some(top) = &self.retention else {
            return Ok(());
        };
        let bad = |which: String, what: String| {
            Failure::error(format!(
                "registry config {}: {which} {what}",
                path.display()
            ))
            .hint("fix the [retention] tables of config.toml; docs/lifecycle.md explains them")
        };
        let mut top_only = top.clone();
        top_only.models.clear();
        if top_only != Retention::default()
            && let Some(what) = top_only.problem()
        {
            return Err(bad("[retention]".to_owned(), what));
        }
        for (model, policy) in &top.models {
            let which = format!("[retention.models.{model}]");
            if let Err(err) = crate::names::ModelName::parse(model) {
                return Err(bad(
                    which,
                    format!("does not name a model: {}", err.message),
                ));
            }
            if !policy.models.is_empty() {
                return Err(bad(
                    which,
                    "has a models table of its own; only [retention] has one".to_owned(),
                ));
            }
            if let Some(what) = policy.problem() {
                return Err(bad(which, what));
            }
        }
        Ok(())
    }

    fn validate(&self, path: &Path) -> Result<(), Failure> {
        self.validate_metrics(path)?;
        self.validate_retention(path)?;
        self.validate_signers().map_err(|what| {
            Failure::error(format!("registry config {}: {what}", path.display()))
                .hint("fix [signers] in config.toml; docs/signing.md explains it")
        })?;
        let bad = |stage: &str, what: String| {
            Failure::error(format!(
                "registry config {}: stage {stage:?} {what}",
                path.display()
            ))
            .hint("fix the [stages] tables of config.toml; docs/stages.md explains them")
        };
        for (name, policy) in &self.stages {
            self.validate_stage(name, policy)
                .map_err(|what| bad(name, what))?;
        }
        Ok(())
    }

    /// Refuses an empty metric name, or one both minimized and maximized.
    fn validate_metrics(&self, path: &Path) -> Result<(), Failure> {
        let goals = &self.metrics;
        let metrics_error = |what: String| {
            Failure::error(format!(
                "registry config {}: [metrics] {what}",
                path.display()
            ))
            .hint("list metric names or patterns like \"*_ms\"; docs/diff.md explains them")
        };
        if goals
            .minimize
            .iter()
            .chain(&goals.maximize)
            .any(String::is_empty)
        {
            return Err(metrics_error("lists an empty metric name".to_owned()));
        }
        if let Some(both) = goals.minimize.iter().find(|m| goals.maximize.contains(m)) {
            return Err(metrics_error(format!(
                "lists {both:?} under both minimize and maximize"
            )));
        }
        Ok(())
    }

    /// Returns what is wrong with `[signers]`, if anything: a name that is not a plain
    /// word (names are shown in lists and history), or one key under two names (which
    /// would let one key count as two approvers).
    fn validate_signers(&self) -> Result<(), String> {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for (name, pem) in &self.signers {
            let plain = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !plain {
                return Err(format!(
                    "[signers] has a signer named {name:?}: use letters, digits, '-', '_' and '.'"
                ));
            }
            let key: String = pem.split_whitespace().collect();
            if let Some(other) = seen.insert(key, name) {
                return Err(format!(
                    "[signers] has one key under two names, {other} and {name}: one key is one signer"
                ));
            }
        }
        Ok(())
    }

    /// Returns what is wrong with one stage's policy, if anything: its name, the stages
    /// its `from` and `replaced_to` name, and its gates.
    fn validate_stage(&self, name: &str, policy: &StagePolicy) -> Result<(), String> {
        if !is_stage_name(name) {
            return Err(
                "is not a valid stage name: use lowercase words of letters, digits and '_' \
                 joined by '-', starting with a letter; names that read as a version in \
                 NAME@STAGE (latest, v2, 42, or 6 or more hex digits like decade) are refused"
                    .to_owned(),
            );
        }
        for (key, other) in [("from", &policy.from), ("replaced_to", &policy.replaced_to)] {
            if let Some(other) = other {
                if other == name {
                    return Err(format!("names itself in {key}"));
                }
                if !self.has_stage(other) {
                    return Err(format!("names unknown stage {other:?} in {key}"));
                }
            }
        }
        if let Some(target) = &policy.replaced_to {
            let next = self.policy(target);
            if !next.gates.is_empty()
                || next.from.is_some()
                || next.replaced_to.is_some()
                || !next.require_signature.is_empty()
                || next.approvals > 0
            {
                return Err(format!(
                    "sends replaced versions to {target:?}, which has gates, `from`, \
                     `replaced_to` or signing rules of its own; a version must not reach a \
                     stage around its policy, so replaced_to must name a stage without any \
                     (like archived)"
                ));
            }
        }
        for signer in policy.require_signature.iter().chain(&policy.approvers) {
            if !self.signers.contains_key(signer) {
                return Err(format!(
                    "names {signer:?} in require_signature or approvers, who is not in [signers]"
                ));
            }
        }
        let unique: std::collections::BTreeSet<&String> = policy.approvers.iter().collect();
        if unique.len() != policy.approvers.len() {
            return Err("names an approver twice in approvers".to_owned());
        }
        let pool = if policy.approvers.is_empty() {
            self.signers.len()
        } else {
            policy.approvers.len()
        };
        if policy.approvals as usize > pool {
            return Err(format!(
                "asks for {} approval{}, more than it has approvers ({pool})",
                policy.approvals,
                if policy.approvals == 1 { "" } else { "s" }
            ));
        }
        for text in &policy.gates {
            let gate = Gate::parse(text)
                .map_err(|f| format!("has a gate that does not parse: {}", f.message))?;
            if let Some(other) = gate.stage()
                && !self.has_stage(other)
            {
                return Err(format!(
                    "has gate {text:?}, which names unknown stage {other:?}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("config.toml"))
    }

    #[test]
    fn initial_text_parses_to_the_default_policies() {
        let config = parse(&initial_text(1)).unwrap();
        for stage in DEFAULT_STAGES {
            assert_eq!(config.policy(stage), default_policy(stage), "{stage}");
        }
        assert_eq!(config.stage_names(), DEFAULT_STAGES);
    }

    #[test]
    fn the_format_line_is_replaced_and_nothing_else() {
        let text = "# mine\nformat = 1 # old\n\n[stages.qa]\nformat_note = 1\n";
        assert_eq!(
            with_format(text, 2).unwrap(),
            "# mine\nformat = 2 # old\n\n[stages.qa]\nformat_note = 1\n"
        );
        assert_eq!(with_format("format=1\r\n", 2).unwrap(), "format=2\r\n");
        assert_eq!(with_format("format = 0x1\n", 2), None);
        assert_eq!(with_format("[stages.qa]\n", 2), None);
        assert!(
            with_format(&initial_text(1), 2)
                .unwrap()
                .contains("\nformat = 2\n")
        );
    }

    #[test]
    fn a_bare_format_line_has_the_default_stages() {
        let config = parse("format = 1\n").unwrap();
        assert_eq!(
            config.policy("production").replaced_to.as_deref(),
            Some("archived")
        );
        assert!(config.policy("archived").allow_downgrade);
        assert!(config.has_stage("staging"));
        assert!(!config.has_stage("canary"));
    }

    #[test]
    fn declared_stages_add_and_override() {
        let config = parse(
            "format = 1\n[stages.canary]\nfrom = \"staging\"\n\
             [stages.production]\ngates = [\"acc>0.8\"]\nfrom = \"canary\"\n",
        )
        .unwrap();
        assert_eq!(
            config.stage_names(),
            ["staging", "production", "archived", "canary"]
        );
        let production = config.policy("production");
        assert_eq!(production.from.as_deref(), Some("canary"));
        assert_eq!(
            production.replaced_to, None,
            "a declared policy replaces the default"
        );
        assert_eq!(production.gates, ["acc>0.8"]);
    }

    #[test]
    fn metric_goals_parse_and_contradictions_are_refused() {
        let config = parse("format = 1\n[metrics]\nminimize = [\"rank\", \"*_s\"]\n").unwrap();
        assert_eq!(config.metrics.minimize, ["rank", "*_s"]);
        let err =
            parse("format = 1\n[metrics]\nminimize = [\"f1\"]\nmaximize = [\"f1\"]\n").unwrap_err();
        assert!(err.to_string().contains("\"f1\" under both"), "{err}");
        let err = parse("format = 1\n[metrics]\nmaximize = [\"\"]\n").unwrap_err();
        assert!(err.to_string().contains("empty metric name"), "{err}");
        assert!(parse("format = 1\n[metrics]\nbest = [\"acc\"]\n").is_err());
    }

    #[test]
    fn retention_policies_parse_and_a_model_table_replaces_the_registrys() {
        let config = parse(
            "format = 1\n[retention]\nkeep_last = 10\nkeep_within = \"30d\"\n\
             [retention.models.fraud]\nkeep_all = true\n\
             [retention.models.churn]\nkeep_stage_moves = 5\nremove_runs = true\n",
        )
        .unwrap();
        let any = config.retention_for("any").unwrap();
        assert_eq!(any.keep_last, Some(10));
        assert_eq!(
            any.within(),
            Some(std::time::Duration::from_secs(30 * 86_400))
        );
        assert!(any.models.is_empty());
        assert!(config.retention_for("fraud").unwrap().keep_all);
        let churn = config.retention_for("churn").unwrap();
        assert_eq!((churn.keep_last, churn.keep_stage_moves), (None, Some(5)));
        assert!(churn.remove_runs);
        // Only model tables: other models have no policy.
        let only = parse("format = 1\n[retention.models.churn]\nkeep_last = 2\n").unwrap();
        assert!(only.retention_for("fraud").is_none());
        assert!(
            parse("format = 1\n")
                .unwrap()
                .retention_for("churn")
                .is_none()
        );
    }

    #[test]
    fn a_retention_policy_that_keeps_nothing_or_contradicts_itself_is_refused() {
        for (text, fragment) in [
            ("[retention]\nremove_runs = true\n", "keeps nothing"),
            ("[retention]\nkeep_last = 0\n", "keeps nothing"),
            ("[retention.models.churn]\n", "keeps nothing"),
            ("[retention]\nkeep_within = \"a while\"\n", "not a duration"),
            (
                "[retention]\nkeep_within = \"0s\"\n",
                "keeps almost nothing",
            ),
            (
                "[retention]\nkeep_within = \"1ns\"\n",
                "keeps almost nothing",
            ),
            (
                "[retention]\nkeep_all = true\nkeep_last = 3\n",
                "keep one or the other",
            ),
            (
                "[retention.models.\"-x\"]\nkeep_last = 3\n",
                "does not name a model",
            ),
            ("[retention]\nkeep_first = 3\n", "unknown field"),
            (
                "[retention.models.churn]\nkeep_last = 3\n[retention.models.churn.models.x]\nkeep_last = 1\n",
                "only [retention] has one",
            ),
        ] {
            let err = parse(&format!("format = 1\n{text}")).unwrap_err();
            assert!(
                format!("{err:#}").contains(fragment),
                "{text:?} gave {err:#}"
            );
        }
    }

    #[test]
    fn signing_rules_name_known_signers_and_no_more_approvals_than_approvers() {
        let signers = "[signers]\nalice = \"PEM A\"\nbob = \"PEM B\"\n";
        for (text, fragment) in [
            (
                "[stages.prod]\nrequire_signature = [\"carol\"]\n",
                "\"carol\" in require_signature or approvers, who is not in [signers]",
            ),
            ("[stages.prod]\napprovals = 3\n", "asks for 3 approvals"),
            (
                "[stages.prod]\napprovals = 2\napprovers = [\"alice\"]\n",
                "asks for 2 approvals",
            ),
            (
                "[stages.prod]\nreplaced_to = \"old\"\n[stages.old]\napprovals = 1\n",
                "signing rules of its own",
            ),
            (
                "[stages.prod]\napprovals = 1\napprovers = [\"bob\", \"bob\"]\n",
                "names an approver twice",
            ),
        ] {
            let err = parse(&format!("format = 1\n{signers}{text}")).unwrap_err();
            assert!(
                format!("{err:#}").contains(fragment),
                "{text:?} gave {err:#}"
            );
        }
        let fine = "[stages.prod]\nrequire_signature = [\"alice\"]\napprovals = 2\n";
        assert!(parse(&format!("format = 1\n{signers}{fine}")).is_ok());
        // One key under two names would count as two approvers.
        let twice = "format = 1\n[signers]\nbob = \"PEM  X\"\nbob2 = \"PEM\\nX\"\n";
        let err = parse(twice).unwrap_err();
        assert!(
            format!("{err:#}").contains("one key under two names"),
            "{err:#}"
        );
        let odd = "format = 1\n[signers]\n\"bob, carol\" = \"PEM\"\n";
        let err = parse(odd).unwrap_err();
        assert!(
            format!("{err:#}").contains("a signer named \"bob, carol\""),
            "{err:#}"
        );
    }

    #[test]
    fn bad_configs_name_the_stage_and_problem() {
        for (text, fragment) in [
            ("format = 1\n[stages.Prod]\n", "not a valid stage name"),
            ("format = 1\n[stages.v2]\n", "not a valid stage name"),
            (
                "format = 1\n[stages.prod]\nfrom = \"qa\"\n",
                "unknown stage \"qa\" in from",
            ),
            (
                "format = 1\n[stages.prod]\nreplaced_to = \"prod\"\n",
                "names itself",
            ),
            (
                "format = 1\n[stages.prod]\ngates = [\"acc>\"]\n",
                "does not parse",
            ),
            (
                "format = 1\n[stages.prod]\ngates = [\"acc>@qa\"]\n",
                "unknown stage \"qa\"",
            ),
            (
                "format = 1\n[stages.prod]\ngate = [\"acc>1\"]\n",
                "unknown field",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                format!("{err:#}").contains(fragment),
                "{text:?} gave {err:#}"
            );
        }
    }
}
