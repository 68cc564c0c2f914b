use std::sync::atomic::AtomicUsize;

use super::*;
use crate::remote::memory::MemoryRemote;

/// A short life, so that abandonment shows within a test.
const LIFE: Duration = Duration::from_secs(2);

fn handles(remote: &MemoryRemote) -> impl Fn() -> Box<dyn Remote> + '_ {
    || Box::new(remote.clone())
}

fn writer_keys(remote: &MemoryRemote) -> Vec<String> {
    remote
        .key_list()
        .into_iter()
        .filter(|k| k.starts_with(GC_WRITERS))
        .collect()
}

/// A lease as a killed process leaves it: written once, never renewed.
fn abandoned_lease(kind: &str) -> Vec<u8> {
    Text::new(kind, LIFE).bytes()
}

#[test]
fn a_writer_holds_gc_off_and_its_lease_goes_with_it() {
    let remote = MemoryRemote::new("mem://lease-writer");
    let writer = writing_for(&remote, &handles(&remote), &|_| {}, LIFE).unwrap();
    let again = writing_for(&remote, &handles(&remote), &|_| panic!("shared"), LIFE).unwrap();
    assert_eq!(writer_keys(&remote).len(), 1, "one lease per process");
    let told = AtomicUsize::new(0);
    let refused = collecting_for(
        &remote,
        &handles(&remote),
        Duration::from_millis(300),
        &|m| {
            assert!(m.contains("Waiting for a command writing"), "{m}");
            told.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        },
        LIFE,
    )
    .err()
    .expect("a live writer keeps gc waiting");
    assert!(
        refused.to_string().contains("gc deleted nothing"),
        "{refused}"
    );
    assert_eq!(
        crate::error::exit_code_of(&refused),
        crate::error::EXIT_CONFLICT
    );
    assert_eq!(told.into_inner(), 1, "told once");
    assert!(
        remote.bytes(GC_COLLECTOR).is_none(),
        "a gc that gave up left no lease"
    );
    drop(again);
    assert_eq!(writer_keys(&remote).len(), 1, "still shared by `writer`");
    drop(writer);
    assert!(writer_keys(&remote).is_empty());
    let gc = collecting_for(&remote, &handles(&remote), Duration::ZERO, &|_| {}, LIFE).unwrap();
    gc.check().unwrap();
    drop(gc);
    assert!(remote.bytes(GC_COLLECTOR).is_none());
}

#[test]
fn a_writer_waits_while_a_gc_collects_and_goes_on_when_it_is_done() {
    let remote = MemoryRemote::new("mem://lease-wait");
    let gc = collecting_for(&remote, &handles(&remote), Duration::ZERO, &|_| {}, LIFE).unwrap();
    let started = Instant::now();
    std::thread::scope(|s| {
        let waiting = s.spawn(|| {
            let told = AtomicUsize::new(0);
            let share = writing_for(
                &remote,
                &handles(&remote),
                &|m| {
                    assert!(m.contains("Waiting for the gc of mem://lease-wait"), "{m}");
                    told.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                },
                LIFE,
            )
            .unwrap();
            (share, told.into_inner())
        });
        std::thread::sleep(Duration::from_millis(500));
        assert!(!waiting.is_finished(), "the writer waits for the gc");
        assert!(
            writer_keys(&remote).is_empty(),
            "a waiting writer holds no lease"
        );
        drop(gc);
        let (share, told) = waiting.join().unwrap();
        assert_eq!(told, 1);
        assert_eq!(writer_keys(&remote).len(), 1);
        drop(share);
    });
    assert!(
        started.elapsed() < LIFE,
        "the writer went on once the gc was done"
    );
}

