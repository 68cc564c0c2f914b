//! Staging new objects in temp files, then publishing them together.
//!
//! A push streams every new file once: hashed and written to a temp file in the same
//! pass. Publishing then flushes the filesystem once (not once per file, which costs
//! seconds for thousands of small files), renames each temp file to its object path,
//! and flushes again, so an object path only ever names complete, durable bytes.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use tempfile::TempPath;

use super::object::{self, Encoding};
use super::registry::Registry;
use super::{atomic, keys};
use crate::id::ObjectId;

/// Returns what storing one file did.
#[derive(Debug, Clone, Copy)]
pub struct Stored {
    /// The content's identity.
    pub id: ObjectId,
    /// Content bytes read.
    pub size: u64,
    /// Whether the object was new to the registry.
    pub new: bool,
}

/// Objects written to temp files, waiting to be published.
pub struct Staging<'r> {
    reg: &'r Registry,
    /// Each temp file and the key it is published at.
    pending: Mutex<Vec<(TempPath, String)>>,
    ids: Mutex<HashSet<ObjectId>>,
}

impl<'r> Staging<'r> {
    /// Returns an empty staging area for `reg`.
    pub fn new(reg: &'r Registry) -> Self {
        Staging {
            reg,
            pending: Mutex::new(Vec::new()),
            ids: Mutex::new(HashSet::new()),
        }
    }

    /// Returns the registry objects are staged for.
    pub fn registry(&self) -> &'r Registry {
        self.reg
    }

    /// Returns whether nothing is waiting to be published.
    pub fn is_empty(&self) -> bool {
        self.pending
            .lock()
            .expect("staging lock is never poisoned")
            .is_empty()
    }

    /// Streams the file at `path` into a temp object, hashing it on the way.
    ///
    /// Compresses with zstd when a sample says it pays. The temp file is dropped if
    /// the registry (or this staging area) already holds the content.
    pub fn add_file(&self, path: &Path, progress: &dyn Fn(u64)) -> Result<Stored> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        let encoding = if object::zstd_pays(&file, len)
            .with_context(|| format!("reading {}", path.display()))?
        {
            Encoding::Zstd
        } else {
            Encoding::Raw
        };
        let temp = atomic::temp_file(&self.reg.tmp_dir())?;
        let (temp_file, temp_path) = temp.into_parts();
        let (id, size) = match encoding {
            // A large file is copied by the kernel on a thread of its own while this
            // thread hashes it: no round trip through user memory for the copy. The
            // caller's before/after stat catches a file that changes in between.
            Encoding::Raw if len >= object::KERNEL_COPY_MIN => std::thread::scope(|scope| {
                let copy = scope.spawn(|| object::clone_or_copy(path, &temp_file));
                let hashed = object::hash_reader(&mut &file, len, None, progress);
                copy.join()
                    .expect("the copy thread does not panic")
                    .and(hashed)
            }),
            Encoding::Raw => {
                let mut out = temp_file;
                object::hash_reader(&mut &file, len, Some(&mut out), progress)
            }
            Encoding::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(
                    BufWriter::with_capacity(1 << 20, temp_file),
                    object::ZSTD_LEVEL,
                )?;
                let hashed = object::hash_reader(&mut &file, len, Some(&mut encoder), progress);
                hashed.and_then(|h| encoder.finish()?.flush().map(|()| h))
            }
        }
        .with_context(|| format!("storing {}", path.display()))?;
        let new = self.keep(id, size, encoding, temp_path)?;
        Ok(Stored { id, size, new })
    }

    /// Returns whether the registry holds `id` whole, as far as its length tells: a raw
    /// object of another length than its content (truncated, or overwritten) is
    /// removed, so that the content being stored replaces it rather than a new version
    /// naming damage. A compressed one, and damage that keeps the length, are found by
    /// the hash when the object is read, and by `mreg fsck`.
    pub(super) fn holds_whole(&self, id: ObjectId, size: u64) -> Result<bool> {
        let raw = self.reg.object_path(id, Encoding::Raw);
        match fs::symlink_metadata(&raw) {
            Ok(meta) if meta.is_file() && meta.len() == size => Ok(true),
            Ok(_) => {
                fs::remove_file(&raw)
                    .with_context(|| format!("removing the damaged object {}", raw.display()))?;
                Ok(false)
            }
            Err(_) => Ok(self.reg.object_path(id, Encoding::Zstd).is_file()),
        }
    }

    /// Stages `bytes` (a tree or a link target) as an object, raw or compressed,
    /// whichever is smaller by a tenth.
    pub fn add_bytes(&self, bytes: &[u8]) -> Result<Stored> {
        let id = ObjectId::of(bytes);
        let size = bytes.len() as u64;
        if self.holds_whole(id, size)?
            || self
                .ids
                .lock()
                .expect("staging lock is never poisoned")
                .contains(&id)
        {
            return Ok(Stored {
                id,
                size,
                new: false,
            });
        }
        let packed = zstd::bulk::compress(bytes, object::ZSTD_LEVEL)?;
        let (encoding, body) = if bytes.len() >= 64 && packed.len() * 10 <= bytes.len() * 9 {
            (Encoding::Zstd, packed.as_slice())
        } else {
            (Encoding::Raw, bytes)
        };
        let mut temp = atomic::temp_file(&self.reg.tmp_dir())?;
        temp.write_all(body)
            .with_context(|| format!("writing {}", temp.path().display()))?;
        let new = self.keep(id, size, encoding, temp.into_temp_path())?;
        Ok(Stored { id, size, new })
    }

    fn keep(&self, id: ObjectId, size: u64, encoding: Encoding, temp: TempPath) -> Result<bool> {
        if self.holds_whole(id, size)?
            || !self
                .ids
                .lock()
                .expect("staging lock is never poisoned")
                .insert(id)
        {
            return Ok(false);
        }
        fs::set_permissions(&temp, fs::Permissions::from_mode(0o444))
            .with_context(|| format!("setting permissions of {}", temp.display()))?;
        let target = keys::object(id, encoding);
        self.pending
            .lock()
            .expect("staging lock is never poisoned")
            .push((temp, target));
        Ok(true)
    }

    /// Makes every staged object durable and visible under its object path.
    pub fn publish(self) -> Result<()> {
        let pending = self
            .pending
            .into_inner()
            .expect("staging lock is never poisoned");
        if pending.is_empty() {
            return Ok(());
        }
        atomic::sync_filesystem(self.reg.root())?;
        // Each fan-out folder is made and checked once, not once per object.
        let mut made: HashSet<String> = HashSet::new();
        for (temp, key) in pending {
            let (folder, _) = key
                .rsplit_once('/')
                .expect("object keys have a fan-out folder");
            let target = if made.contains(folder) {
                self.reg.path(&key)
            } else {
                let target = self.reg.make_parents(&key)?;
                made.insert(folder.to_owned());
                target
            };
            temp.persist(&target)
                .map_err(|e| e.error)
                .with_context(|| format!("publishing object {}", target.display()))?;
        }
        atomic::sync_filesystem(self.reg.root())
    }
}
