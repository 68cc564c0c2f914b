//! Hostile registries: trees and objects written by hand, as anyone with write access
//! to a shared registry folder or bucket could. Every command must refuse them with a
//! clear error, quickly, without crashing, and leave the good models usable.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::Path;

use crate::common::TestEnv;
use mreg::store::ObjectId;

/// Writes bytes as a raw object under their own hash.
pub fn plant(reg: &Path, bytes: &[u8]) -> ObjectId {
    let id = ObjectId::of(bytes);
    plant_as(reg, id, bytes, false);
    id
}

/// Writes `stored` as the object named `id`, raw or as `.zst`, whatever it holds.
pub fn plant_as(reg: &Path, id: ObjectId, stored: &[u8], zst: bool) {
    let hex = id.to_hex();
    let dir = reg.join("objects").join(&hex[..2]);
    fs::create_dir_all(&dir).unwrap();
    let name = if zst {
        format!("{}.zst", &hex[2..])
    } else {
        hex[2..].to_owned()
    };
    fs::write(dir.join(name), stored).unwrap();
}

/// Writes a tree of `(kind, object, size, name)` lines, given in name order.
pub fn plant_tree(reg: &Path, entries: &[(&str, ObjectId, u64, &str)]) -> ObjectId {
    let mut text = String::from("mreg tree 1\n");
    for (kind, id, size, name) in entries {
        writeln!(text, "{kind} {id} {size} {name}").unwrap();
    }
    plant(reg, text.as_bytes())
}

