//! `mreg pull --layout triton` and `--layout hf-cache`: serving layouts that
//! accumulate versions, the cache checked with huggingface_hub's offline loaders.

use std::fs;

use crate::common::{TestEnv, hf, noise};

/// Pushes two versions of an ONNX model with a Triton `config.pbtxt`.
fn triton_model() -> TestEnv {
    let env = TestEnv::with_registry();
    env.write(
        "m/config.pbtxt",
        "name: \"churn\"\nbackend: \"onnxruntime\"\n",
    );
    env.write("m/model.onnx", noise(5000, 1));
    env.ok(&["push", "m", "--model", "churn"]);
    env.write("m/model.onnx", noise(5000, 2));
    env.ok(&["push", "m", "--model", "churn"]);
    env.ok(&["promote", "churn@2", "production"]);
    env
}

#[test]
fn versions_and_stages_pile_up_in_one_triton_repository() {
    let env = triton_model();
    env.ok(&["pull", "churn@1", "--layout", "triton", "--to", "models"]);
    let out = env.ok_err(&[
        "pull",
        "churn@production",
        "--layout",
        "triton",
        "--to",
        "models",
    ]);
    assert!(out.contains("into"), "{out}");
    let mut found: Vec<String> = walkdir::WalkDir::new(env.path("models"))
        .min_depth(1)
        .into_iter()
        .map(|e| {
            e.unwrap()
                .path()
                .strip_prefix(env.path("models"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            "churn",
            "churn/1",
            "churn/1/model.onnx",
            "churn/2",
            "churn/2/model.onnx",
            "churn/config.pbtxt"
        ]
    );
    assert_eq!(
        fs::read(env.path("models/churn/2/model.onnx")).unwrap(),
        noise(5000, 2)
    );
    // A version folder that is there already is replaced only with --force.
    let again = env.run(&["pull", "churn@1", "--layout", "triton", "--to", "models"]);
    assert_eq!(again.status.code(), Some(1));
    env.ok(&[
        "pull", "churn@1", "--layout", "triton", "--to", "models", "--force",
    ]);
    // Another name than the config's would not load: refused before writing.
    let renamed = env.run(&[
        "pull", "churn@1", "--layout", "triton", "--to", "models", "--name", "other",
    ]);
    assert_eq!(renamed.status.code(), Some(1));
    let said = String::from_utf8_lossy(&renamed.stderr);
    assert!(said.contains("names the model \"churn\""), "{said}");
    assert!(!env.path("models/other").exists());
    let json = env.ok(&[
        "pull", "churn@2", "--layout", "triton", "--to", "repo2", "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["config"], true);
    assert_eq!(json["layout"], "triton");
}

#[test]
fn a_hugging_face_cache_entry_is_found_offline_by_its_repo_id() {
    let env = TestEnv::with_registry();
    env.write("llm/config.json", "{\"model_type\": \"gpt2\"}\n");
    env.write("llm/model.safetensors", noise(1 << 20, 3));
    env.write("llm/tokenizer/vocab.json", "{\"a\": 0}\n");
    env.ok(&["push", "llm", "--model", "llm"]);
    env.write(
        "llm/config.json",
        "{\"model_type\": \"gpt2\", \"n_layer\": 2}\n",
    );
    env.ok(&["push", "llm", "--model", "llm"]);
    let first = env.ok(&[
        "pull",
        "llm@1",
        "--layout",
        "hf-cache",
        "--to",
        "hub",
        "--repo-id",
        "acme/llm",
        "--branch",
        "v1",
        "--json",
    ]);
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    let second = env.ok(&[
        "pull",
        "llm@2",
        "--layout",
        "hf-cache",
        "--to",
        "hub",
        "--repo-id",
        "acme/llm",
        "--json",
    ]);
    let second: serde_json::Value = serde_json::from_str(&second).unwrap();
    let script = r#"
import json, sys
from huggingface_hub import hf_hub_download, snapshot_download, scan_cache_dir
cache = sys.argv[1]
main = hf_hub_download("acme/llm", "config.json", cache_dir=cache, local_files_only=True)
v1 = hf_hub_download("acme/llm", "config.json", revision="v1", cache_dir=cache, local_files_only=True)
deep = hf_hub_download("acme/llm", "tokenizer/vocab.json", local_files_only=True)
snap = snapshot_download("acme/llm", cache_dir=cache, local_files_only=True)
info = scan_cache_dir(cache)
print(json.dumps({
    "main": open(main).read(), "v1": open(v1).read(), "deep": open(deep).read(),
    "snapshot": snap,
    "repos": [[r.repo_id, r.size_on_disk, sorted(x.commit_hash for x in r.revisions),
               sorted(sorted(x.refs) for x in r.revisions)] for r in info.repos],
    "warnings": [str(w) for w in info.warnings],
}))
"#;
    let hub = env.path("hub").display().to_string();
    let out = hf::python(script, &[&hub], &[("HF_HUB_CACHE", &hub)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["main"], "{\"model_type\": \"gpt2\", \"n_layer\": 2}\n");
    assert_eq!(read["v1"], "{\"model_type\": \"gpt2\"}\n");
    assert_eq!(read["deep"], "{\"a\": 0}\n");
    assert!(
        read["snapshot"]
            .as_str()
            .unwrap()
            .ends_with(second["revision"].as_str().unwrap()),
        "{read}"
    );
    assert_eq!(
        read["warnings"],
        serde_json::json!([]),
        "the cache is well formed"
    );
    let repos = read["repos"].as_array().unwrap();
    assert_eq!(repos.len(), 1);
    assert_eq!(repos[0][0], "acme/llm");
    // Two snapshots share the weights' blob: on disk once.
    let weights = 1u64 << 20;
    assert!(repos[0][1].as_u64().unwrap() < 2 * weights, "{repos:?}");
    let mut revisions = vec![first["revision"].clone(), second["revision"].clone()];
    revisions.sort_by_key(|r| r.as_str().unwrap().to_owned());
    assert_eq!(repos[0][2], serde_json::json!(revisions));
}

#[test]
fn layout_options_are_checked_before_anything_is_written() {
    let env = triton_model();
    for (args, code) in [
        (
            &["--layout", "hf-cache", "--to", "hub", "--repo-id", "a/b/c"][..],
            2,
        ),
        (
            &["--layout", "hf-cache", "--to", "hub", "--branch", "../x"][..],
            2,
        ),
        (&["--layout", "triton"][..], 2),
        (
            &["--layout", "triton", "--to", "hub", "--name", "Bad Name"][..],
            2,
        ),
        (&["--to", "hub", "--name", "x"][..], 2),
        (&["--layout", "triton", "--to", "hub", "--card"][..], 2),
    ] {
        let mut argv = vec!["pull", "churn@1"];
        argv.extend_from_slice(args);
        let run = env.run(&argv);
        assert_eq!(
            run.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(!env.path("hub").exists(), "{args:?}");
    }
}

#[test]
fn a_partial_pull_into_a_cache_adds_to_the_snapshot_and_never_takes_from_it() {
    let env = TestEnv::with_registry();
    env.write("llm/config.json", "{}\n");
    env.write("llm/model.safetensors", noise(4096, 1));
    env.ok(&["push", "llm", "--model", "llm"]);
    let pull = |extra: &[&str]| {
        let mut argv = vec![
            "pull", "llm@1", "--layout", "hf-cache", "--to", "hub", "--json",
        ];
        argv.extend_from_slice(extra);
        serde_json::from_str::<serde_json::Value>(&env.ok(&argv)).unwrap()
    };
    let first = pull(&["--only", "config.json"]);
    let snapshot = std::path::PathBuf::from(first["path"].as_str().unwrap());
    assert!(snapshot.join("config.json").exists());
    assert!(!snapshot.join("model.safetensors").exists());
    pull(&["--only", "model.safetensors"]);
    assert!(snapshot.join("config.json").exists(), "kept");
    assert!(snapshot.join("model.safetensors").exists(), "added");
    // Concurrent pulls of one version all succeed.
    let children: Vec<std::process::Child> = (0..6)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_mreg"))
                .args(["pull", "llm@1", "--layout", "hf-cache", "--to", "hub2"])
                .current_dir(env.path(""))
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
}

#[test]
fn a_ref_that_named_another_revision_is_said_to_move() {
    let env = TestEnv::with_registry();
    env.write("m/config.json", "{}\n");
    env.ok(&["push", "m", "--model", "m"]);
    env.write("m/config.json", "{\"v\": 2}\n");
    env.ok(&["push", "m", "--model", "m"]);
    env.ok(&["pull", "m@1", "--layout", "hf-cache", "--to", "hub"]);
    let moved = env.ok_err(&["pull", "m@2", "--layout", "hf-cache", "--to", "hub"]);
    assert!(moved.contains("refs/main named the revision"), "{moved}");
    let again = env.ok_err(&["pull", "m@2", "--layout", "hf-cache", "--to", "hub"]);
    assert!(!again.contains("named the revision"), "{again}");
}
