//! Lock files guarding the registry's few mutable files, after git's lockfile protocol.
//!
//! To change `X`, a writer creates `X.lock` exclusively, re-checks that `X` still holds
//! what it read, publishes the new `X` (temp file, fsync, rename, fsync the folder), and
//! removes the lock. The lock file names its holder (pid, host, command, time), so a
//! lock that stays says whose it is.
//!
//! A holder also keeps an OS lock (`flock`) on the lock file, taken before the file
//! gets its name and kept until after the name is gone. The kernel drops it when the
//! holder ends, however it ends, so a lock file whose OS lock is free was left by a
//! process that is gone (killed, or its machine lost power): the next writer removes it
//! and goes on, and no person is needed after a `kill -9`. A free lock file younger than
//! [`GRACE`] is still waited for, in case an mreg that takes no OS lock holds it.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use rustix::fs::{FlockOperation, Mode, OFlags};
use serde::{Deserialize, Serialize};

use super::atomic::{self, Swap};
use crate::error::Failure;

/// Returns who holds a lock, as written inside the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The process id.
    pub pid: u32,
    /// The host it runs on.
    pub host: String,
    /// Its command line, with secrets masked.
    pub command: String,
    /// When it took the lock (RFC 3339, UTC).
    pub since: String,
}

impl Holder {
    /// Returns a holder naming this process.
    pub fn this_process(command: String, since: String) -> Holder {
        Holder {
            pid: std::process::id(),
            host: host_name(),
            command,
            since,
        }
    }
}

/// Returns this machine's host name.
fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// How old a lock file nobody holds an OS lock on must be before it is removed: far
/// longer than any swap under it takes.
pub const GRACE: Duration = Duration::from_secs(2);

/// Returns a held lock; dropping it removes the lock file.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    target: PathBuf,
    /// The lock file, open, with the OS lock on it; closed after the name is removed.
    _held: Option<File>,
}

impl Lock {
    /// Takes the lock on `target` (the file `target.lock`), waiting up to `wait` for
    /// another holder to let go.
    ///
    /// Fails with a conflict naming the holder when the wait runs out.
    pub fn acquire(tmp_dir: &Path, target: &Path, holder: &Holder, wait: Duration) -> Result<Lock> {
        let path = lock_path(target);
        let body = toml::to_string(holder)?;
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(2);
        loop {
            if let Created::Held(held) = create(tmp_dir, &path, body.as_bytes())? {
                return Ok(Lock {
                    path,
                    target: target.to_path_buf(),
                    _held: held,
                });
            }
            if reclaim(&path)? {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(held_failure(&path, wait).into());
            }
            thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Returns the lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the guarded file, the second half of the protocol: `decide` re-reads
    /// what it depends on (now that no other writer can change it) and returns the new
    /// content, or `None` when what it read had moved; the content is then published by
    /// rename (temp file, fsync, rename, fsync the folder). Nothing is written on `None`.
    pub fn swap<T>(
        &self,
        tmp_dir: &Path,
        decide: impl FnOnce() -> Result<Option<(Vec<u8>, T)>>,
    ) -> Result<Swap<T>> {
        let Some((bytes, done)) = decide()? else {
            return Ok(Swap::Moved);
        };
        atomic::replace(tmp_dir, &self.target, &bytes)?;
        Ok(Swap::Done(done))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // A lock that cannot be removed is reported by the next writer, with its holder.
        let _ = fs::remove_file(&self.path);
    }
}

/// What publishing a lock file found.
enum Created {
    /// The name was taken; nothing was published.
    Taken,
    /// The lock file is published, with the open file holding its OS lock (`None` on a
    /// filesystem without OS locks).
    Held(Option<File>),
}

/// Publishes a lock file at `path` holding `body`, with the OS lock taken on it before
/// it has the name.
fn create(tmp_dir: &Path, path: &Path, body: &[u8]) -> Result<Created> {
    let mut temp = atomic::temp_file(tmp_dir)?;
    temp.write_all(body)
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("writing {}", temp.path().display()))?;
    let held = rustix::fs::flock(temp.as_file(), FlockOperation::NonBlockingLockExclusive)
        .ok()
        .and_then(|()| temp.as_file().try_clone().ok());
    match fs::hard_link(temp.path(), path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => return Ok(Created::Taken),
        Err(err) => return Err(err).with_context(|| format!("publishing {}", path.display())),
    }
    drop(temp);
    atomic::sync_parent(path)?;
    Ok(Created::Held(held))
}

/// Removes the lock file at `path` when its holder is gone, and returns whether the
/// name may be free now (removed, or gone already).
///
/// The holder is gone when nobody holds the OS lock on the file and it is older than
/// [`GRACE`], or names a process of this host that no longer runs. A link, FIFO or
/// device planted at the name is removed too: mreg writes none. While this process
/// holds the OS lock of the abandoned file, no other can remove it, and the name is
/// removed only if it still is that file.
fn reclaim(path: &Path) -> Result<bool> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(rustix::io::Errno::NOENT) => return Ok(true),
        Err(rustix::io::Errno::LOOP) => return remove(path),
        Err(_) => return Ok(false),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return remove(path);
    }
    if !abandoned(&file, &meta, path) {
        return Ok(false);
    }
    match fs::symlink_metadata(path) {
        Ok(now) if now.dev() == meta.dev() && now.ino() == meta.ino() => remove(path),
        _ => Ok(true),
    }
}

