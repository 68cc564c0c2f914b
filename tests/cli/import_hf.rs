//! `mreg import hf`: a cache huggingface_hub downloaded (from a stand-in Hub on
//! 127.0.0.1), a clone of a Hub repository, and the round trip through
//! `pull --layout hf-cache`.

use std::fs;
use std::process::Command;

use serde_json::Value;

use crate::common::hf::FakeHub;
use crate::common::{TestEnv, noise};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Writes the files of a small model under `dir` of `env`.
fn model_files(env: &TestEnv, dir: &str) {
    env.write(
        &format!("{dir}/config.json"),
        "{\"model_type\": \"gpt2\"}\n",
    );
    env.write(&format!("{dir}/model.safetensors"), noise(300_000, 9));
    env.write(&format!("{dir}/tokenizer/vocab.json"), "{\"a\": 0}\n");
}

/// Pushes the small model as `orig@1` and pulls it into the cache `hub` as
/// `acme/orig`.
fn orig_in_a_cache() -> TestEnv {
    let env = TestEnv::with_registry();
    model_files(&env, "m");
    env.ok(&["push", "m", "--model", "orig"]);
    env.ok(&[
        "pull",
        "orig@1",
        "--layout",
        "hf-cache",
        "--to",
        "hub",
        "--repo-id",
        "acme/orig",
    ]);
    env
}

/// Returns the run record of a version, as JSON.
fn run_of(env: &TestEnv, reference: &str) -> Value {
    let version = json(&env.ok(&["show", reference, "--json"]));
    json(&env.ok(&["show", version["run"].as_str().unwrap(), "--json"]))
}

#[test]
fn a_snapshot_huggingface_hub_downloaded_becomes_a_version_with_its_repo_and_revision() {
    let env = TestEnv::with_registry();
    model_files(&env, "hub-files");
    let hub = FakeHub::start(&env.path("hub-files"), COMMIT);
    let snapshot = hub.download("acme/tiny", &env.path("cache"));
    let out = env.ok_err(&["import", "hf", "cache/models--acme--tiny"]);
    assert!(
        out.contains("Imported acme/tiny at 0123456789ab as tiny@1"),
        "{out}"
    );
    env.ok(&["pull", "tiny@1", "--to", "out"]);
    for file in ["config.json", "model.safetensors", "tokenizer/vocab.json"] {
        assert_eq!(
            fs::read(env.path("out").join(file)).unwrap(),
            fs::read(env.path("hub-files").join(file)).unwrap(),
            "{file}"
        );
    }
    let run = run_of(&env, "tiny@1");
    assert_eq!(run["source"]["commit"], COMMIT);
    assert_eq!(run["source"]["remote"], "https://huggingface.co/acme/tiny");
    assert_eq!(run["tags"]["hf.repo_id"], "acme/tiny");
    assert_eq!(run["tags"]["hf.revision"], COMMIT);
    // Again, by entry or by snapshot folder: nothing new.
    let again = env.ok_err(&["import", "hf", "cache/models--acme--tiny"]);
    assert!(
        again.contains("Nothing to import: tiny@1 already holds"),
        "{again}"
    );
    assert!(!again.contains("warning"), "{again}");
    env.ok(&["import", "hf", &snapshot]);
    assert_eq!(json(&env.ok(&["ls", "--json"]))[0]["versions"], 1);
    // The lineage goes on into what mreg writes for others.
    let exported = json(&env.ok(&["export", "tiny@1", "--oci", "oci", "--json"]));
    assert_eq!(exported["layers"], 3);
    let index = json(&fs::read_to_string(env.path("oci/index.json")).unwrap());
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value =
        serde_json::from_slice(&fs::read(env.path("oci/blobs/sha256").join(&digest[7..])).unwrap())
            .unwrap();
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.revision"],
        COMMIT
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.source"],
        "https://huggingface.co/acme/tiny"
    );
    // A revision the cache does not hold is named.
    let missing = env.run(&[
        "import",
        "hf",
        "cache/models--acme--tiny",
        "--revision",
        "v9",
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("has no ref v9"));
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

#[test]
fn a_clone_of_a_hub_repository_keeps_its_commit_and_leaves_git_out() {
    let env = TestEnv::with_registry();
    model_files(&env, "clone");
    let repo = env.path("clone");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(
        &repo,
        &[
            "remote",
            "add",
            "origin",
            "https://huggingface.co/acme/clone",
        ],
    );
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "weights"]);
    let head = String::from_utf8(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(&repo)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let imported = json(&env.ok(&["import", "hf", "clone", "--json"]));
    assert_eq!(imported["ref"], "clone@1");
    assert_eq!(imported["origin"]["repo_id"], "acme/clone");
    assert_eq!(imported["origin"]["revision"], head.trim());
    let files = env.ok(&["show", "clone@1", "--files"]);
    assert!(!files.contains(".git"), "{files}");
    assert_eq!(imported["files"], 3);
    assert_eq!(run_of(&env, "clone@1")["source"]["commit"], head.trim());

    // A clone made without git-lfs holds pointers, not weights: refused.
    env.write(
        "clone/model.safetensors",
        "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 300000\n",
    );
    let refused = env.run(&["import", "hf", "clone"]);
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("is a Git LFS pointer"), "{said}");
    assert!(said.contains("git lfs pull"), "{said}");
}

