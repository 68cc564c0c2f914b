//! Evaluates parsed expressions against rows, and orders values for `--sort`.

use std::cmp::Ordering;

use super::key::Key;
use super::parse::{Expr, Node, Op};
use crate::manifest::Value;

/// Returns the fields of one row (a run, a model version) to an expression.
///
/// Closures `Fn(&Key) -> Option<Value>` implement it too.
pub trait Fields {
    /// Returns the value under `key`, or `None` when the row does not have it.
    fn field(&self, key: &Key) -> Option<Value>;
}

impl<F: Fn(&Key) -> Option<Value>> Fields for F {
    fn field(&self, key: &Key) -> Option<Value> {
        self(key)
    }
}

impl Expr {
    /// Returns whether the row satisfies the expression.
    ///
    /// Never fails: a missing key or a type mismatch makes its comparison false.
    pub fn matches(&self, row: &dyn Fields) -> bool {
        eval(&self.node, row)
    }
}

fn eval(node: &Node, row: &dyn Fields) -> bool {
    match node {
        Node::Compare { key, op, value } => row.field(key).is_some_and(|v| compare(&v, *op, value)),
        Node::Truthy(key) => row.field(key) == Some(Value::Bool(true)),
        Node::Not(inner) => !eval(inner, row),
        Node::And(a, b) => eval(a, row) && eval(b, row),
        Node::Or(a, b) => eval(a, row) || eval(b, row),
    }
}

fn is_nan(value: &Value) -> bool {
    matches!(value, Value::Float(f) if f.is_nan())
}

/// Returns whether `left op right` holds, by the rules in the module docs.
///
/// Gates compare with this function too, so `--where` and gates agree.
pub(crate) fn compare(left: &Value, op: Op, right: &Value) -> bool {
    if is_nan(right) {
        return op == Op::Eq && is_nan(left);
    }
    let ordering = match (left, right) {
        (Value::Str(a), Value::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Value::Bool(a), Value::Bool(b)) => {
            return match op {
                Op::Eq => a == b,
                Op::Ne => a != b,
                Op::Gt | Op::Ge | Op::Lt | Op::Le => false,
            };
        }
        _ => number_order(left, right),
    };
    ordering.is_some_and(|o| match op {
        Op::Gt => o.is_gt(),
        Op::Ge => o.is_ge(),
        Op::Lt => o.is_lt(),
        Op::Le => o.is_le(),
        Op::Eq => o.is_eq(),
        Op::Ne => o.is_ne(),
    })
}

/// Returns the exact order of two numbers; `None` when either is NaN or not a number.
fn number_order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Int(x), Value::Float(y)) => int_float_order(*x, *y),
        (Value::Float(x), Value::Int(y)) => int_float_order(*y, *x).map(Ordering::reverse),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        _ => None,
    }
}

/// Returns how `int` compares with `float`, without rounding `int` to a float.
fn int_float_order(int: i64, float: f64) -> Option<Ordering> {
    // 2^63: every float in [-2^63, 2^63) truncates to an i64 exactly.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if float.is_nan() {
        None
    } else if float >= LIMIT {
        Some(Ordering::Less)
    } else if float < -LIMIT {
        Some(Ordering::Greater)
    } else {
        let whole = float.trunc();
        Some(
            int.cmp(&(whole as i64))
                .then_with(|| 0.0_f64.total_cmp(&(float - whole))),
        )
    }
}

