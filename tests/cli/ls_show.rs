//! `mreg ls` and `mreg show`: what users read about models and versions.

use crate::common::TestEnv;
use insta::assert_snapshot;

fn two_versions() -> TestEnv {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.fixture("tiny-v2", "v2");
    env.ok(&["push", "v1", "--model", "churn", "--message", "first run"]);
    env.ok(&["push", "v2", "--model", "churn"]);
    env.ok(&["push", "v1", "--model", "fraud"]);
    env
}

#[test]
fn ls_lists_models_then_versions() {
    let env = two_versions();
    assert_snapshot!(env.snap(&["ls"]), @r#"
    exit: 0
    --- stdout
    MODEL  LATEST   VERSIONS  SIZE OF LATEST  UPDATED               STAGES
    churn  churn@2  2         490 B           2026-01-01T00:02:00Z  -
    fraud  fraud@1  1         476 B           2026-01-01T00:03:00Z  -
    --- stderr
    "#);
    assert_snapshot!(env.snap(&["ls", "churn"]), @"
    exit: 0
    --- stdout
    VERSION  STAGES  TREE          FILES  SIZE   CREATED               BY         MESSAGE
    churn@2  -       e247b959b47d  5      490 B  2026-01-01T00:02:00Z  tester@ci
    churn@1  -       6b24fac002fe  4      476 B  2026-01-01T00:01:00Z  tester@ci  first run
    --- stderr
    ");
    assert_snapshot!(env.snap(&["ls", "--json"]), @r#"
    exit: 0
    --- stdout
    [
      {
        "model": "churn",
        "latest": 2,
        "versions": 2,
        "bytes": 490,
        "updated": "2026-01-01T00:02:00Z",
        "stages": {}
      },
      {
        "model": "fraud",
        "latest": 1,
        "versions": 1,
        "bytes": 476,
        "updated": "2026-01-01T00:03:00Z",
        "stages": {}
      }
    ]
    --- stderr
    "#);
}

#[test]
fn ls_of_an_empty_registry_and_of_an_unknown_model() {
    let env = TestEnv::with_registry();
    assert_snapshot!(env.snap(&["ls"]), @"
    exit: 0
    --- stdout
    --- stderr
    No models yet; `mreg push DIR --model NAME` records the first.
    ");
    assert_eq!(env.ok(&["ls", "--json"]).trim(), "[]");
    let env = two_versions();
    assert_snapshot!(env.snap(&["ls", "chrun"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: no model named "chrun"
    hint: models: churn, fraud; `mreg ls` lists them
    "#);
}

#[test]
fn show_prints_the_record_and_its_files() {
    let env = two_versions();
    assert_snapshot!(env.snap(&["show", "churn@1", "--files"]), @r#"
    exit: 0
    --- stdout
    format = 2
    model = "churn"
    version = 1
    tree = "6b24fac002fe5a7cf20cc868a55191fa6ded1a9689eea94e8971041facd121e8"
    files = 4
    bytes = 476
    created = "2026-01-01T00:01:00Z"
    actor = "tester@ci"
    message = "first run"
    run = "eb16012c5aff4a1a"
    nonce = "a5e4011b3676848c"

    KIND  SIZE   HASH          PATH
    file  105 B  e91cede83c24  config.json
    file  248 B  88f837be447b  model.safetensors
    exec  95 B   d8a642475644  serve.sh
    file  28 B   b9a46ea1eb76  tokenizer/vocab.txt
    link  17 B   a1c532f337a5  weights.safetensors -> model.safetensors
    --- stderr
    "#);
    assert_snapshot!(env.snap(&["show", "churn@2", "--json"]), @r#"
    exit: 0
    --- stdout
    {
      "format": 2,
      "model": "churn",
      "version": 2,
      "tree": "e247b959b47d0b60fca9940e54ca2b53c8f0adfd131d1e8737fc53b87cce87c6",
      "files": 5,
      "bytes": 490,
      "created": "2026-01-01T00:02:00Z",
      "actor": "tester@ci",
      "run": "8562c9ece8b61bac",
      "nonce": "c3f76c63e05cc70d",
      "stages": [],
      "removed": null
    }
    --- stderr
    "#);
}

#[test]
fn show_prints_the_record_as_stored() {
    let env = two_versions();
    let stored =
        std::fs::read_to_string(env.registry().join("models/churn/versions/1.toml")).unwrap();
    assert_eq!(env.ok(&["show", "churn@1"]), stored);
}

#[test]
fn show_files_json_gives_link_targets_apart_from_paths() {
    let env = two_versions();
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["show", "churn@1", "--files", "--json"])).unwrap();
    let link = json["file_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "link")
        .unwrap();
    assert_eq!(link["path"], "weights.safetensors");
    assert_eq!(link["target"], "model.safetensors");
}
