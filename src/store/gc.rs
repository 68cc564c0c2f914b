//! Garbage collection of a registry folder: what its records reach, what its object
//! folder holds, and the deletion of the difference.
//!
//! [`census`] reads every record: each version not removed (its whole tree), the
//! versions every model's stages hold (removed or not), and every run's record and
//! events (series stored as objects, data inputs stored with `--store-data`). Any record
//! that cannot be read, parsed or walked fails the census, naming it: what a reader
//! cannot see it cannot vouch for, so nothing is deleted. Removed versions are walked
//! too, where their trees still read, only to tell what their removal frees from what
//! nothing ever named.
//!
//! The census and the sweep run under the exclusive gc lock ([`super::gclock`]), so no
//! writer can name an object between the two; docs/lifecycle.md gives the argument.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::chunks;
use super::object::Encoding;
use super::walk::{self, Graph};
use super::{ObjectId, Registry, TreeId, keys, models, pack, read, removals, runs, stages, tmp};
use crate::manifest::StageState;
use crate::manifest::state::Action;

/// Who reaches an object: a model's surviving versions, or the runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// The versions of this model that were not removed, and those its stages hold.
    Model(String),
    /// Every run: series and stored data inputs.
    Runs,
}

/// What the records of a registry reach.
#[derive(Debug, Default)]
pub struct Census {
    /// Objects each owner reaches.
    pub owners: BTreeMap<Owner, HashSet<ObjectId>>,
    /// Objects removed versions reach (where their trees still read) and no owner does.
    pub removed_only: HashSet<ObjectId>,
    /// Objects removed runs name (where their files still read) and no owner reaches.
    pub removed_runs_only: HashSet<ObjectId>,
    /// Removal states whose removal records a kill left unwritten, with their ids.
    pub pending: Vec<(crate::id::StateId, StageState)>,
    /// Records read.
    pub records: u64,
}

impl Census {
    /// Returns every object some owner reaches.
    pub fn reachable(&self) -> HashSet<ObjectId> {
        let mut out = HashSet::new();
        for set in self.owners.values() {
            out.extend(set.iter().copied());
        }
        out
    }
}

/// Versions and runs a census counts as removed though they are not yet: what a dry
/// run of `gc --policy` would find once the policy's removals are written.
#[derive(Debug, Default, Clone)]
pub struct AsIf {
    /// Versions, by model.
    pub versions: BTreeMap<String, std::collections::BTreeSet<u64>>,
    /// Runs.
    pub runs: std::collections::BTreeSet<crate::id::RunId>,
}

/// Reads every record of the registry and returns what they reach; fails, naming the
/// record, when one cannot be read.
pub fn census(reg: &Registry) -> Result<Census> {
    census_as_if(reg, &AsIf::default())
}

