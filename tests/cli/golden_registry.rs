//! A registry written by an earlier mreg (tests/golden/registry-v1) reads the same today:
//! every read command's output is kept in a snapshot file, and writing to the old
//! registry keeps working.

use std::path::Path;

use crate::common::{TestEnv, copy_tree, listing};

/// The runs the fixture holds: `mreg run`'s, and the ones two pushes recorded.
const RUN: &str = "ea5d76cda4a450f7";
const PUSH_RUN: &str = "5467f240bc3b5aad";

/// Returns an environment whose registry is a copy of the v1 fixture.
fn golden() -> TestEnv {
    let env = TestEnv::new();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/registry-v1");
    copy_tree(&fixture, &env.registry());
    env
}

/// Asserts one snapshot file per command: its exit code, stdout and stderr.
fn reads_as_before(env: &TestEnv, name: &str, args: &[&str]) {
    let shown = format!("$ mreg {}\n{}", args.join(" "), env.snap(args));
    insta::assert_snapshot!(format!("golden_v1_{name}"), shown);
}

#[test]
fn a_v1_registry_lists_shows_and_queries_as_it_did() {
    let env = golden();
    for (name, args) in [
        ("ls", &["ls"][..]),
        ("ls_json", &["ls", "--json"]),
        ("ls_churn", &["ls", "churn"]),
        ("ls_churn_json", &["ls", "churn", "--json"]),
        ("show_version", &["show", "churn@production", "--files"]),
        ("show_version_json", &["show", "churn@2", "--json"]),
        ("show_run", &["show", RUN]),
        (
            "show_run_series",
            &["show", RUN, "--series", "loss", "--json"],
        ),
        ("show_push_run", &["show", PUSH_RUN]),
        ("history", &["history", "churn"]),
        ("history_json", &["history", "churn", "--json"]),
        ("runs", &["runs"]),
        (
            "runs_json",
            &["runs", "--where", "metrics.acc > 0.8", "--json"],
        ),
        ("diff", &["diff", "churn@1", "churn@2"]),
        ("diff_json", &["diff", "churn@1", "churn@2", "--json"]),
        ("compare", &["compare", "churn@1", "churn@2", RUN]),
        (
            "gate",
            &[
                "gate",
                "churn@2",
                "acc>=@production",
                "--stage",
                "production",
            ],
        ),
        ("fsck", &["fsck"]),
    ] {
        reads_as_before(&env, name, args);
    }
}

#[test]
fn a_v1_registry_pulls_the_bytes_it_was_given() {
    let env = golden();
    reads_as_before(&env, "pull", &["pull", "churn@production", "--to", "out"]);
    let v1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/models/tiny-v1");
    assert_eq!(listing(&env.path("out")), listing(&v1));
    env.ok(&["pull", "churn@archived", "--to", "out2"]);
    let v2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/models/tiny-v2");
    assert_eq!(listing(&env.path("out2")), listing(&v2));
}

#[test]
fn a_v1_registry_takes_new_versions_moves_and_syncs() {
    let env = golden();
    env.fixture("tiny-v2", "v2");
    env.write("eval.json", r#"{"acc": 0.95}"#);
    reads_as_before(
        &env,
        "push",
        &[
            "push",
            "v2",
            "--model",
            "tiny",
            "--metrics-file",
            "eval.json",
        ],
    );
    reads_as_before(
        &env,
        "promote",
        &["promote", "tiny@2", "production", "--gate", "acc>0.9"],
    );
    reads_as_before(&env, "log", &["log", "--run", RUN, "--metric", "acc=0.9"]);
    reads_as_before(
        &env,
        "model_set",
        &[
            "model",
            "set",
            "tiny",
            "--license",
            "mit",
            "--owner",
            "ml-team",
        ],
    );
    std::fs::create_dir(env.path("share")).unwrap();
    reads_as_before(&env, "remote_add", &["remote", "add", "share", "share"]);
    reads_as_before(&env, "sync", &["sync"]);
    reads_as_before(&env, "clone", &["clone", "share", "copy"]);
    reads_as_before(&env, "clone_ls", &["--registry", "copy", "ls"]);
    reads_as_before(
        &env,
        "clone_model_show",
        &["--registry", "copy", "model", "show", "tiny"],
    );
    reads_as_before(&env, "fsck_after", &["fsck"]);
}

#[test]
fn a_v1_registry_stores_files_whole_until_upgraded_then_in_parts_and_reads_as_before() {
    let env = golden();
    let chunk_lists = |env: &TestEnv| {
        walkdir::WalkDir::new(env.registry().join("objects"))
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".chunks"))
            .count()
    };
    env.write("big/weights.bin", crate::common::noise(20 << 20, 31));
    env.ok(&["push", "big", "--model", "big"]);
    assert_eq!(chunk_lists(&env), 0, "format 1 stored a file in parts");
    let config = env.registry().join("config.toml");
    let before = std::fs::read_to_string(&config).unwrap();
    env.ok(&["upgrade"]);
    let after = std::fs::read_to_string(&config).unwrap();
    // Only the format line changed.
    assert_eq!(after, before.replace("format = 1", "format = 3"));
    assert_ne!(after, before);
    env.write("big/weights.bin", crate::common::noise(20 << 20, 33));
    env.ok(&["push", "big", "--model", "big"]);
    assert_eq!(chunk_lists(&env), 1);
    env.ok(&["pull", "churn@production", "--to", "churn"]);
    env.ok(&["pull", "big@1", "--to", "one"]);
    env.ok(&["pull", "big@2", "--to", "two"]);
    assert!(
        std::fs::read(env.path("two/weights.bin")).unwrap() == crate::common::noise(20 << 20, 33)
    );
    env.ok(&["fsck"]);
}
