//! `KEY=VALUE` pairs from flags (`--param`, `--tag`, `--metric`): key checks and typing.

use crate::error::Failure;
use crate::manifest::Value;

/// Returns a param's key and its value, typed by what the text looks like.
///
/// `text` is split at its first `=`. `true` and `false` become bools, an integer literal
/// that fits 64 bits an int, a float literal (`0.1`, `1e-3`, `.5`, `nan`, `inf`, `-inf`,
/// `Infinity`) a float, and anything else a string; so does an empty value. A value in
/// double quotes (`lr="0.1"`) stays a string, without its quotes. An integer with leading
/// zeros (`007`) or one too large for 64 bits stays a string, so no digit is lost.
///
/// `flag` is the flag as the user typed it (`--param`), for the error message.
pub fn parse_param(text: &str, flag: &str) -> Result<(String, Value), Failure> {
    let (key, value) = split(text, flag, "lr=0.001")?;
    Ok((key.to_owned(), infer(value)))
}

/// Returns a tag's key and its value, which stays a string as given.
///
/// `text` is split at its first `=`; the key follows the same rules as a param's.
pub fn parse_tag(text: &str, flag: &str) -> Result<(String, String), Failure> {
    let (key, value) = split(text, flag, "team=growth")?;
    Ok((key.to_owned(), value.to_owned()))
}

/// Returns a metric's key and its value, which must be a number.
///
/// Integers, decimals, exponents, `nan`, `inf` and `-inf` (in any case, `infinity` too)
/// are numbers; anything else is a usage error naming the value.
pub fn parse_metric(text: &str, flag: &str) -> Result<(String, f64), Failure> {
    const EXAMPLE: &str = "acc=0.91";
    let (key, value) = split(text, flag, EXAMPLE)?;
    match parse_number(value) {
        Some(number) => Ok((key.to_owned(), number)),
        None => Err(
            Failure::usage(format!("{flag} {text}: {value:?} is not a number"))
                .hint(format!("write {flag} {EXAMPLE}")),
        ),
    }
}

/// Returns `text` split at its first `=` into a checked key and the value.
fn split<'t>(text: &'t str, flag: &str, example: &str) -> Result<(&'t str, &'t str), Failure> {
    let hint = || format!("write {flag} {example}");
    let Some((key, value)) = text.split_once('=') else {
        return Err(Failure::usage(format!("{flag} {text:?} is not KEY=VALUE")).hint(hint()));
    };
    if key.is_empty() {
        return Err(Failure::usage(format!("{flag} {text:?} has an empty key")).hint(hint()));
    }
    if !key.chars().all(is_key_char) {
        let fixed: String = key
            .chars()
            .map(|c| if is_key_char(c) { c } else { '_' })
            .collect();
        return Err(Failure::usage(format!(
            "{flag} {text:?}: key {key:?} may hold only letters, digits and _ . - /"
        ))
        .hint(format!("write {flag} {fixed}={value}")));
    }
    Ok((key, value))
}

/// Returns whether `c` may appear in a key: ASCII letters and digits, `_`, `.`, `-`, `/`.
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')
}

/// Returns the typed value a param's text stands for.
pub fn infer(text: &str) -> Value {
    match text {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if is_int_literal(text) {
        return text
            .parse::<i64>()
            .map_or_else(|_| Value::Str(text.to_owned()), Value::Int);
    }
    if let Some(float) = parse_float_literal(text) {
        return Value::Float(float);
    }
    if let Some(inner) = text
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        return Value::Str(inner.to_owned());
    }
    Value::Str(text.to_owned())
}

/// Returns whether `text` is an integer literal: an optional sign, then `0` or digits
/// that do not start with `0`.
fn is_int_literal(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    match digits.as_bytes() {
        [b'0'] => true,
        [] | [b'0', ..] => false,
        bytes => bytes.iter().all(u8::is_ascii_digit),
    }
}

/// Returns the float a float literal stands for: digits with a `.` or an exponent, or
/// one of the words `nan`, `inf`, `infinity` (any case, optional sign).
fn parse_float_literal(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let is_word = ["nan", "inf", "infinity"]
        .iter()
        .any(|word| unsigned.eq_ignore_ascii_case(word));
    let is_decimal = unsigned.contains(['.', 'e', 'E'])
        && unsigned
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if is_word || is_decimal {
        text.parse().ok()
    } else {
        None
    }
}

/// Returns the number `text` stands for: an integer or float literal, with or without
/// leading zeros, or `nan`/`inf`/`infinity` in any case.
fn parse_number(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let all_digits = !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit());
    if all_digits {
        text.parse().ok()
    } else {
        parse_float_literal(text)
    }
}

