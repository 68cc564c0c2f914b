//! GPU facts from `nvidia-smi`, run only when it is on `PATH` and killed if it hangs.
//!
//! A broken driver can make `nvidia-smi` hang, so both invocations (the CSV query for
//! the GPUs and the plain report for the CUDA version) run side by side under one
//! five-second deadline, after which they are killed and their facts recorded as absent.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::manifest::lineage::Gpu;

/// How long `nvidia-smi` may take before it is killed.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The most output read from one `nvidia-smi` invocation.
const MAX_OUTPUT: u64 = 1 << 20;

/// Returns the GPUs and the CUDA version, both empty when `nvidia-smi` is not on `path`.
///
/// `path` is the value of `PATH`; the first `nvidia-smi` file found in it is run.
pub(crate) fn detect(path: Option<&str>) -> (Vec<Gpu>, Option<String>) {
    let Some(smi) = path.and_then(|p| find_on_path(p, "nvidia-smi")) else {
        return (Vec::new(), None);
    };
    let deadline = Instant::now() + TIMEOUT;
    let query = Spawned::start(Command::new(&smi).args([
        "--query-gpu=name,driver_version,memory.total",
        "--format=csv,noheader,nounits",
    ]));
    let plain = Spawned::start(&mut Command::new(&smi));
    let gpus = query
        .and_then(|q| q.finish(deadline))
        .map(|text| parse_query(&text))
        .unwrap_or_default();
    let cuda = plain
        .and_then(|p| p.finish(deadline))
        .and_then(|text| parse_cuda_version(&text));
    (gpus, cuda)
}

/// Returns the first file named `name` in the folders of a `PATH` value.
///
/// Empty entries (the current folder) are skipped.
fn find_on_path(path: &str, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| Path::is_file(candidate))
}

/// A running child whose stdout a thread collects, so a full pipe never blocks it.
struct Spawned {
    child: Child,
    reader: JoinHandle<std::io::Result<Vec<u8>>>,
}

impl Spawned {
    /// Starts `command` with stdin null, stdout collected, stderr discarded.
    fn start(command: &mut Command) -> Option<Spawned> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let Some(stdout) = child.stdout.take() else {
            kill(&mut child);
            return None;
        };
        let reader = thread::spawn(move || {
            let mut out = Vec::new();
            stdout.take(MAX_OUTPUT).read_to_end(&mut out)?;
            Ok(out)
        });
        Some(Spawned { child, reader })
    }

    /// Returns the output of a successful exit before `deadline`; kills the child after it.
    fn finish(mut self, deadline: Instant) -> Option<String> {
        let mut pause = Duration::from_millis(1);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {
                    let now = Instant::now();
                    if now >= deadline {
                        kill(&mut self.child);
                        // The reader ends by itself once the pipe closes; never wait on it.
                        return None;
                    }
                    thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(Duration::from_millis(25));
                }
                Err(_) => {
                    kill(&mut self.child);
                    return None;
                }
            }
        };
        let out = self.reader.join().ok()?.ok()?;
        status
            .success()
            .then(|| String::from_utf8_lossy(&out).into_owned())
    }
}

/// Kills and reaps `child`, ignoring errors: it may have exited already.
fn kill(child: &mut Child) {
    child.kill().ok();
    child.wait().ok();
}

/// Returns the GPUs in `--query-gpu=name,driver_version,memory.total` CSV output.
///
/// Memory is in MiB (`nounits`); `[N/A]`-style values are recorded as absent. The name
/// is everything before the last two commas, so a comma in it does no harm.
fn parse_query(text: &str) -> Vec<Gpu> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.rsplitn(3, ',').map(str::trim);
            let memory = known(fields.next()?);
            let driver = known(fields.next()?);
            let name = known(fields.next()?)?;
            Some(Gpu {
                name: name.to_owned(),
                memory_bytes: memory
                    .and_then(|m| m.parse::<u64>().ok())
                    .and_then(|mib| mib.checked_mul(1 << 20)),
                driver: driver.map(str::to_owned),
            })
        })
        .collect()
}

