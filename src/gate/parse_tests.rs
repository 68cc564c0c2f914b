//! Unit tests of the gate parser: each form, each error and its column.

use proptest::prelude::*;

use super::*;
use crate::error::Kind;
use crate::query::Namespace;
use crate::testing::fuzz;

fn gate(text: &str) -> Gate {
    Gate::parse(text).expect("valid gate")
}

fn literal(text: &str) -> Value {
    match gate(text).rhs {
        Rhs::Literal(value) => value,
        other @ Rhs::Stage { .. } => panic!("not a literal: {other:?}"),
    }
}

fn stage(text: &str) -> (String, Option<Adjust>) {
    match gate(text).rhs {
        Rhs::Stage { stage, adjust, .. } => (stage, adjust),
        other @ Rhs::Literal(_) => panic!("not a stage: {other:?}"),
    }
}

/// Returns the 1-based column, the description and the hint of the error in `text`.
fn error(text: &str) -> (usize, String, Option<&'static str>) {
    let src: Vec<char> = text.chars().collect();
    let err = parse_src(&src).expect_err("a syntax error");
    (err.column + 1, err.what, err.hint)
}

#[test]
fn parses_key_operator_and_literal() {
    let g = gate("acc>0.85");
    assert_eq!(g.key(), &Key::new(Namespace::Metrics, "acc"));
    assert_eq!(g.op(), Op::Gt);
    assert_eq!(g.rhs(), &Rhs::Literal(Value::Float(0.85)));
    assert_eq!(g.stage(), None);
    assert_eq!(g.text(), "acc>0.85");
    assert_eq!(g.to_string(), "acc>0.85");
}

#[test]
fn text_is_kept_as_written_but_trimmed() {
    let g = gate("  metrics.acc >=\t@production - 0.005 \n");
    assert_eq!(g.text(), "metrics.acc >=\t@production - 0.005");
    let compact = gate("acc>=@production-0.005");
    assert_eq!(
        (g.key(), g.op(), g.rhs()),
        (compact.key(), compact.op(), compact.rhs())
    );
}

#[test]
fn every_operator_parses() {
    for (text, op) in [
        (">", Op::Gt),
        (">=", Op::Ge),
        ("<", Op::Lt),
        ("<=", Op::Le),
        ("==", Op::Eq),
        ("!=", Op::Ne),
    ] {
        assert_eq!(gate(&format!("acc{text}1")).op(), op, "{text}");
        assert_eq!(gate(&format!("acc {text} 1")).op(), op, "{text}");
        assert_eq!(op.symbol(), text);
        assert_eq!(op.to_string(), text);
    }
}

#[test]
fn keys_follow_the_query_grammar() {
    let key = |text: &str| gate(&format!("{text} > 1")).key;
    assert_eq!(key("acc"), Key::new(Namespace::Metrics, "acc"));
    assert_eq!(key("val.loss"), Key::new(Namespace::Metrics, "val.loss"));
    assert_eq!(key("metrics.val.loss"), key("val.loss"));
    assert_eq!(key("params.lr"), Key::new(Namespace::Params, "lr"));
    assert_eq!(key("param.lr"), key("params.lr"));
    assert_eq!(key("tags.team"), Key::new(Namespace::Tags, "team"));
    assert_eq!(
        key("attributes.bytes"),
        Key::new(Namespace::Attributes, "bytes")
    );
    assert_eq!(
        key("params.`learning-rate`"),
        Key::new(Namespace::Params, "learning-rate")
    );
    assert_eq!(
        key("`weird key`"),
        Key::new(Namespace::Metrics, "weird key")
    );
    // No keywords in a gate: `and` is a metric's name here.
    assert_eq!(key("and"), Key::new(Namespace::Metrics, "and"));
}

