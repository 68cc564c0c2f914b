//! Moving objects between a registry and a remote: several at once, large ones in
//! parts, everything fetched re-hashed before it is used, and an interrupted transfer
//! resumed without moving again what already arrived.
//!
//! A fetch downloads into `tmp/fetch-HASH[.zst]`, a name that outlives the process, so
//! the next attempt asks only for the bytes after what the file holds. The file is
//! hashed in full, and renamed into `objects/` only when its content matches its name.
//! A send first asks whether the remote holds the object (unless it is known to), then
//! uploads it as stored; [`super::known::Known`] remembers each object that arrived.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result};

use super::Remote;
use super::known::Known;
use crate::error::Failure;
use crate::id::{ObjectId, TreeId};
use crate::store::chunks;
use crate::store::object::{self, Encoding, Place};
use crate::store::read;
use crate::store::tree::Tree;
use crate::store::walk;
use crate::store::{Progress, Registry, atomic, files, keys};

/// Transfers in flight at once: network-bound, so more than the cores.
pub const PARALLEL: usize = 8;

/// Objects re-hashed at once before they are sent: hashing a large one already uses
/// every core, so more at once would only hold more buffers.
const CHECKERS: usize = 2;

/// Above this many objects of unknown presence, one listing of the remote's objects
/// is cheaper than asking about each.
const LIST_INSTEAD_OF_ASKING: usize = 64;

