//! `gc` on a bucket used directly: what removed versions held is freed on every
//! machine, nothing a record names is deleted while other machines push and pull, a
//! record the bucket holds but gc cannot read stops it, and a gc or writer killed with
//! its lease held leaves a bucket the next command uses. Against moto on 127.0.0.1.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use crate::common::{Template, TestEnv, churn, resume, s3, wait_until_stopped};

/// Returns a new bucket, the URL of a registry under it, and a machine that made it.
fn bucket_registry() -> (String, String, TestEnv) {
    let bucket = s3::bucket();
    let url = format!("s3://{bucket}/reg");
    let env = machine();
    env.ok(&["init", &url]);
    (bucket, url, env)
}

/// Returns a machine of its own (its own cache and mirror) pointed at the S3 server.
fn machine() -> TestEnv {
    TestEnv::on_s3()
}

/// Returns a bucket registry holding `tiny@1` (removed) and `tiny@2`, and the machine
/// that pushed them, with both fixtures in `v1/` and `v2/`.
fn one_version_removed() -> (String, String, TestEnv) {
    let (bucket, url, a) = bucket_registry();
    a.fixture("tiny-v1", "v1");
    a.fixture("tiny-v2", "v2");
    a.ok(&["push", "v1", "--model", "tiny", "--registry", &url]);
    a.ok(&["push", "v2", "--model", "tiny", "--registry", &url]);
    a.ok(&["rm", "tiny@1", "--registry", &url]);
    (bucket, url, a)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Returns the object keys of the registry in the bucket.
fn objects(bucket: &str) -> Vec<String> {
    s3::keys(bucket, "reg/objects/")
}

/// Returns the lease keys left in the bucket.
fn leases(bucket: &str) -> Vec<String> {
    s3::keys(bucket, "reg/gc/")
}

/// Clones the bucket into a new machine, checks it with fsck, and returns the machine
/// and the clone's registry.
fn checked_clone(url: &str) -> (TestEnv, String) {
    let c = machine();
    c.ok(&["clone", url, "c"]);
    let reg = c.path("c/.mreg").display().to_string();
    c.ok(&["--registry", &reg, "fsck"]);
    (c, reg)
}

/// Returns every file below `dir`, relative, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    crate::common::snapshot_files(dir)
}

#[test]
fn gc_on_a_bucket_frees_what_only_removed_versions_held_and_no_machine_relies_on_it_after() {
    let (bucket, url, a) = one_version_removed();
    let before = objects(&bucket);
    // Another machine collects.
    let b = machine();
    let dry = json(&b.ok(&["gc", "--dry-run", "--json", "--registry", &url]));
    assert_eq!(dry["result"], "would-collect", "{dry}");
    assert_eq!(objects(&bucket), before, "a dry run deletes nothing");
    let removed = dry["kinds"][0]["count"].as_u64().unwrap();
    assert!(removed > 0, "{dry}");
    let done = json(&b.ok(&["gc", "--json", "--registry", &url]));
    assert_eq!(done["result"], "collected", "{done}");
    assert_eq!(done["kinds"], dry["kinds"], "{done}");
    assert_eq!(objects(&bucket).len(), before.len() - removed as usize);
    assert!(leases(&bucket).is_empty(), "{:?}", leases(&bucket));
    assert!(s3::keys(&bucket, "reg/gc.epoch").len() == 1);
    // The first machine remembers the bucket held tiny@1's objects; pushing the same
    // files again must send them again.
    let again = json(&a.ok(&[
        "push",
        "v1",
        "--model",
        "tiny",
        "--registry",
        &url,
        "--json",
    ]));
    assert_eq!(again["version"], 3, "{again}");
    assert!(again["sent_bytes"].as_u64().unwrap() > 0, "{again}");
    let (c, reg) = checked_clone(&url);
    c.ok(&["--registry", &reg, "pull", "tiny@3", "--to", "three"]);
    assert_eq!(files(&c.path("three")), files(&a.path("v1")));
    // What gc frees is gone for good: a second gc finds nothing.
    let second = json(&b.ok(&["gc", "--json", "--registry", &url]));
    assert_eq!(second["freed_bytes"], 0, "{second}");
}

#[test]
fn gc_on_a_bucket_deletes_nothing_when_a_record_there_does_not_read() {
    let (bucket, url, _a) = one_version_removed();
    s3::put(
        &bucket,
        "reg/models/tiny/versions/3.toml",
        b"not a version record",
    );
    let before = objects(&bucket);
    let out = machine().run(&["gc", "--registry", &url]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("gc deleted nothing") && said.contains("versions/3.toml"),
        "{said}"
    );
    assert_eq!(objects(&bucket), before);
    assert!(leases(&bucket).is_empty(), "{:?}", leases(&bucket));
}

