//! The lock between writers and `gc` in a registry folder: writers share it, `gc`
//! takes it alone.
//!
//! A writer that may come to name an object in a record (a push, a sync or clone
//! fetching into the registry, a sync sending to a folder remote, a run logging series)
//! holds a shared OS lock (`flock`) on `gc.lock` from before it first looks whether an
//! object exists until its last record is published. `gc` holds the same lock
//! exclusively from before it reads the first record until its last deletion. So no
//! writer can find an object present, skip writing it, and then name it in a record
//! after `gc` decided nobody names it: either the writer's record is published before
//! `gc` reads the records, or the writer looks after `gc` is done.
//!
//! A second file, `gc.queue`, keeps `gc` from waiting forever behind a stream of
//! writers whose shared locks overlap: a writer takes it shared just long enough to get
//! `gc.lock`, and `gc` takes it exclusively first, so once `gc` is waiting, new writers
//! wait behind it. The kernel drops both locks when their process ends, however it
//! ends, so a killed writer or `gc` never leaves the registry locked.
//!
//! The guards count per process: a writer already holding the lock (a push that
//! records a run) takes it again without asking the kernel, which could otherwise
//! deadlock behind a waiting `gc`.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rustix::fs::{FlockOperation, Mode, OFlags};

use crate::error::Failure;

use super::keys::{GC_LOCK as LOCK, GC_QUEUE as QUEUE};

/// How often a waiting `gc` tries the lock again.
const POLL: Duration = Duration::from_millis(20);

/// Shared locks this process holds, by registry root: how many guards, and the file.
fn held() -> &'static Mutex<HashMap<PathBuf, (usize, File)>> {
    static HELD: OnceLock<Mutex<HashMap<PathBuf, (usize, File)>>> = OnceLock::new();
    HELD.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A writer's share of the lock of one registry folder, released when dropped.
#[derive(Debug)]
pub struct Writing {
    root: Option<PathBuf>,
}

impl Drop for Writing {
    fn drop(&mut self) {
        let Some(root) = self.root.take() else {
            return;
        };
        let mut held = held().lock().expect("gc lock table is never poisoned");
        if let Some((count, _)) = held.get_mut(&root) {
            *count -= 1;
            if *count == 0 {
                held.remove(&root);
            }
        }
    }
}

/// Takes a writer's share of the lock of the registry folder at `root`, waiting while
/// a `gc` runs there; `on_wait` hears once, in a sentence, when it has to wait.
///
/// A registry this user cannot create the lock file in is one it cannot write either:
/// the guard is then empty, and the write that follows fails with its own reason.
pub fn writing(root: &Path, on_wait: &dyn Fn(&str)) -> Result<Writing> {
    let key = root.to_path_buf();
    let mut table = held().lock().expect("gc lock table is never poisoned");
    if let Some((count, _)) = table.get_mut(&key) {
        *count += 1;
        return Ok(Writing { root: Some(key) });
    }
    let (Some(queue), Some(lock)) = (open(&root.join(QUEUE)), open(&root.join(LOCK))) else {
        return Ok(Writing { root: None });
    };
    // Shared locks never wait for each other: only a gc holding or waiting for the
    // lock makes a writer wait.
    let mut told = false;
    for (file, name) in [(&queue, QUEUE), (&lock, LOCK)] {
        if !try_lock(file, FlockOperation::NonBlockingLockShared) {
            if !told {
                on_wait(&format!(
                    "Waiting for the gc of {} to finish.",
                    root.display()
                ));
                told = true;
            }
            rustix::fs::flock(file, FlockOperation::LockShared)
                .with_context(|| format!("locking {}", root.join(name).display()))?;
        }
    }
    drop(queue);
    table.insert(key.clone(), (1, lock));
    Ok(Writing { root: Some(key) })
}

/// The lock of one registry folder held by `gc` alone, released when dropped.
#[derive(Debug)]
pub struct Collecting {
    _queue: File,
    _lock: File,
}

/// Takes the lock of the registry folder at `root` for `gc`: new writers wait from
/// now on, and writers already running are waited for, up to `wait`; `on_wait` hears
/// once, in a sentence, when they are.
pub fn collecting(root: &Path, wait: Duration, on_wait: &dyn Fn(&str)) -> Result<Collecting> {
    let open_or_fail = |name: &str| {
        open(&root.join(name)).ok_or_else(|| {
            anyhow::Error::from(Failure::error(format!(
                "cannot open {}: gc needs to lock it",
                root.join(name).display()
            )))
        })
    };
    let queue = open_or_fail(QUEUE)?;
    let lock = open_or_fail(LOCK)?;
    let deadline = Instant::now() + wait;
    let mut told = false;
    for (file, name) in [(&queue, QUEUE), (&lock, LOCK)] {
        while !try_lock(file, FlockOperation::NonBlockingLockExclusive) {
            if Instant::now() >= deadline {
                return Err(Failure::conflict(format!(
                    "other commands kept writing to the registry for {} s, so gc deleted nothing ({} stayed locked)",
                    wait.as_secs(),
                    root.join(name).display()
                ))
                .hint("run gc again when fewer pushes run, or give it longer with --wait SECONDS")
                .into());
            }
            if !told {
                on_wait(&format!(
                    "Waiting for the commands writing to {} to finish.",
                    root.display()
                ));
                told = true;
            }
            std::thread::sleep(POLL);
        }
    }
    Ok(Collecting {
        _queue: queue,
        _lock: lock,
    })
}

/// Makes the lock files of a new registry folder at `root`.
pub fn make(root: &Path) -> Result<()> {
    for name in [QUEUE, LOCK] {
        let path = root.join(name);
        if open(&path).is_none() {
            anyhow::bail!("cannot create {}", path.display());
        }
    }
    Ok(())
}

/// Opens (making it if need be) a lock file, never through a link; `None` when it
/// cannot be.
fn open(path: &Path) -> Option<File> {
    let flags = OFlags::RDONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::from_raw_mode(0o666))
        .or_else(|_| {
            rustix::fs::open(
                path,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
        })
        .ok()?;
    let file = File::from(fd);
    file.metadata().ok().filter(std::fs::Metadata::is_file)?;
    Some(file)
}

/// Returns whether the lock was taken without waiting.
fn try_lock(file: &File, op: FlockOperation) -> bool {
    rustix::fs::flock(file, op).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_in_progress_holds_gc_off_and_gc_holds_new_writers_off() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let writer = writing(root, &|_| {}).unwrap();
        let again = writing(root, &|_| {
            panic!("a second guard of one process never waits")
        })
        .unwrap();
        let refused = collecting(root, Duration::from_millis(50), &|_| {}).unwrap_err();
        assert!(
            refused.to_string().contains("gc deleted nothing"),
            "{refused}"
        );
        drop(again);
        drop(writer);
        let gc = collecting(root, Duration::from_millis(50), &|_| {}).unwrap();
        // Another process's writer would now wait: the queue is held exclusively.
        let queue = open(&root.join(QUEUE)).unwrap();
        assert!(!try_lock(&queue, FlockOperation::NonBlockingLockShared));
        drop(gc);
        assert!(try_lock(&queue, FlockOperation::NonBlockingLockShared));
    }
}
