//! Remotes: a bucket used directly, sync with buckets and folders, clone, conflicts,
//! and the checks that protect a registry from a remote it cannot trust. Every S3 test
//! runs against moto on 127.0.0.1 (tests/common/s3.rs), each in its own bucket.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{TestEnv, listing, s3, snapshot_files};

/// Returns a registry holding `tiny@1` (the tiny-v1 fixture), synced to a folder remote
/// named `share`, and that folder's path.
fn synced_to_a_folder() -> (TestEnv, String) {
    let a = TestEnv::new();
    a.ok(&["init"]);
    a.fixture("tiny-v1", "v1");
    a.ok(&["push", "v1", "--model", "tiny"]);
    let share = a.root().join("share").display().to_string();
    a.ok(&["remote", "add", "share", &share]);
    a.ok(&["sync"]);
    (a, share)
}

/// Returns a new, empty bucket and the URL of a registry under its `reg` prefix.
fn new_bucket() -> (String, String) {
    let bucket = s3::bucket();
    let url = format!("s3://{bucket}/reg");
    (bucket, url)
}

/// Returns an environment pointed at the test S3 server.
fn s3_env() -> TestEnv {
    TestEnv::on_s3()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn a_bucket_is_used_directly_by_every_command() {
    let (bucket, url) = new_bucket();
    let a = s3_env();
    a.ok(&["init", &url]);
    a.fixture("tiny-v1", "v1");
    a.fixture("tiny-v2", "v2");
    let first = json(&a.ok(&[
        "push",
        "v1",
        "--model",
        "tiny",
        "--registry",
        &url,
        "--json",
    ]));
    assert!(first["sent_bytes"].as_u64().unwrap() > 0, "{first}");
    a.ok(&["push", "v2", "--model", "tiny", "--registry", &url]);
    a.ok(&["promote", "tiny@1", "staging", "--registry", &url]);
    // Another machine: its own cache, the same bucket.
    let b = s3_env();
    let ls = b.ok(&["ls", "--registry", &url, "--json"]);
    let ls = json(&ls);
    assert_eq!(ls[0]["model"], "tiny", "{ls}");
    assert_eq!(ls[0]["latest"], 2, "{ls}");
    assert_eq!(ls[0]["stages"]["staging"], 1, "{ls}");
    b.ok(&["promote", "tiny@2", "staging", "--registry", &url]);
    let history = a.ok(&["history", "tiny", "--registry", &url, "--json"]);
    let history = json(&history);
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
    assert_eq!(history[0]["version"], 2);
    b.ok(&["pull", "tiny@staging", "--to", "out", "--registry", &url]);
    assert_eq!(
        listing(&b.path("out")),
        listing(&b.fixture("tiny-v2", "expected"))
    );
    let runs = json(&b.ok(&["runs", "--registry", &url, "--json"]));
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs}");
    let diff = b.ok(&["diff", "tiny@1", "tiny@2", "--registry", &url, "--json"]);
    assert!(json(&diff)["differs"].as_bool().unwrap());
    // Records on the bucket, in the layout of a registry folder.
    let keys = s3::keys(&bucket, "reg/models/tiny/");
    assert!(
        keys.contains(&"reg/models/tiny/versions/2.toml".to_owned()),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"reg/models/tiny/HEAD".to_owned()),
        "{keys:?}"
    );
}

#[test]
fn a_bucket_without_a_registry_says_how_to_make_one() {
    let bucket = s3::bucket();
    let env = s3_env();
    let out = env.snap(&["ls", "--registry", &format!("s3://{bucket}/none")]);
    assert!(out.starts_with("exit: 1\n"), "{out}");
    assert!(out.contains("no mreg registry at s3://"), "{out}");
    assert!(out.contains("mreg init s3://"), "{out}");
}

