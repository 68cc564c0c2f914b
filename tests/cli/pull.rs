//! `mreg pull`: materializing versions, and refusing unsafe trees and targets.

use std::fs;

use crate::common::{TestEnv, listing, noise};
use insta::assert_snapshot;
use mreg::store::ObjectId;

#[test]
fn pull_gives_back_the_pushed_folder_exactly() {
    let env = TestEnv::with_registry();
    let v1 = env.fixture("tiny-v1", "v1");
    env.ok(&["push", "v1", "--model", "m"]);
    assert_snapshot!(env.snap(&["pull", "m@1", "--to", "serve"]), @"
    exit: 0
    --- stdout
    --- stderr
    Pulled m@1 (4 files, 476 B) into [TMP]/work/serve.
    ");
    assert_eq!(listing(&env.path("serve")), listing(&v1));
    assert!(listing(&v1).iter().any(|l| l.starts_with("exec serve.sh")));
    assert!(
        listing(&v1)
            .iter()
            .any(|l| l == "link weights.safetensors -> model.safetensors")
    );
}

#[test]
fn each_reference_form_resolves() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.fixture("tiny-v2", "v2");
    env.ok(&["push", "v1", "--model", "m"]);
    env.ok(&["push", "v2", "--model", "m"]);
    let tree1: serde_json::Value =
        serde_json::from_str(&env.ok(&["show", "m@1", "--json"])).unwrap();
    let prefix = &tree1["tree"].as_str().unwrap()[..8];
    for (reference, version) in [
        ("m", 2),
        ("m@latest", 2),
        ("m@1", 1),
        ("m@v2", 2),
        (&format!("m@{prefix}")[..], 1),
    ] {
        let shown: serde_json::Value =
            serde_json::from_str(&env.ok(&["show", reference, "--json"])).unwrap();
        assert_eq!(shown["version"], version, "{reference}");
    }
}

