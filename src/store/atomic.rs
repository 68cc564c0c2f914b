//! Crash-safe publishing: temp file beside the target, fsync, rename or exclusive link.
//!
//! Whatever a crash interrupts, a published path holds either nothing or complete
//! content. Immutable records are published with an exclusive hard link, so two
//! writers racing for one name never overwrite each other: one wins, the other is told.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};

/// What a create-only write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The key was absent and now holds the bytes.
    New,
    /// The key already held something; nothing was written.
    Exists,
}

/// How a compare-and-swap ended: locally under a lock file, or on a remote with a
/// conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap<T = ()> {
    /// The new value is in place; `T` is what the writer learned doing it (the id of a
    /// new stage state, say).
    Done(T),
    /// The value had moved since it was read; nothing was written.
    Moved,
}

/// Returns a new temp file in `tmp_dir`, removed when dropped unless persisted.
///
/// It is created with mode 0666 less the umask, like any file a program makes, so the
/// records published from it are readable by the team sharing a registry (objects are
/// then made read-only).
pub fn temp_file(tmp_dir: &Path) -> Result<tempfile::NamedTempFile> {
    temp_file_mode(tmp_dir, 0o666)
}

/// Returns a new temp file in `tmp_dir`, open for writing, created read-only (0444 less
/// the umask): an object's file, which no `chmod` has to make read-only afterwards.
pub fn object_temp_file(tmp_dir: &Path) -> Result<tempfile::NamedTempFile> {
    temp_file_mode(tmp_dir, 0o444)
}

fn temp_file_mode(tmp_dir: &Path, mode: u32) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix("tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .tempfile_in(tmp_dir)
        .with_context(|| format!("creating a temp file in {}", tmp_dir.display()))
}

/// Publishes `bytes` at `target` only if nothing is there yet.
///
/// Returns `false`, writing nothing, when `target` already exists. The content is
/// durable before the name appears, and the name is durable when this returns `true`.
pub fn create_exclusive(tmp_dir: &Path, target: &Path, bytes: &[u8]) -> Result<bool> {
    create_exclusive_with(tmp_dir, target, |temp| {
        temp.write_all(bytes)
            .with_context(|| format!("writing {}", temp.path().display()))
    })
}

/// Publishes at `target` what `fill` writes into a temp file, only if nothing is there
/// yet; as [`create_exclusive`], for content streamed from elsewhere.
pub fn create_exclusive_with(
    tmp_dir: &Path,
    target: &Path,
    fill: impl FnOnce(&mut tempfile::NamedTempFile) -> Result<()>,
) -> Result<bool> {
    let mut temp = temp_file(tmp_dir)?;
    fill(&mut temp)?;
    temp.as_file()
        .sync_all()
        .with_context(|| format!("writing {}", temp.path().display()))?;
    match fs::hard_link(temp.path(), target) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(err) => {
            return Err(err).with_context(|| format!("publishing {}", target.display()));
        }
    }
    drop(temp);
    sync_parent(target)?;
    Ok(true)
}

/// Publishes `bytes` at `target`, replacing what was there, atomically and durably.
pub fn replace(tmp_dir: &Path, target: &Path, bytes: &[u8]) -> Result<()> {
    let mut temp = temp_file(tmp_dir)?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("writing {}", temp.path().display()))?;
    temp.persist(target)
        .with_context(|| format!("publishing {}", target.display()))?;
    sync_parent(target)
}

/// Makes the entry of `path` in its folder durable.
pub fn sync_parent(path: &Path) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    sync_dir(parent)
}

/// Makes a folder's entries durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing folder {}", dir.display()))
}

/// Flushes everything written on the filesystem holding `path` to stable storage.
///
/// One call replaces thousands of per-file fsyncs when a push stores many small files.
pub fn sync_filesystem(path: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        let dir = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        rustix::fs::syncfs(&dir)
            .with_context(|| format!("syncing the filesystem of {}", path.display()))?;
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        rustix::fs::sync();
    }
    Ok(())
}