#[test]
fn sync_sends_and_fetches_both_ways_and_clone_pulls_identical_bytes() {
    let bucket = s3::bucket();
    let url = format!("s3://{bucket}/team");
    let a = s3_env();
    a.ok(&["init"]);
    a.fixture("tiny-v1", "v1");
    a.ok(&["push", "v1", "--model", "tiny"]);
    a.ok(&["promote", "tiny@1", "staging"]);
    let added = a.snap(&["remote", "add", "team", &url]);
    assert!(
        added.contains("team enforces conditional writes"),
        "{added}"
    );
    let sent = json(&a.ok(&["sync", "--json"]));
    assert_eq!(sent["sent"]["versions"], 1, "{sent}");
    assert_eq!(sent["sent"]["stages"], 1, "{sent}");
    assert!(sent["sent"]["objects"].as_u64().unwrap() >= 4, "{sent}");

    // A second machine clones, pushes and promotes, and syncs back.
    let b = s3_env();
    b.ok(&["clone", &url, "reg"]);
    b.ok(&["--registry", "reg", "pull", "tiny@staging", "--to", "out"]);
    assert_eq!(
        listing(&b.path("out")),
        listing(&b.fixture("tiny-v1", "expected"))
    );
    b.fixture("tiny-v2", "v2");
    b.ok(&["--registry", "reg", "push", "v2", "--model", "tiny"]);
    b.ok(&["--registry", "reg", "promote", "tiny@2", "staging"]);
    let sent = json(&b.ok(&["--registry", "reg", "sync", "--json"]));
    assert_eq!(sent["sent"]["versions"], 1, "{sent}");

    let fetched = json(&a.ok(&["sync", "--json"]));
    assert_eq!(fetched["fetched"]["versions"], 1, "{fetched}");
    assert_eq!(fetched["fetched"]["stages"], 1, "{fetched}");
    let ls = json(&a.ok(&["ls", "--json"]));
    assert_eq!(ls[0]["stages"]["staging"], 2, "{ls}");
    a.ok(&["fsck"]);

    // Nothing new: nothing moves, and the objects are not listed again.
    let quiet = a.snap(&["sync"]);
    assert!(quiet.contains("hold the same; nothing to do"), "{quiet}");
}

#[test]
fn a_corrupted_object_on_the_bucket_is_refused_on_pull() {
    let (bucket, url) = new_bucket();
    let a = s3_env();
    a.ok(&["init", &url]);
    a.fixture("tiny-v1", "v1");
    a.ok(&["push", "v1", "--model", "tiny", "--registry", &url]);
    let objects = s3::keys(&bucket, "reg/objects/");
    let raw = objects
        .iter()
        .find(|k| std::path::Path::new(k).extension().is_none())
        .expect("a raw object");
    s3::put(&bucket, raw, b"not the bytes it was named for");
    let b = s3_env();
    let out = b.snap(&["pull", "tiny@1", "--to", "out", "--registry", &url]);
    assert!(out.starts_with("exit: 1\n"), "{out}");
    // A tree is refused as corrupt, a file as larger than its tree declares.
    assert!(
        out.contains("is corrupt") || out.contains("more than the"),
        "{out}"
    );
    assert!(out.contains("it was not used"), "{out}");
    assert!(!b.path("out").exists());
}

#[test]
fn concurrent_pushes_and_promotions_on_a_bucket_never_share_a_number() {
    let (_, url) = new_bucket();
    let setup = s3_env();
    setup.ok(&["init", &url]);
    let machines: Vec<TestEnv> = (0..4).map(|_| s3_env()).collect();
    for (i, m) in machines.iter().enumerate() {
        m.write(
            &format!("model/weights-{i}.bin"),
            format!("weights of machine {i}"),
        );
    }
    let pushes: Vec<_> = machines
        .iter()
        .map(|m| {
            let mut cmd = m.cmd(&[
                "push",
                "model",
                "--model",
                "churn",
                "--registry",
                &url,
                "--json",
            ]);
            cmd.env_remove("MREG_NOW");
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut numbers: Vec<u64> = pushes
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            json(&String::from_utf8(out.stdout).unwrap())["version"]
                .as_u64()
                .unwrap()
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3, 4]);

    let promotions: Vec<_> = machines
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut cmd = m.cmd(&[
                "promote",
                &format!("churn@{}", i + 1),
                "staging",
                "--allow-downgrade",
                "--registry",
                &url,
            ]);
            cmd.env_remove("MREG_NOW");
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in promotions {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let history = json(&setup.ok(&["history", "churn", "--registry", &url, "--json"]));
    let numbers: Vec<u64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["number"].as_u64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        [4, 3, 2, 1],
        "every promotion is one link of the chain"
    );
}

