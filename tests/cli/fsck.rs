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
    Checked 7 objects (1.01 KiB) and 2 manifests: all good.
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
    hint: each line above names a bad file; restore it from a copy of the registry
    ");
    let json: serde_json::Value =
        serde_json::from_slice(&env.run(&["fsck", "--json"]).stdout).unwrap();
    assert_eq!(json["problems"].as_array().unwrap().len(), 5);
}
