//! The test environment: a hermetic temp dir and the real `mreg` binary.

#![allow(dead_code)]

pub mod churn;
pub mod hf;
pub mod mlflow;
pub mod oci;
pub mod oms;
pub mod s3;
pub mod support;

use std::cell::{Cell, RefCell};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The time of the first command; each command steps it by a minute.
const EPOCH: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// A fresh temp dir with `work/` as the current folder and `home/` as `HOME`.
pub struct TestEnv {
    dir: tempfile::TempDir,
    clock: Cell<u64>,
    vars: RefCell<Vec<(String, String)>>,
}

impl TestEnv {
    /// Returns an empty environment, without a registry.
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("mreg-test-")
            .tempdir()
            .unwrap();
        fs::create_dir(dir.path().join("work")).unwrap();
        fs::create_dir(dir.path().join("home")).unwrap();
        TestEnv {
            dir,
            clock: Cell::new(EPOCH),
            vars: RefCell::new(Vec::new()),
        }
    }

    /// Returns an environment with a registry in `work/`.
    pub fn with_registry() -> TestEnv {
        let env = TestEnv::new();
        env.ok(&["init"]);
        env
    }

    /// Returns an environment pointed at the test S3 server (started on first use):
    /// a machine of its own, with its own cache of bucket mirrors.
    pub fn on_s3() -> TestEnv {
        let env = TestEnv::new();
        env.use_s3(s3::server().port);
        env
    }

    /// Returns the temp dir's root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Returns a path under `work/`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join("work").join(rel)
    }

    /// Returns the `.mreg` folder of the registry in `work/`.
    pub fn registry(&self) -> PathBuf {
        self.path(".mreg")
    }

    /// Returns a command running mreg in `work/` with a clean, fixed environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let now = self.clock.get();
        self.clock.set(now + 60);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mreg"));
        cmd.args(args)
            .current_dir(self.path(""))
            .env_clear()
            .env("PATH", test_path())
            .env("HOME", self.dir.path().join("home"))
            .env("TMPDIR", self.dir.path())
            .env("MREG_NOW", now.to_string())
            .env("MREG_ACTOR", "tester@ci")
            // The machine's Python would make what a run records depend on the machine.
            .env("MREG_PYTHON", "none")
            .env("NO_COLOR", "1");
        for (k, v) in self.vars.borrow().iter() {
            cmd.env(k, v);
        }
        cmd
    }

    /// Sets an environment variable for every later command.
    pub fn set_var(&self, key: &str, value: &str) {
        let mut vars = self.vars.borrow_mut();
        vars.retain(|(k, _)| k != key);
        vars.push((key.to_owned(), value.to_owned()));
    }

    /// Points every later command at the test S3 server (or its proxy that ignores
    /// conditional writes), with the mirror cache inside this environment.
    pub fn use_s3(&self, port: u16) {
        self.set_var("AWS_ACCESS_KEY_ID", "test");
        self.set_var("AWS_SECRET_ACCESS_KEY", "test");
        self.set_var("AWS_REGION", "us-east-1");
        self.set_var("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{port}"));
        let cache = self.dir.path().join("cache");
        self.set_var("MREG_CACHE_DIR", &cache.display().to_string());
    }

    /// Runs mreg with extra environment variables and returns its output.
    pub fn run_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let mut cmd = self.cmd(args);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// Runs mreg with `input` on its stdin and returns its output.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        // Written on a thread: a child that stops reading must not block the test.
        let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
        let out = child.wait_with_output().unwrap();
        let _ = writer.join();
        out
    }

    /// Runs mreg and returns its output, failing the test when it runs longer than
    /// `seconds` (it is then killed): for inputs that once made mreg hang.
    pub fn run_within(&self, args: &[&str], seconds: u64) -> Output {
        let mut child = self
            .cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        // Drain the pipes on threads so a chatty child cannot block on a full pipe.
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut stdout, &mut buf).unwrap();
            buf
        });
        let err = std::thread::spawn(move || {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut stderr, &mut buf).unwrap();
            buf
        });
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("mreg {args:?} ran longer than {seconds} s");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        Output {
            status,
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        }
    }

    /// Runs each command (within `seconds`, as [`TestEnv::run_within`]) and checks that
    /// it exits 1 with `said` in its stderr: how every command refuses one bad input.
    pub fn each_refuses(&self, commands: &[&[&str]], seconds: u64, said: &str) {
        for args in commands {
            let out = self.run_within(args, seconds);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(stderr.contains(said), "{args:?}: {stderr}");
        }
    }

    /// Runs mreg and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs mreg with at most `files` open files (`ulimit -n`) and returns its output.
    pub fn run_with_open_files(&self, args: &[&str], files: u32) -> Output {
        let cmd = self.cmd(args);
        let mut limited = Command::new("sh");
        limited
            .args(["-c", &format!("ulimit -n {files} && exec \"$0\" \"$@\"")])
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .env_clear()
            .current_dir(cmd.get_current_dir().unwrap());
        for (key, value) in cmd.get_envs() {
            if let Some(value) = value {
                limited.env(key, value);
            }
        }
        limited.output().unwrap()
    }

    /// Runs mreg, asserts it succeeded, and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        String::from_utf8(self.succeeded(args).stdout).unwrap()
    }

    /// Runs mreg and returns its output, failing the test unless it succeeds.
    fn succeeded(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "mreg {args:?} failed:\n{}",
            render(&out, self.root())
        );
        out
    }

    /// Runs mreg, fails the test unless it succeeds, and returns its stderr.
    pub fn ok_err(&self, args: &[&str]) -> String {
        String::from_utf8(self.succeeded(args).stderr).unwrap()
    }

    /// Runs mreg and returns exit code, stdout and stderr as one string, with the
    /// temp dir written `[TMP]`: what a snapshot holds.
    pub fn snap(&self, args: &[&str]) -> String {
        render(&self.run(args), self.root())
    }

    /// Writes a file under `work/`, creating folders.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        path
    }

    /// Copies a fixture model into `work/NAME` and returns the copy's path.
    pub fn fixture(&self, model: &str, name: &str) -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/models")
            .join(model);
        let dst = self.path(name);
        copy_tree(&src, &dst);
        dst
    }

    /// Returns the version records in the registry, as relative paths, sorted.
    pub fn version_files(&self) -> Vec<String> {
        let models = self.registry().join("models");
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(&models).sort_by_file_name() {
            let entry = entry.unwrap();
            if entry.file_type().is_file() {
                out.push(
                    entry
                        .path()
                        .strip_prefix(&models)
                        .unwrap()
                        .display()
                        .to_string(),
                );
            }
        }
        out
    }
}

