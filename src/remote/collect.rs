//! Collecting a registry on a bucket (`mreg gc --registry s3://…`): the collector's
//! lease, every record fetched into the mirror before anything is decided, the
//! bucket's objects listed, and the garbage deleted in batches while the lease holds.
//!
//! `ops::gc` runs the steps in the same order as for a folder: [`Bucket::begin`], the
//! census of the mirror (`store::gc`), [`Bucket::stored`], [`Session::sweep`], and last
//! [`tidy_mirror`]. docs/lifecycle.md gives the argument that no object a record names
//! is deleted.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;

use super::lease::Held;
use super::mirror::Link;
use super::sync::{Options, Sync};
use super::{Remote, Swap};
use crate::error::Failure;
use crate::id::ObjectId;
use crate::store::gc::{self, Amounts, Census, Garbage, Stored};
use crate::store::pack::PackIndex;
use crate::store::{NoProgress, Registry, chunks, gclock, keys, pack};

/// The most keys one deletion request names: S3's `DeleteObjects` limit.
const BATCH: usize = 1000;

/// The bucket a mirror stands for, as `gc` and `du` act on it.
pub struct Bucket<'a> {
    link: &'a Link,
}

/// Returns the bucket `reg` mirrors, or `None` for a registry folder.
pub fn bucket_of(reg: &Registry) -> Option<Bucket<'_>> {
    reg.backend()
        .as_any()
        .downcast_ref::<Link>()
        .map(|link| Bucket { link })
}

/// Returns every object the registry stores, with its keys and stored bytes: the
/// bucket's, listed, for a mirror; the object folder's otherwise.
pub fn stored(reg: &Registry) -> Result<HashMap<ObjectId, Stored>> {
    match bucket_of(reg) {
        Some(bucket) => bucket.stored(),
        None => gc::stored_objects(reg),
    }
}

/// Adds the parts of the objects stored in parts to the census's sets (see
/// [`gc::add_parts`]), their lists read from the bucket a mirror stands for, or from the
/// object folder.
pub fn add_parts<S: std::hash::BuildHasher>(
    reg: &Registry,
    census: &mut gc::Census,
    stored: &HashMap<ObjectId, Stored, S>,
) -> Result<()> {
    match bucket_of(reg) {
        Some(bucket) => gc::add_parts(census, stored, &|key| bucket.read_list(reg, key)),
        None => gc::add_parts(census, stored, &|key| {
            chunks::ChunkList::read_if_present(&reg.path(key))
        }),
    }
}

/// A collection of a bucket under way: the collector's lease, held until dropped (none
/// for a dry run).
pub struct Session<'a> {
    bucket: &'a Bucket<'a>,
    lease: Option<Held>,
    /// The mirror's temp folder, where rewritten packs are made.
    tmp: std::path::PathBuf,
}

