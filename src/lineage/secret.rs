//! What mreg takes for a secret in the text it records, and how it masks one: names that
//! say their value is a secret, credentials in URLs, secret headers and `Bearer` or
//! `Basic` credentials and the values of secret keys quoted as JSON writes them, wherever
//! they stand in a word (a whole argument, a line of an `sh -c` script, a push message).
//! Only the secret goes; the text around it is kept.

use super::strip_credentials;

/// What a masked value is written as.
pub const REDACTED: &str = "[redacted]";

/// Words of a name (split at anything but letters and digits, and where lower case
/// turns to upper) that say its value is a secret, wherever they stand.
const SECRET_WORDS: [&str; 9] = [
    "secret",
    "password",
    "passwd",
    "passphrase",
    "apikey",
    "credential",
    "credentials",
    "cookie",
    "authorization",
];

/// Words that say the value is a secret as the last word of a name (`hf_token`,
/// `gh_pat`), but not in front of another (`token_budget`, `eos_token_id`).
const LAST_WORDS: [&str; 2] = ["token", "pat"];

/// Words before `token` that make it a token of text, as tokenizers name them
/// (`eos_token`, `pad_token`, `max_token`), not a credential.
const TEXT_TOKENS: [&str; 12] = [
    "pad", "bos", "eos", "unk", "sep", "cls", "mask", "special", "start", "end", "max", "num",
];

/// Words after which `key` names a secret: `api_key`, `AWS_SECRET_ACCESS_KEY`.
const KEY_QUALIFIERS: [&str; 6] = [
    "api",
    "access",
    "secret",
    "private",
    "signing",
    "encryption",
];

/// Names that are secrets only as the whole name: `--key`, `--auth`.
const WHOLE_NAMES: [&str; 2] = ["key", "auth"];

/// Flags whose value is `USER:PASSWORD`, as curl and wget take them.
const USER_FLAGS: [&str; 4] = ["-u", "-U", "--user", "--proxy-user"];

/// Returns whether a flag, variable, param, tag or header name says its value is a
/// secret. Its words (split at anything but ASCII letters and digits, and inside
/// camelCase) are looked at: a word `secret`, `password`, `passwd`, `passphrase`,
/// `apikey`, `credential(s)`, `cookie` or `authorization` anywhere; `token` or `pat` as
/// the last word (but not `eos_token`, `pad_token`, `max_token` and the like); `key`
/// after `api`, `access`, `secret`, `private`, `signing` or `encryption`; or the whole
/// name `key` or `auth`.
///
/// So `--hf-token`, `WANDB_API_KEY`, `db.password`, `auth.token`, `hfToken`, `X-Api-Key`
/// and `--key` are secrets; `--tokenizer`, `max_tokens`, `eos_token_id`, `token_budget`,
/// `keyframes` and `s3.key` are not.
pub fn is_secret_name(name: &str) -> bool {
    let words = words(name);
    if let [only] = words.as_slice()
        && WHOLE_NAMES.contains(&only.as_str())
    {
        return true;
    }
    let last = words.len().wrapping_sub(1);
    words.iter().enumerate().any(|(i, word)| {
        let prev = i.checked_sub(1).map(|p| words[p].as_str());
        SECRET_WORDS.contains(&word.as_str())
            || (i == last
                && LAST_WORDS.contains(&word.as_str())
                && !(word == "token" && prev.is_some_and(|p| TEXT_TOKENS.contains(&p))))
            || (word == "key" && prev.is_some_and(|p| KEY_QUALIFIERS.contains(&p)))
    })
}

/// Returns the lower-case words of a name: split at every character that is not an ASCII
/// letter or digit, and inside camelCase (`hfToken`, `HFToken`: `hf`, `token`).
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in name.split(|c: char| !c.is_ascii_alphanumeric()) {
        let chars: Vec<char> = part.chars().collect();
        let mut word = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let boundary = c.is_ascii_uppercase()
                && prev.is_some_and(|p| {
                    p.is_ascii_lowercase()
                        || p.is_ascii_digit()
                        || (p.is_ascii_uppercase() && next.is_some_and(char::is_ascii_lowercase))
                });
            if boundary && !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            word.push(c.to_ascii_lowercase());
        }
        if !word.is_empty() {
            out.push(word);
        }
    }
    out
}

