//! What a run records of its Python environment and lock files: the installed packages
//! and the lock files' content, stored once in the registry, shown, diffed, kept by gc
//! and carried by sync.

use std::path::Path;

use crate::common::TestEnv;
use insta::assert_snapshot;
use serde_json::Value;

/// Makes a venv at `work/NAME` holding `packages` (name, version).
fn venv(env: &TestEnv, name: &str, packages: &[(&str, &str)]) -> String {
    let prefix = env.path(name);
    let site = prefix.join("lib/python3.11/site-packages");
    for (package, version) in packages {
        std::fs::create_dir_all(site.join(format!("{package}-{version}.dist-info"))).unwrap();
        std::fs::create_dir_all(site.join(package)).unwrap();
    }
    std::fs::write(
        prefix.join("pyvenv.cfg"),
        "home = /usr/bin\nversion = 3.11.9\n",
    )
    .unwrap();
    prefix.display().to_string()
}

/// Records a run of `true` in the venv at `prefix`; returns its id.
fn run_in(env: &TestEnv, prefix: &str) -> String {
    let out = env
        .cmd(&["run", "--json", "--", "true"])
        .env_remove("MREG_PYTHON")
        .env("VIRTUAL_ENV", prefix)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ended: Value = serde_json::from_slice(&out.stdout).unwrap();
    ended["run"].as_str().unwrap().to_owned()
}

fn objects(registry: &Path) -> usize {
    walkdir::WalkDir::new(registry.join("objects"))
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_type().is_file())
        .count()
}

