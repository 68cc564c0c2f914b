//! Evaluates a gate against a candidate version and the versions holding stages.

use super::expr::{Adjust, Gate, Rhs};
use crate::manifest::Value;
use crate::manifest::value::format_float;
use crate::query::{Key, Namespace, Op, compare};

/// Returns the values a gate is evaluated against: the candidate's, and those of the
/// versions holding stages.
pub trait Subject {
    /// Returns the candidate's label, e.g. "churn@4".
    fn label(&self) -> String;

    /// Returns the candidate's value under `key`, `None` when it has none.
    fn value(&self, key: &Key) -> Option<Value>;

    /// Returns the version holding `stage` as its label (like "churn@3") and its value
    /// under `key`; `None` when the stage holds no version.
    fn holder(&self, stage: &str, key: &Key) -> Option<(String, Option<Value>)>;
}

/// Returns the outcome of one gate for one candidate, with what a table or record shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The gate as written.
    pub gate: String,
    /// What the candidate's value had to be, e.g. "> 0.85", or
    /// ">= 0.912 (production churn@3: 0.917 - 0.005)".
    pub required: String,
    /// The value compared against, when known; after an adjustment, the exact result.
    pub threshold: Option<Value>,
    /// The label of the version holding the stage, for stage gates whose stage holds one.
    pub against: Option<String>,
    /// The candidate's value, when it has one.
    pub actual: Option<Value>,
    /// Whether the gate held.
    pub passed: bool,
    /// Why the gate failed, as a sentence without a final period; `None` when it passed.
    pub why: Option<String>,
}

/// What the candidate's value is compared with, once known.
struct Threshold {
    value: Value,
    /// The value for people: a computed float shows at most 12 significant digits.
    shown: String,
    /// The value with every digit, for when `shown` would look equal to the candidate's.
    exact: String,
    /// Where the value came from, for `Check::required`: " (production churn@3)".
    required_note: String,
    /// Where the value came from, for `Check::why`: " (churn@3 in production)".
    why_note: String,
}

/// Returns the outcome of `gate` for the candidate of `subject`; never a silent pass.
///
/// The gate fails, with a sentence saying why, when the candidate lacks the key or its
/// value is NaN; for a stage gate, when the stage holds no version, the holder lacks the
/// key or its value is NaN, or an adjustment meets a value that is not a number. Otherwise
/// values compare as in `--where`: numbers exactly (ints and floats mixed), strings by
/// bytes, bools only with `==` and `!=`, and any other pairing of types fails.
pub fn evaluate(gate: &Gate, subject: &dyn Subject) -> Check {
    let key = gate.key();
    let op = gate.op();
    let label = subject.label();
    let actual = subject.value(key);
    let mut against = None;
    let threshold = match gate.rhs() {
        Rhs::Literal(value) => Ok(Threshold {
            value: value.clone(),
            shown: shown(value),
            exact: shown(value),
            required_note: String::new(),
            why_note: String::new(),
        }),
        Rhs::Stage {
            stage,
            adjust,
            if_held,
        } => {
            let holder = subject.holder(stage, key);
            if holder.is_none() && *if_held {
                return empty_stage_pass(gate, stage, &label, actual);
            }
            against = holder.as_ref().map(|(label, _)| label.clone());
            stage_threshold(key, stage, *adjust, holder)
        }
    };
    let required = match &threshold {
        Ok(t) => format!("{op} {}{}", t.shown, t.required_note),
        Err(_) => format!("{op} {}", gate.rhs()),
    };
    let why = match (&actual, &threshold) {
        (None, _) => Some(format!("{label} has no {}", noun(key))),
        (Some(value), _) if is_nan(value) => Some(format!("{} of {label} is NaN", short(key))),
        (Some(_), Err(problem)) => Some(problem.clone()),
        (Some(value), Ok(t)) => (!compare(value, op, &t.value)).then(|| refusal(value, op, t)),
    };
    Check {
        gate: gate.text().to_owned(),
        required,
        threshold: threshold.ok().map(|t| t.value),
        against,
        passed: why.is_none(),
        actual,
        why,
    }
}

/// Returns the outcome of an `@STAGE?` gate whose stage holds no version: a pass, saying
/// so in `required`, as long as the candidate has a value (NaN included: there is no
/// value to compare it with) under the key.
fn empty_stage_pass(gate: &Gate, stage: &str, label: &str, actual: Option<Value>) -> Check {
    let key = gate.key();
    let why = match &actual {
        None => Some(format!("{label} has no {}", noun(key))),
        Some(value) if is_nan(value) => Some(format!("{} of {label} is NaN", short(key))),
        Some(_) => None,
    };
    Check {
        gate: gate.text().to_owned(),
        required: format!(
            "{} {} ({stage} holds no version: passes)",
            gate.op(),
            gate.rhs()
        ),
        threshold: None,
        against: None,
        passed: why.is_none(),
        actual,
        why,
    }
}