#[test]
fn a_version_pulled_into_a_cache_imports_back_as_the_same_tree() {
    let env = orig_in_a_cache();
    let imported = json(&env.ok(&[
        "import",
        "hf",
        "hub/models--acme--orig",
        "--model",
        "back",
        "--json",
    ]));
    let original = json(&env.ok(&["show", "orig@1", "--json"]));
    assert_eq!(imported["tree"], original["tree"]);
}

#[test]
fn what_cannot_be_imported_is_said() {
    let env = TestEnv::with_registry();
    env.write("file.txt", "x");
    let run = env.run(&["import", "hf", "file.txt"]);
    assert_eq!(run.status.code(), Some(2));
    let run = env.run(&["import", "hf", "nowhere"]);
    assert_eq!(run.status.code(), Some(1));
    env.write("Bad Name/config.json", "{}");
    let run = env.run(&["import", "hf", "Bad Name"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("--model"));
    env.ok(&["import", "hf", "Bad Name", "--model", "fine"]);
}

#[test]
fn a_snapshot_link_leading_out_of_the_cache_is_refused() {
    let env = orig_in_a_cache();
    env.write("secret.txt", "hunter2");
    let snapshot = fs::read_dir(env.path("hub/models--acme--orig/snapshots"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    fs::remove_file(snapshot.join("config.json")).unwrap();
    std::os::unix::fs::symlink(env.path("secret.txt"), snapshot.join("config.json")).unwrap();
    let run = env.run(&[
        "import",
        "hf",
        "hub/models--acme--orig",
        "--model",
        "stolen",
    ]);
    assert_eq!(run.status.code(), Some(1));
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(said.contains("config.json"), "{said}");
    assert!(
        env.run(&["show", "stolen@1"]).status.code() != Some(0),
        "nothing imported"
    );
}

#[test]
fn each_revision_is_imported_once_whatever_the_order_and_the_form() {
    let env = TestEnv::with_registry();
    model_files(&env, "m");
    env.ok(&["push", "m", "--model", "orig"]);
    env.write(
        "m/config.json",
        "{\"model_type\": \"gpt2\", \"n_layer\": 4}\n",
    );
    env.ok(&["push", "m", "--model", "orig"]);
    let to_cache = |version: &str, branch: &str| {
        env.ok(&[
            "pull",
            version,
            "--layout",
            "hf-cache",
            "--to",
            "hub",
            "--repo-id",
            "acme/two",
            "--branch",
            branch,
        ]);
    };
    to_cache("orig@1", "v1");
    to_cache("orig@2", "main");
    for args in [
        &["import", "hf", "hub/models--acme--two"][..],
        &["import", "hf", "hub/models--acme--two", "--revision", "v1"][..],
        &["import", "hf", "hub/models--acme--two"][..],
        &["import", "hf", "hub/models--acme--two", "--revision", "v1"][..],
    ] {
        env.ok(args);
    }
    let listed = json(&env.ok(&["ls", "two", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    // The repo id alone finds the entry in the user's cache.
    let hub = env.path("hub").display().to_string();
    let out = env.run_with(
        &["import", "hf", "acme/two", "--json"],
        &[("HF_HUB_CACHE", &hub)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json(&String::from_utf8_lossy(&out.stdout))["created"],
        false
    );
    let missing = env.run_with(&["import", "hf", "acme/none"], &[("HF_HUB_CACHE", &hub)]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("hf download acme/none"));
}

#[test]
fn a_folder_hf_download_wrote_leaves_its_bookkeeping_out_and_keeps_its_commit() {
    let env = TestEnv::with_registry();
    model_files(&env, "local");
    env.write(
        "local/.cache/huggingface/download/config.json.metadata",
        format!("{COMMIT}\n\"etag\"\n1796618851.0\n"),
    );
    env.write("local/.cache/huggingface/.gitignore", "*\n");
    let imported = json(&env.ok(&["import", "hf", "local", "--repo-id", "acme/local", "--json"]));
    assert_eq!(imported["files"], 3, "{imported}");
    assert_eq!(imported["origin"]["revision"], COMMIT);
    let run = run_of(&env, "local@1");
    assert!(
        run.get("environment").is_none(),
        "this machine made none of it: {run}"
    );
}