/// Returns `value` unless it is empty or an `nvidia-smi` placeholder like `[N/A]`.
fn known(value: &str) -> Option<&str> {
    (!value.is_empty() && !value.starts_with('[') && value != "N/A").then_some(value)
}

/// Returns the version after `CUDA Version:` in plain `nvidia-smi` output.
fn parse_cuda_version(text: &str) -> Option<String> {
    let (_, rest) = text.split_once("CUDA Version:")?;
    let version: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!version.is_empty()).then_some(version)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Gpu, Spawned, detect, parse_cuda_version, parse_query};

    const PLAIN: &str = "\
Tue Mar  5 10:00:00 2024
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |
|-----------------------------------------+------------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |
|   0  NVIDIA A100-SXM4-80GB          On  |   00000000:07:00.0 Off |                    0 |
+-----------------------------------------+------------------------+----------------------+
";

    #[test]
    fn query_output() {
        let text = "NVIDIA A100-SXM4-80GB, 550.54.15, 81920\n\
                    Tesla T4, 535.104.05, [N/A]\n\
                    Odd, Name, 1.0, 16\n\
                    \n\
                    garbage\n";
        assert_eq!(
            parse_query(text),
            vec![
                Gpu {
                    name: "NVIDIA A100-SXM4-80GB".into(),
                    memory_bytes: Some(81920 * 1024 * 1024),
                    driver: Some("550.54.15".into()),
                },
                Gpu {
                    name: "Tesla T4".into(),
                    memory_bytes: None,
                    driver: Some("535.104.05".into()),
                },
                Gpu {
                    name: "Odd, Name".into(),
                    memory_bytes: Some(16 << 20),
                    driver: Some("1.0".into()),
                },
            ]
        );
        assert_eq!(parse_query(""), vec![]);
    }

    #[test]
    fn cuda_version() {
        assert_eq!(parse_cuda_version(PLAIN).as_deref(), Some("12.4"));
        assert_eq!(parse_cuda_version("CUDA Version: N/A |"), None);
        assert_eq!(
            parse_cuda_version("NVIDIA-SMI has failed because it couldn't communicate"),
            None
        );
    }

    #[test]
    fn absent_without_nvidia_smi() {
        let empty = tempfile::tempdir().expect("temp dir");
        let path = empty.path().to_str().expect("utf-8 temp path");
        assert_eq!(detect(Some(path)), (vec![], None));
        assert_eq!(detect(None), (vec![], None));
    }

    #[test]
    fn runs_nvidia_smi_from_path() {
        let bin = tempfile::tempdir().expect("temp dir");
        // Written by a shell, so no descriptor of ours can make the exec fail with ETXTBSY.
        let script = "#!/bin/sh\n\
                      if [ \"$1\" ]; then echo 'NVIDIA L4, 550.54.15, 23034'; \
                      else echo '| NVIDIA-SMI 550.54.15   CUDA Version: 12.4   |'; fi\n";
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg("printf '%s' \"$1\" > \"$2/nvidia-smi\" && chmod 755 \"$2/nvidia-smi\"")
            .args(["sh", script])
            .arg(bin.path())
            .status()
            .expect("sh runs");
        assert!(status.success());
        let path = format!("/nonexistent::{}", bin.path().display());
        assert_eq!(
            detect(Some(&path)),
            (
                vec![Gpu {
                    name: "NVIDIA L4".into(),
                    memory_bytes: Some(23034 << 20),
                    driver: Some("550.54.15".into()),
                }],
                Some("12.4".into())
            )
        );
    }

    #[test]
    fn kills_a_hanging_child() {
        let started = Instant::now();
        let child = Spawned::start(std::process::Command::new("sleep").arg("30"));
        let out = child.and_then(|c| c.finish(Instant::now() + Duration::from_millis(200)));
        assert_eq!(out, None);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn collects_output() {
        let child = Spawned::start(std::process::Command::new("echo").arg("hi"));
        let out = child.and_then(|c| c.finish(Instant::now() + Duration::from_secs(5)));
        assert_eq!(out.as_deref(), Some("hi\n"));
    }
}
