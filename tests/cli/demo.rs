//! `mreg demo`: the README's first command runs the main job end to end.

use crate::common::TestEnv;

#[test]
fn the_demo_runs_every_step_and_verifies_the_pull() {
    // From an empty folder, with no fixtures on disk: the demo brings its own.
    let env = TestEnv::new();
    let out = env.run(&["demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report = std::fs::read_to_string(env.path("mreg-demo-report.html")).unwrap();
    assert!(report.contains("mreg report: 2 runs") && report.contains("<svg"));
    for step in [
        "$ mreg diff demo@1 demo@2",
        "tensors of model.safetensors: 1 modified",
        "~  head.weight  F32 [2, 3]  F32 [2, 3]",
        "~  optimizer.lr  0.001  0.0005",
        "$ mreg promote demo@1 production --gate 'acc>0.85'",
        "Promoted demo@2 to production (it held demo@1; demo@1 moved to archived)",
        "Rolled production back from demo@2 to demo@1",
        "2  2026-01-01T00:00:00Z  refused",
        "tree 6b24fac002fe5a7c = demo@1 = fixtures/models/tiny-v1",
        "$ mreg push fixtures/models/tiny-v2 --model demo",
        "error: archived holds demo@2, so nothing was removed",
        "Removed demo@2, emptying archived.",
        "removed-versions  ",
        "The runs' report is in ",
    ] {
        assert!(
            stdout.contains(step) || stderr.contains(step),
            "missing {step:?} in:\n{stdout}\n{stderr}"
        );
    }
}

#[test]
fn a_fixtures_folder_without_the_models_is_a_usage_error() {
    let env = TestEnv::new();
    let out = env.run(&["demo", "--fixtures", "nowhere"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--fixtures nowhere: no models/tiny-v1"),
        "{stderr}"
    );
}