#[test]
fn a_gc_or_writer_killed_with_its_lease_held_is_taken_for_gone_and_the_next_gc_finishes() {
    let (bucket, url, a) = bucket_registry();
    a.fixture("tiny-v1", "v1");
    a.fixture("tiny-v2", "v2");
    a.ok(&["push", "v1", "--model", "tiny", "--registry", &url]);
    // A push killed after sending its objects, before its version record: its lease
    // and its objects stay behind.
    let short = [("MREG_LEASE_SECONDS", "2")];
    let out = a.run_with(
        &["push", "v2", "--model", "tiny", "--registry", &url],
        &[short[0], ("MREG_CRASH_AT", "version-written")],
    );
    assert_eq!(out.status.signal(), Some(9), "{out:?}");
    let killed_push = leases(&bucket);
    assert_eq!(killed_push.len(), 1, "{killed_push:?}");
    a.ok(&["rm", "tiny@1", "--registry", &url]);
    // gc waits until the dead writer's lease is older than its life, removes it, and
    // collects; then a gc killed midway leaves its own lease.
    let out = a.run_with(
        &["gc", "--registry", &url],
        &[short[0], ("MREG_CRASH_AT", "gc-swept-some")],
    );
    assert_eq!(out.status.signal(), Some(9), "{out:?}");
    assert_eq!(leases(&bucket), ["reg/gc/collector"]);
    // A push waits for the killed gc's lease to be taken for gone, then goes on.
    let b = machine();
    b.fixture("tiny-v2", "v2");
    let out = b.run(&["push", "v2", "--model", "tiny", "--registry", &url]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("Waiting for the gc of s3://"), "{said}");
    // The next gc finishes the work and leaves no lease.
    b.ok(&["gc", "--registry", &url]);
    assert!(leases(&bucket).is_empty(), "{:?}", leases(&bucket));
    let again = json(&b.ok(&["gc", "--dry-run", "--json", "--registry", &url]));
    assert_eq!(again["freed_bytes"], 0, "{again}");
    let (c, reg) = checked_clone(&url);
    c.ok(&["--registry", &reg, "pull", "tiny@latest", "--to", "latest"]);
    assert_eq!(files(&c.path("latest")), files(&b.path("v2")));
}

#[test]
fn gc_in_a_loop_on_a_bucket_against_pushers_and_pullers_never_deletes_what_a_version_names() {
    let (_bucket, url, env) = bucket_registry();
    env.write("stable/w.bin", churn::stable());
    env.ok(&["push", "stable", "--model", "stable", "--registry", &url]);
    // Each pusher, puller and the gc is a machine of its own, with its own mirror.
    let machines: Vec<TestEnv> = (0..9).map(|_| machine()).collect();
    let templates: Vec<Template> = machines.iter().map(Template::of).collect();
    let actor = |n: usize| churn::Actor {
        mreg: &templates[n],
        dir: machines[n].root().join("work"),
    };
    let pushers: Vec<_> = (0..4).map(actor).collect();
    let pullers: Vec<_> = (4..8).map(actor).collect();
    let big = 1 << 20;
    let extra = ["--registry", url.as_str()];
    let kept = churn::gc_against_writers(&templates[8], &pushers, &pullers, &extra, 3, big);
    env.ok(&["gc", "--registry", &url]);
    let (c, reg) = checked_clone(&url);
    for (reference, t, i) in kept {
        let to = format!("check-{t}-{i}");
        c.ok(&["--registry", &reg, "pull", &reference, "--to", &to]);
        churn::check_pulled(&c.path(&to), &reference, t, i, big);
    }
}

#[test]
fn the_buckets_retention_policy_is_applied_by_gc_policy_on_the_bucket() {
    let (bucket, url, a) = bucket_registry();
    for i in 1..=3 {
        a.write("out/w.bin", format!("weights {i}\n").repeat(50));
        a.ok(&["push", "out", "--model", "churn", "--registry", &url]);
    }
    let mut config = String::from_utf8(s3::get(&bucket, "reg/config.toml")).unwrap();
    config.push_str("\n[retention]\nkeep_last = 1\n");
    s3::put(&bucket, "reg/config.toml", config.as_bytes());
    let before = objects(&bucket).len();
    let done = json(&machine().ok(&["gc", "--policy", "--json", "--registry", &url]));
    assert_eq!(
        done["policy"]["removed"].as_array().unwrap().len(),
        2,
        "{done}"
    );
    assert_eq!(objects(&bucket).len(), before - 4, "{done}");
    let (c, reg) = checked_clone(&url);
    let listed = json(&c.ok(&["--registry", &reg, "ls", "churn", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[test]
fn a_writer_stopped_past_its_lease_while_gc_took_its_objects_still_publishes_a_whole_version() {
    let (_bucket, url, a) = bucket_registry();
    let weights = crate::common::noise(300_000, 5);
    a.write("c/w.bin", &weights);
    a.ok(&["push", "c", "--model", "a", "--registry", &url]);
    a.ok(&["rm", "a@1", "--registry", &url]);
    // Another machine pushes the same files, into a run of its own: it finds the
    // objects on the bucket, and is stopped with its lease checked and the version
    // record not yet sent.
    let b = machine();
    b.write("c/w.bin", &weights);
    b.ok(&["run", "--experiment", "e", "--registry", &url, "--", "true"]);
    let runs = json(&b.ok(&["runs", "--json", "--registry", &url]));
    let run = runs[0]["id"].as_str().unwrap().to_owned();
    let mut push = b.cmd(&[
        "push",
        "c",
        "--model",
        "b",
        "--run",
        &run,
        "--registry",
        &url,
    ]);
    push.env("MREG_LEASE_SECONDS", "2")
        .env("MREG_PAUSE_AT", "lease-checked")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = push.spawn().unwrap();
    wait_until_stopped(child.id());
    // A gc takes the stopped writer's lease for abandoned and deletes the objects.
    let collected = json(&machine().ok(&["gc", "--json", "--wait", "60", "--registry", &url]));
    assert!(
        collected["freed_bytes"].as_u64().unwrap() > 250_000,
        "{collected}"
    );
    resume(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (c, reg) = checked_clone(&url);
    c.ok(&["--registry", &reg, "pull", "b@1", "--to", "b1"]);
    assert_eq!(fs::read(c.path("b1/w.bin")).unwrap(), weights);
}
