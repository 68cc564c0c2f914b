//! Small objects in packs (registry format 3): a push of many small files writes a
//! few packs, not a file each; they pull back, sync and clone like any object; gc
//! rewrites a pack once most of it is garbage; fsck names damage in a pack or its
//! index; a damaged or hostile index is refused, never believed; and a registry of
//! format 2 keeps its files as files until `mreg upgrade`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

#[cfg(feature = "s3")]
use crate::common::s3;
use crate::common::{TestEnv, noise, snapshot_files};

/// Writes `count` small files (1 to 20 KiB, text and noise) under `dir`; `seed`
/// changes their contents.
fn small_files(env: &TestEnv, dir: &str, count: usize, seed: u64) {
    for i in 0..count {
        let len = 1024 + (i * 797) % (19 * 1024);
        let bytes = if i % 2 == 0 {
            noise(len, (seed * 10_000 + i as u64) << 1)
        } else {
            format!("row {i} of set {seed}\n")
                .repeat(len / 16)
                .into_bytes()
        };
        env.write(&format!("{dir}/shard{}/f{i:04}.dat", i % 4), bytes);
    }
}

/// Returns the files under `dir` with the given extension, sorted.
fn files_ending(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

/// Returns the packs of the registry folder `reg`.
fn packs(reg: &Path) -> Vec<PathBuf> {
    files_ending(&reg.join("packs"), "pack")
}

/// Returns how many object files `reg` holds under `objects/`.
fn object_files(reg: &Path) -> usize {
    walkdir::WalkDir::new(reg.join("objects"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .count()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

/// Pulls `reference` into `to` and asserts it holds what the folder `from` holds.
fn pulls_back(env: &TestEnv, reference: &str, to: &str, from: &str) {
    env.ok(&["pull", reference, "--to", to]);
    assert_eq!(
        snapshot_files(&env.path(to)),
        snapshot_files(&env.path(from))
    );
}

/// Makes a file of the registry writable, so a test can damage it.
fn writable(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn many_small_files_are_stored_in_one_pack_and_pull_back_the_same() {
    let env = TestEnv::with_registry();
    small_files(&env, "data", 300, 1);
    env.ok(&["push", "data", "--model", "ds"]);
    let reg = env.registry();
    assert_eq!(packs(&reg).len(), 1, "one pack for one push");
    assert_eq!(files_ending(&reg.join("packs"), "idx").len(), 1);
    // The files, and their trees, are in the pack: no object file each.
    assert!(
        object_files(&reg) < 10,
        "{} object files",
        object_files(&reg)
    );
    pulls_back(&env, "ds@1", "out", "data");
    let said = json(&env.ok(&["fsck", "--json"]));
    assert_eq!(said["problems"].as_array().unwrap().len(), 0, "{said}");
    assert!(said["objects"].as_u64().unwrap() >= 300, "{said}");
    // A push of the same files again adds nothing.
    env.ok(&["push", "data", "--model", "ds"]);
    assert_eq!(packs(&env.registry()).len(), 1);
    // A push adding one file stores it as a file of its own, not a pack of one.
    env.write("data/extra.txt", "one more");
    env.ok(&["push", "data", "--model", "ds"]);
    assert_eq!(packs(&env.registry()).len(), 1);
}

#[test]
fn a_registry_of_format_2_keeps_small_files_as_files_until_upgraded() {
    let env = TestEnv::with_registry();
    let config = env.registry().join("config.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, text.replace("format = 3", "format = 2")).unwrap();
    small_files(&env, "data", 100, 1);
    env.ok(&["push", "data", "--model", "ds"]);
    assert!(packs(&env.registry()).is_empty(), "format 2 wrote a pack");
    assert!(object_files(&env.registry()) > 100);

    let said = json(&env.ok(&["upgrade", "--json"]));
    assert_eq!(
        (said["from"].as_u64(), said["to"].as_u64()),
        (Some(2), Some(3))
    );
    small_files(&env, "data", 100, 2);
    env.ok(&["push", "data", "--model", "ds"]);
    assert_eq!(packs(&env.registry()).len(), 1);
    // Both versions pull: one from files, one from the pack.
    pulls_back(&env, "ds@2", "two", "data");
    small_files(&env, "one", 100, 1);
    pulls_back(&env, "ds@1", "back", "one");
    env.ok(&["fsck"]);
}

#[test]
fn gc_rewrites_a_pack_once_most_of_it_is_garbage_and_keeps_what_lives() {
    let env = TestEnv::with_registry();
    small_files(&env, "data", 200, 1);
    env.ok(&["push", "data", "--model", "ds"]);
    let first = packs(&env.registry());
    // Version 2 shares a quarter of the files.
    for i in (0..200).filter(|i| i % 4 != 0) {
        env.write(
            &format!("data/shard{}/f{i:04}.dat", i % 4),
            noise(4096, (77_000 + i as u64) << 1),
        );
    }
    env.ok(&["push", "data", "--model", "ds"]);
    assert_eq!(packs(&env.registry()).len(), 2);
    env.ok(&["rm", "ds@1", "--reason", "old"]);
    let dry = json(&env.ok(&["gc", "--dry-run", "--json"]));
    let said = json(&env.ok(&["gc", "--json"]));
    assert_eq!(dry["freed_bytes"], said["freed_bytes"], "{dry}\n{said}");
    assert!(said["freed_bytes"].as_u64().unwrap() > 100_000, "{said}");
    let after = packs(&env.registry());
    assert!(
        !after.contains(&first[0]),
        "the first pack, three quarters garbage, is still there"
    );
    assert_eq!(after.len(), 2, "{after:?}");
    pulls_back(&env, "ds@2", "out", "data");
    env.ok(&["fsck"]);
    // A second gc finds nothing more to do in the packs.
    let again = json(&env.ok(&["gc", "--json"]));
    assert_eq!(again["freed_bytes"], 0, "{again}");
    assert_eq!(packs(&env.registry()), after);
}

#[test]
fn a_damaged_pack_is_named_by_fsck_and_refused_by_pull() {
    let env = TestEnv::with_registry();
    small_files(&env, "data", 50, 1);
    env.ok(&["push", "data", "--model", "ds"]);
    let pack = packs(&env.registry()).remove(0);
    writable(&pack);
    let mut bytes = fs::read(&pack).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    fs::write(&pack, &bytes).unwrap();
    let out = env.run(&["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("is corrupt") && said.contains(".pack"),
        "{said}"
    );
    let out = env.run(&["pull", "ds@1", "--to", "out"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("is corrupt"), "{said}");
    assert!(
        !env.path("out").exists(),
        "a pull that failed left a folder"
    );
    // gc never rewrites a pack whose live objects fail their hash.
    env.ok(&["gc"]);
    assert_eq!(fs::read(&pack).unwrap(), bytes);
}

#[test]
fn a_damaged_or_forged_index_is_refused_and_its_objects_count_as_missing() {
    let env = TestEnv::with_registry();
    small_files(&env, "data", 50, 1);
    env.ok(&["push", "data", "--model", "ds"]);
    let index = files_ending(&env.registry().join("packs"), "idx").remove(0);
    let good = fs::read_to_string(&index).unwrap();
    writable(&index);
    // An entry moved: the index no longer hashes to its name.
    fs::write(&index, good.replacen(" raw ", " zst ", 1)).unwrap();
    let out = env.run(&["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("pack index") && said.contains("damaged"),
        "{said}"
    );
    let out = env.run(&["pull", "ds@1", "--to", "out"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
    // gc does not touch a pack it cannot read the index of.
    env.ok(&["gc"]);
    assert_eq!(packs(&env.registry()).len(), 1);
    // Restored, everything is as before.
    fs::write(&index, &good).unwrap();
    env.ok(&["pull", "ds@1", "--to", "out"]);
    env.ok(&["fsck"]);
}

#[test]
fn packs_without_an_index_are_leftovers_that_gc_removes() {
    let env = TestEnv::with_registry();
    small_files(&env, "data", 100, 1);
    let out = env.run_with(
        &["push", "data", "--model", "ds"],
        &[("MREG_CRASH_AT", "parts-published")],
    );
    assert_eq!(out.status.signal(), Some(9));
    assert_eq!(packs(&env.registry()).len(), 1);
    assert!(files_ending(&env.registry().join("packs"), "idx").is_empty());
    let said = json(&env.ok(&["fsck", "--json"]));
    assert_eq!(said["problems"].as_array().unwrap().len(), 0, "{said}");
    assert!(
        said["leftovers"].to_string().contains(".pack"),
        "a pack without an index is not listed as a leftover: {said}"
    );
    env.ok(&["gc"]);
    assert!(packs(&env.registry()).is_empty());
    env.ok(&["push", "data", "--model", "ds"]);
    pulls_back(&env, "ds@1", "out", "data");
    env.ok(&["fsck"]);
}

#[test]
fn a_gc_killed_after_writing_its_new_pack_loses_nothing_and_the_next_one_finishes() {
    let env = TestEnv::with_registry();
    small_files(&env, "data", 200, 1);
    env.ok(&["push", "data", "--model", "ds"]);
    small_files(&env, "data", 150, 2);
    env.ok(&["push", "data", "--model", "ds"]);
    env.ok(&["rm", "ds@1", "--reason", "old"]);
    let out = env.run_with(&["gc"], &[("MREG_CRASH_AT", "gc-repacked")]);
    assert_eq!(out.status.signal(), Some(9));
    env.ok(&["fsck"]);
    pulls_back(&env, "ds@2", "out", "data");
    let before = packs(&env.registry()).len();
    env.ok(&["gc"]);
    assert!(packs(&env.registry()).len() < before, "the copies stayed");
    fs::remove_dir_all(env.path("out")).unwrap();
    env.ok(&["pull", "ds@2", "--to", "out"]);
    env.ok(&["fsck"]);
}

#[test]
fn a_registry_folder_with_packs_syncs_and_clones_as_a_remote() {
    // A team share pushed to directly holds packs; a clone reads them by range.
    let share = TestEnv::with_registry();
    small_files(&share, "data", 120, 1);
    share.ok(&["push", "data", "--model", "ds"]);
    assert_eq!(packs(&share.registry()).len(), 1);
    let url = share.registry().display().to_string();
    let b = TestEnv::new();
    b.ok(&["clone", &url, "b"]);
    let b_reg = b.path("b/.mreg").display().to_string();
    b.ok(&["--registry", &b_reg, "pull", "ds@1", "--to", "out"]);
    assert_eq!(
        snapshot_files(&b.path("out")),
        snapshot_files(&share.path("data"))
    );
    b.ok(&["--registry", &b_reg, "fsck"]);
    // And what a registry holds in packs reaches a remote whole: a clone of that
    // remote pulls it.
    let c = TestEnv::new();
    let target = c.path("target");
    c.ok(&["init", &target.display().to_string()]);
    share.ok(&["remote", "add", "other", &target.display().to_string()]);
    share.ok(&["sync", "other"]);
    c.ok(&["clone", &target.display().to_string(), "c"]);
    let c_reg = c.path("c/.mreg").display().to_string();
    c.ok(&["--registry", &c_reg, "pull", "ds@1", "--to", "out"]);
    assert_eq!(
        snapshot_files(&c.path("out")),
        snapshot_files(&share.path("data"))
    );
}

#[test]
fn a_remote_whose_pack_lies_is_refused_by_name_and_nothing_is_stored() {
    let share = TestEnv::with_registry();
    small_files(&share, "data", 40, 1);
    share.ok(&["push", "data", "--model", "ds"]);
    // The pack is damaged on the share; its index is intact.
    let pack = packs(&share.registry()).remove(0);
    writable(&pack);
    let mut bytes = fs::read(&pack).unwrap();
    let last = bytes.len() - 100;
    bytes[last] ^= 1;
    fs::write(&pack, &bytes).unwrap();
    let b = TestEnv::with_registry();
    let url = share.registry().display().to_string();
    b.ok(&["remote", "add", "share", &url]);
    let out = b.run(&["sync"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("is corrupt") && said.contains(".pack"),
        "{said}"
    );
    b.ok(&["fsck"]);
    assert!(
        b.run(&["pull", "ds@1", "--to", "out"]).status.code() != Some(0),
        "a version whose files did not arrive pulls"
    );
    // An index that hashes to its name but lies about where an object is: the bytes
    // found there are refused by their hash.
    let index = files_ending(&share.registry().join("packs"), "idx").remove(0);
    let text = fs::read_to_string(&index).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let (a, c) = (lines[2].clone(), lines[3].clone());
    let fields = |l: &str| l.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let (mut fa, fc) = (fields(&a), fields(&c));
    fa[2].clone_from(&fc[2]);
    lines[2] = fa.join(" ");
    let forged = lines.join("\n") + "\n";
    let name = blake3::hash(forged.as_bytes()).to_hex().to_string();
    fs::write(share.registry().join(format!("packs/{name}.idx")), forged).unwrap();
    fs::remove_file(&index).unwrap();
    let pack_bytes = fs::read(&pack).unwrap();
    fs::remove_file(&pack).unwrap();
    fs::write(
        share.registry().join(format!("packs/{name}.pack")),
        pack_bytes,
    )
    .unwrap();
    let out = b.run(&["sync", "--recheck"]);
    assert_eq!(out.status.code(), Some(1), "a forged index was believed");
    b.ok(&["fsck"]);
}

#[cfg(feature = "s3")]
#[test]
fn a_registry_with_packs_syncs_to_a_bucket_and_a_clone_of_it_pulls() {
    let env = TestEnv::on_s3();
    env.ok(&["init"]);
    small_files(&env, "data", 80, 1);
    env.ok(&["push", "data", "--model", "ds"]);
    let url = format!("s3://{}/reg", s3::bucket());
    env.ok(&["init", &url]);
    env.ok(&["remote", "add", "team", &url]);
    env.ok(&["sync", "team"]);
    let c = TestEnv::on_s3();
    c.ok(&["clone", &url, "c"]);
    let c_reg = c.path("c/.mreg").display().to_string();
    c.ok(&["--registry", &c_reg, "pull", "ds@1", "--to", "out"]);
    assert_eq!(
        snapshot_files(&c.path("out")),
        snapshot_files(&env.path("data"))
    );
}

#[cfg(feature = "s3")]
#[test]
fn a_bucket_takes_small_files_in_packs_and_its_gc_rewrites_them() {
    let bucket = s3::bucket();
    let url = format!("s3://{bucket}/reg");
    let a = TestEnv::on_s3();
    a.ok(&["init", &url]);
    small_files(&a, "data", 200, 1);
    a.ok(&["--registry", &url, "push", "data", "--model", "ds"]);
    let pack_keys = || {
        let mut keys: Vec<String> = s3::keys(&bucket, "reg/packs/");
        keys.sort();
        keys
    };
    let first = pack_keys();
    assert_eq!(first.len(), 2, "one pack and its index: {first:?}");
    let loose = s3::keys(&bucket, "reg/objects/").len();
    assert!(loose < 20, "{loose} objects sent one by one");
    small_files(&a, "data", 150, 2);
    a.ok(&["--registry", &url, "push", "data", "--model", "ds"]);
    a.ok(&["--registry", &url, "rm", "ds@1", "--reason", "old"]);
    a.ok(&["--registry", &url, "gc"]);
    let after = pack_keys();
    assert!(
        !after.contains(&first[0]),
        "the first pack, mostly garbage, is still there: {after:?}"
    );
    // A registry that never saw the bucket pulls what lives.
    let b = TestEnv::on_s3();
    b.ok(&["clone", &url, "c"]);
    let c_reg = b.path("c/.mreg").display().to_string();
    b.ok(&["--registry", &c_reg, "pull", "ds@2", "--to", "out"]);
    assert_eq!(
        snapshot_files(&b.path("out")),
        snapshot_files(&a.path("data"))
    );
    b.ok(&["--registry", &c_reg, "fsck"]);
    b.ok(&["--registry", &url, "pull", "ds@2", "--to", "direct"]);
}

#[test]
fn packs_in_a_registry_that_says_format_2_are_named_by_fsck() {
    let env = TestEnv::with_registry();
    small_files(&env, "data", 40, 1);
    env.ok(&["push", "data", "--model", "ds"]);
    let config = env.registry().join("config.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, text.replace("format = 3", "format = 2")).unwrap();
    let out = env.run(&["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("mreg upgrade"));
    env.ok(&["upgrade"]);
    env.ok(&["fsck"]);
}

#[test]
fn more_packs_than_open_files_read_and_gc_merges_them() {
    let env = TestEnv::with_registry();
    for round in 0..70 {
        for i in 0..17 {
            env.write(&format!("src/f{i}"), format!("round {round} file {i}\n"));
        }
        env.ok(&["push", "src", "--model", "m", "-q"]);
    }
    assert_eq!(packs(&env.registry()).len(), 70);
    for args in [
        &["pull", "m@1", "--to", "one"][..],
        &["fsck"],
        &["pull", "m@70", "--to", "last"],
    ] {
        let out = env.run_with_open_files(args, 64);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        fs::read_to_string(env.path("one/f3")).unwrap(),
        "round 0 file 3\n"
    );
    env.ok(&["gc"]);
    assert!(
        packs(&env.registry()).len() < 8,
        "gc left {} packs",
        packs(&env.registry()).len()
    );
    env.ok(&["fsck"]);
    fs::remove_dir_all(env.path("one")).unwrap();
    env.ok(&["pull", "m@1", "--to", "one"]);
    assert_eq!(
        fs::read_to_string(env.path("one/f3")).unwrap(),
        "round 0 file 3\n"
    );
}

#[test]
fn gc_says_so_when_a_pack_it_would_rewrite_holds_damage() {
    let env = TestEnv::with_registry();
    small_files(&env, "a", 40, 1);
    env.ok(&["push", "a", "--model", "a"]);
    // b keeps 10 of a's files, all in a's pack; a goes, so the pack is mostly garbage.
    for i in 0..10 {
        let rel = format!("shard{}/f{i:04}.dat", i % 4);
        env.write(
            &format!("b/{rel}"),
            fs::read(env.path(&format!("a/{rel}"))).unwrap(),
        );
    }
    env.ok(&["push", "b", "--model", "b"]);
    env.ok(&["rm", "a@1", "--reason", "old"]);
    let kept = blake3::hash(&fs::read(env.path("b/shard0/f0000.dat")).unwrap()).to_hex();
    let index = files_ending(&env.registry().join("packs"), "idx").remove(0);
    let line = fs::read_to_string(&index)
        .unwrap()
        .lines()
        .find(|l| l.starts_with(kept.as_str()))
        .expect("b's file is in the pack")
        .to_owned();
    let offset: usize = line.split(' ').nth(2).unwrap().parse().unwrap();
    let pack = packs(&env.registry()).remove(0);
    writable(&pack);
    let mut bytes = fs::read(&pack).unwrap();
    bytes[offset] ^= 0x40;
    fs::write(&pack, &bytes).unwrap();
    let out = env.run(&["gc"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("left the pack") && said.contains("mreg fsck --repair"),
        "{said}"
    );
    assert_eq!(
        fs::read(&pack).unwrap(),
        bytes,
        "the damaged pack was rewritten"
    );
    // The repair it names: the damaged object out, the folder pushed again, gc again.
    env.ok(&["fsck", "--repair"]);
    env.ok(&["push", "b", "--model", "b"]);
    env.ok(&["gc"]);
    env.ok(&["fsck"]);
    pulls_back(&env, "b@1", "b-out", "b");
}

#[test]
fn a_small_pack_duplicating_objects_of_a_larger_one_is_collected() {
    let env = TestEnv::with_registry();
    small_files(&env, "data", 60, 1);
    env.ok(&["push", "data", "--model", "ds"]);
    let big = packs(&env.registry());
    // Another registry packs 20 of the same files; its pack is copied here, as a merge
    // or rewrite a kill interrupted leaves copies.
    let other = TestEnv::with_registry();
    for i in 0..20 {
        let rel = format!("shard{}/f{i:04}.dat", i % 4);
        other.write(
            &format!("some/{rel}"),
            fs::read(env.path(&format!("data/{rel}"))).unwrap(),
        );
    }
    other.ok(&["push", "some", "--model", "some"]);
    for file in fs::read_dir(other.registry().join("packs")).unwrap() {
        let file = file.unwrap().path();
        fs::copy(
            &file,
            env.registry().join("packs").join(file.file_name().unwrap()),
        )
        .unwrap();
    }
    assert_eq!(packs(&env.registry()).len(), 2);
    env.ok(&["gc"]);
    assert_eq!(packs(&env.registry()), big, "the duplicate pack stayed");
    pulls_back(&env, "ds@1", "out", "data");
    env.ok(&["fsck"]);
}

#[test]
fn fsck_repair_takes_a_damaged_object_out_of_its_pack_and_a_push_stores_it_again() {
    let env = TestEnv::with_registry();
    small_files(&env, "one", 40, 1);
    env.ok(&["push", "one", "--model", "a"]);
    small_files(&env, "two", 40, 2);
    env.ok(&["push", "two", "--model", "b"]);
    // Damage one file of a@1 in its pack.
    let victim = blake3::hash(&fs::read(env.path("one/shard0/f0000.dat")).unwrap()).to_hex();
    let (index, line) = files_ending(&env.registry().join("packs"), "idx")
        .into_iter()
        .find_map(|idx| {
            let text = fs::read_to_string(&idx).unwrap();
            let line = text
                .lines()
                .find(|l| l.starts_with(victim.as_str()))?
                .to_owned();
            Some((idx, line))
        })
        .expect("the file is packed");
    let offset: usize = line.split(' ').nth(2).unwrap().parse().unwrap();
    let pack = index.with_extension("pack");
    writable(&pack);
    let mut bytes = fs::read(&pack).unwrap();
    bytes[offset] ^= 0x20;
    fs::write(&pack, &bytes).unwrap();
    let out = env.run(&["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("mreg fsck --repair"));

    let said = json(&env.ok(&["fsck", "--repair", "--json"]));
    assert_eq!(
        said["dropped"],
        serde_json::json!([victim.as_str()]),
        "{said}"
    );
    // b@1 and the rest of a@1's pack are untouched; the damaged file is missing.
    pulls_back(&env, "b@1", "b", "two");
    let out = env.run(&["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("missing") && !said.contains("corrupt"),
        "{said}"
    );
    // A push of the folder stores it again.
    env.ok(&["push", "one", "--model", "a"]);
    env.ok(&["fsck"]);
    pulls_back(&env, "a@1", "a", "one");
    let again = json(&env.ok(&["fsck", "--repair", "--json"]));
    assert_eq!(again["dropped"], serde_json::json!([]));
}
