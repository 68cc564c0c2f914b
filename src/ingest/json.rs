//! JSON through serde_json, also taking Python's bare `NaN`, `Infinity` and `-Infinity`.
//!
//! `json.dump` writes those tokens for non-finite floats, and JSON has no such numbers.
//! A pass over the text, aware of strings, turns each bare token into a marker string
//! that the conversion to a [`Node`] turns back into the float. Error columns are
//! given in the original text.

use super::tree::{Node, SyntaxError};

/// The bare tokens, each with its marker as written in JSON, the marker's decoded
/// text (no real document holds a string starting with NUL and this), and its value.
const MARKERS: [(&str, &str, &str, f64); 3] = [
    (
        "-Infinity",
        "\"\\u0000mreg:-inf\"",
        "\0mreg:-inf",
        f64::NEG_INFINITY,
    ),
    (
        "Infinity",
        "\"\\u0000mreg:inf\"",
        "\0mreg:inf",
        f64::INFINITY,
    ),
    ("NaN", "\"\\u0000mreg:nan\"", "\0mreg:nan", f64::NAN),
];

/// Returns the one JSON value `text` holds, or the first syntax error with its place.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let (marked, shifts) = mark_non_finite(text);
    match serde_json::from_str::<serde_json::Value>(&marked) {
        Ok(value) => Ok(node_of(value)),
        Err(err) => {
            let (line, column) = (err.line().max(1), err.column());
            let shift: usize = shifts
                .iter()
                .filter(|s| s.line == line && s.column < column)
                .map(|s| s.extra)
                .sum();
            let message = err.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(what, _)| what);
            Ok(SyntaxError {
                line,
                column: Some(column.saturating_sub(shift).max(1)),
                message: message.to_owned(),
            })
            .and_then(Err)
        }
    }
}

/// One bare token replaced by a longer marker: where, and by how many more bytes.
struct Shift {
    line: usize,
    column: usize,
    extra: usize,
}

/// Returns `text` with bare `NaN`, `Infinity` and `-Infinity` outside strings replaced
/// by marker strings, and where the text grew.
fn mark_non_finite(text: &str) -> (String, Vec<Shift>) {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut shifts = Vec::new();
    let (mut line, mut line_start, mut in_string, mut escaped) = (1, 0, false, false);
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b'\n' {
            line += 1;
            line_start = i + 1;
        } else if let Some((token, marker, _, _)) = MARKERS
            .iter()
            .find(|(token, ..)| bytes[i..].starts_with(token.as_bytes()))
        {
            let end = i + token.len();
            let boundary = |at: Option<&u8>| at.is_none_or(|c| !c.is_ascii_alphanumeric());
            if boundary(bytes.get(end)) && (i == 0 || boundary(bytes.get(i - 1))) {
                out.push_str(&text[copied..i]);
                out.push_str(marker);
                shifts.push(Shift {
                    line,
                    column: out.len() - (line_start + extra_before(&shifts, line)) + 1,
                    extra: marker.len() - token.len(),
                });
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    (out, shifts)
}

/// Returns how many bytes markers already added earlier on `line`.
fn extra_before(shifts: &[Shift], line: usize) -> usize {
    shifts
        .iter()
        .filter(|s| s.line == line)
        .map(|s| s.extra)
        .sum()
}

/// Returns the document tree of a parsed value, markers turned back into floats.
fn node_of(value: serde_json::Value) -> Node {
    match value {
        serde_json::Value::Null => Node::Null,
        serde_json::Value::Bool(b) => Node::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Node::Int(i),
            None => Node::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => {
            match MARKERS.iter().find(|(_, _, decoded, _)| s == *decoded) {
                Some((.., value)) => Node::Float(*value),
                None => Node::Str(s),
            }
        }
        serde_json::Value::Array(items) => Node::List(items.into_iter().map(node_of).collect()),
        serde_json::Value::Object(map) => {
            Node::Map(map.into_iter().map(|(k, v)| (k, node_of(v))).collect())
        }
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    fn node(text: &str) -> Node {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn place(text: &str) -> (usize, Option<usize>) {
        let err = parse(text).expect_err(text);
        (err.line, err.column)
    }

    #[test]
    fn reads_every_kind_of_value() {
        let got = node(r#" {"a": [1, -2, 0.5, -1.5e3, true, null], "b": {"c": "d"}} "#);
        let want = Node::Map(vec![
            (
                "a".into(),
                Node::List(vec![
                    Node::Int(1),
                    Node::Int(-2),
                    Node::Float(0.5),
                    Node::Float(-1500.0),
                    Node::Bool(true),
                    Node::Null,
                ]),
            ),
            (
                "b".into(),
                Node::Map(vec![("c".into(), Node::Str("d".into()))]),
            ),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn reads_python_nan_and_infinity_tokens_but_not_inside_strings() {
        let Node::List(items) =
            node("[NaN, Infinity, -Infinity, \"NaN\", \"-Infinity\", \"a NaN b\"]")
        else {
            panic!("not a list")
        };
        assert!(matches!(items[0], Node::Float(f) if f.is_nan()));
        assert_eq!(items[1], Node::Float(f64::INFINITY));
        assert_eq!(items[2], Node::Float(f64::NEG_INFINITY));
        assert_eq!(items[3], Node::Str("NaN".into()));
        assert_eq!(items[4], Node::Str("-Infinity".into()));
        assert_eq!(items[5], Node::Str("a NaN b".into()));
        assert!(parse("[NaNa]").is_err());
        assert!(parse("[nan]").is_err());
        assert_eq!(
            node(r#"{"s": "\"NaN"}"#),
            Node::Map(vec![("s".into(), Node::Str("\"NaN".into()))])
        );
    }

    #[test]
    fn floats_round_trip_exactly() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if f.is_finite() {
                let text = format!("{f:.16e}");
                assert_eq!(node(&text), Node::Float(f), "{text}");
            }
        }
    }

    #[test]
    fn integers_beyond_64_bits_become_floats() {
        assert_eq!(node("9223372036854775807"), Node::Int(i64::MAX));
        assert_eq!(
            node("9223372036854775808"),
            Node::Float(9_223_372_036_854_775_808.0)
        );
    }

    #[test]
    fn errors_name_line_and_column_of_the_original_text() {
        assert_eq!(place("{\n  \"a\": 1,\n  \"b\" 2\n}"), (3, Some(7)));
        assert_eq!(place("[1 2]"), (1, Some(4)));
        // After a NaN token the column still counts the text as written.
        assert_eq!(place("[NaN, 1 2]"), (1, Some(9)));
        assert_eq!(place("[NaN, NaN 2]"), (1, Some(11)));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        assert!(parse(&"[".repeat(100_000)).is_err());
    }
}
