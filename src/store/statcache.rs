//! The stat cache: file hashes remembered by size, times, inode and mode.
//!
//! Re-pushing an unchanged folder then costs one `lstat` per file instead of reading
//! it. An entry is trusted only when the file's times are safely older than the moment
//! it was hashed: a file modified within the same timestamp tick as its hashing could
//! change without its stamp changing (the "racy git" problem), so such an entry is
//! re-hashed next time. The cache is a local file; losing it only costs time.
//!
//! A cached hash decides which object a push records for a file it does not read, so
//! the cache must be the pushing user's own: whoever else can write to the registry
//! folder could otherwise make a colleague's push record their content. Each cache file
//! is sealed with a keyed hash under a key only this user can read (in the user's cache
//! folder, [`super::usercache`]); a cache whose seal does not verify is ignored, and
//! every file is read again.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::registry::Registry;
use super::{atomic, files};
use crate::id::ObjectId;

/// How long after a change a file's stamp is trusted to reflect it, in nanoseconds.
/// Two seconds covers the coarsest common filesystem timestamps.
pub const RACY_NS: i64 = 2_000_000_000;

const FORMAT: u32 = 2;

/// The largest cache read back; a larger one is rebuilt.
const CACHE_LIMIT: u64 = 1 << 30;

/// What `lstat` says of a file, compared to decide whether it changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    mode: u32,
}

impl Stamp {
    /// Returns the stamp of a file's metadata.
    pub fn of(meta: &Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            ino: meta.ino(),
            mode: meta.mode(),
        }
    }

    /// Returns whether both times of the stamp are safely older than `at_ns`, so that
    /// a change after `at_ns` would show in the stamp.
    pub fn settled_before(&self, at_ns: i64) -> bool {
        let settled = at_ns - RACY_NS;
        self.mtime_ns < settled && self.ctime_ns < settled
    }

    /// Returns a 64-bit fingerprint of the whole stamp, equal for equal stamps.
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.size.to_le_bytes());
        hasher.update(&self.mtime_ns.to_le_bytes());
        hasher.update(&self.ctime_ns.to_le_bytes());
        hasher.update(&self.ino.to_le_bytes());
        hasher.update(&self.mode.to_le_bytes());
        let bytes = hasher.finalize();
        u64::from_le_bytes(
            bytes.as_bytes()[..8]
                .try_into()
                .expect("a hash has 8 bytes"),
        )
    }

    /// Returns the newer of the stamp's two times, in nanoseconds.
    pub fn newest_ns(&self) -> i64 {
        self.mtime_ns.max(self.ctime_ns)
    }

    /// Returns the file size the stamp records.
    pub fn size(&self) -> u64 {
        self.size
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    hash: ObjectId,
    hashed_at_ns: i64,
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    format: u32,
    root: String,
    entries: HashMap<String, Entry>,
}

/// The cache of one pushed folder, loaded at the start of a push and saved at its end.
pub struct StatCache {
    path: PathBuf,
    root: String,
    old: HashMap<String, Entry>,
    new: Mutex<HashMap<String, Entry>>,
    changed: AtomicBool,
}

impl StatCache {
    /// Loads the cache for the folder `root`; a missing or unreadable cache is empty.
    pub fn load(reg: &Registry, root: &Path) -> StatCache {
        let root = root.to_string_lossy().into_owned();
        let key = ObjectId::of(root.as_bytes()).short(24);
        let path = reg.cache_dir().join("stat").join(format!("{key}.json"));
        let old = files::read_cache(&path, CACHE_LIMIT)
            .and_then(|bytes| {
                unseal(&bytes).and_then(|body| serde_json::from_slice::<CacheFile>(body).ok())
            })
            .filter(|c| c.format == FORMAT && c.root == root)
            .map(|c| c.entries)
            .unwrap_or_default();
        StatCache {
            path,
            root,
            old,
            new: Mutex::new(HashMap::new()),
            changed: AtomicBool::new(false),
        }
    }

    /// Returns whether the last push of this folder saw a file at `rel` of `size` bytes:
    /// if so, the file is likely the same content with a new time (a fresh checkout),
    /// and is best hashed whole before anything is written.
    pub fn saw(&self, rel: &str, size: u64) -> bool {
        self.old.get(rel).is_some_and(|e| e.stamp.size == size)
    }

    /// Returns the remembered hash of `rel`, if its stamp is unchanged and trustworthy.
    pub fn lookup(&self, rel: &str, stamp: &Stamp) -> Option<ObjectId> {
        let entry = self.old.get(rel)?;
        let settled = entry.hashed_at_ns - RACY_NS;
        let trusted = entry.stamp == *stamp && stamp.mtime_ns < settled && stamp.ctime_ns < settled;
        if !trusted {
            return None;
        }
        self.new
            .lock()
            .expect("cache lock is never poisoned")
            .insert(rel.to_owned(), *entry);
        Some(entry.hash)
    }

    /// Remembers that `rel`, with `stamp` before and after reading, hashed to `hash`.
    pub fn record(&self, rel: &str, stamp: Stamp, hash: ObjectId) {
        let hashed_at_ns = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let entry = Entry {
            stamp,
            hash,
            hashed_at_ns,
        };
        self.new
            .lock()
            .expect("cache lock is never poisoned")
            .insert(rel.to_owned(), entry);
        self.changed.store(true, Ordering::Relaxed);
    }

    /// Writes the entries seen in this push, dropping those of files that are gone.
    ///
    /// Does nothing when nothing changed; a failure to write is not an error.
    pub fn save(self, reg: &Registry) {
        let entries = self.new.into_inner().expect("cache lock is never poisoned");
        let changed = self.changed.into_inner();
        if !changed && entries.len() == self.old.len() {
            return;
        }
        let file = CacheFile {
            format: FORMAT,
            root: self.root,
            entries,
        };
        let Ok(body) = serde_json::to_vec(&file) else {
            return;
        };
        let Some(bytes) = seal(&body) else {
            return;
        };
        if reg.make_parents_of(&self.path).is_ok() {
            let _ = atomic::replace(&reg.tmp_dir(), &self.path, &bytes);
        }
    }
}
/// Returns `body` behind the line of its seal under this user's key, or `None` when
/// the user has no key (the cache is then not kept).
fn seal(body: &[u8]) -> Option<Vec<u8>> {
    let key = super::usercache::seal_key()?;
    let mut out = blake3::keyed_hash(&key, body).to_hex().as_bytes().to_vec();
    out.push(b'\n');
    out.extend_from_slice(body);
    Some(out)
}

/// Returns the body of a sealed cache file, if its seal verifies under this user's key.
fn unseal(bytes: &[u8]) -> Option<&[u8]> {
    let key = super::usercache::seal_key()?;
    let newline = bytes.iter().position(|b| *b == b'\n')?;
    let (line, body) = (&bytes[..newline], &bytes[newline + 1..]);
    let seal = blake3::Hash::from_hex(line).ok()?;
    // `Hash` compares in constant time.
    (seal == blake3::keyed_hash(&key, body)).then_some(body)
}
