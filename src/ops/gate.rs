//! Checking gates: parsing the gates a command was given, refusing ones that cannot
//! mean what they say, and evaluating them against a version without moving anything.

use anyhow::Result;
use serde::Serialize;

use crate::error::Failure;
use crate::manifest::json::json_of_value;
use crate::manifest::state::CheckRecord;
use crate::names;
use crate::query::{Key, Namespace};
use crate::refspec::ModelRef;
use crate::stage::subject::VERSION_ATTRIBUTES;
use crate::stage::{self, COMMAND_LINE, SourcedGate, VersionFields};
use crate::store::config::Config;
use crate::store::{Registry, models, stages};

/// Returns one evaluated gate, as `--json` prints it: every key present, `null` where
/// it does not apply.
#[derive(Debug, Serialize)]
pub struct CheckRow {
    gate: String,
    source: String,
    required: String,
    threshold: Option<serde_json::Value>,
    against: Option<String>,
    actual: Option<serde_json::Value>,
    passed: bool,
    why: Option<String>,
}

/// Returns the checks as `--json` rows.
pub fn check_rows(checks: &[CheckRecord]) -> Vec<CheckRow> {
    checks
        .iter()
        .map(|c| CheckRow {
            gate: c.gate.clone(),
            source: c.source.clone(),
            required: c.required.clone(),
            threshold: c.threshold.as_ref().map(json_of_value),
            against: c.against.clone(),
            actual: c.actual.as_ref().map(json_of_value),
            passed: c.passed,
            why: c.why.clone(),
        })
        .collect()
}

/// Parses gates given on the command line; a syntax error names the gate.
pub fn parse_gates(texts: &[String]) -> Result<Vec<SourcedGate>> {
    SourcedGate::parse_all(texts, COMMAND_LINE)
}

/// Refuses gates that compare with a stage the registry does not have, or read an
/// attribute versions do not have (a typo would otherwise look like a failing model).
pub fn check_gate_stages(config: &Config, gates: &[SourcedGate]) -> Result<()> {
    for g in gates {
        let key = g.gate.key();
        if key.ns == Namespace::Attributes && !VERSION_ATTRIBUTES.contains(&key.name.as_str()) {
            return Err(Failure::usage(format!(
                "gate '{}' reads attributes.{}, which versions do not have",
                g.gate.text(),
                key.name
            ))
            .hint(format!("attributes are: {}", VERSION_ATTRIBUTES.join(", ")))
            .into());
        }
        if let Some(stage) = g.gate.stage()
            && !config.has_stage(stage)
        {
            return Err(Failure::usage(format!(
                "gate '{}' compares with stage {stage:?}, which does not exist",
                g.gate.text()
            ))
            .hint(format!("stages: {}", config.stage_names().join(", ")))
            .into());
        }
    }
    Ok(())
}

