//! `mreg run`: a command recorded as a run, its exit code passed on, and each way a
//! command can end (exit, signal, Ctrl-C, SIGTERM, not found).

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{TestEnv, strip_environment};
use insta::assert_snapshot;
use serde_json::Value;

/// Returns the runs as `mreg runs --json` lists them, newest first.
pub fn runs_json(env: &TestEnv) -> Vec<Value> {
    serde_json::from_str(&env.ok(&["runs", "--json"])).unwrap()
}

/// Runs a snapshot with durations written `[TIME]`.
macro_rules! timed_snapshot {
    ($value:expr, @$snap:literal) => {
        insta::with_settings!({filters => vec![
            (r"\b\d+\.\d+s\b", "[TIME]"),
            (r"duration_s = [0-9.e-]+", "duration_s = [TIME]"),
            (r"(?m)^time = (.*)\.\d{3}Z", "time = $1.[MS]Z"),
            (r"(?m)^pid = \d+$", "pid = [PID]"),
            (r#"(?m)^host = ".*"$"#, "host = \"[HOST]\""),
        ]}, {
            assert_snapshot!($value, @$snap);
        })
    };
}
pub(crate) use timed_snapshot;

#[test]
fn a_run_records_its_command_and_exits_with_its_code() {
    let env = TestEnv::with_registry();
    timed_snapshot!(env.snap(&[
        "run", "--experiment", "churn", "--name", "baseline", "--param", "lr=0.01",
        "--param", "epochs=3", "--tag", "team=growth", "--", "sh", "-c", "exit 3"
    ]), @"
    exit: 3
    --- stdout
    --- stderr
    Started run 402e7351b4356396 (experiment churn): sh -c 'exit 3'
    warning: Run 402e7351b4356396 failed after [TIME] (exit code 3).
    ");
    let runs = runs_json(&env);
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 3);
    assert_eq!(run["experiment"], "churn");
    assert_eq!(run["name"], "baseline");
    assert_eq!(run["params"]["lr"], 0.01);
    assert_eq!(run["params"]["epochs"], 3);
    assert_eq!(run["tags"]["team"], "growth");
}

#[test]
fn the_command_logs_and_pushes_into_its_run() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    let script = "mreg log --metric loss=0.5 --step 1 -q && \
                  mreg log --metric loss=0.25 --step 2 --metric acc=0.9 -q && \
                  mreg push out --model churn -q";
    let out = env.run(&["run", "--experiment", "churn", "--", "sh", "-c", script]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = runs_json(&env)[0]["id"].as_str().unwrap().to_owned();
    timed_snapshot!(strip_environment(&env.snap(&["show", &id[..8]])), @r#"
    exit: 0
    --- stdout
    format = 2
    id = "eb16012c5aff4a1a"
    experiment = "churn"
    status = "finished"
    start = "2026-01-01T00:01:00.000Z"
    actor = "tester@ci"

    [end]
    status = "finished"
    time = "2026-01-01T00:01:00.[MS]Z"
    duration_s = [TIME]
    exit_code = 0

    [command]
    argv = ["sh", "-c", "mreg log --metric loss=0.5 --step 1 -q && mreg log --metric loss=0.25 --step 2 --metric acc=0.9 -q && mreg push out --model churn -q"]
    cwd = "[TMP]/work"
    host = "[HOST]"
    pid = [PID]

    [metrics]
    acc = 0.9
    loss = 0.25

    [series.acc]
    count = 1
    last_step = 2
    last = 0.9
    min = 0.9
    min_step = 2
    max = 0.9
    max_step = 2

    [series.loss]
    count = 2
    last_step = 2
    last = 0.25
    min = 0.25
    min_step = 2
    max = 0.5
    max_step = 1

    [[outputs]]
    model = "churn"
    version = 1
    tree = "6b24fac002fe5a7cf20cc868a55191fa6ded1a9689eea94e8971041facd121e8"

    --- stderr
    "#);
    let version: Value = serde_json::from_str(&env.ok(&["show", "churn@1", "--json"])).unwrap();
    assert_eq!(version["run"], id.as_str());
    assert_eq!(version["metrics"]["loss"], 0.25);
    assert_eq!(version["metrics"]["acc"], 0.9);
}

#[test]
fn a_command_that_cannot_start_is_recorded_as_failed() {
    let env = TestEnv::with_registry();
    let out = env.run(&["run", "--", "no-such-command-here"]);
    assert_eq!(out.status.code(), Some(127));
    let run = &runs_json(&env)[0];
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 127);
    let shown: Value =
        serde_json::from_str(&env.ok(&["show", run["id"].as_str().unwrap(), "--json"])).unwrap();
    assert!(
        shown["end"]["error"]
            .as_str()
            .unwrap()
            .contains("no-such-command-here")
    );
}

#[test]
fn a_command_killed_by_a_signal_is_recorded_as_killed() {
    let env = TestEnv::with_registry();
    let out = env.run(&["run", "--", "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.status.code(), Some(137));
    let id = runs_json(&env)[0]["id"].as_str().unwrap().to_owned();
    let shown: Value = serde_json::from_str(&env.ok(&["show", &id, "--json"])).unwrap();
    assert_eq!(shown["status"], "killed");
    assert_eq!(shown["end"]["signal"], "SIGKILL");
}

/// Starts `mreg run -- sleep 30` in its own process group and waits for its run to exist.
#[allow(clippy::zombie_processes)] // The caller waits for it.
fn start_sleeping_run(env: &TestEnv) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let child = env
        .cmd(&["run", "--", "sleep", "30"])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The run exists once its log folder does; give the child a moment to start too.
    loop {
        let started =
            std::fs::read_dir(env.registry().join("runs")).is_ok_and(|mut d| d.next().is_some());
        if started {
            std::thread::sleep(Duration::from_millis(300));
            return child;
        }
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_to_mreg_reaches_the_command_and_is_recorded() {
    let env = TestEnv::with_registry();
    let mut child = start_sleeping_run(&env);
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    let id = runs_json(&env)[0]["id"].as_str().unwrap().to_owned();
    let shown: Value = serde_json::from_str(&env.ok(&["show", &id, "--json"])).unwrap();
    assert_eq!(shown["status"], "interrupted");
    assert_eq!(shown["end"]["signal"], "SIGTERM");
    assert_eq!(shown["end"]["received"], "SIGTERM");
}

#[test]
fn ctrl_c_is_recorded_as_interrupted() {
    let env = TestEnv::with_registry();
    let mut child = start_sleeping_run(&env);
    // A terminal's Ctrl-C goes to the whole foreground process group.
    let group = format!("-{}", child.id());
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", "--", &group])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let run = &runs_json(&env)[0];
    assert_eq!(run["status"], "interrupted");
}

#[test]
fn with_json_the_command_output_goes_to_stderr() {
    let env = TestEnv::with_registry();
    let out = env.run(&["run", "--json", "--", "sh", "-c", "echo from-the-command"]);
    assert!(out.status.success());
    let json: Value = serde_json::from_slice(&out.stdout).expect("stdout is only JSON");
    assert_eq!(json["status"], "finished");
    assert_eq!(json["exit_code"], 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("from-the-command"));
}

#[test]
fn run_needs_a_command_and_refuses_unknown_flags_before_it() {
    let env = TestEnv::with_registry();
    let out = env.run(&["run", "--experiment", "x"]);
    assert_eq!(out.status.code(), Some(2));
    // A mistyped flag is a usage error, never the command to run.
    for args in [
        &["run", "--experment", "x", "--", "true"][..],
        &["run", "--metric", "acc=1", "--", "true"],
        &["run", "-x", "--", "true"],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    assert!(runs_json(&env).is_empty());
    // After the command's first word, flags are the command's.
    let out = env.run(&["run", "-q", "sh", "-c", "test \"$1\" = --lr", "sh", "--lr"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn runs_started_within_one_second_list_in_the_order_they_started() {
    let env = TestEnv::with_registry();
    for i in 0..6 {
        let out = env
            .cmd(&["run", "-q", "--param", &format!("i={i}"), "--", "true"])
            .env_remove("MREG_NOW")
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let order: Vec<i64> = runs_json(&env)
        .iter()
        .map(|r| r["params"]["i"].as_i64().unwrap())
        .collect();
    assert_eq!(order, [5, 4, 3, 2, 1, 0]);
}

#[test]
fn run_records_are_readable_by_the_team() {
    let env = TestEnv::with_registry();
    let out = std::process::Command::new("sh")
        .args(["-c", "umask 022 && exec mreg run -q -- true"])
        .current_dir(env.path(""))
        .env("PATH", crate::common::test_path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let id = runs_json(&env)[0]["id"].as_str().unwrap().to_owned();
    let run_dir = env.registry().join("runs").join(&id);
    let mode = std::fs::metadata(run_dir.join("run.toml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    for event in std::fs::read_dir(run_dir.join("log")).unwrap() {
        let mode = event.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}