/// Runs `work` on every item, `threads` at a time; the first error stops the rest.
pub fn parallel<T: Sync>(
    items: &[T],
    threads: usize,
    work: &(dyn Fn(&T) -> Result<()> + Sync),
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(items.len()).max(1) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if let Err(err) = work(item) {
                        failed.store(true, Ordering::Relaxed);
                        first_error.lock().expect("error slot").get_or_insert(err);
                    }
                }
            });
        }
    });
    match first_error.into_inner().expect("error slot") {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Returns every object below a tree, the tree itself included, each once, with
/// content sizes (trees count as 0). `read_tree` reads one tree, fetching it first if
/// need be. The graph is held to the walk limits: a hostile tree is refused before any
/// of its files moves.
pub fn closure(
    root: TreeId,
    read_tree: &dyn Fn(TreeId) -> Result<Tree>,
) -> Result<Vec<(ObjectId, u64)>> {
    Ok(walk::load(root, &walk::LIMITS, &mut |t| read_tree(t))?.objects())
}

/// Reads a tree from `reg`, fetching it from `remote` first when `reg` lacks it.
pub fn read_tree_fetching(
    reg: &Registry,
    remote: &dyn Remote,
    known: &Known,
    id: TreeId,
) -> Result<Tree> {
    if !reg.has_object(id.0) {
        fetch_one(reg, remote, known, id.0, Some(0), &|_| {})?;
    }
    read::read_tree(reg, id)
}

/// What [`fetch_all`] or [`send_all`] moved, and the objects it could not move, each
/// with why: for a fetch, missing, corrupt, larger than declared, or not tried after
/// too many failures; for a send, objects of this registry whose content no longer
/// matches their name, never sent so that a remote is not given damage that `known`
/// would then vouch for.
#[derive(Debug, Default)]
pub struct Moved {
    /// Objects moved.
    pub objects: u64,
    /// Their stored bytes.
    pub bytes: u64,
    /// Objects that were not moved, each with why.
    pub failed: BTreeMap<ObjectId, String>,
}

impl Moved {
    /// Returns the counts, or an error naming the first object that was not moved,
    /// with the hint `hint` gives for it.
    pub fn require(self, hint: impl FnOnce(ObjectId) -> String) -> Result<(u64, u64)> {
        match self.failed.into_iter().next() {
            None => Ok((self.objects, self.bytes)),
            Some((id, why)) => Err(Failure::error(why).hint(hint(id)).into()),
        }
    }
}

/// The hint of a fetch that could not bring an object a command needs.
pub fn needed_here(id: ObjectId) -> String {
    format!(
        "object {} is needed here; `mreg fsck` on a registry holding it checks it",
        id.short(16)
    )
}

/// The hint of a send that refused a damaged object of this registry.
pub fn damaged_here(_: ObjectId) -> String {
    "`mreg fsck` lists the damage; pull or sync a good copy from a registry that holds one"
        .to_owned()
}

/// After this many objects failed, a fetch stops trying the rest: the remote is
/// unreachable, or mostly damaged.
const FAILURES_BEFORE_GIVING_UP: usize = 16;

/// Fetches every listed object `reg` lacks, in parallel, each no larger than its
/// declared content size allows (see [`download_limit`]); returns what moved and what
/// could not be fetched, so that one bad object stops only what needs it.
pub fn fetch_all(
    reg: &Registry,
    remote: &dyn Remote,
    known: &Known,
    objects: &[(ObjectId, u64)],
    progress: &dyn Progress,
) -> Result<Moved> {
    fetch_objects(reg, remote, known, objects, false, progress)
}

/// Does what [`fetch_all`] does; with `parts` (the parts of files stored in parts,
/// which this registry keeps as files of their own, never in packs), no pack is
/// fetched whole.
fn fetch_objects(
    reg: &Registry,
    remote: &dyn Remote,
    known: &Known,
    objects: &[(ObjectId, u64)],
    parts: bool,
    progress: &dyn Progress,
) -> Result<Moved> {
    let mut missing = lacking(reg, objects);
    if missing.is_empty() {
        return Ok(Moved::default());
    }
    let whole = if reg.stores_in_packs() && !parts {
        super::packs::fetch_whole_packs(reg, remote, known, &mut missing, progress)?
    } else {
        Moved::default()
    };
    if missing.is_empty() {
        return Ok(whole);
    }
    let total = missing
        .iter()
        .fold(0u64, |sum, (_, size)| sum.saturating_add(*size));
    let moved = std::sync::atomic::AtomicU64::new(0);
    progress.start("fetch", total);
    let tick = |n: u64| {
        moved.fetch_add(n, Ordering::Relaxed);
        progress.advance(n);
    };
    let failed = Mutex::new(BTreeMap::new());
    let mut objects = 0;
    let mut lists: Vec<FetchedList> = Vec::new();
    let mut parts_pending = 0;
    // A batch at a time, so that no more files are open at once than a batch holds.
    for batch in missing.chunks(fetch_batch()) {
        // Download and verify the batch, flush once, rename it all, flush again: an
        // object path never names bytes that a crash could lose, without an fsync per
        // file.
        let downloaded = Mutex::new(Vec::with_capacity(batch.len()));
        let result = parallel(batch, PARALLEL, &|(id, size)| {
            if failed.lock().expect("failures").len() >= FAILURES_BEFORE_GIVING_UP {
                failed.lock().expect("failures").insert(
                    *id,
                    format!(
                        "object {} was not fetched: {FAILURES_BEFORE_GIVING_UP} others failed first",
                        id.short(16)
                    ),
                );
                return Ok(());
            }
            match download(reg, remote, known, *id, *size, &tick) {
                Ok(fetched) => downloaded.lock().expect("downloads").push(fetched),
                Err(err) => {
                    failed
                        .lock()
                        .expect("failures")
                        .insert(*id, format!("{err:#}"));
                }
            }
            Ok(())
        });
        if let Err(err) = result {
            progress.finish();
            return Err(err);
        }
        let downloaded = downloaded.into_inner().expect("downloads");
        atomic::sync_filesystem(&reg.tmp_dir())?;
        for fetched in &downloaded {
            if fetched.encoding == Encoding::Chunked && fetched.file.is_some() {
                match read_list(remote, fetched) {
                    Ok(list) => {
                        parts_pending += list.list.parts.len();
                        lists.push(list);
                    }
                    Err(why) => {
                        failed.lock().expect("failures").insert(fetched.id, why);
                    }
                }
                let _ = fs::remove_file(&fetched.temp);
            } else {
                install(reg, known, fetched)?;
                objects += 1;
            }
        }
        drop(downloaded);
        atomic::sync_filesystem(&reg.objects_dir())?;
        // The parts of the lists read so far, once they are many: memory stays bounded
        // however many lists a version names.
        if parts_pending >= PARTS_IN_FLIGHT {
            let done = complete_lists(reg, remote, known, std::mem::take(&mut lists), progress)?;
            parts_pending = 0;
            objects += done.objects;
            moved.fetch_add(done.bytes, Ordering::Relaxed);
            failed.lock().expect("failures").extend(done.failed);
        }
    }
    progress.finish();
    objects += whole.objects;
    moved.fetch_add(whole.bytes, Ordering::Relaxed);
    let mut failed = failed.into_inner().expect("failures");
    if !lists.is_empty() {
        let done = complete_lists(reg, remote, known, lists, progress)?;
        objects += done.objects;
        moved.fetch_add(done.bytes, Ordering::Relaxed);
        failed.extend(done.failed);
    }
    Ok(Moved {
        objects,
        bytes: moved.into_inner(),
        failed,
    })
}

/// Objects downloaded at once before they are stored: each holds a file open.
const FETCH_BATCH: usize = 128;

/// Returns how many objects to download before storing them: [`FETCH_BATCH`], or a
/// quarter of the open files this process may have, when that is fewer (at least 8).
fn fetch_batch() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    limit.map_or(FETCH_BATCH, |n| {
        usize::try_from(n / 4)
            .unwrap_or(FETCH_BATCH)
            .clamp(8, FETCH_BATCH)
    })
}

/// Parts of downloaded lists gathered before they are fetched.
const PARTS_IN_FLIGHT: usize = 1_000_000;

/// A chunk list downloaded and read, its parts not yet fetched.
struct FetchedList {
    id: ObjectId,
    key: String,
    list: chunks::ChunkList,
}

