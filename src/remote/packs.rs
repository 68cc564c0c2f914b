//! Packs on remotes ([`crate::store::pack`]): the packs a remote holds, their indexes
//! read once per process and checked against their names, as untrusted input; small
//! objects sent to a remote of format 3 written into packs; and packs fetched whole,
//! each object checked, when a fetch needs most of one.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, Result};

use super::known::Known;
use super::transfer::{Moved, PARALLEL, parallel};
use super::{Remote, Source, Upload};
use crate::id::ObjectId;
use crate::store::object::{self, Encoding, Place};
use crate::store::pack::{self, Entry, PackIndex};
use crate::store::{Progress, Registry, atomic, keys};

/// Where a remote holds its packed objects: each object's pack and entry, compact, for
/// at most [`pack::PACKED_OBJECTS_MAX`] objects.
#[derive(Debug, Default)]
pub struct RemotePacks {
    packs: Vec<RemotePack>,
    objects: HashMap<ObjectId, pack::Slot>,
}

/// One pack a remote holds.
#[derive(Debug)]
pub struct RemotePack {
    /// Its name.
    pub name: String,
    /// The key of the pack.
    pub key: String,
    /// The pack's length.
    pub len: u64,
}

/// Reads the index of the pack `name` from `remote`, checked against its name and
/// parsed; `None` when it is absent or does not check (its objects then count as
/// missing from the remote, which `mreg fsck` there reports).
pub fn read_index(remote: &dyn Remote, name: &str) -> Result<Option<(PackIndex, Vec<u8>)>> {
    let Some(fetched) = remote.get(&pack::index_key(name))? else {
        return Ok(None);
    };
    if pack::name_of(&fetched.bytes) != name {
        return Ok(None);
    }
    Ok(PackIndex::parse(&fetched.bytes)
        .ok()
        .map(|index| (index, fetched.bytes)))
}

/// Calls `each` with every pack of `remote` whose index checks and whose pack is there
/// at the length its index gives, one index at a time.
pub fn each_index(
    remote: &dyn Remote,
    each: &mut dyn FnMut(RemotePack, PackIndex) -> Result<()>,
) -> Result<()> {
    let listed = remote.list(keys::PACKS)?;
    let lengths: HashMap<&str, u64> = listed
        .iter()
        .filter(|l| l.special.is_none())
        .map(|l| (l.key.as_str(), l.size))
        .collect();
    for l in &listed {
        let Some(name) = l
            .key
            .strip_prefix(keys::PACKS)
            .and_then(pack::name_of_index)
        else {
            continue;
        };
        let Ok(Some((index, _))) = read_index(remote, name) else {
            continue;
        };
        let key = pack::pack_key(name);
        if lengths.get(key.as_str()) != Some(&index.pack_len) {
            continue;
        }
        let remote_pack = RemotePack {
            name: name.to_owned(),
            key,
            len: index.pack_len,
        };
        each(remote_pack, index)?;
    }
    Ok(())
}

impl RemotePacks {
    /// Reads the indexes of every pack `remote` holds, up to
    /// [`pack::PACKED_OBJECTS_MAX`] objects in all.
    pub fn load(remote: &dyn Remote) -> Result<RemotePacks> {
        let mut out = RemotePacks::default();
        each_index(remote, &mut |remote_pack, index| {
            if out.objects.len() + index.entries.len() > pack::PACKED_OBJECTS_MAX {
                return Ok(());
            }
            let at = out.packs.len() as u32;
            for entry in &index.entries {
                out.objects
                    .entry(entry.id)
                    .or_insert(pack::Slot::of(at, entry));
            }
            out.packs.push(remote_pack);
            Ok(())
        })?;
        Ok(out)
    }

