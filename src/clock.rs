//! The current time and actor, overridable through `MREG_NOW` and `MREG_ACTOR`.
//!
//! Records carry who wrote them and when. CI systems and tests pin both through
//! the environment so that records, and therefore hashes, are reproducible.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use crate::error::Failure;

/// Returns the current time, or the one `MREG_NOW` names (RFC 3339 or Unix seconds).
pub fn now() -> Result<SystemTime> {
    match std::env::var("MREG_NOW") {
        Ok(text) if !text.is_empty() => parse_time(&text)
            .with_context(|| format!("reading MREG_NOW={text:?}"))
            .map_err(|err| {
                anyhow::Error::new(Failure::usage(format!("{err:#}")).hint(
                    "set MREG_NOW to an RFC 3339 time such as 2026-01-02T03:04:05Z, or unset it",
                ))
            }),
        _ => Ok(SystemTime::now()),
    }
}

/// Returns the time `text` names: RFC 3339 (as every record writes it) or Unix seconds.
pub fn parse_time(text: &str) -> Result<SystemTime> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    }
    Ok(humantime::parse_rfc3339_weak(text)?)
}

/// Returns a time as RFC 3339 in UTC with seconds, the form every manifest uses.
pub fn format_time(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Returns a time as RFC 3339 in UTC with milliseconds, the form run records use, so
/// that runs started within one second still sort in the order they started.
pub fn format_time_ms(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// Returns the time since the machine started, the time it was suspended included:
/// how a lease holder measures its own silence, which must count a laptop's sleep.
/// Never affected by `MREG_NOW` or by a change of the wall clock.
pub fn since_boot() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Returns who is acting: `MREG_ACTOR`; else, in a CI job, the account that started it
/// (`GITHUB_ACTOR@github`, `GITLAB_USER_LOGIN@gitlab`), not the runner's user; else
/// `user@host`.
pub fn actor() -> String {
    actor_with(&|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

fn actor_with(getenv: &dyn Fn(&str) -> Option<String>) -> String {
    if let Some(actor) = getenv("MREG_ACTOR") {
        return actor;
    }
    let ci = [
        ("GITHUB_ACTIONS", "GITHUB_ACTOR", "github"),
        ("GITLAB_CI", "GITLAB_USER_LOGIN", "gitlab"),
    ];
    for (flag, login, forge) in ci {
        if getenv(flag).as_deref() == Some("true")
            && let Some(login) = getenv(login)
        {
            return format!("{login}@{forge}");
        }
    }
    let user = getenv("USER")
        .or_else(|| getenv("LOGNAME"))
        .or_else(account_name)
        .unwrap_or_else(|| format!("uid{}", rustix::process::getuid().as_raw()));
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    format!("{user}@{host}")
}

/// Returns the account name of the current user from `/etc/passwd`, for containers
/// and CI runners where `USER` is not set.
fn account_name() -> Option<String> {
    let uid = rustix::process::getuid().as_raw().to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 2 && fields[2] == uid).then(|| fields[0].to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ci_job_acts_as_the_account_that_started_it() {
        let with = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            actor_with(&move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        };
        let github = [("GITHUB_ACTIONS", "true"), ("GITHUB_ACTOR", "octocat")];
        assert_eq!(with(&github), "octocat@github");
        let gitlab = [("GITLAB_CI", "true"), ("GITLAB_USER_LOGIN", "alice")];
        assert_eq!(with(&gitlab), "alice@gitlab");
        let pinned = [
            ("MREG_ACTOR", "release-bot"),
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_ACTOR", "octocat"),
        ];
        assert_eq!(with(&pinned), "release-bot");
        // A variable alone, outside its CI, is not trusted to name anyone.
        assert!(with(&[("GITHUB_ACTOR", "octocat"), ("USER", "bob")]).starts_with("bob@"));
    }

    #[test]
    fn parses_rfc3339_and_unix_seconds_alike() {
        let a = parse_time("2026-01-02T03:04:05Z").unwrap();
        let b = parse_time("1767323045").unwrap();
        assert_eq!(a, b);
        assert_eq!(format_time(a), "2026-01-02T03:04:05Z");
    }

    #[test]
    fn rejects_garbage_time() {
        assert!(parse_time("yesterday").is_err());
    }
}
