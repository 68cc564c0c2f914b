//! Lineage: gathering where a run came from (its git [`Source`]) and what it ran on (its
//! [`Environment`]), how a command line is recorded ([`recorded_argv`]), and what counts
//! as a secret wherever mreg records text ([`is_secret_name`], [`mask_text`]).
//!
//! Every fact is gathered by a function that never fails: whatever is unavailable is
//! recorded as absent. The environment is an allow-list: only the named files and
//! variables are read, never arbitrary environment variables, and every URL loses its
//! credentials ([`strip_credentials`]). Gathering is cheap enough to run at the start of
//! every recorded run: no subprocess but `git` and, when it is on `PATH`, `nvidia-smi`.
//!
//! The types are records, in [`crate::manifest::lineage`].
//!
//! [`Source`]: crate::manifest::lineage::Source

mod argv;
mod ci;
mod env;
mod git;
mod gpu;
mod lockfiles;
mod python;
mod secret;
mod url;

use std::path::Path;

use crate::manifest::lineage::{Ci, Environment};
pub use argv::{recorded_argv, shell_word, this_command};
pub use git::source;
pub use lockfiles::{content as lockfile_content, masked as masked_lockfile};
pub use python::{LIST_LIMIT as PACKAGE_LIST_LIMIT, package_list, parse_package_list};
pub use secret::{REDACTED, is_secret_name, mask_text};
pub use url::strip_credentials;

/// A lookup of one environment variable, injectable so tests never touch the process's.
pub(crate) type Getenv<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Returns the environment of this process, with lock files from `source_root` and the
/// Python environment its `python3` would be.
///
/// `source_root` is the folder whose lock files describe the run's dependencies,
/// normally [`Source::root`](crate::manifest::lineage::Source::root) or else the folder the run started in; only its top level
/// is searched. Never fails: unavailable facts are absent.
pub fn environment(source_root: &Path) -> Environment {
    environment_with(source_root, &process_env)
}

/// Returns the CI job this process runs in, when a known provider's variables say so.
pub fn ci_job() -> Option<Ci> {
    ci::detect(&process_env)
}

/// Returns the environment, reading variables through `getenv`.
pub(crate) fn environment_with(source_root: &Path, getenv: Getenv<'_>) -> Environment {
    let (kernel, hostname) = env::kernel_and_hostname();
    let (gpus, cuda) = gpu::detect(var(getenv, "PATH").as_deref());
    Environment {
        mreg_version: env!("CARGO_PKG_VERSION").to_owned(),
        os: env::os_name(),
        kernel,
        arch: std::env::consts::ARCH.to_owned(),
        hostname,
        cpu: env::cpu_model(),
        cores: env::cores(),
        memory_bytes: env::memory_bytes(),
        cuda,
        gpus,
        container: env::container(Path::new("/"), getenv),
        ci: ci::detect(getenv),
        lockfiles: lockfiles::lockfiles(source_root),
        python: python::detect(getenv),
    }
}

/// Returns a variable of the process environment; not UTF-8 counts as unset.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Returns the text of a small regular file (at most 64 KiB), `None` for anything else:
/// a work tree's `.python-version` or a venv's `pyvenv.cfg` may be a FIFO, which would
/// wait forever, or a link to `/dev/zero`, which would never end.
pub fn small_text_file(path: &Path) -> Option<String> {
    use std::io::Read as _;
    const LIMIT: u64 = 64 << 10;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > LIMIT {
        return None;
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(LIMIT)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Returns a variable through `getenv`, an empty value counting as unset.
pub(crate) fn var(getenv: Getenv<'_>, name: &str) -> Option<String> {
    getenv(name).filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    #[test]
    fn a_small_text_file_is_never_a_fifo_a_device_or_huge() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join(".python-version");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("fifo");
        assert_eq!(super::small_text_file(&fifo), None);
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("link");
        assert_eq!(super::small_text_file(&zero), None);
        let big = dir.path().join("big");
        std::fs::File::create(&big)
            .expect("create")
            .set_len(1 << 30)
            .expect("sparse");
        assert_eq!(super::small_text_file(&big), None);
        std::fs::write(dir.path().join("ok"), "3.11.7\n").expect("write");
        assert_eq!(
            super::small_text_file(&dir.path().join("ok")).as_deref(),
            Some("3.11.7\n")
        );
    }
    use std::time::{Duration, Instant};

    use super::environment_with;

    #[test]
    fn gathers_from_an_allow_list_quickly() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("uv.lock"), "x").expect("write");
        let vars: HashMap<&str, &str> = [
            ("PATH", ""),
            ("GITLAB_CI", "true"),
            (
                "CI_JOB_URL",
                "https://gitlab-ci-token:SECRET@gitlab.example.com/p/-/jobs/1",
            ),
            ("CI_JOB_TOKEN", "SECRET"),
            ("AWS_SECRET_ACCESS_KEY", "SECRET"),
        ]
        .into_iter()
        .collect();
        let getenv = |name: &str| vars.get(name).map(|v| (*v).to_owned());

        let started = Instant::now();
        let env = environment_with(dir.path(), &getenv);
        let elapsed = started.elapsed();

        assert!(!env.os.is_empty() && !env.arch.is_empty());
        assert_eq!(env.mreg_version, env!("CARGO_PKG_VERSION"));
        assert!(env.gpus.is_empty() && env.cuda.is_none());
        assert_eq!(
            env.ci.as_ref().and_then(|c| c.job_url.as_deref()),
            Some("https://gitlab.example.com/p/-/jobs/1")
        );
        assert_eq!(env.lockfiles.len(), 1);
        let text = toml::to_string(&env).expect("serializes");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
    }
}