impl Bucket<'_> {
    /// Returns the bucket's URL.
    pub fn url(&self) -> &str {
        &self.link.url
    }

    /// Starts a collection: refuses a bucket that does not arbitrate writers, takes the
    /// collector's lease once no writer is left (not for a dry run), and fetches every
    /// record the bucket holds into the mirror. A record refused on the way fails the
    /// collection: what gc cannot read may name what it would delete.
    pub fn begin(&self, reg: &Registry, dry_run: bool, wait: Duration) -> Result<Session<'_>> {
        use crate::store::backend::Backend;
        let remote: &dyn Remote = &*self.link.remote;
        let lease = if dry_run {
            None
        } else {
            self.link.require_conditional_writes("collecting garbage")?;
            remote.collecting(wait, &|m| reg.notice(m))?
        };
        let bare = Registry::open(&reg.root().to_string_lossy())?;
        let report = Sync::new(
            &bare,
            remote,
            &self.link.known,
            Options::default(),
            &NoProgress,
        )
        .run()?;
        if let Some(item) = report.refused.first() {
            return Err(Failure::error(format!(
                "gc deleted nothing: {} on {} does not read ({}), and a record gc cannot read may name what it would delete",
                item.key,
                self.url(),
                item.message
            ))
            .hint("repair or remove that key on the bucket (`mreg clone` of the bucket and `mreg fsck` there name every problem), then run gc again")
            .into());
        }
        if let Some(conflict) = report.conflicts.first() {
            return Err(Failure::error(format!(
                "gc deleted nothing: the local mirror of {} disagrees with the bucket: {}",
                self.url(),
                conflict.message
            ))
            .hint(format!(
                "the mirror is a cache: delete {} and run gc again",
                reg.root().display()
            ))
            .into());
        }
        Ok(Session {
            bucket: self,
            lease,
            tmp: reg.tmp_dir(),
        })
    }

    /// Returns the bucket, spoken to directly.
    pub fn remote(&self) -> &dyn Remote {
        &*self.link.remote
    }

    /// Returns the chunk list at `key`: the mirror's copy when it has one, else the
    /// bucket's.
    pub fn read_list(&self, reg: &Registry, key: &str) -> Result<Option<chunks::ChunkList>> {
        if let Some(list) = chunks::ChunkList::read_if_present(&reg.path(key))? {
            return Ok(Some(list));
        }
        match self.link.remote.get(key)? {
            Some(fetched) => chunks::ChunkList::parse(&fetched.bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Returns every object the bucket stores, listed, with its keys and sizes, and
    /// those its packs hold, by their indexes (read afresh).
    pub fn stored(&self) -> Result<HashMap<ObjectId, Stored>> {
        let listed = self.link.remote.list(keys::OBJECTS)?;
        let mut stored = gc::stored_in_listing(
            listed
                .iter()
                .filter(|l| l.special.is_none())
                .map(|l| (l.key.as_str(), l.size)),
        );
        // Every copy of every packed object, an index at a time, up to the bound a
        // reader keeps (packs past it are left as they are).
        let mut entries = 0;
        super::packs::each_index(self.remote(), &mut |remote_pack, index| {
            entries += index.entries.len();
            if entries > pack::PACKED_OBJECTS_MAX {
                return Ok(());
            }
            for entry in &index.entries {
                let one = stored.entry(entry.id).or_default();
                one.packed.push((remote_pack.name.clone(), entry.stored));
                one.bytes += entry.stored;
            }
            Ok(())
        })?;
        Ok(stored)
    }

    /// Returns the keys and sizes of the bucket's packs that have no index: left by a
    /// writer stopped between sending a pack and its index.
    pub fn packs_without_index(&self) -> Result<Vec<(String, u64)>> {
        let listed = self.link.remote.list(keys::PACKS)?;
        let indexed: std::collections::HashSet<&str> = listed
            .iter()
            .filter_map(|l| pack::name_of_index(l.key.strip_prefix(keys::PACKS)?))
            .collect();
        Ok(listed
            .iter()
            .filter(|l| {
                l.key
                    .strip_prefix(keys::PACKS)
                    .and_then(pack::name_of_pack)
                    .is_some_and(|name| !indexed.contains(name))
            })
            .map(|l| (l.key.clone(), l.size))
            .collect())
    }
}

impl Session<'_> {
    /// Deletes the garbage's objects from the bucket, a batch at a time, each batch
    /// only while the lease holds; returns what went. `gc.epoch` gets a new mark first,
    /// so that every registry remembering the bucket's objects forgets them.
    pub fn sweep(&self, garbage: &Garbage) -> Result<Amounts> {
        let lease = self
            .lease
            .as_ref()
            .expect("only a collection that is no dry run sweeps");
        let remote: &dyn Remote = &*self.bucket.link.remote;
        let mut done: Amounts = Default::default();
        let items: Vec<(usize, &Stored)> = garbage
            .objects
            .iter()
            .enumerate()
            .flat_map(|(kind, list)| list.iter().map(move |(_, s)| (kind, s)))
            .collect();
        if items.is_empty() && garbage.packs.rewrite.is_empty() {
            self.delete_orphans(&mut done)?;
            return Ok(done);
        }
        lease.check()?;
        mark_epoch(remote)?;
        let mut batch: Vec<String> = Vec::new();
        let mut counted: Vec<(usize, u64)> = Vec::new();
        let mut flush = |batch: &mut Vec<String>, counted: &mut Vec<(usize, u64)>| -> Result<()> {
            lease.check()?;
            remote.delete_many(batch)?;
            // Checked again after: a gc stopped between its check and the request
            // (a machine asleep) sent it late, and a push made meanwhile may name what
            // it deleted. It cannot be undone; it is said.
            lease.check().map_err(|err| {
                err.context(format!(
                    "this gc's lease lapsed while it deleted {} objects; a push made meanwhile may name one of them: push its files again, or `mreg sync --recheck` from a registry holding them (fsck of a clone names any version missing objects)",
                    counted.len()
                ))
            })?;
            for (kind, bytes) in counted.drain(..) {
                done[kind].count += 1;
                done[kind].bytes += bytes;
            }
            batch.clear();
            crate::crash::point("gc-swept-some");
            Ok(())
        };
        for (kind, stored) in items {
            if batch.len() + stored.keys.len() > BATCH {
                flush(&mut batch, &mut counted)?;
            }
            batch.extend(stored.keys.iter().cloned());
            counted.push((kind, stored.bytes));
        }
        flush(&mut batch, &mut counted)?;
        self.rewrite_packs(&garbage.packs)?;
        self.delete_orphans(&mut done)?;
        Ok(done)
    }

    /// Deletes the bucket's packs without an index, counted with the temp files: no
    /// writer is sending one while the collector's lease holds.
    fn delete_orphans(&self, done: &mut Amounts) -> Result<()> {
        let orphans = self.bucket.packs_without_index()?;
        if orphans.is_empty() {
            return Ok(());
        }
        let lease = self.lease.as_ref().expect("only a real collection sweeps");
        lease.check()?;
        let keys: Vec<String> = orphans.iter().map(|(k, _)| k.clone()).collect();
        self.bucket.link.remote.delete_many(&keys)?;
        done[3].count += orphans.len() as u64;
        done[3].bytes += orphans.iter().map(|(_, b)| b).sum::<u64>();
        Ok(())
    }

    /// Rewrites the bucket's packs `plan` names: their live objects, each read by range
    /// and checked against its id, go to new packs, sent with their indexes before the
    /// old indexes and packs are deleted, so that every live object is in an indexed
    /// pack at every moment. A pack with a live object that does not match its id is
    /// left as it is.
    fn rewrite_packs(&self, plan: &gc::PackPlan) -> Result<()> {
        if plan.rewrite.is_empty() {
            return Ok(());
        }
        let lease = self
            .lease
            .as_ref()
            .expect("only a real collection rewrites");
        let remote: &dyn Remote = &*self.bucket.link.remote;
        let mut by_name: HashMap<&str, PackIndex> = HashMap::new();
        for name in &plan.rewrite {
            if let Some((index, _)) = super::packs::read_index(remote, name)? {
                by_name.insert(name.as_str(), index);
            }
        }
        let mut damaged: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut first_damage = None;
        let mut writer: Option<pack::PackWriter> = None;
        let mut done = Vec::new();
        for (id, name) in &plan.keep {
            let Some(entry) = by_name.get(name.as_str()).and_then(|index| index.find(*id)) else {
                damaged.insert(name.as_str());
                continue;
            };
            let bytes = remote.read_range(&pack::pack_key(name), entry.offset, entry.stored)?;
            let Some(bytes) = bytes.filter(|b| {
                crate::store::object::verify_stored(b, entry.encoding, entry.id).is_ok()
            }) else {
                damaged.insert(name.as_str());
                first_damage.get_or_insert((name.as_str(), entry.id));
                continue;
            };
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(pack::PackWriter::new(&self.tmp)?),
            };
            w.add(entry.id, entry.encoding, entry.size, &bytes)?;
            if w.len() >= pack::PACK_TARGET {
                let full = writer.take().expect("a pack is being filled");
                done.push(full.finish(&self.tmp)?);
            }
        }
        if let Some(w) = writer.filter(|w| !w.is_empty()) {
            done.push(w.finish(&self.tmp)?);
        }
        // A pack that could not be read whole keeps its objects where they are; the
        // copies made of its others are harmless, and the next gc collects them.
        let new: std::collections::HashSet<String> = done.iter().map(|d| d.name.clone()).collect();
        for finished in &done {
            for (path, key) in [
                (&finished.pack, pack::pack_key(&finished.name)),
                (&finished.index, pack::index_key(&finished.name)),
            ] {
                lease.check()?;
                let file = std::fs::File::open(path)?;
                let len = file.metadata()?.len();
                let journal = self.tmp.join(format!("journal-{}", finished.name));
                remote.upload(&key, &file, len, journal, &|_| {})?;
            }
        }
        crate::crash::point("gc-repacked");
        let mut old = Vec::new();
        for name in &plan.rewrite {
            if damaged.contains(name.as_str()) || new.contains(name) {
                continue;
            }
            old.push(pack::index_key(name));
            old.push(pack::pack_key(name));
        }
        lease.check()?;
        remote.delete_many(&old)?;
        self.bucket.link.known.forget_packs();
        match first_damage {
            Some((name, id)) => Err(gc::damaged_pack(name, id)),
            None => Ok(()),
        }
    }
}