#[test]
fn a_sync_killed_midway_resumes_without_resending_what_arrived() {
    let (bucket, url) = new_bucket();
    let a = s3_env();
    a.ok(&["init"]);
    // Format 2: each object is sent on its own (format 3 sends small ones in packs).
    let config = a.registry().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("format = 3", "format = 2")).unwrap();
    for i in 0..300 {
        a.write(
            &format!("big/part-{i:03}.bin"),
            format!("{i} ").repeat(2000 + i),
        );
    }
    a.ok(&["push", "big", "--model", "big"]);
    a.ok(&["remote", "add", "team", &url]);
    let mut child = a
        .cmd(&["sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while s3::keys(&bucket, "reg/objects/").len() < 20 {
        assert!(Instant::now() < deadline, "the sync sent nothing");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let arrived = s3::keys(&bucket, "reg/objects/").len();
    assert!(
        s3::keys(&bucket, "reg/models/").is_empty(),
        "no version is published before all its objects"
    );
    let resumed = json(&a.ok(&["sync", "--json"]));
    let sent = resumed["sent"]["objects"].as_u64().unwrap() as usize;
    let total = s3::keys(&bucket, "reg/objects/").len();
    assert_eq!(total, 301, "300 files and their folder's tree");
    assert!(
        sent <= total - arrived + IN_FLIGHT,
        "sent {sent} of {total} though {arrived} had arrived"
    );
    let b = s3_env();
    b.ok(&["clone", &url, "reg"]);
    b.ok(&["--registry", "reg", "pull", "big@1", "--to", "out"]);
    assert_eq!(
        snapshot_files(&b.path("out")),
        snapshot_files(&a.path("big"))
    );
}

/// At most this many objects were in flight when the sync was killed (and may be sent
/// again): the parallel transfers.
pub const IN_FLIGHT: usize = 8;

#[test]
fn a_remote_that_ignores_conditional_writes_is_caught_and_gets_no_stage_moves() {
    let (bucket, url) = new_bucket();
    let a = TestEnv::new();
    a.use_s3(s3::server().proxy_port);
    a.ok(&["init"]);
    a.fixture("tiny-v1", "v1");
    a.ok(&["push", "v1", "--model", "tiny"]);
    a.ok(&["promote", "tiny@1", "staging"]);
    let added = a.snap(&["remote", "add", "lax", &url]);
    assert!(added.starts_with("exit: 0\n"), "{added}");
    assert!(
        added.contains("lax does not enforce conditional writes"),
        "{added}"
    );
    assert!(
        added.contains("a second create-only write of one key succeeded"),
        "{added}"
    );
    let check = a.snap(&["remote", "check", "lax"]);
    assert!(check.starts_with("exit: 1\n"), "{check}");
    let list = a.ok(&["remote", "list"]);
    assert!(list.contains("not enforced: stages stay"), "{list}");
    let sync = a.snap(&["sync"]);
    assert!(sync.starts_with("exit: 4\n"), "{sync}");
    assert!(sync.contains("mreg does not move stages there"), "{sync}");
    assert!(
        !s3::keys(&bucket, "reg/models/tiny/").contains(&"reg/models/tiny/HEAD".to_owned()),
        "no stage pointer was written"
    );
    // The versions went: only the stage move waits.
    assert!(
        s3::keys(&bucket, "reg/models/tiny/")
            .contains(&"reg/models/tiny/versions/1.toml".to_owned())
    );
    // A user who vouches for a single writer gets stage moves.
    a.ok(&["remote", "remove", "lax"]);
    a.ok(&["remote", "add", "lax", &url, "--single-writer"]);
    let sync = a.snap(&["sync"]);
    assert!(sync.starts_with("exit: 0\n"), "{sync}");
}

/// Returns two local registries that each pushed a different `tiny@1` (from `m`) and
/// have the bucket at `url` as their remote `team`.
fn two_registries_with_their_own_tiny_1(url: &str) -> (TestEnv, TestEnv) {
    let a = s3_env();
    let b = s3_env();
    for (env, fixture) in [(&a, "tiny-v1"), (&b, "tiny-v2")] {
        env.ok(&["init"]);
        env.fixture(fixture, "m");
        env.ok(&["push", "m", "--model", "tiny"]);
        env.ok(&["remote", "add", "team", url]);
    }
    (a, b)
}

#[test]
fn a_version_number_taken_differently_on_both_sides_is_a_conflict() {
    let (bucket, url) = new_bucket();
    let (a, b) = two_registries_with_their_own_tiny_1(&url);
    for env in [&a, &b] {
        env.ok(&["push", "m", "--model", "other-only-here"]);
    }
    a.ok(&["sync"]);
    let before = snapshot_files(&b.registry().join("models/tiny"));
    let out = b.snap(&["sync"]);
    assert!(out.starts_with("exit: 4\n"), "{out}");
    assert!(out.contains("tiny@1 differs"), "{out}");
    assert!(out.contains("version numbers are never reused"), "{out}");
    assert_eq!(snapshot_files(&b.registry().join("models/tiny")), before);
    // The model without a conflict synced all the same.
    let keys = s3::keys(&bucket, "reg/models/");
    assert!(
        keys.iter()
            .any(|k| k.starts_with("reg/models/other-only-here/")),
        "{keys:?}"
    );
}

#[test]
fn stages_moved_on_both_sides_are_a_conflict_until_one_side_is_taken() {
    let (_, url) = new_bucket();
    let a = s3_env();
    a.ok(&["init"]);
    a.fixture("tiny-v1", "v1");
    a.fixture("tiny-v2", "v2");
    a.ok(&["push", "v1", "--model", "tiny"]);
    a.ok(&["push", "v2", "--model", "tiny"]);
    a.ok(&["remote", "add", "team", &url]);
    a.ok(&["sync"]);
    let b = s3_env();
    b.ok(&["clone", &url, "reg"]);
    a.ok(&["promote", "tiny@1", "staging"]);
    a.ok(&["sync"]);
    b.ok(&["--registry", "reg", "promote", "tiny@2", "staging"]);
    let out = b.snap(&["--registry", "reg", "sync"]);
    assert!(out.starts_with("exit: 4\n"), "{out}");
    assert!(
        out.contains("error: conflict: the stages of tiny moved apart"),
        "{out}"
    );
    assert!(out.contains("--take-remote-stages tiny"), "{out}");
    b.ok(&["--registry", "reg", "sync", "--take-remote-stages", "tiny"]);
    let ls = json(&b.ok(&["--registry", "reg", "ls", "--json"]));
    assert_eq!(ls[0]["stages"]["staging"], 1, "{ls}");
}

#[test]
fn a_folder_remote_is_copied_never_linked_and_its_symlinks_are_not_followed() {
    let a = TestEnv::new();
    a.ok(&["init"]);
    a.fixture("tiny-v1", "v1");
    a.ok(&["push", "v1", "--model", "tiny"]);
    let share = a.root().join("share");
    let share_url = share.display().to_string();
    let added = a.snap(&["remote", "add", "share", &share_url]);
    assert!(
        added.contains("share enforces conditional writes"),
        "{added}"
    );
    a.ok(&["sync"]);
    assert!(share.join(".mreg/models/tiny/versions/1.toml").is_file());

    let b = TestEnv::new();
    b.ok(&["clone", &share_url, "reg"]);
    let objects = b.path("reg/.mreg/objects");
    for entry in walkdir::WalkDir::new(&objects) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            assert_eq!(
                entry.metadata().unwrap().nlink(),
                1,
                "{:?} is a hard link",
                entry.path()
            );
        }
    }
    // A symlink planted in the share, where a run should be, is refused by name, not
    // followed, and everything else is cloned.
    let c = TestEnv::new();
    let secret = c.write("secret.toml", "not for the registry");
    let runs = share.join(".mreg/runs");
    let run = fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir() && !p.is_symlink())
        .unwrap();
    let record = run.join("run.toml");
    fs::remove_file(&record).unwrap();
    std::os::unix::fs::symlink(&secret, &record).unwrap();
    let out = c.snap(&["clone", &share_url, "reg"]);
    assert!(out.starts_with("exit: 1\n"), "{}", out);
    let name = run.file_name().unwrap().to_string_lossy();
    assert!(
        out.contains(&format!("refused runs/{name}/run.toml on ")),
        "{out}"
    );
    assert!(out.contains("it is a symlink"), "{out}");
    assert!(!c.path(&format!("reg/.mreg/runs/{name}")).exists());
    for entry in walkdir::WalkDir::new(c.path("reg")) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let bytes = fs::read(entry.path()).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("not for the registry"),
                "{:?} holds the linked file",
                entry.path()
            );
        }
    }
}

