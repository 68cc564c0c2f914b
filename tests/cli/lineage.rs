//! What a run records of its origin: params and metrics files, data inputs, parents,
//! git source, CI job; and that no secret from the environment reaches the registry.

use std::path::Path;
use std::process::Command;

use crate::cli::run::runs_json;
use crate::common::{TestEnv, snapshot_files};
use insta::assert_snapshot;
use serde_json::Value;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .display()
        .to_string()
}

fn show_json(env: &TestEnv, what: &str) -> Value {
    serde_json::from_str(&env.ok(&["show", what, "--json"])).unwrap()
}

#[test]
fn push_records_a_run_with_params_metrics_data_and_parents() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.fixture("tiny-v2", "v2");
    env.write("data/train.csv", "a,b\n1,2\n");
    env.write("data/more/part-0.csv", "a,b\n3,4\n");
    env.ok(&[
        "push",
        "v1",
        "--model",
        "churn",
        "--params-file",
        &fixture("params.yaml"),
        "--metrics-file",
        &fixture("eval.json"),
        "--data",
        "data/train.csv",
        "--data",
        "data",
        "--data",
        "s3://bucket/train.parquet@3HL4kqtJvjVBH40Nrjfkd",
        "--tag",
        "team=growth",
    ]);
    let v1 = show_json(&env, "churn@1");
    let run = show_json(&env, v1["run"].as_str().unwrap());
    assert_eq!(run["experiment"], "churn");
    assert_eq!(run["status"], "finished");
    assert_eq!(run["params"]["model.hidden_size"], 3);
    assert_eq!(run["params"]["optimizer.lr"], 0.001);
    assert_eq!(run["params"]["optimizer.name"], "adamw");
    assert_eq!(run["params"]["use_amp"], false);
    assert_eq!(run["metrics"]["holdout.auc"], 0.912);
    assert_eq!(
        v1["metrics"]["acc"], 0.871,
        "the version keeps a copy of the metrics"
    );
    let data = run["data"].as_array().unwrap();
    assert_eq!(data[0]["kind"], "file");
    assert_eq!(
        data[0]["hash"],
        blake3::hash(b"a,b\n1,2\n").to_hex().as_str()
    );
    assert_eq!(data[1]["kind"], "folder");
    assert_eq!(data[1]["files"], 2);
    assert_eq!(data[2]["kind"], "uri");
    assert_eq!(data[2]["path"], "s3://bucket/train.parquet");
    assert_eq!(data[2]["version"], "3HL4kqtJvjVBH40Nrjfkd");
    assert_eq!(run["outputs"][0]["version"], 1);

    env.ok(&[
        "push",
        "v2",
        "--model",
        "churn",
        "--parent",
        "churn@1",
        "--experiment",
        "finetune",
    ]);
    let v2 = show_json(&env, "churn@2");
    let run2 = show_json(&env, v2["run"].as_str().unwrap());
    assert_eq!(run2["experiment"], "finetune");
    assert_eq!(run2["parents"][0]["model"], "churn");
    assert_eq!(run2["parents"][0]["version"], 1);
    assert_eq!(run2["parents"][0]["tree"], v1["tree"]);
}

#[test]
fn push_with_run_links_the_version_and_logs_into_that_run() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.ok(&[
        "run",
        "--experiment",
        "churn",
        "--param",
        "lr=0.01",
        "--",
        "true",
    ]);
    let id = runs_json(&env)[0]["id"].as_str().unwrap().to_owned();
    env.ok(&[
        "push",
        "v1",
        "--model",
        "churn",
        "--run",
        &id[..8],
        "--metric",
        "acc=0.93",
    ]);
    assert_eq!(runs_json(&env).len(), 1, "no second run was recorded");
    let version = show_json(&env, "churn@1");
    assert_eq!(version["run"], id.as_str());
    assert_eq!(version["metrics"]["acc"], 0.93);
    let run = show_json(&env, &id);
    assert_eq!(run["outputs"][0]["model"], "churn");
    assert_eq!(run["metrics"]["acc"], 0.93);
}

