//! `mreg log`: metrics, series, params and tags added to a run; concurrent calls; bad
//! input refused with the registry unchanged.

use std::fmt::Write as _;

use crate::cli::run::{runs_json, timed_snapshot};
use crate::common::{TestEnv, snapshot_files, strip_environment};
use insta::assert_snapshot;
use serde_json::Value;

/// Returns a registry holding one finished run, and its id.
fn env_with_run() -> (TestEnv, String) {
    let env = TestEnv::with_registry();
    env.ok(&["run", "--experiment", "churn", "--", "true"]);
    let id = runs_json(&env)[0]["id"].as_str().unwrap().to_owned();
    (env, id)
}

fn show_json(env: &TestEnv, id: &str) -> Value {
    serde_json::from_str(&env.ok(&["show", id, "--json"])).unwrap()
}

#[test]
fn log_adds_metrics_series_params_and_tags() {
    let (env, id) = env_with_run();
    assert_snapshot!(env.snap(&["log", "--run", &id, "--metric", "loss=0.5", "--metric", "acc=0.8", "--step", "1"]), @"
    exit: 0
    --- stdout
    --- stderr
    Logged 2 series points to run eb16012c5aff4a1a
    ");
    env.ok(&["log", "--run", &id, "--metric", "loss=0.3", "--step", "2"]);
    assert_snapshot!(env.snap(&["log", "--run", &id[..6], "--param", "lr=0.001", "--param", "amp=false", "--tag", "team=growth", "--metric", "f1=0.7"]), @"
    exit: 0
    --- stdout
    --- stderr
    Logged 1 metric, 2 params, 1 tag to run eb16012c5aff4a1a
    ");
    let run = show_json(&env, &id);
    assert_eq!(run["metrics"]["loss"], 0.3);
    assert_eq!(run["metrics"]["acc"], 0.8);
    assert_eq!(run["metrics"]["f1"], 0.7);
    assert_eq!(run["series"]["loss"]["count"], 2);
    assert_eq!(run["series"]["loss"]["min"], 0.3);
    assert_eq!(run["series"]["loss"]["min_step"], 2);
    assert_eq!(run["params"]["lr"], 0.001);
    assert_eq!(run["params"]["amp"], false);
    assert_eq!(run["tags"]["team"], "growth");
}

#[test]
fn the_run_defaults_to_mreg_run_id() {
    let (env, id) = env_with_run();
    let out = env.run_with(&["log", "--metric", "acc=0.9"], &[("MREG_RUN_ID", &id)]);
    assert!(out.status.success());
    assert_eq!(show_json(&env, &id)["metrics"]["acc"], 0.9);
}

#[test]
fn nan_and_infinity_are_kept_and_shown_as_such() {
    let (env, id) = env_with_run();
    env.ok(&[
        "log",
        "--run",
        &id,
        "--metric",
        "loss=nan",
        "--metric",
        "ppl=inf",
        "--metric",
        "gain=-inf",
    ]);
    let text = strip_environment(&env.snap(&["show", &id]));
    assert!(text.contains("loss = nan"), "{text}");
    assert!(text.contains("ppl = inf"), "{text}");
    assert!(text.contains("gain = -inf"), "{text}");
    let run = show_json(&env, &id);
    assert_eq!(run["metrics"]["loss"], "NaN");
    assert_eq!(run["metrics"]["ppl"], "inf");
    let listed = &runs_json(&env)[0];
    assert_eq!(listed["metrics"]["loss"], "NaN");
    assert_eq!(listed["metrics"]["gain"], "-inf");
}

#[test]
fn metrics_files_give_series_and_final_values() {
    let (env, id) = env_with_run();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let jsonl = fixtures.join("metrics.jsonl");
    let eval = fixtures.join("eval.json");
    env.ok(&[
        "log",
        "--run",
        &id,
        "--metrics-file",
        jsonl.to_str().unwrap(),
    ]);
    env.ok(&[
        "log",
        "--run",
        &id,
        "--metrics-file",
        eval.to_str().unwrap(),
    ]);
    let run = show_json(&env, &id);
    assert_eq!(run["series"]["loss"]["count"], 4);
    assert_eq!(run["series"]["loss"]["last_step"], 4);
    assert_eq!(run["series"]["acc"]["max"], 0.86);
    // eval.json's final value, logged later, replaces the series' last one.
    assert_eq!(run["metrics"]["acc"], 0.871);
    assert_eq!(run["metrics"]["holdout.auc"], 0.912);
    assert_snapshot!(env.snap(&["show", &id, "--series", "loss"]).split("\n# series").nth(1).unwrap(), @"
     loss: 4 points
    STEP  VALUE  TIME
    1     0.693  2026-01-01T00:03:00.000Z
    2     0.541  2026-01-01T00:03:00.000Z
    3     0.412  2026-01-01T00:03:00.000Z
    4     0.388  2026-01-01T00:03:00.000Z
    --- stderr
    ");
}

#[test]
fn a_long_series_lives_in_an_object_and_the_manifest_stays_small() {
    let (env, id) = env_with_run();
    let mut lines = String::new();
    for step in 0..500 {
        let _ = writeln!(
            lines,
            "{{\"step\": {step}, \"loss\": {}}}",
            1.0 / f64::from(step + 1)
        );
    }
    env.write("train.jsonl", lines);
    env.ok(&["log", "--run", &id, "--metrics-file", "train.jsonl"]);
    let log = env.registry().join("runs").join(&id).join("log");
    for entry in std::fs::read_dir(&log).unwrap() {
        let len = entry.unwrap().metadata().unwrap().len();
        assert!(
            len < 2000,
            "an event of {len} bytes holds the series inline"
        );
    }
    let run = show_json(&env, &id);
    assert_eq!(run["series"]["loss"]["count"], 500);
    assert_eq!(run["metrics"]["loss"], 0.002);
    let all: Value =
        serde_json::from_str(&env.ok(&["show", &id, "--series", "loss", "--json"])).unwrap();
    let points = all["series"]["loss"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 500);
    assert_eq!(points[499]["step"], 499);
    env.ok(&["fsck"]);
}

#[test]
fn concurrent_log_calls_into_one_run_lose_nothing() {
    let (env, id) = env_with_run();
    let children: Vec<_> = (0..8)
        .map(|worker| {
            let script = format!(
                "for i in 0 1 2 3 4 5 6 7 8 9; do mreg log -q --run {id} --metric w{worker}=$i --step $i || exit 1; done"
            );
            let mut cmd = std::process::Command::new("sh");
            cmd.args(["-c", &script])
                .current_dir(env.path(""))
                .env("PATH", crate::common::test_path())
                .env("NO_COLOR", "1");
            cmd.spawn().unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let run = show_json(&env, &id);
    for worker in 0..8 {
        assert_eq!(
            run["series"][format!("w{worker}")]["count"],
            10,
            "worker {worker}"
        );
        assert_eq!(run["metrics"][format!("w{worker}")], 9.0);
    }
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let (env, id) = env_with_run();
    env.write("bad.yaml", "model:\n  lr: 0.1\n bad: [\n");
    env.write(
        "bad.jsonl",
        "{\"step\": 1, \"loss\": 0.5}\n{\"step\": 2, \"loss\": }\n",
    );
    let before = snapshot_files(&env.registry());
    assert_snapshot!(env.snap(&["log", "--metric", "acc=0.9"]), @"
    exit: 2
    --- stdout
    --- stderr
    error: no run to log into
    hint: pass --run ID, or call mreg log from a command started by `mreg run`, which sets MREG_RUN_ID
    ");
    assert_snapshot!(env.snap(&["log", "--run", &id, "--metric", "acc=high"]), @r#"
    exit: 2
    --- stdout
    --- stderr
    error: --metric acc=high: "high" is not a number
    hint: write --metric acc=0.91
    "#);
    assert_snapshot!(env.snap(&["log", "--run", &id, "--param", "lr0.1"]), @r#"
    exit: 2
    --- stdout
    --- stderr
    error: --param "lr0.1" is not KEY=VALUE
    hint: write --param lr=0.001
    "#);
    assert_snapshot!(env.snap(&["log", "--run", "ffffffff", "--metric", "acc=0.9"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: no run with id "ffffffff" in this registry
    hint: `mreg runs` lists the runs; ids are 16 hex digits, unique prefixes work
    "#);
    assert_snapshot!(env.snap(&["log", "--run", &id, "--params-file", "bad.yaml"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: bad.yaml line 3, column 5: while parsing a block mapping, did not find expected key
    ");
    assert_snapshot!(env.snap(&["log", "--run", &id, "--metrics-file", "bad.jsonl"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: bad.jsonl line 2, column 21: expected value
    ");
    assert_snapshot!(env.snap(&["log", "--run", &id]), @"
    exit: 2
    --- stdout
    --- stderr
    error: nothing to log
    hint: give --metric KEY=NUMBER, --metrics-file, --param, --params-file, --tag, --data or --parent
    ");
    assert_snapshot!(env.snap(&["log", "--run", &id, "--step", "3"]), @"
    exit: 2
    --- stdout
    --- stderr
    error: --step applies to --metric values, and none was given
    hint: write mreg log --metric loss=0.41 --step 3
    ");
    assert_eq!(
        snapshot_files(&env.registry()),
        before,
        "the registry changed"
    );
}

#[test]
fn show_of_a_run_says_what_it_could_not_find() {
    let (env, id) = env_with_run();
    timed_snapshot!(env.snap(&["show", &id, "--series", "loss"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: run eb16012c5aff4a1a has no series named "loss"
    hint: it has no series: log some with `mreg log --metric KEY=V --step N`
    "#);
    assert_snapshot!(env.snap(&["show", "0000"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: no model or run matches "0000"
    hint: `mreg ls` lists the models and `mreg runs` the runs; a run is named by its id or a unique prefix of it (4 or more hex digits), a version by NAME@N
    "#);
}
