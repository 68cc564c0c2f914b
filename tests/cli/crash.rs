//! `kill -9` at every named crash point (`MREG_CRASH_AT`): afterwards fsck passes, what
//! was there pulls byte for byte, the interrupted command runs again, the next stage
//! move goes through without anyone deleting a lock, and what the killed process left
//! in `tmp/` is gone once a later command writes.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use crate::common::{TestEnv, snapshot_files};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A registry with `m@1` pushed and promoted to staging, and the folder `v2` ready to
/// be pushed.
fn registry() -> TestEnv {
    let env = TestEnv::with_registry();
    add_stages(&env.registry());
    env.fixture("tiny-v1", "v1");
    env.fixture("tiny-v2", "v2");
    env.ok(&["push", "v1", "--model", "m"]);
    env.ok(&["promote", "m@1", "staging"]);
    env
}

/// Returns [`registry`] synced to a folder remote with the same stages, and its URL.
fn registry_with_a_share() -> (TestEnv, String) {
    let a = registry();
    let share = a.root().join("share").display().to_string();
    a.ok(&["remote", "add", "share", &share]);
    add_stages(&a.root().join("share/.mreg"));
    a.ok(&["sync"]);
    (a, share)
}

/// Adds the stages the checks after a kill move a version to.
fn add_stages(registry: &std::path::Path) {
    let config = registry.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}\n[stages.canary]\n\n[stages.canary-two]\n"),
    )
    .unwrap();
}

/// Runs `args` in `env` (with `--registry reg` when given) killed at `point`, and
/// checks everything a user relies on afterwards. `m@staging` (the `v1` folder) must
/// pull whole before the command runs again, or, for a registry that was only getting
/// it, after.
fn killed_at(env: &TestEnv, registry: Option<&str>, point: &str, args: &[&str]) {
    let with = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = registry
            .map(|r| vec!["--registry".to_owned(), r.to_owned()])
            .unwrap_or_default();
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all
    };
    let run = |args: &[&str]| {
        let all = with(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        env.run(&refs)
    };
    let full = with(args);
    let refs: Vec<&str> = full.iter().map(String::as_str).collect();
    let out = env.run_with(&refs, &[("MREG_CRASH_AT", point)]);
    assert_eq!(
        out.status.signal(),
        Some(9),
        "{point}: the command was not killed there: {:?} {}",
        out.status,
        stderr(&out)
    );

    let fsck = run(&["fsck"]);
    assert_eq!(
        fsck.status.code(),
        Some(0),
        "{point}: fsck after the kill: {}{}",
        stdout(&fsck),
        stderr(&fsck)
    );
    let pulls_whole = |when: &str| {
        let pulled = env.path(&format!("check-{point}-{when}"));
        let pulled_arg = pulled.display().to_string();
        let out = run(&["pull", "m@staging", "--to", &pulled_arg]);
        assert_eq!(out.status.code(), Some(0), "{point}: {}", stderr(&out));
        assert_eq!(
            snapshot_files(&pulled),
            snapshot_files(&env.path("v1")),
            "{point}: m@staging no longer pulls as it was pushed"
        );
    };
    let had_it = run(&["show", "m@staging"]).status.success();
    if had_it {
        pulls_whole("before");
    }

    let again = run(args);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{point}: running it again: {}",
        stderr(&again)
    );
    pulls_whole("after");
    let next = run(&["promote", "m@1", "canary", "--wait", "1"]);
    assert_eq!(
        next.status.code(),
        Some(0),
        "{point}: the next promotion: {}",
        stderr(&next)
    );

    // What the killed process left is removed by a later writer once it is clearly
    // abandoned (a moment after it was made).
    std::thread::sleep(Duration::from_millis(2100));
    let out = run(&["promote", "m@1", "canary-two"]);
    assert_eq!(out.status.code(), Some(0), "{point}: {}", stderr(&out));
    let fsck = run(&["fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{point}: {}", stderr(&fsck));
    assert!(
        !stderr(&fsck).contains("left by interrupted commands"),
        "{point}: leftovers stay: {}",
        stderr(&fsck)
    );
}

#[test]
fn a_push_killed_at_any_point_leaves_a_registry_that_works() {
    for point in [
        "objects-staged",
        "objects-published",
        "run-staged",
        "version-written",
    ] {
        let env = registry();
        killed_at(&env, None, point, &["push", "v2", "--model", "m"]);
        let shown = env.ok(&["show", "m@latest", "--json"]);
        let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
        let runs = env.ok(&["runs", "--json"]);
        assert!(
            shown["version"].as_u64().unwrap() >= 2,
            "{point}: {shown} {runs}"
        );
        let out = env.path("latest");
        env.ok(&["pull", "m@latest", "--to", &out.display().to_string()]);
        assert_eq!(snapshot_files(&out), snapshot_files(&env.path("v2")));
    }
}

#[test]
fn a_promotion_killed_holding_the_lock_leaves_nothing_a_person_must_remove() {
    for point in ["state-written", "head-swapped"] {
        let env = registry();
        killed_at(&env, None, point, &["promote", "m@1", "production"]);
        let shown = env.ok(&["show", "m@production", "--json"]);
        let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(shown["version"], 1, "{point}: {shown}");
        assert!(!env.registry().join("models/m/HEAD.lock").exists());
    }
}

