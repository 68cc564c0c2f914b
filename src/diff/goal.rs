//! Which way a metric improves: up (accuracy) or down (loss, latency).
//!
//! The registry's `config.toml` may say so per metric (`[metrics] minimize = […]`,
//! `maximize = […]`, with `*` matching any run of characters); otherwise the metric's
//! name decides: a name with a word such as `loss`, `error`, `latency` or `ms` in it is
//! minimized, anything else maximized.

use serde::Serialize;

use crate::store::config::MetricGoals;

/// Returns the direction in which a metric gets better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    /// Higher is better.
    Max,
    /// Lower is better.
    Min,
}

impl Goal {
    /// Returns whether `a` is strictly better than `b`; NaN is never better.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Goal::Max => a > b,
            Goal::Min => a < b,
        }
    }
}

/// Words that, anywhere in a metric's name, mean lower is better.
const LOWER_IS_BETTER: &[&str] = &[
    "loss",
    "losses",
    "error",
    "errors",
    "err",
    "mse",
    "mae",
    "rmse",
    "mape",
    "smape",
    "nll",
    "perplexity",
    "ppl",
    "wer",
    "cer",
    "ter",
    "fid",
    "eer",
    "fpr",
    "fnr",
    "brier",
    "latency",
    "time",
    "duration",
    "seconds",
    "secs",
    "sec",
    "ms",
    "ns",
    "memory",
    "mem",
    "bytes",
    "size",
    "cost",
    "regret",
    "distance",
    "divergence",
    "kl",
    "bpd",
    "bpb",
    "miss",
    "misses",
];

/// Returns the goals of a registry's metrics.
#[derive(Debug, Clone, Default)]
pub struct Goals {
    minimize: Vec<String>,
    maximize: Vec<String>,
}

impl Goals {
    /// Returns the goals the registry's config declares, over the naming rule.
    pub fn new(config: &MetricGoals) -> Goals {
        Goals {
            minimize: config.minimize.clone(),
            maximize: config.maximize.clone(),
        }
    }

    /// Returns the goal of a metric: an exact name in the config, else the first pattern
    /// that matches (`minimize` before `maximize`), else the naming rule.
    pub fn of(&self, metric: &str) -> Goal {
        let exact = |list: &[String]| list.iter().any(|p| p == metric);
        let pattern = |list: &[String]| list.iter().any(|p| glob(p, metric));
        if exact(&self.minimize) {
            Goal::Min
        } else if exact(&self.maximize) {
            Goal::Max
        } else if pattern(&self.minimize) {
            Goal::Min
        } else if pattern(&self.maximize) {
            Goal::Max
        } else {
            by_name(metric)
        }
    }
}

/// Words that make a metric a rate, better when higher whatever else its name says:
/// `tokens_per_sec`, `throughput`, `qps`.
const RATE: &[&str] = &["per", "throughput", "qps", "rps", "tps", "fps"];

/// Returns the goal a metric's name suggests: lower is better when one of its words
/// is a loss, error, time or size word, unless another makes it a rate.
///
/// Words are split at anything not a letter or digit, at a lowercase letter followed by
/// an uppercase one (`valLoss`), and between letters and digits (`loss2`).
pub fn by_name(metric: &str) -> Goal {
    let words = words(metric);
    let has = |list: &[&str]| words.iter().any(|w| list.contains(&w.as_str()));
    if has(LOWER_IS_BETTER) && !has(RATE) {
        Goal::Min
    } else {
        Goal::Max
    }
}

/// Returns the lowercase words of a name.
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut prev: Option<char> = None;
    for c in name.chars() {
        let boundary = match prev {
            None => false,
            Some(p) => {
                !c.is_ascii_alphanumeric()
                    || (p.is_ascii_lowercase() && c.is_ascii_uppercase())
                    || (p.is_ascii_alphabetic() && c.is_ascii_digit())
                    || (p.is_ascii_digit() && c.is_ascii_alphabetic())
            }
        };
        if boundary && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        if c.is_ascii_alphanumeric() {
            word.push(c.to_ascii_lowercase());
        }
        prev = Some(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Returns whether `text` matches `pattern`, where `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_decide_when_the_config_is_silent() {
        for min in [
            "loss",
            "val_loss",
            "eval/loss",
            "latency_ms",
            "p99-latency",
            "top5_error",
            "WER",
            "train.time_s.sec",
            "valLoss",
            "loss2",
            "top1Err",
        ] {
            assert_eq!(by_name(min), Goal::Min, "{min}");
        }
        for max in [
            "acc",
            "f1",
            "auc",
            "bleu",
            "glossary_hits",
            "recall@10",
            "msec2",
            "tokens_per_sec",
            "samplesPerSecond",
            "us_share",
            "throughput_bytes",
        ] {
            assert_eq!(by_name(max), Goal::Max, "{max}");
        }
    }

    #[test]
    fn config_names_beat_patterns_and_patterns_beat_names() {
        let goals = Goals::new(&MetricGoals {
            minimize: vec!["*_rank".into(), "f1".into()],
            maximize: vec!["reward_loss".into(), "loss*".into()],
        });
        assert_eq!(goals.of("f1"), Goal::Min);
        assert_eq!(goals.of("mean_rank"), Goal::Min);
        assert_eq!(goals.of("reward_loss"), Goal::Max);
        assert_eq!(goals.of("loss_scale"), Goal::Max);
        assert_eq!(goals.of("val_loss"), Goal::Min);
        assert_eq!(goals.of("acc"), Goal::Max);
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob("*", ""));
        assert!(glob("a*c", "abc") && glob("a*c", "ac") && !glob("a*c", "abd"));
        assert!(glob("*x*y", "1x2y") && !glob("*x*y", "1y2x"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("val/*", "val/acc") && !glob("val/*", "train/acc"));
    }
}
