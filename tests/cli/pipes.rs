//! Exit 0 means done: a stdout closed by its reader (`mreg show … | head -c1`) ends a
//! command quietly with 0, without hiding an outcome that is not 0.

use std::fmt::Write as _;
use std::io::Read;
use std::process::{Output, Stdio};

use crate::cli::run::runs_json;
use crate::common::TestEnv;

/// Runs mreg with its stdout read for `keep` bytes and then closed, as `| head -c N`
/// does, and returns how it ended (stdout not kept).
fn run_with_stdout_closed(env: &TestEnv, args: &[&str], keep: usize) -> Output {
    let mut child = env
        .cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut head = vec![0; keep];
    stdout.read_exact(&mut head).unwrap();
    drop(stdout);
    child.wait_with_output().unwrap()
}

#[test]
fn output_cut_short_by_its_reader_exits_0_quietly() {
    let env = TestEnv::with_registry();
    // Far more than a pipe holds (64 KiB), so mreg is still writing when the reader
    // goes, whatever the timing.
    let mut params = String::new();
    for i in 0..4000 {
        writeln!(
            params,
            "param_{i:04} = \"a value long enough to fill the pipe\""
        )
        .unwrap();
    }
    env.write("params.toml", params);
    env.ok(&["run", "-q", "--params-file", "params.toml", "--", "true"]);
    let id = runs_json(&env)[0]["id"].as_str().unwrap().to_owned();
    for args in [
        vec!["show", id.as_str()],
        vec!["show", id.as_str(), "--json"],
        vec!["runs", "--json"],
    ] {
        let out = run_with_stdout_closed(&env, &args, 1);
        assert_eq!(out.status.code(), Some(0), "mreg {args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "mreg {args:?}");
    }
}

#[test]
fn a_closed_stdout_does_not_hide_a_refusal_or_a_command_exit_code() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.ok(&[
        "push", "-q", "v1", "--model", "churn", "--metric", "acc=0.8",
    ]);
    let out = run_with_stdout_closed(&env, &["gate", "churn@1", "acc>0.9"], 0);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("churn@1 fails 1 of 1 gate"));
    let out = run_with_stdout_closed(&env, &["run", "--json", "--", "sh", "-c", "exit 5"], 0);
    assert_eq!(out.status.code(), Some(5));
}

#[test]
fn the_demo_cut_short_by_its_reader_exits_0_without_a_panic() {
    let env = TestEnv::new();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
    let out = run_with_stdout_closed(&env, &["demo", "--fixtures", fixtures], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