#[test]
fn unknown_and_ambiguous_references_say_what_they_could_mean() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.fixture("tiny-v2", "v2");
    env.ok(&["push", "v1", "--model", "m"]);
    env.ok(&["push", "v2", "--model", "m"]);
    env.ok(&["push", "v1", "--model", "m"]);
    let tree1: serde_json::Value =
        serde_json::from_str(&env.ok(&["show", "m@1", "--json"])).unwrap();
    let prefix = &tree1["tree"].as_str().unwrap()[..8];
    assert_snapshot!(env.snap(&["pull", "m@9", "--to", "x"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: m@9 does not exist
    hint: m has versions 1 to 3
    ");
    assert_snapshot!(env.snap(&["pull", "nope@1", "--to", "x"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: no model named "nope"
    hint: models: m; `mreg ls` lists them
    "#);
    assert_snapshot!(env.snap(&["pull", "m@production", "--to", "x"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: production of m holds no version
    hint: promote one: mreg promote m@N production; `mreg history m` shows past moves
    ");
    assert_snapshot!(env.snap(&["pull", "m@ffffff", "--to", "x"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: no version of m has a tree hash starting with ffffff
    hint: m has versions 1 to 3; `mreg ls m` shows their trees
    ");
    assert_snapshot!(env.snap(&["pull", &format!("m@{prefix}"), "--to", "x"]), @"
    exit: 2
    --- stdout
    --- stderr
    error: m@6b24fac0 is ambiguous: it matches m@1 (tree 6b24fac002fe), m@3 (tree 6b24fac002fe)
    hint: these versions hold the same content; name one by its number
    ");
    assert_snapshot!(env.snap(&["pull", "m@", "--to", "x"]), @r#"
    exit: 2
    --- stdout
    --- stderr
    error: "m@" has nothing after '@'
    hint: write m@3, m@latest or m@<tree hash>
    "#);
    assert!(!env.path("x").exists());
}

#[test]
fn a_non_empty_target_needs_force_and_is_then_replaced_whole() {
    let env = TestEnv::with_registry();
    let v1 = env.fixture("tiny-v1", "v1");
    env.ok(&["push", "v1", "--model", "m"]);
    env.write("serve/old-model.bin", "old");
    assert_snapshot!(env.snap(&["pull", "m", "--to", "serve"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: [TMP]/work/serve is not empty
    hint: pass --force to replace its contents, or pull into a new folder
    ");
    assert!(env.path("serve/old-model.bin").exists());
    env.ok(&["pull", "m", "--to", "serve", "--force"]);
    assert_eq!(listing(&env.path("serve")), listing(&v1));
    let leftovers: Vec<_> = fs::read_dir(env.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".mreg-"))
        .collect();
    assert!(leftovers.is_empty(), "left {leftovers:?} behind");
}

#[test]
fn an_empty_target_folder_is_filled_and_a_file_target_refused() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.ok(&["push", "v1", "--model", "m"]);
    fs::create_dir(env.path("empty")).unwrap();
    env.ok(&["pull", "m", "--to", "empty"]);
    assert!(env.path("empty/config.json").is_file());
    env.write("afile", "x");
    assert_snapshot!(env.snap(&["pull", "m", "--to", "afile"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: [TMP]/work/afile exists and is not a folder
    hint: remove it or pull somewhere else
    ");
    assert_snapshot!(env.snap(&["pull", "m", "--to", ".mreg/objects/x"]), @"
    exit: 2
    --- stdout
    --- stderr
    error: cannot pull into .mreg/objects/x: it is inside the registry
    hint: pull into a folder outside .mreg
    ");
}

#[test]
fn a_corrupt_object_fails_the_pull_and_leaves_no_target() {
    let env = TestEnv::with_registry();
    let weights = noise(100_000, 7);
    env.write("out/weights.bin", &weights);
    push_json(&env, "out");
    let id = ObjectId::of(&weights);
    let stored = object_path(&env, id);
    corrupt(&stored);
    let out = env.snap(&["pull", "m", "--to", "serve"]);
    assert!(out.starts_with("exit: 1"), "{out}");
    assert!(out.contains("is corrupt"), "{out}");
    assert!(!env.path("serve").exists());
}

/// Writes a version record for a hand-made tree, as a hostile registry could hold.
fn plant_version(env: &TestEnv, tree_text: &str, extra: &[&[u8]], (files, bytes): (u64, u64)) {
    for bytes in extra.iter().copied().chain([tree_text.as_bytes()]) {
        let path = object_path(env, ObjectId::of(bytes));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
    let tree = ObjectId::of(tree_text.as_bytes());
    let dir = env.registry().join("models/evil/versions");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("1.toml"),
        format!("format = 1\nmodel = \"evil\"\nversion = 1\ntree = \"{tree}\"\nfiles = {files}\nbytes = {bytes}\ncreated = \"2026-01-01T00:00:00Z\"\nactor = \"x\"\n"),
    )
    .unwrap();
}

#[test]
fn trees_that_would_write_outside_the_target_are_refused_before_writing() {
    let blob: &[u8] = b"x";
    let b = ObjectId::of(blob);
    let escape: &[u8] = b"../../outside";
    let e = ObjectId::of(escape);
    let cases = [
        (format!("mreg tree 1\nfile {b} 1 ..\n"), "dot-dot name"),
        (format!("mreg tree 1\nfile {b} 1 a/b\n"), "slash in name"),
        (
            format!("mreg tree 1\nfile {b} 1 a\nfile {b} 1 a\n"),
            "duplicate",
        ),
        (format!("mreg tree 1\nlink {e} 13 up\n"), "link out"),
        (format!("mreg tree 1\nfifo {b} 1 p\n"), "special kind"),
        (
            format!("mreg tree 1\ndir {b} 1 a\nlink {e} 13 a\n"),
            "entry through a link",
        ),
    ];
    for (tree, what) in cases {
        let env = TestEnv::with_registry();
        plant_version(&env, &tree, &[blob, escape], (1, 1));
        let out = env.snap(&["pull", "evil@1", "--to", "serve"]);
        assert!(out.starts_with("exit: 1"), "{what}: {out}");
        assert!(!env.path("serve").exists(), "{what}: something was written");
        assert!(
            !env.root().join("outside").exists(),
            "{what}: wrote outside"
        );
    }
    let env = TestEnv::with_registry();
    plant_version(
        &env,
        &format!("mreg tree 1\nlink {e} 13 up\n"),
        &[escape],
        (0, 0),
    );
    assert_snapshot!(env.snap(&["pull", "evil@1", "--to", "serve"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: refusing to create link up: its target "../../outside" leads outside the folder
    hint: the version's tree is unsafe to materialize; nothing was written
    "#);
}

fn push_json(env: &TestEnv, dir: &str) -> serde_json::Value {
    serde_json::from_str(&env.ok(&["push", dir, "--model", "m", "--json"])).unwrap()
}

pub fn object_path(env: &TestEnv, id: ObjectId) -> std::path::PathBuf {
    let hex = id.to_hex();
    env.registry()
        .join("objects")
        .join(&hex[..2])
        .join(&hex[2..])
}

pub fn corrupt(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(path).unwrap();
    bytes[500] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

#[test]
fn regression_force_pull_into_a_folder_holding_the_registry_is_refused() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.ok(&["push", "v1", "--model", "m"]);
    let before = env.version_files();
    let root = env.path("").display().to_string();
    let registry = env.registry().display().to_string();
    let out = env
        .cmd(&[
            "--registry",
            &registry,
            "pull",
            "m",
            "--to",
            &root,
            "--force",
        ])
        .current_dir(env.root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_snapshot!(env.snap(&["pull", "m", "--to", ".", "--force"]), @"
    exit: 2
    --- stdout
    --- stderr
    error: cannot pull into .: it holds the registry, which replacing it would delete
    hint: pull into a folder of its own, such as ./model
    ");
    assert_eq!(env.version_files(), before);
    assert!(env.path("v1/config.json").is_file());
}

#[test]
fn pulling_through_a_symlink_replaces_the_folder_it_points_to() {
    let env = TestEnv::with_registry();
    let v1 = env.fixture("tiny-v1", "v1");
    env.ok(&["push", "v1", "--model", "m"]);
    env.write("releases/7/old.bin", "old");
    std::os::unix::fs::symlink("releases/7", env.path("current")).unwrap();
    env.ok(&["pull", "m", "--to", "current", "--force"]);
    assert!(
        fs::symlink_metadata(env.path("current"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(listing(&env.path("releases/7")), listing(&v1));
}

#[test]
fn large_files_round_trip_through_the_kernel_copy_path() {
    let env = TestEnv::with_registry();
    let big = noise(9 << 20, 11);
    env.write("out/weights.bin", &big);
    env.write("out/config.json", "{}\n");
    env.ok(&["push", "out", "--model", "m"]);
    let stored = object_path(&env, ObjectId::of(&big));
    assert_eq!(
        fs::read(&stored).unwrap(),
        big,
        "the raw object is not the file's bytes"
    );
    env.ok(&["pull", "m", "--to", "serve"]);
    assert_eq!(listing(&env.path("serve")), listing(&env.path("out")));
    corrupt(&stored);
    let out = env.snap(&["pull", "m", "--to", "again"]);
    assert!(
        out.contains("is corrupt") && !env.path("again").exists(),
        "{out}"
    );
}

/// Pushes a model folder with weights in two shards, a tokenizer, a config and
/// optimizer state, as model `llm`; returns the environment.
fn sharded() -> TestEnv {
    let env = TestEnv::with_registry();
    env.write("llm/config.json", "{\"layers\": 2}\n");
    env.write("llm/tokenizer/vocab.json", "{\"a\": 0}\n");
    env.write("llm/tokenizer/merges.txt", "a b\n");
    env.write("llm/model-00001-of-00002.safetensors", noise(2 << 20, 1));
    env.write("llm/model-00002-of-00002.safetensors", noise(2 << 20, 2));
    env.write("llm/optimizer/state.pt", noise(1000, 3));
    env.ok(&["push", "llm", "--model", "llm"]);
    env
}

/// Returns the paths of the regular files below `dir`.
fn files_below(dir: &std::path::Path) -> Vec<String> {
    listing(dir)
        .into_iter()
        .filter(|l| l.starts_with("file "))
        .map(|l| l.split(' ').nth(1).unwrap().to_owned())
        .collect()
}

#[test]
fn only_and_exclude_pull_the_files_they_name_and_nothing_else() {
    let env = sharded();
    let out = env.ok_err(&[
        "pull",
        "llm@1",
        "--to",
        "tok",
        "--only",
        "tokenizer",
        "--only",
        "*.json",
    ]);
    assert!(out.contains("Pulled llm@1 (3 of 6 files"), "{out}");
    assert_eq!(
        files_below(&env.path("tok")),
        [
            "config.json",
            "tokenizer/merges.txt",
            "tokenizer/vocab.json"
        ]
    );
    let json = env.ok(&[
        "pull",
        "llm@1",
        "--to",
        "serve",
        "--exclude",
        "optimizer/",
        "--exclude",
        "*-00002-*",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["partial"], true);
    assert_eq!(
        (json["files"].as_u64(), json["of_files"].as_u64()),
        (Some(4), Some(6))
    );
    assert_eq!(
        files_below(&env.path("serve")),
        [
            "config.json",
            "model-00001-of-00002.safetensors",
            "tokenizer/merges.txt",
            "tokenizer/vocab.json"
        ]
    );
    assert_eq!(
        fs::read(env.path("serve/model-00001-of-00002.safetensors")).unwrap(),
        noise(2 << 20, 1)
    );
    assert!(
        !env.path("serve/optimizer").exists(),
        "no empty folder either"
    );
}

#[test]
fn a_selection_that_takes_nothing_or_names_nothing_is_refused_before_writing() {
    let env = sharded();
    for (args, said) in [
        (
            &["--only", "*.json", "--only", "tokenizr/*"][..],
            "--only 'tokenizr/*' matches no file of llm@1",
        ),
        (
            &["--exclude", "*"][..],
            "--only and --exclude leave no file of llm@1 to pull",
        ),
        (&["--only", "[z-a"][..], "--only '[z-a' is not a glob"),
    ] {
        let mut argv = vec!["pull", "llm@1", "--to", "out"];
        argv.extend_from_slice(args);
        let run = env.run(&argv);
        assert_eq!(run.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(said), "{stderr}");
        assert!(!env.path("out").exists());
    }
    let run = env.run(&[
        "pull",
        "llm@1",
        "--to",
        "out",
        "--only",
        "*.json",
        "--signature",
    ]);
    assert_eq!(
        run.status.code(),
        Some(2),
        "a partial folder has no signature to go with it"
    );
}

#[test]
fn a_partial_pull_fetches_only_what_its_files_need() {
    let env = sharded();
    let share = env.root().join("share").display().to_string();
    env.ok(&["remote", "add", "share", &share]);
    env.ok(&["sync"]);
    fs::remove_dir_all(env.registry().join("objects")).unwrap();
    fs::create_dir(env.registry().join("objects")).unwrap();
    let out = env.ok_err(&["pull", "llm@1", "--to", "shard", "--only", "model-00001-*"]);
    assert!(out.contains("of missing objects from share"), "{out}");
    assert_eq!(
        files_below(&env.path("shard")),
        ["model-00001-of-00002.safetensors"]
    );
    let held = |seed: u64| {
        let hex = ObjectId::of(&noise(2 << 20, seed)).to_string();
        walkdir::WalkDir::new(env.registry().join("objects"))
            .into_iter()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains(&hex[2..]))
    };
    assert!(held(1), "the shard pulled was fetched");
    assert!(!held(2), "the shard left out was not");
    // A whole pull later fetches the rest.
    env.ok(&["pull", "llm@1", "--to", "whole"]);
    assert_eq!(files_below(&env.path("whole")).len(), 6);
}

#[test]
fn a_partial_pull_reads_only_its_own_links_and_names_those_left_without_targets() {
    let env = sharded();
    std::os::unix::fs::symlink("config.json", env.path("llm/cfg-link.json")).unwrap();
    std::os::unix::fs::symlink("tokenizer", env.path("llm/tok-link")).unwrap();
    env.ok(&["push", "llm", "--model", "llm"]);
    let share = env.root().join("share").display().to_string();
    env.ok(&["remote", "add", "share", &share]);
    env.ok(&["sync"]);
    // Every object and pack gone here: the links' own targets too.
    for dir in ["objects", "packs"] {
        let path = env.registry().join(dir);
        if path.exists() {
            fs::remove_dir_all(&path).unwrap();
            fs::create_dir(&path).unwrap();
        }
    }
    env.ok(&["pull", "llm@2", "--to", "one", "--only", "model-00001-*"]);
    assert_eq!(
        files_below(&env.path("one")),
        ["model-00001-of-00002.safetensors"]
    );
    let out = env.ok_err(&[
        "pull", "llm@2", "--to", "links", "--only", "*-link*", "--json",
    ]);
    assert!(
        out.contains("pulled without their targets")
            && out.contains("cfg-link.json -> config.json"),
        "{out}"
    );
    assert_eq!(
        fs::read_link(env.path("links/cfg-link.json")).unwrap(),
        std::path::PathBuf::from("config.json")
    );
    let whole_link = env.ok_err(&[
        "pull",
        "llm@2",
        "--to",
        "both",
        "--only",
        "cfg-link.json",
        "--only",
        "config.json",
    ]);
    assert!(
        !whole_link.contains("without their targets"),
        "{whole_link}"
    );
}
