//! Choosing some paths of a version (`mreg pull --only GLOB --exclude GLOB`).
//!
//! A pattern is a glob over the `/`-separated paths of the version: `*` and `?` stay
//! within one name, `**` crosses folders, `[...]` is a set. A pattern with no `/` (other
//! than a trailing one) is matched against each name, at any depth, as in a
//! `.gitignore`; one with a `/` is matched against the whole path from the version's
//! root. A pattern that matches a folder matches everything below it; one ending in `/`
//! matches folders only (what is below them), never a file or link of that name. A path is
//! selected when some `--only` pattern matches it (or there is none) and no `--exclude`
//! pattern does.

use anyhow::Result;
use globset::{GlobBuilder, GlobMatcher};

use crate::error::Failure;

/// One pattern, as given and compiled.
#[derive(Debug)]
struct Pattern {
    /// As the user wrote it.
    text: String,
    /// Whether it is matched against whole paths rather than names.
    anchored: bool,
    /// Whether it ends in `/`: it then matches folders only.
    dir_only: bool,
    matcher: GlobMatcher,
}

impl Pattern {
    fn new(text: &str, flag: &str) -> Result<Pattern> {
        let body = text.strip_prefix('/').unwrap_or(text);
        let body = body.strip_suffix('/').unwrap_or(body);
        if body.is_empty() {
            return Err(
                Failure::usage(format!("{flag} '{text}' is an empty pattern"))
                    .hint("give a glob such as 'tokenizer/*' or '*.safetensors'")
                    .into(),
            );
        }
        let anchored = text.starts_with('/') || body.contains('/');
        let dir_only = text.ends_with('/');
        let matcher = GlobBuilder::new(body)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| {
                let shown: String = text.chars().take(200).collect();
                Failure::usage(format!("{flag} '{shown}' is not a glob: {}", e.kind())).hint(
                    "`*` and `?` match within a name, `**` across folders, `[abc]` one of a set",
                )
            })?
            .compile_matcher();
        Ok(Pattern {
            text: text.to_owned(),
            anchored,
            dir_only,
            matcher,
        })
    }

    /// Returns whether the pattern matches `path` or one of the folders it is in (only
    /// those, for a pattern ending in `/`).
    fn matches(&self, path: &str) -> bool {
        let mut end = path.len();
        if self.dir_only {
            match path.rfind('/') {
                Some(slash) => end = slash,
                None => return false,
            }
        }
        loop {
            let candidate = &path[..end];
            let subject = if self.anchored {
                candidate
            } else {
                candidate.rsplit('/').next().unwrap_or(candidate)
            };
            if self.matcher.is_match(subject) {
                return true;
            }
            match candidate.rfind('/') {
                Some(slash) => end = slash,
                None => return false,
            }
        }
    }
}

/// The paths a partial pull takes.
#[derive(Debug)]
pub struct Select {
    only: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

impl Select {
    /// Compiles `--only` and `--exclude` patterns; `None` when there are none, so that
    /// every path is taken. A pattern that is not a glob is a usage error naming it.
    pub fn new(only: &[String], exclude: &[String]) -> Result<Option<Select>> {
        if only.is_empty() && exclude.is_empty() {
            return Ok(None);
        }
        let compile = |patterns: &[String], flag: &str| -> Result<Vec<Pattern>> {
            patterns.iter().map(|p| Pattern::new(p, flag)).collect()
        };
        Ok(Some(Select {
            only: compile(only, "--only")?,
            exclude: compile(exclude, "--exclude")?,
        }))
    }

    /// Returns whether the file or link at `path` is taken.
    pub fn selects(&self, path: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|p| p.matches(path)))
            && !self.exclude.iter().any(|p| p.matches(path))
    }

    /// Returns the `--only` patterns that match none of `paths`: most likely typos,
    /// which a pull refuses rather than pull less than was asked.
    pub fn unmatched(&self, paths: &[&str]) -> Vec<String> {
        self.only
            .iter()
            .filter(|p| !paths.iter().any(|path| p.matches(path)))
            .map(|p| p.text.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(only: &[&str], exclude: &[&str]) -> Select {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        Select::new(&owned(only), &owned(exclude)).unwrap().unwrap()
    }

    #[test]
    fn a_name_pattern_matches_at_any_depth_and_a_path_pattern_from_the_root() {
        let s = select(&["*.json"], &[]);
        assert!(s.selects("config.json"));
        assert!(s.selects("tokenizer/vocab.json"));
        assert!(!s.selects("model.safetensors"));
        let s = select(&["tokenizer/*.json"], &[]);
        assert!(s.selects("tokenizer/vocab.json"));
        assert!(!s.selects("extra/tokenizer/vocab.json"));
        assert!(
            !s.selects("tokenizer/deep/vocab.json"),
            "* stays within a name"
        );
        let s = select(&["**/vocab.json"], &[]);
        assert!(s.selects("vocab.json") && s.selects("a/b/vocab.json"));
    }

    #[test]
    fn a_pattern_naming_a_folder_takes_what_is_below_it() {
        let s = select(&["tokenizer"], &[]);
        assert!(s.selects("tokenizer/vocab.json"));
        assert!(s.selects("tokenizer/deep/merges.txt"));
        assert!(!s.selects("tokenizer.json"));
        let s = select(&["/tokenizer/"], &[]);
        assert!(s.selects("tokenizer/vocab.json"));
        assert!(
            !s.selects("sub/tokenizer/vocab.json"),
            "a leading / anchors"
        );
    }

    #[test]
    fn exclude_wins_and_alone_takes_everything_else() {
        let s = select(&["*.safetensors"], &["model-00002-*"]);
        assert!(s.selects("model-00001-of-00002.safetensors"));
        assert!(!s.selects("model-00002-of-00002.safetensors"));
        let s = select(&[], &["*.bin", "optimizer"]);
        assert!(s.selects("config.json"));
        assert!(!s.selects("pytorch_model.bin"));
        assert!(!s.selects("optimizer/state.pt"));
    }

    #[test]
    fn bad_and_unmatched_patterns_are_named() {
        let err = Select::new(&["[z-a".to_owned()], &[]).unwrap_err();
        assert_eq!(
            crate::error::exit_code_of(&err),
            crate::error::EXIT_USAGE,
            "{err:#}"
        );
        assert!(format!("{err:#}").contains("--only '[z-a'"), "{err:#}");
        assert!(Select::new(&[String::new()], &[]).is_err());
        assert!(Select::new(&[], &[]).unwrap().is_none());
        let s = select(&["*.json", "tokenizr/*"], &[]);
        let paths = ["config.json", "tokenizer/vocab.json"];
        assert_eq!(s.unmatched(&paths), vec!["tokenizr/*"]);
    }
}
