//! AWS profiles: the `~/.aws/credentials` and `~/.aws/config` files the AWS CLI writes.
//!
//! Environment variables win over a profile, as in the AWS tools. The profile is
//! `AWS_PROFILE` (else `default`); the files are `AWS_SHARED_CREDENTIALS_FILE` and
//! `AWS_CONFIG_FILE` (else `~/.aws/credentials` and `~/.aws/config`). Only the keys
//! mreg needs are read: the access key, secret, session token, region and endpoint.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The settings of one profile, merged from both files (credentials first).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// `aws_access_key_id`.
    pub access_key_id: Option<String>,
    /// `aws_secret_access_key`.
    pub secret_access_key: Option<String>,
    /// `aws_session_token`.
    pub session_token: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `endpoint_url`.
    pub endpoint_url: Option<String>,
}

/// Returns the active profile's settings, read from the AWS files (absent files are
/// no error: the profile is then empty).
pub fn active() -> Profile {
    let name = std::env::var("AWS_PROFILE")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| -> Option<PathBuf> {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let mut keys = BTreeMap::new();
    if let Some(path) = file("AWS_CONFIG_FILE", "config")
        && let Ok(text) = std::fs::read_to_string(path)
    {
        let section = if name == "default" {
            "default".to_owned()
        } else {
            format!("profile {name}")
        };
        keys.extend(section_keys(&text, &section));
    }
    if let Some(path) = file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
        && let Ok(text) = std::fs::read_to_string(path)
    {
        keys.extend(section_keys(&text, &name));
    }
    Profile {
        access_key_id: keys.remove("aws_access_key_id"),
        secret_access_key: keys.remove("aws_secret_access_key"),
        session_token: keys.remove("aws_session_token"),
        region: keys.remove("region"),
        endpoint_url: keys.remove("endpoint_url"),
        name,
    }
}

/// Returns the `key = value` pairs of one `[section]` of an INI file.
fn section_keys(text: &str, section: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = header.trim() == section;
            continue;
        }
        if inside && let Some((key, value)) = line.split_once('=') {
            out.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_the_named_section() {
        let text = "[default]\naws_access_key_id = A\n\n[profile team]\n# comment\nregion=eu-west-1\nendpoint_url = http://127.0.0.1:9000\n";
        let team = section_keys(text, "profile team");
        assert_eq!(team.get("region").map(String::as_str), Some("eu-west-1"));
        assert_eq!(
            team.get("endpoint_url").map(String::as_str),
            Some("http://127.0.0.1:9000")
        );
        assert!(!team.contains_key("aws_access_key_id"));
        let default = section_keys(text, "default");
        assert_eq!(
            default.get("aws_access_key_id").map(String::as_str),
            Some("A")
        );
    }
}
