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
//! A `[metrics]` table says which way metrics improve, where their names do not:
//! `minimize = ["mean_rank", "*_ms"]`, `maximize = ["reward_*"]`.

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
# Skipping a gate or `from` takes `mreg promote --force --reason TEXT`, which is recorded.

[stages.staging]

[stages.production]
replaced_to = "archived"

[stages.archived]
allow_downgrade = true

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
                 replaced_to = \"STAGE\" and allow_downgrade = true|false (docs/stages.md); \
                 [metrics] takes minimize = [\"loss\"] and maximize = [\"acc\"] (docs/diff.md)",
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

    fn validate(&self, path: &Path) -> Result<(), Failure> {
        self.validate_metrics(path)?;
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
            if !next.gates.is_empty() || next.from.is_some() || next.replaced_to.is_some() {
                return Err(format!(
                    "sends replaced versions to {target:?}, which has gates, `from` or \
                     `replaced_to` of its own; a version must not reach a stage \
                     around its policy, so replaced_to must name a stage without any \
                     (like archived)"
                ));
            }
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