/// Refuses command-line gates whose key no version of the candidate's model has, as a
/// usage error: `acuracy>0.85` is a typo, not a model that is not good enough, and must
/// not be recorded as a refusal. A key the candidate lacks but another version has stays
/// a refusal (the candidate is missing what the others are judged on). Gates from a
/// stage's policy are left to refuse: the policy is the registry's own rule.
pub fn check_gate_keys(
    reg: &Registry,
    candidate: &VersionFields,
    gates: &[SourcedGate],
) -> Result<()> {
    let mut unknown: Vec<&SourcedGate> = gates
        .iter()
        .filter(|g| g.source == COMMAND_LINE && g.gate.key().ns != Namespace::Attributes)
        .filter(|g| candidate.field(g.gate.key()).is_none())
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let record = candidate.record();
    // Newest first: a key the candidate lacks is most likely one recent versions have.
    for version in models::list_versions(reg, &record.model)?.into_iter().rev() {
        if version == record.version {
            continue;
        }
        let Ok(other) = models::load_version(reg, &record.model, version)
            .and_then(|r| VersionFields::load(reg, r))
        else {
            continue;
        };
        unknown.retain(|g| other.field(g.gate.key()).is_none());
        if unknown.is_empty() {
            return Ok(());
        }
    }
    let gate = unknown[0];
    let key = gate.gate.key();
    let kind = match key.ns {
        Namespace::Params => "param",
        Namespace::Tags => "tag",
        _ => "metric",
    };
    let names = candidate.names(key.ns);
    // As a user writes it in a gate: a metric by its bare name.
    let written = |name: &str| {
        let key = Key::new(key.ns, name);
        let text = key.to_string();
        match text.strip_prefix("metrics.") {
            Some(bare) if key.ns == Namespace::Metrics => bare.to_owned(),
            _ => text,
        }
    };
    // The same namespace first; then a name the version has under another (`lr` for
    // `params.lr`, as a bare name reads as a metric).
    let elsewhere = || {
        [Namespace::Metrics, Namespace::Params, Namespace::Tags]
            .into_iter()
            .filter(|ns| *ns != key.ns)
            .find_map(|ns| {
                let other = candidate.names(ns);
                names::closest(&key.name, other.iter().copied())
                    .map(|near| Key::new(ns, near).to_string())
            })
    };
    let near = match names::closest(&key.name, names.iter().copied()) {
        Some(near) => format!("did you mean {}? ", written(near)),
        None => elsewhere()
            .map(|k| format!("did you mean {k}? "))
            .unwrap_or_default(),
    };
    let listed = if names.is_empty() {
        format!("{} has no {kind}s", record.reference())
    } else {
        format!("{kind}s of {}: {}", record.reference(), names.join(", "))
    };
    let hint = format!("{near}{listed}");
    Err(Failure::usage(format!(
        "gate '{}' reads {}, which no version of {} has",
        gate.gate.text(),
        if key.ns == Namespace::Metrics {
            format!("metric {}", written(&key.name))
        } else {
            written(&key.name)
        },
        record.model
    ))
    .hint(hint)
    .into())
}

/// Returns what `mreg gate` found, as `--json` prints it; `checks` holds the records
/// for the text table.
#[derive(Debug, Serialize)]
pub struct Checked {
    /// The model.
    pub model: String,
    /// The version checked.
    pub version: u64,
    /// Whether every check held.
    pub passed: bool,
    /// The checks as JSON rows.
    #[serde(rename = "checks")]
    pub rows: Vec<CheckRow>,
    /// The checks, in order.
    #[serde(skip)]
    pub checks: Vec<CheckRecord>,
    /// `NAME@N`.
    #[serde(skip)]
    pub reference: String,
}

/// Evaluates `gates` (and, with `stage`, that stage's policy first, its signing rules
/// last) against the version `reference` names; records nothing.
pub fn check(
    reg: &Registry,
    reference: &str,
    gates: &[String],
    stage: Option<&str>,
) -> Result<Checked> {
    let config = reg.config()?;
    let gates = parse_gates(gates)?;
    check_gate_stages(&config, &gates)?;
    if gates.is_empty() && stage.is_none() {
        return Err(Failure::usage("give at least one gate, or --stage STAGE")
            .hint("e.g. mreg gate churn@4 'acc>0.85' (quote each gate: > is a shell redirect)")
            .into());
    }
    let record = models::resolve(reg, &ModelRef::parse(reference)?)?;
    let current = stages::current(reg, &record.model)?.map(|(_, s)| s);
    let mut all = Vec::new();
    let mut from = None;
    if let Some(name) = stage {
        config.require_stage(name)?;
        let policy = config.policy(name);
        all = stage::policy_gates(name, &policy)?;
        from = policy.from.map(|f| (name, f));
    }
    all.extend(gates);
    let fields = VersionFields::load(reg, record.clone())?;
    check_gate_keys(reg, &fields, &all)?;
    let from = from.as_ref().map(|(s, f)| (*s, f.as_str()));
    let mut checks = stage::evaluate(reg, &fields, current.as_ref(), from, &all);
    if let Some(name) = stage {
        // The stage's signing rules too, as the promotion will check them.
        checks.extend(super::approve::policy_checks(
            reg,
            &config,
            &config.policy(name),
            &record,
            name,
            &crate::store::NoProgress,
        )?);
    }
    Ok(Checked {
        model: record.model.clone(),
        version: record.version,
        passed: checks.iter().all(|c| c.passed),
        rows: check_rows(&checks),
        checks,
        reference: record.reference(),
    })
}
