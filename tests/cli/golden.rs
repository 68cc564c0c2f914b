//! Golden values: fixed bytes give fixed hashes, and fixtures parse and round-trip.

use crate::common::TestEnv;
use mreg::manifest::VersionRecord;
use mreg::store::ObjectId;
use mreg::store::tree::{Entry, Kind, Tree};

/// The tree hash of fixtures/models/tiny-v1. It changes only if the fixture or the
/// tree format changes, and a format change breaks every registry: bump the format.
const TINY_V1_TREE: &str = "6b24fac002fe5a7cf20cc868a55191fa6ded1a9689eea94e8971041facd121e8";

#[test]
fn the_fixture_model_has_a_pinned_tree_hash() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    let out: serde_json::Value =
        serde_json::from_str(&env.ok(&["push", "v1", "--model", "m", "--json"])).unwrap();
    assert_eq!(out["tree"], TINY_V1_TREE);
}

#[test]
fn a_tree_has_pinned_bytes_and_hash() {
    let tree = Tree::new(vec![
        Entry {
            name: "b.bin".into(),
            kind: Kind::File,
            id: ObjectId::of(b"b"),
            size: 1,
        },
        Entry {
            name: "a dir".into(),
            kind: Kind::Dir,
            id: ObjectId::of(b"a"),
            size: 0,
        },
    ]);
    let text = String::from_utf8(tree.to_bytes()).unwrap();
    insta::assert_snapshot!(text, @"
    mreg tree 1
    dir 17762fddd969a453925d65717ac3eea21320b66b54342fde15128d6caf21215f 0 a dir
    file 10e5cf3d3c8a4f9f3468c8cc58eea84892a22fdadbc1acb22410190044c1d553 1 b.bin
    ");
    insta::assert_snapshot!(tree.id().to_string(), @"1b2d8118c83f8d6a507971116faeb1488606f8b25099acde8d7217076b4693b2");
}

#[test]
fn every_fixture_manifest_parses_and_round_trips() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut seen = 0;
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.unwrap();
        if entry.path().extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let record = VersionRecord::parse(&text).unwrap();
            assert_eq!(
                VersionRecord::parse(&record.to_toml().unwrap()).unwrap(),
                record
            );
            assert_eq!(
                record.to_toml().unwrap(),
                text,
                "{} is not in canonical form",
                entry.path().display()
            );
            seen += 1;
        }
    }
    assert!(seen >= 1);
}