#[test]
fn a_run_records_its_packages_and_lock_files_and_diff_compares_them() {
    let env = TestEnv::with_registry();
    env.write("requirements.txt", "numpy==2.0.1\ntorch==2.3.0\n");
    let old_env = venv(
        &env,
        "venv-a",
        &[("numpy", "2.0.1"), ("torch", "2.3.0"), ("six", "1.16.0")],
    );
    let first = run_in(&env, &old_env);
    // The same environment again: nothing more is stored.
    let stored = objects(&env.registry());
    assert_eq!(stored, 2, "the lock file and the package list");
    run_in(&env, &old_env);
    assert_eq!(objects(&env.registry()), stored);

    let shown: Value = serde_json::from_str(&env.ok(&["show", &first, "--json"])).unwrap();
    let python = &shown["environment"]["python"];
    assert_eq!(python["kind"], "venv");
    assert_eq!(python["version"], "3.11.9");
    assert_eq!(python["packages"], 3);
    assert_eq!(python["package_list"]["torch"], "2.3.0", "{python}");
    assert_eq!(shown["environment"]["lockfiles"][0]["stored"], true);
    let text = env.ok(&["show", &first]);
    assert!(
        text.contains(
            "# Python packages (3):\n#   numpy==2.0.1\n#   six==1.16.0\n#   torch==2.3.0\n"
        ),
        "{text}"
    );
    assert_eq!(
        env.ok(&["show", &first, "--lockfile", "requirements.txt"]),
        "numpy==2.0.1\ntorch==2.3.0\n"
    );

    env.write(
        "requirements.txt",
        "numpy==2.1.0\ntorch==2.3.0\npandas==2.2.0\n",
    );
    let new_env = venv(
        &env,
        "venv-b",
        &[("numpy", "2.1.0"), ("torch", "2.3.0"), ("pandas", "2.2.0")],
    );
    let second = run_in(&env, &new_env);
    assert_snapshot!(env.snap(&["diff", &first[..8], &second[..8], "--only", "packages"]), @r#"
    exit: 0
    --- stdout
    diff ef454d5b → d701faf7
    old  run ef454d5b  experiment default  started 2026-01-01T00:01:00.000Z by tester@ci
    new  run d701faf7  experiment default  started 2026-01-01T00:06:00.000Z by tester@ci

    packages: 1 changed, 1 added, 1 removed
         PACKAGE  OLD     NEW
      ~  numpy    2.0.1   2.1.0
      +  pandas           2.2.0
      -  six      1.16.0
    --- stderr
    "#);
    // The first run's lock file is still what it was.
    assert_eq!(
        env.ok(&["show", &first, "--lockfile", "requirements.txt"]),
        "numpy==2.0.1\ntorch==2.3.0\n"
    );
}

#[test]
fn gc_keeps_and_sync_carries_what_a_run_recorded_of_its_environment() {
    let env = TestEnv::with_registry();
    env.write("uv.lock", "version = 1\n");
    let prefix = venv(&env, "venv", &[("numpy", "2.0.1")]);
    let run = run_in(&env, &prefix);
    env.ok(&["gc"]);
    assert_eq!(
        env.ok(&["show", &run, "--lockfile", "uv.lock"]),
        "version = 1\n"
    );
    let share = env.root().join("share").display().to_string();
    env.ok(&["remote", "add", "share", &share]);
    env.ok(&["sync"]);
    let other = TestEnv::new();
    other.ok(&["clone", &share, "."]);
    assert_eq!(
        other.ok(&["show", &run, "--lockfile", "uv.lock"]),
        "version = 1\n"
    );
    let shown: Value = serde_json::from_str(&other.ok(&["show", &run, "--json"])).unwrap();
    assert_eq!(
        shown["environment"]["python"]["package_list"]["numpy"],
        "2.0.1"
    );
    other.ok(&["fsck"]);
}

#[test]
fn a_lock_file_not_recorded_or_not_stored_gets_a_sentence() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    env.ok(&["push", "out", "--model", "churn"]);
    assert_snapshot!(env.snap(&["show", "churn@1", "--lockfile", "uv.lock"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: run eb16012c5aff4a1a recorded no lock file "uv.lock"
    hint: it recorded none: lock files are looked for at the top of the run's git work tree
    "#);
    let out = env.run(&["show", "churn@1", "--lockfile", "uv.lock", "--json"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_run_without_a_package_list_is_named_not_diffed_as_all_added() {
    let env = TestEnv::with_registry();
    let bare = env.ok(&["run", "--json", "--", "true"]);
    let bare: Value = serde_json::from_str(&bare).unwrap();
    let prefix = venv(&env, "venv", &[("numpy", "2.0.1")]);
    let full = run_in(&env, &prefix);
    let out = env.snap(&[
        "diff",
        &bare["run"].as_str().unwrap()[..8],
        &full[..8],
        "--only",
        "packages",
    ]);
    assert!(!out.contains("added"), "{out}");
    assert!(out.contains("recorded no package list"), "{out}");
}

#[test]
fn mreg_python_may_name_the_interpreter_a_command_runs() {
    let env = TestEnv::with_registry();
    let prefix = venv(&env, ".venv", &[("torch", "2.3.0")]);
    std::fs::create_dir_all(env.path(".venv/bin")).unwrap();
    std::fs::write(env.path(".venv/bin/python3"), "").unwrap();
    let interpreter = format!("{prefix}/bin/python3");
    let out = env.run_with(
        &["run", "--json", "--", "true"],
        &[("MREG_PYTHON", &interpreter)],
    );
    let ended: Value = serde_json::from_slice(&out.stdout).unwrap();
    let shown: Value =
        serde_json::from_str(&env.ok(&["show", ended["run"].as_str().unwrap(), "--json"])).unwrap();
    assert_eq!(
        shown["environment"]["python"]["package_list"]["torch"], "2.3.0",
        "{shown}"
    );
}

#[test]
fn lock_files_outside_the_folder_or_holding_credentials_never_reach_the_registry() {
    let env = TestEnv::with_registry();
    std::fs::write(
        env.root().join("secret"),
        "AWS_SECRET_ACCESS_KEY=wJalr-SUPERSECRET\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("../secret", env.path("requirements-env.txt")).unwrap();
    env.write(
        "requirements.txt",
        "--extra-index-url https://__token__:glpat-SUPERSECRET@gitlab.example.com/simple\nnumpy==2.0.1\n",
    );
    let out = env.run(&["run", "--json", "--", "true"]);
    let ended: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = ended["run"].as_str().unwrap();
    let shown: Value = serde_json::from_str(&env.ok(&["show", run, "--json"])).unwrap();
    let locks: Vec<&str> = shown["environment"]["lockfiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["path"].as_str().unwrap())
        .collect();
    assert_eq!(locks, ["requirements.txt"]);
    let stored = env.ok(&["show", run, "--lockfile", "requirements.txt"]);
    assert!(
        stored.contains("gitlab.example.com/simple") && stored.contains("numpy==2.0.1"),
        "{stored}"
    );
    for entry in walkdir::WalkDir::new(env.registry()) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("SUPERSECRET"), "{}", entry.path().display());
        }
    }
}

#[test]
fn a_missing_environment_object_is_an_fsck_problem_and_blocks_only_its_run() {
    let env = TestEnv::with_registry();
    env.write("uv.lock", "version = 1\n");
    let prefix = venv(&env, "venv", &[("numpy", "2.0.1")]);
    let run = run_in(&env, &prefix);
    let shown: Value = serde_json::from_str(&env.ok(&["show", &run, "--json"])).unwrap();
    let object = shown["environment"]["python"]["packages_object"]
        .as_str()
        .unwrap()
        .to_owned();
    for entry in std::fs::read_dir(env.registry().join("objects").join(&object[..2])).unwrap() {
        let entry = entry.unwrap();
        if entry
            .file_name()
            .to_str()
            .unwrap()
            .starts_with(&object[2..])
        {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    let fsck = env.snap(&["fsck"]);
    assert!(fsck.starts_with("exit: 1"), "{fsck}");
    assert!(
        fsck.contains(&format!(
            "package list: object {} is missing",
            &object[..16]
        )),
        "{fsck}"
    );
    // A sync sends everything else, and nothing of the run.
    env.fixture("tiny-v1", "out");
    let before: Value = serde_json::from_str(&env.ok(&["runs", "--json"])).unwrap();
    assert_eq!(before.as_array().unwrap().len(), 1);
    env.ok(&["push", "out", "--model", "churn"]);
    let share = env.root().join("share");
    env.ok(&["remote", "add", "share", &share.display().to_string()]);
    let out = env.run(&["sync"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("refused runs/{run}/run.toml")),
        "{stderr}"
    );
    assert!(share.join(".mreg/models/churn/versions/1.toml").is_file());
    assert!(!share.join(".mreg/runs").join(&run).exists());
}

#[test]
fn an_unknown_key_in_a_run_environment_is_refused_not_ignored() {
    let env = TestEnv::with_registry();
    env.write("requirements.txt", "torch==2.3.0\n");
    let out = env.run(&["run", "--json", "--", "true"]);
    let ended: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = ended["run"].as_str().unwrap();
    let record = env.registry().join("runs").join(run).join("run.toml");
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(
        &record,
        text.replace("[[environment.lockfiles]]", "[[environment.lockfile]]"),
    )
    .unwrap();
    // gc must not free the lock file's object on a record it cannot read whole.
    let out = env.run(&["gc"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.run(&["fsck"]).status.code(), Some(1));
    std::fs::write(&record, text).unwrap();
    assert_eq!(
        env.ok(&["show", run, "--lockfile", "requirements.txt"]),
        "torch==2.3.0\n"
    );
}
