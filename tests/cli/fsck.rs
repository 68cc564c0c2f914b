//! `mreg fsck`: every object re-hashed, every manifest parsed.

use std::fs;

use crate::cli::pull::{corrupt, object_path};
use crate::common::{TestEnv, noise};
use insta::assert_snapshot;
use mreg::store::ObjectId;

#[test]
fn a_healthy_registry_passes() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.ok(&["push", "v1", "--model", "m"]);
    assert_snapshot!(env.snap(&["fsck"]), @"
    exit: 0
    --- stdout
    --- stderr
    Checked 7 objects (1.01 KiB) and 4 manifests: all good.
    ");
}

#[test]
fn corrupt_and_missing_objects_and_bad_manifests_are_named() {
    let env = TestEnv::with_registry();
    let a = noise(4096, 1);
    let b = noise(4096, 2);
    env.write("out/a.bin", &a);
    env.write("out/b.bin", &b);
    env.ok(&["push", "out", "--model", "m"]);
    corrupt(&object_path(&env, ObjectId::of(&a)));
    fs::remove_file(object_path(&env, ObjectId::of(&b))).unwrap();
    env.write(
        ".mreg/models/m/versions/2.toml",
        "format = 1\nmodel = \"m\"\n",
    );
    env.write(".mreg/objects/zz/not-an-object", "?");
    assert_snapshot!(env.snap(&["fsck"]), @"
    exit: 1
    --- stdout
    [TMP]/work/.mreg/models/m/versions/1.toml: a.bin: object 205e42d94c81ac88 is corrupt
    [TMP]/work/.mreg/models/m/versions/1.toml: b.bin: object 8fc6ec88c87a00bf is missing
    [TMP]/work/.mreg/models/m/versions/2.toml: parsing the record of m@2 at [TMP]/work/.mreg/models/m/versions/2.toml: TOML parse error at line 1, column 1
      |
    1 | format = 1
      | ^
    missing field `version`

    [TMP]/work/.mreg/objects/20/5e42d94c81ac88e42b7f1c8de35de0fb4594d3f4b27781c91b3083166a3b35: object 205e42d94c81ac88 is corrupt: its content hashes to b1c1ba956e29e493 ([TMP]/work/.mreg/objects/20/5e42d94c81ac88e42b7f1c8de35de0fb4594d3f4b27781c91b3083166a3b35)
    [TMP]/work/.mreg/objects/zz/not-an-object: not an object name
    --- stderr
    error: fsck found 5 problems
    hint: each line above names a bad file and what to do. A missing or corrupt object (delete a corrupt object file first, or for one in a pack run `mreg fsck --repair`) comes back from a remote holding it with `mreg sync NAME --recheck`, or when a folder holding its content is pushed again (`mreg push DIR --model NAME`; the same content records no new version)
    ");
    let json: serde_json::Value =
        serde_json::from_slice(&env.run(&["fsck", "--json"]).stdout).unwrap();
    assert_eq!(json["problems"].as_array().unwrap().len(), 5);
}

#[test]
fn regression_every_version_naming_a_bad_object_is_reported() {
    let env = TestEnv::with_registry();
    let shared = noise(4096, 9);
    env.write("out/shared.bin", &shared);
    env.write("out/a.txt", "one");
    env.ok(&["push", "out", "--model", "a"]);
    env.write("out/a.txt", "two");
    env.ok(&["push", "out", "--model", "a"]);
    env.ok(&["push", "out", "--model", "b"]);
    fs::remove_file(object_path(&env, ObjectId::of(&shared))).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&env.run(&["fsck", "--json"]).stdout).unwrap();
    let mut named: Vec<String> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["path"]
                .as_str()
                .unwrap()
                .rsplit(".mreg/")
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            "models/a/versions/1.toml",
            "models/a/versions/2.toml",
            "models/b/versions/1.toml"
        ]
    );
}

#[test]
fn regression_pushing_the_same_folder_again_restores_a_missing_object() {
    let env = TestEnv::with_registry();
    let weights = noise(4096, 4);
    env.write("out/w.bin", &weights);
    env.ok(&["push", "out", "--model", "m"]);
    fs::remove_file(object_path(&env, ObjectId::of(&weights))).unwrap();
    assert_eq!(env.run(&["fsck"]).status.code(), Some(1));
    env.ok(&["push", "out", "--model", "m"]);
    env.ok(&["fsck"]);
    assert_eq!(env.version_files(), ["m/versions/1.toml"]);
}

#[test]
fn version_files_with_a_sign_or_leading_zero_are_strays_not_versions() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.ok(&["push", "v1", "--model", "m"]);
    let versions = env.registry().join("models/m/versions");
    let record = fs::read_to_string(versions.join("1.toml")).unwrap();
    for stray in ["+1.toml", "01.toml", "07.toml"] {
        fs::write(versions.join(stray), &record).unwrap();
    }
    let ls = env.snap(&["ls", "m"]);
    assert_eq!(ls.matches("m@").count(), 1, "{ls}");
    assert_snapshot!(env.snap(&["fsck"]), @"
    exit: 1
    --- stdout
    [TMP]/work/.mreg/models/m/versions/+1.toml: a stray file, not a version record (those are named N.toml, N a decimal number without sign or leading zero); no command reads it
    [TMP]/work/.mreg/models/m/versions/01.toml: a stray file, not a version record (those are named N.toml, N a decimal number without sign or leading zero); no command reads it
    [TMP]/work/.mreg/models/m/versions/07.toml: a stray file, not a version record (those are named N.toml, N a decimal number without sign or leading zero); no command reads it
    --- stderr
    error: fsck found 3 problems
    hint: each line above names a bad file and what to do. A missing or corrupt object (delete a corrupt object file first, or for one in a pack run `mreg fsck --repair`) comes back from a remote holding it with `mreg sync NAME --recheck`, or when a folder holding its content is pushed again (`mreg push DIR --model NAME`; the same content records no new version)
    ");
    env.write("v1/build.txt", "2\n");
    assert!(env.ok(&["push", "v1", "--model", "m"]).contains("m@2"));
}
