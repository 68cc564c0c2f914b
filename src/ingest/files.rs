//! Params files, and the document layer shared with metrics: format, parsing, flattening.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::Path;

use crate::error::Failure;
use anyhow::{Context as _, Result, anyhow};

use super::json;
use super::tree::{self, Leaf, Node, SyntaxError};
use crate::manifest::Value;

/// Returns the params in a TOML, JSON or YAML file, flattened to dotted keys.
///
/// The format comes from the extension (`.toml`, `.json`, `.yaml`, `.yml`); with any
/// other, JSON, TOML and YAML are tried in that order. Nested tables join their keys with
/// `.` (`optimizer.lr`); ints, floats, bools and strings keep their type; a list becomes
/// the string of its compact JSON (`"[64,32]"`); nulls are left out; a TOML datetime
/// becomes its text; a YAML key that is not a string (`1:`, `true:`) becomes its text.
///
/// A syntax error names the file and its line, and its column when the parser tells it:
/// `params.yaml line 4, column 5: mapping values are not allowed in this context`.
pub fn read_params_file(path: &Path) -> Result<BTreeMap<String, Value>> {
    let text = read_text(path, "params")?;
    let format = match Format::of(path) {
        Some(Format::JsonLines) => {
            return Err(anyhow!(
                "{}: params files hold one document, in JSON, TOML or YAML, not JSON lines",
                path.display()
            ));
        }
        other => other,
    };
    let leaves = read_document(path, &text, format)?;
    Ok(leaves
        .into_iter()
        .filter_map(|(key, leaf)| {
            let value = match leaf {
                Leaf::Null => return None,
                Leaf::Bool(b) => Value::Bool(b),
                Leaf::Int(i) => Value::Int(i),
                Leaf::Float(f) => Value::Float(f),
                Leaf::Str(s) | Leaf::List(s) => Value::Str(s),
            };
            Some((key, value))
        })
        .collect())
}

/// A file format, as the extension of a file names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `.json`: one JSON document (or, for metrics, JSON lines when it holds them).
    Json,
    /// `.toml`.
    Toml,
    /// `.yaml` or `.yml`.
    Yaml,
    /// `.jsonl` or `.ndjson`: one JSON object a line.
    JsonLines,
}

impl Format {
    /// Returns the format the extension of `path` names, in any case, if it names one.
    pub(crate) fn of(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Json | Format::JsonLines => "JSON",
            Format::Toml => "TOML",
            Format::Yaml => "YAML",
        }
    }

    /// Returns what this format calls a map, for "the top level is not a …".
    fn map_word(self) -> &'static str {
        match self {
            Format::Json | Format::JsonLines => "an object",
            Format::Toml => "a table",
            Format::Yaml => "a mapping",
        }
    }
}

/// Returns the text of a file, without a leading byte-order mark.
pub(crate) fn read_text(path: &Path, what: &str) -> Result<String> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let cwd = std::env::current_dir().unwrap_or_default();
            return Err(Failure::error(format!(
                "the {what} file {} does not exist",
                path.display()
            ))
            .hint(format!(
                "check the path; a relative one is read from the folder mreg runs in ({}), \
                 and a training script must have written the file before this step",
                cwd.display()
            ))
            .into());
        }
        Err(err) if err.kind() == std::io::ErrorKind::IsADirectory => {
            return Err(
                Failure::error(format!("the {what} file {} is a folder", path.display()))
                    .hint(format!("name the {what} file inside it"))
                    .into(),
            );
        }
        Err(err) => {
            return Err(err).with_context(|| format!("reading {what} file {}", path.display()));
        }
    };
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