#[test]
fn leases_left_by_killed_processes_are_taken_for_abandoned_after_their_life() {
    let remote = MemoryRemote::new("mem://lease-killed");
    remote.put(
        &format!("{GC_WRITERS}0123456789abcdef0123456789abcdef"),
        &abandoned_lease("writer"),
    );
    remote.put(GC_COLLECTOR, &abandoned_lease("collector"));
    // A writer waits out the killed gc's lease, then goes on.
    let started = Instant::now();
    let share = writing_for(&remote, &handles(&remote), &|_| {}, LIFE).unwrap();
    assert!(started.elapsed() >= LIFE, "{:?}", started.elapsed());
    drop(share);
    // A gc takes the killed gc's lease over and deletes the killed writer's.
    let gc = collecting_for(
        &remote,
        &handles(&remote),
        Duration::from_secs(10),
        &|_| {},
        LIFE,
    )
    .unwrap();
    assert!(writer_keys(&remote).is_empty(), "{:?}", remote.key_list());
    gc.check().unwrap();
    drop(gc);
    assert!(remote.bytes(GC_COLLECTOR).is_none());
}

#[test]
fn a_live_lease_is_renewed_and_never_taken_for_abandoned() {
    let remote = MemoryRemote::new("mem://lease-live");
    let share = writing_for(&remote, &handles(&remote), &|_| {}, LIFE).unwrap();
    let key = writer_keys(&remote).pop().unwrap();
    let mut watch = Watch::default();
    let until = Instant::now() + LIFE * 2;
    while Instant::now() < until {
        let lease = remote.get(&key).unwrap().unwrap();
        assert!(
            !watch.abandoned(&key, &lease, None),
            "a renewed lease was abandoned"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    require_held("mem://lease-live").unwrap();
    drop(share);
}

#[test]
fn a_holder_whose_lease_was_taken_away_stops_acting() {
    let remote = MemoryRemote::new("mem://lease-lost");
    let share = writing_for(&remote, &handles(&remote), &|_| {}, LIFE).unwrap();
    let key = writer_keys(&remote).pop().unwrap();
    remote.delete(&key).unwrap();
    std::thread::sleep(renew_every(LIFE) * 3);
    let err = require_held("mem://lease-lost").unwrap_err();
    assert!(err.to_string().contains("deleted, as abandoned"), "{err}");
    // Every record it would publish is refused.
    let refused = remote.create("models/m/versions/1.toml", b"x").unwrap_err();
    assert!(refused.to_string().contains("lost the lease"), "{refused}");
    drop(share);
    assert!(remote.bytes("models/m/versions/1.toml").is_none());
}

#[test]
fn a_lease_older_than_its_life_by_the_stores_clock_is_abandoned_at_once() {
    let written = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let lease = Fetched {
        bytes: abandoned_lease("writer"),
        tag: "\"1\"".to_owned(),
        modified: Some(written),
    };
    let mut watch = Watch::default();
    assert!(!watch.abandoned("k", &lease, Some(written + LIFE / 2)));
    assert!(watch.abandoned("k", &lease, Some(written + LIFE * 2)));
    // A lease that does not read lives the longest life there is.
    let garbage = Fetched {
        bytes: b"not a lease".to_vec(),
        ..lease
    };
    assert!(!Watch::default().abandoned("k", &garbage, Some(written + LIFE * 2)));
    assert!(Watch::default().abandoned("k", &garbage, Some(written + Duration::from_secs(3601))));
}

#[test]
fn a_key_at_the_collectors_lease_too_large_for_one_is_no_lease() {
    let remote = MemoryRemote::new("mem://lease-large");
    remote.put(GC_COLLECTOR, &vec![b'x'; 70 * 1024]);
    let started = Instant::now();
    let share = writing_for(&remote, &handles(&remote), &|_| panic!("no wait"), LIFE).unwrap();
    assert!(started.elapsed() < LIFE);
    drop(share);
    let gc = collecting_for(&remote, &handles(&remote), Duration::ZERO, &|_| {}, LIFE).unwrap();
    let lease = remote.bytes(GC_COLLECTOR).unwrap();
    assert!(
        Text::parse(&lease).is_some(),
        "gc replaced it with its own lease"
    );
    drop(gc);
}
