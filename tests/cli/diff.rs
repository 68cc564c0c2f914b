//! `mreg diff` and `mreg compare`: params, metrics, files, tensors and lineage, as text,
//! JSON and Markdown.

use std::fs;
use std::path::Path;

use crate::common::{TestEnv, snapshot_files};
use insta::assert_snapshot;
use serde_json::Value as Json;

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

fn fixture_file(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

/// Returns a registry holding m@1 (tiny-v1) and m@2 (tiny-v2, a fine-tune of its head),
/// pushed with the fixtures' params and metrics, v2 with a new learning rate.
fn two_versions() -> TestEnv {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.fixture("tiny-v2", "v2");
    let params = fixture_file("params.yaml");
    env.ok(&[
        "push",
        "v1",
        "--model",
        "m",
        "--params-file",
        &params,
        "--metrics-file",
        &fixture_file("metrics.jsonl"),
        "--metrics-file",
        &fixture_file("eval.json"),
    ]);
    env.ok(&[
        "push",
        "v2",
        "--model",
        "m",
        "--parent",
        "m@1",
        "--params-file",
        &params,
        "--param",
        "optimizer.lr=0.0005",
        "--metrics-file",
        &fixture_file("metrics-v2.jsonl"),
        "--metrics-file",
        &fixture_file("eval-v2.json"),
    ]);
    env
}

fn json(text: &str) -> Json {
    serde_json::from_str(text).unwrap()
}

/// Returns the ids of every run, oldest first.
fn run_ids(env: &TestEnv) -> Vec<String> {
    json(&env.ok(&["runs", "--json", "--sort", "start"]))
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Returns safetensors bytes: tensors as (name, dtype, shape, bytes), in the given order.
fn safetensors(tensors: &[(&str, &str, &[u64], Vec<u8>)], metadata: &[(&str, &str)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let meta: serde_json::Map<String, Json> = metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Json::from(*v)))
            .collect();
        header.insert("__metadata__".into(), Json::Object(meta));
    }
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let begin = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            (*name).to_owned(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [begin, data.len()]}),
        );
    }
    let mut text = serde_json::to_vec(&Json::Object(header)).unwrap();
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(data);
    out
}