/// Returns the flattened leaves of the one document in `text`, read as `format`.
///
/// With no format, JSON, TOML and YAML are tried in that order; the first that parses to
/// a map wins, and the error, when none does, says what each one found.
pub(crate) fn read_document(
    path: &Path,
    text: &str,
    format: Option<Format>,
) -> Result<BTreeMap<String, Leaf>> {
    let entries = if let Some(format) = format {
        parse_document(text, format).map_err(|err| anyhow!(err.labeled(path.display())))?
    } else {
        let mut failures = Vec::new();
        let mut found = None;
        for format in [Format::Json, Format::Toml, Format::Yaml] {
            match parse_document(text, format) {
                Ok(entries) => {
                    found = Some(entries);
                    break;
                }
                Err(err) => failures.push(err.labeled(format.name())),
            }
        }
        found.ok_or_else(|| {
            anyhow!(
                "{}: not JSON, TOML or YAML (tried in that order, as the extension names \
                 none; name the file .json, .toml or .yaml to read it as one): {}",
                path.display(),
                failures.join("; ")
            )
        })?
    };
    let mut leaves = BTreeMap::new();
    tree::flatten(entries, "", &mut leaves).map_err(|key| {
        anyhow!(
            "{}: key {key:?} is given twice (nested keys are joined with \".\")",
            path.display()
        )
    })?;
    Ok(leaves)
}

/// Why a document could not be read: a syntax error, or a shape that does not fit.
#[derive(Debug)]
pub(crate) enum DocError {
    /// The text is not valid in the format.
    Syntax(SyntaxError),
    /// The text is valid but holds something else than one map.
    Shape(String),
}

impl DocError {
    /// Returns the error after what it is about: `params.yaml line 4, column 5: …`, or
    /// `params.yaml: the top level is a list, not a mapping`.
    pub(crate) fn labeled(&self, label: impl fmt::Display) -> String {
        match self {
            DocError::Syntax(err) => format!("{label} {err}"),
            DocError::Shape(message) => format!("{label}: {message}"),
        }
    }
}

/// Returns the entries of the map at the top of `text`, parsed as `format`.
pub(crate) fn parse_document(text: &str, format: Format) -> Result<Vec<(String, Node)>, DocError> {
    let top = match format {
        Format::Json | Format::JsonLines => json::parse(text).map_err(DocError::Syntax)?,
        Format::Toml => {
            let table = text
                .parse::<toml::Table>()
                .map_err(|err| toml_error(text, &err))?;
            return Ok(tree::from_toml_table(table));
        }
        Format::Yaml => parse_yaml(text)?,
    };
    match top {
        Node::Map(entries) => Ok(entries),
        other => Err(DocError::Shape(format!(
            "the top level is {}, not {} of names and values",
            other.kind(),
            format.map_word()
        ))),
    }
}

fn toml_error(text: &str, err: &toml::de::Error) -> DocError {
    let message = err.message().trim_end().to_owned();
    match err.span() {
        Some(span) => DocError::Syntax(SyntaxError::at_offset(text, span.start, message)),
        None => DocError::Shape(message),
    }
}

/// Returns the one YAML document in `text`; an empty text is an empty mapping.
fn parse_yaml(text: &str) -> Result<Node, DocError> {
    if super::yaml::has_aliases(text) {
        return Err(DocError::Shape(
            "uses YAML aliases (*name), which mreg does not expand".to_owned(),
        ));
    }
    let mut docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|err| {
        DocError::Syntax(SyntaxError {
            line: err.marker().line(),
            column: Some(err.marker().col() + 1),
            message: err.info().to_owned(),
        })
    })?;
    if docs.len() > 1 {
        return Err(DocError::Shape(format!(
            "holds {} YAML documents (split by ---); expected one",
            docs.len()
        )));
    }
    match docs.pop() {
        None | Some(yaml_rust2::Yaml::Null) => Ok(Node::Map(Vec::new())),
        Some(doc) => tree::from_yaml(doc).map_err(DocError::Shape),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns a temp dir holding one file `name` with `text`, and the file's path.
    fn file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(name);
        fs::write(&path, text).expect("write file");
        (dir, path)
    }

    fn params(name: &str, text: &str) -> BTreeMap<String, Value> {
        let (_dir, path) = file(name, text);
        read_params_file(&path).unwrap_or_else(|e| panic!("{name}: {e:#}"))
    }

    /// Returns the error message, with the temp dir taken out of it.
    fn params_error(name: &str, text: &str) -> String {
        let (dir, path) = file(name, text);
        let err = read_params_file(&path).expect_err("an error");
        format!("{err:#}").replace(&format!("{}/", dir.path().display()), "")
    }

    fn map(entries: &[(&str, Value)]) -> BTreeMap<String, Value> {
        entries
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect()
    }

    /// The Hydra-style fixture `params.yaml`, as mreg's `fixtures/` holds it.
    const PARAMS_YAML: &str = "\
# Hyperparameters of a training run, nested as Hydra and DVC users write them.
model:
  hidden_size: 3
  dropout: 0.1
