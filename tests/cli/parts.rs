//! Large files stored in parts (registry format 2): a fine-tune stores only the tensors
//! it changed, parts travel through remotes and buckets and are collected by gc, a
//! damaged part or a forged chunk list is caught, and a registry of format 1 keeps
//! storing files whole until `mreg upgrade`.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[cfg(feature = "s3")]
use crate::common::s3;
use crate::common::{TestEnv, noise};

const MIB: usize = 1 << 20;

/// Returns the bytes of a `.safetensors` file of 8 layers (a 3 MiB weight and a 4 KiB
/// norm each) and a 6 MiB head, about 30 MiB; the layers in `changed` and, with
/// `head`, the head hold other values than the base.
fn checkpoint(changed: &[usize], head: bool) -> Vec<u8> {
    // `noise` keeps the low bit of its seed set: seeds differ above it.
    let noise = |len: usize, seed: u64| noise(len, seed << 1);
    let mut tensors: Vec<(String, Vec<u8>)> = Vec::new();
    for layer in 0..8 {
        let seed = 100 * layer as u64 + if changed.contains(&layer) { 7 } else { 0 };
        tensors.push((
            format!("model.layers.{layer}.mlp.weight"),
            noise(3 * MIB, seed + 1),
        ));
        tensors.push((
            format!("model.layers.{layer}.norm.weight"),
            noise(4096, seed + 2),
        ));
    }
    tensors.push((
        "lm_head.weight".into(),
        noise(6 * MIB, if head { 9 } else { 8 }),
    ));
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for (name, data) in &tensors {
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "BF16", "shape": [data.len() / 2], "data_offsets": [offset, offset + data.len()]}),
        );
        offset += data.len();
    }
    let mut json = serde_json::to_vec(&header).unwrap();
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    for (_, data) in &tensors {
        out.extend_from_slice(data);
    }
    out
}