    /// Returns every object the packs hold, with the encoding each is stored in.
    pub fn objects(&self) -> impl Iterator<Item = (ObjectId, Encoding)> + '_ {
        self.objects
            .iter()
            .map(|(id, slot)| (*id, slot.entry(*id).encoding))
    }

    /// Returns the key of the pack holding `id` and its entry there.
    pub fn find(&self, id: ObjectId) -> Option<(&str, Entry)> {
        self.objects
            .get(&id)
            .map(|slot| (self.packs[slot.pack as usize].key.as_str(), slot.entry(id)))
    }

    /// Returns the pack holding `id`, by its place in [`RemotePacks::packs`], and the
    /// bytes it occupies there.
    fn place_of(&self, id: ObjectId) -> Option<(usize, u64)> {
        self.objects
            .get(&id)
            .map(|slot| (slot.pack as usize, slot.entry(id).stored))
    }

    /// Returns the packs.
    pub fn packs(&self) -> &[RemotePack] {
        &self.packs
    }
}

/// A small object held in memory: its id, encoding, content length and stored bytes.
type Held = (ObjectId, Encoding, u64, Vec<u8>);

/// Small objects being written into packs for a remote that takes them.
pub struct Packer {
    tmp: PathBuf,
    /// The first objects, held until there are more than [`LOOSE_UP_TO`]: a send of a
    /// few objects sends them as objects of their own.
    few: Mutex<Vec<Held>>,
    current: Mutex<Option<pack::PackWriter>>,
    done: Mutex<Vec<pack::Finished>>,
    /// Each object packed, with its encoding.
    packed: Mutex<Vec<(ObjectId, Encoding)>>,
}

impl Packer {
    /// Returns a packer writing its packs in `reg`'s temp folder.
    pub fn new(reg: &Registry) -> Packer {
        Packer {
            tmp: reg.tmp_dir(),
            few: Mutex::new(Vec::new()),
            current: Mutex::new(None),
            done: Mutex::new(Vec::new()),
            packed: Mutex::new(Vec::new()),
        }
    }

    /// Appends an object's checked stored bytes to the pack being filled.
    pub fn add(&self, id: ObjectId, encoding: Encoding, size: u64, bytes: &[u8]) -> Result<()> {
        let mut slot = self.current.lock().expect("packer");
        if slot.is_none() {
            let mut few = self.few.lock().expect("packer");
            if few.len() < LOOSE_UP_TO {
                few.push((id, encoding, size, bytes.to_vec()));
                return Ok(());
            }
            let mut writer = pack::PackWriter::new(&self.tmp)?;
            for (id, encoding, size, bytes) in few.drain(..) {
                writer.add(id, encoding, size, &bytes)?;
                self.packed.lock().expect("packer").push((id, encoding));
            }
            *slot = Some(writer);
        }
        let writer = slot.as_mut().expect("a pack is being filled");
        writer.add(id, encoding, size, bytes)?;
        self.packed.lock().expect("packer").push((id, encoding));
        if writer.len() >= pack::PACK_TARGET {
            let full = slot.take().expect("a pack is being filled");
            drop(slot);
            let finished = full.finish(&self.tmp)?;
            self.done.lock().expect("packer").push(finished);
        }
        Ok(())
    }

    /// Returns the packs written, the last one closed, and the objects packed; or, when
    /// there were too few to pack, none, and the objects as uploads of their own.
    pub fn finish(self, known: &Known) -> Result<Packed> {
        let few = self.few.into_inner().expect("packer");
        let mut loose = Vec::with_capacity(few.len());
        for (id, encoding, _, bytes) in few {
            let mut file = tempfile::tempfile_in(&self.tmp)
                .or_else(|_| tempfile::tempfile())
                .context("creating a temp file for an object to send")?;
            std::io::Write::write_all(&mut file, &bytes).context("writing an object to send")?;
            loose.push(Upload {
                key: keys::object(id, encoding),
                source: Source::Open(file),
                len: bytes.len() as u64,
                journal: known.journal(id)?,
            });
        }
        let mut done = self.done.into_inner().expect("packer");
        if let Some(writer) = self
            .current
            .into_inner()
            .expect("packer")
            .filter(|w| !w.is_empty())
        {
            done.push(writer.finish(&self.tmp)?);
        }
        Ok((done, self.packed.into_inner().expect("packer"), loose))
    }
}