#[test]
fn a_fetch_killed_after_its_download_resumes_and_completes() {
    let (_a, share) = registry_with_a_share();
    let b = TestEnv::new();
    b.ok(&["init", "reg"]);
    add_stages(&b.path("reg/.mreg"));
    b.ok(&["--registry", "reg", "remote", "add", "share", &share]);
    // `killed_at` checks v1 files in the environment it is given.
    b.fixture("tiny-v1", "v1");
    killed_at(&b, Some("reg"), "fetch-downloaded", &["sync"]);
}

#[test]
fn a_pull_killed_before_its_swap_leaves_the_target_whole_and_its_folder_is_reclaimed() {
    let env = registry();
    env.ok(&["push", "v2", "--model", "m"]);
    env.ok(&["pull", "m@2", "--to", "serve"]);
    killed_at(
        &env,
        None,
        "pull-written",
        &["pull", "m@1", "--to", "serve", "--force"],
    );
    assert_eq!(
        snapshot_files(&env.path("serve")),
        snapshot_files(&env.path("v1"))
    );
    // A later pull to the same target removed the folder the killed one was building.
    env.ok(&["pull", "m@2", "--to", "serve", "--force"]);
    let beside: Vec<String> = std::fs::read_dir(env.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".serve.mreg-"))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
}

#[test]
fn a_clone_killed_at_any_point_is_finished_by_running_it_again() {
    let (a, share) = registry_with_a_share();
    for point in ["clone-made", "fetch-downloaded"] {
        let b = TestEnv::new();
        let out = b.run_with(&["clone", &share, "reg"], &[("MREG_CRASH_AT", point)]);
        assert_eq!(out.status.signal(), Some(9), "{point}: {}", stderr(&out));
        let again = b.run(&["clone", &share, "reg"]);
        assert_eq!(again.status.code(), Some(0), "{point}: {}", stderr(&again));
        b.ok(&["--registry", "reg", "pull", "m@staging", "--to", "serve"]);
        assert_eq!(
            snapshot_files(&b.path("serve")),
            snapshot_files(&a.path("v1")),
            "{point}"
        );
        let fsck = b.run(&["--registry", "reg", "fsck"]);
        assert_eq!(fsck.status.code(), Some(0), "{point}: {}", stdout(&fsck));
        // A clone only fetches: once it has everything, it says so, and no more.
        let third = b.run(&["clone", &share, "reg"]);
        assert!(
            stderr(&third).contains("holds everything of origin; nothing to fetch"),
            "{point}: {}",
            stderr(&third)
        );
    }
}

#[test]
fn clones_racing_into_one_folder_all_end_with_the_same_clone() {
    let (a, share) = registry_with_a_share();
    // Large enough that the clones fetch it at the same time.
    let big = crate::common::noise(32 << 20, 11);
    a.write("big/weights.bin", &big);
    a.ok(&["push", "big", "--model", "big"]);
    a.ok(&["sync"]);
    let b = TestEnv::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            b.cmd(&["clone", &share, "reg"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Clones waiting on each other would never end: each gets a minute.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for mut child in children {
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("a clone racing the others never ended");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    b.ok(&["--registry", "reg", "pull", "m@staging", "--to", "serve"]);
    assert_eq!(
        snapshot_files(&b.path("serve")),
        snapshot_files(&a.path("v1"))
    );
    b.ok(&["--registry", "reg", "pull", "big@1", "--to", "big"]);
    assert!(std::fs::read(b.path("big/weights.bin")).unwrap() == big);
    let fsck = b.run(&["--registry", "reg", "fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", stdout(&fsck));
    let left: Vec<_> = std::fs::read_dir(b.path("reg/.mreg/tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with("fetch-"))
        .collect();
    assert!(left.is_empty(), "downloads left behind: {left:?}");
}

#[test]
fn a_sync_killed_before_its_batch_of_objects_is_linked_leaves_the_remote_whole() {
    let (a, share) = registry_with_a_share();
    a.ok(&["push", "v2", "--model", "m"]);
    let out = a.run_with(&["sync"], &[("MREG_CRASH_AT", "upload-staged")]);
    assert_eq!(out.status.signal(), Some(9), "{}", stderr(&out));
    // Nothing half-written under the remote's objects/: its fsck passes, and the next
    // sync finishes what the killed one began.
    a.ok(&["--registry", &share, "fsck"]);
    a.ok(&["sync"]);
    a.ok(&["--registry", &share, "fsck"]);
    let b = TestEnv::new();
    b.ok(&["clone", &share, "b"]);
    let b_reg = b.path("b/.mreg").display().to_string();
    b.ok(&["--registry", &b_reg, "pull", "m@2", "--to", "two"]);
    assert_eq!(
        snapshot_files(&b.path("two")),
        snapshot_files(&a.path("v2"))
    );
}

#[test]
fn a_push_killed_between_the_parts_of_a_large_file_and_its_list_loses_nothing() {
    let env = TestEnv::new();
    env.ok(&["init"]);
    let weights = crate::common::noise(40 << 20, 11);
    env.write("big/weights.bin", &weights);
    let out = env.run_with(
        &["push", "big", "--model", "big"],
        &[("MREG_CRASH_AT", "parts-published")],
    );
    assert_eq!(out.status.signal(), Some(9), "{}", stderr(&out));
    // The parts are there, the list is not, no version names them: fsck passes, and a
    // push again stores the list and pulls back the same bytes.
    env.ok(&["fsck"]);
    env.ok(&["push", "big", "--model", "big"]);
    env.ok(&["pull", "big@1", "--to", "out"]);
    assert!(std::fs::read(env.path("out/weights.bin")).unwrap() == weights);
    env.ok(&["fsck"]);
}