/// Returns the bytes stored under `objects/` of the registry folder `root`.
fn stored_bytes(root: &Path) -> u64 {
    walkdir::WalkDir::new(root.join("objects"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Returns the chunk lists stored under `objects/` of the registry folder `root`.
fn lists(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root.join("objects"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".chunks"))
        .map(walkdir::DirEntry::into_path)
        .collect()
}

/// Returns the object file of `hex` under the registry folder `root`, raw or zstd.
fn object_file(root: &Path, hex: &str) -> PathBuf {
    let raw = root.join("objects").join(&hex[..2]).join(&hex[2..]);
    if raw.exists() {
        raw
    } else {
        raw.with_extension("zst")
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Overwrites a read-only object file.
fn overwrite(path: &Path, bytes: &[u8]) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(path, bytes).unwrap();
}

/// A registry holding `llm@1` (the base checkpoint and a config) and `llm@2` (its head
/// fine-tuned).
fn two_versions() -> TestEnv {
    let env = TestEnv::new();
    env.ok(&["init"]);
    env.write("out/model.safetensors", checkpoint(&[], false));
    env.write("out/config.json", "{\"layers\": 8}\n");
    env.ok(&["push", "out", "--model", "llm"]);
    env.write("out/model.safetensors", checkpoint(&[], true));
    env.ok(&["push", "out", "--model", "llm"]);
    env
}

#[test]
fn a_fine_tune_stores_only_the_tensors_it_changed_and_pulls_byte_identical() {
    let env = TestEnv::new();
    env.ok(&["init"]);
    let base = checkpoint(&[], false);
    env.write("out/model.safetensors", &base);
    env.write("out/config.json", "{\"layers\": 8}\n");
    let first = json(&env.ok(&["push", "out", "--model", "llm", "--json"]));
    assert_eq!(first["new_bytes"].as_u64(), Some(base.len() as u64 + 14));
    let before = stored_bytes(&env.registry());
    // Only the head changed: the push stores its 6 MiB, and says so.
    let tuned = checkpoint(&[], true);
    env.write("out/model.safetensors", &tuned);
    let second = json(&env.ok(&["push", "out", "--model", "llm", "--json"]));
    assert_eq!(second["new_bytes"].as_u64(), Some(6 * MIB as u64));
    let grown = stored_bytes(&env.registry()) - before;
    assert!(
        grown > 6 * MIB as u64 && grown < 6 * MIB as u64 + 64 * 1024,
        "the fine-tune grew the store by {grown} bytes"
    );
    assert_eq!(lists(&env.registry()).len(), 2);
    // Two changed layers: their weights and the part holding their norms, no more.
    env.write("out/model.safetensors", checkpoint(&[2, 5], true));
    let third = json(&env.ok(&["push", "out", "--model", "llm", "--json"]));
    let new = third["new_bytes"].as_u64().unwrap();
    assert!(
        new >= 6 * MIB as u64 && new < 6 * MIB as u64 + 64 * 1024,
        "{new}"
    );
    for (version, bytes) in [("1", &base), ("2", &tuned)] {
        let dest = format!("pulled{version}");
        env.ok(&["pull", &format!("llm@{version}"), "--to", &dest]);
        assert!(
            fs::read(env.path(&format!("{dest}/model.safetensors"))).unwrap() == *bytes,
            "llm@{version} pulled other bytes"
        );
    }
    env.ok(&["fsck"]);
    // The same bytes with a new modification time store nothing at all.
    env.write("out/model.safetensors", checkpoint(&[2, 5], true));
    let again = json(&env.ok(&["push", "out", "--model", "llm", "--json"]));
    assert_eq!(again["new_bytes"].as_u64(), Some(0));
}

#[test]
fn a_damaged_part_or_a_forged_list_is_refused_by_pull_and_named_by_fsck() {
    let env = two_versions();
    let root = env.registry();
    // A part of the head: flipped bytes, same length.
    let list = lists(&root)
        .into_iter()
        .map(|p| (fs::read_to_string(&p).unwrap(), p))
        .max_by_key(|(text, _)| text.len())
        .unwrap();
    let last_part = list
        .0
        .lines()
        .last()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let part = object_file(&root, &last_part);
    let mut bytes = fs::read(&part).unwrap();
    bytes[100] ^= 0xff;
    overwrite(&part, &bytes);
    let out = env.run(&["pull", "llm@2", "--to", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    // The damaged part is named, not the list that is whole.
    assert!(
        said.contains(&format!("part {} of object", &last_part[..16])),
        "{said}"
    );
    assert!(!env.path("broken").exists(), "a refused pull left a folder");
    let out = env.run(&["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&last_part[..16]), "{said}");
    bytes[100] ^= 0xff;
    overwrite(&part, &bytes);
    env.ok(&["fsck"]);

    // A list naming real parts in another order: the sizes add up, the bytes do not.
    let mut lines: Vec<&str> = list.0.lines().collect();
    let n = lines.len();
    lines.swap(1, n - 1);
    overwrite(&list.1, format!("{}\n", lines.join("\n")).as_bytes());
    let out = env.run(&["pull", "llm@2", "--to", "forged"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!env.path("forged").exists());
    let out = env.run(&["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    // A list that is not one.
    overwrite(&list.1, b"mreg chunks 1\nnot a part\n");
    let out = env.run(&["pull", "llm@2", "--to", "garbled"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("chunk list"), "{said}");
    // The other version, whose parts are whole, still pulls.
    env.ok(&["pull", "llm@1", "--to", "fine"]);
}

#[test]
fn gc_keeps_the_parts_live_files_need_and_frees_those_only_removed_versions_held() {
    let env = two_versions();
    let root = env.registry();
    env.ok(&["gc"]);
    env.ok(&["pull", "llm@1", "--to", "one"]);
    env.ok(&["pull", "llm@2", "--to", "two"]);
    let before = stored_bytes(&root);
    // Removing llm@1 frees its head (6 MiB) and its list; every part llm@2 shares stays.
    env.ok(&["rm", "llm@1", "--reason", "superseded"]);
    let freed = json(&env.ok(&["gc", "--json"]));
    let bytes = freed["freed_bytes"].as_u64().unwrap();
    assert!(
        bytes >= 6 * MIB as u64 && bytes < 6 * MIB as u64 + 64 * 1024,
        "{freed}"
    );
    assert_eq!(before - stored_bytes(&root), bytes);
    fs::remove_dir_all(env.path("two")).unwrap();
    env.ok(&["pull", "llm@2", "--to", "two"]);
    assert!(fs::read(env.path("two/model.safetensors")).unwrap() == checkpoint(&[], true));
    env.ok(&["fsck"]);
    let du = json(&env.ok(&["du", "--json"]));
    assert_eq!(du["reclaimable"]["bytes"].as_u64(), Some(0), "{du}");
}

#[test]
fn parts_travel_through_a_folder_remote_and_a_clone_and_a_sync_sends_only_new_ones() {
    let a = TestEnv::new();
    a.ok(&["init"]);
    a.write("out/model.safetensors", checkpoint(&[], false));
    a.ok(&["push", "out", "--model", "llm"]);
    let share = a.root().join("share").display().to_string();
    a.ok(&["remote", "add", "share", &share]);
    a.ok(&["sync"]);
    let share_root = Path::new(&share).join(".mreg");
    assert_eq!(lists(&share_root).len(), 1);
    let first = stored_bytes(&share_root);
    a.write("out/model.safetensors", checkpoint(&[], true));
    a.ok(&["push", "out", "--model", "llm"]);
    let sent = json(&a.ok(&["sync", "--json"]));
    let grown = stored_bytes(&share_root) - first;
    assert!(
        grown > 6 * MIB as u64 && grown < 6 * MIB as u64 + 64 * 1024,
        "the sync of a head fine-tune sent {grown} bytes: {sent}"
    );
    let b = TestEnv::new();
    b.ok(&["clone", &share, "b"]);
    let b_reg = b.path("b/.mreg").display().to_string();
    for (version, head) in [("1", false), ("2", true)] {
        let dest = format!("v{version}");
        b.ok(&[
            "--registry",
            &b_reg,
            "pull",
            &format!("llm@{version}"),
            "--to",
            &dest,
        ]);
        assert!(
            fs::read(b.path(&format!("{dest}/model.safetensors"))).unwrap()
                == checkpoint(&[], head)
        );
    }
    b.ok(&["--registry", &b_reg, "fsck"]);
    assert_eq!(lists(&b.path("b/.mreg")).len(), 2);
}

#[test]
fn a_registry_of_format_1_stores_whole_sends_whole_and_upgrade_turns_parts_on() {
    // A registry of format 1 next to one of this build's format.
    let old = TestEnv::new();
    old.ok(&["init"]);
    let config = old.registry().join("config.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, text.replace("format = 3", "format = 1")).unwrap();
    old.write("out/model.safetensors", checkpoint(&[], false));
    old.ok(&["push", "out", "--model", "llm"]);
    assert!(lists(&old.registry()).is_empty(), "format 1 stored parts");

    // Parts fetched from a registry of format 2 or later are stored whole here.
    let new = TestEnv::new();
    new.ok(&["init"]);
    new.write("out/model.safetensors", checkpoint(&[3], true));
    new.ok(&["push", "out", "--model", "tuned"]);
    assert_eq!(lists(&new.registry()).len(), 1);
    let new_reg = new.registry().display().to_string();
    old.ok(&["remote", "add", "new", &new_reg]);
    old.ok(&["sync"]);
    assert!(
        lists(&old.registry()).is_empty(),
        "format 1 took a chunk list"
    );
    old.ok(&["pull", "tuned@1", "--to", "tuned"]);
    assert!(fs::read(old.path("tuned/model.safetensors")).unwrap() == checkpoint(&[3], true));
    old.ok(&["fsck"]);
    // And what it sends to a remote of format 1 goes whole.
    let share = old.root().join("share");
    let plain = TestEnv::new();
    plain.ok(&["init", &share.display().to_string()]);
    let share_config = share.join(".mreg/config.toml");
    let text = fs::read_to_string(&share_config).unwrap();
    fs::write(&share_config, text.replace("format = 3", "format = 1")).unwrap();
    new.ok(&["remote", "add", "share", &share.display().to_string()]);
    new.ok(&["sync", "share"]);
    assert!(
        lists(&share.join(".mreg")).is_empty(),
        "a remote of format 1 got a chunk list"
    );
    let c = TestEnv::new();
    c.ok(&["clone", &share.display().to_string(), "c"]);
    let c_reg = c.path("c/.mreg").display().to_string();
    c.ok(&["--registry", &c_reg, "pull", "tuned@1", "--to", "t"]);
    assert!(fs::read(c.path("t/model.safetensors")).unwrap() == checkpoint(&[3], true));

    // Upgraded, the old registry stores the next fine-tune in parts.
    let said = json(&old.ok(&["upgrade", "--json"]));
    assert_eq!(said["from"], 1);
    assert_eq!(said["to"], 3);
    assert_eq!(said["changed"], true);
    assert!(
        fs::read_to_string(&config)
            .unwrap()
            .contains("\nformat = 3\n")
    );
    old.write("out/model.safetensors", checkpoint(&[], true));
    let pushed = json(&old.ok(&["push", "out", "--model", "llm", "--json"]));
    assert_eq!(lists(&old.registry()).len(), 1);
    // The parts fetched with tuned@1 are there still (until gc): only layer 3's
    // weight and norm, where the two differ, are new.
    let new_bytes = pushed["new_bytes"].as_u64().unwrap();
    assert!(
        new_bytes >= 3 * MIB as u64 && new_bytes < 3 * MIB as u64 + 64 * 1024,
        "{pushed}"
    );
    let again = old.ok_err(&["upgrade"]);
    assert!(again.contains("at layout format 3 already"), "{again}");
    old.ok(&["pull", "llm@1", "--to", "one"]);
    old.ok(&["pull", "llm@2", "--to", "two"]);
    old.ok(&["fsck"]);
}

#[cfg(feature = "s3")]
#[test]
fn parts_go_to_a_bucket_and_come_back_and_gc_there_keeps_them() {
    let bucket = s3::bucket();
    let url = format!("s3://{bucket}/reg");
    let a = TestEnv::on_s3();
    a.ok(&["init", &url]);
    a.write("out/model.safetensors", checkpoint(&[], false));
    a.ok(&["--registry", &url, "push", "out", "--model", "llm"]);
    a.write("out/model.safetensors", checkpoint(&[], true));
    a.ok(&["--registry", &url, "push", "out", "--model", "llm"]);
    let keys = s3::keys(&bucket, "reg/objects/");
    assert_eq!(keys.iter().filter(|k| k.ends_with(".chunks")).count(), 2);
    a.ok(&["--registry", &url, "gc"]);
    let b = TestEnv::on_s3();
    b.ok(&["--registry", &url, "pull", "llm@1", "--to", "one"]);
    assert!(fs::read(b.path("one/model.safetensors")).unwrap() == checkpoint(&[], false));
    b.ok(&["clone", &url, "c"]);
    let c_reg = b.path("c/.mreg").display().to_string();
    b.ok(&["--registry", &c_reg, "pull", "llm@2", "--to", "two"]);
    assert!(fs::read(b.path("two/model.safetensors")).unwrap() == checkpoint(&[], true));
    b.ok(&["--registry", &c_reg, "fsck"]);
}

#[cfg(feature = "s3")]
#[test]
fn a_bucket_of_format_1_takes_files_whole_until_upgraded() {
    let bucket = s3::bucket();
    let url = format!("s3://{bucket}/reg");
    let a = TestEnv::on_s3();
    a.ok(&["init", &url]);
    let config = String::from_utf8(s3::get(&bucket, "reg/config.toml")).unwrap();
    s3::put(
        &bucket,
        "reg/config.toml",
        config.replace("format = 3", "format = 1").as_bytes(),
    );
    a.write("out/model.safetensors", checkpoint(&[], false));
    a.ok(&["--registry", &url, "push", "out", "--model", "llm"]);
    let chunked = || {
        s3::keys(&bucket, "reg/objects/")
            .iter()
            .filter(|k| k.ends_with(".chunks"))
            .count()
    };
    assert_eq!(chunked(), 0, "a bucket of format 1 got a chunk list");
    let said = json(&a.ok(&["--registry", &url, "upgrade", "--json"]));
    assert_eq!(
        (said["from"].as_u64(), said["changed"].as_bool()),
        (Some(1), Some(true))
    );
    assert!(
        String::from_utf8(s3::get(&bucket, "reg/config.toml"))
            .unwrap()
            .contains("\nformat = 3\n")
    );
    a.write("out/model.safetensors", checkpoint(&[], true));
    a.ok(&["--registry", &url, "push", "out", "--model", "llm"]);
    assert_eq!(chunked(), 1);
    let b = TestEnv::on_s3();
    b.ok(&["--registry", &url, "pull", "llm@2", "--to", "two"]);
    assert!(fs::read(b.path("two/model.safetensors")).unwrap() == checkpoint(&[], true));
}

#[test]
fn diff_of_files_in_parts_reads_only_changed_tensors_and_agrees_with_whole_files() {
    let tensors = |env: &TestEnv, args: &[&str]| {
        let mut argv = vec!["diff"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--json", "--only", "tensors"]);
        json(&env.ok(&argv))["tensors"].clone()
    };
    let parts = two_versions();
    parts.write("out/model.safetensors", checkpoint(&[1, 6], true));
    parts.ok(&["push", "out", "--model", "llm"]);
    // The same three versions, stored whole.
    let whole = TestEnv::new();
    whole.ok(&["init"]);
    let config = whole.registry().join("config.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, text.replace("format = 3", "format = 1")).unwrap();
    whole.write("out/config.json", "{\"layers\": 8}\n");
    for (changed, head) in [(&[][..], false), (&[][..], true), (&[1, 6][..], true)] {
        whole.write("out/model.safetensors", checkpoint(changed, head));
        whole.ok(&["push", "out", "--model", "llm"]);
    }
    for pair in [["llm@1", "llm@2"], ["llm@2", "llm@3"], ["llm@1", "llm@3"]] {
        assert_eq!(tensors(&parts, &pair), tensors(&whole, &pair), "{pair:?}");
    }
    let head = &tensors(&parts, &["llm@1", "llm@2"])[0]["summary"];
    assert_eq!(
        (head["modified"].as_u64(), head["same"].as_u64()),
        (Some(1), Some(16)),
        "{head}"
    );
    let layers = &tensors(&parts, &["llm@2", "llm@3"])[0]["summary"];
    assert_eq!(
        (layers["modified"].as_u64(), layers["same"].as_u64()),
        (Some(4), Some(13)),
        "{layers}"
    );
    // The parts of the tensors that changed are read, and checked: damage in one of
    // them is an error, not a wrong answer.
    let list_of = |version: &str| -> Vec<String> {
        let shown = json(&parts.ok(&["show", version, "--files", "--json"]));
        let hash = shown["file_list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == "model.safetensors")
            .unwrap()["hash"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = parts
            .registry()
            .join("objects")
            .join(&hash[..2])
            .join(format!("{}.chunks", &hash[2..]));
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(' ').next().unwrap().to_owned())
            .collect()
    };
    let before = list_of("llm@2");
    let new_part = list_of("llm@3")
        .into_iter()
        .find(|p| !before.contains(p))
        .unwrap();
    let file = object_file(&parts.registry(), &new_part);
    let mut bytes = fs::read(&file).unwrap();
    bytes[10] ^= 1;
    overwrite(&file, &bytes);
    let out = parts.run(&["diff", "llm@2", "llm@3", "--only", "tensors"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("is corrupt"), "{said}");
}

/// Returns the object file of the part on `line` (1 is the first part) of the only
/// chunk list in the registry folder `root`.
fn part_file(root: &Path, line: usize) -> (String, PathBuf) {
    let list = fs::read_to_string(&lists(root)[0]).unwrap();
    let hex = list
        .lines()
        .nth(line)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let file = object_file(root, &hex);
    (hex, file)
}

#[test]
fn a_part_that_is_a_fifo_or_a_link_is_refused_without_waiting_or_following() {
    let env = TestEnv::new();
    env.ok(&["init"]);
    env.write("big/weights.bin", noise(40 << 20, 21));
    env.ok(&["push", "big", "--model", "big"]);
    let (_, part) = part_file(&env.registry(), 2);
    fs::remove_file(&part).unwrap();
    mkfifo(&part);
    for args in [&["pull", "big@1", "--to", "out"][..], &["fsck"][..]] {
        let out = env.run_within(args, 30);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
    }
    assert!(!env.path("out").exists());
    // A link to bytes outside the registry is not followed either.
    fs::remove_file(&part).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &part).unwrap();
    let out = env.run_within(&["pull", "big@1", "--to", "out"], 30);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("cannot be read"), "{said}");
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success());
}

#[test]
fn a_missing_part_comes_back_from_a_remote_or_a_push_and_no_version_names_damage() {
    let env = TestEnv::new();
    env.ok(&["init"]);
    let weights = noise(40 << 20, 23);
    env.write("big/weights.bin", &weights);
    env.ok(&["push", "big", "--model", "big"]);
    let share = env.root().join("share").display().to_string();
    env.ok(&["remote", "add", "share", &share]);
    env.ok(&["sync"]);
    let (_, part) = part_file(&env.registry(), 2);
    let gone = || {
        fs::set_permissions(&part, fs::Permissions::from_mode(0o644)).unwrap();
        fs::remove_file(&part).unwrap();
        assert_eq!(env.run(&["fsck"]).status.code(), Some(1));
    };
    gone();
    env.ok(&["sync", "--recheck"]);
    env.ok(&["fsck"]);
    gone();
    // Pushing the same folder again stores the part, and records no new version.
    let again = json(&env.ok(&["push", "big", "--model", "big", "--json"]));
    assert_eq!(again["created"], false);
    env.ok(&["fsck"]);
    gone();
    // Pushed as another model, the content is stored whole again, not named damaged.
    env.ok(&["push", "big", "--model", "copy"]);
    env.ok(&["pull", "copy@1", "--to", "out"]);
    assert!(fs::read(env.path("out/weights.bin")).unwrap() == weights);
    // A link in a part's place, even to the right bytes, is replaced by the part.
    let elsewhere = env.path("elsewhere");
    fs::copy(&part, &elsewhere).unwrap();
    fs::set_permissions(&part, fs::Permissions::from_mode(0o644)).unwrap();
    fs::remove_file(&part).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &part).unwrap();
    env.ok(&["push", "big", "--model", "big"]);
    assert!(fs::symlink_metadata(&part).unwrap().is_file());
    env.ok(&["fsck"]);
}

#[test]
fn lists_mreg_never_writes_are_refused_by_pull_and_named_by_fsck() {
    // A small file given a chunk list of its own (as a hostile remote could plant it).
    let env = TestEnv::new();
    env.ok(&["init"]);
    env.write("small/a.bin", noise(3 << 20, 25));
    env.ok(&["push", "small", "--model", "small"]);
    let shown = json(&env.ok(&["show", "small@1", "--files", "--json"]));
    let hash = shown["file_list"][0]["hash"].as_str().unwrap().to_owned();
    let raw = object_file(&env.registry(), &hash);
    let bytes = fs::read(&raw).unwrap();
    // Two parts that make the file, each stored as an object, and the list.
    let mut text = String::from("mreg chunks 1\n");
    for (i, half) in bytes.chunks(bytes.len() / 2).enumerate() {
        let name = format!("half{i}");
        env.write(&format!("halves/{name}"), half);
        writeln!(text, "{} {}", blake3::hash(half).to_hex(), half.len()).unwrap();
    }
    env.ok(&["push", "halves", "--model", "halves"]);
    fs::set_permissions(&raw, fs::Permissions::from_mode(0o644)).unwrap();
    fs::remove_file(&raw).unwrap();
    fs::write(raw.with_extension("chunks"), text).unwrap();
    let out = env.run(&["pull", "small@1", "--to", "out"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("a file mreg stores whole"), "{said}");
    let out = env.run(&["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("a file mreg stores whole"));

    // Lists in a registry whose config says format 1.
    let two = two_versions();
    let config = two.registry().join("config.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, text.replace("format = 3", "format = 1")).unwrap();
    let out = two.run(&["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("mreg upgrade"));
    // And a format no mreg writes.
    fs::write(&config, text.replace("format = 3", "format = 0")).unwrap();
    let out = two.run(&["ls"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("layout format 0"));
}

#[test]
fn gc_deletes_nothing_when_a_list_a_version_needs_is_no_file() {
    let env = two_versions();
    let list = lists(&env.registry())[0].clone();
    fs::set_permissions(&list, fs::Permissions::from_mode(0o644)).unwrap();
    fs::remove_file(&list).unwrap();
    mkfifo(&list);
    let before = stored_bytes(&env.registry());
    let out = env.run_within(&["gc"], 30);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gc deleted nothing"));
    assert_eq!(stored_bytes(&env.registry()), before);
}

#[test]
fn upgrade_keeps_what_follows_the_format_and_quiet_is_quiet() {
    let env = TestEnv::new();
    env.ok(&["init"]);
    let config = env.registry().join("config.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        text.replace("format = 3", "format = 1   # made by 0.1"),
    )
    .unwrap();
    let out = env.run(&["upgrade", "-q"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert!(
        fs::read_to_string(&config)
            .unwrap()
            .contains("\nformat = 3   # made by 0.1\n")
    );
}

#[test]
fn a_clone_of_a_file_of_more_parts_than_open_files_allowed_completes() {
    // 240 parts, under a limit of 64 open files.
    let a = TestEnv::new();
    a.ok(&["init"]);
    let mut tensors = Vec::new();
    for i in 0..240 {
        tensors.push((format!("t{i:03}"), noise(1 << 20, 1000 + (i << 1))));
    }
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for (name, data) in &tensors {
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "U8", "shape": [data.len()], "data_offsets": [offset, offset + data.len()]}),
        );
        offset += data.len();
    }
    let json_bytes = serde_json::to_vec(&header).unwrap();
    let mut file = (json_bytes.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&json_bytes);
    for (_, data) in &tensors {
        file.extend_from_slice(data);
    }
    a.write("many/model.safetensors", &file);
    a.ok(&["push", "many", "--model", "many"]);
    let share = a.root().join("share").display().to_string();
    a.ok(&["remote", "add", "share", &share]);
    a.ok(&["sync"]);
    let b = TestEnv::new();
    let out = b.run_with_open_files(&["clone", &share, "b"], 64);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b_reg = b.path("b/.mreg").display().to_string();
    b.ok(&["--registry", &b_reg, "pull", "many@1", "--to", "out"]);
    assert!(fs::read(b.path("out/model.safetensors")).unwrap() == file);
}

#[test]
fn parts_cross_filesystems_on_push_and_pull() {
    // /dev/shm is a tmpfs where there is one: another filesystem than the test's.
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("no /dev/shm here: nothing to cross");
        return;
    }
    let env = TestEnv::new();
    env.ok(&["init"]);
    let there = tempfile::tempdir_in(shm).unwrap();
    let weights = noise(40 << 20, 27);
    fs::create_dir(there.path().join("src")).unwrap();
    fs::write(there.path().join("src/weights.bin"), &weights).unwrap();
    let src = there.path().join("src").display().to_string();
    env.ok(&["push", &src, "--model", "big"]);
    let out = there.path().join("out").display().to_string();
    env.ok(&["pull", "big@1", "--to", &out]);
    assert!(fs::read(there.path().join("out/weights.bin")).unwrap() == weights);
    env.ok(&["fsck"]);
}

#[test]
fn a_new_file_stored_in_one_pass_gets_the_parts_a_known_one_gets() {
    // The same content pushed where the folder never held a file of its size (one
    // pass) and where it did (hashed whole first) must give the same list, or the
    // same tensors would be stored twice.
    for (name, content) in [
        ("model.safetensors", checkpoint(&[3], true)),
        ("weights.bin", noise(45 << 20, 29)),
    ] {
        let fresh = TestEnv::new();
        fresh.ok(&["init"]);
        fresh.write(&format!("out/{name}"), &content);
        fresh.ok(&["push", "out", "--model", "m"]);
        let known = TestEnv::new();
        known.ok(&["init"]);
        let mut other = content.clone();
        let n = other.len();
        other[n - 1] ^= 0xff;
        known.write(&format!("out/{name}"), &other);
        known.ok(&["push", "out", "--model", "m"]);
        known.write(&format!("out/{name}"), &content);
        known.ok(&["push", "out", "--model", "m"]);
        let list_of = |env: &TestEnv| -> Vec<String> {
            let mut all: Vec<String> = lists(&env.registry())
                .iter()
                .map(|p| fs::read_to_string(p).unwrap())
                .collect();
            all.sort();
            all
        };
        let fresh_lists = list_of(&fresh);
        assert_eq!(fresh_lists.len(), 1, "{name}");
        assert!(
            list_of(&known).contains(&fresh_lists[0]),
            "{name}: the two paths cut differently"
        );
        fresh.ok(&["pull", "m@1", "--to", "back"]);
        assert!(fs::read(fresh.path(&format!("back/{name}"))).unwrap() == content);
    }
}