/// Reads a downloaded chunk list from its open file and checks it adds up to the size
/// declared; returns why not as a refusal.
fn read_list(remote: &dyn Remote, fetched: &Downloaded) -> Result<FetchedList, String> {
    let file = fetched.file.as_ref().expect("a download holds its file");
    let mut bytes = Vec::new();
    let mut reader = file;
    std::io::Seek::rewind(&mut reader).map_err(|e| e.to_string())?;
    std::io::Read::read_to_end(
        &mut std::io::Read::take(reader, chunks::LIST_LIMIT + 1),
        &mut bytes,
    )
    .map_err(|e| e.to_string())?;
    let list = chunks::ChunkList::parse(&bytes).map_err(|e| format!("{e:#}"))?;
    if fetched.declared != u64::MAX && list.total() != fetched.declared {
        return Err(format!(
            "object {} fetched from {} is corrupt: its chunk list adds up to {} bytes where its tree declares {}; it was not used",
            fetched.id.short(16),
            remote.url(),
            list.total(),
            fetched.declared
        ));
    }
    Ok(FetchedList {
        id: fetched.id,
        key: fetched.key.clone(),
        list,
    })
}

/// Finishes the fetch of objects stored in parts, whose lists are read: fetches the
/// parts this registry lacks, checks the whole content against each object's name, and
/// only then stores the list (or, in a registry that does not store parts, the content
/// assembled whole). Returns what moved, lists counted as objects.
fn complete_lists(
    reg: &Registry,
    remote: &dyn Remote,
    known: &Known,
    lists: Vec<FetchedList>,
    progress: &dyn Progress,
) -> Result<Moved> {
    let parts: Vec<(ObjectId, u64)> = lists
        .iter()
        .flat_map(|fetched| fetched.list.parts.iter().copied())
        .collect();
    let fetched_parts = fetch_objects(reg, remote, known, &parts, true, progress)?;
    let mut moved = Moved {
        objects: fetched_parts.objects,
        bytes: fetched_parts.bytes,
        failed: BTreeMap::new(),
    };
    let in_parts = reg.stores_in_parts();
    for fetched in lists {
        if let Some((part, why)) = fetched
            .list
            .parts
            .iter()
            .find_map(|(p, _)| fetched_parts.failed.get(p).map(|why| (p, why)))
        {
            moved.failed.insert(
                fetched.id,
                format!(
                    "object {} was not fetched: its part {} was not ({why})",
                    fetched.id.short(16),
                    part.short(16)
                ),
            );
            continue;
        }
        let id = fetched.id;
        // The whole content is checked against its name before anything is stored:
        // work on damage ends there, and never fills a disk.
        if let Err(err) = check_whole(reg, id, &fetched.list) {
            moved.failed.insert(
                id,
                format!(
                    "object {} fetched from {} is corrupt: {err:#}; it was not used",
                    id.short(16),
                    remote.url()
                ),
            );
            continue;
        }
        let stored = if in_parts {
            store_list(reg, id, &fetched.list)
        } else {
            assemble(reg, id, fetched.list)
        };
        stored.with_context(|| {
            format!(
                "storing object {} fetched from {}",
                id.short(16),
                remote.url()
            )
        })?;
        known.insert(&fetched.key)?;
        moved.objects += 1;
    }
    atomic::sync_filesystem(&reg.objects_dir())?;
    Ok(moved)
}

/// Stores a checked chunk list as the object `id`, durably, in its canonical text (the
/// bytes read, since only that spelling parses).
fn store_list(reg: &Registry, id: ObjectId, list: &chunks::ChunkList) -> Result<()> {
    if reg.holds_in_parts(id, list.total()) {
        return Ok(());
    }
    let target = reg.make_parents(&keys::object(id, Encoding::Chunked))?;
    let mut temp = atomic::object_temp_file(&reg.tmp_dir())?;
    std::io::Write::write_all(&mut temp, list.to_text().as_bytes())?;
    temp.as_file().sync_all()?;
    temp.persist(&target)
        .map_err(|e| e.error)
        .with_context(|| format!("storing {}", target.display()))?;
    Ok(())
}

/// Checks that the parts `list` names, as this registry holds them, are the content
/// `id` names.
fn check_whole(reg: &Registry, id: ObjectId, list: &chunks::ChunkList) -> Result<()> {
    let total = list.total();
    let mut parts = chunks::PartsReader::new(reg.root(), list.clone());
    let (actual, n) = object::hash_reader(&mut parts, total, None, &|_| {})?;
    object::check_size(id, n, total)?;
    if actual != id {
        anyhow::bail!("its parts hash to {}", actual.short(16));
    }
    Ok(())
}

/// Stores the content `list`'s parts make as one raw object `id`, checked against its
/// name on the way: how a registry that does not store parts takes a file fetched in
/// parts. The parts stay, for `gc` to collect.
fn assemble(reg: &Registry, id: ObjectId, list: chunks::ChunkList) -> Result<()> {
    let total = list.total();
    let mut parts = chunks::PartsReader::new(reg.root(), list);
    let temp = atomic::object_temp_file(&reg.tmp_dir())?;
    let (file, path) = temp.into_parts();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, &file);
    let (actual, n) = object::hash_reader(&mut parts, total, Some(&mut out), &|_| {})?;
    std::io::Write::flush(&mut out)?;
    drop(out);
    object::check_size(id, n, total)?;
    if actual != id {
        anyhow::bail!("its parts hash to {}", actual.short(16));
    }
    file.sync_all()?;
    let target = reg.make_parents(&keys::object(id, Encoding::Raw))?;
    path.persist(&target)
        .map_err(|e| e.error)
        .with_context(|| format!("storing {}", target.display()))?;
    Ok(())
}