optimizer:
  name: adamw
  lr: 0.001
  weight_decay: 0.01
epochs: 3
seed: 42
use_amp: false
";

    fn fixture_params() -> BTreeMap<String, Value> {
        map(&[
            ("model.hidden_size", Value::Int(3)),
            ("model.dropout", Value::Float(0.1)),
            ("optimizer.name", Value::Str("adamw".into())),
            ("optimizer.lr", Value::Float(0.001)),
            ("optimizer.weight_decay", Value::Float(0.01)),
            ("epochs", Value::Int(3)),
            ("seed", Value::Int(42)),
            ("use_amp", Value::Bool(false)),
        ])
    }

    #[test]
    fn yaml_fixture_is_flattened_with_types() {
        assert_eq!(params("params.yaml", PARAMS_YAML), fixture_params());
        assert_eq!(params("params.YML", PARAMS_YAML), fixture_params());
    }

    #[test]
    fn toml_is_flattened_with_types() {
        let text = "\
epochs = 3
seed = 42
use_amp = false

[model]
hidden_size = 3
dropout = 0.1

[optimizer]
name = \"adamw\"
lr = 0.001
weight_decay = 0.01
";
        assert_eq!(params("params.toml", text), fixture_params());
    }

    #[test]
    fn json_is_flattened_with_types() {
        let text = r#"{
  "model": {"hidden_size": 3, "dropout": 0.1},
  "optimizer": {"name": "adamw", "lr": 0.001, "weight_decay": 0.01},
  "epochs": 3, "seed": 42, "use_amp": false
}"#;
        assert_eq!(params("params.json", text), fixture_params());
    }

    #[test]
    fn arrays_become_compact_json_and_nulls_are_left_out() {
        let want = map(&[
            ("layers", Value::Str("[64,32]".into())),
            ("model.names", Value::Str(r#"["a","b"]"#.into())),
            (
                "model.mixed",
                Value::Str(r#"[1,2.5,true,null,{"k":"v"}]"#.into()),
            ),
        ]);
        let json = r#"{"layers": [64, 32], "note": null,
            "model": {"names": ["a", "b"], "mixed": [1, 2.5, true, null, {"k": "v"}], "x": null}}"#;
        assert_eq!(params("p.json", json), want);
        let yaml = "layers: [64, 32]\nnote: ~\nmodel:\n  names: [a, b]\n  mixed:\n    - 1\n    - 2.5\n    - true\n    - null\n    - k: v\n  x:\n";
        assert_eq!(params("p.yaml", yaml), want);
        let toml = "layers = [64, 32]\n[model]\nnames = [\"a\", \"b\"]\nmixed = [1, 2.5, true, { k = \"v\" }]\n";
        let mut toml_want = want.clone();
        toml_want.insert(
            "model.mixed".into(),
            Value::Str(r#"[1,2.5,true,{"k":"v"}]"#.into()),
        );
        assert_eq!(params("p.toml", toml), toml_want);
    }

    #[test]
    fn toml_datetimes_become_text_and_special_floats_survive() {
        let got = params(
            "p.toml",
            "when = 1979-05-27T07:32:00Z\nday = 1979-05-27\nn = nan\ni = -inf\n",
        );
        assert_eq!(got["when"], Value::Str("1979-05-27T07:32:00Z".into()));
        assert_eq!(got["day"], Value::Str("1979-05-27".into()));
        assert!(matches!(got["n"], Value::Float(f) if f.is_nan()));
        assert_eq!(got["i"], Value::Float(f64::NEG_INFINITY));
    }

    #[test]
    fn yaml_keys_that_are_not_strings_become_their_text() {
        let got = params(
            "p.yaml",
            "1: a\ntrue: b\n1.5: c\nlayers:\n  0: 64\n  1: 32\n",
        );
        let want = map(&[
            ("1", Value::Str("a".into())),
            ("true", Value::Str("b".into())),
            ("1.5", Value::Str("c".into())),
            ("layers.0", Value::Int(64)),
            ("layers.1", Value::Int(32)),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn yaml_types_follow_yaml_1_2() {
        let got = params(
            "p.yaml",
            "a: .nan\nb: -.inf\nc: \"0.1\"\nd: yes\ne: 1e3\nf: 0x10\ng: 99999999999999999999\n",
        );
        assert!(matches!(got["a"], Value::Float(f) if f.is_nan()));
        assert_eq!(got["b"], Value::Float(f64::NEG_INFINITY));
        assert_eq!(got["c"], Value::Str("0.1".into()));
        assert_eq!(got["d"], Value::Str("yes".into()));
        assert_eq!(got["e"], Value::Float(1000.0));
        assert_eq!(got["f"], Value::Int(16));
        assert_eq!(got["g"], Value::Float(1e20));
    }

    #[test]
    fn empty_files_hold_no_params() {
        assert!(params("p.yaml", "# nothing yet\n").is_empty());
        assert!(params("p.toml", "").is_empty());
        assert!(params("p.json", "{}").is_empty());
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        assert_eq!(
            params_error("params.yaml", "model:\n  hidden: 3\n  x: 1\n   y: 2\n"),
            "params.yaml line 4, column 5: mapping values are not allowed in this context"
        );
        assert_eq!(
            params_error("params.toml", "a = 1\n[model]\nb = \n"),
            "params.toml line 3, column 5: string values must be quoted, expected literal string"
        );
        assert_eq!(
            params_error("params.json", "{\n  \"a\": 1,\n  \"b\": 2,\n}\n"),
            "params.json line 4, column 1: trailing comma"
        );
    }

    #[test]
    fn a_top_level_that_is_not_a_map_is_an_error() {
        assert_eq!(
            params_error("p.json", "[1, 2]"),
            "p.json: the top level is a list, not an object of names and values"
        );
        assert_eq!(
            params_error("p.yaml", "- a\n- b\n"),
            "p.yaml: the top level is a list, not a mapping of names and values"
        );
        assert!(params_error("p.yaml", "a: 1\n---\nb: 2\n").contains("2 YAML documents"));
        assert_eq!(
            params_error("p.yaml", "? [1, 2]\n: x\n"),
            "p.yaml: a key is a list; keys must be plain text or numbers"
        );
    }

    #[test]
    fn a_key_given_twice_after_flattening_is_an_error() {
        assert_eq!(
            params_error("p.json", r#"{"a.b": 1, "a": {"b": 2}}"#),
            r#"p.json: key "a.b" is given twice (nested keys are joined with ".")"#
        );
    }

    #[test]
    fn unknown_extension_tries_json_then_toml_then_yaml() {
        let json = params("params.cfg", r#"{"lr": 0.1, "model": {"depth": 2}}"#);
        assert_eq!(
            json,
            map(&[("lr", Value::Float(0.1)), ("model.depth", Value::Int(2))])
        );
        let toml = params("params", "lr = 0.1\n[model]\ndepth = 2\n");
        assert_eq!(toml, json);
        let yaml = params("params.txt", "lr: 0.1\nmodel:\n  depth: 2\n");
        assert_eq!(yaml, json);

        assert_eq!(
            params_error("notes.txt", "just some words\n"),
            "notes.txt: not JSON, TOML or YAML (tried in that order, as the extension names \
             none; name the file .json, .toml or .yaml to read it as one): \
             JSON line 1, column 1: expected value; \
             TOML line 1, column 6: key with no value, expected `=`; \
             YAML: the top level is a string, not a mapping of names and values"
        );
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = read_params_file(&dir.path().join("nope.yaml")).expect_err("missing");
        let text = err.to_string();
        assert!(text.starts_with("the params file "), "{err}");
        assert!(text.ends_with("nope.yaml does not exist"), "{err}");
    }

    #[test]
    fn json_lines_are_not_params() {
        assert!(params_error("p.jsonl", "{\"a\": 1}\n").contains("not JSON lines"));
    }
}