/// Returns the order of two rows' values under `--sort`.
///
/// Missing values always sort last, whatever the direction, and NaN just before them.
/// A mixed column puts numbers first, then strings, then bools; `descending` reverses
/// the order within each of these groups only. Numbers compare exactly, ints and floats
/// mixed; strings by bytes; `false` before `true`.
pub fn compare_for_sort(a: Option<&Value>, b: Option<&Value>, descending: bool) -> Ordering {
    fn group(value: Option<&Value>) -> u8 {
        match value {
            Some(v) if is_nan(v) => 3,
            Some(Value::Int(_) | Value::Float(_)) => 0,
            Some(Value::Str(_)) => 1,
            Some(Value::Bool(_)) => 2,
            None => 4,
        }
    }
    let by_group = group(a).cmp(&group(b));
    if by_group.is_ne() {
        return by_group;
    }
    let by_value = match (a, b) {
        (Some(Value::Str(x)), Some(Value::Str(y))) => x.as_bytes().cmp(y.as_bytes()),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(x), Some(y)) => number_order(x, y).unwrap_or(Ordering::Equal),
        _ => Ordering::Equal,
    };
    if descending {
        by_value.reverse()
    } else {
        by_value
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::query::{Namespace, parse_key};

    /// A row built from `key = value` pairs; implementing `Fields` beside the closure impl.
    struct Row(HashMap<Key, Value>);

    impl Fields for Row {
        fn field(&self, key: &Key) -> Option<Value> {
            self.0.get(key).cloned()
        }
    }

    fn row(pairs: &[(&str, Value)]) -> Row {
        let map = pairs
            .iter()
            .map(|(k, v)| (parse_key(k).expect("valid key"), v.clone()))
            .collect();
        Row(map)
    }

    fn holds(text: &str, row: &Row) -> bool {
        Expr::parse(text).expect("valid expression").matches(row)
    }

    fn s(text: &str) -> Value {
        Value::Str(text.to_owned())
    }

    /// Returns which of the six operators hold for `x OP literal`.
    fn ops(value: Value, literal: &str) -> [bool; 6] {
        let r = row(&[("x", value)]);
        ["<", "<=", "==", "!=", ">=", ">"].map(|op| holds(&format!("x {op} {literal}"), &r))
    }

    const LESS: [bool; 6] = [true, true, false, true, false, false];
    const EQUAL: [bool; 6] = [false, true, true, false, true, false];
    const GREATER: [bool; 6] = [false, false, false, true, true, true];
    const NEVER: [bool; 6] = [false; 6];

    #[test]
    fn operators_on_ints_and_floats() {
        assert_eq!(ops(Value::Int(2), "3"), LESS);
        assert_eq!(ops(Value::Int(3), "3"), EQUAL);
        assert_eq!(ops(Value::Int(-4), "-5"), GREATER);
        assert_eq!(ops(Value::Float(0.5), "0.75"), LESS);
        assert_eq!(ops(Value::Float(0.75), "0.75"), EQUAL);
        assert_eq!(ops(Value::Float(1e-3), "1e-4"), GREATER);
        assert_eq!(ops(Value::Float(f64::INFINITY), "inf"), EQUAL);
        assert_eq!(ops(Value::Float(-1e300), "-inf"), GREATER);
    }

    #[test]
    fn ints_and_floats_compare_mixed_and_exactly() {
        assert_eq!(ops(Value::Int(3), "3.0"), EQUAL);
        assert_eq!(ops(Value::Int(3), "3.5"), LESS);
        assert_eq!(ops(Value::Float(2.5), "2"), GREATER);
        assert_eq!(ops(Value::Float(-2.5), "-2"), LESS);
        // 2^53 + 1 is not a float; rounding it would make these equal.
        assert_eq!(
            ops(Value::Int(9_007_199_254_740_993), "9007199254740992.0"),
            GREATER
        );
        assert_eq!(
            ops(Value::Int(9_007_199_254_740_993), "9007199254740993"),
            EQUAL
        );
        assert_eq!(ops(Value::Int(i64::MAX), "1e19"), LESS);
        assert_eq!(ops(Value::Int(i64::MIN), "-1e19"), GREATER);
        assert_eq!(ops(Value::Int(i64::MIN), "-9223372036854775808.0"), EQUAL);
    }

    #[test]
    fn operators_on_strings_compare_bytes() {
        assert_eq!(ops(s("apple"), "'banana'"), LESS);
        assert_eq!(ops(s("growth"), r#""growth""#), EQUAL);
        assert_eq!(ops(s("b"), "'B'"), GREATER);
        assert_eq!(
            ops(s("2024-03-01T10:00:00Z"), "'2024-02-28T23:59:59Z'"),
            GREATER
        );
    }

    #[test]
    fn operators_on_bools_only_test_equality() {
        assert_eq!(
            ops(Value::Bool(true), "true"),
            [false, false, true, false, false, false]
        );
        assert_eq!(
            ops(Value::Bool(true), "false"),
            [false, false, false, true, false, false]
        );
    }

    #[test]
    fn mismatched_types_never_match() {
        assert_eq!(ops(s("3"), "3"), NEVER);
        assert_eq!(ops(Value::Int(1), "true"), NEVER);
        assert_eq!(ops(Value::Bool(false), "'false'"), NEVER);
        assert_eq!(ops(Value::Float(0.0), "''"), NEVER);
    }

    #[test]
    fn missing_keys_never_match_any_operator() {
        let r = row(&[("y", Value::Int(1))]);
        for op in ["<", "<=", "==", "!=", ">=", ">"] {
            for literal in ["1", "1.5", "'a'", "true", "nan", "inf"] {
                assert!(!holds(&format!("x {op} {literal}"), &r), "x {op} {literal}");
                assert!(!holds(&format!("{literal} {op} x"), &r), "{literal} {op} x");
            }
        }
        assert!(!holds("x", &r));
    }

    #[test]
    fn not_of_a_missing_key_is_true() {
        let empty = row(&[]);
        assert!(holds("not params.debug", &empty));
        assert!(holds("not tags.team == 'growth'", &empty));
        assert!(!holds("tags.team != 'growth'", &empty));
    }

    #[test]
    fn nan_compares_false_except_equal_nan() {
        let nan = Value::Float(f64::NAN);
        assert_eq!(ops(nan.clone(), "1"), NEVER);
        assert_eq!(ops(nan.clone(), "inf"), NEVER);
        assert_eq!(
            ops(nan.clone(), "nan"),
            [false, false, true, false, false, false]
        );
        assert_eq!(ops(Value::Float(1.0), "nan"), NEVER);
        assert_eq!(ops(Value::Int(1), "nan"), NEVER);
        assert_eq!(ops(s("nan"), "nan"), NEVER);
        let r = row(&[("metrics.loss", nan)]);
        assert!(holds("metrics.loss == nan", &r));
        assert!(holds("NaN == metrics.loss", &r));
        assert!(!holds("metrics.loss != nan", &r));
    }

    #[test]
    fn bare_keys_hold_only_for_true() {
        for (value, expected) in [
            (Value::Bool(true), true),
            (Value::Bool(false), false),
            (Value::Int(1), false),
            (s("yes"), false),
        ] {
            let r = row(&[("params.debug", value.clone())]);
            assert_eq!(holds("params.debug", &r), expected, "{value:?}");
            assert_eq!(holds("not params.debug", &r), !expected, "{value:?}");
        }
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let r = row(&[("t", Value::Bool(true)), ("f", Value::Bool(false))]);
        assert!(holds("t or t and f", &r)); // t or (t and f)
        assert!(!holds("(t or t) and f", &r));
        assert!(holds("f and t or t", &r)); // (f and t) or t
        assert!(!holds("f and (t or t)", &r));
        assert!(holds("not f and t", &r)); // (not f) and t
        assert!(!holds("not (f or t)", &r));
        assert!(holds("not not t", &r));
        assert!(holds("! f && t || f", &r));
    }

    #[test]
    fn example_expression_filters_runs() {
        let text = concat!(
            r#"metrics.acc > 0.8 and (params.lr < 0.01 or tags.team == "growth")"#,
            " and not params.debug"
        );
        let good = row(&[
            ("acc", Value::Float(0.9)),
            ("params.lr", Value::Float(0.001)),
        ]);
        let growth = row(&[
            ("acc", Value::Float(0.85)),
            ("params.lr", Value::Float(0.1)),
            ("tags.team", s("growth")),
            ("params.debug", Value::Bool(false)),
        ]);
        let debug = row(&[
            ("acc", Value::Float(0.9)),
            ("params.lr", Value::Int(0)),
            ("params.debug", Value::Bool(true)),
        ]);
        let weak = row(&[
            ("acc", Value::Float(0.7)),
            ("params.lr", Value::Float(0.001)),
        ]);
        let high_lr = row(&[("acc", Value::Int(1)), ("params.lr", Value::Float(0.1))]);
        assert!(holds(text, &good));
        assert!(holds(text, &growth));
        assert!(!holds(text, &debug));
        assert!(!holds(text, &weak));
        assert!(!holds(text, &high_lr));
    }

    #[test]
    fn namespaces_keep_keys_apart() {
        let r = row(&[
            ("params.lr", Value::Float(0.1)),
            ("params.model.depth", Value::Int(4)),
        ]);
        assert!(holds("param.lr == 0.1", &r));
        assert!(!holds("lr == 0.1", &r)); // a metric, which this row lacks
        assert!(holds("params.model.depth >= 4", &r));
        let closure = |key: &Key| (key.ns == Namespace::Tags).then(|| s(&key.name));
        let expr = Expr::parse("tags.`a b` == 'a b' and not metrics.x").expect("valid");
        assert!(expr.matches(&closure));
    }

    fn sorted(mut values: Vec<Option<Value>>, descending: bool) -> Vec<String> {
        values.sort_by(|a, b| compare_for_sort(a.as_ref(), b.as_ref(), descending));
        values
            .iter()
            .map(|v| v.as_ref().map_or("-".to_owned(), ToString::to_string))
            .collect()
    }

    #[test]
    fn sort_puts_nan_then_missing_last_in_both_directions() {
        let column = vec![
            None,
            Some(Value::Float(f64::NAN)),
            Some(Value::Float(0.5)),
            Some(Value::Int(2)),
            None,
            Some(Value::Float(-1.0)),
            Some(Value::Float(f64::NAN)),
            Some(Value::Int(1)),
        ];
        assert_eq!(
            sorted(column.clone(), false),
            ["-1.0", "0.5", "1", "2", "NaN", "NaN", "-", "-"]
        );
        assert_eq!(
            sorted(column, true),
            ["2", "1", "0.5", "-1.0", "NaN", "NaN", "-", "-"]
        );
    }

    #[test]
    fn sort_groups_a_mixed_column_by_type() {
        let column = vec![
            Some(Value::Bool(true)),
            Some(s("b")),
            None,
            Some(Value::Int(3)),
            Some(Value::Bool(false)),
            Some(s("a")),
            Some(Value::Float(f64::NAN)),
            Some(Value::Float(2.5)),
        ];
        let asc = ["2.5", "3", "a", "b", "false", "true", "NaN", "-"];
        let desc = ["3", "2.5", "b", "a", "true", "false", "NaN", "-"];
        assert_eq!(sorted(column.clone(), false), asc);
        assert_eq!(sorted(column, true), desc);
    }

    #[test]
    fn sort_compares_big_ints_exactly() {
        let big = 9_007_199_254_740_993;
        let column = [
            Some(Value::Float(9_007_199_254_740_992.0)),
            Some(Value::Int(big)),
        ];
        assert_eq!(
            compare_for_sort(column[1].as_ref(), column[0].as_ref(), false),
            Ordering::Greater
        );
        assert_eq!(
            compare_for_sort(column[1].as_ref(), column[0].as_ref(), true),
            Ordering::Less
        );
        assert_eq!(
            compare_for_sort(Some(&Value::Int(3)), Some(&Value::Float(3.0)), false),
            Ordering::Equal
        );
    }
}