/// Returns the census [`census`] would return had `as_if`'s versions and runs been
/// removed.
pub fn census_as_if(reg: &Registry, as_if: &AsIf) -> Result<Census> {
    let mut census = Census::default();
    let mut graphs: HashMap<TreeId, Vec<ObjectId>> = HashMap::new();
    let mut removed_trees: Vec<TreeId> = Vec::new();
    // Runs surviving versions came from: kept whole, even when removed (removals that
    // crossed in two registries' syncs), as the evidence of those versions.
    let mut runs_in_use: HashSet<crate::id::RunId> = HashSet::new();
    for model in models::list_models(reg)? {
        let mut removed = removals::list(reg, &model)?;
        census.records += removed.len() as u64;
        let chain = stages::chain(reg, &model, None)
            .with_context(|| format!("reading the stage history of {model}"))?;
        census.records += chain.len() as u64;
        let held: Vec<u64> = chain
            .first()
            .map(|(_, s)| s.stages.values().copied().collect())
            .unwrap_or_default();
        for (id, state) in &chain {
            if state.action == Action::Remove
                && state.removed.iter().any(|n| !removed.contains_key(n))
            {
                census.pending.push((id.clone(), state.clone()));
            }
        }
        let pending: HashSet<u64> = census
            .pending
            .iter()
            .filter(|(_, s)| s.model == model)
            .flat_map(|(_, s)| s.removed.iter().copied())
            .collect();
        let mut reached = HashSet::new();
        for n in models::list_versions(reg, &model)? {
            let record = models::load_version(reg, &model, n)?;
            census.records += 1;
            let removal = removed.remove(&n);
            if let Some(removal) = &removal {
                removals::check_applies(removal, &record)?;
            }
            let gone = removal.is_some()
                || pending.contains(&n)
                || as_if.versions.get(&model).is_some_and(|s| s.contains(&n));
            if !gone && let Some(run) = &record.run {
                runs_in_use.insert(run.clone());
            }
            if gone && !held.contains(&n) {
                removed_trees.push(record.tree);
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = graphs.entry(record.tree) {
                let graph = models::graph(reg, &record)
                    .context(format!(
                        "{model}@{n} is kept and its files cannot all be read, so what it needs is unknown (gc deletes nothing until this is fixed)"
                    ))?;
                slot.insert(ids(&graph));
            }
            reached.extend(graphs[&record.tree].iter().copied());
        }
        census.owners.insert(Owner::Model(model), reached);
    }
    let mut reached = HashSet::new();
    let mut removed_runs = Vec::new();
    for id in runs::list_folders(reg)? {
        let removed = removals::of_run(reg, &id)?.is_some() || as_if.runs.contains(&id);
        if removed && !runs_in_use.contains(&id) {
            census.records += 1;
            removed_runs.push(id);
            continue;
        }
        for (key, bytes) in run_files(reg, &id)? {
            census.records += 1;
            let named = runs::run_objects(&key, &bytes, &|t| read::read_tree(reg, t))
                .with_context(|| format!("reading what {} names", reg.path(&key).display()))?;
            reached.extend(named.into_iter().map(|(o, _)| o));
        }
    }
    census.owners.insert(Owner::Runs, reached);
    let reachable = census.reachable();
    for id in removed_runs {
        // Best effort: only to tell what a run's removal frees from what nothing named.
        for (key, bytes) in run_files(reg, &id).unwrap_or_default() {
            let named = runs::run_objects(&key, &bytes, &|t| read::read_tree(reg, t));
            census.removed_runs_only.extend(
                named
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(o, _)| o)
                    .filter(|o| !reachable.contains(o)),
            );
        }
    }
    for tree in removed_trees {
        let objects = match graphs.get(&tree) {
            Some(objects) => objects.clone(),
            // Best effort: a removed version's tree may already be gone.
            None => walk::load(tree, &walk::LIMITS, &mut |t| read::read_tree(reg, t))
                .map(|g| ids(&g))
                .unwrap_or_default(),
        };
        census
            .removed_only
            .extend(objects.into_iter().filter(|o| !reachable.contains(o)));
    }
    Ok(census)
}

/// Adds to each of the census's sets the parts of the objects in it that `stored` holds
/// in parts, their lists read with `read_list` (given the list's key). A list an owner
/// reaches that cannot be read fails the census, naming it: gc cannot tell which parts
/// it keeps. Those of removed objects are added where they read.
pub fn add_parts<S: std::hash::BuildHasher>(
    census: &mut Census,
    stored: &HashMap<ObjectId, Stored, S>,
    read_list: &dyn Fn(&str) -> Result<Option<chunks::ChunkList>>,
) -> Result<()> {
    let mut read: HashMap<ObjectId, Vec<ObjectId>> = HashMap::new();
    let mut expand = |set: &mut HashSet<ObjectId>, strict: bool| -> Result<()> {
        let mut more = Vec::new();
        for id in set.iter() {
            let listed = stored.get(id).and_then(|s| {
                s.keys
                    .iter()
                    .find(|k| k.ends_with(Encoding::Chunked.suffix()))
                    .cloned()
            });
            // An object not stored at all may have a list that is no file (a FIFO
            // planted there): what cannot be read cannot be vouched for.
            let key = match (listed, stored.contains_key(id)) {
                (Some(key), _) => key,
                (None, false) => keys::object(*id, Encoding::Chunked),
                (None, true) => continue,
            };
            if !read.contains_key(id) {
                match read_list(&key) {
                    Ok(Some(list)) => {
                        read.insert(*id, list.parts.iter().map(|(p, _)| *p).collect());
                    }
                    Err(err) if strict => {
                        return Err(err.context(format!(
                            "reading the chunk list {key}, which names parts a version or run needs"
                        )));
                    }
                    // Nothing there, or a removed version's list that does not read.
                    Ok(None) | Err(_) => continue,
                }
            }
            more.extend(read[id].iter().copied());
        }
        set.extend(more);
        Ok(())
    };
    for set in census.owners.values_mut() {
        expand(set, true)?;
    }
    expand(&mut census.removed_only, false)?;
    expand(&mut census.removed_runs_only, false)?;
    Ok(())
}