/// Returns `PATH` with the folder of the `mreg` under test first, so that commands
/// started by `mreg run` call the same binary.
pub fn test_path() -> std::ffi::OsString {
    let bin = Path::new(env!("CARGO_BIN_EXE_mreg"))
        .parent()
        .unwrap()
        .to_path_buf();
    let mut dirs = vec![bin];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

/// Returns a rendered command with the `[environment…]` tables of a run record taken
/// out: they describe the machine the tests run on.
pub fn strip_environment(text: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with("[environment") || line.starts_with("[[environment") {
            skipping = true;
        } else if line.starts_with("--- ") || (line.starts_with('[') && skipping) {
            skipping = false;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Returns every file under a folder with its bytes, for "nothing changed" checks.
pub fn snapshot_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let rel = entry
                .path()
                .strip_prefix(dir)
                .unwrap()
                .display()
                .to_string();
            if rel.starts_with("cache/") {
                continue;
            }
            out.push((rel, fs::read(entry.path()).unwrap()));
        }
    }
    out
}

/// Returns exit code, stdout and stderr as one string, temp paths redacted.
pub fn render(out: &Output, root: &Path) -> String {
    let code = out
        .status
        .code()
        .map_or("signal".to_owned(), |c| c.to_string());
    let text = format!(
        "exit: {code}\n--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let root = root.display().to_string();
    let real = fs::canonicalize(&root)
        .map(|p| p.display().to_string())
        .unwrap_or(root.clone());
    text.replace(&real, "[TMP]").replace(&root, "[TMP]")
}

/// Copies a folder, keeping symlinks as symlinks and file modes.
pub fn copy_tree(src: &Path, dst: &Path) {
    for entry in walkdir::WalkDir::new(src).sort_by_file_name() {
        let entry = entry.unwrap();
        let target = dst.join(entry.path().strip_prefix(src).unwrap());
        let ft = entry.file_type();
        if ft.is_dir() {
            fs::create_dir_all(&target).unwrap();
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else {
            fs::copy(entry.path(), &target).unwrap();
            let mode = entry.metadata().unwrap().permissions().mode();
            fs::set_permissions(&target, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// Returns a listing of a folder: path, kind, mode bits, and content or link target.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(dir)
            .unwrap()
            .display()
            .to_string();
        let ft = entry.file_type();
        if ft.is_dir() {
            out.push(format!("dir  {rel}"));
        } else if ft.is_symlink() {
            out.push(format!(
                "link {rel} -> {}",
                fs::read_link(entry.path()).unwrap().display()
            ));
        } else {
            let exec = entry.metadata().unwrap().permissions().mode() & 0o111 != 0;
            let hash = blake3::hash(&fs::read(entry.path()).unwrap()).to_hex();
            out.push(format!(
                "{} {rel} {}",
                if exec { "exec" } else { "file" },
                &hash[..16]
            ));
        }
    }
    out
}

/// Returns `n` deterministic bytes that zstd cannot shrink.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// How `env` runs mreg, on the real clock, to run it from other threads.
pub struct Template {
    program: std::ffi::OsString,
    dir: PathBuf,
    vars: Vec<(std::ffi::OsString, std::ffi::OsString)>,
}

impl Template {
    /// Returns how `env` runs mreg, without its fixed clock.
    pub fn of(env: &TestEnv) -> Template {
        let cmd = env.cmd(&[]);
        Template {
            program: cmd.get_program().to_owned(),
            dir: cmd
                .get_current_dir()
                .expect("tests run in work/")
                .to_owned(),
            vars: cmd
                .get_envs()
                .filter(|(k, _)| *k != "MREG_NOW")
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
                .collect(),
        }
    }

    /// Returns a command running mreg with `args`, as `env` would on the real clock.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(args)
            .env_clear()
            .envs(self.vars.iter().cloned())
            .current_dir(&self.dir);
        cmd
    }
}

/// Runs `cmd`, fails the test unless it succeeds, and returns its stdout.
pub fn succeeds(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Waits until process `pid` is stopped (`SIGSTOP`, as `MREG_PAUSE_AT` stops it),
/// failing after a minute.
pub fn wait_until_stopped(pid: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next());
        if state == Some("T") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{pid} never stopped: {stat}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Resumes a stopped process (`SIGCONT`).
pub fn resume(pid: u32) {
    let resumed = Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(resumed.success());
}

/// Makes a folder remote `share` beside `a`'s work folder, syncs `a` to it, and clones
/// it into a new environment; returns the share's path, the clone's environment and
/// its registry folder.
pub fn shared_with_a_clone(a: &TestEnv) -> (String, TestEnv, String) {
    let share = a.root().join("share").display().to_string();
    a.ok(&["init", &share]);
    a.ok(&["remote", "add", "share", &share]);
    a.ok(&["sync"]);
    let b = TestEnv::new();
    b.ok(&["clone", &share, "b"]);
    let b_reg = b.path("b/.mreg").display().to_string();
    (share, b, b_reg)
}
