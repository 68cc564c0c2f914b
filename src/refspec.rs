//! References to model versions: `NAME`, `NAME@3`, `NAME@v3`, `NAME@latest`,
//! `NAME@<tree-hash prefix>`, `NAME@production`. The rules for the names themselves
//! are in [`crate::names`].

use std::fmt;

use crate::error::Failure;
use crate::names::{MIN_HASH_PREFIX, ModelName};

/// Returns which version of a model a reference selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The highest version number.
    Latest,
    /// A version number.
    Number(u64),
    /// A prefix of the tree hash, lowercase hex.
    TreePrefix(String),
    /// Any other word: a stage, such as `production`.
    Name(String),
}

/// Returns a parsed reference to a model version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    /// The model.
    pub model: ModelName,
    /// Which of its versions.
    pub selector: Selector,
}

impl ModelRef {
    /// Parses `NAME[@SELECTOR]`; a bare name means the latest version.
    pub fn parse(text: &str) -> Result<ModelRef, Failure> {
        let (name, sel) = match text.split_once('@') {
            Some((name, sel)) => (name, Some(sel)),
            None => (text, None),
        };
        let model = ModelName::parse(name).map_err(|f| {
            Failure::usage(format!("{text:?} is not a model reference")).hint(format!(
                "{}; a reference looks like churn@3, churn@latest or churn@<tree hash>",
                f.message
            ))
        })?;
        let selector = match sel {
            None | Some("latest") => Selector::Latest,
            Some("") => {
                return Err(
                    Failure::usage(format!("{text:?} has nothing after '@'")).hint(format!(
                        "write {name}@3, {name}@latest or {name}@<tree hash>"
                    )),
                );
            }
            Some(sel) => parse_selector(sel),
        };
        Ok(ModelRef { model, selector })
    }
}

fn parse_selector(sel: &str) -> Selector {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let number = sel
        .strip_prefix('v')
        .filter(|s| digits(s))
        .or(Some(sel).filter(|s| digits(s)));
    if let Some(n) = number.and_then(|n| n.parse().ok()) {
        return Selector::Number(n);
    }
    let lower = sel.to_ascii_lowercase();
    if lower.len() >= MIN_HASH_PREFIX
        && lower.len() <= 64
        && lower.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Selector::TreePrefix(lower);
    }
    Selector::Name(sel.to_owned())
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.selector {
            Selector::Latest => write!(f, "{}@latest", self.model),
            Selector::Number(n) => write!(f, "{}@{n}", self.model),
            Selector::TreePrefix(p) => write!(f, "{}@{p}", self.model),
            Selector::Name(s) => write!(f, "{}@{s}", self.model),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(text: &str) -> Selector {
        ModelRef::parse(text).unwrap().selector
    }

    #[test]
    fn parses_each_form() {
        assert_eq!(sel("churn"), Selector::Latest);
        assert_eq!(sel("churn@latest"), Selector::Latest);
        assert_eq!(sel("churn@3"), Selector::Number(3));
        assert_eq!(sel("churn@v12"), Selector::Number(12));
        assert_eq!(
            sel("churn@AbCdEf12"),
            Selector::TreePrefix("abcdef12".into())
        );
        assert_eq!(sel("churn@abc"), Selector::Name("abc".into()));
        assert_eq!(sel("churn@production"), Selector::Name("production".into()));
        assert_eq!(sel("churn@123456"), Selector::Number(123_456));
    }

    #[test]
    fn refuses_bad_names_and_empty_selectors() {
        for bad in [
            "", "../x", "a/b", ".hidden", "-rf", "a..b", "a b", "é", "churn@",
        ] {
            assert!(ModelRef::parse(bad).is_err(), "accepted {bad:?}");
        }
        assert!(ModelName::parse(&"a".repeat(101)).is_err());
        assert!(ModelName::parse("bert-base.v2_1").is_ok());
    }
}