/// Returns the objects of `objects` this registry lacks, each once with the largest size
/// declared for it, and the parts it lacks of those it holds in parts.
fn lacking(reg: &Registry, objects: &[(ObjectId, u64)]) -> Vec<(ObjectId, u64)> {
    // One id may be declared with several sizes, by an honest record and a lying one:
    // the largest bounds the download, and the hash decides.
    let mut declared: BTreeMap<ObjectId, u64> = BTreeMap::new();
    for (id, size) in objects {
        let entry = declared.entry(*id).or_insert(0);
        *entry = (*entry).max(*size);
    }
    // An object held in parts with some part missing (deleted as damage, say) has
    // those parts fetched.
    let mut missing: Vec<(ObjectId, u64)> = Vec::new();
    for (id, size) in declared {
        match reg.find_object(id) {
            Some(Place::File(_, Encoding::Chunked)) => {
                if let Some((_, parts)) = reg.missing_parts(id) {
                    missing.extend(parts);
                }
            }
            Some(_) => {}
            None => missing.push((id, size)),
        }
    }
    missing.sort_unstable_by_key(|(id, size)| (*id, std::cmp::Reverse(*size)));
    missing.dedup_by_key(|(id, _)| *id);
    missing
}

/// Returns the most bytes a stored form of an object may have on a remote, given the
/// content size its records declare. A raw object is exactly its content; a zstd frame
/// can exceed it by its block headers; objects no record sizes (trees, series chunks,
/// declared as 0) may be as large as a tree may.
pub fn download_limit(declared: u64, encoding: Encoding) -> u64 {
    if declared == 0 {
        return read::SMALL_OBJECT_LIMIT;
    }
    match encoding {
        Encoding::Raw => declared,
        Encoding::Zstd => declared
            .saturating_add(declared / 64)
            .saturating_add(64 << 10),
        Encoding::Chunked => chunks::LIST_LIMIT,
    }
}

/// Fetches one object into `reg`, verified and durable, and returns where it now is.
/// `declared` is its content size as a record declares it (0: unknown, and then it may
/// be no larger than a tree), or `None` for an object fetched lazily by a reader that
/// does not know it, which the hash alone bounds.
pub fn fetch_one(
    reg: &Registry,
    remote: &dyn Remote,
    known: &Known,
    id: ObjectId,
    declared: Option<u64>,
    tick: &(dyn Fn(u64) + Sync),
) -> Result<Place> {
    if let Some(found) = reg.find_object(id) {
        return Ok(found);
    }
    let fetched = download(reg, remote, known, id, declared.unwrap_or(u64::MAX), tick)?;
    if let Some(file) = &fetched.file {
        file.sync_all()
            .with_context(|| format!("writing {}", fetched.temp.display()))?;
    }
    if fetched.encoding == Encoding::Chunked && fetched.file.is_some() {
        let list = read_list(remote, &fetched);
        let _ = fs::remove_file(&fetched.temp);
        let list = list.map_err(|why| Failure::error(why).hint(needed_here(id)))?;
        let moved = complete_lists(reg, remote, known, vec![list], &crate::store::NoProgress)?;
        if let Some((_, why)) = moved.failed.into_iter().next() {
            return Err(Failure::error(why).hint(needed_here(id)).into());
        }
        return reg.find_object(id).ok_or_else(|| read::missing(id));
    }
    crate::crash::point("fetch-downloaded");
    let stored = install(reg, known, &fetched)?;
    if let Some(path) = stored.file() {
        atomic::sync_parent(path)?;
    }
    Ok(stored)
}

/// An object downloaded and verified in a temp file, not yet in the store.
struct Downloaded {
    id: ObjectId,
    /// The content size its records declare (`u64::MAX`: unknown).
    declared: u64,
    encoding: Encoding,
    key: String,
    temp: PathBuf,
    /// The temp file, open; `None` when another process stored the object first.
    file: Option<File>,
}

