//! Lock files guarding the registry's few mutable files, after git's lockfile protocol.
//!
//! To change `X`, a writer creates `X.lock` exclusively, re-checks that `X` still holds
//! what it read, publishes the new `X` (temp file, fsync, rename, fsync the folder), and
//! removes the lock. The lock file names its holder (pid, host, command, time), so a
//! lock left behind by a crash says whose it was and whether that process still runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
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

/// Returns a held lock; dropping it removes the lock file.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    target: PathBuf,
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
            if atomic::create_exclusive(tmp_dir, &path, body.as_bytes())? {
                return Ok(Lock {
                    path,
                    target: target.to_path_buf(),
                });
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
    fn a_lock_of_a_dead_process_on_this_host_is_called_stale() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("HEAD");
        let mut gone = holder();
        gone.pid = u32::MAX - 1;
        let body = toml::to_string(&gone).unwrap();
        fs::write(lock_path(&target), body).unwrap();
        let err = Lock::acquire(dir.path(), &target, &holder(), Duration::ZERO).unwrap_err();
        let failure = crate::error::failure_of(&err).unwrap();
        assert!(failure.message.contains("stale"), "{}", failure.message);
        assert!(failure.hint.as_deref().unwrap().contains("rm "));
    }
}