/// Returns whether the lock file open as `file` was left by a holder that is gone,
/// taking its OS lock if so (released when `file` is closed).
fn abandoned(file: &File, meta: &fs::Metadata, path: &Path) -> bool {
    if rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive).is_err() {
        // Held by a live process, or a filesystem without OS locks: only a person can
        // tell then, and the conflict names the holder.
        return false;
    }
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    age >= GRACE || read_holder(path).is_some_and(|h| is_stale(&h))
}

/// Removes what is at `path`: a lock file, or whatever was planted in its place (a
/// folder included; mreg makes none there).
fn remove(path: &Path) -> Result<bool> {
    let removed = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        _ => fs::remove_file(path),
    };
    match removed {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(err) => {
            Err(err).with_context(|| format!("removing the abandoned lock {}", path.display()))
        }
    }
}

/// Returns whether the lock file at `path` was left by a holder that is gone, as the
/// next writer would decide before removing it; `false` when there is none.
pub fn is_abandoned(path: &Path) -> bool {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::open(path, flags, Mode::empty()) else {
        return false;
    };
    let file = File::from(fd);
    file.metadata()
        .is_ok_and(|meta| meta.is_file() && abandoned(&file, &meta, path))
}

/// Returns the lock file guarding `target`.
pub fn lock_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    target.with_file_name(name)
}

/// Returns the holder a lock file names, when it can be read.
pub fn read_holder(path: &Path) -> Option<Holder> {
    let bytes = super::files::read_cache(path, 64 << 10)?;
    toml::from_str(std::str::from_utf8(&bytes).ok()?).ok()
}

/// Returns whether the holder's process is known to be gone: it ran on this host and no
/// process has its id any more.
pub fn is_stale(holder: &Holder) -> bool {
    holder.host == host_name() && !Path::new(&format!("/proc/{}", holder.pid)).exists()
}

/// Returns the conflict a writer reports when a lock stays held for the whole wait.
fn held_failure(path: &Path, wait: Duration) -> Failure {
    let Some(holder) = read_holder(path) else {
        return Failure::conflict(format!(
            "{} exists but does not name its holder (it is empty or was not written by mreg); \
             waited {:.1} s",
            path.display(),
            wait.as_secs_f64()
        ))
        .hint(format!(
            "mreg writes a lock whole, naming its holder, so this one was left by something \
             else; if no mreg command is running, `rm {}` and retry",
            path.display()
        ));
    };
    let who = format!(
        "{} is held by pid {} on {} since {} ({})",
        path.display(),
        holder.pid,
        holder.host,
        holder.since,
        holder.command
    );
    if is_stale(&holder) {
        Failure::conflict(format!(
            "{who}, which is no longer running: the lock is stale"
        ))
        .hint(format!(
            "a command was interrupted while holding it; check that nothing else runs, then `rm {}` and retry",
            path.display()
        ))
    } else {
        Failure::conflict(format!("{who} (waited {:.1} s)", wait.as_secs_f64())).hint(
            "retry when that command has finished, or wait longer with --wait SECONDS; \
             if it is gone, delete the lock file",
        )
    }
}

