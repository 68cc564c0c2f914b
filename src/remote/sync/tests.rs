//! Sync against a remote in memory: what moves, in which order, what is refused, and
//! what an interrupted sync leaves to the next one.

use super::{Options, Report, Sync};
use crate::id::ObjectId;
use crate::remote::Remote;
use crate::remote::known::Known;
use crate::remote::memory::MemoryRemote;
use crate::store::{NoProgress, Registry, keys, models, read, stages};
use crate::testing::TempRegistry;

/// Options of a `mreg sync` with nothing asked for.
fn both_ways() -> Options {
    Options {
        objects: true,
        send: true,
        may_move_remote_stages: true,
        ..Options::default()
    }
}

fn sync(reg: &Registry, remote: &MemoryRemote, options: Options) -> anyhow::Result<Report> {
    let known = Known::load(reg, remote.url())?;
    Sync::new(reg, remote, &known, options, &NoProgress).run()
}

fn versions(reg: &Registry, model: &str) -> Vec<u64> {
    models::list_versions(reg, model).unwrap()
}

/// A registry with two versions of `m` (one in staging), synced to `remote`.
fn sent(remote: &MemoryRemote) -> TempRegistry {
    let a = TempRegistry::new();
    a.push("m", &[("w.bin", b"one")], &["acc=0.8"]);
    a.push("m", &[("w.bin", b"two"), ("cfg.json", b"{}")], &["acc=0.9"]);
    a.promote("m@1", "staging", &[]);
    sync(&a.reg, remote, both_ways()).unwrap();
    a
}

#[test]
fn a_sync_sends_everything_once_and_then_lists_only_metadata() {
    let remote = MemoryRemote::new("mem://team");
    let a = TempRegistry::new();
    a.push("m", &[("w.bin", b"one")], &["acc=0.8"]);
    a.push("m", &[("w.bin", b"two"), ("cfg.json", b"{}")], &["acc=0.9"]);
    a.promote("m@1", "staging", &[]);
    let report = sync(&a.reg, &remote, both_ways()).unwrap();
    assert_eq!(report.sent.versions, 2);
    assert_eq!(report.sent.runs, 2);
    assert_eq!(report.sent.stages, 1);
    assert!(report.sent.objects >= 4, "{report:?}");
    assert!(report.fetched.is_empty() && report.conflicts.is_empty());
    for key in [
        keys::CONFIG.to_owned(),
        keys::version("m", 1),
        keys::version("m", 2),
        keys::head("m"),
    ] {
        assert!(remote.bytes(&key).is_some(), "{key} was not sent");
    }

    // The second sync gives the remote its registry-id (the first made the remote's
    // config.toml after the identity check), so the third is the first with a named
    // remote and nothing new.
    sync(&a.reg, &remote, both_ways()).unwrap();
    assert!(remote.bytes(keys::REGISTRY_ID).is_some());
    remote.take_calls();
    let again = sync(&a.reg, &remote, both_ways()).unwrap();
    assert!(
        again.sent.is_empty() && again.fetched.is_empty(),
        "{again:?}"
    );
    // The sync's writer lease (`gc/…`) is written and deleted; nothing else is.
    let calls: Vec<String> = remote
        .take_calls()
        .into_iter()
        .filter(|c| !c.contains(" gc/"))
        .collect();
    let lists: Vec<&String> = calls.iter().filter(|c| c.starts_with("list")).collect();
    assert_eq!(lists, ["list models/", "list runs/"], "{calls:?}");
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("upload") || c.starts_with("create") || c.starts_with("swap")),
        "a sync with nothing new wrote: {calls:?}"
    );
}

#[test]
fn a_second_registry_fetches_every_version_run_and_stage() {
    let remote = MemoryRemote::new("mem://team");
    let a = sent(&remote);
    let b = TempRegistry::new();
    let report = sync(&b.reg, &remote, both_ways()).unwrap();
    assert_eq!(report.fetched.versions, 2);
    assert_eq!(report.fetched.runs, 2);
    assert_eq!(report.fetched.stages, 1);
    assert_eq!(versions(&b.reg, "m"), [1, 2]);
    assert_eq!(
        stages::read_head(&b.reg, "m").unwrap(),
        stages::read_head(&a.reg, "m").unwrap()
    );
    for n in [1, 2] {
        let record = models::load_version(&b.reg, "m", n).unwrap();
        assert!(read::missing_below(&b.reg, record.tree).is_empty());
        assert_eq!(record, models::load_version(&a.reg, "m", n).unwrap());
    }
}

