//! Names: the rules for what users name things by (models, stages, experiments and run
//! names, remotes), checked before anything is written. Each rule is here once.

use std::fmt;

use crate::error::Failure;

/// Shortest tree-hash prefix accepted in a reference.
pub const MIN_HASH_PREFIX: usize = 6;

/// Returns a model name that passed the whitelist.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelName(String);

impl ModelName {
    /// Returns the name if it follows the rules: 1 to 100 letters, digits, `.`, `_`
    /// and `-`, starting with a letter or digit, without `..`.
    pub fn parse(name: &str) -> Result<ModelName, Failure> {
        let ok_chars = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        let ok_start = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if !ok_chars || !ok_start || name.len() > 100 || name.contains("..") {
            return Err(Failure::usage(format!("{name:?} is not a valid model name")).hint(
                "use 1 to 100 letters, digits, '.', '_' and '-', starting with a letter or digit, \
                 without '..' (e.g. churn, bert-base.v2)",
            ));
        }
        Ok(ModelName(name.to_owned()))
    }

    /// Returns the name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Returns the candidate closest to `word`, as a "did you mean" for a misspelled key or
/// name; `None` when none is close. Close means at least 60% alike by edit distance
/// (`acuracy`, `accuracy`), or one an abbreviation of the other: the same first letter,
/// and the shorter's letters in order in the longer (`acuracy`, `acc`).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| {
            let alike = strsim::normalized_damerau_levenshtein(word, c);
            let abbreviates = abbreviates(word, c) || abbreviates(c, word);
            (if abbreviates { alike.max(0.6) } else { alike }, c)
        })
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, c)| c)
}

/// Returns whether `short` abbreviates `long`: two or more characters, the same first
/// one, all found in `long` in order.
fn abbreviates(short: &str, long: &str) -> bool {
    let mut rest = long.chars();
    short.chars().count() >= 2
        && short.chars().next() == long.chars().next()
        && short.chars().all(|c| rest.any(|l| l == c))
}

/// Returns whether `name` may name a stage: `production`, `pre-prod`, `canary_2`.
///
/// A stage name is words of lowercase ASCII letters, digits and `_`, each starting with a
/// letter, joined by single `-`s. The rule keeps `@production-0.005` in a gate readable:
/// since no word after a `-` starts with a digit, the stage there is `production` and
/// `-0.005` its tolerance.
///
/// Names that read as version selectors in a reference like `churn@…` are refused, so a
/// stage can never be mistaken for a version there: `latest`, `v` or nothing followed by
/// digits (`v3`), and names of at least 6 characters that are all hex digits (`deadbeef`),
/// which read as a tree-hash prefix.
pub fn is_stage_name(name: &str) -> bool {
    let src: Vec<char> = name.chars().collect();
    !src.is_empty() && stage_end(&src, 0) == src.len() && !reads_as_version(name)
}

/// Returns the end of the longest stage name (by the grammar, without the version check)
/// starting at `start`; `start` itself when there is none.
pub(crate) fn stage_end(src: &[char], start: usize) -> usize {
    let is_word_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    let mut end = start;
    let mut i = start;
    loop {
        if !src.get(i).is_some_and(char::is_ascii_lowercase) {
            return end;
        }
        while src.get(i).is_some_and(|&c| is_word_char(c)) {
            i += 1;
        }
        end = i;
        if src.get(i) != Some(&'-') {
            return end;
        }
        i += 1;
    }
}

/// Returns whether a stage-like name reads as a version selector in `churn@NAME`.
pub(crate) fn reads_as_version(name: &str) -> bool {
    let digits = name.strip_prefix('v').unwrap_or(name);
    let is_number = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let is_hash = name.len() >= MIN_HASH_PREFIX && name.bytes().all(|b| b.is_ascii_hexdigit());
    name == "latest" || is_number || is_hash
}

/// Refuses an experiment or run name that is empty, too long or has control characters.
pub fn check_label(flag: &str, text: &str) -> Result<(), Failure> {
    if text.is_empty() || text.chars().count() > 200 || text.chars().any(char::is_control) {
        return Err(Failure::usage(format!(
            "{flag} {text:?} is not usable: give 1 to 200 characters, without control characters"
        )));
    }
    Ok(())
}

/// Checks a remote's name: 1 to 64 of letters, digits, `.`, `_` and `-`, starting with
/// a letter.
pub fn check_remote_name(name: &str) -> Result<(), Failure> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(
            Failure::usage(format!("{name:?} is not a valid remote name"))
                .hint("use letters, digits, `.`, `_` and `-`, starting with a letter, e.g. team"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_name_is_suggested_and_far_ones_are_not() {
        let names = ["acc", "loss", "f1", "val.loss"];
        assert_eq!(closest("acuracy", names), Some("acc"));
        assert_eq!(closest("los", names), Some("loss"));
        assert_eq!(closest("val.los", names), Some("val.loss"));
        assert_eq!(closest("latency_ms", names), None);
        assert_eq!(closest("x", []), None);
    }

    #[test]
    fn stage_names() {
        for name in [
            "production",
            "staging",
            "pre-prod",
            "canary_2",
            "a",
            "a-b-c",
            "blue_green-v2",
            "v",
            "version",
            "abcde",
            "latest2",
            "v1a",
        ] {
            assert!(is_stage_name(name), "refused {name:?}");
        }
        for name in [
            "",
            "Production",
            "prod uction",
            "2nd",
            "_x",
            "-prod",
            "prod-",
            "pre--prod",
            "pre-2",
            "pre-_x",
            "caf\u{e9}",
            "a.b",
            "a/b",
            "latest",
            "v3",
            "v42",
            "deadbeef",
            "facade",
            "abcdef0123",
        ] {
            assert!(!is_stage_name(name), "accepted {name:?}");
        }
    }
}
