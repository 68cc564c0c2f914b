//! Golden values: fixed bytes give fixed hashes, and fixtures parse and round-trip.

use crate::common::TestEnv;
use mreg::manifest::info::InfoChange;
use mreg::manifest::{RunEvent, RunRecord, VersionRecord};
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

/// Asserts that a manifest parses, writes back to the same text, and parses again to
/// the same value.
fn round_trips<T: PartialEq + std::fmt::Debug>(
    path: &std::path::Path,
    text: &str,
    parse: impl Fn(&str) -> anyhow::Result<T>,
    write: impl Fn(&T) -> anyhow::Result<String>,
) {
    let record = parse(text).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    let written = write(&record).unwrap();
    assert_eq!(written, text, "{} is not in canonical form", path.display());
    assert_eq!(parse(&written).unwrap(), record);
}

#[test]
fn every_fixture_manifest_parses_and_round_trips() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut seen = Vec::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        if name.starts_with("run") {
            round_trips(path, &text, RunRecord::parse, RunRecord::to_toml);
        } else if name.starts_with("event") {
            round_trips(path, &text, RunEvent::parse, RunEvent::to_toml);
        } else if name.starts_with("info") {
            round_trips(path, &text, InfoChange::parse, InfoChange::to_toml);
        } else {
            round_trips(path, &text, VersionRecord::parse, VersionRecord::to_toml);
        }
        seen.push(name.to_owned());
    }
    assert_eq!(
        seen,
        [
            "event.toml",
            "info.toml",
            "run-2.toml",
            "run.toml",
            "version-2.toml",
            "version.toml"
        ]
    );
}
