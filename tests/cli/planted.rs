//! Links, FIFOs and devices planted inside a registry folder, as anyone who can write
//! to a shared one could: no command may write outside the registry through them, wait
//! on them or read them without bound, and fsck names each one.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use crate::common::TestEnv;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A registry with `m@1` pushed, promoted to staging.
fn registry_with_a_model() -> TestEnv {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    env.ok(&["push", "v1", "--model", "m"]);
    env.ok(&["promote", "m@1", "staging"]);
    env
}

#[test]
fn a_link_planted_as_a_resumable_download_never_redirects_the_write() {
    let a = registry_with_a_model();
    let share = a.root().join("share");
    a.ok(&["remote", "add", "share", &share.display().to_string()]);
    a.ok(&["sync"]);
    let b = TestEnv::new();
    b.ok(&["init", "reg"]);
    b.ok(&[
        "--registry",
        "reg",
        "remote",
        "add",
        "share",
        &share.display().to_string(),
    ]);
    // Every object the share holds gets a planted link where its download would resume.
    let victim = b.write("victim.txt", "precious\n");
    let tmp = b.path("reg/.mreg/tmp");
    for entry in walkdir::WalkDir::new(share.join(".mreg/objects")) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let fan = entry.path().parent().unwrap().file_name().unwrap();
            let name = entry.file_name().to_string_lossy();
            let link = tmp.join(format!("fetch-{}{name}", fan.to_string_lossy()));
            symlink(&victim, link).unwrap();
        }
    }
    let out = b.run_within(&["--registry", "reg", "sync"], 60);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    b.ok(&["--registry", "reg", "pull", "m@staging", "--to", "serve"]);
    assert_eq!(
        crate::common::snapshot_files(&b.path("serve")),
        crate::common::snapshot_files(&a.path("v1"))
    );
}

#[test]
fn a_linked_object_folder_is_refused_before_anything_is_written_through_it() {
    let env = TestEnv::with_registry();
    env.fixture("tiny-v1", "v1");
    // Every fan-out folder the push would write into points somewhere else.
    let elsewhere = env.path("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let objects = env.registry().join("objects");
    for n in 0..=255u8 {
        symlink(&elsewhere, objects.join(format!("{n:02x}"))).unwrap();
    }
    let out = env.run(&["push", "v1", "--model", "m"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("is a symlink"), "{}", stderr(&out));
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert!(!env.registry().join("models/m").exists());

    let fsck = env.run(&["fsck"]);
    assert_eq!(fsck.status.code(), Some(1), "{}", stdout(&fsck));
    assert!(
        stdout(&fsck).contains("it is a symlink"),
        "{}",
        stdout(&fsck)
    );
}

#[test]
fn fifos_and_devices_where_records_belong_are_refused_without_waiting() {
    let env = registry_with_a_model();
    let reg = env.registry();
    let versions = reg.join("models/m/versions");
    fs::remove_file(versions.join("1.toml")).unwrap();
    mkfifo(&versions.join("1.toml"));
    let head = reg.join("models/m/HEAD");
    fs::remove_file(&head).unwrap();
    symlink("/dev/zero", &head).unwrap();
    mkfifo(&reg.join("remotes.toml"));

    env.each_refuses(
        &[
            &["show", "m@1"],
            &["pull", "m@1", "--to", "out"],
            &["history", "m"],
            &["remote", "list"],
            &["promote", "m@1", "production"],
        ],
        20,
        "mreg does not follow links or read special files",
    );
    let fsck = env.run_within(&["fsck"], 20);
    assert_eq!(fsck.status.code(), Some(1), "{}", stdout(&fsck));
    let said = stdout(&fsck);
    assert!(said.contains("it is a FIFO"), "{said}");
    assert!(said.contains("it is a symlink"), "{said}");
}

#[test]
fn a_version_numbered_at_the_top_of_the_range_stops_push_with_a_sentence() {
    let env = registry_with_a_model();
    let record = fs::read_to_string(env.registry().join("models/m/versions/1.toml")).unwrap();
    let max = u64::MAX;
    fs::write(
        env.registry().join(format!("models/m/versions/{max}.toml")),
        record.replace("version = 1", &format!("version = {max}")),
    )
    .unwrap();
    env.fixture("tiny-v2", "v2");
    let out = env.run(&["push", "v2", "--model", "m"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the highest number there is"),
        "{}",
        stderr(&out)
    );
    assert!(!env.registry().join("models/m/versions/0.toml").exists());
}

#[test]
fn a_link_planted_as_a_marker_or_a_folder_as_a_lock_never_leads_a_promotion_astray() {
    let env = registry_with_a_model();
    let reg = env.registry();
    let outside = env.path("outside");
    fs::create_dir(&outside).unwrap();
    let seen = reg.join("models/m/HEAD.seen");
    fs::remove_file(&seen).unwrap();
    symlink(outside.join("created-by-mreg"), &seen).unwrap();
    fs::create_dir_all(reg.join("models/m/HEAD.lock/inside")).unwrap();
    // Old enough that no mreg could be taking it right now.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    fs::File::open(reg.join("models/m/HEAD.lock"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let out = env.run_within(&["promote", "m@1", "production"], 20);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "written outside"
    );
    assert!(fs::symlink_metadata(&seen).unwrap().is_file());
    assert!(!reg.join("models/m/HEAD.lock").exists());
}

#[test]
fn a_run_folder_left_without_its_record_is_a_leftover_not_a_problem() {
    let env = registry_with_a_model();
    fs::create_dir_all(env.registry().join("runs/0123456789abcdef/log")).unwrap();
    let fsck = env.run(&["fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", stdout(&fsck));
    assert!(
        stderr(&fsck).contains("runs/0123456789abcdef"),
        "{}",
        stderr(&fsck)
    );
    let runs = env.run(&["runs"]);
    assert_eq!(runs.status.code(), Some(0), "{}", stderr(&runs));
    assert!(!stdout(&runs).contains("0123456789abcdef"));
}