#[test]
fn a_number_taken_on_both_sides_is_a_conflict_and_renumber_resolves_it() {
    let remote = MemoryRemote::new("mem://team");
    let a = TempRegistry::new();
    a.push("m", &[("w.bin", b"from a")], &[]);
    sync(&a.reg, &remote, both_ways()).unwrap();
    let theirs = remote.bytes(&keys::version("m", 1)).unwrap();

    let c = TempRegistry::new();
    let ours = c.push("m", &[("w.bin", b"from c")], &[]);
    let report = sync(&c.reg, &remote, both_ways()).unwrap();
    assert_eq!(report.conflicts.len(), 1, "{report:?}");
    assert_eq!(report.conflicts[0].subject, "m");
    assert!(report.conflicts[0].hint.contains("--renumber m"));
    assert_eq!(remote.bytes(&keys::version("m", 1)).unwrap(), theirs);
    assert_eq!(models::load_version(&c.reg, "m", 1).unwrap(), ours);

    let options = Options {
        renumber: vec!["m".to_owned()],
        ..both_ways()
    };
    let report = sync(&c.reg, &remote, options).unwrap();
    assert!(report.conflicts.is_empty(), "{report:?}");
    assert_eq!(report.renumbered.len(), 1);
    assert_eq!((report.renumbered[0].from, report.renumbered[0].to), (1, 2));
    assert_eq!(remote.bytes(&keys::version("m", 1)).unwrap(), theirs);
    let moved = models::load_version(&c.reg, "m", 2).unwrap();
    assert_eq!((moved.tree, moved.renumbered_from), (ours.tree, Some(1)));
    assert_eq!(
        std::fs::read(c.reg.path(&keys::version("m", 1))).unwrap(),
        theirs
    );
}

#[test]
fn stage_chains_that_grew_apart_are_a_conflict_until_one_side_is_taken() {
    let remote = MemoryRemote::new("mem://team");
    let a = sent(&remote);
    let b = TempRegistry::new();
    sync(&b.reg, &remote, both_ways()).unwrap();
    a.promote("m@1", "production", &[]);
    sync(&a.reg, &remote, both_ways()).unwrap();
    b.promote("m@2", "production", &[]);

    let report = sync(&b.reg, &remote, both_ways()).unwrap();
    assert_eq!(report.conflicts.len(), 1, "{report:?}");
    assert!(report.conflicts[0].message.contains("moved apart"));
    let a_head = stages::read_head(&a.reg, "m").unwrap();
    assert_ne!(stages::read_head(&b.reg, "m").unwrap(), a_head);

    let options = Options {
        take_remote_stages: vec!["m".to_owned()],
        ..both_ways()
    };
    let report = sync(&b.reg, &remote, options).unwrap();
    assert!(report.conflicts.is_empty(), "{report:?}");
    assert_eq!(stages::read_head(&b.reg, "m").unwrap(), a_head);
}

#[test]
fn chains_that_grew_apart_to_the_same_stages_are_no_conflict() {
    let remote = MemoryRemote::new("mem://team");
    let a = sent(&remote);
    let b = TempRegistry::new();
    sync(&b.reg, &remote, both_ways()).unwrap();
    // Two jobs promote the same version, each on its own side.
    a.promote("m@2", "production", &[]);
    sync(&a.reg, &remote, both_ways()).unwrap();
    b.promote("m@2", "production", &[]);

    let report = sync(&b.reg, &remote, both_ways()).unwrap();
    assert!(report.conflicts.is_empty(), "{report:?}");
    assert_eq!(
        stages::read_head(&b.reg, "m").unwrap(),
        stages::read_head(&a.reg, "m").unwrap()
    );
    // Once they differ, it is a conflict again.
    a.promote("m@2", "staging", &[]);
    sync(&a.reg, &remote, both_ways()).unwrap();
    b.promote("m@1", "archived", &[]);
    let report = sync(&b.reg, &remote, both_ways()).unwrap();
    assert_eq!(report.conflicts.len(), 1, "{report:?}");
}

#[test]
fn stage_moves_stay_local_when_the_remote_may_not_have_its_stages_moved() {
    let remote = MemoryRemote::new("mem://weak");
    let a = TempRegistry::new();
    a.push("m", &[("w.bin", b"one")], &[]);
    a.promote("m@1", "staging", &[]);
    let options = Options {
        may_move_remote_stages: false,
        ..both_ways()
    };
    let report = sync(&a.reg, &remote, options).unwrap();
    assert_eq!(report.sent.versions, 1);
    assert_eq!(report.conflicts.len(), 1);
    assert!(report.conflicts[0].message.contains("conditional writes"));
    assert!(remote.bytes(&keys::head("m")).is_none());
}

