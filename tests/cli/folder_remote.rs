//! A folder remote on the registry's own filesystem: a sync links the objects it
//! sends rather than copying them, and each side stays whole on its own.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::common::{TestEnv, noise, snapshot_files};

/// Returns the object files of more than 1 MiB (the ones sent as files of their own,
/// not packed) under a registry folder, with their inodes.
fn object_inodes(reg: &std::path::Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = walkdir::WalkDir::new(reg.join("objects"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.metadata().unwrap().len() > 1 << 20)
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, e.metadata().unwrap().ino())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_sync_to_a_folder_on_the_same_filesystem_links_objects_and_each_side_stands_alone() {
    let env = TestEnv::with_registry();
    env.write("v1/weights.bin", noise(3 << 20, 5));
    env.write("v1/big.bin", noise(20 << 20, 7));
    env.ok(&["push", "v1", "--model", "m"]);
    let share = env.root().join("share");
    env.ok(&["init", &share.display().to_string()]);
    env.ok(&["remote", "add", "share", &share.display().to_string()]);
    env.ok(&["sync", "share"]);
    let here = object_inodes(&env.registry());
    let there = object_inodes(&share.join(".mreg"));
    assert!(!here.is_empty());
    for (name, ino) in &here {
        assert!(
            there.contains(&(name.clone(), *ino)),
            "{name} was copied, not linked: {there:?}"
        );
    }
    // The remote keeps its objects when this registry collects its own.
    env.ok(&["rm", "m@1", "--reason", "moved to the share"]);
    env.ok(&["gc"]);
    assert!(object_inodes(&env.registry()).len() < here.len());
    let b = TestEnv::new();
    b.ok(&["clone", &share.display().to_string(), "b"]);
    let b_reg = b.path("b/.mreg").display().to_string();
    b.ok(&["--registry", &b_reg, "pull", "m@1", "--to", "out"]);
    assert_eq!(
        snapshot_files(&b.path("out")),
        snapshot_files(&env.path("v1"))
    );
    b.ok(&[
        "--registry",
        &share.join(".mreg").display().to_string(),
        "fsck",
    ]);
    // A damaged object here is never linked there: a send re-hashes first.
    let fresh = TestEnv::with_registry();
    fresh.write("v/w.bin", noise(2 << 20, 9));
    fresh.ok(&["push", "v", "--model", "d"]);
    let (name, _) = object_inodes(&fresh.registry()).remove(0);
    let path = walkdir::WalkDir::new(fresh.registry().join("objects"))
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy() == name)
        .unwrap()
        .into_path();
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 1;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&path, &bytes).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    let other = fresh.root().join("other");
    fresh.ok(&["init", &other.display().to_string()]);
    fresh.ok(&["remote", "add", "other", &other.display().to_string()]);
    assert_eq!(fresh.run(&["sync", "other"]).status.code(), Some(1));
    assert!(object_inodes(&other.join(".mreg")).is_empty());
}