/// Writes a new mark to the bucket's `gc.epoch`, compare-and-swap.
fn mark_epoch(remote: &dyn Remote) -> Result<()> {
    let mark = format!("{}\n", crate::store::registry::new_registry_id());
    let current = remote.get(keys::GC_EPOCH)?;
    match remote.swap(
        keys::GC_EPOCH,
        current.as_ref().map(|f| f.tag.as_str()),
        mark.as_bytes(),
    )? {
        Swap::Done(()) => Ok(()),
        Swap::Moved => Err(Failure::conflict(format!(
            "{} on {} changed while this gc held the bucket's lease, so gc deleted nothing",
            keys::GC_EPOCH,
            remote.url()
        ))
        .hint(
            "another gc may be running without respecting the lease (an older mreg?); run gc again",
        )
        .into()),
    }
}

/// Deletes the mirror's own copies of objects no record reaches, and its abandoned
/// temp files, when no command is writing through the mirror (else leaves them for the
/// next `gc`): the mirror is a cache, and this keeps it from growing with removed
/// versions. `census` is the bucket's, read into the mirror.
pub fn tidy_mirror(reg: &Registry, census: &Census) -> Result<()> {
    let Ok(_alone) = gclock::collecting(reg.root(), Duration::ZERO, &|_| {}) else {
        return Ok(());
    };
    let garbage = gc::garbage(reg, census, gc::stored_objects(reg)?);
    gc::sweep(reg, &garbage).map(drop)
}
