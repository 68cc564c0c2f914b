//! Staging new objects in temp files, then publishing them together.
//!
//! A push streams every new file once: hashed and written to a temp file in the same
//! pass. Publishing then flushes the filesystem once (not once per file, which costs
//! seconds for thousands of small files), renames each temp file to its object path,
//! and flushes again, so an object path only ever names complete, durable bytes.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use tempfile::TempPath;

use super::object::{self, Encoding};
use super::registry::Registry;
use super::{atomic, chunks, keys, mapped, pack};
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
    /// Content bytes new to the registry: the size when the object is new, or for one
    /// stored in parts, its new parts' sizes.
    pub new_bytes: u64,
}

impl Stored {
    fn of(id: ObjectId, size: u64, new: bool) -> Stored {
        Stored {
            id,
            size,
            new,
            new_bytes: if new { size } else { 0 },
        }
    }
}

/// Objects written to temp files, waiting to be published.
pub struct Staging<'r> {
    reg: &'r Registry,
    /// Whether large files are stored in parts (a registry of format 2).
    in_parts: bool,
    /// Each temp file and the key it is published at.
    pending: Mutex<Vec<(TempPath, String)>>,
    /// Chunk lists, published once every part they name is.
    lists: Mutex<Vec<(TempPath, String)>>,
    /// Objects staged raw or compressed.
    ids: Mutex<HashSet<ObjectId>>,
    /// Objects staged as chunk lists.
    listed: Mutex<HashSet<ObjectId>>,
    /// Whether small objects go in packs (a registry of format 3).
    packing: bool,
    /// The first objects bound for a pack, held until there are more than
    /// [`LOOSE_UP_TO`]: a push that adds a tree or two stores them as files, not as a
    /// pack of their own.
    few: Mutex<Vec<Held>>,
    /// The pack being filled.
    pack: Mutex<Option<pack::PackWriter>>,
    /// Packs filled, waiting to be published.
    packs: Mutex<Vec<pack::Finished>>,
}

/// A small object held in memory: its id, content size, encoding and stored bytes.
type Held = (ObjectId, u64, Encoding, Vec<u8>);

/// A staging area with no more small objects than this stores them as files of their
/// own; with more, in packs.
const LOOSE_UP_TO: usize = 16;

/// One part of a file being stored: its id, its size, and its temp file when the
/// registry lacked it.
type Part = (ObjectId, u64, Option<StagedPart>);

/// A part written to a temp file, kept only if its file turns out to be new.
struct StagedPart {
    temp: TempPath,
    id: ObjectId,
    size: u64,
    encoding: Encoding,
}

impl<'r> Staging<'r> {
    /// Returns an empty staging area for `reg`.
    pub fn new(reg: &'r Registry) -> Self {
        Staging {
            reg,
            in_parts: reg.stores_in_parts(),
            pending: Mutex::new(Vec::new()),
            lists: Mutex::new(Vec::new()),
            ids: Mutex::new(HashSet::new()),
            listed: Mutex::new(HashSet::new()),
            packing: reg.stores_in_packs(),
            few: Mutex::new(Vec::new()),
            pack: Mutex::new(None),
            packs: Mutex::new(Vec::new()),
        }
    }

