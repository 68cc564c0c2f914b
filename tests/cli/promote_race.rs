//! Concurrent promotions: eight processes promote at once; every success lands exactly
//! once, in an order that some serial run could have produced, and readers never see a
//! torn state.

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use crate::common::TestEnv;
use mreg::manifest::state::Action;
use mreg::store::{Registry, stages};

const WRITERS: u64 = 8;

fn env_with_eight_versions() -> TestEnv {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    for n in 1..=WRITERS {
        env.write("v1/build.txt", format!("build {n}\n"));
        env.ok(&[
            "push",
            "v1",
            "--model",
            "m",
            "--metric",
            &format!("acc=0.{n}"),
        ]);
    }
    env
}

/// Starts one `mreg promote` per version at once, with `extra` flags; returns the
/// versions and their exit codes, while a reader thread loops over the stage state.
fn race(env: &TestEnv, extra: &[&str]) -> (Vec<(u64, i32, String)>, usize) {
    let registry = Registry::open(env.registry().to_str().unwrap()).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (done, reads) = (Arc::clone(&done), Arc::clone(&reads));
        thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                // Every read must parse and verify: HEAD is replaced by rename and a
                // state is complete before its name appears.
                if let Some((_, state)) = stages::current(&registry, "m").unwrap() {
                    if let Some(v) = state.holder("production") {
                        assert!((1..=WRITERS).contains(&v), "read production = {v}");
                    }
                }
                reads.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let children: Vec<(u64, Child)> = (1..=WRITERS)
        .map(|n| {
            let reference = format!("m@{n}");
            let mut args = vec!["promote", reference.as_str(), "production", "--json"];
            args.extend(extra);
            let child = env
                .cmd(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (n, child)
        })
        .collect();
    let results = children
        .into_iter()
        .map(|(n, child)| {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            (n, out.status.code().unwrap_or(-1), stderr)
        })
        .collect();
    done.store(true, Ordering::SeqCst);
    reader.join().unwrap();
    (results, reads.load(Ordering::SeqCst))
}

/// Checks that the chain is some serial order of the successful promotions: numbered
/// 1..n, each move starting from what the state before it held, each success once.
fn assert_serial(env: &TestEnv, succeeded: &[u64]) -> Vec<u64> {
    let registry = Registry::open(env.registry().to_str().unwrap()).unwrap();
    let mut chain = stages::chain(&registry, "m", None).unwrap();
    chain.reverse();
    let mut held = None;
    let mut order = Vec::new();
    for (i, (_, state)) in chain.iter().enumerate() {
        assert_eq!(state.number, i as u64 + 1);
        assert_eq!(state.action, Action::Promote);
        assert_eq!(state.moves[0].stage, "production");
        assert_eq!(
            state.moves[0].from, held,
            "state {} did not start from its predecessor",
            state.number
        );
        held = Some(state.moves[0].to);
        order.push(state.version);
    }
    let mut sorted = order.clone();
    sorted.sort_unstable();
    let mut expected = succeeded.to_vec();
    expected.sort_unstable();
    assert_eq!(
        sorted, expected,
        "the chain must hold every success exactly once"
    );
    let stored = std::fs::read_dir(env.registry().join("models/m/states"))
        .unwrap()
        .count();
    assert_eq!(
        stored,
        chain.len(),
        "a lost race must leave no stray state behind"
    );
    let (_, newest) = stages::current(&registry, "m").unwrap().unwrap();
    assert_eq!(newest.holder("production"), held);
    order
}

#[test]
fn eight_concurrent_promotions_all_land_once_in_a_serial_order() {
    let env = env_with_eight_versions();
    let (results, reads) = race(&env, &["--allow-downgrade"]);
    let mut succeeded = Vec::new();
    for (n, code, stderr) in &results {
        match code {
            0 => succeeded.push(*n),
            4 => assert!(stderr.contains("kept moving"), "m@{n}: {stderr}"),
            _ => panic!("m@{n} exited {code}: {stderr}"),
        }
    }
    assert!(!succeeded.is_empty());
    assert_serial(&env, &succeeded);
    assert!(reads > 0);
}

#[test]
fn concurrent_promotions_never_move_production_backwards() {
    let env = env_with_eight_versions();
    let (results, _) = race(&env, &[]);
    let mut succeeded = Vec::new();
    for (n, code, stderr) in &results {
        match code {
            0 => succeeded.push(*n),
            4 => assert!(stderr.contains("backwards"), "m@{n}: {stderr}"),
            _ => panic!("m@{n} exited {code}: {stderr}"),
        }
    }
    assert!(
        succeeded.contains(&WRITERS),
        "the newest version can never be refused"
    );
    let order = assert_serial(&env, &succeeded);
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "production went backwards: {order:?}"
    );
}