/// Returns the object ids of a graph.
fn ids(graph: &Graph) -> Vec<ObjectId> {
    graph.objects().into_iter().map(|(o, _)| o).collect()
}

/// Returns a run's record (when it has one) and events, as (key, bytes).
fn run_files(reg: &Registry, id: &crate::id::RunId) -> Result<Vec<(String, Vec<u8>)>> {
    let mut keys_of = Vec::new();
    if fs::symlink_metadata(runs::record_path(reg, id)).is_ok() {
        keys_of.push(keys::run_record(id));
    }
    for name in runs::event_names(reg, id)? {
        keys_of.push(keys::run_event(id, &name));
    }
    let mut out = Vec::with_capacity(keys_of.len());
    for key in keys_of {
        let bytes = reg
            .read_record(&key)
            .and_then(|b| b.ok_or_else(|| anyhow::anyhow!("it is missing")))
            .with_context(|| format!("reading {}", reg.path(&key).display()))?;
        out.push((key, bytes));
    }
    Ok(out)
}

/// One stored object: its keys (raw, zstd or both), the packs holding it, and their
/// bytes as stored.
#[derive(Debug, Default, Clone)]
pub struct Stored {
    /// Its keys ([`keys::object`]).
    pub keys: Vec<String>,
    /// The packs holding it, by name, with the bytes it occupies in each.
    pub packed: Vec<(String, u64)>,
    /// Their bytes as stored, together.
    pub bytes: u64,
}

/// A pack is rewritten once what records reach of it falls below this share of its
/// bytes: its live objects go to a new pack, and it is deleted.
pub const REPACK_BELOW: f64 = 0.5;

/// Packs holding less than this are small: once there are [`MERGE_AT`] of them, `gc`
/// merges them.
pub const MERGE_BELOW: u64 = pack::PACK_TARGET / 2;

/// How many small packs `gc` lets stand before it merges them.
pub const MERGE_AT: usize = 8;

/// What `gc` does with the packs: deletes those holding nothing live, rewrites those
/// whose live share fell below [`REPACK_BELOW`], and merges small ones once there are
/// [`MERGE_AT`] of them.
#[derive(Debug, Default)]
pub struct PackPlan {
    /// Packs to delete, their live objects (if any) written to new packs first.
    pub rewrite: Vec<String>,
    /// The live objects to write to new packs, with the pack each is read from.
    pub keep: Vec<(ObjectId, String)>,
}

/// Returns the object a key names, when it is named exactly as a writer names it
/// (`objects/ab/<62 lowercase hex>`, or the same with `.zst`): the only keys `gc`
/// ever deletes.
pub fn object_of_key(key: &str) -> Option<ObjectId> {
    let rest = key.strip_prefix(keys::OBJECTS)?;
    let (prefix, name) = rest.split_once('/')?;
    let (hex, encoding) = Encoding::of_name(name);
    if prefix.len() != 2 {
        return None;
    }
    let id = format!("{prefix}{hex}").parse::<ObjectId>().ok()?;
    (keys::object(id, encoding) == key).then_some(id)
}

/// Returns the objects of a listing of keys and sizes (a bucket's `objects/`), as
/// [`stored_objects`] does for a folder; keys not named as a writer names objects are
/// left out.
pub fn stored_in_listing<'a>(
    listing: impl Iterator<Item = (&'a str, u64)>,
) -> HashMap<ObjectId, Stored> {
    let mut out: HashMap<ObjectId, Stored> = HashMap::new();
    for (key, size) in listing {
        if let Some(id) = object_of_key(key) {
            let stored = out.entry(id).or_default();
            stored.keys.push(key.to_owned());
            stored.bytes += size;
        }
    }
    out
}

