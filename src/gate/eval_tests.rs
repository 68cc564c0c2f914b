//! Unit tests of gate evaluation: every operator, tolerances, and every way a gate fails.

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
fn a_computed_threshold_is_compared_as_shown() {
    // 0.3 - 0.1 is 0.19999999999999998 and 0.1 + 0.2 is 0.30000000000000004 in binary
    // floats; thresholds are rounded to 12 significant digits, so a candidate scoring
    // exactly the shown threshold is judged against that threshold.
    let c = candidate(&[("acc", float(0.2))]).with_stage(
        "production",
        "churn@3",
        &[("acc", float(0.3))],
    );
    let result = check("acc>=@production-0.1", &c);
    assert!(result.passed);
    assert_eq!(result.required, ">= 0.2 (production churn@3: 0.3 - 0.1)");
    assert_eq!(result.threshold, Some(float(0.2)));
    assert_eq!(
        why("acc<@production-0.1", &c),
        "0.2 is not < 0.2 (churn@3 in production: 0.3 - 0.1)"
    );
    let c = candidate(&[("acc", float(0.3))]).with_stage(
        "production",
        "churn@3",
        &[("acc", float(0.1))],
    );
    assert!(check("acc>=@production+0.2", &c).passed);
    assert!(check("acc<=@production+0.2", &c).passed);
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
        Some(
            "production holds no version, so there is nothing to compare acc with \
             (@production? passes while it holds none)"
        )
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
    let c =
        candidate(&[("tags.v", s("b"))]).with_stage("production", "churn@3", &[("tags.v", s("a"))]);
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

#[test]
fn a_stage_gate_with_a_question_mark_passes_on_an_empty_stage_and_says_so() {
    let c = check(
        "acc>=@production?-0.005",
        &candidate(&[("acc", float(0.9))]),
    );
    assert!(c.passed && c.why.is_none(), "{c:?}");
    assert_eq!(
        c.required,
        ">= @production? - 0.005 (production holds no version: passes)"
    );
    assert_eq!((c.threshold, c.against), (None, None));
    // The candidate must still have a value to judge.
    assert_eq!(
        why("acc>=@production?", &candidate(&[])),
        "churn@4 has no metric acc"
    );
    assert_eq!(
        why("acc>=@production?", &candidate(&[("acc", float(f64::NAN))])),
        "acc of churn@4 is NaN"
    );
    // Once the stage holds a version, it is an ordinary stage gate.
    let held = candidate(&[("acc", float(0.9))]).with_stage(
        "production",
        "churn@3",
        &[("acc", float(0.95))],
    );
    assert_eq!(
        why("acc>=@production?", &held),
        "0.9 is not >= 0.95 (churn@3 in production)"
    );
    // Without the mark, an empty stage fails and says how to let it pass.
    assert!(why("acc>=@production", &candidate(&[("acc", float(0.9))])).contains("@production?"));
}
