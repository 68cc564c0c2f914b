//! The stage transaction and version numbering of registries used through a bucket
//! (here a bucket in memory, shared by several mirrors as by several machines).

use std::path::Path;

use tempfile::TempDir;

use super::open_in;
use crate::manifest::state::Action;
use crate::remote::bootstrap;
use crate::remote::memory::MemoryRemote;
use crate::stage::{self, Step};
use crate::store::{NoProgress, Registry, keys, models, stages};
use crate::testing::{promote_in, push_in};

/// Returns an empty registry on a bucket in memory.
fn bucket() -> MemoryRemote {
    let remote = MemoryRemote::new("mem://bucket/reg");
    assert!(bootstrap::init(&remote).unwrap());
    remote
}

/// Opens a mirror of `remote` in a folder of its own under `scratch`: another machine.
fn mirror(remote: &MemoryRemote, scratch: &Path) -> Registry {
    let dir = tempfile::tempdir_in(scratch).unwrap().keep();
    let config = remote.bytes(keys::CONFIG).unwrap();
    open_in(
        Box::new(remote.clone()),
        &config,
        &dir,
        Box::new(NoProgress),
    )
    .unwrap()
    .0
}

fn promotion(reg: &Registry, reference: &str, stage: &str) -> anyhow::Result<()> {
    let request = crate::ops::promote::Request {
        reference,
        stage,
        gates: &[],
        force: false,
        reason: None,
        expect: None,
        allow_downgrade: true,
        wait_s: 30.0,
        dry_run: false,
    };
    crate::ops::promote::promote(reg, &request).map(|_| ())
}

#[test]
fn concurrent_pushes_through_many_mirrors_get_distinct_numbers() {
    let scratch = TempDir::new().unwrap();
    let remote = bucket();
    std::thread::scope(|s| {
        for i in 0..4 {
            let (remote, scratch) = (&remote, scratch.path());
            s.spawn(move || {
                let reg = mirror(remote, scratch);
                let bytes = format!("weights {i}");
                push_in(&reg, scratch, "m", &[("w.bin", bytes.as_bytes())], &[]).unwrap();
            });
        }
    });
    let reg = mirror(&remote, scratch.path());
    let records = models::load_versions(&reg, "m").unwrap();
    let numbers: Vec<u64> = records.iter().map(|r| r.version).collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    let mut trees: Vec<_> = records.iter().map(|r| r.tree).collect();
    trees.dedup();
    assert_eq!(trees.len(), 4, "a push was lost or numbered twice");
}

#[test]
fn concurrent_promotions_on_one_bucket_form_one_chain() {
    let scratch = TempDir::new().unwrap();
    let remote = bucket();
    let first = mirror(&remote, scratch.path());
    for i in 1..=4 {
        let bytes = format!("weights {i}");
        push_in(
            &first,
            scratch.path(),
            "m",
            &[("w.bin", bytes.as_bytes())],
            &[],
        )
        .unwrap();
    }
    std::thread::scope(|s| {
        for i in 1..=4 {
            let (remote, scratch) = (&remote, scratch.path());
            s.spawn(move || {
                let reg = mirror(remote, scratch);
                promotion(&reg, &format!("m@{i}"), "staging").unwrap();
            });
        }
    });
    let reg = mirror(&remote, scratch.path());
    let chain = stages::chain(&reg, "m", None).unwrap();
    assert_eq!(chain.len(), 4, "a promotion overwrote another");
    let mut promoted: Vec<u64> = chain.iter().map(|(_, s)| s.version).collect();
    promoted.sort_unstable();
    assert_eq!(promoted, [1, 2, 3, 4]);
    for pair in chain.windows(2) {
        let ((_, newer), (older_id, older)) = (&pair[0], &pair[1]);
        assert_eq!(newer.previous.as_ref(), Some(older_id));
        assert_eq!(newer.number, older.number + 1);
    }
}

#[test]
fn a_move_that_lost_the_race_on_the_bucket_is_decided_again() {
    let scratch = TempDir::new().unwrap();
    let remote = bucket();
    let a = mirror(&remote, scratch.path());
    push_in(&a, scratch.path(), "m", &[("w.bin", b"one")], &[]).unwrap();
    let b = mirror(&remote, scratch.path());
    let stamp = stage::Stamp::now(10.0).unwrap();
    let mut calls = 0;
    let done = stage::transact(&a, "m", &stamp, |state| {
        calls += 1;
        if calls == 1 {
            // Another machine moves staging between this read and the swap.
            promotion(&b, "m@1", "staging").unwrap();
        }
        let mut new = stage::new_state(state, "m", "production", 1, Action::Promote, &stamp);
        new.stages.insert("production".to_owned(), 1);
        Ok(Step::Write(Box::new(new), ()))
    })
    .unwrap();
    assert_eq!((calls, done.retries), (2, 1));
    let (id, number) = done.written.unwrap();
    assert_eq!(number, 2);
    let state = stages::load_state(&a, "m", &id).unwrap();
    assert_eq!(state.stages.get("staging"), Some(&1), "B's move was kept");
    let head = String::from_utf8(remote.bytes(&keys::head("m")).unwrap()).unwrap();
    assert_eq!(head.trim(), id.as_str());
}

#[test]
fn a_swap_whose_reply_was_lost_is_recognised_as_done() {
    let scratch = TempDir::new().unwrap();
    let remote = bucket();
    let reg = mirror(&remote, scratch.path());
    push_in(&reg, scratch.path(), "m", &[("w.bin", b"one")], &[]).unwrap();
    remote.lose_swap_replies(true);
    let report = promote_in(&reg, "m@1", "staging", &[]).unwrap();
    remote.lose_swap_replies(false);
    let (id, _) = report.state.expect("the move is recorded");
    let head = String::from_utf8(remote.bytes(&keys::head("m")).unwrap()).unwrap();
    assert_eq!(head.trim(), id.as_str());
    assert_eq!(stages::read_head(&reg, "m").unwrap(), Some(id));
}

#[test]
fn a_bucket_that_ignores_conditional_writes_takes_no_versions_or_moves() {
    let scratch = TempDir::new().unwrap();
    let remote = bucket();
    remote.ignore_conditions();
    let reg = mirror(&remote, scratch.path());
    let err = push_in(&reg, scratch.path(), "m", &[("w.bin", b"one")], &[]).unwrap_err();
    assert!(
        format!("{err:#}").contains("does not enforce conditional writes"),
        "{err:#}"
    );
    assert!(
        remote
            .key_list()
            .iter()
            .all(|k| !k.starts_with(keys::MODELS))
    );
}