/// Returns `value` as recorded after the flag or word `prev`: `[redacted]` after a flag
/// whose name is a secret (`--hf-token X`), `USER:[redacted]` after `-u`, `-U`, `--user`
/// or `--proxy-user`, and
/// `None` when `prev` says nothing about it. A value that starts with `-` is the next
/// flag, not a value.
pub fn after_flag(prev: &str, value: &str) -> Option<String> {
    if value.is_empty() || value.starts_with('-') || !prev.starts_with('-') || prev.contains('=') {
        return None;
    }
    if USER_FLAGS.contains(&prev) {
        return masked_password(value);
    }
    is_secret_name(prev).then(|| REDACTED.to_owned())
}

/// Returns `USER:[redacted]` for `USER:PASSWORD` with a password.
fn masked_password(value: &str) -> Option<String> {
    let (user, password) = value.split_once(':')?;
    (!password.is_empty() && password != REDACTED).then(|| format!("{user}:{REDACTED}"))
}

/// Returns a user flag with its value in the same word, its password masked:
/// `--user=bob:[redacted]`, `--proxy-user=bob:[redacted]`, and the short forms curl
/// takes attached, `-ubob:[redacted]` and `-Ubob:[redacted]`.
fn attached_user(word: &str) -> Option<String> {
    let (flag, value) = match word.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") && USER_FLAGS.contains(&flag) => {
            (&word[..=flag.len()], value)
        }
        _ if word.len() > 2 && (word.starts_with("-u") || word.starts_with("-U")) => {
            word.split_at(2)
        }
        _ => return None,
    };
    masked_password(value).map(|masked| format!("{flag}{masked}"))
}

/// Returns `word` masked as one self-contained word: `NAME=[redacted]` when it is
/// `NAME=VALUE` with a secret name, and within it (and within every line of a script it
/// holds) the values of secret flags and variables, URL credentials, query strings and
/// fragments, secret header values (`Authorization: Bearer [redacted]`, `X-Api-Key:
/// [redacted]`), `Bearer`/`Basic` credentials, and the value of a quoted secret key as
/// JSON (or Python) writes a map (`{"token": "[redacted]"}`). Everything else is kept.
///
/// The same rules mask free text mreg records: a push's message, a stage move's reason,
/// a run's name and experiment.
pub fn mask_text(word: &str) -> String {
    // Quotes group words (`--password 'a b'`), but a stray one (`don't`) would hide the
    // rest of a script from the word rules: they run again with words split at every
    // whitespace.
    let out = mask_tokens(&mask_tokens(word, true), false);
    let out = mask_urls(&out);
    let out = mask_headers(&out);
    let out = mask_auth_schemes(&out);
    mask_quoted_keys(&out)
}

/// Returns whether `c` ends a URL or a header value inside a script.
fn ends_token(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '`' | '<' | '>' | '|' | ';' | '(' | ')' | '\\'
        )
}

/// Masks the word-by-word rules over the shell words of `text`: a value after a secret
/// flag, the value of a secret `NAME=VALUE`. Words are split at whitespace, outside
/// quotes when `quotes`; a word's surrounding quotes are kept.
fn mask_tokens(text: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev_core: Option<String> = None;
    for (is_space, piece) in shell_pieces(text, quotes) {
        if is_space {
            out.push_str(piece);
            continue;
        }
        let (lead, core, trail) = split_quotes(piece);
        let masked = prev_core
            .as_deref()
            .and_then(|prev| after_flag(prev, core))
            .or_else(|| attached_user(core))
            .or_else(|| masked_assignment(core));
        match masked {
            Some(masked) => {
                out.push_str(lead);
                out.push_str(&masked);
                out.push_str(trail);
            }
            None => out.push_str(piece),
        }
        prev_core = Some(core.to_owned());
    }
    out
}

/// Returns `NAME=[redacted]` when `word` is `NAME=VALUE` with a secret name and a value.
fn masked_assignment(word: &str) -> Option<String> {
    let (name, value) = word.split_once('=')?;
    let secret = !name.is_empty()
        && !name.contains("://")
        && !value.is_empty()
        && value != REDACTED
        && is_secret_name(name);
    secret.then(|| format!("{name}={REDACTED}"))
}

