//! Host facts: operating system, kernel, CPU, memory and hostname, and the container.
//!
//! Everything is read from small files (`/etc/os-release`, `/proc/cpuinfo`,
//! `/proc/meminfo`, container marker files) and `uname`, never from a subprocess, and
//! whatever is missing comes back as `None`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::lineage::{Getenv, var};
use crate::manifest::lineage::Container;

/// Returns the operating system's name: `PRETTY_NAME` from os-release, else the target OS.
pub(crate) fn os_name() -> String {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| os_pretty_name(&text))
        .unwrap_or_else(|| std::env::consts::OS.to_owned())
}

/// Returns the kernel release and the hostname, from `uname`.
pub(crate) fn kernel_and_hostname() -> (Option<String>, Option<String>) {
    let uname = rustix::system::uname();
    let text =
        |c: &std::ffi::CStr| Some(c.to_string_lossy().trim().to_owned()).filter(|s| !s.is_empty());
    (text(uname.release()), text(uname.nodename()))
}

/// Returns the CPU model name from `/proc/cpuinfo`.
pub(crate) fn cpu_model() -> Option<String> {
    let file = File::open("/proc/cpuinfo").ok()?;
    cpu_model_from(BufReader::new(file))
}

/// Returns the total memory in bytes from `/proc/meminfo`.
pub(crate) fn memory_bytes() -> Option<u64> {
    let file = File::open("/proc/meminfo").ok()?;
    mem_total_from(BufReader::new(file))
}

/// Returns the number of CPUs this process may use.
pub(crate) fn cores() -> Option<u32> {
    std::thread::available_parallelism()
        .ok()
        .and_then(|n| u32::try_from(n.get()).ok())
}

/// Returns the container around this process, looking for marker files under `root`.
///
/// Kubernetes is recognized by `KUBERNETES_SERVICE_HOST` being set (its value is not
/// read), podman by `run/.containerenv`, docker by `.dockerenv`, others by the systemd
/// `container` variable.
pub(crate) fn container(root: &Path, getenv: Getenv<'_>) -> Option<Container> {
    let containerenv = match std::fs::read_to_string(root.join("run/.containerenv")) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(_) => Some(String::new()),
    };
    let runtime = if var(getenv, "KUBERNETES_SERVICE_HOST").is_some() {
        Some("kubernetes".to_owned())
    } else if containerenv.is_some() {
        Some("podman".to_owned())
    } else if root.join(".dockerenv").exists() {
        Some("docker".to_owned())
    } else {
        var(getenv, "container").filter(|name| {
            name.len() <= 32
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
    };
    // Where a runtime or CI says which image the job runs in: GitLab's job image,
    // Buildkite's docker plugin, podman's .containerenv. Docker itself tells a container
    // nothing of its image, so there `MREG_CONTAINER_IMAGE` is the way.
    let image = var(getenv, "MREG_CONTAINER_IMAGE")
        .or_else(|| var(getenv, "CI_JOB_IMAGE"))
        .or_else(|| var(getenv, "BUILDKITE_PLUGIN_DOCKER_IMAGE"))
        .or_else(|| containerenv.as_deref().and_then(|t| assignment(t, "image")));
    if runtime.is_none() && image.is_none() {
        return None;
    }
    Some(Container {
        runtime: runtime.unwrap_or_else(|| "unknown".to_owned()),
        image,
    })
}

/// Returns the OS name in os-release text: `PRETTY_NAME`, else `NAME VERSION_ID`.
fn os_pretty_name(text: &str) -> Option<String> {
    assignment(text, "PRETTY_NAME").or_else(|| {
        let name = assignment(text, "NAME")?;
        Some(match assignment(text, "VERSION_ID") {
            Some(version) => format!("{name} {version}"),
            None => name,
        })
    })
}

/// Returns the value of `key=value` in shell-style text (os-release, `.containerenv`).
///
/// Values may be bare, single-quoted, or double-quoted with backslash escapes.
/// An empty value counts as absent.
fn assignment(text: &str, key: &str) -> Option<String> {
    let raw = text.lines().find_map(|line| {
        let (k, v) = line.trim().split_once('=')?;
        (k.trim() == key).then_some(v.trim())
    })?;
    let value = if let Some(inner) = raw.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => out.extend(chars.next()),
                _ => out.push(c),
            }
        }
        out
    } else if let Some(inner) = raw.strip_prefix('\'') {
        inner.split('\'').next().unwrap_or_default().to_owned()
    } else {
        raw.to_owned()
    };
    Some(value).filter(|v| !v.is_empty())
}

/// Returns the first `model name` in cpuinfo text, reading no further than needed.
fn cpu_model_from(reader: impl BufRead) -> Option<String> {
    reader.lines().map_while(Result::ok).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let value = value.trim();
        (key.trim() == "model name" && !value.is_empty()).then(|| value.to_owned())
    })
}