#[cfg(test)]
// Exact float equality is what these tests check.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;
    use crate::error::Kind;

    fn param(text: &str) -> Value {
        parse_param(text, "--param").expect("valid param").1
    }

    fn float(text: &str) -> f64 {
        match param(text) {
            Value::Float(f) => f,
            other => panic!("{text}: expected a float, got {other:?}"),
        }
    }

    #[test]
    fn param_values_are_typed_by_inference() {
        let table = [
            ("a=true", Value::Bool(true)),
            ("a=false", Value::Bool(false)),
            ("a=True", Value::Str("True".into())),
            ("a=3", Value::Int(3)),
            ("a=-3", Value::Int(-3)),
            ("a=+3", Value::Int(3)),
            ("a=0", Value::Int(0)),
            ("a=9223372036854775807", Value::Int(i64::MAX)),
            ("a=-9223372036854775808", Value::Int(i64::MIN)),
            (
                "a=9223372036854775808",
                Value::Str("9223372036854775808".into()),
            ),
            ("a=007", Value::Str("007".into())),
            ("a=0.001", Value::Float(0.001)),
            ("a=1e-3", Value::Float(0.001)),
            ("a=2E3", Value::Float(2000.0)),
            ("a=.5", Value::Float(0.5)),
            ("a=3.", Value::Float(3.0)),
            ("a=-0.25", Value::Float(-0.25)),
            ("a=inf", Value::Float(f64::INFINITY)),
            ("a=-inf", Value::Float(f64::NEG_INFINITY)),
            ("a=Infinity", Value::Float(f64::INFINITY)),
            ("a=-Infinity", Value::Float(f64::NEG_INFINITY)),
            ("a=adamw", Value::Str("adamw".into())),
            ("a=", Value::Str(String::new())),
            ("a=\"0.1\"", Value::Str("0.1".into())),
            ("a=\"\"", Value::Str(String::new())),
            ("a=\"open", Value::Str("\"open".into())),
            ("a=1_000", Value::Str("1_000".into())),
            ("a=0x10", Value::Str("0x10".into())),
            ("a=1.2.3", Value::Str("1.2.3".into())),
            ("a=e5", Value::Str("e5".into())),
            ("a=1e", Value::Str("1e".into())),
            ("a= 1", Value::Str(" 1".into())),
            ("a=x=y", Value::Str("x=y".into())),
            ("a=infinite", Value::Str("infinite".into())),
        ];
        for (text, want) in table {
            assert_eq!(param(text), want, "{text}");
        }
        assert!(float("a=nan").is_nan());
        assert!(float("a=NaN").is_nan());
        assert_eq!(float("a=0.30000000000000004"), 0.1 + 0.2);
    }

    #[test]
    fn keys_may_hold_dots_slashes_and_dashes() {
        let (key, value) = parse_param("model.enc/layer-1_x=2", "--param").expect("valid");
        assert_eq!(key, "model.enc/layer-1_x");
        assert_eq!(value, Value::Int(2));
    }

    #[test]
    fn missing_equals_is_a_usage_error_with_a_hint() {
        let err = parse_param("lr0.1", "--param").expect_err("no =");
        assert_eq!(err.kind, Kind::Usage);
        assert_eq!(err.message, r#"--param "lr0.1" is not KEY=VALUE"#);
        assert_eq!(err.hint.as_deref(), Some("write --param lr=0.001"));
    }

    #[test]
    fn empty_key_is_a_usage_error() {
        let err = parse_tag("=growth", "--tag").expect_err("empty key");
        assert_eq!(err.kind, Kind::Usage);
        assert_eq!(err.message, r#"--tag "=growth" has an empty key"#);
        assert_eq!(err.hint.as_deref(), Some("write --tag team=growth"));
    }

    #[test]
    fn space_in_key_is_a_usage_error_suggesting_a_fixed_key() {
        let err = parse_param("learning rate=0.1", "--param").expect_err("space");
        assert_eq!(err.kind, Kind::Usage);
        assert_eq!(
            err.message,
            r#"--param "learning rate=0.1": key "learning rate" may hold only letters, digits and _ . - /"#
        );
        assert_eq!(err.hint.as_deref(), Some("write --param learning_rate=0.1"));
        assert!(parse_metric("ac c=1", "--metric").is_err());
        assert!(parse_param("a:b=1", "--param").is_err());
    }

    #[test]
    fn tags_stay_strings() {
        for (text, want) in [
            ("team=growth", "growth"),
            ("n=3", "3"),
            ("flag=true", "true"),
            ("q=\"x\"", "\"x\""),
            ("e=", ""),
        ] {
            let (_, value) = parse_tag(text, "--tag").expect("valid tag");
            assert_eq!(value, want, "{text}");
        }
    }

    #[test]
    fn metrics_must_be_numbers() {
        for (text, want) in [
            ("acc=0.91", 0.91),
            ("n=3", 3.0),
            ("n=007", 7.0),
            ("x=-1e-3", -0.001),
            ("x=inf", f64::INFINITY),
            ("x=-Infinity", f64::NEG_INFINITY),
        ] {
            assert_eq!(
                parse_metric(text, "--metric").expect("number").1,
                want,
                "{text}"
            );
        }
        assert!(parse_metric("x=NaN", "--metric").expect("nan").1.is_nan());

        let err = parse_metric("acc=high", "--metric").expect_err("not a number");
        assert_eq!(err.kind, Kind::Usage);
        assert_eq!(err.message, r#"--metric acc=high: "high" is not a number"#);
        assert_eq!(err.hint.as_deref(), Some("write --metric acc=0.91"));
        for bad in ["acc=", "acc=\"0.9\"", "acc=true", "acc=1_0", "acc= 1"] {
            assert!(parse_metric(bad, "--metric").is_err(), "{bad}");
        }
    }
}