/// Returns the pieces of `text`: runs of whitespace (`true`) and shell words (`false`),
/// with `quotes` a quoted stretch belonging to its word whatever it holds.
fn shell_pieces(text: &str, quotes: bool) -> Vec<(bool, &str)> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut in_space = None;
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        let space = quote.is_none() && c.is_whitespace();
        if in_space != Some(space) {
            if let Some(was) = in_space {
                pieces.push((was, &text[start..i]));
            }
            start = i;
            in_space = Some(space);
        }
        match quote {
            Some(q) if c == q => quote = None,
            None if quotes && (c == '"' || c == '\'') => quote = Some(c),
            _ => {}
        }
    }
    if let Some(was) = in_space {
        pieces.push((was, &text[start..]));
    }
    pieces
}

/// Splits a shell word into its leading quotes, its text, and its trailing quotes and
/// `;`.
fn split_quotes(word: &str) -> (&str, &str, &str) {
    let lead = word.len() - word.trim_start_matches(['"', '\'']).len();
    let rest = &word[lead..];
    let core = rest.trim_end_matches(['"', '\'', ';']);
    (&word[..lead], core, &rest[core.len()..])
}

/// Replaces every `scheme://…` URL in `text` by its form without credentials, query or
/// fragment. A URL ends at whitespace, a quote or a shell operator, or where the next
/// URL starts.
fn mask_urls(text: &str) -> String {
    let starts = url_starts(text);
    if starts.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for (n, &start) in starts.iter().enumerate() {
        if start < done {
            continue;
        }
        let limit = starts.get(n + 1).copied().unwrap_or(text.len());
        let end = text[start..limit]
            .find(ends_token)
            .map_or(limit, |i| start + i);
        out.push_str(&text[done..start]);
        out.push_str(&strip_credentials(&text[start..end]));
        done = end;
    }
    out.push_str(&text[done..]);
    out
}

/// Returns where each `scheme://` in `text` starts: its scheme is a letter, then letters,
/// digits, `+`, `-` or `.`.
fn url_starts(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut starts = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("://").map(|i| from + i) {
        let mut start = i;
        while start > 0
            && (bytes[start - 1].is_ascii_alphanumeric() || b"+-.".contains(&bytes[start - 1]))
        {
            start -= 1;
        }
        // The scheme starts at its first letter: `1http://` is `http://` after a digit.
        while start < i && !bytes[start].is_ascii_alphabetic() {
            start += 1;
        }
        if start < i {
            starts.push(start);
        }
        from = i + 3;
    }
    starts
}

/// Masks the value of every secret header in `text`: `NAME: VALUE` where the name says
/// it is a secret (`Authorization`, `Cookie`, `X-Api-Key`…). The value runs to the end
/// of the line when the header opens the word or follows `=` in its first shell word
/// (`Authorization: Bearer x`, `--header=Cookie: a=1; b=2`), to the closing quote when
/// quoted, else to the next whitespace. An `Authorization` value keeps its scheme word.
fn mask_headers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut search = 0;
    while let Some(colon) = text[search..].find(':').map(|i| search + i) {
        search = colon + 1;
        let name_len = text.as_bytes()[..colon]
            .iter()
            .rev()
            .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            .count();
        let name_start = colon - name_len;
        let name = &text[name_start..colon];
        let before = text[..name_start].chars().next_back();
        let opens = before.is_none_or(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '='));
        if name.is_empty() || name_start < done || !opens || !is_secret_header(name) {
            continue;
        }
        let value_start = colon
            + 1
            + text[colon + 1..]
                .find(|c: char| c != ' ' && c != '\t')
                .unwrap_or(text.len() - colon - 1);
        let first_word = !text[..name_start].contains(char::is_whitespace);
        // Where a value starting at `from` ends.
        let end_from = |from: usize| {
            let rest = &text[from..];
            match before {
                Some(q @ ('"' | '\'')) => rest.find(q),
                _ if first_word => rest.find('\n'),
                _ => rest.find(char::is_whitespace),
            }
            .map_or(text.len(), |i| from + i)
        };
        let mut value_start = value_start;
        if ["authorization", "proxy-authorization"].contains(&name.to_ascii_lowercase().as_str()) {
            // A scheme word (`Bearer`, `token`) is kept; the credential after it goes.
            let rest = &text[value_start..];
            let scheme = rest.len()
                - rest
                    .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                    .len();
            let after = &rest[scheme..];
            let gap = after.len() - after.trim_start_matches([' ', '\t']).len();
            if scheme > 0
                && gap > 0
                && gap < after.len()
                && !after[gap..].starts_with(['\n', '"', '\''])
            {
                value_start += scheme + gap;
            }
        }
        let value = &text[value_start..end_from(value_start)];
        if value.is_empty() || value == REDACTED {
            continue;
        }
        out.push_str(&text[done..value_start]);
        out.push_str(REDACTED);
        done = value_start + value.len();
        search = done;
    }
    out.push_str(&text[done..]);
    out
}