/// Returns every object the object folder holds, with its files and stored bytes.
/// Entries that are not objects (another name, a link, a folder) are left out: `fsck`
/// reports them, and `gc` never touches them.
pub fn stored_objects(reg: &Registry) -> Result<HashMap<ObjectId, Stored>> {
    let dir = reg.objects_dir();
    let mut out: HashMap<ObjectId, Stored> = HashMap::new();
    add_packed(reg, &mut out)?;
    let fans = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
    };
    for fan in fans {
        let fan = fan.with_context(|| format!("listing {}", dir.display()))?;
        let Some(prefix) = fan.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if prefix.len() != 2 || !fan.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let fan_dir = fan.path();
        let entries =
            fs::read_dir(&fan_dir).with_context(|| format!("listing {}", fan_dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", fan_dir.display()))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let key = format!("{}{prefix}/{name}", keys::OBJECTS);
            let Some(id) = object_of_key(&key) else {
                continue;
            };
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let stored = out.entry(id).or_default();
            stored.keys.push(key);
            stored.bytes += meta.len();
        }
    }
    Ok(out)
}

/// Adds the objects of the registry's packs, by their indexes, up to
/// [`pack::PACKED_OBJECTS_MAX`] of them. A pack whose index does not read, or whose
/// pack is missing or of another length, is left out: `gc` never touches it, and
/// `fsck` reports it.
fn add_packed(reg: &Registry, out: &mut HashMap<ObjectId, Stored>) -> Result<()> {
    let mut entries = 0;
    for name in pack::names(reg.root())? {
        let Ok(Some(index)) = pack::read_index(reg.root(), &name) else {
            continue;
        };
        if pack::open(reg.root(), &name, &index).is_err() {
            continue;
        }
        // Past the bound a reader keeps, packs are left as they are.
        entries += index.entries.len();
        if entries > pack::PACKED_OBJECTS_MAX {
            break;
        }
        for entry in index.entries {
            let stored = out.entry(entry.id).or_default();
            stored.packed.push((name.clone(), entry.stored));
            stored.bytes += entry.stored;
        }
    }
    Ok(())
}

/// Decides what happens to each pack, given what the census reaches: an object in
/// several packs lives in the one with the most live bytes (then the largest live
/// share, then the first by name), so copies left by a rewrite or merge a kill
/// interrupted become garbage. A pack with
/// nothing live is deleted, one whose live share is below [`REPACK_BELOW`] rewritten.
pub fn plan_packs<S: std::hash::BuildHasher, T: std::hash::BuildHasher>(
    reachable: &HashSet<ObjectId, T>,
    stored: &HashMap<ObjectId, Stored, S>,
) -> PackPlan {
    // Each pack's total and live bytes.
    let mut packs: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (id, s) in stored {
        for (name, bytes) in &s.packed {
            let totals = packs.entry(name.as_str()).or_default();
            totals.0 += bytes;
            if reachable.contains(id) {
                totals.1 += bytes;
            }
        }
    }
    let share = |name: &str| {
        let (total, live) = packs[name];
        if total == 0 {
            0.0
        } else {
            live as f64 / total as f64
        }
    };
    // The pack with more live bytes owns a shared object: copies in small packs (a
    // merge or a rewrite a kill interrupted) then own nothing, and go.
    let mut order: Vec<&str> = packs.keys().copied().collect();
    order.sort_by(|a, b| {
        packs[b]
            .1
            .cmp(&packs[a].1)
            .then(share(b).total_cmp(&share(a)))
            .then(a.cmp(b))
    });
    let rank: HashMap<&str, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    // The bytes each pack owns: of its live objects, those no better pack holds.
    let mut owned: HashMap<&str, u64> = HashMap::new();
    let mut owning_pack: HashMap<ObjectId, &str> = HashMap::new();
    for (id, s) in stored {
        if !reachable.contains(id) {
            continue;
        }
        if let Some((name, bytes)) = s.packed.iter().min_by_key(|(n, _)| rank[n.as_str()]) {
            *owned.entry(name.as_str()).or_default() += bytes;
            owning_pack.insert(*id, name.as_str());
        }
    }
    let mut plan = PackPlan::default();
    let mut small = Vec::new();
    for (name, (total, _)) in &packs {
        let live = owned.get(name).copied().unwrap_or(0);
        if (live as f64) < REPACK_BELOW * (*total as f64) {
            plan.rewrite.push((*name).to_owned());
        } else if *total < MERGE_BELOW {
            small.push((*name).to_owned());
        }
    }
    // Many small packs (a push each) are merged into few, so their number stays small
    // however many pushes a registry takes.
    if small.len() >= MERGE_AT {
        plan.rewrite.extend(small);
    }
    let rewritten: HashSet<&str> = plan.rewrite.iter().map(String::as_str).collect();
    for (id, name) in owning_pack {
        if rewritten.contains(name) {
            plan.keep.push((id, name.to_owned()));
        }
    }
    plan.keep.sort();
    plan
}

