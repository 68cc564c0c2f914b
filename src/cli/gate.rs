//! `mreg gate`: evaluate gates against a version without moving anything; and the
//! rendering of evaluated gates that `promote` shares.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, output};
use crate::error::Failure;
use crate::manifest::state::CheckRecord;
use crate::refspec::ModelRef;
use crate::stage::subject::VERSION_ATTRIBUTES;
use crate::stage::{self, COMMAND_LINE, SourcedGate, VersionFields};
use crate::store::{models, stages};

/// Check gates against a version without moving anything (for pull-request checks)
///
/// Each EXPR is one comparison, KEY OP VALUE, where VALUE may be @STAGE (the value of
/// the version that stage holds) with a tolerance: @production-0.005, @production*1.1.
/// Bare names are metrics; params.X, tags.X and attributes.X (version, files, bytes,
/// created, actor, tree, run) work too. A missing value, NaN or an empty stage fails.
/// With --stage, the stage's policy from config.toml is checked first. Exits 0 when
/// every gate holds, 3 when one does not. Quote each gate: an unquoted > redirects.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mreg gate churn@4 'acc>0.85' 'latency_ms<=20'
  mreg gate churn@latest 'acc>=@production-0.005' 'latency_ms<=@production*1.1'
  mreg gate churn@4 --stage production
  mreg gate churn@4 'acc>0.85' --json | jq .passed

Exit codes: 0 every gate holds, 1 error, 2 usage error, 3 a gate does not hold.")]
pub struct GateArgs {
    /// The version to check: NAME@3, NAME@latest, NAME@staging
    #[arg(value_name = "REF")]
    reference: String,
    /// Gates, each one quoted comparison: 'acc>0.85'
    #[arg(value_name = "EXPR")]
    gates: Vec<String>,
    /// Also check the policy of this stage (its `from` and its gates)
    #[arg(long, value_name = "STAGE")]
    stage: Option<String>,
}

/// Returns one evaluated gate, as `--json` prints it.
#[derive(Serialize)]
pub struct CheckRow {
    gate: String,
    source: String,
    required: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    threshold: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    against: Option<String>,
    actual: Option<serde_json::Value>,
    passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
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
            threshold: c.threshold.as_ref().map(output::json_of_value),
            against: c.against.clone(),
            actual: c.actual.as_ref().map(output::json_of_value),
            passed: c.passed,
            why: c.why.clone(),
        })
        .collect()
}

/// Returns the checks as a table: gate, required, actual, result.
pub fn checks_table(checks: &[CheckRecord]) -> String {
    if checks.is_empty() {
        return String::new();
    }
    let with_source = checks.iter().any(|c| c.source != COMMAND_LINE);
    let rows = checks
        .iter()
        .map(|c| {
            let gate = if with_source && c.source != COMMAND_LINE {
                format!("{} ({})", c.gate, c.source)
            } else {
                c.gate.clone()
            };
            vec![
                gate,
                c.required.clone(),
                c.actual
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), ToString::to_string),
                if c.passed { "pass" } else { "FAIL" }.to_owned(),
            ]
        })
        .collect();
    output::table(&["GATE", "REQUIRED", "ACTUAL", "RESULT"], rows)
}

/// Returns the failing checks as one line each, `GATE: why`, for an error message.
pub fn failures(checks: &[CheckRecord]) -> String {
    let mut out = String::new();
    for c in checks.iter().filter(|c| !c.passed) {
        let why = c.why.as_deref().unwrap_or("it does not hold");
        let _ = write!(out, "\n  {}: {why}", c.gate);
    }
    out
}

/// Parses gates given on the command line; a syntax error names the gate.
pub fn parse_gates(texts: &[String]) -> Result<Vec<SourcedGate>> {
    SourcedGate::parse_all(texts, COMMAND_LINE)
}

/// Refuses gates that compare with a stage the registry does not have, or read an
/// attribute versions do not have (a typo would otherwise look like a failing model).
pub fn check_gate_stages(
    config: &crate::store::config::Config,
    gates: &[SourcedGate],
) -> Result<()> {
    for g in gates {
        let key = g.gate.key();
        if key.ns == crate::query::Namespace::Attributes
            && !VERSION_ATTRIBUTES.contains(&key.name.as_str())
        {
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

#[derive(Serialize)]
struct Outcome {
    model: String,
    version: u64,
    passed: bool,
    checks: Vec<CheckRow>,
}

/// Runs `mreg gate`; a gate that does not hold is a failure that exits 3.
pub fn run(ctx: &Ctx, args: &GateArgs) -> Result<()> {
    let reg = ctx.registry()?;
    let config = reg.config()?;
    let gates = parse_gates(&args.gates)?;
    check_gate_stages(&config, &gates)?;
    if gates.is_empty() && args.stage.is_none() {
        return Err(Failure::usage("give at least one gate, or --stage STAGE")
            .hint("e.g. mreg gate churn@4 'acc>0.85' (quote each gate: > is a shell redirect)")
            .into());
    }
    let record = models::resolve(&reg, &ModelRef::parse(&args.reference)?)?;
    let state = stages::current(&reg, &record.model)?.map(|(_, s)| s);
    let mut all = Vec::new();
    let mut from = None;
    if let Some(name) = &args.stage {
        config.require_stage(name)?;
        let policy = config.policy(name);
        all = stage::policy_gates(name, &policy)?;
        from = policy.from.map(|f| (name.as_str(), f));
    }
    all.extend(gates);
    let fields = VersionFields::load(&reg, record.clone())?;
    let from = from.as_ref().map(|(s, f)| (*s, f.as_str()));
    let checks = stage::evaluate(&reg, &fields, state.as_ref(), from, &all);
    let passed = checks.iter().all(|c| c.passed);
    let outcome = Outcome {
        model: record.model.clone(),
        version: record.version,
        passed,
        checks: check_rows(&checks),
    };
    ctx.out.emit(&outcome, || checks_table(&checks))?;
    if passed {
        ctx.out.status(&format!(
            "{} passes {}.",
            record.reference(),
            output::count(checks.len() as u64, "gate")
        ));
        return Ok(());
    }
    let failed = checks.iter().filter(|c| !c.passed).count();
    Err(Failure::gate(format!(
        "{} fails {failed} of {}:{}",
        record.reference(),
        output::count(checks.len() as u64, "gate"),
        failures(&checks)
    ))
    .hint("nothing was recorded; `mreg promote` records a refusal, `mreg gate` never does")
    .into())
}