/// Returns whether a header name says its value is a secret.
fn is_secret_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["set-cookie", "proxy-authorization"].contains(&lower.as_str()) || is_secret_name(name)
}

/// Masks the credential after every `Bearer` (any credential) and `Basic` (one that is
/// base64 of `USER:PASSWORD`, so that the English word is left alone).
fn mask_auth_schemes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let lower = text.to_ascii_lowercase();
    let mut search = 0;
    while let Some((at, scheme)) = ["bearer", "basic"]
        .iter()
        .filter_map(|s| lower[search..].find(s).map(|i| (search + i, *s)))
        .min()
    {
        search = at + scheme.len();
        let whole_word = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        let after = &text[search..];
        let gap = after.len() - after.trim_start_matches([' ', '\t']).len();
        if !whole_word || gap == 0 {
            continue;
        }
        let credential_start = search + gap;
        let rest = &text[credential_start..];
        let credential = &rest[..rest.find(ends_token).unwrap_or(rest.len())];
        let masks = match scheme {
            "bearer" => !credential.is_empty() && credential != REDACTED,
            _ => is_basic_credential(credential),
        };
        if masks {
            out.push_str(&text[done..credential_start]);
            out.push_str(REDACTED);
            done = credential_start + credential.len();
            search = done;
        }
    }
    out.push_str(&text[done..]);
    out
}

/// Masks the value of every quoted key with a secret name followed by `:`, as JSON,
/// YAML flow style and Python write a map: `{"token":"abc"}` is `{"token":"[redacted]"}`,
/// `{'api_key': 12}` is `{'api_key': "[redacted]"}`. A value that is a map or a list is
/// looked into (its own keys are masked by their names); `true`, `false` and `null`
/// are kept. Each key is found from its `:`, so a stray quote earlier in the text (`don't`)
/// changes nothing.
fn mask_quoted_keys(text: &str) -> String {
    let bytes = text.as_bytes();
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut search = 0;
    while let Some(colon) = text[search..].find(':').map(|i| search + i) {
        search = colon + 1;
        let close = colon - bytes[..colon].iter().rev().take_while(|b| blank(b)).count();
        let Some(quote) = close
            .checked_sub(1)
            .map(|i| bytes[i])
            .filter(|q| matches!(q, b'"' | b'\''))
        else {
            continue;
        };
        let close = close - 1;
        let Some(open) = bytes[..close].iter().rposition(|b| *b == quote) else {
            continue;
        };
        if open < done || !is_secret_name(&text[open + 1..close]) {
            continue;
        }
        let value = colon + 1 + bytes[colon + 1..].iter().take_while(|b| blank(b)).count();
        match bytes.get(value) {
            Some(q @ (b'"' | b'\'')) => {
                let Some(end) = closing_quote(bytes, value, *q) else {
                    continue;
                };
                let inner = &text[value + 1..end];
                if !inner.is_empty() && inner != REDACTED {
                    out.push_str(&text[done..=value]);
                    out.push_str(REDACTED);
                    done = end;
                    search = end + 1;
                }
            }
            Some(b'{' | b'[') | None => {}
            Some(_) => {
                let rest = &text[value..];
                let len = rest
                    .find(|c: char| c.is_whitespace() || matches!(c, ',' | '}' | ']' | ')'))
                    .unwrap_or(rest.len());
                let scalar = &rest[..len];
                let kept = scalar.is_empty()
                    || matches!(
                        scalar,
                        "true" | "false" | "null" | "True" | "False" | "None"
                    );
                if !kept {
                    out.push_str(&text[done..value]);
                    out.push('"');
                    out.push_str(REDACTED);
                    out.push('"');
                    done = value + len;
                    search = done;
                }
            }
        }
    }
    out.push_str(&text[done..]);
    out
}

