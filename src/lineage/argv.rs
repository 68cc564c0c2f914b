//! Command lines as runs and stage moves record them: the values of secret-looking
//! flags and variables masked, URLs without credentials.

use super::strip_credentials;

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
            strip_credentials(word)
        } else {
            word.clone()
        };
        out.push(recorded);
    }
    out
}

/// Returns `word` quoted for a POSIX shell when it needs it.
pub fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
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