/// Returns the threshold of a stage gate, or why there is none.
fn stage_threshold(
    key: &Key,
    stage: &str,
    adjust: Option<Adjust>,
    holder: Option<(String, Option<Value>)>,
) -> Result<Threshold, String> {
    let Some((holder, value)) = holder else {
        return Err(format!(
            "{stage} holds no version, so there is nothing to compare {} with (@{stage}? \
             passes while it holds none)",
            short(key)
        ));
    };
    let who = format!("{holder} ({stage})");
    let value = match value {
        None => return Err(format!("{who} has no {}", noun(key))),
        Some(value) if is_nan(&value) => return Err(format!("{} of {who} is NaN", short(key))),
        Some(value) => value,
    };
    let Some(adjust) = adjust else {
        return Ok(Threshold {
            shown: shown(&value),
            exact: shown(&value),
            value,
            required_note: format!(" ({stage} {holder})"),
            why_note: format!(" ({holder} in {stage})"),
        });
    };
    let Some(adjusted) = adjust.apply(&value) else {
        return Err(format!(
            "{} of {who} is {}, which is not a number, so @{stage} {adjust} cannot be computed",
            short(key),
            shown(&value)
        ));
    };
    let formula = format!("{} {adjust}", shown(&value));
    if is_nan(&adjusted) {
        return Err(format!(
            "{formula} is NaN, so there is nothing to compare {} with",
            short(key)
        ));
    }
    Ok(Threshold {
        shown: computed(&adjusted),
        exact: shown(&adjusted),
        value: adjusted,
        required_note: format!(" ({stage} {holder}: {formula})"),
        why_note: format!(" ({holder} in {stage}: {formula})"),
    })
}

/// Returns why `actual op threshold` does not hold: "0.84 is not > 0.85", and the reason
/// when the types cannot compare.
fn refusal(actual: &Value, op: Op, threshold: &Threshold) -> String {
    let actual_shown = shown(actual);
    // 0.912 is not >= 0.9120000000000001: with fewer digits it would read as a wrong refusal.
    let threshold_shown = if actual_shown == threshold.shown {
        &threshold.exact
    } else {
        &threshold.shown
    };
    let reason = match (kind(actual), kind(&threshold.value)) {
        (a, b) if a != b => format!(": {a} and {b} never compare"),
        ("a bool", _) if !matches!(op, Op::Eq | Op::Ne) => {
            ": bools compare only with == and !=".to_owned()
        }
        _ => String::new(),
    };
    format!(
        "{actual_shown} is not {op} {threshold_shown}{}{reason}",
        threshold.why_note
    )
}

fn is_nan(value: &Value) -> bool {
    matches!(value, Value::Float(f) if f.is_nan())
}

/// Returns a value for messages: as [`Value`] shows it, strings in double quotes.
fn shown(value: &Value) -> String {
    match value {
        Value::Str(s) => format!("{s:?}"),
        _ => value.to_string(),
    }
}

/// Returns a computed value for messages: floats with at most 12 significant digits, so
/// 0.917 - 0.005 shows as 0.912 rather than 0.9120000000000001.
fn computed(value: &Value) -> String {
    match value {
        Value::Float(f) if f.is_finite() => {
            let rounded: f64 = format!("{f:.11e}").parse().unwrap_or(*f);
            format_float(rounded)
        }
        _ => shown(value),
    }
}

/// Returns the type of a value for messages: "a number", "a string" or "a bool".
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Int(_) | Value::Float(_) => "a number",
        Value::Str(_) => "a string",
        Value::Bool(_) => "a bool",
    }
}

/// Returns a key for "has no …": "metric acc", "param lr"; the key as written when its
/// name needs backticks.
fn noun(key: &Key) -> String {
    let written = key.to_string();
    if written.contains('`') {
        return written;
    }
    let kind = match key.ns {
        Namespace::Params => "param",
        Namespace::Metrics => "metric",
        Namespace::Tags => "tag",
        Namespace::Attributes => "attribute",
    };
    format!("{kind} {}", key.name)
}

/// Returns a key for "… of churn@4 is NaN": a metric's bare name, else the key as written.
fn short(key: &Key) -> String {
    let written = key.to_string();
    if key.ns == Namespace::Metrics && !written.contains('`') {
        key.name.clone()
    } else {
        written
    }
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