/// Writes the record of `model@n`, naming `tree` and declaring `files` and `bytes`.
pub fn plant_version(reg: &Path, model: &str, n: u64, tree: ObjectId, files: u64, bytes: u64) {
    let dir = reg.join(format!("models/{model}/versions"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join(format!("{n}.toml")),
        format!(
            "format = 1\nmodel = \"{model}\"\nversion = {n}\ntree = \"{tree}\"\nfiles = {files}\n\
             bytes = {bytes}\ncreated = \"2026-01-01T00:00:00Z\"\nactor = \"mallory\"\n"
        ),
    )
    .unwrap();
}

/// A registry with an intact model `m` (one version) to check nothing else breaks.
fn registry_with_a_good_model() -> TestEnv {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.ok(&["push", "v1", "--model", "m"]);
    env
}

/// Plants `model@n`: one file holding `leaf` below `levels` nested folders.
fn plant_deep(reg: &Path, model: &str, n: u64, levels: usize, leaf: &[u8]) {
    let blob = plant(reg, leaf);
    let size = leaf.len() as u64;
    let mut tree = plant_tree(reg, &[("file", blob, size, "f")]);
    for _ in 0..levels {
        tree = plant_tree(reg, &[("dir", tree, size, "d")]);
    }
    plant_version(reg, model, n, tree, 1, size);
}

/// Plants `model@n`: `levels` trees, each naming the one below twice, so the version
/// declares 2^levels copies of one file.
fn plant_doubling(reg: &Path, model: &str, n: u64, levels: u32, leaf: &[u8]) {
    let blob = plant(reg, leaf);
    let mut size = leaf.len() as u64;
    let mut tree = plant_tree(reg, &[("file", blob, size, "f")]);
    for _ in 0..levels {
        tree = plant_tree(reg, &[("dir", tree, size, "a"), ("dir", tree, size, "b")]);
        size *= 2;
    }
    plant_version(reg, model, n, tree, 1 << levels, size);
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_tree_nested_twenty_thousand_deep_is_refused_by_every_command_without_a_crash() {
    let env = registry_with_a_good_model();
    let reg = env.registry();
    plant_deep(&reg, "deep", 1, 20_000, b"x");

    let fsck = env.run_within(&["fsck"], 120);
    assert_eq!(fsck.status.code(), Some(1), "{}", stderr(&fsck));
    let found = stdout(&fsck);
    assert!(found.contains("models/deep/versions/1.toml"), "{found}");
    assert!(
        found.contains("nests folders deeper than 512 levels"),
        "{found}"
    );
    assert!(
        !found.contains("models/m/"),
        "the good model is reported: {found}"
    );

    env.each_refuses(
        &[
            &["pull", "deep@1", "--to", "serve"],
            &["show", "deep@1", "--files"],
            &["promote", "deep@1", "staging"],
        ],
        60,
        "deeper than 512 levels",
    );
    assert!(!env.path("serve").exists());
    assert!(!env.registry().join("models/deep/HEAD").exists());
    env.ok(&["pull", "m@1", "--to", "serve"]);
}

#[test]
fn a_folder_read_once_but_named_again_deeper_down_is_held_to_the_depth_limit() {
    let env = registry_with_a_good_model();
    let reg = env.registry();
    let leaf = plant(&reg, b"x");
    let mut chain = plant_tree(&reg, &[("file", leaf, 1, "f")]);
    for _ in 0..300 {
        chain = plant_tree(&reg, &[("dir", chain, 1, "d")]);
    }
    let mut deep = plant_tree(&reg, &[("dir", chain, 1, "again")]);
    for _ in 0..300 {
        deep = plant_tree(&reg, &[("dir", deep, 1, "e")]);
    }
    let root = plant_tree(&reg, &[("dir", chain, 1, "a"), ("dir", deep, 1, "b")]);
    plant_version(&reg, "twice", 1, root, 2, 2);

    env.each_refuses(
        &[
            &["diff", "m@1", "twice@1"],
            &["pull", "twice@1", "--to", "serve"],
            &["show", "twice@1", "--files"],
        ],
        60,
        "deeper than 512 levels",
    );
    let fsck = env.run_within(&["fsck"], 60);
    assert_eq!(fsck.status.code(), Some(1), "{}", stdout(&fsck));
    assert!(
        stdout(&fsck).contains("deeper than 512 levels"),
        "{}",
        stdout(&fsck)
    );
}

#[test]
fn a_graph_whose_paths_multiply_is_refused_quickly_by_every_command() {
    let env = registry_with_a_good_model();
    let reg = env.registry();
    plant_doubling(&reg, "bomb", 1, 60, b"x");
    plant_doubling(&reg, "bomb", 2, 60, b"y");

    let fsck = env.run_within(&["fsck"], 60);
    assert_eq!(fsck.status.code(), Some(1), "{}", stderr(&fsck));
    let found = stdout(&fsck);
    assert!(found.contains("models/bomb/versions/1.toml"), "{found}");
    assert!(found.contains("models/bomb/versions/2.toml"), "{found}");
    assert!(found.contains("more than 10000000 paths"), "{found}");

    env.each_refuses(
        &[
            &["pull", "bomb@1", "--to", "serve"],
            &["show", "bomb@2", "--files"],
            &["diff", "bomb@1", "bomb@2"],
            &["promote", "bomb@1", "staging"],
        ],
        30,
        "more than 10000000 paths",
    );
    assert!(!env.path("serve").exists());
    env.ok(&["pull", "m@1", "--to", "serve"]);
}

#[test]
fn a_raw_object_larger_than_its_declared_size_is_refused_before_it_is_copied() {
    let env = registry_with_a_good_model();
    let reg = env.registry();
    // Stored under the name of the one-byte content "x", but 16 MiB long.
    let id = ObjectId::of(b"x");
    plant_as(&reg, id, &vec![b'x'; 16 << 20], false);
    let tree = plant_tree(&reg, &[("file", id, 1, "weights.bin")]);
    plant_version(&reg, "liar", 1, tree, 1, 1);

    let out = env.run_within(&["pull", "liar@1", "--to", "serve"], 30);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("holds more than the 1 bytes its tree declares"),
        "{}",
        stderr(&out)
    );
    assert!(!env.path("serve").exists());
    let leftovers: Vec<_> = fs::read_dir(env.path("")).unwrap().collect();
    assert_eq!(
        leftovers.len(),
        2,
        "only v1 and .mreg remain: {leftovers:?}"
    );

    let fsck = env.run_within(&["fsck"], 30);
    assert_eq!(fsck.status.code(), Some(1));
    assert!(
        stdout(&fsck).contains("holds more than the 1 bytes its trees declare"),
        "{}",
        stdout(&fsck)
    );
}

#[test]
fn a_compressed_object_that_inflates_past_its_declared_size_is_refused_early() {
    let env = registry_with_a_good_model();
    let reg = env.registry();
    // One GiB of zeros in a few hundred KiB, stored as the one-byte content "x".
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    let id = ObjectId::of(b"x");
    plant_as(&reg, id, &bomb, true);
    let tree = plant_tree(&reg, &[("file", id, 1, "weights.bin")]);
    plant_version(&reg, "liar", 1, tree, 1, 1);

    for args in [
        &["pull", "liar@1", "--to", "serve"][..],
        &["show", "liar@1", "--files"],
    ] {
        let out = env.run_within(args, 30);
        if args[0] == "show" {
            // Listing files reads no content.
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            continue;
        }
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("holds more than the 1 bytes its tree declares"),
            "{}",
            stderr(&out)
        );
    }
    assert!(!env.path("serve").exists());
    let fsck = env.run_within(&["fsck"], 30);
    assert_eq!(fsck.status.code(), Some(1));
    assert!(
        stdout(&fsck).contains("holds more than the 1 bytes its trees declare"),
        "{}",
        stdout(&fsck)
    );
}