#[test]
fn a_large_object_goes_in_parts_and_comes_back_byte_identical() {
    let (_, url) = new_bucket();
    let a = s3_env();
    a.ok(&["init", &url]);
    // 40 MiB that zstd cannot shrink: three parts of 16 MiB.
    let bytes = noise(40 << 20, 0x9e37_79b9_7f4a_7c15);
    a.write("big/weights.bin", &bytes);
    a.ok(&["push", "big", "--model", "big", "--registry", &url]);
    let journals: Vec<_> = walkdir::WalkDir::new(a.root().join("cache"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().to_string_lossy().contains("/uploads/"))
        .collect();
    assert!(
        journals.is_empty(),
        "a finished upload leaves no journal: {journals:?}"
    );
    let b = s3_env();
    b.ok(&["pull", "big@1", "--to", "out", "--registry", &url]);
    assert!(fs::read(b.path("out/weights.bin")).unwrap() == bytes);
}

#[test]
fn a_bucket_without_conditional_writes_takes_no_direct_push_unless_single_writer() {
    let (bucket, url) = new_bucket();
    let env = TestEnv::new();
    env.use_s3(s3::server().proxy_port);
    env.ok(&["init", &url]);
    env.fixture("tiny-v1", "v1");
    let out = env.snap(&["push", "v1", "--model", "tiny", "--registry", &url]);
    assert!(out.starts_with("exit: 1\n"), "{out}");
    assert!(out.contains("does not enforce conditional writes"), "{out}");
    assert!(out.contains("MREG_SINGLE_WRITER=1"), "{out}");
    assert!(
        s3::keys(&bucket, "reg/models/").is_empty(),
        "nothing was numbered"
    );
    env.set_var("MREG_SINGLE_WRITER", "1");
    env.ok(&["push", "v1", "--model", "tiny", "--registry", &url]);
    assert_eq!(s3::keys(&bucket, "reg/models/").len(), 1);
}

#[test]
fn sync_recheck_sends_again_an_object_lost_on_the_remote() {
    let (a, share) = synced_to_a_folder();
    let share = std::path::PathBuf::from(share);
    let lost = walkdir::WalkDir::new(share.join(".mreg/objects"))
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_type().is_file())
        .unwrap()
        .into_path();
    fs::remove_file(&lost).unwrap();
    let plain = a.snap(&["sync"]);
    assert!(plain.contains("nothing to do"), "{plain}");
    let recheck = json(&a.ok(&["sync", "--recheck", "--json"]));
    assert_eq!(recheck["sent"]["objects"], 1, "{recheck}");
    assert!(lost.is_file());
    let b = TestEnv::new();
    b.ok(&["clone", &share.display().to_string(), "reg"]);
}