/// Returns where the quote `quote` opened at `open` closes, a backslash escaping the
/// next character.
fn closing_quote(bytes: &[u8], open: usize, quote: u8) -> Option<usize> {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Returns whether `text` is standard base64 (padding optional) of text holding a `:`.
fn is_basic_credential(text: &str) -> bool {
    let digits = text.trim_end_matches('=');
    if digits.len() < 2 || text.len() - digits.len() > 2 {
        return false;
    }
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut colon = false;
    for c in digits.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return false,
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            colon |= (bits >> nbits) & 0xff == u32::from(b':');
            bits &= (1 << nbits) - 1;
        }
    }
    colon
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{is_basic_credential, is_secret_name, mask_text};
    use crate::testing::fuzz;

    #[test]
    fn secret_names_by_their_words() {
        for name in [
            "--hf-token",
            "HF_TOKEN",
            "hfToken",
            "HFToken",
            "api_key",
            "apiKey",
            "WANDB_API_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "db.password",
            "auth.token",
            "--key",
            "--auth",
            "auth",
            "X-Api-Key",
            "Authorization",
            "cookie",
            "gh_pat",
            "ssh.passphrase",
            "model/private_key",
            "client-secret",
            "AWS_SESSION_TOKEN",
            "access_token",
            "token",
        ] {
            assert!(is_secret_name(name), "{name} is a secret name");
        }
        for name in [
            "--tokenizer",
            "max_tokens",
            "maxTokens",
            "--max-tokens",
            "keyframes",
            "s3.key",
            "sort_key",
            "key_size",
            "patience",
            "eos_token_id",
            "pad_token",
            "max_token",
            "token_budget",
            "max_token_count",
            "token_file",
            "patch_size",
            "author",
            "lr",
            "",
        ] {
            assert!(!is_secret_name(name), "{name} is not a secret name");
        }
    }

    #[test]
    fn scripts_keep_their_text_and_lose_their_secrets() {
        let cases = [
            (
                "echo https://u:p@h/x; curl -H \"Authorization: Bearer xyz\" https://h/y",
                "echo https://h/x; curl -H \"Authorization: Bearer [redacted]\" https://h/y",
            ),
            (
                "HF_TOKEN=abc python train.py --lr 0.1",
                "HF_TOKEN=[redacted] python train.py --lr 0.1",
            ),
            (
                "python train.py --hf-token abc --lr 0.1",
                "python train.py --hf-token [redacted] --lr 0.1",
            ),
            (
                "python train.py --password 'a b c' --epochs 3",
                "python train.py --password '[redacted]' --epochs 3",
            ),
            (
                "curl -u alice:s3cret https://h/x && echo done",
                "curl -u alice:[redacted] https://h/x && echo done",
            ),
            (
                "curl 'https://h/x?sig=abc' -H 'X-Api-Key: k1' -H 'Accept: text/csv'",
                "curl 'https://h/x' -H 'X-Api-Key: [redacted]' -H 'Accept: text/csv'",
            ),
            (
                "wget --header=\"Cookie: sid=abc; theme=dark\" http://h/",
                "wget --header=\"Cookie: [redacted]\" http://h/",
            ),
            (
                "git clone https://tok@github.com/o/r",
                "git clone https://github.com/o/r",
            ),
            ("a=https://u:p@h,https://v:q@k/z", "a=https://h,https://k/z"),
            ("--url=https://u:p@h/x", "--url=https://h/x"),
            ("python -u train.py", "python -u train.py"),
            (
                "echo Basic training; echo Bearer",
                "echo Basic training; echo Bearer",
            ),
            ("echo 'Basic dTpw'", "echo 'Basic [redacted]'"),
            (
                "tokenizer: bpe, max_tokens: 512",
                "tokenizer: bpe, max_tokens: 512",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(mask_text(input), want, "input {input:?}");
        }
    }

    #[test]
    fn header_words_lose_their_values() {
        let cases = [
            (
                "Authorization: Bearer xyz",
                "Authorization: Bearer [redacted]",
            ),
            (
                "authorization:token ghp_1",
                "authorization:token [redacted]",
            ),
            ("Authorization: dG9rZW4=", "Authorization: [redacted]"),
            (
                "Proxy-Authorization: Basic dTpw",
                "Proxy-Authorization: Basic [redacted]",
            ),
            ("X-Api-Key: abc def", "X-Api-Key: [redacted]"),
            ("Cookie: a=1; b=2", "Cookie: [redacted]"),
            (
                "--header=X-Auth-Token: t",
                "--header=X-Auth-Token: [redacted]",
            ),
            ("Accept: application/json", "Accept: application/json"),
            ("Bearer abc.def-ghi", "Bearer [redacted]"),
        ];
        for (input, want) in cases {
            assert_eq!(mask_text(input), want, "input {input:?}");
        }
    }

    #[test]
    fn user_flags_with_an_attached_value_lose_their_password() {
        let cases = [
            (
                "curl -ubob:pw_1 https://h/x",
                "curl -ubob:[redacted] https://h/x",
            ),
            (
                "curl -Ubob:pw_2 https://h/x",
                "curl -Ubob:[redacted] https://h/x",
            ),
            (
                "wget --user=bob:pw_3 http://h/",
                "wget --user=bob:[redacted] http://h/",
            ),
            ("curl --proxy-user=b:pw_4", "curl --proxy-user=b:[redacted]"),
            ("curl -ubob https://h/x", "curl -ubob https://h/x"),
            (
                "python -u train.py --user=bob",
                "python -u train.py --user=bob",
            ),
            ("-uroot:", "-uroot:"),
        ];
        for (input, want) in cases {
            assert_eq!(mask_text(input), want, "input {input:?}");
        }
    }

    #[test]
    fn quoted_secret_keys_lose_their_values_in_lists_of_maps() {
        let cases = [
            (
                r#"[{"name":"hub","token":"tok_1"},{"name":"s3","api_key":42}]"#,
                r#"[{"name":"hub","token":"[redacted]"},{"name":"s3","api_key":"[redacted]"}]"#,
            ),
            (
                "{'password': 'pw_2', 'user': 'bob'}",
                "{'password': '[redacted]', 'user': 'bob'}",
            ),
            (
                r#"[{"auth":{"token":"t\"3"}},{"use_token":true}]"#,
                r#"[{"auth":{"token":"[redacted]"}},{"use_token":true}]"#,
            ),
            (
                r#"don't leak {"hf_token": "x4"}"#,
                r#"don't leak {"hf_token": "[redacted]"}"#,
            ),
            (
                r#"[{"tokenizer":"bpe","max_tokens":512}]"#,
                r#"[{"tokenizer":"bpe","max_tokens":512}]"#,
            ),
            (r#"["token","abc"]"#, r#"["token","abc"]"#),
        ];
        for (input, want) in cases {
            assert_eq!(mask_text(input), want, "input {input:?}");
        }
    }

    #[test]
    fn masking_twice_changes_nothing_more() {
        for input in [
            "curl -H 'Authorization: Bearer xyz' https://u:p@h/x?q=1",
            "HF_TOKEN=abc x --password p -u a:b -uc:d --user=e:f",
            "Cookie: a=1",
            r#"[{"token":"a"},{'api_key': 3}]"#,
        ] {
            let once = mask_text(input);
            assert_eq!(mask_text(&once), once, "input {input:?}");
        }
    }

    #[test]
    fn basic_credentials_are_base64_of_a_user_and_password() {
        assert!(is_basic_credential("dTpw")); // u:p
        assert!(is_basic_credential("YWxpY2U6c2VjcmV0")); // alice:secret
        assert!(is_basic_credential("YTpi")); // a:b
        assert!(!is_basic_credential("training"));
        assert!(!is_basic_credential("setup"));
        assert!(!is_basic_credential(""));
        assert!(!is_basic_credential("===="));
    }

    /// Returns text made of the characters masking looks at, and some others.
    fn script() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-z0-9 :=@/'\"\\-_.;\n\t|é]{0,40}").expect("a valid regex")
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn masking_never_panics(text in any::<String>(), other in script()) {
            let _ = mask_text(&text);
            let _ = mask_text(&other);
        }

        #[test]
        fn a_secret_never_survives_whatever_surrounds_it(
            before in script(),
            after in script(),
            secret in "[A-Z]{8,12}",
            form in 0..9usize,
        ) {
            let placed = match form {
                0 => format!("https://u:{secret}@h/x"),
                1 => format!("Authorization: Bearer {secret}"),
                2 => format!(" --hf-token {secret}"),
                3 => format!(" API_KEY={secret}"),
                4 => format!("'X-Api-Key: {secret}'"),
                5 => format!(" -ubob:{secret}"),
                6 => format!(" --user=bob:{secret}"),
                7 => format!(r#" [{{"n":1,"token":"{secret}"}}]"#),
                _ => format!(" Bearer {secret}"),
            };
            // A separator keeps the secret's own word apart from the text around it.
            let text = format!("{before} {placed} {after}");
            let masked = mask_text(&text);
            prop_assert!(!masked.contains(&secret), "{text:?} gave {masked:?}");
        }
    }
}