#[test]
fn a_corrupt_object_on_the_remote_is_refused_and_no_version_names_it() {
    // A remote of format 2 holds each object as a file of its own (damage inside a pack
    // is tested with the CLI).
    let remote = MemoryRemote::new("mem://team");
    remote.put(keys::CONFIG, b"format = 2\n");
    sent(&remote);
    let object = remote
        .key_list()
        .into_iter()
        .find(|k| k.starts_with(keys::OBJECTS) && remote.bytes(k).as_deref() == Some(b"one"))
        .expect("the blob of m@1 is on the remote");
    remote.put(&object, b"onx");
    let b = TempRegistry::new();
    let report = sync(&b.reg, &remote, both_ways()).unwrap();
    assert_eq!(report.refused.len(), 1, "{:?}", report.refused);
    assert_eq!(report.refused[0].key, keys::version("m", 1));
    assert!(
        report.refused[0].message.contains("corrupt"),
        "{:?}",
        report.refused
    );
    // m@2 shares nothing with m@1 and arrives; the stages, naming m@1, wait.
    assert_eq!(versions(&b.reg, "m"), [2]);
    assert!(stages::read_head(&b.reg, "m").unwrap().is_none());
    assert!(!b.reg.has_object(ObjectId::of(b"one")));
    assert!(!b.reg.has_object(ObjectId::of(b"onx")));

    remote.put(
        &object,
        b"a blob far larger than the three bytes its tree declares",
    );
    let report = sync(&b.reg, &remote, both_ways()).unwrap();
    assert_eq!(report.refused.len(), 1, "{:?}", report.refused);
    assert!(
        report.refused[0].message.contains("more than the 3"),
        "{:?}",
        report.refused
    );
    assert_eq!(versions(&b.reg, "m"), [2]);
}

#[test]
fn an_interrupted_send_is_finished_by_the_next_sync() {
    let remote = MemoryRemote::new("mem://team");
    remote.put(keys::CONFIG, b"format = 2\n");
    let a = TempRegistry::new();
    for i in 0..5 {
        let name = format!("w{i}.bin");
        let bytes = format!("weights {i}");
        a.push("m", &[(name.as_str(), bytes.as_bytes())], &[]);
    }
    remote.fail_writes_after(Some(6));
    assert!(sync(&a.reg, &remote, both_ways()).is_err());
    assert!(remote.bytes(&keys::version("m", 5)).is_none());
    remote.fail_writes_after(None);
    remote.take_calls();
    let report = sync(&a.reg, &remote, both_ways()).unwrap();
    assert_eq!(report.sent.versions, 5);
    let uploads = remote
        .take_calls()
        .into_iter()
        .filter(|c| c.starts_with("upload"))
        .count();
    assert!(
        uploads as u64 == report.sent.objects,
        "{uploads} uploads for {report:?}"
    );
    let b = TempRegistry::new();
    sync(&b.reg, &remote, both_ways()).unwrap();
    assert_eq!(versions(&b.reg, "m"), [1, 2, 3, 4, 5]);
}

#[test]
fn small_objects_go_to_a_remote_of_format_3_in_packs_indexes_last() {
    let remote = MemoryRemote::new("mem://team");
    let a = TempRegistry::new();
    let files: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| (format!("f{i}.bin"), format!("weights {i}").into_bytes()))
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    a.push("m", &refs, &[]);
    remote.take_calls();
    let report = sync(&a.reg, &remote, both_ways()).unwrap();
    let calls = remote.take_calls();
    let uploads: Vec<&String> = calls.iter().filter(|c| c.starts_with("upload")).collect();
    // One pack and its index hold the version's objects, the index sent last; the run's
    // one object, sent on its own, goes as an object.
    let kind = |u: &str| u.rsplit('.').next().unwrap_or_default().to_owned();
    let position = |ext: &str| uploads.iter().position(|u| kind(u) == ext);
    assert_eq!(uploads.iter().filter(|u| kind(u) == "pack").count(), 1);
    assert!(position("pack") < position("idx"), "{uploads:?}");
    assert!(uploads.len() <= 3, "{uploads:?}");
    assert!(report.sent.objects >= 41, "{report:?}");
    let blob = ObjectId::of(b"weights 7");
    assert!(
        !remote
            .key_list()
            .iter()
            .any(|k| k.starts_with(keys::OBJECTS) && k.contains(&blob.to_hex()[2..]))
    );
    // A registry syncing from it reads the packs, and a second sync sends nothing.
    let b = TempRegistry::new();
    sync(&b.reg, &remote, both_ways()).unwrap();
    assert_eq!(versions(&b.reg, "m"), [1]);
    assert!(b.reg.has_object(ObjectId::of(b"weights 7")));
    remote.take_calls();
    sync(&a.reg, &remote, both_ways()).unwrap();
    assert!(!remote.take_calls().iter().any(|c| c.starts_with("upload")));
}

#[test]
fn a_remote_of_a_newer_format_is_refused_untouched() {
    let remote = MemoryRemote::new("mem://future");
    remote.put(keys::CONFIG, b"format = 99\n");
    let before = remote.key_list();
    let a = TempRegistry::new();
    a.push("m", &[("w.bin", b"one")], &[]);
    let err = sync(&a.reg, &remote, both_ways()).unwrap_err();
    assert!(format!("{err:#}").contains("newer"), "{err:#}");
    assert_eq!(remote.key_list(), before);
}