#[test]
fn bad_bucket_urls_and_endpoints_are_usage_errors() {
    let env = s3_env();
    for args in [
        vec!["init", "s3:/team/reg"],
        vec!["ls", "--registry", "s3://te am/reg"],
        vec!["ls", "--registry", "s3://team//reg"],
    ] {
        let out = env.snap(&args);
        assert!(out.starts_with("exit: 2\n"), "{args:?}: {out}");
    }
    assert!(
        !env.path("s3:").exists(),
        "no local folder named after a typo"
    );
    env.set_var("AWS_ENDPOINT_URL", "notaurl");
    let out = env.snap(&["ls", "--registry", "s3://team/reg"]);
    assert!(out.starts_with("exit: 2\n"), "{out}");
    assert!(out.contains("is not an http:// or https:// URL"), "{out}");
}

#[test]
fn renumber_publishes_the_local_versions_under_new_numbers() {
    let (_, url) = new_bucket();
    let (a, b) = two_registries_with_their_own_tiny_1(&url);
    a.ok(&["sync"]);
    assert!(b.snap(&["sync"]).starts_with("exit: 4\n"));
    let out = json(&b.ok(&["sync", "--renumber", "tiny", "--json"]));
    assert_eq!(out["renumbered"][0]["from"], 1, "{out}");
    assert_eq!(out["renumbered"][0]["to"], 2, "{out}");
    assert!(out["conflicts"].as_array().unwrap().is_empty(), "{out}");
    // Both sides now agree: 1 is a's, 2 is b's, which remembers its old number.
    assert!(b.snap(&["sync"]).contains("nothing to do"));
    a.ok(&["sync"]);
    let mine = json(&b.ok(&["show", "tiny@2", "--json"]));
    assert_eq!(mine["renumbered_from"], 1, "{mine}");
    b.ok(&["pull", "tiny@2", "--to", "mine"]);
    assert_eq!(
        listing(&b.path("mine")),
        listing(&b.fixture("tiny-v2", "expected"))
    );
    a.ok(&["pull", "tiny@1", "--to", "theirs"]);
    assert_eq!(
        listing(&a.path("theirs")),
        listing(&a.fixture("tiny-v1", "expected"))
    );
    b.ok(&["fsck"]);
}

#[test]
fn pull_fetches_objects_the_registry_lacks_from_the_default_remote() {
    let (a, _) = synced_to_a_folder();
    // Objects lost here (a disk cleanup, say) come back from the remote on pull.
    fs::remove_dir_all(a.registry().join("objects")).unwrap();
    fs::create_dir(a.registry().join("objects")).unwrap();
    let out = a.snap(&["pull", "tiny@1", "--to", "out"]);
    assert!(out.starts_with("exit: 0\n"), "{out}");
    assert!(out.contains("of missing objects from share"), "{out}");
    assert_eq!(
        listing(&a.path("out")),
        listing(&a.fixture("tiny-v1", "expected"))
    );
    a.ok(&["fsck"]);
}