/// What a [`Packer`] made: packs, the objects in them, and uploads of objects too few
/// to pack.
pub type Packed = (Vec<pack::Finished>, Vec<(ObjectId, Encoding)>, Vec<Upload>);

/// A send of no more small objects than this sends them as objects of their own; with
/// more, in packs.
const LOOSE_UP_TO: usize = 16;

/// An object's stored bytes and content length, checked against its id; or why it
/// does not match.
pub type Checked = Result<(Vec<u8>, u64), String>;

/// Returns an object's stored bytes, its content length and its encoding when it is
/// small enough to go in a pack (stored in at most [`pack::STORED_MAX`] bytes, its
/// content at most [`pack::PACKED_MAX`]), checked against its id; `Ok(None)` when it
/// is larger, and the inner error when it does not match its id.
pub fn packable(place: &Place, id: ObjectId) -> Result<Option<Checked>> {
    let bytes = match place {
        Place::Packed(packed) => packed.read_stored()?,
        Place::File(_, Encoding::Chunked) => return Ok(None),
        Place::File(path, _) => {
            let (file, len) = object::open_stored(path)?;
            if len > pack::STORED_MAX {
                return Ok(None);
            }
            let mut bytes = Vec::with_capacity(len as usize);
            std::io::Read::read_to_end(
                &mut std::io::Read::take(file, pack::STORED_MAX + 1),
                &mut bytes,
            )
            .with_context(|| format!("reading {}", path.display()))?;
            if bytes.len() as u64 > pack::STORED_MAX {
                return Ok(None);
            }
            bytes
        }
    };
    let corrupt = |why: String| {
        format!(
            "object {} is corrupt: {why} ({})",
            id.short(16),
            place.describe()
        )
    };
    match object::hash_stored_bytes(&bytes, place.encoding(), pack::PACKED_MAX) {
        Ok((_, n)) if n > pack::PACKED_MAX => Ok(None),
        Ok((actual, n)) if actual == id => Ok(Some(Ok((bytes, n)))),
        Ok((actual, _)) => Ok(Some(Err(corrupt(format!(
            "its content hashes to {}",
            actual.short(16)
        ))))),
        Err(err) => Ok(Some(Err(corrupt(format!("it cannot be decoded ({err})"))))),
    }
}

/// Fetches whole the remote's packs of which `missing` names at least half the bytes,
/// each checked object by object against its index and stored here as a pack as it is:
/// a clone reads and writes a few files, not a file per object. What they held is
/// taken out of `missing`; a pack that fails a check is left to the fetch of its
/// objects one by one, which names what is wrong.
pub fn fetch_whole_packs(
    reg: &Registry,
    remote: &dyn Remote,
    known: &Known,
    missing: &mut Vec<(ObjectId, u64)>,
    progress: &dyn Progress,
) -> Result<Moved> {
    let packs = known.remote_packs(remote)?;
    if packs.packs().is_empty() {
        return Ok(Moved::default());
    }
    let declared: BTreeMap<ObjectId, u64> = missing.iter().copied().collect();
    let mut needed = vec![0u64; packs.packs().len()];
    for id in declared.keys() {
        if let Some((at, stored)) = packs.place_of(*id) {
            needed[at] += stored;
        }
    }
    let wanted: Vec<&RemotePack> = packs
        .packs()
        .iter()
        .zip(&needed)
        .filter(|(p, needed)| **needed > 0 && needed.saturating_mul(2) >= p.len)
        .map(|(p, _)| p)
        .collect();
    if wanted.is_empty() {
        return Ok(Moved::default());
    }
    let total = wanted.iter().map(|p| p.len).sum();
    progress.start("fetch", total);
    let tick = |n: u64| progress.advance(n);
    let fetched = Mutex::new(Vec::new());
    let result = parallel(&wanted, PARALLEL, &|remote_pack| {
        if let Some(done) = fetch_pack(reg, remote, remote_pack, &declared, &tick)? {
            fetched.lock().expect("fetched packs").push(done);
        }
        Ok(())
    });
    progress.finish();
    result?;
    let fetched = fetched.into_inner().expect("fetched packs");
    let mut moved = Moved::default();
    let mut held: std::collections::HashSet<ObjectId> = std::collections::HashSet::new();
    let mut finished = Vec::with_capacity(fetched.len());
    for (done, remote_pack, index) in fetched {
        moved.bytes += remote_pack.len;
        for entry in &index.entries {
            held.insert(entry.id);
            known.insert(&keys::object(entry.id, entry.encoding))?;
        }
        finished.push(done);
    }
    pack::publish(reg.root(), finished)?;
    reg.packs().changed();
    let before = missing.len();
    missing.retain(|(id, _)| !held.contains(id));
    moved.objects = (before - missing.len()) as u64;
    Ok(moved)
}