/// What a kind of garbage amounts to.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq, Eq)]
pub struct Amount {
    /// Objects (or, for temp files, entries of `tmp/`).
    pub count: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

/// The kinds of garbage, in the order [`Garbage::amounts`] gives them:
/// `removed-versions`, objects only removed versions reached; `removed-runs`, objects
/// only removed runs named (series, stored data); `unreferenced`, objects no record
/// names at all (a push or sync that was interrupted); `temp-files`, entries of `tmp/`
/// whose process is gone.
pub const KINDS: [&str; 4] = [
    "removed-versions",
    "removed-runs",
    "unreferenced",
    "temp-files",
];

/// The amounts of each kind of garbage, in the order of [`KINDS`].
pub type Amounts = [Amount; 4];

/// What a collection finds to delete, by kind.
#[derive(Debug, Default)]
pub struct Garbage {
    /// Objects, by the first three of [`KINDS`]: their files, and their copies in the
    /// packs `packs` rewrites (copies in packs it keeps stay, until those fall below
    /// [`REPACK_BELOW`]).
    pub objects: [Vec<(ObjectId, Stored)>; 3],
    /// Entries of `tmp/` left by processes that are gone, and packs without an index
    /// (left by a writer killed before it published one), with their bytes.
    pub temp: Vec<(PathBuf, u64)>,
    /// The packs to delete or rewrite.
    pub packs: PackPlan,
}

impl Garbage {
    /// Returns the amount of each kind, in the order of [`KINDS`].
    pub fn amounts(&self) -> Amounts {
        let of = |items: &[(ObjectId, Stored)]| Amount {
            count: items.len() as u64,
            bytes: items.iter().map(|(_, s)| s.bytes).sum(),
        };
        [
            of(&self.objects[0]),
            of(&self.objects[1]),
            of(&self.objects[2]),
            Amount {
                count: self.temp.len() as u64,
                bytes: self.temp.iter().map(|(_, b)| b).sum(),
            },
        ]
    }

    /// Returns whether any object is garbage.
    pub fn has_objects(&self) -> bool {
        self.objects.iter().any(|o| !o.is_empty())
    }
}

/// Returns what is garbage: stored objects the census does not reach, and temp files
/// of processes that are gone.
pub fn garbage<S: std::hash::BuildHasher>(
    reg: &Registry,
    census: &Census,
    stored: HashMap<ObjectId, Stored, S>,
) -> Garbage {
    let mut out = classify(census, stored);
    out.temp = tmp::abandoned(&reg.path(keys::TMP))
        .into_iter()
        .chain(super::check::packs_without_index(reg))
        .map(|path| {
            let bytes = bytes_below(&path);
            (path, bytes)
        })
        .collect();
    out
}

/// Returns the stored objects the census does not reach, by kind, sorted.
pub fn classify<S: std::hash::BuildHasher>(
    census: &Census,
    stored: HashMap<ObjectId, Stored, S>,
) -> Garbage {
    let reachable = census.reachable();
    let mut out = Garbage {
        packs: plan_packs(&reachable, &stored),
        ..Garbage::default()
    };
    let rewritten: HashSet<&str> = out.packs.rewrite.iter().map(String::as_str).collect();
    for (id, mut files) in stored {
        if reachable.contains(&id) {
            continue;
        }
        // Only the copies in rewritten packs go now.
        let (going, staying): (Vec<_>, Vec<_>) = files
            .packed
            .into_iter()
            .partition(|(name, _)| rewritten.contains(name.as_str()));
        files.bytes -= staying.iter().map(|(_, b)| b).sum::<u64>();
        files.packed = going;
        if files.keys.is_empty() && files.packed.is_empty() {
            continue;
        }
        let kind = if census.removed_only.contains(&id) {
            0
        } else if census.removed_runs_only.contains(&id) {
            1
        } else {
            2
        };
        out.objects[kind].push((id, files));
    }
    for kind in &mut out.objects {
        kind.sort_by_key(|(id, _)| *id);
    }
    out
}

/// Returns the amount of the stored objects the census reaches: what gc keeps.
pub fn kept<S: std::hash::BuildHasher>(
    census: &Census,
    stored: &HashMap<ObjectId, Stored, S>,
) -> Amount {
    let reachable = census.reachable();
    stored.iter().filter(|(id, _)| reachable.contains(id)).fold(
        Amount::default(),
        |mut a, (_, s)| {
            a.count += 1;
            a.bytes += s.bytes;
            a
        },
    )
}

/// What one collection did (or, in a dry run, would do): the outcome's numbers.
#[derive(Debug, Default)]
pub struct Collection {
    /// Removals a kill had left unfinished, finished now (or that would be).
    pub finished_removals: Vec<String>,
    /// Records read.
    pub records: u64,
    /// What stays.
    pub kept: Amount,
    /// What went, by kind, in the order of [`KINDS`].
    pub amounts: Amounts,
}

/// Returns the removals a kill left unfinished, as `NAME@N`.
pub fn unfinished(census: &Census) -> Vec<String> {
    census
        .pending
        .iter()
        .flat_map(|(_, s)| s.removed.iter().map(|n| format!("{}@{n}", s.model)))
        .collect()
}

/// Returns the bytes of the files at and below `path`, never following a link.
fn bytes_below(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path).map_or(0, |entries| {
        entries.flatten().map(|e| bytes_below(&e.path())).sum()
    })
}