/// Returns `len` bytes that zstd cannot shrink, the same for the same seed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn an_upload_in_parts_killed_midway_resumes_from_its_journal() {
    let (bucket, url) = new_bucket();
    let a = s3_env();
    a.ok(&["init"]);
    // A registry of format 1 stores the file whole, so it goes to the bucket as one
    // object large enough to be uploaded in parts (format 2 would store it in parts of
    // its own, each small enough to go in one request).
    let config = a.registry().join("config.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, text.replace("format = 3", "format = 1")).unwrap();
    let bytes = noise(96 << 20, 7);
    a.write("big/weights.bin", &bytes);
    a.ok(&["push", "big", "--model", "big"]);
    a.ok(&["remote", "add", "team", &url]);
    let journals = a.registry().join("cache/remotes");
    let find_journal = || {
        walkdir::WalkDir::new(&journals)
            .into_iter()
            .filter_map(Result::ok)
            .find(|e| e.path().to_string_lossy().contains("/uploads/"))
            .and_then(|e| fs::read_to_string(e.path()).ok())
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
    };
    let sent_parts = |journal: &serde_json::Value| {
        journal["parts"]
            .as_array()
            .map_or(0, |parts| parts.iter().filter(|p| !p.is_null()).count())
    };
    let mut child = a
        .cmd(&["sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let journal = loop {
        if let Some(journal) = find_journal().filter(|j| sent_parts(j) >= 1) {
            break journal;
        }
        assert!(Instant::now() < deadline, "no part was recorded");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        sent_parts(&journal) < 6,
        "killed before the last part: {journal}"
    );
    assert!(
        s3::keys(&bucket, "reg/models/").is_empty(),
        "no version is published before its objects"
    );
    a.ok(&["sync"]);
    assert!(
        find_journal().is_none(),
        "a completed upload leaves no journal"
    );
    let b = s3_env();
    b.ok(&["clone", &url, "reg"]);
    b.ok(&["--registry", "reg", "pull", "big@1", "--to", "out"]);
    assert!(fs::read(b.path("out/weights.bin")).unwrap() == bytes);
}

#[test]
fn mreg_run_on_a_bucket_gives_its_command_the_bucket_not_the_mirror() {
    let (_, url) = new_bucket();
    let a = s3_env();
    a.ok(&["init", &url]);
    a.fixture("tiny-v1", "v1");
    a.ok(&[
        "run",
        "--registry",
        &url,
        "--",
        "sh",
        "-c",
        "mreg log --metric loss=0.3 --step 1 && mreg push v1 --model tiny",
    ]);
    let b = s3_env();
    let runs = json(&b.ok(&["runs", "--registry", &url, "--json"]));
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs[0]["metrics"]["loss"], 0.3, "{runs}");
    b.ok(&["pull", "tiny@1", "--to", "out", "--registry", &url]);
}

#[test]
fn a_remote_that_lost_its_registry_is_refused_or_refilled_never_half_sent() {
    let a = s3_env();
    a.ok(&["init"]);
    a.fixture("tiny-v1", "v1");
    a.ok(&["push", "v1", "--model", "tiny"]);
    // A folder remote that vanished (an unmounted share) is an error, not a new registry.
    let share = a.root().join("share");
    a.ok(&["remote", "add", "share", &share.display().to_string()]);
    a.ok(&["sync", "share"]);
    fs::remove_dir_all(&share).unwrap();
    fs::create_dir(&share).unwrap();
    let out = a.snap(&["sync", "share"]);
    assert!(out.starts_with("exit: 1\n"), "{out}");
    assert!(out.contains("no mreg registry at"), "{out}");
    assert!(!share.join(".mreg").exists());
    // An emptied bucket gets everything again, objects included.
    let (_, url) = new_bucket();
    a.ok(&["remote", "add", "team", &url]);
    a.ok(&["sync", "team"]);
    let other = s3::bucket();
    let moved = format!("s3://{other}/reg");
    a.ok(&["remote", "remove", "team"]);
    a.ok(&["remote", "add", "team", &moved]);
    let sent = json(&a.ok(&["sync", "team", "--json"]));
    assert!(sent["sent"]["objects"].as_u64().unwrap() >= 4, "{sent}");
    let b = s3_env();
    b.ok(&["clone", &moved, "reg"]);
    b.ok(&["--registry", "reg", "fsck"]);
}

#[test]
fn stages_moved_under_another_policy_are_not_sent() {
    let (bucket, url) = new_bucket();
    let a = s3_env();
    a.ok(&["init"]);
    a.fixture("tiny-v1", "v1");
    a.ok(&["push", "v1", "--model", "tiny", "--metric", "acc=0.5"]);
    a.ok(&["remote", "add", "team", &url]);
    a.ok(&["sync"]);
    // The team tightens production on the bucket; this registry still has the defaults.
    let strict = "format = 1\n\n[stages.staging]\n\n[stages.production]\ngates = [\"acc>0.85\"]\n\n[stages.archived]\nallow_downgrade = true\n";
    s3::put(&bucket, "reg/config.toml", strict.as_bytes());
    a.ok(&["promote", "tiny@1", "production"]);
    let out = a.snap(&["sync"]);
    assert!(out.starts_with("exit: 4\n"), "{out}");
    assert!(out.contains("stage policy that differs"), "{out}");
    assert!(!s3::keys(&bucket, "reg/models/tiny/").contains(&"reg/models/tiny/HEAD".to_owned()));
}

#[test]
fn sync_recheck_also_fetches_back_objects_lost_here() {
    let (a, _) = synced_to_a_folder();
    fs::remove_dir_all(a.registry().join("objects")).unwrap();
    fs::create_dir(a.registry().join("objects")).unwrap();
    let out = json(&a.ok(&["sync", "--recheck", "--json"]));
    assert!(out["fetched"]["objects"].as_u64().unwrap() >= 4, "{out}");
    a.ok(&["fsck"]);
}

