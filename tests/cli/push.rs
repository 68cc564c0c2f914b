//! `mreg push`: storing folders, numbering versions, and each refusal.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::common::{TestEnv, noise};
use insta::assert_snapshot;

#[test]
fn push_prints_the_new_reference() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.fixture("tiny-v2", "v2");
    assert_snapshot!(env.snap(&["push", "v1", "--model", "churn", "--message", "first"]), @"
    exit: 0
    --- stdout
    churn@1
    --- stderr
    Stored 4 files (476 B, 476 B new) as churn@1, from run eb16012c5aff4a1a.
    ");
    assert_snapshot!(env.snap(&["push", "v2", "--model", "churn", "--json"]), @r#"
    exit: 0
    --- stdout
    {
      "model": "churn",
      "version": 2,
      "ref": "churn@2",
      "created": true,
      "tree": "e247b959b47d0b60fca9940e54ca2b53c8f0adfd131d1e8737fc53b87cce87c6",
      "run": "8562c9ece8b61bac",
      "files": 5,
      "bytes": 490,
      "new_bytes": 367,
      "sent_bytes": null,
      "hashed_bytes": 490,
      "skipped": []
    }
    --- stderr
    Stored 5 files (490 B, 367 B new) as churn@2, from run 8562c9ece8b61bac.
    "#);
    assert_eq!(
        env.version_files(),
        ["churn/versions/1.toml", "churn/versions/2.toml"]
    );
}

#[test]
fn pushing_the_latest_content_again_records_nothing() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.ok(&["push", "v1", "--model", "churn"]);
    assert_snapshot!(env.snap(&["push", "v1", "--model", "churn"]), @"
    exit: 0
    --- stdout
    churn@1
    --- stderr
    Nothing to push: churn@1 already holds this content (tree 6b24fac002fe).
    ");
    assert_eq!(env.version_files(), ["churn/versions/1.toml"]);
}

#[test]
fn a_copy_elsewhere_is_recognised_by_content() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.fixture("tiny-v1", "copy");
    env.ok(&["push", "v1", "--model", "churn"]);
    let out: serde_json::Value =
        serde_json::from_str(&env.ok(&["push", "copy", "--model", "churn", "--json"])).unwrap();
    assert_eq!(out["created"], false);
    assert_eq!(out["version"], 1);
    assert_eq!(out["new_bytes"], 0);
}

#[test]
fn bad_model_names_are_usage_errors() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    assert_snapshot!(env.snap(&["push", "v1", "--model", "../evil"]), @r#"
    exit: 2
    --- stdout
    --- stderr
    error: "../evil" is not a valid model name
    hint: use 1 to 100 letters, digits, '.', '_' and '-', starting with a letter or digit, without '..' (e.g. churn, bert-base.v2)
    "#);
    assert!(env.version_files().is_empty());
}

