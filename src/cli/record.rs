//! Building run records: what every new run records of where and how it started.

use std::collections::BTreeMap;

use anyhow::Result;

use super::Ctx;
use super::inputs::Additions;
use crate::clock;

use crate::lineage;
use crate::manifest::run::{Command, FORMAT, Status};
use crate::manifest::{RunId, RunRecord};
use crate::store::{Registry, runs};

/// Returns a run record as a run starts: who, when, where, and the source and
/// environment it runs in.
pub fn start_record(
    ctx: &Ctx,
    experiment: &str,
    name: Option<String>,
    start: String,
    argv: Option<&[String]>,
) -> RunRecord {
    let cwd = ctx.cwd();
    let source = lineage::source(cwd);
    let root = source
        .as_ref()
        .map_or(cwd.to_path_buf(), |s| s.root.clone().into());
    let environment = lineage::environment(&root);
    let host = environment.hostname.clone();
    RunRecord {
        format: FORMAT,
        id: RunId::parse("0000000000000000").expect("a valid placeholder id"),
        experiment: experiment.to_owned(),
        name,
        status: if argv.is_some() {
            Status::Running
        } else {
            Status::Finished
        },
        start,
        actor: clock::actor(),
        end: None,
        command: argv.map(|argv| Command {
            argv: recorded_argv(argv),
            cwd: Some(cwd.display().to_string()),
            host,
            pid: Some(std::process::id()),
        }),
        params: BTreeMap::new(),
        metrics: BTreeMap::new(),
        tags: BTreeMap::new(),
        series: BTreeMap::new(),
        source,
        data: Vec::new(),
        parents: Vec::new(),
        outputs: Vec::new(),
        environment: Some(environment),
    }
}

/// Parts of a flag or variable name (split at `-` and `_`) that say its value is a
/// secret. `key` counts only after `api`, `access`, `secret`, `private` or `signing`.
const SECRET_PARTS: [&str; 8] = [
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "credential",
    "credentials",
    "pat",
];

/// Returns whether a flag or variable name says its value is a secret: `--hf-token`,
/// `WANDB_API_KEY`, `--db-password`; not `--tokenizer` or `--max-tokens`.
fn secret_name(name: &str) -> bool {
    let lower = name.trim_start_matches('-').to_ascii_lowercase();
    let parts: Vec<&str> = lower.split(['-', '_']).filter(|p| !p.is_empty()).collect();
    parts.iter().enumerate().any(|(i, part)| {
        SECRET_PARTS.contains(part)
            || (*part == "key"
                && i > 0
                && ["api", "access", "secret", "private", "signing"].contains(&parts[i - 1]))
    })
}

/// Returns a command line as it is recorded: the value of a flag or `NAME=VALUE` word
/// whose name says it is a secret (`--hf-token X`, `--password=X`, `API_KEY=X`) is
/// replaced by `[redacted]`, and URLs lose their credentials, query and fragment.
pub fn recorded_argv(argv: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(argv.len());
    for word in argv {
        let after_secret_flag = out
            .last()
            .is_some_and(|prev| prev.starts_with('-') && !prev.contains('=') && secret_name(prev));
        let recorded = if after_secret_flag && !word.starts_with('-') {
            "[redacted]".to_owned()
        } else if let Some((name, _)) = word.split_once('=')
            && !name.contains("://")
            && secret_name(name)
        {
            format!("{name}=[redacted]")
        } else if word.contains("://") {
            lineage::strip_credentials(word)
        } else {
            word.clone()
        };
        out.push(recorded);
    }
    out
}

/// Publishes a new run holding `record` plus `add`, and returns it with its id.
pub fn create_with(reg: &Registry, mut record: RunRecord, add: Additions) -> Result<RunRecord> {
    add.apply_to(reg, &mut record)?;
    runs::create(reg, record)
}

#[cfg(test)]
mod tests {
    use super::recorded_argv;

    fn rec(words: &[&str]) -> Vec<String> {
        recorded_argv(&words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn secret_flag_values_and_url_credentials_are_not_recorded() {
        assert_eq!(
            rec(&["python", "train.py", "--hf-token", "hf_abc", "--lr", "0.1"]),
            [
                "python",
                "train.py",
                "--hf-token",
                "[redacted]",
                "--lr",
                "0.1"
            ]
        );
        assert_eq!(
            rec(&["x", "--password=hunter2"]),
            ["x", "--password=[redacted]"]
        );
        assert_eq!(
            rec(&["env", "WANDB_API_KEY=k1", "AWS_SECRET_ACCESS_KEY=k2", "x"]),
            [
                "env",
                "WANDB_API_KEY=[redacted]",
                "AWS_SECRET_ACCESS_KEY=[redacted]",
                "x"
            ]
        );
        assert_eq!(
            rec(&["x", "--data", "https://u:pw@host/d.csv?sig=s"]),
            ["x", "--data", "https://host/d.csv"]
        );
        // A secret flag followed by another flag has no value to hide.
        assert_eq!(
            rec(&["x", "--use-token", "--lr", "1"]),
            ["x", "--use-token", "--lr", "1"]
        );
        assert_eq!(
            rec(&["x", "--tokenizer=bpe", "--max-tokens", "512"]),
            ["x", "--tokenizer=bpe", "--max-tokens", "512"]
        );
        assert_eq!(
            rec(&[
                "x",
                "--keyframes",
                "4",
                "--db-password",
                "p",
                "--gh-pat",
                "g"
            ]),
            [
                "x",
                "--keyframes",
                "4",
                "--db-password",
                "[redacted]",
                "--gh-pat",
                "[redacted]"
            ]
        );
        assert_eq!(
            rec(&["x", "--epochs=3", "lr=0.1"]),
            ["x", "--epochs=3", "lr=0.1"]
        );
    }
}