#[test]
fn fsck_reports_what_pull_refuses() {
    let env = registry_with_a_good_model();
    let reg = env.registry();
    // A link leading outside the folder.
    let target = plant(&reg, b"../../outside");
    let tree = plant_tree(&reg, &[("link", target, 13, "up")]);
    plant_version(&reg, "links", 1, tree, 0, 0);
    // A folder whose declared size is not the bytes below it.
    let blob = plant(&reg, b"12345");
    let inner = plant_tree(&reg, &[("file", blob, 5, "w.bin")]);
    let tree = plant_tree(&reg, &[("dir", inner, 1, "a")]);
    plant_version(&reg, "sizes", 1, tree, 1, 1);
    // A record that declares other totals than its tree holds.
    let tree = plant_tree(&reg, &[("file", blob, 5, "w.bin")]);
    plant_version(&reg, "totals", 1, tree, 3, 500);
    // A file whose object holds other bytes than its tree declares.
    let tree = plant_tree(&reg, &[("file", blob, 4, "w.bin")]);
    plant_version(&reg, "short", 1, tree, 1, 4);

    let fsck = env.run(&["fsck"]);
    assert_eq!(fsck.status.code(), Some(1));
    let found = stdout(&fsck);
    for (model, what) in [
        (
            "links",
            "up: pull refuses this link: its target \"../../outside\" leads outside",
        ),
        ("sizes", "folder a declares 1 bytes but holds 5"),
        (
            "totals",
            "declares 3 files of 500 bytes, but its tree holds 1 files of 5 bytes",
        ),
        ("short", "w.bin: object"),
    ] {
        let line = found
            .lines()
            .find(|l| l.contains(&format!("models/{model}/")))
            .unwrap_or_else(|| panic!("{model} is not reported: {found}"));
        assert!(line.contains(what), "{model}: {line}");
    }
    for model in ["links", "sizes", "totals", "short"] {
        let out = env.run(&["pull", &format!("{model}@1"), "--to", "serve"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "pull of {model} was not refused"
        );
    }
    assert!(!found.contains("models/m/"), "{found}");
}

#[test]
fn push_refuses_a_folder_deeper_than_a_version_may_hold() {
    let env = TestEnv::with_registry();
    let deep = "d/".repeat(513);
    env.write(&format!("out/{deep}f"), "x");
    let out = env.run(&["push", "out", "--model", "m"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nests folders deeper than 512 levels"),
        "{}",
        stderr(&out)
    );
    assert!(!env.registry().join("models/m").exists());
    let ok = "d/".repeat(512);
    env.write(&format!("fine/{ok}f"), "x");
    env.ok(&["push", "fine", "--model", "m"]);
    env.ok(&["pull", "m@1", "--to", "serve"]);
    assert!(env.path(&format!("serve/{ok}f")).is_file());
}

/// Returns a registry holding `m@1` at `staging`, synced to a folder remote `share`
/// into which hostile items are then planted: versions that nest too deep, multiply
/// their paths, do not parse, or name an object larger than declared, and a run file
/// that is not one. Returns the environment and the share's path.
fn a_share_with_hostile_items() -> (TestEnv, String) {
    let a = registry_with_a_good_model();
    a.ok(&["promote", "m@1", "staging"]);
    let share = a.root().join("share");
    a.ok(&["remote", "add", "share", &share.display().to_string()]);
    a.ok(&["sync"]);
    let reg = share.join(".mreg");
    plant_deep(&reg, "evil", 1, 20_000, b"x");
    fs::write(
        reg.join("models/evil/versions/2.toml"),
        "this is not a record",
    )
    .unwrap();
    plant_doubling(&reg, "bomb", 1, 60, b"x");
    let id = ObjectId::of(b"y");
    plant_as(&reg, id, &vec![b'y'; 1 << 20], false);
    let tree = plant_tree(&reg, &[("file", id, 1, "w.bin")]);
    plant_version(&reg, "liar", 1, tree, 1, 1);
    fs::create_dir_all(reg.join("runs/0123456789abcdef")).unwrap();
    fs::write(reg.join("runs/0123456789abcdef/run.toml"), "garbage = [").unwrap();
    (a, share.display().to_string())
}

const REFUSED: [&str; 5] = [
    "models/bomb/versions/1.toml",
    "models/evil/versions/1.toml",
    "models/evil/versions/2.toml",
    "models/liar/versions/1.toml",
    "runs/0123456789abcdef/run.toml",
];

#[test]
fn clone_skips_and_names_each_hostile_item_and_copies_everything_else() {
    let (_a, share) = a_share_with_hostile_items();
    let b = TestEnv::new();
    let out = b.run_within(&["clone", &share, "reg"], 60);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = stderr(&out);
    for key in REFUSED {
        assert!(
            said.contains(&format!("refused {key} on ")),
            "{key}: {said}"
        );
    }
    assert!(
        said.contains("those 5 items were left where they are"),
        "{said}"
    );
    let json: serde_json::Value = serde_json::from_str(&String::from_utf8_lossy(
        &b.run(&["clone", &share, "again", "--json"]).stdout,
    ))
    .unwrap();
    let keys: Vec<&str> = json["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, REFUSED);

    b.ok(&["--registry", "reg", "pull", "m@staging", "--to", "serve"]);
    assert!(b.path("serve").is_dir());
    let fsck = b.run(&["--registry", "reg", "fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", stdout(&fsck));
    for model in ["evil", "bomb", "liar"] {
        assert!(
            !b.path(&format!("reg/.mreg/models/{model}/versions"))
                .exists()
        );
    }
    assert!(!b.path("reg/.mreg/runs/0123456789abcdef").exists());
}

#[test]
fn sync_with_a_share_holding_hostile_items_still_sends_and_fetches_the_good_ones() {
    let (a, share) = a_share_with_hostile_items();
    let b = TestEnv::new();
    b.run_within(&["clone", &share, "reg"], 60);
    // A new version and a stage move on one side reach the other through the share.
    a.fixture("tiny-v2", "v2");
    a.ok(&["push", "v2", "--model", "m"]);
    a.ok(&["promote", "m@2", "staging"]);
    let sent = a.run_within(&["sync"], 60);
    assert_eq!(sent.status.code(), Some(1), "{}", stderr(&sent));
    assert!(stderr(&sent).contains("Sent to share"), "{}", stderr(&sent));
    let got = b.run_within(&["--registry", "reg", "sync"], 60);
    assert_eq!(got.status.code(), Some(1), "{}", stderr(&got));
    b.ok(&["--registry", "reg", "pull", "m@staging", "--to", "serve"]);
    let shown = b.ok(&["--registry", "reg", "show", "m@staging", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["version"], 2, "{shown}");
    let fsck = b.run(&["--registry", "reg", "fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", stdout(&fsck));
}

#[test]
fn a_lost_head_is_reported_refused_and_restored_by_one_command() {
    let env = registry_with_a_good_model();
    env.ok(&["promote", "m@1", "staging"]);
    env.ok(&[
        "promote",
        "m@1",
        "production",
        "--force",
        "--reason",
        "first",
    ]);
    let head = env.registry().join("models/m/HEAD");
    let before = fs::read(&head).unwrap();
    fs::remove_file(&head).unwrap();

    let fsck = env.run(&["fsck"]);
    assert_eq!(fsck.status.code(), Some(1));
    assert!(
        stdout(&fsck).contains("HEAD is missing, though m had one and has 2 stage states"),
        "{}",
        stdout(&fsck)
    );
    for args in [
        &["promote", "m@1", "staging"][..],
        &["pull", "m@production", "--to", "serve"],
        &["history", "m"],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("mreg fsck --restore-head m"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(!head.exists(), "a promotion started a new history");
    // Other models are still listed, and the listing says what it left out.
    env.ok(&["push", "v1", "--model", "other"]);
    let ls = env.run(&["ls"]);
    assert_eq!(ls.status.code(), Some(1));
    assert!(stdout(&ls).contains("other@1"), "{}", stdout(&ls));
    assert!(stderr(&ls).contains("m is left out"), "{}", stderr(&ls));

    let restored = env.run(&["fsck", "--restore-head", "m"]);
    assert_eq!(restored.status.code(), Some(0), "{}", stderr(&restored));
    assert!(
        stderr(&restored).contains("Restored the HEAD of m"),
        "{}",
        stderr(&restored)
    );
    assert_eq!(fs::read(&head).unwrap(), before);
    env.ok(&["pull", "m@production", "--to", "serve"]);
    env.ok(&["fsck"]);
    let again = env.run(&["fsck", "--restore-head", "m"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("nothing to restore"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn records_holding_impossible_values_are_refused_naming_the_field() {
    let env = registry_with_a_good_model();
    let record = env.registry().join("models/m/versions/1.toml");
    let text = fs::read_to_string(&record).unwrap();
    let created = text.lines().find(|l| l.starts_with("created")).unwrap();
    fs::write(
        &record,
        text.replace(created, "created = \"99999-01-01T00:00:00Z\""),
    )
    .unwrap();
    let out = env.run(&["show", "m@1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("created is \"99999-01-01T00:00:00Z\", which is not a time"),
        "{}",
        stderr(&out)
    );
    fs::write(&record, &text).unwrap();

    let run_dir = fs::read_dir(env.registry().join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let run_file = run_dir.path().join("run.toml");
    let run = fs::read_to_string(&run_file).unwrap();
    let duration = run.lines().find(|l| l.starts_with("duration_s")).unwrap();
    fs::write(&run_file, run.replace(duration, "duration_s = -1e308")).unwrap();
    let id = run_dir.file_name().into_string().unwrap();
    let out = env.run(&["show", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("end.duration_s is"),
        "{}",
        stderr(&out)
    );
    let fsck = env.run(&["fsck"]);
    assert!(
        stdout(&fsck).contains("end.duration_s is"),
        "{}",
        stdout(&fsck)
    );
}

#[test]
fn text_output_shows_control_characters_of_records_visibly_and_json_keeps_them() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.ok(&[
        "push",
        "v1",
        "--model",
        "m",
        "--message",
        "fine\x1b[2J\x1b[Hmsg",
        "--tag",
        "team=a\x1b]0;title\x07b",
    ]);
    let out = env.run_with(
        &[
            "promote",
            "m@1",
            "production",
            "--force",
            "--reason",
            "ok\rFAKE\x1b[31m\nline",
        ],
        &[("MREG_ACTOR", "eve\x1b[8m")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // A run record as a remote could hold it: its name with an escape sequence.
    let runs = env.registry().join("runs");
    let run = fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    let id = run.file_name().unwrap().to_str().unwrap().to_owned();
    let record = run.join("run.toml");
    let text = fs::read_to_string(&record).unwrap();
    let text = text.replace(
        "experiment = \"m\"",
        "experiment = \"m\"\nname = \"n\\u001b[5mx\"",
    );
    fs::write(&record, text).unwrap();

    let bad = ['\x1b', '\r', '\x07'];
    let mut shown = String::new();
    for args in [
        &["ls"][..],
        &["ls", "m"],
        &["history", "m"],
        &["history", "m", "--md"],
        &["runs", "--columns", "name,tag.team"],
        &["show", "m@1"],
        &["show", &id],
    ] {
        let out = env.run(args);
        let text = stdout(&out);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(
            !text.contains(bad),
            "{args:?} printed a control character: {text:?}"
        );
        shown.push_str(&text);
    }
    assert!(shown.contains("fine\\e[2J\\e[Hmsg"), "{shown}");
    assert!(shown.contains("ok\\rFAKE\\e[31m\\nline"), "{shown}");
    assert!(shown.contains("eve\\e[8m"), "{shown}");
    insta::assert_snapshot!(env.snap(&["history", "m"]), @r"
    exit: 0
    --- stdout
    #  TIME                  ACTION   MOVES               GATES  BY        REASON
    1  2026-01-01T00:02:00Z  promote  production: - -> 1  -      eve\e[8m  ok\rFAKE\e[31m\nline
    --- stderr
    ");
    let history: serde_json::Value =
        serde_json::from_str(&stdout(&env.run(&["history", "m", "--json"]))).unwrap();
    assert_eq!(history[0]["reason"], "ok\rFAKE\x1b[31m\nline");
    assert_eq!(history[0]["actor"], "eve\x1b[8m");
    let runs: serde_json::Value =
        serde_json::from_str(&stdout(&env.run(&["runs", "--json"]))).unwrap();
    assert_eq!(runs[0]["name"], "n\x1b[5mx");
    assert_eq!(runs[0]["tags"]["team"], "a\x1b]0;title\x07b");
}

#[test]
fn a_series_object_named_many_times_is_shown_once() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    let mut lines = String::new();
    for step in 1..=20 {
        writeln!(lines, "{{\"step\": {step}, \"loss\": 0.5}}").unwrap();
    }
    env.write("m.jsonl", lines);
    env.ok(&["push", "v1", "--model", "m", "--metrics-file", "m.jsonl"]);
    let runs = env.registry().join("runs");
    let run = fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    let id = run.file_name().unwrap().to_str().unwrap().to_owned();
    let record = run.join("run.toml");
    let text = fs::read_to_string(&record).unwrap();
    let start = text.find("objects = [").unwrap();
    let end = start + text[start..].find(']').unwrap() + 1;
    let one = &text[start + "objects = [".len()..end - 1];
    let many = vec![one; 5_000].join(", ");
    fs::write(
        &record,
        format!("{}objects = [{many}]{}", &text[..start], &text[end..]),
    )
    .unwrap();
    let out = env.run(&["show", &id, "--series", "loss", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        shown["series"]["loss"]["points"].as_array().unwrap().len(),
        20
    );
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn fifos_in_a_folder_remote_are_refused_by_name_and_everything_else_syncs() {
    let a = registry_with_a_good_model();
    let share = a.root().join("share");
    let url = share.display().to_string();
    a.ok(&["remote", "add", "share", &url]);
    a.ok(&["sync"]);
    let reg = share.join(".mreg");
    mkfifo(&reg.join("models/m/versions/2.toml"));
    let run = fs::read_dir(reg.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    mkfifo(&run.join("log/00000000000000000001-abcd1234.toml"));
    mkfifo(&reg.join("models/m/notes"));

    let b = TestEnv::new();
    let out = b.run_within(&["clone", &url, "reg", "--json"], 30);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut refused: Vec<(String, String)> = json["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    refused.sort();
    let run_id = run.file_name().unwrap().to_str().unwrap();
    let keys: Vec<&str> = refused.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "models/m/notes".to_owned(),
            "models/m/versions/2.toml".to_owned(),
            format!("runs/{run_id}/log/00000000000000000001-abcd1234.toml"),
        ]
    );
    assert!(
        refused
            .iter()
            .all(|(_, m)| m.starts_with("it is a FIFO, not a regular file")),
        "{refused:?}"
    );
    b.ok(&["--registry", "reg", "pull", "m@1", "--to", "serve"]);
    assert!(
        b.path(&format!("reg/.mreg/runs/{run_id}/run.toml"))
            .is_file()
    );
    // A sync from the other side names them as well, and still sends.
    a.fixture("tiny-v2", "v2");
    a.ok(&["push", "v2", "--model", "other"]);
    let sent = a.run_within(&["sync"], 30);
    assert_eq!(sent.status.code(), Some(1), "{}", stderr(&sent));
    assert!(
        stderr(&sent).contains("refused models/m/versions/2.toml on "),
        "{}",
        stderr(&sent)
    );
    assert!(reg.join("models/other/versions/1.toml").is_file());
}

/// A registry with `m@1` (staging) and `m@2` (production) synced to a folder remote;
/// returns it and the remote's URL.
fn a_share_with_two_versions() -> (TestEnv, String) {
    let a = registry_with_a_good_model();
    a.fixture("tiny-v2", "v2");
    a.ok(&["push", "v2", "--model", "m"]);
    a.ok(&["promote", "m@1", "staging"]);
    a.ok(&["promote", "m@2", "production"]);
    let share = a.root().join("share").display().to_string();
    a.ok(&["remote", "add", "share", &share]);
    a.ok(&["sync"]);
    (a, share)
}

/// Returns the keys a `--json` sync or clone refused.
fn refused_keys(out: &std::process::Output) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap();
    let mut keys: Vec<String> = json["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    keys
}

#[test]
fn stages_pointing_at_a_version_the_remote_lacks_are_not_taken() {
    let (a, share) = a_share_with_two_versions();
    fs::remove_file(a.root().join("share/.mreg/models/m/versions/2.toml")).unwrap();
    let b = TestEnv::new();
    let out = b.run_within(&["clone", &share, "reg", "--json"], 30);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(refused_keys(&out), ["models/m/HEAD"]);
    assert!(
        stdout(&out).contains("m@production at version 2"),
        "{}",
        stdout(&out)
    );
    let ls = b.run(&["--registry", "reg", "show", "m@production"]);
    assert_eq!(ls.status.code(), Some(1), "{}", stderr(&ls));
    b.ok(&["--registry", "reg", "pull", "m@1", "--to", "serve"]);
    let fsck = b.run(&["--registry", "reg", "fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", stdout(&fsck));
}

#[test]
fn a_version_whose_run_neither_side_holds_is_refused() {
    let (a, share) = a_share_with_two_versions();
    let shown: serde_json::Value = serde_json::from_str(&a.ok(&["show", "m@2", "--json"])).unwrap();
    let run = shown["run"].as_str().unwrap().to_owned();
    fs::remove_dir_all(a.root().join(format!("share/.mreg/runs/{run}"))).unwrap();
    let b = TestEnv::new();
    let out = b.run_within(&["clone", &share, "reg", "--json"], 30);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(refused_keys(&out), ["models/m/versions/2.toml"]);
    let fsck = b.run(&["--registry", "reg", "fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", stdout(&fsck));
    b.ok(&["--registry", "reg", "pull", "m@1", "--to", "serve"]);
}

#[test]
fn a_damaged_local_object_is_not_sent_and_its_version_waits() {
    let a = registry_with_a_good_model();
    let share = a.root().join("share").display().to_string();
    a.ok(&["remote", "add", "share", &share]);
    a.ok(&["sync"]);
    a.fixture("tiny-v2", "v2");
    let weights = crate::common::noise(64 << 10, 9);
    a.write("v2/blob.bin", &weights);
    a.ok(&["push", "v2", "--model", "m"]);
    // Flip one byte of the object holding m@2's blob, keeping its length.
    let hex = ObjectId::of(&weights).to_hex();
    let fan = a.registry().join("objects").join(&hex[..2]);
    let path = [fan.join(&hex[2..]), fan.join(format!("{}.zst", &hex[2..]))]
        .into_iter()
        .find(|p| p.exists())
        .unwrap();
    assert!(
        !path.to_string_lossy().ends_with(".zst"),
        "the weights are stored raw"
    );
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 0xff;
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    fs::write(&path, &bytes).unwrap();
    let out = a.run_within(&["sync", "--json"], 30);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(refused_keys(&out), ["models/m/versions/2.toml"]);
    assert!(stdout(&out).contains("is corrupt"), "{}", stdout(&out));
    let sent = a
        .root()
        .join("share/.mreg/objects")
        .join(&hex[..2])
        .join(&hex[2..]);
    assert!(!sent.exists(), "the damaged object reached the remote");
    assert!(
        !a.root()
            .join("share/.mreg/models/m/versions/2.toml")
            .exists()
    );
}

#[test]
fn a_remote_that_lost_its_head_is_not_overwritten_by_a_sync() {
    let (a, share) = a_share_with_two_versions();
    let head = a.root().join("share/.mreg/models/m/HEAD");
    fs::remove_file(&head).unwrap();
    a.ok(&["promote", "m@2", "staging"]);
    let out = a.run_within(&["sync", "--json"], 30);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(refused_keys(&out), ["models/m/HEAD"]);
    assert!(
        stdout(&out).contains("--restore-head m"),
        "{}",
        stdout(&out)
    );
    assert!(
        !head.exists(),
        "the lost HEAD was replaced by this registry's"
    );
    // Nothing else is left to move, and the summary does not say the two agree.
    let again = a.run_within(&["sync"], 30);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("Nothing moved between share"),
        "{}",
        stderr(&again)
    );
    assert!(
        !stderr(&again).contains("nothing to do"),
        "{}",
        stderr(&again)
    );
    a.ok(&["--registry", &share, "fsck", "--restore-head", "m"]);
    a.ok(&["sync"]);
}

#[test]
fn fsck_stops_decoding_a_compressed_object_no_version_declares() {
    let env = registry_with_a_good_model();
    // A few KiB of zstd that decode to 1 GiB of zeros, named by no tree.
    let mut frame = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        frame.write_all(&zeros).unwrap();
    }
    let frame = frame.finish().unwrap();
    plant_as(&env.registry(), ObjectId::of(b"bomb"), &frame, true);
    let fsck = env.run_within(&["fsck"], 60);
    assert_eq!(fsck.status.code(), Some(1), "{}", stderr(&fsck));
    assert!(
        stdout(&fsck).contains("inflates past 268435456 bytes"),
        "{}",
        stdout(&fsck)
    );
}