#[test]
fn pushing_a_file_or_a_missing_folder_is_refused() {
    let env = TestEnv::with_registry();
    env.write("weights.bin", "x");
    assert_snapshot!(env.snap(&["push", "weights.bin", "--model", "m"]), @"
    exit: 2
    --- stdout
    --- stderr
    error: weights.bin is not a folder
    hint: push takes the folder holding the model's files
    ");
    assert_snapshot!(env.snap(&["push", "nope", "--model", "m"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: folder nope does not exist
    hint: push takes the folder holding the model's files
    ");
}

#[test]
fn mregignore_leaves_paths_out_and_says_so() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    env.write("out/.mregignore", "logs/\n*.tmp\n!keep.tmp\n");
    env.write("out/logs/train.log", "loss 0.4\n");
    env.write("out/scratch.tmp", "x");
    env.write("out/keep.tmp", "kept");
    assert_snapshot!(env.snap(&["push", "out", "--model", "m"]), @"
    exit: 0
    --- stdout
    m@1
    --- stderr
    Skipped 2 paths:
      logs/ (.mregignore)
      scratch.tmp (.mregignore)
    Stored 6 files (502 B, 502 B new) as m@1, from run 16580034d5a1d5c1.
    ");
    let files = env.ok(&["show", "m", "--files"]);
    assert!(files.contains("keep.tmp") && files.contains(".mregignore"));
    assert!(!files.contains("train.log") && !files.contains("scratch.tmp"));
}

#[test]
fn the_registry_inside_a_pushed_folder_is_skipped() {
    let env = TestEnv::with_registry();
    env.write("weights.bin", "w");
    assert_snapshot!(env.snap(&["push", ".", "--model", "m"]), @"
    exit: 0
    --- stdout
    m@1
    --- stderr
    Skipped 1 path:
      .mreg/ (the registry)
    Stored 1 file (1 B, 1 B new) as m@1, from run 16580034d5a1d5c1.
    ");
}

#[test]
fn a_fifo_is_refused_and_nothing_is_recorded() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    let status = std::process::Command::new("mkfifo")
        .arg(env.path("out/pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    assert_snapshot!(env.snap(&["push", "out", "--model", "m"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: cannot store [TMP]/work/out/pipe: it is a FIFO (named pipe)
    hint: remove it, or list it in .mregignore to leave it out
    ");
    assert!(env.version_files().is_empty());
    assert_eq!(fs::read_dir(env.registry().join("tmp")).unwrap().count(), 0);
}

#[test]
fn a_name_that_is_not_utf8_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.bin");
    fs::write(env.path("out").join(name), "x").unwrap();
    assert_snapshot!(env.snap(&["push", "out", "--model", "m"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: cannot store [TMP]/work/out/caf�.bin: its name is not valid UTF-8
    hint: remove it, or list it in .mregignore to leave it out
    ");
    assert!(env.version_files().is_empty());
}

#[test]
fn a_symlink_leading_out_is_refused() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "out");
    std::os::unix::fs::symlink("../../etc/passwd", env.path("out/tokenizer/leak")).unwrap();
    assert_snapshot!(env.snap(&["push", "out", "--model", "m"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: cannot store [TMP]/work/out/tokenizer/leak: it is a symlink and its target "../../etc/passwd" leads outside the folder
    hint: remove it, or list it in .mregignore to leave it out
    "#);
    fs::remove_file(env.path("out/tokenizer/leak")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", env.path("out/abs")).unwrap();
    assert_snapshot!(env.snap(&["push", "out", "--model", "m"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: cannot store [TMP]/work/out/abs: it is a symlink and its target "/etc/passwd" is an absolute path
    hint: remove it, or list it in .mregignore to leave it out
    "#);
    assert!(env.version_files().is_empty());
}

#[test]
fn an_unchanged_folder_is_not_read_again_but_a_changed_one_is() {
    let env = TestEnv::with_registry();
    env.write("out/weights.bin", vec![7u8; 300_000]);
    env.write("out/config.json", "{\"lr\": 0.1}\n");
    let first: serde_json::Value =
        serde_json::from_str(&env.ok(&["push", "out", "--model", "m", "--json"])).unwrap();
    assert_eq!(first["hashed_bytes"], 300_012);
    // The stat cache trusts a stamp only once it is two seconds older than its hashing.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    env.ok(&["push", "out", "--model", "m"]);
    let again: serde_json::Value =
        serde_json::from_str(&env.ok(&["push", "out", "--model", "m", "--json"])).unwrap();
    assert_eq!(
        again["hashed_bytes"], 0,
        "an unchanged folder was read again"
    );
    assert_eq!(again["version"], 1);
    // Same size, same mtime, different content: the inode change time gives it away.
    let path = env.path("out/config.json");
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    fs::write(&path, "{\"lr\": 0.2}\n").unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let changed: serde_json::Value =
        serde_json::from_str(&env.ok(&["push", "out", "--model", "m", "--json"])).unwrap();
    assert_eq!(changed["version"], 2);
    assert_eq!(changed["hashed_bytes"], 12);
}

#[test]
fn concurrent_pushes_get_distinct_consecutive_numbers() {
    let env = TestEnv::with_registry();
    let n = 8;
    for i in 0..n {
        env.write(&format!("m{i}/weights.bin"), format!("weights of run {i}"));
    }
    let children: Vec<_> = (0..n)
        .map(|i| {
            env.cmd(&["push", &format!("m{i}"), "--model", "m", "--json"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut versions: Vec<u64> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            v["version"].as_u64().unwrap()
        })
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=n).collect::<Vec<u64>>());
    let ls: serde_json::Value = serde_json::from_str(&env.ok(&["ls", "m", "--json"])).unwrap();
    let trees: std::collections::HashSet<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["tree"].as_str().unwrap())
        .collect();
    assert_eq!(trees.len(), n as usize, "a version was lost or duplicated");
    env.ok(&["fsck"]);
}

#[test]
fn stored_objects_are_read_only_and_compressed_only_when_it_pays() {
    let env = TestEnv::with_registry();
    env.write("out/text.txt", "the same line again\n".repeat(5000));
    env.write("out/noise.bin", noise(200_000, 3));
    env.ok(&["push", "out", "--model", "m"]);
    let mut zst = 0;
    let mut raw = 0;
    for entry in walkdir::WalkDir::new(env.registry().join("objects")) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            assert_eq!(entry.metadata().unwrap().permissions().mode() & 0o222, 0);
            if entry.path().extension().is_some_and(|e| e == "zst") {
                zst += 1;
            } else {
                raw += 1;
            }
        }
    }
    assert!(zst >= 1, "compressible text was stored raw");
    assert!(raw >= 1, "incompressible bytes were compressed");
}

#[test]
fn a_truncated_object_is_replaced_by_the_next_push_of_its_content() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.ok(&["push", "v1", "--model", "m"]);
    let victim = walkdir::WalkDir::new(env.registry().join("objects"))
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file() && !e.file_name().to_string_lossy().ends_with(".zst"))
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap();
    let path = victim.path().to_path_buf();
    let len = fs::metadata(&path).unwrap().len();
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    assert_eq!(env.run(&["fsck"]).status.code(), Some(1));

    env.ok(&["push", "v1", "--model", "copy"]);
    assert_eq!(fs::metadata(&path).unwrap().len(), len);
    let fsck = env.run(&["fsck"]);
    assert_eq!(
        fsck.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    env.ok(&["pull", "m@1", "--to", "serve"]);
    assert_eq!(
        crate::common::snapshot_files(&env.path("serve")),
        crate::common::snapshot_files(&env.path("v1"))
    );
}

#[test]
fn a_stat_cache_edited_by_someone_else_is_not_believed() {
    let env = TestEnv::with_registry();
    env.write("evil/w.bin", noise(1000, 1));
    env.ok(&["push", "evil", "--model", "attacker"]);
    let evil = mreg::store::ObjectId::of(&fs::read(env.path("evil/w.bin")).unwrap());
    let mine = noise(1000, 2);
    env.write("mine/w.bin", &mine);
    // Old enough for the cache to trust what it remembers of the file.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    env.ok(&["push", "mine", "--model", "prod"]);
    let cache = walkdir::WalkDir::new(env.registry().join("cache/stat"))
        .into_iter()
        .map(|e| e.unwrap())
        .find(|e| fs::read(e.path()).is_ok_and(|b| b.windows(5).any(|w| w == b"/mine")))
        .expect("the push left a stat cache for mine/");
    let mut bytes = fs::read(cache.path()).unwrap();
    // The cache names each file's hash by its 32 bytes: put the other file's there.
    let mine_id = mreg::store::ObjectId::of(&mine);
    let at = bytes
        .windows(32)
        .position(|w| w == mine_id.as_bytes())
        .expect("the cache holds the file's hash");
    bytes[at..at + 32].copy_from_slice(evil.as_bytes());
    fs::write(cache.path(), bytes).unwrap();
    env.write("mine/config.json", "{}");
    env.ok(&["push", "mine", "--model", "prod"]);
    env.ok(&["pull", "prod@2", "--to", "out"]);
    assert_eq!(fs::read(env.path("out/w.bin")).unwrap(), mine);
}

#[test]
fn a_repush_the_stat_cache_vouches_for_still_restores_a_truncated_object() {
    let env = TestEnv::with_registry();
    let blob = noise(64 << 10, 5);
    env.write("v1/blob.bin", &blob);
    env.ok(&["push", "v1", "--model", "m"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    // This push hashes the file late enough for the cache to vouch for it next time.
    env.ok(&["push", "v1", "--model", "m"]);
    let hex = mreg::store::ObjectId::of(&blob).to_hex();
    let path = env
        .registry()
        .join("objects")
        .join(&hex[..2])
        .join(&hex[2..]);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(10)
        .unwrap();
    let out = env.run(&["push", "v1", "--model", "m"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(&path).unwrap(), blob);
    assert_eq!(env.run(&["fsck"]).status.code(), Some(0));
}

#[test]
fn a_seal_key_that_is_a_fifo_link_or_readable_by_others_is_replaced() {
    use std::os::unix::fs::MetadataExt;
    let env = TestEnv::with_registry();
    env.write("m/f.bin", noise(4096, 3));
    let key = env.root().join("home/.cache/mreg/seal-key");
    fs::create_dir_all(key.parent().unwrap()).unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(&key)
        .status()
        .unwrap();
    assert!(fifo.success());
    let out = env.run_within(&["push", "m", "--model", "m"], 20);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let private = |path: &std::path::Path| {
        let meta = fs::symlink_metadata(path).unwrap();
        meta.is_file() && meta.len() == 32 && meta.mode() & 0o777 == 0o600
    };
    assert!(private(&key), "the FIFO was not replaced by a private key");

    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let readable = fs::read(&key).unwrap();
    env.write("m/g.bin", noise(4096, 4));
    env.ok(&["push", "m", "--model", "m"]);
    assert!(private(&key));
    assert_ne!(
        fs::read(&key).unwrap(),
        readable,
        "a key others could read was kept"
    );

    fs::remove_file(&key).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &key).unwrap();
    env.write("m/h.bin", noise(4096, 5));
    env.ok(&["push", "m", "--model", "m"]);
    assert!(private(&key), "a link was used as the key");
}