/// Downloads an object into its temp file (resuming what an earlier attempt left
/// there) and checks it against its name.
fn download(
    reg: &Registry,
    remote: &dyn Remote,
    known: &Known,
    id: ObjectId,
    declared: u64,
    tick: &(dyn Fn(u64) + Sync),
) -> Result<Downloaded> {
    // A remote's packs first: an object packed there is no file of its own.
    if let Some(fetched) = download_packed(reg, remote, known, id, declared, tick)? {
        return Ok(fetched);
    }
    let mut order = match known.encoding_of(id) {
        Some(Encoding::Zstd) => vec![Encoding::Zstd, Encoding::Raw, Encoding::Chunked],
        Some(Encoding::Chunked) => vec![Encoding::Chunked, Encoding::Raw, Encoding::Zstd],
        _ => vec![Encoding::Raw, Encoding::Zstd, Encoding::Chunked],
    };
    // Only a file larger than any part is stored in parts: a part, a tree or a series
    // chunk offered as a chunk list is not looked for.
    if declared != u64::MAX && declared <= chunks::CHUNKED_MIN {
        order.retain(|e| *e != Encoding::Chunked);
    }
    for encoding in order {
        let key = keys::object(id, encoding);
        let (temp, file) = claim_temp(reg, id, encoding)?;
        let limit = if declared == u64::MAX {
            u64::MAX
        } else {
            download_limit(declared, encoding)
        };
        let stored = || reg.find_object(id).is_some();
        let verdict = match download_as(remote, &key, file, encoding, (id, limit), (tick, &stored))
        {
            Ok(Some(verdict)) => verdict,
            Ok(None) => {
                let _ = fs::remove_file(&temp);
                continue;
            }
            Err(err) => {
                let _ = fs::remove_file(&temp);
                return Err(err);
            }
        };
        let file = match verdict {
            Ok(file) => file,
            Err(err) => {
                let _ = fs::remove_file(&temp);
                // Another process fetching the same object may have stored it already.
                if reg.find_object(id).is_some() {
                    return Ok(Downloaded {
                        id,
                        declared,
                        encoding,
                        key,
                        temp,
                        file: None,
                    });
                }
                return Err(Failure::error(format!(
                    "object {} fetched from {} is corrupt: {err}; it was not used",
                    id.short(16),
                    remote.url()
                ))
                .hint(format!(
                    "delete {key} on the remote, then run `mreg sync --recheck` from a registry that holds a good copy"
                ))
                .into());
            }
        };
        return Ok(Downloaded {
            id,
            declared,
            encoding,
            key,
            temp,
            file: Some(file),
        });
    }
    Err(Failure::error(format!(
        "object {} is missing from {} as well as from the local registry",
        id.short(16),
        remote.url()
    ))
    .hint("a registry that holds it can send it with `mreg sync`; `mreg fsck` there checks it")
    .into())
}

/// What one download found: the file, when its content matches its name, or else a
/// description of the mismatch.
type Attempt = Result<File, String>;

/// Returns the file to download one stored form of `id` into, open, with its path:
/// `tmp/fetch-HASH`, kept across runs so that the next fetch resumes it, with an OS lock
/// on it so that no two processes write it at once; or, while another process holds
/// that one, a file of this process's own temp folder.
fn claim_temp(reg: &Registry, id: ObjectId, encoding: Encoding) -> Result<(PathBuf, File)> {
    let name = format!("fetch-{}{}", id.to_hex(), encoding.suffix());
    let shared = reg.path(keys::TMP).join(&name);
    let file = files::open_resumable(&shared)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let own = reg.tmp_dir().join(name);
            let file = files::open_resumable(&own)?;
            Ok((own, file))
        }
        // Locked, or a filesystem without OS locks: the shared file, as before them.
        _ => Ok((shared, file)),
    }
}

/// Downloads one stored form of an object into `file`, resuming what it holds, and
/// returns the file and whether its content matches its name (`None`: the remote lacks
/// it).
fn download_as(
    remote: &dyn Remote,
    key: &str,
    file: File,
    encoding: Encoding,
    (id, limit): (ObjectId, u64),
    (tick, stored): (&(dyn Fn(u64) + Sync), &dyn Fn() -> bool),
) -> Result<Option<Attempt>> {
    if stored() {
        return Ok(Some(Err(
            "it was stored meanwhile by another process".to_owned()
        )));
    }
    let mut offset = file.metadata()?.len();
    loop {
        let Some(total) = remote.download(key, &file, offset, limit, tick)? else {
            return Ok(None);
        };
        file.set_len(total)?;
        match verify(&file, encoding, id) {
            Ok(()) => return Ok(Some(Ok(file))),
            // A partial file left by an interrupted attempt may be what is damaged: the
            // whole object is fetched once more before the remote is blamed.
            Err(_) if offset > 0 => {
                file.set_len(0)?;
                offset = 0;
            }
            Err(err) => return Ok(Some(Err(err))),
        }
    }
}

/// Renames a downloaded object into the store (its bytes must be durable already) and
/// remembers that the remote holds it.
fn install(reg: &Registry, known: &Known, fetched: &Downloaded) -> Result<Place> {
    known.insert(&fetched.key)?;
    if let Some(found) = reg.find_object(fetched.id) {
        let _ = fs::remove_file(&fetched.temp);
        return Ok(found);
    }
    let target = reg.make_parents(&keys::object(fetched.id, fetched.encoding))?;
    if let Some(file) = &fetched.file
        && !names_file(&fetched.temp, file)
    {
        // The temp name was given to another download meanwhile (this one's file was
        // removed by a fetch that failed): the verified bytes are copied from the file
        // itself, never renamed from a name that may now hold a partial download.
        let copy = |temp: &mut tempfile::NamedTempFile| {
            let mut source = file;
            std::io::Seek::seek(&mut source, std::io::SeekFrom::Start(0))?;
            std::io::copy(&mut source, temp).context("copying a fetched object")?;
            Ok(())
        };
        atomic::create_exclusive_with(&reg.tmp_dir(), &target, copy)?;
        let _ = fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o444));
        return Ok(Place::File(target, fetched.encoding));
    }
    if let Err(err) = fs::rename(&fetched.temp, &target) {
        if let Some(found) = reg.find_object(fetched.id) {
            return Ok(found);
        }
        return Err(err).with_context(|| format!("storing {}", target.display()));
    }
    // Read-only once it has its name: until then another fetch may still open it.
    let _ = fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o444));
    Ok(Place::File(target, fetched.encoding))
}

