//! Lineage: where a run came from (git [`Source`]) and what it ran on ([`Environment`]).
//!
//! Every fact is gathered by a function that never fails: whatever is unavailable is
//! recorded as absent. The environment is an allow-list: only the named files and
//! variables are read, never arbitrary environment variables, and every URL loses its
//! credentials ([`strip_credentials`]). Gathering is cheap enough to run at the start of
//! every recorded run: no subprocess but `git` and, when it is on `PATH`, `nvidia-smi`.
//!
//! All types serialize to TOML: absent options and empty lists are left out.

mod ci;
mod env;
mod git;
mod gpu;
mod lockfiles;
mod url;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use ci::Ci;
pub use env::Container;
pub use git::{Source, source};
pub use gpu::Gpu;
pub use lockfiles::LockFile;
pub use url::strip_credentials;

/// A lookup of one environment variable, injectable so tests never touch the process's.
pub(crate) type Getenv<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The machine, container, CI job and dependency locks a run executed with.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Environment {
    /// The version of mreg that recorded the run.
    pub mreg_version: String,
    /// The operating system: `PRETTY_NAME` from os-release, else the target OS (`linux`).
    pub os: String,
    /// The kernel release, from `uname`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// The CPU architecture, such as `x86_64` or `aarch64`.
    pub arch: String,
    /// The host name, from `uname`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The CPU model name from `/proc/cpuinfo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// The number of CPUs this process may use (which respects affinity and quotas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
    /// The total memory in bytes, from `/proc/meminfo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// The CUDA version the NVIDIA driver supports, from `nvidia-smi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda: Option<String>,
    /// The NVIDIA GPUs, from `nvidia-smi`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<Gpu>,
    /// The container the run executed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// The CI job the run executed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<Ci>,
    /// The dependency lock files at the top of the source folder, sorted by path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lockfiles: Vec<LockFile>,
}

/// Returns the environment of this process, with lock files from `source_root`.
///
/// `source_root` is the folder whose lock files describe the run's dependencies,
/// normally [`Source::root`] or else the folder the run started in; only its top level
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
    }
}

/// Returns a variable of the process environment; not UTF-8 counts as unset.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Returns a variable through `getenv`, an empty value counting as unset.
pub(crate) fn var(getenv: Getenv<'_>, name: &str) -> Option<String> {
    getenv(name).filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use super::{Ci, Container, Environment, Gpu, LockFile, Source, environment_with};

    fn full_environment() -> Environment {
        Environment {
            mreg_version: "0.1.0".into(),
            os: "Debian GNU/Linux 12 (bookworm)".into(),
            kernel: Some("6.1.0-18-amd64".into()),
            arch: "x86_64".into(),
            hostname: Some("gpu-07".into()),
            cpu: Some("AMD EPYC 7763 64-Core Processor".into()),
            cores: Some(64),
            memory_bytes: Some(540_000_000_000),
            cuda: Some("12.4".into()),
            gpus: vec![
                Gpu {
                    name: "NVIDIA A100-SXM4-80GB".into(),
                    memory_bytes: Some(85_899_345_920),
                    driver: Some("550.54.15".into()),
                },
                Gpu {
                    name: "NVIDIA A100-SXM4-80GB".into(),
                    memory_bytes: None,
                    driver: None,
                },
            ],
            container: Some(Container {
                runtime: "docker".into(),
                image: Some("ghcr.io/acme/train:1.2".into()),
            }),
            ci: Some(Ci {
                provider: "github-actions".into(),
                job_url: Some("https://github.com/acme/churn/actions/runs/1".into()),
                run_id: Some("1".into()),
                job: Some("train".into()),
                commit: Some("0123".into()),
                ..Ci::default()
            }),
            lockfiles: vec![LockFile {
                path: "uv.lock".into(),
                blake3: "ab".repeat(32),
            }],
        }
    }

    #[test]
    fn environment_round_trips_through_toml() {
        let env = full_environment();
        let text = toml::to_string(&env).expect("serializes");
        assert!(text.contains("[[gpus]]") && text.contains("[ci]"), "{text}");
        assert_eq!(toml::from_str::<Environment>(&text).expect("parses"), env);

        let sparse = Environment {
            mreg_version: "0.1.0".into(),
            os: "linux".into(),
            arch: "aarch64".into(),
            ..Environment::default()
        };
        let text = toml::to_string(&sparse).expect("serializes");
        assert_eq!(
            text,
            "mreg_version = \"0.1.0\"\nos = \"linux\"\narch = \"aarch64\"\n"
        );
        assert_eq!(
            toml::from_str::<Environment>(&text).expect("parses"),
            sparse
        );
    }

    #[test]
    fn source_round_trips_through_toml() {
        let source = Source {
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            branch: Some("main".into()),
            dirty: true,
            diff_hash: Some("cd".repeat(32)),
            remote: Some("git@github.com:acme/churn.git".into()),
            root: "/home/me/churn".into(),
        };
        let text = toml::to_string(&source).expect("serializes");
        assert_eq!(toml::from_str::<Source>(&text).expect("parses"), source);

        let detached = Source {
            root: "/r".into(),
            ..Source::default()
        };
        let text = toml::to_string(&detached).expect("serializes");
        assert_eq!(text, "dirty = false\nroot = \"/r\"\n");
        assert_eq!(toml::from_str::<Source>(&text).expect("parses"), detached);
    }

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