#[test]
fn a_remote_made_again_gets_the_objects_again() {
    let (a, share) = synced_to_a_folder();
    let share = std::path::PathBuf::from(share);
    // Emptied and made a registry again by hand: another registry, despite the URL.
    fs::remove_dir_all(&share).unwrap();
    a.ok(&["init", &share.display().to_string()]);
    let sent = json(&a.ok(&["sync", "--json"]));
    assert!(sent["sent"]["objects"].as_u64().unwrap() >= 4, "{sent}");
    let b = TestEnv::new();
    b.ok(&["clone", &share.display().to_string(), "reg"]);
    b.ok(&["--registry", "reg", "fsck"]);
}

#[test]
fn a_remote_this_mreg_cannot_honour_is_refused_untouched() {
    let (bucket, url) = new_bucket();
    s3::put(&bucket, "reg/config.toml", b"format = 9\n");
    let a = s3_env();
    a.ok(&["init"]);
    a.fixture("tiny-v1", "v1");
    a.ok(&["push", "v1", "--model", "tiny"]);
    a.ok(&["remote", "add", "future", &url]);
    let out = a.snap(&["sync"]);
    assert!(out.starts_with("exit: 1\n"), "{out}");
    assert!(
        out.contains("has layout format 9, newer than this mreg reads"),
        "{out}"
    );
    assert!(s3::keys(&bucket, "reg/models/").is_empty());
    assert!(s3::keys(&bucket, "reg/objects/").is_empty());
    let out = a.snap(&["ls", "--registry", &url]);
    assert!(
        out.contains(&format!("the registry at {url} has layout format 9")),
        "{out}"
    );
}

#[test]
fn a_remote_add_of_a_path_that_cannot_be_a_remote_is_a_usage_error() {
    let a = TestEnv::new();
    a.ok(&["init"]);
    for url in [".", ".mreg/inner", "/nonexistent/deep/share", ""] {
        let out = a.snap(&["remote", "add", "r", url]);
        assert!(out.starts_with("exit: 2\n"), "{url:?}: {out}");
    }
    assert!(!std::path::Path::new("/nonexistent/deep/share").exists());
    assert!(!a.registry().join("inner").exists());
}

#[test]
fn a_mirror_of_a_bucket_made_again_says_it_disagrees_instead_of_serving_old_records() {
    let (bucket, url) = new_bucket();
    let a = s3_env();
    a.ok(&["init", &url]);
    a.fixture("tiny-v1", "v1");
    a.ok(&["push", "v1", "--model", "tiny", "--registry", &url]);
    // The bucket is emptied by hand and made again; another machine pushes other content.
    s3::delete_all(&bucket, "reg/");
    let b = s3_env();
    b.ok(&["init", &url]);
    b.fixture("tiny-v2", "v2");
    b.ok(&["push", "v2", "--model", "tiny", "--registry", &url]);
    let out = a.snap(&["ls", "tiny", "--registry", &url]);
    assert!(out.starts_with("exit: 1\n"), "{out}");
    assert!(out.contains("disagrees with the bucket"), "{out}");
    assert!(out.contains("the mirror is a cache: delete"), "{out}");
}