/// Rewrites the packs `plan` names: their live objects, each checked against its id,
/// go to new packs, published before the old ones are deleted (index first), so that
/// every live object is in a durable, indexed pack at every moment. A pack holding a
/// live object that does not match its id is left as it is, for `fsck` to report.
fn repack(reg: &Registry, plan: &PackPlan) -> Result<()> {
    rewrite_packs(reg, plan, false).map(drop)
}

/// Rewrites the packs `plan` names as [`repack`] does; with `drop_damaged`, an object
/// that does not match its id is left out of the new pack rather than keeping its
/// pack as it is. Returns the objects left out.
fn rewrite_packs(reg: &Registry, plan: &PackPlan, drop_damaged: bool) -> Result<Vec<ObjectId>> {
    if plan.rewrite.is_empty() {
        return Ok(Vec::new());
    }
    let mut dropped = Vec::new();
    let mut opened: HashMap<&str, (pack::PackIndex, std::sync::Arc<pack::PackFile>)> =
        HashMap::new();
    for name in &plan.rewrite {
        let index = pack::read_index(reg.root(), name)?
            .with_context(|| format!("the index of pack {name} vanished during gc"))?;
        let file = pack::open(reg.root(), name, &index)?;
        opened.insert(name.as_str(), (index, file));
    }
    let mut damaged: HashSet<&str> = HashSet::new();
    let mut first_damage = None;
    let mut bodies: Vec<(pack::Entry, Vec<u8>, &str)> = Vec::with_capacity(plan.keep.len());
    for (id, name) in &plan.keep {
        let Some((index, file)) = opened.get(name.as_str()) else {
            continue;
        };
        let Some(entry) = index.find(*id).copied() else {
            continue;
        };
        let packed = pack::Packed {
            pack: std::sync::Arc::clone(file),
            entry,
            among: None,
        };
        let bytes = packed.read_stored()?;
        if super::object::verify_stored(&bytes, entry.encoding, entry.id).is_err() {
            if drop_damaged {
                dropped.push(entry.id);
            } else {
                damaged.insert(name.as_str());
                first_damage.get_or_insert((name.as_str(), entry.id));
            }
            continue;
        }
        bodies.push((entry, bytes, name.as_str()));
    }
    let mut done = Vec::new();
    let mut writer: Option<pack::PackWriter> = None;
    for (entry, bytes, name) in bodies {
        if damaged.contains(name) {
            continue;
        }
        let w = match &mut writer {
            Some(w) => w,
            None => writer.insert(pack::PackWriter::new(&reg.tmp_dir())?),
        };
        w.add(entry.id, entry.encoding, entry.size, &bytes)?;
        if w.len() >= pack::PACK_TARGET {
            let full = writer.take().expect("a pack is being filled");
            done.push(full.finish(&reg.tmp_dir())?);
        }
    }
    if let Some(w) = writer.filter(|w| !w.is_empty()) {
        done.push(w.finish(&reg.tmp_dir())?);
    }
    let new: HashSet<String> = done.iter().map(|d| d.name.clone()).collect();
    pack::publish(reg.root(), done)?;
    crate::crash::point("gc-repacked");
    for name in &plan.rewrite {
        if damaged.contains(name.as_str()) || new.contains(name) {
            continue;
        }
        for key in [pack::index_key(name), pack::pack_key(name)] {
            match fs::remove_file(reg.path(&key)) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(err).with_context(|| format!("deleting {key}"));
                }
                _ => {}
            }
        }
    }
    reg.packs().changed();
    match first_damage {
        Some((name, id)) => Err(damaged_pack(name, id)),
        None => Ok(dropped),
    }
}

