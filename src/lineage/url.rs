//! Credential stripping for the URLs a run records: git remotes, CI job links.
//!
//! Rules, in order of priority (never leaking a secret comes before keeping a URL intact):
//!
//! - `scheme://` URLs lose every query string and fragment (`?token=…`,
//!   `?X-Amz-Signature=…`, `#…`), whatever the scheme. Callers that need an object
//!   version record it separately.
//! - Their userinfo (`user:password@`, `token@`) is dropped entirely, except for the ssh
//!   schemes (`ssh`, `git+ssh`, `ssh+git`), where the user name is kept (`ssh://git@host/…`)
//!   and only a password is dropped: there the name selects an account and is no secret.
//! - scp-style remotes (`git@host:org/repo.git`) keep their user name; a `user:secret@`
//!   prefix, which git would not parse that way but a typo could produce, loses the secret.
//! - Anything else (a local path, plain text) is returned unchanged.

/// Returns `url` without credentials, query string or fragment.
///
/// See the module documentation for the exact rules: all userinfo is dropped from
/// `scheme://` URLs except an ssh user name, queries and fragments are dropped for every
/// scheme, scp-style `user@host:path` keeps its user, and non-URL text is unchanged.
pub fn strip_credentials(url: &str) -> String {
    match url.find("://") {
        Some(at) if is_scheme(&url[..at]) => strip_scheme_url(&url[..at], &url[at + 3..]),
        _ => strip_scp_password(url),
    }
}

/// Returns whether `text` is a URL scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Rebuilds `scheme://rest` without userinfo (but an ssh user), query and fragment.
fn strip_scheme_url(scheme: &str, rest: &str) -> String {
    // The authority runs to the first '/'. A '?' or '#' inside it may belong to a
    // malformed password, so the userinfo split (at the last '@') comes first.
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (userinfo, host) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let (host, path) = match cut_query(host) {
        // The host carried a query or fragment: what follows belongs to it, drop it too.
        cut if cut.len() < host.len() => (cut, ""),
        cut => (cut, cut_query(path)),
    };
    let ssh = ["ssh", "git+ssh", "ssh+git"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme));
    let user = match userinfo {
        Some(info) if ssh => info.split(':').next().filter(|u| !u.is_empty()),
        _ => None,
    };
    let mut out = String::with_capacity(scheme.len() + 3 + authority.len() + path.len());
    out.push_str(scheme);
    out.push_str("://");
    if let Some(user) = user {
        out.push_str(user);
        out.push('@');
    }
    out.push_str(host);
    out.push_str(path);
    out
}

/// Returns `text` up to its first `?` or `#`.
fn cut_query(text: &str) -> &str {
    &text[..text.find(['?', '#']).unwrap_or(text.len())]
}

/// Drops the password of an scp-style `user:secret@host:path`; returns other text as is.
fn strip_scp_password(text: &str) -> String {
    let Some(at) = text.find('@') else {
        return text.to_owned();
    };
    let Some((user, secret)) = text[..at].split_once(':') else {
        return text.to_owned();
    };
    let user_ok = !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let secret_ok = !secret.contains(['/', '\\']) && !secret.chars().any(char::is_whitespace);
    if user_ok && secret_ok {
        format!("{user}{}", &text[at..])
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::strip_credentials;

    #[test]
    fn strips_the_table() {
        let cases = [
            // Tokens and passwords in http(s) userinfo.
            (
                "https://x-access-token:ghp_abc@github.com/o/r.git",
                "https://github.com/o/r.git",
            ),
            ("https://ghp_abc@github.com/o/r", "https://github.com/o/r"),
            ("https://user:p%40ss@host/x", "https://host/x"),
            ("https://user:p@ss@host/x", "https://host/x"),
            ("http://user@host:8080/x", "http://host:8080/x"),
            ("HTTPS://Tok@Host/X", "HTTPS://Host/X"),
            // Queries and fragments, whatever the scheme.
            (
                "https://bucket.s3.amazonaws.com/k?X-Amz-Signature=abc&X-Amz-Credential=d",
                "https://bucket.s3.amazonaws.com/k",
            ),
            ("https://host/x?token=abc#frag", "https://host/x"),
            ("https://host/x#L10", "https://host/x"),
            ("https://host?token=abc", "https://host"),
            ("s3://bucket/key?versionId=3", "s3://bucket/key"),
            ("https://user:pa?ss@host/x", "https://host/x"),
            // Other schemes lose all userinfo.
            ("ftp://user:pw@host/f", "ftp://host/f"),
            ("git://tok@host/r.git", "git://host/r.git"),
            ("file:///srv/repo.git", "file:///srv/repo.git"),
            ("s3://bucket/prefix", "s3://bucket/prefix"),
            // ssh keeps its user name, loses a password.
            (
                "ssh://git@github.com/o/r.git",
                "ssh://git@github.com/o/r.git",
            ),
            ("ssh://git:secret@host:22/r.git", "ssh://git@host:22/r.git"),
            ("git+ssh://me@host/r", "git+ssh://me@host/r"),
            ("ssh://:secret@host/r", "ssh://host/r"),
            ("ssh://host/r", "ssh://host/r"),
            // scp-style keeps its user.
            ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
            ("host:repo.git", "host:repo.git"),
            ("deploy:secret@host:org/r.git", "deploy@host:org/r.git"),
            // Not URLs: unchanged.
            ("", ""),
            ("just some text", "just some text"),
            ("/srv/repos/r.git", "/srv/repos/r.git"),
            ("../r?x", "../r?x"),
            ("C:\\data\\x@y", "C:\\data\\x@y"),
            ("a b:c d@e", "a b:c d@e"),
            ("1http://x:y@z/", "1http://x:y@z/"),
        ];
        for (input, want) in cases {
            assert_eq!(strip_credentials(input), want, "input {input:?}");
        }
    }

    #[test]
    fn never_keeps_a_secret() {
        for input in [
            "https://x-access-token:ghp_SECRET@github.com/o/r.git",
            "https://ghp_SECRET@github.com/o/r",
            "https://h/p?token=SECRET",
            "https://h?token=SECRET/x",
            "https://h#SECRET",
            "https://u:SECRET@h",
            "https://u:SECRET?@h/x",
            "ssh://u:SECRET@h/x",
            "u:SECRET@h:x",
        ] {
            let out = strip_credentials(input);
            assert!(!out.contains("SECRET"), "{input:?} gave {out:?}");
        }
    }
}
