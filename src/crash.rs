//! Named points where a test can have mreg killed, to prove that a `kill -9` at any
//! of them leaves a registry that `fsck` passes and the next command uses.
//!
//! `MREG_CRASH_AT=NAME` makes the process send itself `SIGKILL` when it reaches the
//! point `NAME`: no destructor runs, no buffer is flushed, no lock is released by mreg,
//! exactly as when an operator or the kernel's out-of-memory killer ends it. Unset, a
//! point costs one comparison. docs/crash-safety.md lists the points and what each
//! leaves behind.

use std::sync::OnceLock;

/// Every named point, in the order a push, a promotion, a sync, a pull, a removal and
/// a garbage collection reach them.
pub const POINTS: &[&str] = &[
    "objects-staged",
    "parts-published",
    "objects-published",
    "run-staged",
    "version-written",
    "state-written",
    "head-swapped",
    "clone-made",
    "fetch-downloaded",
    "upload-staged",
    "pull-written",
    "removal-recorded",
    "gc-marked",
    "gc-swept-some",
    "gc-repacked",
];

/// Kills this process when `MREG_CRASH_AT` names `name`.
pub fn point(name: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    let at = AT.get_or_init(|| {
        std::env::var("MREG_CRASH_AT")
            .ok()
            .filter(|v| !v.is_empty())
    });
    if at.as_deref() == Some(name) {
        debug_assert!(POINTS.contains(&name), "crash point {name} is not listed");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
}

/// Stops this process (`SIGSTOP`) the first time it reaches the point `name` when
/// `MREG_PAUSE_AT` names it, as a machine put to sleep, or a debugger, would stop it
/// there, every thread at once; a `SIGCONT` resumes it. The points: `lease-checked`
/// (a write on a bucket, its lease checked and the request not sent yet: the tests of
/// leases collect meanwhile) and `move-decided` (a stage move decided, `HEAD` not yet
/// swapped: the tests of removals racing promotions remove meanwhile).
pub fn pause(name: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let at = AT.get_or_init(|| {
        std::env::var("MREG_PAUSE_AT")
            .ok()
            .filter(|v| !v.is_empty())
    });
    if at.as_deref() == Some(name) && !DONE.swap(true, std::sync::atomic::Ordering::SeqCst) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::STOP);
    }
}
