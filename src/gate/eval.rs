//! Evaluates a gate against a candidate version and the versions holding stages.

use super::parse::{Adjust, Gate, Rhs};
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
        Rhs::Stage { stage, adjust } => {
            let holder = subject.holder(stage, key);
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

/// Returns the threshold of a stage gate, or why there is none.
fn stage_threshold(
    key: &Key,
    stage: &str,
    adjust: Option<Adjust>,
    holder: Option<(String, Option<Value>)>,
) -> Result<Threshold, String> {
    let Some((holder, value)) = holder else {
        return Err(format!(
            "{stage} holds no version, so there is nothing to compare {} with",
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
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::query::parse_key;

    type Values = HashMap<Key, Value>;

    /// A candidate `churn@4` and, per stage, the label and values of its holder.
    struct Fake {
        values: Values,
        stages: HashMap<String, (String, Values)>,
    }

    fn values(pairs: &[(&str, Value)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| (parse_key(k).expect("valid key"), v.clone()))
            .collect()
    }

    fn candidate(pairs: &[(&str, Value)]) -> Fake {
        Fake {
            values: values(pairs),
            stages: HashMap::new(),
        }
    }

    impl Fake {
        fn with_stage(mut self, stage: &str, label: &str, pairs: &[(&str, Value)]) -> Fake {
            self.stages
                .insert(stage.to_owned(), (label.to_owned(), values(pairs)));
            self
        }
    }

    impl Subject for Fake {
        fn label(&self) -> String {
            "churn@4".to_owned()
        }

        fn value(&self, key: &Key) -> Option<Value> {
            self.values.get(key).cloned()
        }

        fn holder(&self, stage: &str, key: &Key) -> Option<(String, Option<Value>)> {
            let (label, values) = self.stages.get(stage)?;
            Some((label.clone(), values.get(key).cloned()))
        }
    }

    fn check(gate: &str, subject: &Fake) -> Check {
        evaluate(&Gate::parse(gate).expect("valid gate"), subject)
    }

    /// Returns the reason a gate failed, panicking if it passed.
    fn why(gate: &str, subject: &Fake) -> String {
        let c = check(gate, subject);
        assert!(!c.passed, "{gate} passed");
        c.why.expect("a failed check says why")
    }

    fn passes(gate: &str, subject: &Fake) -> bool {
        let c = check(gate, subject);
        assert_eq!(c.passed, c.why.is_none(), "{gate}: {c:?}");
        c.passed
    }

    fn float(f: f64) -> Value {
        Value::Float(f)
    }

    fn s(text: &str) -> Value {
        Value::Str(text.to_owned())
    }

    #[test]
    fn every_operator_passes_and_fails() {
        for (gate, pass, fail) in [
            ("acc > 0.85", 0.9, 0.85),
            ("acc >= 0.85", 0.85, 0.84),
            ("acc < 0.85", 0.84, 0.85),
            ("acc <= 0.85", 0.85, 0.86),
            ("acc == 0.85", 0.85, 0.86),
            ("acc != 0.85", 0.86, 0.85),
        ] {
            assert!(passes(gate, &candidate(&[("acc", float(pass))])), "{gate}");
            let op = &gate[4..gate.len() - 5];
            assert_eq!(
                why(gate, &candidate(&[("acc", float(fail))])),
                format!("{fail} is not {op} 0.85"),
            );
        }
    }

    #[test]
    fn a_literal_check_records_what_it_compared() {
        let c = check("acc>0.85", &candidate(&[("acc", float(0.84))]));
        assert_eq!(
            c,
            Check {
                gate: "acc>0.85".into(),
                required: "> 0.85".into(),
                threshold: Some(float(0.85)),
                against: None,
                actual: Some(float(0.84)),
                passed: false,
                why: Some("0.84 is not > 0.85".into()),
            }
        );
        let c = check(" acc > 0.85 ", &candidate(&[("acc", float(0.9))]));
        assert!(c.passed);
        assert_eq!((c.gate.as_str(), c.why), ("acc > 0.85", None));
    }

    #[test]
    fn ints_and_floats_compare_exactly() {
        let c = candidate(&[
            ("epochs", Value::Int(3)),
            ("big", Value::Int(9_007_199_254_740_993)),
        ]);
        assert!(passes("epochs >= 2.5", &c));
        assert!(passes("epochs == 3.0", &c));
        assert!(!passes("epochs < 3", &c));
        assert!(passes("big > 9007199254740992.0", &c));
        assert!(passes("epochs < inf", &c));
        assert!(passes("epochs > -inf", &c));
        assert_eq!(why("epochs > 3", &c), "3 is not > 3");
    }

    #[test]
    fn strings_compare_by_bytes() {
        let c = candidate(&[("tags.team", s("growth"))]);
        assert!(passes(r#"tags.team == "growth""#, &c));
        assert!(passes("tags.team != 'Growth'", &c));
        assert!(passes("tags.team > 'a'", &c));
        let c = candidate(&[("tags.team", s("beta"))]);
        let c_check = check("tags.team=='growth'", &c);
        assert_eq!(c_check.required, r#"== "growth""#);
        assert_eq!(c_check.why.as_deref(), Some(r#""beta" is not == "growth""#));
    }

    #[test]
    fn bools_only_test_equality() {
        let c = candidate(&[("params.amp", Value::Bool(true))]);
        assert!(passes("params.amp == true", &c));
        assert!(passes("params.amp != false", &c));
        assert_eq!(why("params.amp == false", &c), "true is not == false");
        assert_eq!(
            why("params.amp > false", &c),
            "true is not > false: bools compare only with == and !="
        );
    }

    #[test]
    fn mismatched_types_fail_with_the_reason() {
        let c = candidate(&[("acc", s("0.9")), ("params.amp", Value::Int(1))]);
        assert_eq!(
            why("acc > 0.85", &c),
            r#""0.9" is not > 0.85: a string and a number never compare"#
        );
        assert_eq!(
            why("params.amp != true", &c),
            "1 is not != true: a number and a bool never compare"
        );
    }

    #[test]
    fn a_missing_key_fails_whatever_the_operator() {
        let c = candidate(&[("f1", float(0.9))]);
        for op in [">", ">=", "<", "<=", "==", "!="] {
            let result = check(&format!("acc {op} 0.85"), &c);
            assert!(!result.passed, "{op}");
            assert_eq!(result.why.as_deref(), Some("churn@4 has no metric acc"));
            assert_eq!(result.actual, None);
            assert_eq!(result.threshold, Some(float(0.85)));
        }
        assert_eq!(why("params.lr < 1", &c), "churn@4 has no param lr");
        assert_eq!(why("tags.team == 'a'", &c), "churn@4 has no tag team");
        assert_eq!(
            why("attributes.bytes < 1", &c),
            "churn@4 has no attribute bytes"
        );
        assert_eq!(
            why("params.`learning-rate` < 1", &c),
            "churn@4 has no params.`learning-rate`"
        );
    }

    #[test]
    fn a_nan_candidate_fails_whatever_the_operator() {
        let c = candidate(&[("acc", float(f64::NAN)), ("params.lr", float(f64::NAN))]);
        for op in [">", ">=", "<", "<=", "==", "!="] {
            assert_eq!(why(&format!("acc {op} 0.85"), &c), "acc of churn@4 is NaN");
        }
        assert_eq!(why("params.lr != 1", &c), "params.lr of churn@4 is NaN");
    }

    #[test]
    fn compares_with_the_stage_holder() {
        let c = candidate(&[("acc", float(0.91))]).with_stage(
            "production",
            "churn@3",
            &[("acc", float(0.9))],
        );
        let result = check("acc>@production", &c);
        assert!(result.passed);
        assert_eq!(result.required, "> 0.9 (production churn@3)");
        assert_eq!(result.threshold, Some(float(0.9)));
        assert_eq!(result.against.as_deref(), Some("churn@3"));
        assert_eq!(result.actual, Some(float(0.91)));
        assert!(!passes("acc<@production", &c));
        assert!(passes("acc!=@production", &c));
        let same = candidate(&[("acc", float(0.9))]).with_stage(
            "production",
            "churn@3",
            &[("acc", float(0.9))],
        );
        assert_eq!(
            why("acc>@production", &same),
            "0.9 is not > 0.9 (churn@3 in production)"
        );
        assert!(passes("acc>=@production", &same));
    }

    #[test]
    fn a_minus_tolerance_shows_a_rounded_threshold() {
        let holder = [("acc", float(0.917))];
        let c = candidate(&[("acc", float(0.915))]).with_stage("production", "churn@3", &holder);
        let result = check("acc>=@production-0.005", &c);
        assert!(result.passed, "{result:?}");
        assert_eq!(
            result.required,
            ">= 0.912 (production churn@3: 0.917 - 0.005)"
        );
        assert_eq!(result.threshold, Some(float(0.917 - 0.005)));
        let c = candidate(&[("acc", float(0.9))]).with_stage("production", "churn@3", &holder);
        assert_eq!(
            why("acc >= @production - 0.005", &c),
            "0.9 is not >= 0.912 (churn@3 in production: 0.917 - 0.005)"
        );
    }

    #[test]
    fn a_noisy_threshold_shows_rounded() {
        // 0.3 - 0.1 is 0.19999999999999998 in floats.
        let c = candidate(&[("acc", float(0.2))]).with_stage(
            "production",
            "churn@3",
            &[("acc", float(0.3))],
        );
        let result = check("acc>=@production-0.1", &c);
        assert!(result.passed);
        assert_eq!(result.required, ">= 0.2 (production churn@3: 0.3 - 0.1)");
        assert_eq!(result.threshold, Some(float(0.3 - 0.1)));
        assert_eq!(
            why("acc<@production-0.1", &c),
            "0.2 is not < 0.19999999999999998 (churn@3 in production: 0.3 - 0.1)"
        );
    }

    #[test]
    fn a_refusal_at_the_rounded_threshold_shows_every_digit() {
        // 0.1 + 0.2 is 0.30000000000000004 in floats, just above 0.3; the exact value is
        // what is compared, so a candidate at 0.3 fails, and the message must not read
        // "0.3 is not >= 0.3".
        let c = candidate(&[("acc", float(0.3))]).with_stage(
            "production",
            "churn@3",
            &[("acc", float(0.1))],
        );
        let result = check("acc>=@production+0.2", &c);
        assert_eq!(result.required, ">= 0.3 (production churn@3: 0.1 + 0.2)");
        assert_eq!(
            result.why.as_deref(),
            Some("0.3 is not >= 0.30000000000000004 (churn@3 in production: 0.1 + 0.2)")
        );
    }

    #[test]
    fn plus_and_times_tolerances() {
        let c = candidate(&[
            ("params.epochs", Value::Int(6)),
            ("latency", Value::Int(111)),
        ])
        .with_stage(
            "staging",
            "churn@2",
            &[
                ("params.epochs", Value::Int(5)),
                ("latency", Value::Int(100)),
            ],
        );
        let result = check("params.epochs>=@staging+1", &c);
        assert!(result.passed);
        assert_eq!(result.threshold, Some(Value::Int(6)));
        assert_eq!(result.required, ">= 6 (staging churn@2: 5 + 1)");
        assert!(!passes("params.epochs > @staging + 1", &c));
        let result = check("latency <= @staging * 1.1", &c);
        assert_eq!(result.required, "<= 110.0 (staging churn@2: 100 * 1.1)");
        assert_eq!(
            result.why.as_deref(),
            Some("111 is not <= 110.0 (churn@2 in staging: 100 * 1.1)")
        );
        assert!(passes("latency <= @staging*1.2", &c));
        assert!(passes("latency >= @staging*1.1", &c));
    }

    #[test]
    fn a_hyphenated_stage_with_a_tolerance() {
        let c = candidate(&[("acc", float(0.8))]).with_stage(
            "pre-prod",
            "churn@3",
            &[("acc", float(0.804))],
        );
        assert!(passes("acc>=@pre-prod-0.005", &c));
        assert_eq!(
            why("acc>=@pre-prod-0.001", &c),
            "0.8 is not >= 0.803 (churn@3 in pre-prod: 0.804 - 0.001)"
        );
    }

    #[test]
    fn an_empty_stage_fails() {
        let c = candidate(&[("acc", float(0.9))]);
        let result = check("acc>=@production-0.005", &c);
        assert!(!result.passed);
        assert_eq!(
            result.why.as_deref(),
            Some("production holds no version, so there is nothing to compare acc with")
        );
        assert_eq!(result.required, ">= @production - 0.005");
        assert_eq!((result.threshold, result.against), (None, None));
        assert_eq!(result.actual, Some(float(0.9)));
    }

    #[test]
    fn a_holder_without_the_key_fails() {
        let c = candidate(&[("acc", float(0.9))]).with_stage(
            "production",
            "churn@3",
            &[("f1", float(0.9))],
        );
        let result = check("acc>@production", &c);
        assert!(!result.passed);
        assert_eq!(
            result.why.as_deref(),
            Some("churn@3 (production) has no metric acc")
        );
        assert_eq!(result.against.as_deref(), Some("churn@3"));
        assert_eq!(result.threshold, None);
        assert_eq!(result.required, "> @production");
    }

    #[test]
    fn a_nan_holder_fails() {
        let c = candidate(&[("acc", float(0.9))]).with_stage(
            "production",
            "churn@3",
            &[("acc", float(f64::NAN))],
        );
        for gate in ["acc>@production", "acc!=@production", "acc<@production+1"] {
            assert_eq!(
                why(gate, &c),
                "acc of churn@3 (production) is NaN",
                "{gate}"
            );
        }
    }

    #[test]
    fn the_candidate_is_blamed_before_the_stage() {
        let c = candidate(&[]).with_stage("production", "churn@3", &[]);
        assert_eq!(why("acc>@production", &c), "churn@4 has no metric acc");
        let c = candidate(&[("acc", float(f64::NAN))]);
        assert_eq!(why("acc>@production", &c), "acc of churn@4 is NaN");
    }

    #[test]
    fn an_adjustment_of_a_non_number_fails() {
        let c = candidate(&[("tags.v", s("b"))]).with_stage(
            "production",
            "churn@3",
            &[("tags.v", s("a"))],
        );
        assert_eq!(
            why("tags.v > @production + 1", &c),
            "tags.v of churn@3 (production) is \"a\", which is not a number, so \
             @production + 1 cannot be computed"
        );
        // Without an adjustment, strings compare with the holder's.
        assert!(passes("tags.v > @production", &c));
        let c = candidate(&[("x", float(1.0))]).with_stage(
            "production",
            "churn@3",
            &[("x", float(f64::INFINITY))],
        );
        assert_eq!(
            why("x < @production * 0", &c),
            "inf * 0 is NaN, so there is nothing to compare x with"
        );
    }

    #[test]
    fn computed_values_show_twelve_significant_digits() {
        assert_eq!(computed(&float(0.1 + 0.2)), "0.3");
        assert_eq!(computed(&float(0.3 - 0.1)), "0.2");
        assert_eq!(computed(&float(100.0 * 1.1)), "110.0");
        assert_eq!(computed(&float(1.0 / 3.0)), "0.333333333333");
        assert_eq!(computed(&float(-2.5e-7)), "-0.00000025");
        assert_eq!(computed(&float(f64::INFINITY)), "inf");
        assert_eq!(computed(&Value::Int(6)), "6");
    }
}
