//! What a run records of where it came from and what it ran on: its git [`Source`] and
//! its [`Environment`] (machine, GPUs, container, CI job, dependency lock files).
//!
//! These are record types only; [`crate::lineage`] gathers them from the machine. All
//! serialize to TOML with absent options and empty lists left out.

use serde::{Deserialize, Serialize};

/// Where a run's code came from: the git state of the folder it started in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The checked-out commit (full hex id); `None` on a branch with no commit yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The checked-out branch; `None` when `HEAD` is detached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Whether tracked files differ from the commit or untracked, not-ignored files exist.
    pub dirty: bool,
    /// When dirty, the blake3 hex of `git diff HEAD --binary` followed by the names and
    /// hashes of untracked, not-ignored files: the same changes give the same hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_hash: Option<String>,
    /// The URL of `origin`, else of the first remote, without credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// The top folder of the work tree.
    pub root: String,
}

/// The machine, container, CI job and dependency locks a run executed with.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// The Python environment the run's command finds, with its installed packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<Python>,
}

impl Environment {
    /// Refuses what a record's environment cannot hold: a lock file listed twice (which
    /// one would `show` print, which `diff` compare?), or an object named by anything
    /// but a 64-hex-digit hash (`gc`, `sync` and `fsck` must all read it as one).
    pub fn check(&self) -> anyhow::Result<()> {
        let is_hash = |hex: &str| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let mut seen = std::collections::HashSet::new();
        for lock in &self.lockfiles {
            if !seen.insert(lock.path.as_str()) {
                anyhow::bail!("environment.lockfiles lists {:?} twice", lock.path);
            }
            if lock.stored && !is_hash(&lock.blake3) {
                anyhow::bail!(
                    "environment.lockfiles: {:?} is stored under {:?}, which is not a blake3 hash",
                    lock.path,
                    lock.blake3
                );
            }
        }
        if let Some(object) = self
            .python
            .as_ref()
            .and_then(|p| p.packages_object.as_deref())
            && !is_hash(object)
        {
            anyhow::bail!("environment.python.packages_object {object:?} is not a blake3 hash");
        }
        Ok(())
    }
}

/// The Python environment a run used: the one its command's `python3` is, found without
/// running it (`$VIRTUAL_ENV`, then `$CONDA_PREFIX`, then `python3` on `PATH`, through
/// pyenv's shims).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Python {
    /// How it was found: `given` (`$MREG_PYTHON`), `venv` (`$VIRTUAL_ENV`, or a
    /// `python3` on `PATH` in a venv), `conda` (`$CONDA_PREFIX`), `pyenv` (the version
    /// pyenv's shim selects) or `path`.
    pub kind: String,
    /// Its prefix: the folder holding `bin/` and `lib/`.
    pub prefix: String,
    /// Its version: in full from a venv's `pyvenv.cfg`, else major and minor from the
    /// `lib/pythonX.Y` folder its packages are in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// How many distributions are installed in its package folders.
    pub packages: u64,
    /// The object holding the package list: one `name==version` line per distribution
    /// (names normalized as pip does), sorted; absent when none was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages_object: Option<String>,
}

/// The CI job a run or promotion happened in.
///
/// Field meanings are shared across providers: `run_id` names the pipeline, workflow
/// or build as a whole, `job_id` one job inside it, `job` the job's name and `workflow`
/// the pipeline's name. A provider that has no equivalent leaves the field out.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ci {
    /// The provider: `github-actions`, `gitlab-ci`, `buildkite`, `circleci` or `jenkins`.
    pub provider: String,
    /// A link to the job (or its run), without credentials, query or fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_url: Option<String>,
    /// The id of the pipeline, workflow run or build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The id of the job within the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The name of the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The name of the workflow or pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The commit the job built, as the provider reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The branch or tag the job built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_name: Option<String>,
}

/// The container a run executed in, when one could be recognized.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Container {
    /// What runs the container: `kubernetes`, `podman`, `docker`, the value of the
    /// systemd `container` variable (`lxc`, `systemd-nspawn`…), or `unknown` when only
    /// an image name was given.
    pub runtime: String,
    /// The image, from `MREG_CONTAINER_IMAGE`, GitLab's `CI_JOB_IMAGE`, Buildkite's
    /// `BUILDKITE_PLUGIN_DOCKER_IMAGE`, or podman's `/run/.containerenv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// One GPU as `nvidia-smi` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    /// The model name, such as `NVIDIA A100-SXM4-80GB`.
    pub name: String,
    /// The total memory in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// The driver version, such as `550.54.15`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
}

/// One dependency lock file and the hash of its content.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    /// The file's name, relative to the source folder.
    pub path: String,
    /// The blake3 hash of its content, in lowercase hex: the object holding it, when
    /// `stored`.
    pub blake3: String,
    /// Whether its content is in the store (files over 16 MiB are hashed only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stored: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

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
                stored: true,
            }],
            python: Some(Python {
                kind: "venv".into(),
                prefix: "/home/alice/churn/.venv".into(),
                version: Some("3.11.2".into()),
                packages: 2,
                packages_object: Some("cd".repeat(32)),
            }),
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
}