#[test]
fn literals_of_each_type() {
    assert_eq!(literal("x==3"), Value::Int(3));
    assert_eq!(literal("x>-1"), Value::Int(-1));
    assert_eq!(literal("x>0.85"), Value::Float(0.85));
    assert_eq!(literal("x>.5"), Value::Float(0.5));
    assert_eq!(literal("x<1e-5"), Value::Float(1e-5));
    assert_eq!(literal("x<inf"), Value::Float(f64::INFINITY));
    assert_eq!(literal("x>-inf"), Value::Float(f64::NEG_INFINITY));
    assert_eq!(literal("x<INF"), Value::Float(f64::INFINITY));
    assert_eq!(literal("x==true"), Value::Bool(true));
    assert_eq!(literal("x!=False"), Value::Bool(false));
    assert_eq!(
        literal(r#"tags.team=="growth""#),
        Value::Str("growth".into())
    );
    assert_eq!(literal("tags.team == 'a b'"), Value::Str("a b".into()));
    assert_eq!(literal(r"tags.t=='it\'s'"), Value::Str("it's".into()));
}

#[test]
fn stage_gates_and_tolerances() {
    let s = |name: &str| name.to_owned();
    assert_eq!(stage("acc>=@production"), (s("production"), None));
    assert_eq!(
        gate("acc>=@production").stage(),
        Some("production"),
        "stage()"
    );
    assert_eq!(
        stage("acc>=@production-0.005"),
        (s("production"), Some(Adjust::Minus(0.005)))
    );
    assert_eq!(
        stage("acc >= @production - 0.005"),
        (s("production"), Some(Adjust::Minus(0.005)))
    );
    assert_eq!(
        stage("latency<=@production * 1.1"),
        (s("production"), Some(Adjust::Times(1.1)))
    );
    assert_eq!(
        stage("epochs>=@staging+1"),
        (s("staging"), Some(Adjust::Plus(1.0)))
    );
    assert_eq!(
        stage("acc>=@pre-prod-0.005"),
        (s("pre-prod"), Some(Adjust::Minus(0.005)))
    );
    assert_eq!(
        stage("acc>=@canary_2-1e-3"),
        (s("canary_2"), Some(Adjust::Minus(1e-3)))
    );
    assert_eq!(stage("acc>=@ production"), (s("production"), None));
    assert_eq!(stage("acc>=@a-b-c"), (s("a-b-c"), None));
}

#[test]
fn rhs_displays_for_tables() {
    assert_eq!(gate("acc>0.85").rhs().to_string(), "0.85");
    assert_eq!(gate("t=='a'").rhs().to_string(), "\"a\"");
    assert_eq!(
        gate("acc>=@production-0.005").rhs().to_string(),
        "@production - 0.005"
    );
    assert_eq!(gate("acc>=@staging*2").rhs().to_string(), "@staging * 2");
    assert_eq!(gate("acc>=@staging").rhs().to_string(), "@staging");
}

#[test]
fn adjust_keeps_ints_exact_and_refuses_non_numbers() {
    let int = Value::Int(9_007_199_254_740_993);
    assert_eq!(
        Adjust::Plus(1.0).apply(&int),
        Some(Value::Int(9_007_199_254_740_994))
    );
    assert_eq!(
        Adjust::Times(2.0).apply(&Value::Int(21)),
        Some(Value::Int(42))
    );
    assert_eq!(
        Adjust::Minus(0.5).apply(&Value::Int(1)),
        Some(Value::Float(0.5))
    );
    assert_eq!(
        Adjust::Plus(1.0).apply(&Value::Int(i64::MAX)),
        Some(Value::Float(9.223_372_036_85e18)),
        "a computed float keeps 12 significant digits"
    );
    assert_eq!(
        Adjust::Times(2.0).apply(&Value::Float(0.25)),
        Some(Value::Float(0.5))
    );
    assert_eq!(Adjust::Plus(1.0).apply(&Value::Str("1".into())), None);
    assert_eq!(Adjust::Plus(1.0).apply(&Value::Bool(true)), None);
}

#[test]
fn failure_names_the_gate_and_shows_a_caret() {
    let err = Gate::parse("acc>").expect_err("syntax error");
    assert_eq!(err.kind, Kind::Usage);
    assert_eq!(
        err.message,
        "gate 'acc>' has a syntax error at column 5: expected a number, a string, \
         true/false or @STAGE after '>', found the end of the gate\n  acc>\n      ^"
    );
    assert_eq!(err.hint.as_deref(), Some(VALUE_HINT));
    let err = Gate::parse(" tags.t == 'a' x ").expect_err("syntax error");
    assert_eq!(
        err.message,
        "gate \"tags.t == 'a' x\" has a syntax error at column 15: expected the end of \
         the gate after ''a'', found 'x'\n  tags.t == 'a' x\n                ^"
    );
    assert_eq!(err.hint.as_deref(), Some(GATE_HINT));
}

#[test]
fn empty_gate() {
    assert_eq!(error(""), (1, "the gate is empty".into(), Some(EMPTY_HINT)));
    assert_eq!(error("  ").0, 3);
    for text in ["", " \t"] {
        let err = Gate::parse(text).expect_err("empty");
        assert_eq!(err.message, "the gate is empty");
        assert_eq!(err.kind, Kind::Usage);
        assert_eq!(err.hint.as_deref(), Some(EMPTY_HINT));
    }
}

#[test]
fn missing_value() {
    let (col, what, hint) = error("acc>");
    assert_eq!(col, 5);
    assert_eq!(
        what,
        "expected a number, a string, true/false or @STAGE after '>', found the end of \
         the gate"
    );
    assert_eq!(hint, Some(VALUE_HINT));
    assert_eq!(error("acc >= ").0, 7);
    let (col, what, _) = error("acc > production");
    assert_eq!(col, 7);
    assert!(what.ends_with("after '>', found 'production'"), "{what}");
    assert_eq!(error("acc > f1").0, 7);
    assert_eq!(error("acc > `f1`").0, 7);
}

#[test]
fn key_without_operator_suggests_quoting() {
    let (col, what, hint) = error("acc");
    assert_eq!(col, 4);
    assert_eq!(
        what,
        "expected an operator after 'acc', found the end of the gate"
    );
    let hint = hint.expect("a hint");
    assert!(hint.contains("shell redirect"), "{hint}");
    assert!(hint.contains("--gate 'acc>0.85'"), "{hint}");
}

#[test]
fn value_without_operator() {
    let (col, what, hint) = error("acc 0.85");
    assert_eq!(col, 5);
    assert_eq!(what, "expected an operator after 'acc', found '0.85'");
    assert_eq!(hint, Some(MISSING_OP_HINT));
    assert_eq!(
        error("params.lr gt 1").1,
        "expected an operator after 'params.lr', found 'gt'"
    );
}

#[test]
fn wrong_operators_get_specific_hints() {
    for (text, col, op, hint) in [
        ("acc=0.85", 4, "=", "use =="),
        ("acc = 0.85", 5, "=", "use =="),
        ("acc===0.85", 4, "===", "use =="),
        ("acc=>0.85", 4, "=>", "use >="),
        ("acc=<0.85", 4, "=<", "use <="),
        ("acc<>0.85", 4, "<>", "use !="),
    ] {
        let (c, what, h) = error(text);
        assert_eq!(c, col, "{text}");
        assert_eq!(what, format!("'{op}' is not an operator"), "{text}");
        assert!(h.is_some_and(|h| h.starts_with(hint)), "{text}: {h:?}");
    }
}

#[test]
fn and_or_inside_a_gate() {
    for (text, col, word) in [
        ("acc>0.8 and f1>0.7", 9, "and"),
        ("acc>0.8 OR f1>0.7", 9, "OR"),
        ("acc>0.8 && f1>0.7", 9, "&&"),
        ("acc>=@production || f1>0.7", 18, "||"),
    ] {
        let (c, what, hint) = error(text);
        assert_eq!(c, col, "{text}");
        assert!(what.contains(&format!("'{word}'")), "{what}");
        let hint = hint.expect("a hint");
        assert!(hint.contains("several --gate flags"), "{hint}");
        assert!(hint.contains("all must hold"), "{hint}");
    }
}

#[test]
fn trailing_junk() {
    assert_eq!(
        error("acc>0.85 x"),
        (
            10,
            "expected the end of the gate after '0.85', found 'x'".into(),
            Some(GATE_HINT)
        )
    );
    assert_eq!(error("acc>0.85)").0, 9);
    assert_eq!(error("acc>@production-0.005 0.1").0, 23);
    assert_eq!(
        error("acc>0.85x"),
        (5, "'0.85x' is not a number".into(), None)
    );
    assert_eq!(error("acc > 1 > 2").0, 9);
}

#[test]
fn bad_stage_names() {
    assert_eq!(
        error("acc>@"),
        (
            6,
            "expected a stage name after '@', found the end of the gate".into(),
            Some(STAGE_HINT)
        )
    );
    assert_eq!(
        error("acc>@Production"),
        (
            6,
            "'Production' is not a stage name".into(),
            Some(STAGE_HINT)
        )
    );
    assert_eq!(
        error("acc>@prodUction").1,
        "'prodUction' is not a stage name"
    );
    assert_eq!(error("acc>@pre-Prod").1, "'pre-Prod' is not a stage name");
    assert_eq!(error("acc>@2nd").1, "'2nd' is not a stage name");
    assert_eq!(error("acc > @ !").0, 9);
    let (col, what, hint) = error("acc>=@latest");
    assert_eq!(col, 7);
    assert!(what.contains("reads as a version"), "{what}");
    assert_eq!(hint, Some(VERSION_LIKE_HINT));
    assert_eq!(error("acc>=@v3").0, 7);
    assert_eq!(error("acc>=@deadbeef").0, 7);
}

#[test]
fn bad_adjustments() {
    let (col, what, hint) = error("acc>@production-");
    assert_eq!(col, 17);
    assert_eq!(
        what,
        "expected a number after '-', found the end of the gate"
    );
    assert_eq!(hint, Some(ADJUST_HINT));
    let (col, what, hint) = error("acc>@production/2");
    assert_eq!(col, 16);
    assert_eq!(
        what,
        "expected +, -, * or the end of the gate after '@production', found '/'"
    );
    assert!(hint.is_some_and(|h| h.contains("multiply by 0.5")));
    assert_eq!(
        error("acc>@production - -0.1").1,
        "expected a number after '-', found '-'"
    );
    assert_eq!(error("acc>@production - -0.1").0, 19);
    assert_eq!(error("acc>@production*x").0, 17);
    assert_eq!(error("acc>@production*inf").0, 17);
    assert_eq!(
        error("acc>@production+1e999").1,
        "'1e999' is too large to adjust by"
    );
    assert_eq!(error("acc>@production+1.2.3").1, "'1.2.3' is not a number");
}

#[test]
fn nan_is_refused() {
    let (col, what, hint) = error("acc>nan");
    assert_eq!(col, 5);
    assert_eq!(what, "a gate cannot compare with NaN");
    assert_eq!(hint, Some(NAN_HINT));
    assert_eq!(error("acc == NaN").0, 8);
    assert!(Gate::parse("acc != -nan").is_err());
}

#[test]
fn key_must_come_first() {
    for (text, col, found) in [
        (">0.85", 1, "'>'"),
        ("0.85<acc", 1, "'0.85'"),
        ("'acc'>1", 1, "'''"),
        ("@production<acc", 1, "'@'"),
    ] {
        let (c, what, hint) = error(text);
        assert_eq!(c, col, "{text}");
        assert_eq!(what, format!("expected a key, found {found}"), "{text}");
        assert_eq!(hint, Some(KEY_FIRST_HINT), "{text}");
    }
    assert_eq!(error("params.>1").1, "expected a key name after 'params.'");
}

#[test]
fn negation_is_refused_with_a_hint() {
    assert_eq!(
        error("not acc>0.85"),
        (
            1,
            "a gate cannot be negated with 'not'".into(),
            Some(NEGATE_HINT)
        )
    );
    assert_eq!(error("!acc>0.85").1, "a gate cannot be negated with '!'");
    // A metric named `not` is still a key.
    assert_eq!(gate("not>1").key(), &Key::new(Namespace::Metrics, "not"));
}

#[test]
fn columns_count_characters() {
    assert_eq!(error("`é`>'ü' x").0, 9);
}

/// Gates of every form the grammar has, for mutations to start from.
const VALID_GATES: [&str; 6] = [
    "acc>0.85",
    "acc >= @production - 0.005",
    "metrics.loss<=@staging*1.1",
    "tags.team==\"growth\"",
    "`eval acc` != -3",
    "params.lr < 1e-3",
];

#[test]
fn the_seeds_of_the_mutations_parse() {
    for text in VALID_GATES {
        gate(text);
    }
}

proptest! {
    #![proptest_config(fuzz::config())]

    #[test]
    fn parsing_any_text_never_panics(text in any::<String>()) {
        let _ = Gate::parse(&text);
    }

    #[test]
    fn parsing_a_mutated_gate_never_panics(text in fuzz::mutated_one_of(&VALID_GATES)) {
        if let Ok(gate) = Gate::parse(&text) {
            // What parses is kept as written, and parses again the same.
            prop_assert_eq!(Gate::parse(&gate.text).map(|g| g.text).ok(), Some(gate.text));
        }
    }
}

#[test]
fn a_stage_with_a_question_mark_passes_while_it_is_empty() {
    for (text, adjust) in [
        ("acc>=@production?", None),
        ("acc >= @production? - 0.005", Some(Adjust::Minus(0.005))),
        ("acc>=@pre-prod?*1.1", Some(Adjust::Times(1.1))),
    ] {
        let g = gate(text);
        let Rhs::Stage {
            adjust: got,
            if_held,
            ..
        } = g.rhs()
        else {
            panic!("not a stage: {text}");
        };
        assert!(*if_held, "{text}");
        assert_eq!(*got, adjust, "{text}");
        assert!(g.rhs().to_string().contains('?'), "{text}");
    }
    assert!(matches!(
        gate("acc>=@production").rhs(),
        Rhs::Stage { if_held: false, .. }
    ));
    // The mark belongs to the name: a space before it, or two, is trailing text.
    assert_eq!(error("acc>=@production ?").0, 18);
    assert_eq!(error("acc>=@production??").0, 18);
}
