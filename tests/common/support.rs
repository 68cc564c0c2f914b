//! What the test setup shares to run the tools on the other side: a support script
//! from tests/support that prints `ready PORT…` once it listens, and a Python virtual
//! environment under the target folder with pinned packages.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

/// Starts `python3 tests/support/SCRIPT ARGS…` (run by `python`, else `python3`) and
/// waits for its `ready PORT…` line; returns it, its stdin (it stops when that closes)
/// and the ports. Panics, naming the script, when it does not start.
pub fn start_ready(
    script: &str,
    args: &[&str],
    python: Option<&Path>,
) -> (Child, ChildStdin, Vec<u16>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script);
    let mut child = Command::new(python.unwrap_or(Path::new("python3")))
        .arg(path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {script}: {e}"));
    let stdin = child.stdin.take().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ports = line
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("{script} did not start: {line:?}"))
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    (child, stdin, ports)
}

/// Returns the Python of the virtual environment `name` under the target folder,
/// making it and installing `packages` with pip on first use, unless `works` (run
/// with that Python) succeeds already. `what` names the tests, for the panic.
pub fn venv(name: &str, packages: &[&str], works: &[&str], what: &str) -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = venv.join("bin/python");
    let ok = || {
        Command::new(&python)
            .args(works)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ok() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        let installed = made
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(packages)
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            installed && ok(),
            "{what} need: python3 -m venv and pip install {}",
            packages.join(" ")
        );
    }
    python
}