/// A pack fetched whole, ready to publish, with the pack it came from and its index.
type FetchedPack<'p> = (pack::Finished, &'p RemotePack, PackIndex);

/// Downloads one of the remote's packs into a temp file, with its index read again,
/// and checks every object in it against its id (and its declared size, where
/// `declared` gives one); returns it ready to publish, or `None` when a check fails.
fn fetch_pack<'p>(
    reg: &Registry,
    remote: &dyn Remote,
    remote_pack: &'p RemotePack,
    declared: &BTreeMap<ObjectId, u64>,
    tick: &(dyn Fn(u64) + Sync),
) -> Result<Option<FetchedPack<'p>>> {
    let Some((index, index_bytes)) = read_index(remote, &remote_pack.name)? else {
        return Ok(None);
    };
    if index.pack_len != remote_pack.len {
        return Ok(None);
    }
    let temp = atomic::object_temp_file(&reg.tmp_dir())?;
    let Some(len) = remote.download(&remote_pack.key, temp.as_file(), 0, remote_pack.len, tick)?
    else {
        return Ok(None);
    };
    if len != remote_pack.len {
        return Ok(None);
    }
    let file = temp.as_file();
    let mut magic = [0u8; pack::MAGIC.len()];
    if file.read_exact_at(&mut magic, 0).is_err() || magic != pack::MAGIC {
        return Ok(None);
    }
    for entry in &index.entries {
        if declared
            .get(&entry.id)
            .is_some_and(|d| *d != 0 && *d != entry.size)
        {
            return Ok(None);
        }
        let mut bytes = vec![0u8; entry.stored as usize];
        file.read_exact_at(&mut bytes, entry.offset)
            .with_context(|| format!("reading {}", temp.path().display()))?;
        if object::verify_stored(&bytes, entry.encoding, entry.id).is_err() {
            return Ok(None);
        }
    }
    let mut index_file = atomic::object_temp_file(&reg.tmp_dir())?;
    std::io::Write::write_all(&mut index_file, &index_bytes)
        .with_context(|| format!("writing {}", index_file.path().display()))?;
    Ok(Some((
        pack::Finished {
            name: remote_pack.name.clone(),
            pack: temp.into_temp_path(),
            index: index_file.into_temp_path(),
            entries: index.entries.len(),
        },
        remote_pack,
        index,
    )))
}

/// Returns the uploads of packs written for a remote: the packs, and apart, their
/// indexes, to be sent once every pack is there.
pub fn uploads(known: &Known, packs: &[pack::Finished]) -> Result<(Vec<Upload>, Vec<Upload>)> {
    let journal_of = |key: &str| known.journal(ObjectId::of(key.as_bytes()));
    let mut bodies = Vec::with_capacity(packs.len());
    let mut indexes = Vec::with_capacity(packs.len());
    for done in packs {
        let (pack_key, index_key) = (pack::pack_key(&done.name), pack::index_key(&done.name));
        bodies.push(Upload {
            len: std::fs::metadata(&done.pack)?.len(),
            source: Source::Path(done.pack.to_path_buf()),
            journal: journal_of(&pack_key)?,
            key: pack_key,
        });
        indexes.push(Upload {
            len: std::fs::metadata(&done.index)?.len(),
            source: Source::Path(done.index.to_path_buf()),
            journal: journal_of(&index_key)?,
            key: index_key,
        });
    }
    Ok((bodies, indexes))
}
