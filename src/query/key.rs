//! Keys of a row's fields (`metrics.acc`, ``params.`learning-rate` ``) and `--sort` keys.

use std::fmt;

use super::lex::SyntaxError;
use crate::error::Failure;

const KEY_HINT: &str = "keys look like metrics.acc, params.lr, tags.team or attributes.start; \
                        write other names in backticks: params.`learning-rate`";

/// Returns which table of a row a key reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// Hyperparameters: `params.lr`.
    Params,
    /// Results: `metrics.acc`; also where keys without a namespace go.
    Metrics,
    /// Free-form labels: `tags.team`.
    Tags,
    /// Facts recorded by mreg: `attributes.start`.
    Attributes,
}

impl Namespace {
    /// Returns the canonical, plural name: `params`, `metrics`, `tags` or `attributes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Params => "params",
            Namespace::Metrics => "metrics",
            Namespace::Tags => "tags",
            Namespace::Attributes => "attributes",
        }
    }

    /// Returns the namespace a key prefix names, accepting singulars and `attr`.
    pub fn from_prefix(prefix: &str) -> Option<Namespace> {
        match prefix {
            "params" | "param" => Some(Namespace::Params),
            "metrics" | "metric" => Some(Namespace::Metrics),
            "tags" | "tag" => Some(Namespace::Tags),
            "attributes" | "attribute" | "attr" => Some(Namespace::Attributes),
            _ => None,
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Returns one field of a row: a namespace and a name within it.
///
/// Displays as it would be written, with backticks when the name needs them:
/// `metrics.acc`, ``params.`learning-rate` ``.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The table the key reads.
    pub ns: Namespace,
    /// The name within the table, which may contain dots: `model.depth`.
    pub name: String,
}

impl Key {
    /// Returns the key `ns.name`.
    pub fn new(ns: Namespace, name: impl Into<String>) -> Key {
        Key {
            ns,
            name: name.into(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.name.is_empty() && self.name.chars().all(is_key_char) {
            return write!(f, "{}.{}", self.ns, self.name);
        }
        write!(f, "{}.`", self.ns)?;
        for c in self.name.chars() {
            if matches!(c, '`' | '\\') {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        f.write_str("`")
    }
}

/// Returns a `--sort` key: the key, and whether the order is descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The key whose values order the rows.
    pub key: Key,
    /// Whether larger values come first.
    pub descending: bool,
}

impl SortKey {
    /// Parses `KEY` (ascending), `+KEY` (ascending) or `-KEY` (descending).
    ///
    /// Keys follow the expression grammar (a bare name is a metric): `-acc`,
    /// `attributes.start`, ``-params.`learning-rate` ``.
    pub fn parse(text: &str) -> Result<SortKey, Failure> {
        let text = text.trim();
        let (descending, skip) = match text.chars().next() {
            Some('-') => (true, 1),
            Some('+') => (false, 1),
            _ => (false, 0),
        };
        let src: Vec<char> = text.chars().collect();
        let key = single_key(&src, skip).map_err(|err| {
            key_failure(text, "sort key", &err).hint(
                "sort by a key like metrics.acc, or -metrics.acc for descending; \
                 write other names in backticks: params.`learning-rate`",
            )
        })?;
        Ok(SortKey { key, descending })
    }
}

/// Parses a single key, such as one of `--columns`: `metrics.acc`, `lr`, ``tags.`a b` ``.
///
/// Follows the expression grammar; words that are keywords in expressions (`and`, `nan`)
/// are plain metric names here.
pub fn parse_key(text: &str) -> Result<Key, Failure> {
    let text = text.trim();
    let src: Vec<char> = text.chars().collect();
    single_key(&src, 0).map_err(|err| key_failure(text, "key", &err).hint(KEY_HINT))
}

fn key_failure(text: &str, what: &str, err: &SyntaxError) -> Failure {
    if text.is_empty() {
        return Failure::usage(format!("the {what} is empty"));
    }
    Failure::usage(format!(
        "{text:?} is not a valid {what}: {} at column {}",
        err.what,
        err.column + 1
    ))
}

fn single_key(src: &[char], start: usize) -> Result<Key, SyntaxError> {
    let (key, end) = scan_key(src, start)?;
    match src.get(end) {
        None => Ok(key),
        Some(c) => Err(SyntaxError::new(
            end,
            format!("unexpected '{c}' after the key"),
        )),
    }
}

/// Returns whether `c` may appear in a key written without backticks.
pub(crate) fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/')
}

/// Returns the end of the run of key characters that starts at `start`.
pub(crate) fn word_end(src: &[char], start: usize) -> usize {
    src[start..]
        .iter()
        .position(|&c| !is_key_char(c))
        .map_or(src.len(), |n| start + n)
}

/// Scans the key at `start`, returning it and the index just after it.
pub(crate) fn scan_key(src: &[char], start: usize) -> Result<(Key, usize), SyntaxError> {
    match src.get(start) {
        Some('`') => quoted_name(src, start, Namespace::Metrics),
        Some(&c) if c.is_ascii_alphabetic() || c == '_' => {
            let end = word_end(src, start);
            let word: String = src[start..end].iter().collect();
            let prefixed = word
                .split_once('.')
                .and_then(|(prefix, rest)| Some((Namespace::from_prefix(prefix)?, rest)));
            match prefixed {
                Some((ns, "")) if src.get(end) == Some(&'`') => quoted_name(src, end, ns),
                Some((_, "")) => Err(SyntaxError::new(
                    end,
                    format!("expected a key name after '{word}'"),
                )),
                Some((ns, rest)) => Ok((Key::new(ns, rest), end)),
                None => Ok((Key::new(Namespace::Metrics, word), end)),
            }
        }
        Some(c) => Err(SyntaxError::new(
            start,
            format!("expected a key, found '{c}'"),
        )),
        None => Err(SyntaxError::new(start, "expected a key")),
    }
}

fn quoted_name(src: &[char], start: usize, ns: Namespace) -> Result<(Key, usize), SyntaxError> {
    let (name, end) = scan_quoted(src, start)?;
    if name.is_empty() {
        return Err(SyntaxError::new(start, "a key name cannot be empty"));
    }
    Ok((Key::new(ns, name), end))
}

/// Scans text quoted by the character at `start`, returning it unescaped and the index
/// just after the closing quote.
pub(crate) fn scan_quoted(src: &[char], start: usize) -> Result<(String, usize), SyntaxError> {
    let quote = src[start];
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        match src.get(i) {
            None => {
                let what = if quote == '`' { "key" } else { "string" };
                return Err(SyntaxError::new(
                    start,
                    format!("unterminated {what}: no closing {quote}"),
                ));
            }
            Some(&c) if c == quote => return Ok((out, i + 1)),
            Some('\\') => match src.get(i + 1) {
                Some(&c @ ('"' | '\'' | '`' | '\\')) => {
                    out.push(c);
                    i += 2;
                }
                next => {
                    let shown: String = next.map_or(String::new(), char::to_string);
                    return Err(SyntaxError::new(i, format!("unknown escape '\\{shown}'"))
                        .with_hint(r#"inside quotes only \" \' \` and \\ are escapes"#));
                }
            },
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Key {
        parse_key(text).expect("valid key")
    }

    #[test]
    fn namespaced_keys_split_at_the_first_dot() {
        assert_eq!(key("params.lr"), Key::new(Namespace::Params, "lr"));
        assert_eq!(
            key("params.model.depth"),
            Key::new(Namespace::Params, "model.depth")
        );
        assert_eq!(
            key("metrics.val/loss"),
            Key::new(Namespace::Metrics, "val/loss")
        );
        assert_eq!(key("tags.team"), Key::new(Namespace::Tags, "team"));
        assert_eq!(
            key("attributes.start"),
            Key::new(Namespace::Attributes, "start")
        );
    }

    #[test]
    fn singular_namespaces_are_aliases() {
        assert_eq!(key("param.lr"), key("params.lr"));
        assert_eq!(key("metric.acc"), key("metrics.acc"));
        assert_eq!(key("tag.team"), key("tags.team"));
        assert_eq!(key("attribute.start"), key("attributes.start"));
        assert_eq!(key("attr.start"), key("attributes.start"));
    }

    #[test]
    fn bare_keys_are_metrics() {
        assert_eq!(key("acc"), Key::new(Namespace::Metrics, "acc"));
        assert_eq!(key("val.loss"), Key::new(Namespace::Metrics, "val.loss"));
        assert_eq!(key("Params.lr"), Key::new(Namespace::Metrics, "Params.lr"));
        assert_eq!(key("and"), Key::new(Namespace::Metrics, "and"));
        assert_eq!(key("  acc "), Key::new(Namespace::Metrics, "acc"));
    }

    #[test]
    fn backticked_keys_take_any_name() {
        assert_eq!(
            key("params.`learning-rate`"),
            Key::new(Namespace::Params, "learning-rate")
        );
        assert_eq!(
            key("`weird key`"),
            Key::new(Namespace::Metrics, "weird key")
        );
        assert_eq!(key(r"tag.`a\`b\\c`"), Key::new(Namespace::Tags, r"a`b\c"));
    }

    #[test]
    fn display_round_trips_and_quotes_only_when_needed() {
        for (k, shown) in [
            (Key::new(Namespace::Metrics, "acc"), "metrics.acc"),
            (
                Key::new(Namespace::Params, "model.depth"),
                "params.model.depth",
            ),
            (
                Key::new(Namespace::Params, "learning-rate"),
                "params.`learning-rate`",
            ),
            (Key::new(Namespace::Tags, r"a`b\c d"), r"tags.`a\`b\\c d`"),
        ] {
            assert_eq!(k.to_string(), shown);
            assert_eq!(key(shown), k);
        }
    }

    #[test]
    fn bad_keys_name_the_problem_and_column() {
        let msg = |t: &str| parse_key(t).expect_err("invalid key").message;
        assert_eq!(
            msg("params.learning-rate"),
            "\"params.learning-rate\" is not a valid key: unexpected '-' after the key at column 16"
        );
        assert_eq!(
            msg("params."),
            "\"params.\" is not a valid key: expected a key name after 'params.' at column 8"
        );
        assert_eq!(
            msg("params.`lr"),
            "\"params.`lr\" is not a valid key: unterminated key: no closing ` at column 8"
        );
        assert_eq!(
            msg("1abc"),
            "\"1abc\" is not a valid key: expected a key, found '1' at column 1"
        );
        assert_eq!(
            msg("``"),
            "\"``\" is not a valid key: a key name cannot be empty at column 1"
        );
        assert_eq!(msg(" "), "the key is empty");
        assert!(parse_key("x y").expect_err("two words").hint.is_some());
    }

    #[test]
    fn sort_keys_take_a_direction_prefix() {
        let sk = |t: &str| SortKey::parse(t).expect("valid sort key");
        assert_eq!(
            sk("-metrics.acc"),
            SortKey {
                key: key("metrics.acc"),
                descending: true
            }
        );
        assert_eq!(
            sk("attributes.start"),
            SortKey {
                key: key("attr.start"),
                descending: false
            }
        );
        assert_eq!(
            sk("+acc"),
            SortKey {
                key: key("metrics.acc"),
                descending: false
            }
        );
        assert_eq!(sk("-params.`a-b`").key, Key::new(Namespace::Params, "a-b"));
        let err = SortKey::parse("--acc").expect_err("double dash");
        assert_eq!(
            err.message,
            "\"--acc\" is not a valid sort key: expected a key, found '-' at column 2"
        );
        assert_eq!(
            SortKey::parse("-").expect_err("no key").message,
            "\"-\" is not a valid sort key: expected a key at column 2"
        );
    }
}