/// Returns `MemTotal` in bytes from meminfo text (which counts in KiB).
fn mem_total_from(reader: impl BufRead) -> Option<u64> {
    reader.lines().map_while(Result::ok).find_map(|line| {
        let rest = line.strip_prefix("MemTotal:")?;
        let mut words = rest.split_whitespace();
        let number: u64 = words.next()?.parse().ok()?;
        match words.next() {
            Some("kB") | None => number.checked_mul(1024),
            Some(_) => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{Container, assignment, container, cpu_model_from, mem_total_from, os_pretty_name};

    const DEBIAN: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
HOME_URL="https://www.debian.org/"
"#;

    #[test]
    fn os_release() {
        assert_eq!(
            os_pretty_name(DEBIAN).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(
            os_pretty_name("NAME='Alpine Linux'\nVERSION_ID=3.20.1\n").as_deref(),
            Some("Alpine Linux 3.20.1")
        );
        assert_eq!(os_pretty_name("NAME=Foo\n").as_deref(), Some("Foo"));
        assert_eq!(
            os_pretty_name("# comment\nPRETTY_NAME=\"Say \\\"hi\\\" \\\\o/\"\n").as_deref(),
            Some("Say \"hi\" \\o/")
        );
        assert_eq!(os_pretty_name("PRETTY_NAME=\"\"\nID=x\n"), None);
        assert_eq!(os_pretty_name(""), None);
    }

    #[test]
    fn cpuinfo() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n\
                    model\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz\n\
                    stepping\t: 7\n\nprocessor\t: 1\nmodel name\t: Other\n";
        assert_eq!(
            cpu_model_from(text.as_bytes()).as_deref(),
            Some("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz")
        );
        // aarch64 kernels print no model name.
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU part\t: 0xd0c\n";
        assert_eq!(cpu_model_from(arm.as_bytes()), None);
    }

    #[test]
    fn meminfo() {
        let text = "MemTotal:       16318412 kB\nMemFree:         1234 kB\n";
        assert_eq!(mem_total_from(text.as_bytes()), Some(16_318_412 * 1024));
        assert_eq!(mem_total_from("MemFree: 1 kB\n".as_bytes()), None);
        assert_eq!(mem_total_from("MemTotal: lots kB\n".as_bytes()), None);
        assert_eq!(mem_total_from("MemTotal: 1 MB\n".as_bytes()), None);
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn containers() {
        let root = tempfile::tempdir().expect("temp dir");
        assert_eq!(container(root.path(), &env(&[])), None);
        assert_eq!(
            container(root.path(), &env(&[("MREG_CONTAINER_IMAGE", "ml:1")])),
            Some(Container {
                runtime: "unknown".into(),
                image: Some("ml:1".into())
            })
        );
        assert_eq!(
            container(root.path(), &env(&[("container", "lxc")])),
            Some(Container {
                runtime: "lxc".into(),
                image: None
            })
        );
        assert_eq!(
            container(root.path(), &env(&[("container", "$(rm -rf /)")])),
            None
        );

        assert_eq!(
            container(
                root.path(),
                &env(&[("BUILDKITE_PLUGIN_DOCKER_IMAGE", "ghcr.io/acme/train:7")])
            ),
            Some(Container {
                runtime: "unknown".into(),
                image: Some("ghcr.io/acme/train:7".into())
            })
        );
        std::fs::write(root.path().join(".dockerenv"), "").expect("write");
        assert_eq!(
            container(root.path(), &env(&[("CI_JOB_IMAGE", "python:3.12")])),
            Some(Container {
                runtime: "docker".into(),
                image: Some("python:3.12".into())
            })
        );

        std::fs::create_dir(root.path().join("run")).expect("mkdir");
        std::fs::write(
            root.path().join("run/.containerenv"),
            "engine=\"podman-4.9.3\"\nname=\"train\"\nimage=\"quay.io/acme/ml:2\"\nrootless=1\n",
        )
        .expect("write");
        assert_eq!(
            container(root.path(), &env(&[])),
            Some(Container {
                runtime: "podman".into(),
                image: Some("quay.io/acme/ml:2".into())
            })
        );
        assert_eq!(
            container(
                root.path(),
                &env(&[
                    ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
                    ("MREG_CONTAINER_IMAGE", "a:b")
                ])
            ),
            Some(Container {
                runtime: "kubernetes".into(),
                image: Some("a:b".into())
            })
        );
    }

    #[test]
    fn assignments() {
        assert_eq!(assignment("a=1\nb = 2\n", "b").as_deref(), Some("2"));
        assert_eq!(assignment("ab=1\n", "a"), None);
        assert_eq!(assignment("a='x y'\n", "a").as_deref(), Some("x y"));
    }
}
