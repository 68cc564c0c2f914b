//! Removals meeting promotions and pushes at the same moment, in one registry and
//! through sync: a stage never ends up holding a removed version, and no version from
//! a removed run is taken where the run is removed.

use std::process::Stdio;

use crate::common::{Template, TestEnv, resume, shared_with_a_clone, wait_until_stopped};

/// Returns a registry holding `churn@1` and `churn@2`.
fn two_versions() -> TestEnv {
    let env = TestEnv::with_registry();
    for i in 1..=2 {
        env.write("out/w.bin", format!("weights {i}\n"));
        env.ok(&["push", "out", "--model", "churn"]);
    }
    env
}

#[test]
fn a_removal_made_while_a_promotion_of_the_same_version_was_deciding_wins() {
    let env = two_versions();
    // The promotion decides churn@1 may take production, and is stopped there.
    let mut promote = Template::of(&env).command(&["promote", "churn@1", "production"]);
    promote
        .env("MREG_PAUSE_AT", "move-decided")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = promote.spawn().unwrap();
    wait_until_stopped(child.id());
    env.ok(&["rm", "churn@1"]);
    resume(child.id());
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("churn@1 was removed"), "{said}");
    env.ok(&["fsck"]);
}

#[test]
fn a_version_from_a_run_removed_on_the_other_side_is_a_conflict_not_taken() {
    let a = TestEnv::with_registry();
    a.ok(&["run", "--experiment", "e", "--", "true"]);
    let runs: serde_json::Value = serde_json::from_str(&a.ok(&["runs", "--json"])).unwrap();
    let run = runs[0]["id"].as_str().unwrap().to_owned();
    let (share, b, b_reg) = shared_with_a_clone(&a);
    a.ok(&["rm", &run]);
    a.ok(&["sync"]);
    b.write("out/w.bin", "weights\n");
    b.ok(&[
        "--registry",
        &b_reg,
        "push",
        "out",
        "--model",
        "churn",
        "--run",
        &run,
    ]);
    let out = b.run(&["--registry", &b_reg, "sync"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains(&format!(
            "churn@1 came from run {run}, which was removed on "
        )),
        "{said}"
    );
    let shared: serde_json::Value =
        serde_json::from_str(&a.ok(&["ls", "--registry", &share, "--json"])).unwrap();
    assert_eq!(
        shared,
        serde_json::json!([]),
        "the share took no version of the run"
    );
}
