//! The temp area of a registry folder: one folder per writing process, removed by the
//! next writer once its process is gone, however it ended.
//!
//! A process that writes takes `tmp/w-ID/` for its temp files (records and objects
//! before they are published, lock files before they get their name), and holds an OS
//! lock (`flock`) on `tmp/w-ID.lock` for as long as it runs. The kernel drops that lock
//! when the process ends, even by `kill -9`, so the first write of any later process
//! finds the folders whose lock is free and removes them. A lock file younger than
//! [`GRACE`] is left alone: its process may be about to take the lock. Partial
//! downloads (`tmp/fetch-HASH`) outlive their process on purpose, so the next fetch
//! resumes them; they are removed when a week old. Temp files an mreg without temp
//! folders left at the top of `tmp/` are removed when a day old.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use rustix::fs::{FlockOperation, Mode, OFlags};

pub use super::lock::GRACE;

/// How old a partial download must be before it is given up.
const FETCH_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// How old a temp file at the top of `tmp/` must be before it is given up.
const LOOSE_KEPT: Duration = Duration::from_secs(24 * 3600);

/// A process's temp folder inside one `tmp/`, made on first use.
#[derive(Debug)]
pub struct Area {
    tmp: PathBuf,
    held: Mutex<Option<Held>>,
}

/// A temp folder this process holds.
#[derive(Debug)]
struct Held {
    dir: PathBuf,
    /// The folder's lock file, open with the OS lock on it.
    _lock: File,
}

impl Area {
    /// Returns the (not yet made) temp folder of this process inside `tmp`.
    pub fn new(tmp: PathBuf) -> Area {
        Area {
            tmp,
            held: Mutex::new(None),
        }
    }

    /// Returns this process's temp folder, making it (and removing the folders of
    /// processes that are gone) on first use. When it cannot be made (a registry this
    /// user may only read), `tmp/` itself is returned, and the write that wanted it
    /// fails there with the reason.
    pub fn dir(&self) -> PathBuf {
        let mut held = self.held.lock().expect("temp area lock is never poisoned");
        if let Some(held) = &*held {
            return held.dir.clone();
        }
        reclaim(&self.tmp);
        match take(&self.tmp) {
            Some(new) => {
                let dir = new.dir.clone();
                *held = Some(new);
                dir
            }
            None => self.tmp.clone(),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(lock_of(&self.dir));
    }
}

/// Makes a new temp folder in `tmp`: its lock file first, locked, then the folder.
fn take(tmp: &Path) -> Option<Held> {
    for _ in 0..8 {
        let id = blake3::hash(
            format!(
                "mreg temp\0{}\0{:?}",
                std::process::id(),
                SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)
            )
            .as_bytes(),
        );
        let dir = tmp.join(format!("w-{}", &id.to_hex()[..16]));
        let flags =
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let lock = match rustix::fs::open(lock_of(&dir), flags, Mode::from_raw_mode(0o666)) {
            Ok(fd) => File::from(fd),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(_) => return None,
        };
        // Only a process about to remove an abandoned folder holds another's lock, and it
        // never takes one younger than GRACE; should one hold it all the same, this
        // name is given up for another.
        if let Err(rustix::io::Errno::WOULDBLOCK) =
            rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive)
        {
            continue;
        }
        if fs::create_dir(&dir).is_err() {
            let _ = fs::remove_file(lock_of(&dir));
            return None;
        }
        return Some(Held { dir, _lock: lock });
    }
    None
}