/// Takes every object that does not match its id out of its pack: each pack holding
/// one is rewritten without it (its other objects checked and kept), so that it counts
/// as missing, to be stored again by a push of its folder or a sync, while the rest of
/// the pack stays. Returns the objects taken out. The caller holds the gc lock.
pub fn repair_packs(reg: &Registry) -> Result<Vec<ObjectId>> {
    let mut plan = PackPlan::default();
    for name in pack::names(reg.root())? {
        let Some(index) = pack::read_index(reg.root(), &name)? else {
            continue;
        };
        let file = pack::open(reg.root(), &name, &index)?;
        let mut any = false;
        for entry in &index.entries {
            let packed = pack::Packed {
                pack: std::sync::Arc::clone(&file),
                entry: *entry,
                among: None,
            };
            let bytes = packed.read_stored()?;
            if super::object::verify_stored(&bytes, entry.encoding, entry.id).is_err() {
                any = true;
            }
        }
        if any {
            plan.keep
                .extend(index.entries.iter().map(|e| (e.id, name.clone())));
            plan.rewrite.push(name);
        }
    }
    rewrite_packs(reg, &plan, true)
}

/// Returns the failure of a `gc` that left a pack as it was because a live object in
/// it does not match its id.
pub fn damaged_pack(name: &str, id: ObjectId) -> anyhow::Error {
    crate::error::Failure::error(format!(
        "gc left the pack {} as it was: object {} in it, which a version or run needs, does not match its id; the rest was collected",
        &name[..16],
        id.short(16)
    ))
    .hint(
        "`mreg fsck --repair` takes it out of its pack (the others stay); then push its folder again or `mreg sync NAME --recheck` from a registry holding it",
    )
    .into()
}

/// Deletes the garbage's objects and temp files; returns what went. An object whose
/// file is already gone counts as deleted, so a second `gc` after a killed one
/// finishes the work. Before the first object goes, `gc.epoch` gets a new mark, so
/// that registries remembering what this one holds forget it ([`keys::GC_EPOCH`]).
pub fn sweep(reg: &Registry, garbage: &Garbage) -> Result<Amounts> {
    let mut done: Amounts = Default::default();
    if garbage.has_objects() {
        super::atomic::replace(
            &reg.tmp_dir(),
            &reg.path(keys::GC_EPOCH),
            format!("{}\n", super::registry::new_registry_id()).as_bytes(),
        )?;
    }
    for (kind, items) in garbage.objects.iter().enumerate() {
        for (id, stored) in items {
            for key in &stored.keys {
                let path = reg.path(key);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => {
                        return Err(err).with_context(|| {
                            format!("deleting object {} at {}", id.short(12), path.display())
                        });
                    }
                }
            }
            done[kind].count += 1;
            done[kind].bytes += stored.bytes;
            if done[..3].iter().map(|a| a.count).sum::<u64>() == 1 {
                crate::crash::point("gc-swept-some");
            }
        }
    }
    repack(reg, &garbage.packs)?;
    tmp::reclaim(&reg.path(keys::TMP));
    for orphan in super::check::packs_without_index(reg) {
        if garbage.temp.iter().any(|(path, _)| *path == orphan) {
            fs::remove_file(&orphan).with_context(|| format!("deleting {}", orphan.display()))?;
        }
    }
    let mut left: HashSet<PathBuf> = tmp::abandoned(&reg.path(keys::TMP)).into_iter().collect();
    left.extend(super::check::packs_without_index(reg));
    for (path, bytes) in &garbage.temp {
        if !left.contains(path) {
            done[3].count += 1;
            done[3].bytes += bytes;
        }
    }
    Ok(done)
}
