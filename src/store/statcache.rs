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
//!
//! The cache is binary (see [`encode`]): a folder of 50,000 files is a few MB read
//! without parsing text.

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

/// The first line of a cache's body. Caches of earlier formats (JSON) are ignored,
/// and rebuilt by the push that finds them.
const MAGIC: &[u8] = b"mreg stat 3\n";

/// The largest cache read back (a folder of some 500,000 files); a larger one is
/// ignored, and rebuilt. It is read before its seal is checked: this bounds what a
/// planted file costs.
const CACHE_LIMIT: u64 = 48 << 20;

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

    /// Returns the stamp of what `statat` read of a file.
    pub fn of_stat(st: &rustix::fs::Stat) -> Stamp {
        Stamp {
            size: st.st_size as u64,
            mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec as i64,
            ctime_ns: st.st_ctime * 1_000_000_000 + st.st_ctime_nsec as i64,
            ino: st.st_ino,
            mode: st.st_mode,
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

#[derive(Debug, Clone, Copy)]
struct Entry {
    stamp: Stamp,
    hash: ObjectId,
    hashed_at_ns: i64,
}

/// The bytes of one entry after its path: size, mtime, ctime, inode, mode, hash, and
/// when it was hashed.
const ENTRY_LEN: usize = 8 + 8 + 8 + 8 + 4 + 32 + 8;

/// Returns the body of a cache: [`MAGIC`], the folder's path, the number of entries,
/// then each entry: its path's length (2 bytes) and path, then [`ENTRY_LEN`] bytes, all
/// numbers little-endian. Written after `prefix` bytes left for the seal.
fn encode(prefix: usize, root: &str, entries: &HashMap<String, Entry>) -> Vec<u8> {
    let paths: usize = entries.keys().map(String::len).sum();
    let mut out = Vec::with_capacity(
        prefix + MAGIC.len() + 12 + root.len() + paths + entries.len() * (2 + ENTRY_LEN),
    );
    out.resize(prefix, 0);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(root.len() as u32).to_le_bytes());
    out.extend_from_slice(root.as_bytes());
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    for (rel, e) in entries {
        let Ok(len) = u16::try_from(rel.len()) else {
            continue;
        };
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(rel.as_bytes());
        out.extend_from_slice(&e.stamp.size.to_le_bytes());
        out.extend_from_slice(&e.stamp.mtime_ns.to_le_bytes());
        out.extend_from_slice(&e.stamp.ctime_ns.to_le_bytes());
        out.extend_from_slice(&e.stamp.ino.to_le_bytes());
        out.extend_from_slice(&e.stamp.mode.to_le_bytes());
        out.extend_from_slice(e.hash.as_bytes());
        out.extend_from_slice(&e.hashed_at_ns.to_le_bytes());
    }
    out
}

/// Reads a cache's body for the folder `root`; `None` when it is of another format,
/// another folder, or malformed in any way (the cache is then rebuilt).
fn decode(body: &[u8], root: &str) -> Option<HashMap<String, Entry>> {
    let mut at = body.strip_prefix(MAGIC)?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, rest) = at.split_at_checked(n)?;
        at = rest;
        Some(head)
    };
    let root_len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    if take(root_len)? != root.as_bytes() {
        return None;
    }
    let count = u64::from_le_bytes(take(8)?.try_into().ok()?);
    // Each entry takes at least this many bytes: a count the body cannot hold is a lie.
    if count > (body.len() / (2 + ENTRY_LEN)) as u64 {
        return None;
    }
    let mut out = HashMap::with_capacity(count as usize);
    let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    for _ in 0..count {
        let len = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
        let rel = std::str::from_utf8(take(len)?).ok()?.to_owned();
        let b = take(ENTRY_LEN)?;
        let stamp = Stamp {
            size: u64_at(b, 0),
            mtime_ns: u64_at(b, 8) as i64,
            ctime_ns: u64_at(b, 16) as i64,
            ino: u64_at(b, 24),
            mode: u32::from_le_bytes(b[32..36].try_into().ok()?),
        };
        let hash = ObjectId::from_bytes(b[36..68].try_into().ok()?);
        let hashed_at_ns = u64_at(b, 68) as i64;
        out.insert(
            rel,
            Entry {
                stamp,
                hash,
                hashed_at_ns,
            },
        );
    }
    at.is_empty().then_some(out)
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
        let path = reg.cache_dir().join("stat").join(format!("{key}.bin"));
        let old = files::read_cache(&path, CACHE_LIMIT)
            .and_then(|bytes| super::usercache::unseal(&bytes).and_then(|body| decode(body, &root)))
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
        let Some(bytes) =
            super::usercache::seal(encode(super::usercache::SEAL_LEN, &self.root, &entries))
        else {
            return;
        };
        if reg.make_parents_of(&self.path).is_ok() {
            let _ = atomic::replace(&reg.tmp_dir(), &self.path, &bytes);
            // The cache an earlier mreg kept for this folder, as JSON, is never read again.
            let _ = std::fs::remove_file(self.path.with_extension("json"));
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> HashMap<String, Entry> {
        (0..50)
            .map(|i| {
                let entry = Entry {
                    stamp: Stamp {
                        size: i,
                        mtime_ns: 1_700_000_000_000_000_000 + i as i64,
                        ctime_ns: -(i as i64),
                        ino: 1 << 40 | i,
                        mode: 0o100_644,
                    },
                    hash: ObjectId::of(&i.to_le_bytes()),
                    hashed_at_ns: 42,
                };
                (format!("dir/é{i}.bin"), entry)
            })
            .collect()
    }

    #[test]
    fn a_stamp_from_statat_is_the_stamp_from_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"bytes").unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let st = rustix::fs::statat(
            rustix::fs::CWD,
            &path,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
        assert_eq!(Stamp::of(&meta), Stamp::of_stat(&st));
    }

    #[test]
    fn a_cache_reads_back_as_written() {
        let written = entries();
        let body = encode(0, "/data/out", &written);
        let read = decode(&body, "/data/out").expect("it decodes");
        assert_eq!(read.len(), written.len());
        for (rel, e) in &written {
            let r = read[rel];
            assert_eq!(
                (r.stamp, r.hash, r.hashed_at_ns),
                (e.stamp, e.hash, e.hashed_at_ns)
            );
        }
    }

    #[test]
    fn a_cache_of_another_folder_or_damaged_is_ignored() {
        let body = encode(0, "/data/out", &entries());
        assert!(decode(&body, "/data/other").is_none());
        assert!(decode(&body[..body.len() - 1], "/data/out").is_none());
        let mut longer = body.clone();
        longer.push(0);
        assert!(decode(&longer, "/data/out").is_none());
        // A count far larger than the body holds is refused before anything is made.
        let mut lying = body.clone();
        let at = MAGIC.len() + 4 + "/data/out".len();
        lying[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&lying, "/data/out").is_none());
        assert!(decode(b"{\"format\":2}", "/data/out").is_none());
    }
}