#[test]
fn diff_shows_params_metrics_files_and_the_changed_tensor() {
    let env = two_versions();
    assert_snapshot!(env.snap(&["diff", "m@1", "m@2"]), @"
    exit: 0
    --- stdout
    diff m@1 → m@2
    old  m@1  tree 6b24fac002fe  run 16580034  pushed 2026-01-01T00:01:00Z by tester@ci
    new  m@2  tree e247b959b47d  run 82357519  pushed 2026-01-01T00:02:00Z by tester@ci

    params: 1 changed
         PARAM         OLD    NEW
      ~  optimizer.lr  0.001  0.0005

    metrics: 5 changed
         METRIC         OLD    NEW   DELTA     REL          BEST OLD        BEST NEW
      ~  acc          0.871  0.902  +0.031  +3.56%  better  0.86 (step 4)   0.9 (step 3)
      ~  f1           0.853  0.874  +0.021  +2.46%  better
      ~  holdout.auc  0.912  0.925  +0.013  +1.43%  better
      ~  latency_ms    12.4   12.9    +0.5  +4.03%  worse
      ~  loss         0.388  0.362  -0.026  -6.70%  better  0.388 (step 4)  0.35 (step 3)

    files: 2 modified, 1 added
         PATH                    OLD    NEW
      ~  config.json           105 B  106 B
      ~  model.safetensors     248 B  248 B
      +  tokenizer/merges.txt          13 B

    tensors of model.safetensors: 1 modified
         TENSOR       OLD         NEW         CHANGED
      ~  head.weight  F32 [2, 3]  F32 [2, 3]  13 B of 24 B (54.2%), 6 of 6 values
      1 of 2 tensors changed; 13 B of the 72 B compared differ (18.1%)

    parents: 1 added
         MODEL  OLD  NEW
      +  m           m@1 (tree 6b24fac002fe)
    --- stderr
    ");
}

#[test]
fn diff_json_has_every_section_with_stable_fields() {
    let env = two_versions();
    let out = json(&env.ok(&["diff", "m@1", "m@2", "--json"]));
    assert_eq!(out["old"]["label"], "m@1");
    assert_eq!(out["new"]["kind"], "version");
    assert_eq!(out["differs"], true);
    assert_eq!(
        out["params"],
        serde_json::json!([{"key": "optimizer.lr", "change": "changed", "old": 0.001, "new": 0.0005}])
    );
    let metrics = out["metrics"].as_array().unwrap();
    let loss = metrics.iter().find(|m| m["key"] == "loss").unwrap();
    assert_eq!(loss["goal"], "min");
    assert_eq!(loss["verdict"], "better");
    assert_eq!(loss["new_series"]["best"], 0.35);
    assert_eq!(loss["new_series"]["step"], 3);
    assert_eq!(loss["new_series"]["last_step"], 4);
    let latency = metrics.iter().find(|m| m["key"] == "latency_ms").unwrap();
    assert_eq!(latency["verdict"], "worse");
    let files = &out["files"];
    assert_eq!(files["summary"]["added"], 1);
    assert_eq!(files["summary"]["modified"], 2);
    let added: Vec<&str> = files["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["change"] == "added")
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(added, ["tokenizer/merges.txt"]);
    let tensors = &out["tensors"][0];
    assert_eq!(tensors["path"], "model.safetensors");
    assert_eq!(tensors["summary"]["modified"], 1);
    assert_eq!(tensors["summary"]["same"], 1);
    let head = &tensors["tensors"][0];
    assert_eq!(head["name"], "head.weight");
    assert_eq!(head["change"], "modified");
    assert_eq!(head["old"]["dtype"], "F32");
    assert_eq!(head["new"]["shape"], serde_json::json!([2, 3]));
    assert_eq!(head["changed_elements"], 6);
    assert_eq!(
        tensors["tensors"].as_array().unwrap().len(),
        1,
        "unchanged tensors are left out without --all"
    );
    assert_eq!(out["parents"][0]["key"], "m");
    assert_eq!(out["parents"][0]["change"], "added");
}

#[test]
fn diff_markdown_for_pull_request_comments() {
    let env = two_versions();
    assert_snapshot!(env.snap(&["diff", "m@1", "m@2", "--md", "--only", "params,metrics,tensors"]), @r"
    exit: 0
    --- stdout
    ### diff m@1 → m@2

    - old  m@1  tree 6b24fac002fe  run 16580034  pushed 2026-01-01T00:01:00Z by tester@ci
    - new  m@2  tree e247b959b47d  run 82357519  pushed 2026-01-01T00:02:00Z by tester@ci

    **params: 1 changed**

    |  | PARAM | OLD | NEW |
    |---|---|---|---|
    | \~ | optimizer.lr | 0.001 | 0.0005 |

    **metrics: 5 changed**

    |  | METRIC | OLD | NEW | DELTA | REL |  | BEST OLD | BEST NEW |
    |---|---|--:|--:|--:|--:|---|---|---|
    | \~ | acc | 0.871 | 0.902 | +0.031 | +3.56% | better | 0.86 (step 4) | 0.9 (step 3) |
    | \~ | f1 | 0.853 | 0.874 | +0.021 | +2.46% | better |  |  |
    | \~ | holdout.auc | 0.912 | 0.925 | +0.013 | +1.43% | better |  |  |
    | \~ | latency\_ms | 12.4 | 12.9 | +0.5 | +4.03% | worse |  |  |
    | \~ | loss | 0.388 | 0.362 | -0.026 | -6.70% | better | 0.388 (step 4) | 0.35 (step 3) |

    **tensors of model.safetensors: 1 modified**

    |  | TENSOR | OLD | NEW | CHANGED |
    |---|---|---|---|---|
    | \~ | head.weight | F32 \[2, 3\] | F32 \[2, 3\] | 13 B of 24 B (54.2%), 6 of 6 values |

    1 of 2 tensors changed; 13 B of the 72 B compared differ (18.1%)  
    --- stderr
    ");
}

#[test]
fn diff_all_lists_what_did_not_change_too() {
    let env = two_versions();
    let out = json(&env.ok(&["diff", "m@1", "m@2", "--all", "--json"]));
    let same_files: Vec<&str> = out["files"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["change"] == "same")
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        same_files,
        ["serve.sh", "tokenizer/vocab.txt", "weights.safetensors"]
    );
    let tensors: Vec<(&str, &str)> = out["tensors"][0]["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["change"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tensors,
        [("embed.weight", "same"), ("head.weight", "modified")]
    );
    let text = env.ok(&["diff", "m@1", "m@2", "--all", "--only", "params"]);
    assert!(text.contains("params: 1 changed, 7 same"), "{text}");
    assert!(text.contains("seed"), "{text}");
}

#[test]
fn a_malformed_safetensors_header_is_reported_and_the_rest_still_prints() {
    let env = two_versions();
    let mut bad = 1_000_000u64.to_le_bytes().to_vec();
    bad.extend(b"{\"not\": \"finished\"");
    env.write("v2/model.safetensors", &bad);
    env.ok(&[
        "push",
        "v2",
        "--model",
        "m",
        "--param",
        "optimizer.lr=0.0001",
    ]);
    let before = snapshot_files(&env.registry());
    let out = env.run(&["diff", "m@2", "m@3"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.contains("~  optimizer.lr") && stdout.contains("~  model.safetensors"),
        "the rest of the diff prints: {stdout}"
    );
    assert!(
        stdout.contains("error: the new file's header is malformed: its header says it is 1000000 bytes long, but the file holds 26 bytes"),
        "{stdout}"
    );
    assert!(
        stderr.contains("warning: could not compare the tensors of model.safetensors"),
        "{stderr}"
    );
    let out = env.run(&["diff", "m@2", "m@3", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let out = json(&String::from_utf8(out.stdout).unwrap());
    assert!(
        out["tensors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("1000000 bytes long"),
        "{out}"
    );
    assert!(out["tensors"][0].get("summary").is_none());
    assert_eq!(
        before,
        snapshot_files(&env.registry()),
        "diff writes nothing"
    );
}

#[test]
fn exit_code_flag_says_whether_anything_differs() {
    let env = two_versions();
    assert_snapshot!(env.snap(&["diff", "m@2", "m@latest", "--exit-code"]), @"
    exit: 0
    --- stdout
    diff m@2 → m@2
    old  m@2  tree e247b959b47d  run 82357519  pushed 2026-01-01T00:02:00Z by tester@ci
    new  m@2  (m@latest)  tree e247b959b47d  run 82357519  pushed 2026-01-01T00:02:00Z by tester@ci

    No differences between m@2 and m@2.
    --- stderr
    ");
    assert_eq!(env.run(&["diff", "m@1", "m@2"]).status.code(), Some(0));
    assert_eq!(
        env.run(&["diff", "m@1", "m@2", "--exit-code"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        env.run(&["diff", "m@1", "m@2", "--exit-code", "--only", "environment"])
            .status
            .code(),
        Some(0),
        "both runs were recorded on this machine"
    );
}

#[test]
fn renames_kind_changes_and_removals_are_told_apart() {
    let env = TestEnv::with_registry();
    env.write("a/weights.bin", b"same bytes");
    env.write("a/run.sh", b"#!/bin/sh\n");
    env.write("a/old.txt", b"gone");
    env.ok(&["push", "a", "--model", "m"]);
    fs::create_dir(env.path("a/model")).unwrap();
    fs::rename(env.path("a/weights.bin"), env.path("a/model/weights.bin")).unwrap();
    fs::set_permissions(
        env.path("a/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    fs::remove_file(env.path("a/old.txt")).unwrap();
    env.ok(&["push", "a", "--model", "m"]);
    assert_snapshot!(env.snap(&["diff", "m@1", "m@2", "--only", "files"]), @"
    exit: 0
    --- stdout
    diff m@1 → m@2
    old  m@1  tree 4cb23aeeb38f  run 16580034  pushed 2026-01-01T00:01:00Z by tester@ci
    new  m@2  tree e43fb71dd624  run 82357519  pushed 2026-01-01T00:02:00Z by tester@ci

    files: 1 modified, 1 removed, 1 renamed
         PATH                              OLD   NEW
      >  weights.bin → model/weights.bin  10 B  10 B  same content
      -  old.txt                           4 B
      ~  run.sh                           10 B  10 B  file → exec
    --- stderr
    ");
}

#[test]
fn tensors_added_removed_retyped_and_reshaped() {
    let env = TestEnv::with_registry();
    let f32s = |values: &[f32]| {
        values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
    };
    env.write(
        "m/model.safetensors",
        safetensors(
            &[
                ("a.weight", "F32", &[2, 2], f32s(&[1.0, 2.0, 3.0, 4.0])),
                ("b.weight", "F32", &[4], f32s(&[1.0, 2.0, 3.0, 4.0])),
                ("c.weight", "F32", &[2, 2], f32s(&[1.0, 2.0, 3.0, 4.0])),
                ("d.bias", "F32", &[2], f32s(&[0.5, 0.5])),
                ("e.weight", "F32", &[2], f32s(&[7.0, 8.0])),
            ],
            &[("format", "pt")],
        ),
    );
    env.ok(&["push", "m", "--model", "t"]);
    env.write(
        "m/model.safetensors",
        safetensors(
            &[
                ("e.weight", "F32", &[2], f32s(&[7.0, 8.0])),
                ("a.weight", "F32", &[2, 2], f32s(&[1.0, 2.0, 3.0, 5.0])),
                ("b.weight", "F16", &[4], vec![0; 8]),
                ("c.weight", "F32", &[4], f32s(&[1.0, 2.0, 3.0, 4.0])),
                ("f.weight", "BF16", &[3], vec![1; 6]),
            ],
            &[("format", "pt"), ("step", "1200")],
        ),
    );
    env.ok(&["push", "m", "--model", "t"]);
    assert_snapshot!(env.snap(&["diff", "t@1", "t@2", "--only", "tensors"]), @"
    exit: 0
    --- stdout
    diff t@1 → t@2
    old  t@1  tree 25733d5c09e2  run b10ddfea  pushed 2026-01-01T00:01:00Z by tester@ci
    new  t@2  tree 05029b1fa55c  run bd7bfb51  pushed 2026-01-01T00:02:00Z by tester@ci

    tensors of model.safetensors: 1 modified, 1 added, 1 removed, 1 retyped, 1 reshaped
         TENSOR             OLD         NEW         CHANGED
      ~  a.weight           F32 [2, 2]  F32 [2, 2]  1 B of 16 B (6.2%), 1 of 4 values
      ~  b.weight           F32 [4]     F16 [4]     retyped
      ~  c.weight           F32 [2, 2]  F32 [4]     reshaped
      -  d.bias             F32 [2]                 removed
      +  f.weight                       BF16 [3]    added
      +  __metadata__.step              1200        added
      5 of 6 tensors changed; 1 B of the 24 B compared differ (4.2%)
    --- stderr
    ");
}

#[test]
fn runs_are_diffed_by_id_and_have_no_files() {
    let env = TestEnv::with_registry();
    for (data, lr) in [("a,b\n1,2\n", "lr=0.1"), ("a,b\n1,3\n", "lr=0.2")] {
        env.write("data/train.csv", data);
        env.ok(&[
            "run",
            "--experiment",
            "e",
            "--data",
            "data/train.csv",
            "--param",
            lr,
            "--",
            "true",
        ]);
    }
    let ids = run_ids(&env);
    let out = json(&env.ok(&["diff", &ids[0][..8], &ids[1], "--json"]));
    assert_eq!(out["old"]["kind"], "run");
    assert!(out["files"].is_null(), "runs have no files: {out}");
    assert_eq!(out["data"][0]["key"], "data/train.csv");
    assert_eq!(out["data"][0]["change"], "changed");
    assert_eq!(out["params"][0]["new"], 0.2);
    let text = env.ok(&["diff", &ids[0], &ids[1], "--only", "params,data"]);
    assert!(
        text.contains(&format!("old  run {}", &ids[0][..8])),
        "{text}"
    );
    assert!(text.contains("~  data/train.csv  file blake3:"), "{text}");
}

#[test]
fn bad_references_are_clear_errors() {
    let env = two_versions();
    assert_snapshot!(env.snap(&["diff", "m@1", "m@9"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: m@9 does not exist
    hint: m has versions 1 to 2
    ");
    assert_snapshot!(env.snap(&["diff", "m@1", "m@2", "--md", "--json"]), @"
    exit: 2
    --- stdout
    --- stderr
    error: --md and --json both choose the output; give one
    hint: --json for scripts, --md for pull-request comments
    ");
    assert_snapshot!(env.snap(&["compare", "m@1"]), @"
    exit: 2
    --- stdout
    --- stderr
    error: 2 values required by '<REF|RUN> <REF|RUN>...'; only 1 was provided

    Usage: mreg compare [OPTIONS] <REF|RUN> <REF|RUN>...

    For more information, try '--help'.
    ");
}

#[test]
fn metric_goals_come_from_the_config_before_the_name() {
    let env = two_versions();
    let verdict = |env: &TestEnv| {
        let out = json(&env.ok(&["diff", "m@1", "m@2", "--json", "--only", "metrics"]));
        out["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["key"] == "latency_ms")
            .unwrap()["verdict"]
            .clone()
    };
    assert_eq!(verdict(&env), "worse");
    let config = env.registry().join("config.toml");
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str("\n[metrics]\nmaximize = [\"latency_*\"]\n");
    fs::write(&config, text).unwrap();
    assert_eq!(verdict(&env), "better");
}

#[test]
fn compare_marks_the_best_value_of_each_metric() {
    let env = two_versions();
    env.write("v2/extra.txt", "x");
    env.ok(&[
        "push",
        "v2",
        "--model",
        "m",
        "--params-file",
        &fixture_file("params.yaml"),
        "--param",
        "optimizer.lr=0.0002",
        "--metric",
        "acc=0.899",
        "--metric",
        "loss=0.31",
        "--metric",
        "latency_ms=11.0",
    ]);
    assert_snapshot!(env.snap(&["compare", "m@1", "m@2", "m@3"]), @r#"
    exit: 0
    --- stdout
    compare m@1 m@2 m@3
    m@1  tree 6b24fac002fe  run 16580034  pushed 2026-01-01T00:01:00Z by tester@ci
    m@2  tree e247b959b47d  run 82357519  pushed 2026-01-01T00:02:00Z by tester@ci
    m@3  tree 0b3c3ff1753d  run 37d335c9  pushed 2026-01-01T00:03:00Z by tester@ci

    params: 1 differ
      PARAM         m@1    m@2     m@3
      optimizer.lr  0.001  0.0005  0.0002

    metrics: 6 differ
      METRIC              m@1        m@2      m@3
      acc             0.871      0.902 *  0.899
      f1              0.853      0.874 *
      holdout.auc     0.912      0.925 *
      holdout.rows  20000.0 *  20000.0 *
      latency_ms       12.4       12.9     11.0 *
      loss            0.388      0.362     0.31 *

    series: 2
      SERIES  m@1   m@2   m@3
      acc     _=*#  _+#*
      loss    #=._  #~_-
    --- stderr
    "#);
    assert_snapshot!(env.snap(&["compare", "m@1", "m@2", "m@3", "--md"]), @r"
    exit: 0
    --- stdout
    ### compare m@1 m@2 m@3

    - m@1  tree 6b24fac002fe  run 16580034  pushed 2026-01-01T00:01:00Z by tester@ci
    - m@2  tree e247b959b47d  run 82357519  pushed 2026-01-01T00:02:00Z by tester@ci
    - m@3  tree 0b3c3ff1753d  run 37d335c9  pushed 2026-01-01T00:03:00Z by tester@ci

    **params: 1 differ**

    | PARAM | m@1 | m@2 | m@3 |
    |---|---|---|---|
    | optimizer.lr | 0.001 | 0.0005 | 0.0002 |

    **metrics: 6 differ**

    | METRIC | m@1 | m@2 | m@3 |
    |---|--:|--:|--:|
    | acc | 0.871 | **0.902 \*** | 0.899 |
    | f1 | 0.853 | **0.874 \*** |  |
    | holdout.auc | 0.912 | **0.925 \*** |  |
    | holdout.rows | **20000.0 \*** | **20000.0 \*** |  |
    | latency\_ms | 12.4 | 12.9 | **11.0 \*** |
    | loss | 0.388 | 0.362 | **0.31 \*** |
    --- stderr
    ");
    let out = json(&env.ok(&["compare", "m@1", "m@2", "m@3", "--json"]));
    let acc = out["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "acc")
        .unwrap();
    assert_eq!(acc["section"], "metrics");
    assert_eq!(acc["values"], serde_json::json!([0.871, 0.902, 0.899]));
    assert_eq!(acc["best"], serde_json::json!([1]));
    assert_eq!(out["columns"][2]["label"], "m@3");
    let all = json(&env.ok(&["compare", "m@1", "m@2", "--all", "--json"]));
    assert!(
        all["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["key"] == "seed" && r["same"] == true),
        "--all keeps rows that are the same"
    );
    assert_eq!(
        env.run(&["compare", "m@2", "m@2", "--exit-code"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        env.run(&["compare", "m@1", "m@2", "--exit-code"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn runs_compare_puts_the_runs_a_query_finds_side_by_side() {
    let env = two_versions();
    let text = env.ok(&["runs", "--sort", "-acc", "--compare"]);
    assert!(text.starts_with("compare "), "{text}");
    assert!(text.contains("optimizer.lr"), "{text}");
    assert!(text.contains("0.902 *"), "{text}");
    assert_snapshot!(env.snap(&["runs", "--where", "acc > 0.9", "--compare"]), @"
    exit: 2
    --- stdout
    --- stderr
    error: --compare needs at least 2 runs; 1 matched
    hint: widen --where or --experiment; `mreg runs` lists every run
    ");
}

#[test]
fn values_are_shown_typed_and_escaped() {
    let env = TestEnv::with_registry();
    env.write("p1.json", r#"{"x": "3", "note": "plain"}"#);
    env.write(
        "p2.json",
        "{\"x\": 3, \"note\": \"a\\u001b[31mred\\nb\", \"tok\": \"<pad>\"}",
    );
    env.ok(&[
        "run",
        "--experiment",
        "e",
        "--params-file",
        "p1.json",
        "--",
        "mreg",
        "log",
        "--metric",
        "loss=0.4",
    ]);
    env.ok(&[
        "run",
        "--experiment",
        "e",
        "--params-file",
        "p2.json",
        "--",
        "mreg",
        "log",
        "--metric",
        "loss=nan",
    ]);
    let ids = run_ids(&env);
    let text = env.ok(&["diff", &ids[0], &ids[1], "--only", "params,metrics,files"]);
    assert!(
        text.contains("~  x      \"3\"    3"),
        "types differ, so text is quoted: {text}"
    );
    assert!(
        text.contains("a\\e[31mred\\nb"),
        "control characters are escaped: {text}"
    );
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(
        text.contains(&format!(
            "{} is a run and {} is a run; only model versions have files",
            &ids[0][..8],
            &ids[1][..8]
        )),
        "{text}"
    );
    let md = env.ok(&["diff", &ids[0], &ids[1], "--md", "--only", "params"]);
    assert!(
        md.contains("| \\+ | tok |  | &lt;pad&gt; |")
            || md.contains("| + | tok |  | &lt;pad&gt; |"),
        "{md}"
    );
    let out = json(&env.ok(&["diff", &ids[0], &ids[1], "--json", "--only", "metrics"]));
    assert_eq!(out["metrics"][0]["new"], "NaN");
    assert!(
        out["metrics"][0]["verdict"].is_null(),
        "NaN is neither better nor worse"
    );
}