#[test]
fn a_hostile_key_or_record_on_a_bucket_does_not_stop_the_good_models() {
    let (bucket, url) = new_bucket();
    let a = s3_env();
    a.ok(&["init", &url]);
    a.fixture("tiny-v1", "v1");
    a.ok(&["push", "v1", "--model", "tiny", "--registry", &url]);
    a.ok(&["promote", "tiny@1", "staging", "--registry", &url]);
    s3::put(&bucket, "reg/models/evil/versions/1.toml", b"not a record");
    s3::put(&bucket, "reg/models/x/../versions/1.toml", b"escape");
    s3::put(
        &bucket,
        "reg/runs/0123456789abcdef/run.toml",
        b"garbage = [",
    );

    let b = s3_env();
    let out = b.run(&["ls", "--registry", &url]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tiny"),
        "{said}"
    );
    assert!(
        said.contains("refused models/evil/versions/1.toml"),
        "{said}"
    );
    assert!(
        said.contains("refused runs/0123456789abcdef/run.toml"),
        "{said}"
    );
    assert!(said.contains("models/x/../versions/1.toml"), "{said}");

    // Reading another model works, and says what it skipped.
    let out = b.run(&["pull", "tiny@staging", "--to", "serve", "--registry", &url]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused models/evil"));
    assert!(b.path("serve").is_dir());

    let out = b.run(&["clone", &url, "copy"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    b.ok(&[
        "--registry",
        "copy",
        "pull",
        "tiny@staging",
        "--to",
        "serve2",
    ]);
    let fsck = b.run(&["--registry", "copy", "fsck"]);
    assert_eq!(
        fsck.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}

#[test]
fn the_first_sync_to_an_empty_bucket_gives_the_registry_there_its_id() {
    let (bucket, url) = new_bucket();
    let a = s3_env();
    a.ok(&["init"]);
    a.fixture("tiny-v1", "v1");
    a.ok(&["push", "v1", "--model", "m"]);
    a.ok(&["remote", "add", "team", &url]);
    a.ok(&["sync"]);
    assert_eq!(s3::keys(&bucket, "reg/registry-id"), ["reg/registry-id"]);
    // The id is remembered with what was sent, so the next sync trusts it.
    let cache = walkdir::WalkDir::new(a.registry().join("cache/remotes"))
        .into_iter()
        .map(|e| e.unwrap())
        .find(|e| e.file_name() == "registry-id")
        .expect("the remote's id is remembered");
    let remembered = fs::read_to_string(cache.path()).unwrap();
    assert!(!remembered.trim().is_empty());
    let again = json(&a.ok(&["sync", "--json"]));
    assert_eq!(again["sent"]["objects"], 0, "{again}");
}

#[test]
fn a_removal_on_a_bucket_is_seen_by_every_machine_and_carried_to_clones() {
    let (_bucket, url) = new_bucket();
    let a = s3_env();
    a.ok(&["init", &url]);
    a.fixture("tiny-v1", "v1");
    a.fixture("tiny-v2", "v2");
    a.ok(&["push", "v1", "--model", "tiny", "--registry", &url]);
    a.ok(&["push", "v2", "--model", "tiny", "--registry", &url]);
    a.ok(&["promote", "tiny@2", "staging", "--registry", &url]);
    let refused = a.run(&["rm", "tiny@2", "--registry", &url]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    a.ok(&["rm", "tiny@1", "--reason", "superseded", "--registry", &url]);
    // Another machine, with its own cache, sees the removal.
    let b = s3_env();
    let ls = json(&b.ok(&["ls", "tiny", "--registry", &url, "--json"]));
    let listed: Vec<u64> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, [2], "{ls}");
    let shown = json(&b.ok(&["show", "tiny@1", "--registry", &url, "--json"]));
    assert_eq!(shown["removed"]["reason"], "superseded", "{shown}");
    let pulled = b.run(&["pull", "tiny@1", "--to", "one", "--registry", &url]);
    assert_eq!(pulled.status.code(), Some(1), "{pulled:?}");
    // A removal that empties a stage is a stage move on the bucket.
    b.ok(&[
        "rm",
        "tiny@staging",
        "--force",
        "--reason",
        "bad",
        "--registry",
        &url,
    ]);
    let history = json(&a.ok(&["history", "tiny", "--registry", &url, "--json"]));
    let forced = history
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "remove" && e["forced"] == true)
        .unwrap_or_else(|| panic!("no forced removal in {history}"));
    assert_eq!(forced["emptied"][0]["stage"], "staging", "{history}");
    // A clone of the bucket holds both removals and passes fsck; the number is kept.
    let c = s3_env();
    c.ok(&["clone", &url, "c"]);
    let c_reg = c.path("c/.mreg").display().to_string();
    c.ok(&["--registry", &c_reg, "fsck"]);
    let out = c.run(&["--registry", &c_reg, "pull", "tiny@latest", "--to", "x"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    a.ok(&["push", "v1", "--model", "tiny", "--registry", &url]);
    let ls = json(&a.ok(&["ls", "--registry", &url, "--json"]));
    assert_eq!(ls[0]["latest"], 3, "{ls}");
    // Every removal on the bucket is a stage move there, so that no promotion made
    // elsewhere at the same moment can give a stage the removed version.
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["remove", "remove", "promote"], "{history}");
}

#[test]
fn model_fields_set_on_a_bucket_are_read_by_another_machine_and_synced() {
    let (bucket, url) = new_bucket();
    let a = s3_env();
    a.ok(&["init", &url]);
    a.fixture("tiny-v1", "v1");
    a.ok(&["push", "v1", "--model", "tiny", "--registry", &url]);
    a.ok(&[
        "model",
        "set",
        "tiny",
        "--license",
        "mit",
        "--owner",
        "alice",
        "--registry",
        &url,
    ]);
    let keys = s3::keys(&bucket, "reg/models/tiny/info/");
    assert_eq!(keys.len(), 1, "{keys:?}");
    // Another machine, its own cache: it reads the fields and adds to them.
    let b = s3_env();
    b.ok(&["model", "set", "tiny", "--owner", "bob", "--registry", &url]);
    let fields = json(&a.ok(&["model", "show", "tiny", "--registry", &url, "--json"]));
    assert_eq!(fields["license"], "mit");
    assert_eq!(fields["owner"], "bob");
    // A folder registry syncing with the bucket gets both changes.
    let c = s3_env();
    c.ok(&["clone", &url, "c"]);
    let c_reg = c.path("c/.mreg").display().to_string();
    let card = c.ok(&["--registry", &c_reg, "card", "tiny@1"]);
    assert!(card.contains("license: \"mit\"\n"), "{card}");
    assert!(card.contains("| Owner | bob |"), "{card}");
}
