//! The document tree all file formats are read into, and its flattening to dotted keys.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

/// One parsed value of a JSON, TOML or YAML document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// JSON `null`, YAML `~`; TOML has none.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number that fits 64 bits.
    Int(i64),
    /// Any other number, NaN and the infinities included.
    Float(f64),
    /// Text; TOML datetimes arrive here as their text.
    Str(String),
    /// An array or sequence.
    List(Vec<Node>),
    /// An object, table or mapping, in the order it was written.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// Returns what kind of value this is, as an error message names it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a bool",
            Node::Int(_) => "an integer",
            Node::Float(_) => "a float",
            Node::Str(_) => "a string",
            Node::List(_) => "a list",
            Node::Map(_) => "a map",
        }
    }
}

/// One leaf of a flattened document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Leaf {
    /// A null, which params and metrics leave out.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    Str(String),
    /// A list, as its compact JSON text (`[64,32]`).
    List(String),
}

/// A syntax error at a place in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// The line, counted from 1.
    pub line: usize,
    /// The column in characters, counted from 1, when the parser tells it.
    pub column: Option<usize>,
    /// What is wrong there.
    pub message: String,
}

impl SyntaxError {
    /// Returns the error at byte `offset` of `text`, with its line and column.
    pub(crate) fn at_offset(text: &str, offset: usize, message: impl Into<String>) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        SyntaxError {
            line: before.matches('\n').count() + 1,
            column: Some(before[line_start..].chars().count() + 1),
            message: message.into(),
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(column) => write!(f, "line {}, column {column}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// Adds the leaves of `entries` to `out` under their dotted keys, `prefix.` before each.
///
/// Nested maps are joined with `.`; an empty map adds nothing. Returns the key when two
/// entries end up under the same dotted key (`{"a.b": 1, "a": {"b": 2}}`).
pub(crate) fn flatten(
    entries: Vec<(String, Node)>,
    prefix: &str,
    out: &mut BTreeMap<String, Leaf>,
) -> Result<(), String> {
    for (key, node) in entries {
        let key = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        let leaf = match node {
            Node::Map(inner) => {
                flatten(inner, &key, out)?;
                continue;
            }
            Node::Null => Leaf::Null,
            Node::Bool(b) => Leaf::Bool(b),
            Node::Int(i) => Leaf::Int(i),
            Node::Float(f) => Leaf::Float(f),
            Node::Str(s) => Leaf::Str(s),
            list @ Node::List(_) => Leaf::List(to_compact_json(&list)),
        };
        if out.contains_key(&key) {
            return Err(key);
        }
        out.insert(key, leaf);
    }
    Ok(())
}

/// Returns the compact JSON text of a node: `[64,32]`, `{"a":1}`.
///
/// NaN and the infinities are written as Python writes them: `NaN`, `Infinity`,
/// `-Infinity`, which the JSON reader of this module reads back.
pub(crate) fn to_compact_json(node: &Node) -> String {
    let mut out = String::new();
    write_json(node, &mut out);
    out
}

fn write_json(node: &Node, out: &mut String) {
    match node {
        Node::Null => out.push_str("null"),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Int(i) => out.push_str(&i.to_string()),
        Node::Float(f) if f.is_nan() => out.push_str("NaN"),
        Node::Float(f) if f.is_infinite() => {
            out.push_str(if *f > 0.0 { "Infinity" } else { "-Infinity" });
        }
        // Debug prints the shortest text that reads back to the same float, with a
        // `.0` or an exponent, and that text is valid JSON.
        Node::Float(f) => {
            // Writing to a String cannot fail.
            let _ = write!(out, "{f:?}");
        }
        Node::Str(s) => write_json_string(s, out),
        Node::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Node::Map(entries) => {
            out.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(key, out);
                out.push(':');
                write_json(value, out);
            }
            out.push('}');
        }
    }
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Returns a TOML value as a tree node; a datetime becomes its text.
pub(crate) fn from_toml(value: toml::Value) -> Node {
    match value {
        toml::Value::String(s) => Node::Str(s),
        toml::Value::Integer(i) => Node::Int(i),
        toml::Value::Float(f) => Node::Float(f),
        toml::Value::Boolean(b) => Node::Bool(b),
        toml::Value::Datetime(d) => Node::Str(d.to_string()),
        toml::Value::Array(items) => Node::List(items.into_iter().map(from_toml).collect()),
        toml::Value::Table(table) => Node::Map(from_toml_table(table)),
    }
}

/// Returns the entries of a TOML table as tree entries.
pub(crate) fn from_toml_table(table: toml::Table) -> Vec<(String, Node)> {
    table
        .into_iter()
        .map(|(key, value)| (key, from_toml(value)))
        .collect()
}

/// Returns a YAML node as a tree node, or what is wrong with it.
///
/// Keys that are not strings (`1: a`, `true: b`) become their text as written.
pub(crate) fn from_yaml(yaml: yaml_rust2::Yaml) -> Result<Node, String> {
    use yaml_rust2::Yaml;
    Ok(match yaml {
        Yaml::Null => Node::Null,
        Yaml::Boolean(b) => Node::Bool(b),
        Yaml::Integer(i) => Node::Int(i),
        real @ Yaml::Real(_) => match real.as_f64() {
            Some(f) => Node::Float(f),
            None => return Err(format!("{real:?} is not a number")),
        },
        Yaml::String(s) => Node::Str(s),
        Yaml::Array(items) => {
            Node::List(items.into_iter().map(from_yaml).collect::<Result<_, _>>()?)
        }
        Yaml::Hash(hash) => {
            let mut entries = Vec::with_capacity(hash.len());
            for (key, value) in hash {
                let key = yaml_key(key)?;
                let value = from_yaml(value).map_err(|e| format!("at key {key:?}: {e}"))?;
                entries.push((key, value));
            }
            Node::Map(entries)
        }
        Yaml::Alias(_) => return Err("an alias that does not resolve".to_owned()),
        Yaml::BadValue => return Err("a value that does not match its tag".to_owned()),
    })
}

/// Returns the text of a YAML mapping key.
fn yaml_key(key: yaml_rust2::Yaml) -> Result<String, String> {
    use yaml_rust2::Yaml;
    match key {
        Yaml::String(s) | Yaml::Real(s) => Ok(s),
        Yaml::Integer(i) => Ok(i.to_string()),
        Yaml::Boolean(b) => Ok(b.to_string()),
        Yaml::Null => Ok("null".to_owned()),
        other => Err(format!(
            "a key is {}; keys must be plain text or numbers",
            match other {
                Yaml::Array(_) => "a list",
                Yaml::Hash(_) => "a mapping",
                _ => "not a scalar",
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_joins_nested_keys_with_dots() {
        let doc = Node::Map(vec![
            (
                "model".into(),
                Node::Map(vec![
                    ("hidden_size".into(), Node::Int(3)),
                    (
                        "inner".into(),
                        Node::Map(vec![("x".into(), Node::Bool(true))]),
                    ),
                    ("empty".into(), Node::Map(vec![])),
                ]),
            ),
            (
                "layers".into(),
                Node::List(vec![Node::Int(64), Node::Int(32)]),
            ),
            ("nothing".into(), Node::Null),
        ]);
        let Node::Map(entries) = doc else {
            unreachable!()
        };
        let mut out = BTreeMap::new();
        flatten(entries, "", &mut out).expect("no duplicates");
        let want = BTreeMap::from([
            ("model.hidden_size".to_owned(), Leaf::Int(3)),
            ("model.inner.x".to_owned(), Leaf::Bool(true)),
            ("layers".to_owned(), Leaf::List("[64,32]".into())),
            ("nothing".to_owned(), Leaf::Null),
        ]);
        assert_eq!(out, want);
    }

    #[test]
    fn flatten_refuses_a_key_given_twice() {
        let entries = vec![
            ("a.b".into(), Node::Int(1)),
            ("a".into(), Node::Map(vec![("b".into(), Node::Int(2))])),
        ];
        let mut out = BTreeMap::new();
        assert_eq!(flatten(entries, "", &mut out), Err("a.b".to_owned()));
    }

    #[test]
    fn compact_json_escapes_and_keeps_special_floats() {
        let node = Node::List(vec![
            Node::Float(0.5),
            Node::Float(64.0),
            Node::Float(1e-7),
            Node::Float(f64::NAN),
            Node::Float(f64::NEG_INFINITY),
            Node::Str("a\"b\\c\n\u{1}é".into()),
            Node::Null,
            Node::Map(vec![("k".into(), Node::List(vec![]))]),
        ]);
        assert_eq!(
            to_compact_json(&node),
            r#"[0.5,64.0,1e-7,NaN,-Infinity,"a\"b\\c\n\u0001é",null,{"k":[]}]"#
        );
    }

    #[test]
    fn syntax_error_positions_count_characters() {
        let text = "ab\ncé x";
        let err = SyntaxError::at_offset(text, text.find('x').expect("x"), "bad");
        assert_eq!(err.to_string(), "line 2, column 4: bad");
        let err = SyntaxError::at_offset(text, text.len() + 5, "end");
        assert_eq!((err.line, err.column), (2, Some(5)));
    }
}