#[test]
fn bad_parents_data_and_runs_are_refused_and_change_nothing() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    let before = snapshot_files(&env.registry());
    assert_snapshot!(env.snap(&["push", "v1", "--model", "churn", "--parent", "base@1"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: resolving --parent base@1: no model named "base"
    hint: the registry holds no models yet; `mreg ls` lists them
    "#);
    assert_snapshot!(env.snap(&["push", "v1", "--model", "churn", "--data", "no/such.csv"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: --data no/such.csv: there is no file or folder there
    hint: give an existing file or folder, or a URI such as s3://bucket/key
    ");
    assert_snapshot!(env.snap(&["push", "v1", "--model", "churn", "--run", "abcdef12"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: no run with id "abcdef12" in this registry
    hint: `mreg runs` lists the runs; ids are 16 hex digits, unique prefixes work
    "#);
    assert_snapshot!(env.snap(&["push", "v1", "--model", "churn", "--metric", "acc"]), @r#"
    exit: 2
    --- stdout
    --- stderr
    error: --metric "acc" is not KEY=VALUE
    hint: write --metric acc=0.91
    "#);
    assert_eq!(
        snapshot_files(&env.registry()),
        before,
        "the registry changed"
    );
}

#[test]
fn ci_jobs_are_recorded() {
    let env = TestEnv::with_registry();
    let out = env.run_with(
        &["run", "--", "true"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/churn"),
            ("GITHUB_RUN_ID", "4242"),
            ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
            ("GITHUB_JOB", "train"),
        ],
    );
    assert!(out.status.success());
    let id = runs_json(&env)[0]["id"].as_str().unwrap().to_owned();
    let run = show_json(&env, &id);
    let ci = &run["environment"]["ci"];
    assert_eq!(ci["provider"], "github-actions");
    assert_eq!(
        ci["job_url"],
        "https://github.com/acme/churn/actions/runs/4242"
    );
    assert_eq!(ci["job"], "train");
    assert_eq!(
        run["environment"]["mreg_version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(run["environment"]["cores"].as_u64().unwrap() >= 1);
}

pub(crate) fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

#[test]
fn git_source_is_recorded_and_no_secret_reaches_the_registry() {
    const SECRETS: [&str; 5] = [
        "AKIAsecretkeyid0000",
        "wJalrXUtnFEMIsecretaccesskey",
        "hf_secrettokenvalue123",
        "ghp_remotetokeninurl456",
        "sigsecretinquery789",
    ];
    let env = TestEnv::with_registry();
    let work = env.path("");
    env.write("train.py", "print('train')\n");
    env.write("requirements.txt", "numpy==2.0\n");
    git(&work, &["init", "-q"]);
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "first"]);
    git(
        &work,
        &[
            "remote",
            "add",
            "origin",
            &format!("https://alice:{}@github.com/acme/churn.git", SECRETS[3]),
        ],
    );
    // The registry keeps itself out of git: an unchanged checkout is clean.
    env.ok(&["run", "-q", "--", "true"]);
    let clean = show_json(&env, runs_json(&env)[0]["id"].as_str().unwrap());
    assert_eq!(clean["source"]["dirty"], false);
    assert!(clean["source"].get("diff_hash").is_none());
    env.write("train.py", "print('train, changed')\n");
    let out = env.run_with(
        &[
            "run",
            "--data",
            &format!("https://data.example.com/train.csv?sig={}", SECRETS[4]),
            "--",
            "sh",
            "-c",
            "mreg log -q --metric acc=0.9",
            "--hf-token",
            SECRETS[2],
        ],
        &[
            ("AWS_ACCESS_KEY_ID", SECRETS[0]),
            ("AWS_SECRET_ACCESS_KEY", SECRETS[1]),
            ("HF_TOKEN", SECRETS[2]),
            ("GITHUB_TOKEN", SECRETS[3]),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = runs_json(&env)[0]["id"].as_str().unwrap().to_owned();
    let run = show_json(&env, &id);
    let source = &run["source"];
    assert_eq!(source["branch"], "main");
    assert_eq!(source["dirty"], true);
    assert_eq!(source["commit"].as_str().unwrap().len(), 40);
    assert_eq!(source["diff_hash"].as_str().unwrap().len(), 64);
    assert_eq!(source["remote"], "https://github.com/acme/churn.git");
    assert_eq!(run["data"][0]["path"], "https://data.example.com/train.csv");
    let locks = run["environment"]["lockfiles"].as_array().unwrap();
    assert_eq!(locks[0]["path"], "requirements.txt");
    for (path, bytes) in snapshot_files(&env.registry()) {
        let text = String::from_utf8_lossy(&bytes);
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} reached {path}");
        }
    }
    let index = std::fs::read(env.registry().join("cache/runs-index.json")).unwrap_or_default();
    for secret in SECRETS {
        assert!(
            !String::from_utf8_lossy(&index).contains(secret),
            "{secret} reached the index"
        );
    }
}

#[test]
fn store_data_keeps_the_bytes_of_data_inputs() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.write("data/train.csv", "a,b\n1,2\n");
    env.write("data/extra/part-0.csv", "a,b\n3,4\n");
    env.ok(&[
        "push",
        "v1",
        "--model",
        "churn",
        "--data",
        "data/train.csv",
        "--data",
        "data",
        "--store-data",
    ]);
    let run = show_json(&env, show_json(&env, "churn@1")["run"].as_str().unwrap());
    for input in run["data"].as_array().unwrap() {
        assert_eq!(input["stored"], true);
        let hash = input["hash"].as_str().unwrap();
        let object = env.registry().join("objects").join(&hash[..2]);
        let found = std::fs::read_dir(&object).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .starts_with(&hash[2..])
        });
        assert!(found, "{} is not stored", input["path"]);
    }
    // Without --store-data only the hash is kept.
    env.write("data/other.csv", "x\n");
    env.fixture("tiny-v2", "v2");
    env.ok(&["push", "v2", "--model", "churn", "--data", "data/other.csv"]);
    let hash = blake3::hash(b"x\n").to_hex().to_string();
    assert!(
        !env.registry()
            .join("objects")
            .join(&hash[..2])
            .join(&hash[2..])
            .exists()
    );
    env.ok(&["fsck"]);
}

#[test]
fn nan_metrics_of_a_version_are_strings_in_json() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.ok(&[
        "push", "v1", "--model", "churn", "--metric", "loss=nan", "--metric", "acc=0.9",
    ]);
    let shown = show_json(&env, "churn@1");
    assert_eq!(shown["metrics"]["loss"], "NaN");
    assert_eq!(shown["metrics"]["acc"], 0.9);
    let listed: Value = serde_json::from_str(&env.ok(&["ls", "churn", "--json"])).unwrap();
    assert_eq!(listed[0]["metrics"]["loss"], "NaN");
}