/// Returns whether a lock file exists at `path` and, when readable, its holder.
pub fn inspect(path: &Path) -> Result<Option<Option<Holder>>> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(Some(read_holder(path))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder() -> Holder {
        Holder::this_process(
            "mreg promote churn@4 production".into(),
            "2026-01-01T00:00:00Z".into(),
        )
    }

    #[test]
    fn a_second_writer_waits_then_reports_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("HEAD");
        let first = Lock::acquire(dir.path(), &target, &holder(), Duration::ZERO).unwrap();
        assert!(dir.path().join("HEAD.lock").exists());
        let err =
            Lock::acquire(dir.path(), &target, &holder(), Duration::from_millis(30)).unwrap_err();
        let failure = crate::error::failure_of(&err).unwrap();
        assert_eq!(failure.kind, crate::error::Kind::Conflict);
        assert!(
            failure
                .message
                .contains(&format!("pid {}", std::process::id()))
        );
        assert!(failure.message.contains("mreg promote churn@4 production"));
        drop(first);
        assert!(!dir.path().join("HEAD.lock").exists());
        Lock::acquire(dir.path(), &target, &holder(), Duration::ZERO).unwrap();
    }

    #[test]
    fn a_lock_left_by_a_dead_process_is_taken_over_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("HEAD");
        let mut gone = holder();
        gone.pid = u32::MAX - 1;
        let body = toml::to_string(&gone).unwrap();
        fs::write(lock_path(&target), body).unwrap();
        assert!(is_abandoned(&lock_path(&target)));
        let lock = Lock::acquire(dir.path(), &target, &holder(), Duration::ZERO).unwrap();
        assert_eq!(read_holder(lock.path()), Some(holder()));
    }

    #[test]
    fn a_fresh_lock_nobody_holds_is_waited_for_until_it_is_old() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("HEAD");
        // Not a process of this host that is known to be gone, and no OS lock: an mreg
        // that takes none might be holding it, so only its age frees it.
        let mut other = holder();
        other.host = "elsewhere".into();
        fs::write(lock_path(&target), toml::to_string(&other).unwrap()).unwrap();
        assert!(!is_abandoned(&lock_path(&target)));
        let err =
            Lock::acquire(dir.path(), &target, &holder(), Duration::from_millis(20)).unwrap_err();
        assert!(format!("{err:#}").contains("elsewhere"), "{err:#}");
        let old = SystemTime::now() - GRACE - Duration::from_secs(1);
        File::options()
            .write(true)
            .open(lock_path(&target))
            .unwrap()
            .set_modified(old)
            .unwrap();
        Lock::acquire(dir.path(), &target, &holder(), Duration::ZERO).unwrap();
    }

    #[test]
    fn a_live_holder_keeps_its_lock_however_old_the_file_is() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("HEAD");
        let first = Lock::acquire(dir.path(), &target, &holder(), Duration::ZERO).unwrap();
        let old = SystemTime::now() - GRACE - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(first.path())
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(!is_abandoned(first.path()));
        Lock::acquire(dir.path(), &target, &holder(), Duration::from_millis(20)).unwrap_err();
        drop(first);
        Lock::acquire(dir.path(), &target, &holder(), Duration::ZERO).unwrap();
    }

    #[test]
    fn a_link_or_fifo_planted_as_a_lock_is_removed_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("HEAD");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, lock_path(&target)).unwrap();
        drop(Lock::acquire(dir.path(), &target, &holder(), Duration::ZERO).unwrap());
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        rustix::fs::mkfifoat(rustix::fs::CWD, lock_path(&target), Mode::RUSR | Mode::WUSR).unwrap();
        drop(Lock::acquire(dir.path(), &target, &holder(), Duration::ZERO).unwrap());
        fs::create_dir_all(lock_path(&target).join("inside")).unwrap();
        Lock::acquire(dir.path(), &target, &holder(), Duration::ZERO).unwrap();
    }
}