    /// Returns the registry objects are staged for.
    pub fn registry(&self) -> &'r Registry {
        self.reg
    }

    /// Returns whether nothing is waiting to be published.
    pub fn is_empty(&self) -> bool {
        self.ids
            .lock()
            .expect("staging lock is never poisoned")
            .is_empty()
            && self
                .listed
                .lock()
                .expect("staging lock is never poisoned")
                .is_empty()
    }

    fn staged(&self, id: ObjectId, any_form: bool) -> bool {
        self.ids
            .lock()
            .expect("staging lock is never poisoned")
            .contains(&id)
            || (any_form
                && self
                    .listed
                    .lock()
                    .expect("staging lock is never poisoned")
                    .contains(&id))
    }

    /// Streams the file at `path` into the store, hashing it on the way.
    ///
    /// Content the registry (or this staging area) holds already is not written again:
    /// a file that fits in memory is hashed before anything is written, and a large one
    /// in a registry that stores parts is hashed whole first. Compresses with zstd when
    /// a sample says it pays.
    pub fn add_file(&self, path: &Path, progress: &dyn Fn(u64)) -> Result<Stored> {
        self.add_file_as(path, false, progress)
    }

    /// Does what [`Staging::add_file`] does; with `likely_new` (the folder never held a
    /// file of this size at this path), a large file in a registry that stores parts is
    /// stored in one pass, hashed whole as its parts are, rather than hashed whole
    /// first.
    pub fn add_file_as(
        &self,
        path: &Path,
        likely_new: bool,
        progress: &dyn Fn(u64),
    ) -> Result<Stored> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        if len <= chunks::CHUNKED_MIN {
            return self.add_small(path, &file, len, progress);
        }
        if self.in_parts && len > chunks::CHUNKED_MIN {
            if likely_new {
                return self.add_in_one_pass(path, &file, len, progress);
            }
            return self.add_in_parts(path, &file, len, progress);
        }
        let encoding = if object::zstd_pays(&file, len)
            .with_context(|| format!("reading {}", path.display()))?
        {
            Encoding::Zstd
        } else {
            Encoding::Raw
        };
        let temp = atomic::object_temp_file(&self.reg.tmp_dir())?;
        let (temp_file, temp_path) = temp.into_parts();
        let (id, size) = if encoding == Encoding::Raw {
            // A large file is copied by the kernel on a thread of its own while this
            // thread hashes it: no round trip through user memory for the copy. The
            // caller's before/after stat catches a file that changes in between.
            std::thread::scope(|scope| {
                let copy = scope.spawn(|| object::clone_or_copy(path, &temp_file));
                let hashed = object::hash_reader(&mut &file, len, None, progress);
                let copied = copy.join().expect("the copy thread does not panic");
                start_writeback(&temp_file);
                copied.and(hashed)
            })
        } else {
            let mut encoder = zstd::stream::write::Encoder::new(
                BufWriter::with_capacity(1 << 20, temp_file),
                object::ZSTD_LEVEL,
            )?;
            let hashed = object::hash_reader(&mut &file, len, Some(&mut encoder), progress);
            hashed.and_then(|h| encoder.finish()?.flush().map(|()| h))
        }
        .with_context(|| format!("storing {}", path.display()))?;
        let new = self.keep(id, size, encoding, temp_path)?;
        Ok(Stored::of(id, size, new))
    }

    /// Stores a file of at most [`chunks::CHUNKED_MIN`] bytes: read into memory and
    /// hashed, then written only when new.
    fn add_small(
        &self,
        path: &Path,
        file: &File,
        len: u64,
        progress: &dyn Fn(u64),
    ) -> Result<Stored> {
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(chunks::CHUNKED_MIN + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", path.display()))?;
        progress(bytes.len() as u64);
        self.add_bytes(&bytes)
            .with_context(|| format!("storing {}", path.display()))
    }

    /// Stores a large file as parts and a chunk list ([`chunks`]). The whole content is
    /// hashed first: a file the registry holds costs one read. Otherwise each part is
    /// read, hashed, and written when the registry lacks it.
    fn add_in_parts(
        &self,
        path: &Path,
        file: &File,
        len: u64,
        progress: &dyn Fn(u64),
    ) -> Result<Stored> {
        let (id, size) = match mapped::hash_file(file, len, progress) {
            Some(hashed) => hashed.map(|id| (id, len)),
            None => object::hash_reader(&mut &*file, len, None, progress),
        }
        .with_context(|| format!("reading {}", path.display()))?;
        if size != len || self.holds_whole(id, size)? || self.staged(id, true) {
            // A length that changed is caught by the caller's before/after stat.
            return Ok(Stored::of(id, size, false));
        }
        // Read again to be cut: the whole is hashed once more, so a file that changed
        // in between is caught rather than stored under the first hash.
        let (again, parts) = self.store_parts(path, file, len, &|_| {})?;
        if again != id {
            bail!("{} changed while mreg was reading it", path.display());
        }
        self.keep_list(path, (id, size), parts)
    }

    /// Stores a large file as [`Staging::add_in_parts`] does, in one pass: each window
    /// of the file is cut, its parts hashed and written several at once, and the whole
    /// content hashed from the same bytes. Parts of content the registry turns out to
    /// hold are thrown away unpublished.
    fn add_in_one_pass(
        &self,
        path: &Path,
        file: &File,
        len: u64,
        progress: &dyn Fn(u64),
    ) -> Result<Stored> {
        let (id, parts) = self.store_parts(path, file, len, progress)?;
        if self.holds_whole(id, len)? || self.staged(id, true) {
            return Ok(Stored::of(id, len, false));
        }
        self.keep_list(path, (id, len), parts)
    }

    /// Cuts a large file into parts ([`chunks::walk_parts`]) reading it once: each
    /// window's parts hashed and written several at once (those the registry lacks),
    /// and the whole content hashed from the same bytes. Returns the whole's id and the
    /// parts, staged but not yet kept.
    fn store_parts(
        &self,
        path: &Path,
        file: &File,
        len: u64,
        progress: &dyn Fn(u64),
    ) -> Result<(ObjectId, Vec<Part>)> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut whole = blake3::Hasher::new();
        let mut parts = Vec::new();
        chunks::walk_parts(file, len, &name, &mut |base, window, slices| {
            let staged: Vec<Part> = slices
                .par_iter()
                .map(|&(p, n)| self.stage_part(&window[p..p + n], (file, base + p as u64)))
                .collect::<Result<_>>()?;
            let end = slices.last().map_or(0, |(p, n)| p + n);
            whole.update_rayon(&window[..end]);
            progress(end as u64);
            parts.extend(staged);
            Ok(())
        })
        .with_context(|| format!("storing {}", path.display()))?;
        Ok((ObjectId::from_hasher(&whole), parts))
    }

    /// Keeps the staged parts of a file and stages its list; returns what storing it did.
    fn keep_list(
        &self,
        path: &Path,
        (id, size): (ObjectId, u64),
        parts: Vec<Part>,
    ) -> Result<Stored> {
        let list = chunks::ChunkList {
            parts: parts.iter().map(|(id, size, _)| (*id, *size)).collect(),
        };
        if list.total() != size {
            bail!("{} changed while mreg was reading it", path.display());
        }
        let mut new_bytes = 0;
        for part in parts.into_iter().filter_map(|(_, _, staged)| staged) {
            if self.keep(part.id, part.size, part.encoding, part.temp)? {
                new_bytes += part.size;
            }
        }
        let mut temp = atomic::object_temp_file(&self.reg.tmp_dir())?;
        temp.write_all(list.to_text().as_bytes())
            .with_context(|| format!("writing {}", temp.path().display()))?;
        let new = self.keep(id, size, Encoding::Chunked, temp.into_temp_path())?;
        Ok(Stored {
            id,
            size,
            new,
            new_bytes,
        })
    }

    /// Hashes one part and, unless the registry or this staging area holds it, writes
    /// it to a temp file (compressed when that pays).
    ///
    /// `source` is where the bytes came from (a file and an offset): a part stored raw
    /// is copied from there by the kernel, which on some machines writes far faster
    /// than a `write` of the same bytes from memory.
    fn stage_part(&self, bytes: &[u8], source: (&File, u64)) -> Result<Part> {
        let id = object::hash_bytes(bytes);
        let size = bytes.len() as u64;
        if self.holds_part(id, size)? || self.staged(id, false) {
            return Ok((id, size, None));
        }
        let (encoding, temp) = self.write_temp(bytes, Some(source))?;
        Ok((
            id,
            size,
            Some(StagedPart {
                temp,
                id,
                size,
                encoding,
            }),
        ))
    }

    /// Writes `bytes` to a new temp object file, compressed when a sample says it pays
    /// and it comes out smaller; stored raw, they are copied from `source` (a file and
    /// the offset they start at) by the kernel when one is given. The compressed form
    /// is streamed to the file, so a part costs no second buffer of its size.
    fn write_temp(
        &self,
        bytes: &[u8],
        source: Option<(&File, u64)>,
    ) -> Result<(Encoding, TempPath)> {
        let mut temp = atomic::object_temp_file(&self.reg.tmp_dir())?;
        if object::zstd_pays_bytes(bytes) {
            let packed = object::compress_to(bytes, temp.as_file())
                .with_context(|| format!("writing {}", temp.path().display()))?;
            if packed < bytes.len() as u64 {
                start_writeback(temp.as_file());
                return Ok((Encoding::Zstd, temp.into_temp_path()));
            }
            // Samples promised more than the whole gave: stored raw, in a fresh file.
            temp = atomic::object_temp_file(&self.reg.tmp_dir())?;
        }
        match source {
            // Across filesystems (or where the kernel cannot copy), from memory.
            Some((file, offset)) => {
                match copy_range(file, offset, bytes.len() as u64, temp.as_file()) {
                    Ok(true) => Ok(()),
                    Ok(false) => temp.write_all(bytes),
                    Err(err) => Err(err),
                }
            }
            None => temp.write_all(bytes),
        }
        .with_context(|| format!("writing {}", temp.path().display()))?;
        start_writeback(temp.as_file());
        Ok((Encoding::Raw, temp.into_temp_path()))
    }

    /// Returns whether the registry holds `id` whole, as far as its length tells: a raw
    /// object of another length than its content (truncated, or overwritten) is
    /// removed, so that the content being stored replaces it rather than a new version
    /// naming damage; one stored in parts is held only with every part it names. A
    /// compressed one, and damage that keeps the length, are found by the hash when
    /// the object is read, and by `mreg fsck`.
    pub(super) fn holds_whole(&self, id: ObjectId, size: u64) -> Result<bool> {
        if self.packing
            && size <= pack::PACKED_MAX
            && self
                .reg
                .packs()
                .find(id)
                .is_some_and(|p| p.entry.size == size)
        {
            return Ok(true);
        }
        Ok(self.holds_part(id, size)? || self.reg.holds_in_parts(id, size))
    }

    /// Returns whether the registry holds `id` raw or compressed: the forms a part of a
    /// file stored in parts must have (see [`Staging::holds_whole`]).
    fn holds_part(&self, id: ObjectId, size: u64) -> Result<bool> {
        let raw = self.reg.object_path(id, Encoding::Raw);
        match fs::symlink_metadata(&raw) {
            Ok(meta) if meta.is_file() && meta.len() == size => Ok(true),
            Ok(_) => {
                fs::remove_file(&raw)
                    .with_context(|| format!("removing the damaged object {}", raw.display()))?;
                Ok(false)
            }
            Err(_) => {
                let zst = self.reg.object_path(id, Encoding::Zstd);
                match fs::symlink_metadata(&zst) {
                    Ok(meta) if meta.is_file() => Ok(true),
                    // A link or a FIFO in its place: removed, and the content stored.
                    Ok(_) => {
                        fs::remove_file(&zst).with_context(|| {
                            format!("removing the damaged object {}", zst.display())
                        })?;
                        Ok(false)
                    }
                    Err(_) => Ok(false),
                }
            }
        }
    }

    /// Stages `bytes` (a tree, a link target, or a small file's content) as an object,
    /// compressed when samples say it pays and it comes out smaller by a tenth, else
    /// raw.
    pub fn add_bytes(&self, bytes: &[u8]) -> Result<Stored> {
        let id = object::hash_bytes(bytes);
        let size = bytes.len() as u64;
        if self.holds_whole(id, size)? || self.staged(id, true) {
            return Ok(Stored::of(id, size, false));
        }
        // Samples decide first, so incompressible content is not compressed whole.
        let packed = if object::zstd_pays_bytes(bytes) {
            object::compress(bytes)?
        } else {
            Vec::new()
        };
        let (encoding, body) = if !packed.is_empty() && packed.len() * 10 <= bytes.len() * 9 {
            (Encoding::Zstd, packed.as_slice())
        } else {
            (Encoding::Raw, bytes)
        };
        if self.packing && size <= pack::PACKED_MAX {
            return self.add_to_pack(id, size, encoding, body);
        }
        let mut temp = atomic::object_temp_file(&self.reg.tmp_dir())?;
        temp.write_all(body)
            .with_context(|| format!("writing {}", temp.path().display()))?;
        let new = self.keep(id, size, encoding, temp.into_temp_path())?;
        Ok(Stored::of(id, size, new))
    }

    /// Appends an object to the pack being filled, unless it is staged already; a pack
    /// that reaches [`pack::PACK_TARGET`] is closed, to be published with the rest.
    fn add_to_pack(
        &self,
        id: ObjectId,
        size: u64,
        encoding: Encoding,
        body: &[u8],
    ) -> Result<Stored> {
        if !self
            .ids
            .lock()
            .expect("staging lock is never poisoned")
            .insert(id)
        {
            return Ok(Stored::of(id, size, false));
        }
        let mut slot = self.pack.lock().expect("staging lock is never poisoned");
        if slot.is_none() {
            let mut few = self.few.lock().expect("staging lock is never poisoned");
            if few.len() < LOOSE_UP_TO {
                few.push((id, size, encoding, body.to_vec()));
                return Ok(Stored::of(id, size, true));
            }
            let mut writer = pack::PackWriter::new(&self.reg.tmp_dir())?;
            for (id, size, encoding, body) in few.drain(..) {
                writer.add(id, encoding, size, &body)?;
            }
            *slot = Some(writer);
        }
        let writer = slot.as_mut().expect("a pack is being filled");
        writer.add(id, encoding, size, body)?;
        if writer.len() >= pack::PACK_TARGET {
            let full = slot.take().expect("a pack is being filled");
            drop(slot);
            let done = full.finish(&self.reg.tmp_dir())?;
            self.packs
                .lock()
                .expect("staging lock is never poisoned")
                .push(done);
        }
        Ok(Stored::of(id, size, true))
    }

    fn keep(&self, id: ObjectId, size: u64, encoding: Encoding, temp: TempPath) -> Result<bool> {
        let (held, set) = match encoding {
            Encoding::Chunked => (
                self.holds_whole(id, size)? || self.staged(id, true),
                &self.listed,
            ),
            _ => (
                self.holds_part(id, size)? || self.staged(id, false),
                &self.ids,
            ),
        };
        if held
            || !set
                .lock()
                .expect("staging lock is never poisoned")
                .insert(id)
        {
            return Ok(false);
        }
        let target = keys::object(id, encoding);
        let queue = if encoding == Encoding::Chunked {
            &self.lists
        } else {
            &self.pending
        };
        queue
            .lock()
            .expect("staging lock is never poisoned")
            .push((temp, target));
        Ok(true)
    }

    /// Makes every staged object durable and visible under its object path: parts,
    /// whole objects and packs first, then the chunk lists naming parts and the indexes
    /// naming packs, with two flushes of the filesystem in all.
    pub fn publish(self) -> Result<()> {
        let mut pending = self
            .pending
            .into_inner()
            .expect("staging lock is never poisoned");
        let mut lists = self
            .lists
            .into_inner()
            .expect("staging lock is never poisoned");
        let mut packs = self
            .packs
            .into_inner()
            .expect("staging lock is never poisoned");
        if let Some(writer) = self
            .pack
            .into_inner()
            .expect("staging lock is never poisoned")
            .filter(|w| !w.is_empty())
        {
            packs.push(writer.finish(&self.reg.tmp_dir())?);
        }
        for (id, _, encoding, body) in self
            .few
            .into_inner()
            .expect("staging lock is never poisoned")
        {
            let mut temp = atomic::object_temp_file(&self.reg.tmp_dir())?;
            temp.write_all(&body)
                .with_context(|| format!("writing {}", temp.path().display()))?;
            pending.push((temp.into_temp_path(), keys::object(id, encoding)));
        }
        // A pack goes with the objects; its index, which makes its objects found, with
        // the lists, once the pack is durable.
        let published_packs = !packs.is_empty();
        for done in packs {
            pending.push((done.pack, pack::pack_key(&done.name)));
            lists.push((done.index, pack::index_key(&done.name)));
        }
        if pending.is_empty() && lists.is_empty() {
            return Ok(());
        }
        // Every temp file's bytes are durable before any of them has its name; then the
        // names are given, objects and packs before the lists and indexes naming them,
        // and flushed. A list or index whose name outlived a crash that lost a name it
        // needs is no harm: a list is held only with every part present, and an index
        // only with its pack present at its length, so the content is stored again.
        atomic::sync_filesystem(self.reg.root())?;
        // Each fan-out folder is made and checked once, not once per object.
        let mut made: HashSet<String> = HashSet::new();
        for (n, batch) in [pending, lists].into_iter().enumerate() {
            if n == 1 && !batch.is_empty() {
                crate::crash::point("parts-published");
            }
            for (temp, key) in batch {
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
        }
        atomic::sync_filesystem(self.reg.root())?;
        if published_packs {
            self.reg.packs().changed();
        }
        Ok(())
    }
}

/// Copies `len` bytes of `from` at `offset` to the end of the empty file `to`, in the
/// kernel; returns `false`, having written nothing, where the kernel cannot copy
/// between the two (another filesystem, say): the caller then writes the bytes itself.
fn copy_range(from: &File, offset: u64, len: u64, to: &File) -> std::io::Result<bool> {
    let (mut at, end) = (offset, offset + len);
    while at < end {
        let left = usize::try_from(end - at).unwrap_or(usize::MAX).min(1 << 30);
        match rustix::fs::copy_file_range(from, Some(&mut at), to, None, left) {
            Ok(0) => {
                return Err(std::io::Error::other(
                    "the file ended while it was being stored",
                ));
            }
            // Copied some (or interrupted): the offset says where to go on.
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(err) if at == offset && chunks::kernel_cannot_copy(err) => return Ok(false),
            Err(err) => return Err(err.into()),
        }
    }
    Ok(true)
}

/// Asks the kernel to start writing a new object file to disk now, so that the flush
/// at publish finds less left to do: the disk works while the push hashes and cuts
/// the rest. `DONTNEED` starts writeback of the dirty pages and drops only pages that
/// are already clean, so the file stays cached. Advice only: its failure changes
/// nothing.
fn start_writeback(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}