/// Returns whether `path` is still the name of the open `file`.
fn names_file(path: &std::path::Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::symlink_metadata(path), file.metadata()) {
        (Ok(named), Ok(open)) => named.dev() == open.dev() && named.ino() == open.ino(),
        _ => false,
    }
}

/// Downloads an object the remote holds in a pack into its temp file, checked against
/// its name; `None` when no pack of the remote holds it.
fn download_packed(
    reg: &Registry,
    remote: &dyn Remote,
    known: &Known,
    id: ObjectId,
    declared: u64,
    tick: &(dyn Fn(u64) + Sync),
) -> Result<Option<Downloaded>> {
    download_packed_once(reg, remote, known, (id, declared), tick, false)
}

/// Does what [`download_packed`] does; `retried` says the remote's indexes were read
/// again already.
fn download_packed_once(
    reg: &Registry,
    remote: &dyn Remote,
    known: &Known,
    (id, declared): (ObjectId, u64),
    tick: &(dyn Fn(u64) + Sync),
    retried: bool,
) -> Result<Option<Downloaded>> {
    let Some((pack_key, entry)) = known.packed(remote, id)? else {
        return Ok(None);
    };
    let corrupt = |why: String| -> anyhow::Error {
        Failure::error(format!(
            "object {} fetched from {} is corrupt: {why}; it was not used",
            id.short(16),
            remote.url()
        ))
        .hint(format!(
            "run `mreg fsck` on the registry at {}; a push there of the files it names stores them again",
            remote.url()
        ))
        .into()
    };
    if declared != 0 && declared != u64::MAX && entry.size != declared {
        return Err(corrupt(format!(
            "its pack {pack_key} declares {} bytes where its tree declares {declared}",
            entry.size
        )));
    }
    let Some(bytes) = remote.read_range(&pack_key, entry.offset, entry.stored)? else {
        // The pack went since its index was read (a gc rewrote it): read them again.
        if retried {
            return Ok(None);
        }
        known.forget_packs();
        return download_packed_once(reg, remote, known, (id, declared), tick, true);
    };
    tick(bytes.len() as u64);
    object::verify_stored(&bytes, entry.encoding, id)
        .map_err(|why| corrupt(format!("{why}, in {pack_key}")))?;
    let (temp, file) = claim_temp(reg, id, entry.encoding)?;
    file.set_len(0)?;
    file.write_all_at(&bytes, 0)
        .with_context(|| format!("writing {}", temp.display()))?;
    Ok(Some(Downloaded {
        id,
        declared,
        encoding: entry.encoding,
        key: keys::object(id, entry.encoding),
        temp,
        file: Some(file),
    }))
}

/// Checks a downloaded object against its name; returns a description of a mismatch.
fn verify(file: &File, encoding: Encoding, id: ObjectId) -> Result<(), String> {
    use std::io::{Seek, SeekFrom};
    let len = file.metadata().map_or(0, |m| m.len());
    let mut file = file;
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let hashed = match encoding {
        Encoding::Raw => object::hash_reader(&mut file, len, None, &|_| {}),
        Encoding::Zstd => zstd::stream::read::Decoder::new(file)
            .and_then(|mut d| object::hash_reader(&mut d, len, None, &|_| {})),
        // A list is checked for its form here; its parts, once fetched, are checked
        // against its name (see `complete_lists`).
        Encoding::Chunked => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(
                &mut std::io::Read::take(file, chunks::LIST_LIMIT + 1),
                &mut bytes,
            )
            .map_err(|e| e.to_string())?;
            return chunks::ChunkList::parse(&bytes)
                .map(|_| ())
                .map_err(|e| format!("{e:#}"));
        }
    };
    match hashed {
        Ok((actual, _)) if actual == id => Ok(()),
        Ok((actual, _)) => Err(format!("its content hashes to {}", actual.short(16))),
        Err(err) => Err(format!("it cannot be decoded ({err})")),
    }
}

/// Sends every listed object the remote lacks, in parallel, each re-hashed first (an
/// object whose content no longer matches its name is listed in `failed`, not sent).
///
/// An object stored here in parts goes as its parts, then its list, so that a remote
/// never holds a list before its parts; to a remote whose format predates parts, it
/// goes whole.
pub fn send_all(
    reg: &Registry,
    remote: &dyn Remote,
    known: &Known,
    objects: &[ObjectId],
    progress: &dyn Progress,
) -> Result<Moved> {
    let lists: Vec<(ObjectId, PathBuf)> = objects
        .iter()
        .filter(|id| known.encoding_of(**id).is_none())
        .filter_map(|id| match reg.find_file(*id) {
            Some((path, Encoding::Chunked)) => Some((*id, path)),
            _ => None,
        })
        .collect();
    let in_parts = !lists.is_empty() && remote_stores_parts(remote)?;
    let mut parts_of: BTreeMap<ObjectId, Vec<ObjectId>> = BTreeMap::new();
    if in_parts {
        for (id, path) in &lists {
            // A list that does not read is refused by the send below, as damage.
            if let Ok(list) = chunks::ChunkList::read(path) {
                parts_of.insert(*id, list.parts.iter().map(|(p, _)| *p).collect());
            }
        }
    }
    let parts: Vec<ObjectId> = parts_of.values().flatten().copied().collect();
    let mut moved = if parts.is_empty() {
        Moved::default()
    } else {
        send_objects(
            reg,
            remote,
            known,
            &parts,
            (false, false, &BTreeMap::new()),
            progress,
        )?
    };
    // A list goes only once every part it names has.
    let mut blocked = BTreeMap::new();
    for (id, parts) in &parts_of {
        if let Some((part, why)) = parts
            .iter()
            .find_map(|p| moved.failed.get(p).map(|why| (p, why)))
        {
            blocked.insert(
                *id,
                format!(
                    "object {} was not sent: its part {} was not ({why})",
                    id.short(16),
                    part.short(16)
                ),
            );
        }
    }
    let rest = send_objects(
        reg,
        remote,
        known,
        objects,
        (in_parts, true, &blocked),
        progress,
    )?;
    moved.objects += rest.objects;
    moved.bytes += rest.bytes;
    moved.failed.extend(rest.failed);
    Ok(moved)
}

