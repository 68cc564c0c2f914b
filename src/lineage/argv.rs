//! Command lines as runs and stage moves record them: the values of secret-looking
//! flags and variables masked, URLs without credentials (the rules are in `secret.rs`).

use super::secret::{REDACTED, after_flag, mask_text};

/// Returns a command line as it is recorded: the value after a flag whose name says it
/// is a secret (`--hf-token X`, `--key X`, `--auth X`) is `[redacted]`, as is the password
/// after `-u` or `--user`; and every word is masked as [`mask_text`] says, which keeps
/// all its text but the secrets: `NAME=VALUE` with a secret name, URL credentials,
/// queries and fragments, secret header values and `Bearer`/`Basic` credentials, also
/// inside an `sh -c` script.
pub fn recorded_argv(argv: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(argv.len());
    for (i, word) in argv.iter().enumerate() {
        let after = i
            .checked_sub(1)
            .and_then(|prev| after_flag(&argv[prev], word));
        out.push(match after {
            Some(masked) if masked == REDACTED => masked,
            // `USER:[redacted]`: the user part may still hold a URL or header.
            Some(masked) => mask_text(&masked),
            None => mask_text(word),
        });
    }
    out
}

/// Returns this process's command line as stage moves and leases record it: masked as
/// [`recorded_argv`] says, the program named `mreg`, each word quoted for a shell.
pub fn this_command() -> String {
    let argv: Vec<String> = std::env::args().collect();
    recorded_argv(&argv)
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                "mreg".to_owned()
            } else {
                shell_word(w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
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

    #[test]
    fn keys_auth_headers_and_scripts_are_masked_without_losing_the_rest() {
        assert_eq!(
            rec(&[
                "curl",
                "--key",
                "k.pem",
                "--auth",
                "u:p",
                "--password",
                "pw",
                "-o",
                "f"
            ]),
            [
                "curl",
                "--key",
                "[redacted]",
                "--auth",
                "[redacted]",
                "--password",
                "[redacted]",
                "-o",
                "f"
            ]
        );
        assert_eq!(
            rec(&[
                "curl",
                "-H",
                "Authorization: Bearer xyz",
                "--header",
                "X-Api-Key: k",
                "-H",
                "Accept: */*"
            ]),
            [
                "curl",
                "-H",
                "Authorization: Bearer [redacted]",
                "--header",
                "X-Api-Key: [redacted]",
                "-H",
                "Accept: */*"
            ]
        );
        assert_eq!(
            rec(&["curl", "-u", "alice:pw", "--user", "bob", "https://h/x"]),
            [
                "curl",
                "-u",
                "alice:[redacted]",
                "--user",
                "bob",
                "https://h/x"
            ]
        );
        assert_eq!(
            rec(&[
                "curl",
                "--header=Cookie: sid=1",
                "--url=https://u:p@h/x?sig=s"
            ]),
            ["curl", "--header=Cookie: [redacted]", "--url=https://h/x"]
        );
        assert_eq!(
            rec(&[
                "sh",
                "-c",
                "echo start; curl -fsS https://u:p@h/x -H 'Authorization: Bearer xyz' | wc -c; echo end",
            ]),
            [
                "sh",
                "-c",
                "echo start; curl -fsS https://h/x -H 'Authorization: Bearer [redacted]' | wc -c; echo end",
            ]
        );
    }
}