fn lock_of(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// What the entry of `tmp/` at `path` is, for reclaiming it.
enum Found {
    /// A process's temp folder or its lock file, with the folder's path.
    Area(PathBuf),
    /// A partial download.
    Fetch,
    /// Anything else: a loose temp file.
    Loose,
}

fn classify(path: &Path) -> Found {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(id) = name.strip_prefix("w-") {
        let id = id.strip_suffix(".lock").unwrap_or(id);
        return Found::Area(path.with_file_name(format!("w-{id}")));
    }
    if name.starts_with("fetch-") {
        return Found::Fetch;
    }
    Found::Loose
}

/// Returns the entries of `tmp` left by processes that are gone, as the next writer
/// would remove them: temp folders (with their lock files), old partial downloads and
/// old loose temp files.
pub fn abandoned(tmp: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(tmp) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let gone = match classify(&path) {
            Found::Area(dir) => area_is_abandoned(&dir).0,
            Found::Fetch => older_than(&path, FETCH_KEPT),
            Found::Loose => older_than(&path, LOOSE_KEPT),
        };
        if gone {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Removes what [`abandoned`] lists. Errors are ignored: what cannot be removed now
/// is tried again by the next writer, and costs only disk space.
pub fn reclaim(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match classify(&path) {
            // Each folder once, from its lock file; a folder without one is taken by
            // its own entry.
            Found::Area(dir) => {
                if path != dir && dir.exists() {
                    continue;
                }
                let (gone, lock) = area_is_abandoned(&dir);
                if gone {
                    // The folder goes first: a folder without its lock file is then
                    // known to be abandoned by whoever looks next.
                    let _ = fs::remove_dir_all(&dir);
                    let _ = fs::remove_file(lock_of(&dir));
                }
                drop(lock);
            }
            Found::Fetch if older_than(&path, FETCH_KEPT) => {
                let _ = fs::remove_file(&path);
            }
            Found::Loose if older_than(&path, LOOSE_KEPT) => {
                let _ = remove_any(&path);
            }
            _ => {}
        }
    }
}

/// Returns whether the temp folder `dir` belongs to a process that is gone, and its
/// lock file, open with the OS lock on it when so (held until dropped, so no other
/// process removes the folder at the same time).
fn area_is_abandoned(dir: &Path) -> (bool, Option<File>) {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let lock = match rustix::fs::open(lock_of(dir), flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        // A folder whose lock file is gone was being removed by a process that is gone.
        Err(rustix::io::Errno::NOENT) => return (older_than(dir, GRACE), None),
        Err(_) => return (false, None),
    };
    // The age first: a lock file younger than GRACE may not be locked by its process yet,
    // and taking its lock now would leave that process without one.
    let old = lock
        .metadata()
        .ok()
        .and_then(|m| m.modified().ok())
        .is_some_and(|m| age(m) >= GRACE);
    let free = old && rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive).is_ok();
    (free, Some(lock))
}

fn age(time: SystemTime) -> Duration {
    SystemTime::now().duration_since(time).unwrap_or_default()
}

fn older_than(path: &Path, kept: Duration) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|m| age(m) >= kept)
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_old(path: &Path) {
        let old = SystemTime::now() - Duration::from_secs(8 * 24 * 3600);
        File::options()
            .read(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    #[test]
    fn the_folder_of_a_gone_process_is_removed_by_the_next_writer_and_a_live_one_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let live = Area::new(tmp.path().to_path_buf());
        let live_dir = live.dir();
        fs::write(live_dir.join("tmp-1"), b"half").unwrap();
        // A process killed with its temp files: its lock file is there, unlocked.
        let gone = tmp.path().join("w-00000000000000aa");
        fs::create_dir(&gone).unwrap();
        fs::write(gone.join("tmp-2"), b"half").unwrap();
        fs::write(lock_of(&gone), b"").unwrap();
        make_old(&lock_of(&gone));
        // One whose lock file is brand new is left: it may be about to lock it.
        let starting = tmp.path().join("w-00000000000000bb");
        fs::write(lock_of(&starting), b"").unwrap();
        let fetch_new = tmp.path().join("fetch-new");
        fs::write(&fetch_new, b"part").unwrap();
        let fetch_old = tmp.path().join("fetch-old");
        fs::write(&fetch_old, b"part").unwrap();
        make_old(&fetch_old);

        let listed = abandoned(tmp.path());
        assert_eq!(listed, [fetch_old.clone(), gone.clone(), lock_of(&gone)]);

        let next = Area::new(tmp.path().to_path_buf());
        let next_dir = next.dir();
        assert!(!gone.exists() && !lock_of(&gone).exists());
        assert!(!fetch_old.exists());
        assert!(fetch_new.exists());
        assert!(lock_of(&starting).exists());
        assert!(
            live_dir.join("tmp-1").exists(),
            "a live process keeps its folder"
        );
        assert_ne!(next_dir, live_dir);

        drop(live);
        assert!(
            !live_dir.exists(),
            "a process removes its own folder as it ends"
        );
    }

    #[test]
    fn a_lock_file_too_young_to_be_locked_yet_is_not_locked_by_a_reclaimer() {
        let tmp = tempfile::tempdir().unwrap();
        let starting = tmp.path().join("w-00000000000000cc");
        fs::write(lock_of(&starting), b"").unwrap();
        let (gone, held) = area_is_abandoned(&starting);
        assert!(!gone);
        // Its process can still take its lock while the reclaimer has it open.
        let owner = File::open(lock_of(&starting)).unwrap();
        rustix::fs::flock(&owner, FlockOperation::NonBlockingLockExclusive).unwrap();
        drop(held);
    }
}