/// Returns whether `remote`'s registry stores files in parts: its `config.toml`
/// declares format 2 or later.
fn remote_stores_parts(remote: &dyn Remote) -> Result<bool> {
    Ok(remote_format(remote)? >= crate::store::registry::PARTS_FORMAT)
}

/// Returns the layout format `remote`'s `config.toml` declares (0 without one).
fn remote_format(remote: &dyn Remote) -> Result<u32> {
    let config = remote.get(keys::CONFIG)?;
    Ok(config.map_or(0, |c| {
        crate::store::registry::format_of(&String::from_utf8_lossy(&c.bytes))
    }))
}

/// Sends the listed objects the remote lacks (see [`send_all`]); `in_parts` says
/// whether objects stored in parts go as their lists (their parts sent already) or
/// whole, `may_pack` whether small objects may go in packs (not parts, which every
/// registry keeps as objects of their own), and `blocked` names those not to send,
/// with why.
fn send_objects(
    reg: &Registry,
    remote: &dyn Remote,
    known: &Known,
    objects: &[ObjectId],
    (in_parts, may_pack, blocked): (bool, bool, &BTreeMap<ObjectId, String>),
    progress: &dyn Progress,
) -> Result<Moved> {
    let mut unknown: Vec<ObjectId> = objects
        .iter()
        .filter(|id| known.encoding_of(**id).is_none())
        .copied()
        .collect();
    unknown.sort_unstable_by_key(|id| id.to_hex());
    unknown.dedup();
    if unknown.len() > LIST_INSTEAD_OF_ASKING {
        let listed = remote.list(keys::OBJECTS)?;
        known.insert_all(
            listed
                .iter()
                .filter(|l| l.special.is_none())
                .map(|l| l.key.as_str()),
        )?;
        known.note_packed(remote)?;
        unknown.retain(|id| known.encoding_of(*id).is_none());
    }
    if unknown.is_empty() {
        return Ok(Moved::default());
    }
    // A remote of format 3 takes small objects in packs: a few requests, not one each.
    let packer = (may_pack && remote_format(remote)? >= crate::store::registry::PACKS_FORMAT)
        .then(|| super::packs::Packer::new(reg));
    let (sizes, total, missing_here) = located(reg, &unknown, blocked)?;
    let failed = Mutex::new(missing_here);
    let ready = Mutex::new(Vec::with_capacity(sizes.len()));
    progress.start("send", total);
    let tick = |n: u64| progress.advance(n);
    // Each object is checked against its name first; the ones that pass go in one
    // batch, which a folder remote makes durable at once.
    // Checking is hashing, bound by the cores; asking the remote about each object (a few
    // of unknown presence) is bound by the network.
    let threads = if sizes.len() <= LIST_INSTEAD_OF_ASKING {
        PARALLEL
    } else {
        CHECKERS
    };
    let result = parallel(&sizes, threads, &|(id, place, len)| {
        if sizes.len() <= LIST_INSTEAD_OF_ASKING && held_there(remote, known, *id)? {
            tick(*len);
            return Ok(());
        }
        if let Some(packer) = &packer
            && let Some(checked) = super::packs::packable(place, *id)?
        {
            match checked {
                Ok((bytes, size)) => packer.add(*id, place.encoding(), size, &bytes)?,
                Err(why) => {
                    failed
                        .lock()
                        .expect("failed objects")
                        .insert(*id, format!("{why}; it was not sent"));
                }
            }
            tick(*len);
            return Ok(());
        }
        let whole = place.encoding() == Encoding::Chunked && !in_parts;
        match checked(reg, (*id, place), whole)? {
            Ok((key, source, len)) => ready.lock().expect("objects to send").push(super::Upload {
                key,
                source,
                len,
                journal: known.journal(*id)?,
            }),
            Err(why) => {
                failed
                    .lock()
                    .expect("failed objects")
                    .insert(*id, format!("{why}; it was not sent"));
                tick(*len);
            }
        }
        Ok(())
    });
    let mut ready = ready.into_inner().expect("objects to send");
    let (packs, in_packs, loose) = match packer {
        Some(packer) => packer.finish(known)?,
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    ready.extend(loose);
    // The packs go with the objects; their indexes, which make what they hold found,
    // only once every pack is there and durable.
    let (bodies, indexes) = super::packs::uploads(known, &packs)?;
    ready.extend(bodies);
    let result = result
        .and_then(|()| remote.upload_all(&ready, &tick))
        .and_then(|()| remote.upload_all(&indexes, &|_| {}));
    progress.finish();
    result?;
    for item in &ready {
        if !item.key.starts_with(keys::PACKS) {
            known.insert(&item.key)?;
        }
    }
    for (id, encoding) in &in_packs {
        known.insert(&keys::object(*id, *encoding))?;
    }
    Ok(Moved {
        objects: (ready.len() - packs.len() + in_packs.len()) as u64,
        bytes: ready.iter().map(|u| u.len).sum(),
        failed: failed.into_inner().expect("failed objects"),
    })
}

/// Returns whether the remote holds `id`, asked about it: in a pack, or in any stored
/// form; remembers where.
fn held_there(remote: &dyn Remote, known: &Known, id: ObjectId) -> Result<bool> {
    if let Some((_, entry)) = known.packed(remote, id)? {
        known.insert(&keys::object(id, entry.encoding))?;
        return Ok(true);
    }
    for other in Encoding::ALL {
        let other_key = keys::object(id, other);
        if remote.size(&other_key)?.is_some() {
            known.insert(&other_key)?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Returns where each object to send is, with its stored length, and their total;
/// and those that are not to be sent (`blocked`, or missing here), each with why: one
/// missing fails what names it, not the whole transfer.
#[allow(clippy::type_complexity)]
fn located(
    reg: &Registry,
    ids: &[ObjectId],
    blocked: &BTreeMap<ObjectId, String>,
) -> Result<(Vec<(ObjectId, Place, u64)>, u64, BTreeMap<ObjectId, String>)> {
    let mut sizes = Vec::with_capacity(ids.len());
    let mut total = 0;
    let mut missing_here = BTreeMap::new();
    for id in ids {
        if let Some(why) = blocked.get(id) {
            missing_here.insert(*id, why.clone());
            continue;
        }
        let Some(place) = reg.find_object(*id) else {
            missing_here.insert(
                *id,
                format!(
                    "object {} is missing from this registry; it was not sent",
                    id.short(16)
                ),
            );
            continue;
        };
        let len = place.stored_len()?;
        total += len;
        sizes.push((*id, place, len));
    }
    Ok((sizes, total, missing_here))
}

/// Returns what sends an object stored at `path`: its key on the remote, where what
/// goes there is, and its length; or, for an object whose content no longer matches its
/// name, why it does not go. With `whole`, an object stored in parts is assembled into
/// a file without a name as it is checked, and goes raw.
fn checked(
    reg: &Registry,
    (id, place): (ObjectId, &Place),
    whole: bool,
) -> Result<Result<(String, super::Source, u64), String>> {
    let encoding = place.encoding();
    if let Place::Packed(packed) = place {
        // A packed object goes as an object of its own, its stored bytes checked first.
        let bytes = match packed.read_stored() {
            Ok(bytes) => bytes,
            Err(err) => {
                return Ok(Err(format!(
                    "object {} cannot be read: {err:#}",
                    id.short(16)
                )));
            }
        };
        if let Err(why) = object::verify_stored(&bytes, encoding, id) {
            return Ok(Err(format!(
                "object {} is corrupt: {why} ({})",
                id.short(16),
                packed.describe()
            )));
        }
        let mut file = tempfile::tempfile_in(reg.tmp_dir())
            .or_else(|_| tempfile::tempfile())
            .context("creating a temp file for an object to send")?;
        std::io::Write::write_all(&mut file, &bytes).context("writing an object to send")?;
        return Ok(Ok((
            keys::object(id, encoding),
            super::Source::Open(file),
            bytes.len() as u64,
        )));
    }
    let path = place.path();
    let assembled = if whole {
        Some(
            tempfile::tempfile_in(reg.tmp_dir())
                .or_else(|_| tempfile::tempfile())
                .context("creating a temp file to assemble an object in")?,
        )
    } else {
        None
    };
    let hashed = match &assembled {
        Some(file) => {
            let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
            let hashed = object::hash_stored(place, None, &mut writer, &|_| {});
            std::io::Write::flush(&mut writer)?;
            hashed
        }
        None => object::hash_stored(place, None, &mut std::io::sink(), &|_| {}),
    };
    match hashed {
        Ok((actual, _)) if actual == id => {}
        Ok((actual, _)) => {
            return Ok(Err(object::corrupt_message(id, actual, &place.describe())));
        }
        Err(err) => {
            return Ok(Err(format!(
                "object {} cannot be read: {err:#}",
                id.short(16)
            )));
        }
    }
    Ok(Ok(match assembled {
        Some(file) => {
            let len = file.metadata()?.len();
            (
                keys::object(id, Encoding::Raw),
                super::Source::Open(file),
                len,
            )
        }
        None => (
            keys::object(id, encoding),
            super::Source::Path(path.to_path_buf()),
            fs::metadata(path)
                .with_context(|| format!("reading {}", path.display()))?
                .len(),
        ),
    }))
}
