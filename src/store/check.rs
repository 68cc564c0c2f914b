//! Checking a registry: every object re-hashed, every manifest parsed (config,
//! version records, stage states, run records and events), every version's tree walked,
//! every stage chain followed from `HEAD`, and every object a series or version names
//! found intact, with each problem named by its path.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::Serialize;

use super::object::{self, Encoding, Place};
use super::tree::{self, Kind, Tree};
use super::walk::Graph;
use super::{
    Progress, Registry, chunks, gc, keys, lock, models, pack, read, removals, runs, stages,
};
use crate::id::{ObjectId, RunId};
use crate::manifest::series::Series;
use crate::manifest::{RunEvent, VersionRecord};

/// Returns one thing found wrong.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// The file at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

/// Returns what a check looked at and found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Objects re-hashed.
    pub objects: u64,
    /// Their content bytes.
    pub bytes: u64,
    /// Manifests parsed (config, version records, stage states, run records and events).
    pub manifests: u64,
    /// Problems, in path order.
    pub problems: Vec<Problem>,
    /// Temp files left by interrupted commands, harmless and safe to delete.
    pub leftovers: Vec<PathBuf>,
    /// Versions whose removal a kill left unfinished (recorded in the history, without
    /// its removal record yet): the next stage move of the model or `gc` finishes it.
    pub unfinished_removals: Vec<String>,
    /// Removed runs that surviving versions came from (removals that crossed in two
    /// registries' syncs), as `RUN (NAME@N, …)`: `gc` keeps what they stored.
    pub removed_runs_in_use: Vec<String>,
    /// What `gc` would free: objects no surviving version, stage or run reaches, and
    /// temp files of processes that are gone. A note, not a problem; `None` when a
    /// record does not read (a problem then says which).
    pub reclaimable: Option<gc::Amount>,
}

/// Checks the whole registry.
pub fn check(reg: &Registry, progress: &dyn Progress) -> Result<Report> {
    let mut problems = Vec::new();
    special_entries(reg, &mut problems);
    let stored = list_objects(reg, &mut problems)?;
    let mut manifests = 1;
    if let Err(err) = reg.config() {
        problems.push(Problem {
            path: reg.path(keys::CONFIG),
            message: format!("{err:#}"),
        });
    }
    // Versions first: their trees declare the size of every file, which bounds how
    // far the re-hash of an object may read or inflate.
    let versions = load_versions(reg, &mut problems)?;
    manifests += versions.len() as u64;
    let versions: Vec<(PathBuf, Result<Graph>)> = versions.into_iter().flatten().collect();
    let declared = declared_sizes(versions.iter().filter_map(|(_, g)| g.as_ref().ok()));
    let total: u64 = stored.iter().map(|(_, _, len)| len).sum();
    progress.start("checking", total);
    let results = check_objects(reg, &stored, &declared, progress);
    progress.finish();
    let mut good: HashMap<ObjectId, u64> = HashMap::new();
    let mut bytes = 0;
    for ((place, id, len), result) in stored.iter().zip(results) {
        let encoding = &place.encoding();
        let message = match result {
            Ok((_, n))
                if !declared.contains_key(id)
                    && undeclared_limit(*encoding, *len).is_some_and(|limit| n > limit) =>
            {
                format!(
                    "object {} inflates past {} bytes, a thousand times what it stores, and no version declares it: it was not read further; delete it",
                    id.short(16),
                    undeclared_limit(*encoding, *len).unwrap_or_default()
                )
            }
            Ok((_, n)) if declared.get(id).is_some_and(|limit| n > *limit) => format!(
                "object {} holds more than the {} bytes its trees declare",
                id.short(16),
                declared[id]
            ),
            Ok((actual, _)) if actual != *id => {
                object::corrupt_message(*id, actual, &place.describe())
            }
            Ok((_, n)) => {
                // The bytes of a file stored in parts are counted with its parts.
                if *encoding != Encoding::Chunked {
                    bytes += n;
                }
                good.insert(*id, n);
                continue;
            }
            Err(err) => format!("{err:#}"),
        };
        let message = match place {
            Place::Packed(packed) => format!(
                "{message}; it is in a pack of {} objects: `mreg fsck --repair` takes it out (the others stay), then a push of its folder or `mreg sync NAME --recheck` stores it again",
                packed.pack.objects
            ),
            Place::File(..) => message,
        };
        problems.push(Problem {
            path: place.path().to_path_buf(),
            message,
        });
    }
    for (path, graph) in &versions {
        let found = match graph {
            Ok(graph) => graph_problems(reg, graph, &good),
            Err(err) => vec![format!("{err:#}")],
        };
        for message in found {
            problems.push(Problem {
                path: path.clone(),
                message,
            });
        }
    }
    let mut leftovers = super::tmp::abandoned(&reg.path(keys::TMP));
    leftovers.extend(packs_without_index(reg));
    leftovers.extend(runs_without_records(reg));
    let mut unfinished_removals = Vec::new();
    for model in models::list_models(reg)? {
        manifests += check_info(reg, &model, &mut problems);
        manifests += check_signatures(reg, &model, &mut problems);
        let stages = (&mut leftovers, &mut unfinished_removals);
        manifests += check_stages(reg, &model, &mut problems, stages.0, stages.1);
    }
    let good: HashSet<ObjectId> = good.into_keys().collect();
    manifests += check_runs(reg, &good, &mut problems)?;
    problems.sort_by(|a, b| a.path.cmp(&b.path));
    problems.dedup();
    leftovers.sort();
    Ok(Report {
        removed_runs_in_use: removed_runs_in_use(reg)?,
        reclaimable: reclaimable(reg),
        objects: stored.len() as u64,
        bytes,
        manifests,
        problems,
        leftovers,
        unfinished_removals,
    })
}

/// Returns the removed runs surviving versions came from, each with those versions.
fn removed_runs_in_use(reg: &Registry) -> Result<Vec<String>> {
    let mut by_run: BTreeMap<crate::id::RunId, Vec<String>> = BTreeMap::new();
    for model in models::list_models(reg)? {
        for n in models::live_versions(reg, &model)? {
            if let Ok(record) = models::load_version(reg, &model, n)
                && let Some(run) = record.run
                && removals::run_is_removed(reg, &run)
            {
                by_run.entry(run).or_default().push(format!("{model}@{n}"));
            }
        }
    }
    Ok(by_run
        .into_iter()
        .map(|(run, versions)| format!("{run} ({})", versions.join(", ")))
        .collect())
}

/// Returns what `gc` would free, or `None` when its census fails.
fn reclaimable(reg: &Registry) -> Option<gc::Amount> {
    let mut census = gc::census(reg).ok()?;
    let stored = gc::stored_objects(reg).ok()?;
    gc::add_parts(&mut census, &stored, &|key| {
        chunks::ChunkList::read_if_present(&reg.path(key))
    })
    .ok()?;
    let amounts = gc::garbage(reg, &census, stored).amounts();
    Some(gc::Amount {
        count: amounts.iter().map(|a| a.count).sum(),
        bytes: amounts.iter().map(|a| a.bytes).sum(),
    })
}

/// Reads every signature and approval of a model's versions: each must be named by
/// the hash of its bytes and read as what its folder says it is (whether its signer is
/// trusted is `verify`'s and `promote`'s question); anything else in the folders is
/// reported. Returns how many read.
fn check_signatures(reg: &Registry, model: &str, problems: &mut Vec<Problem>) -> u64 {
    let mut parsed = 0;
    for kind in [
        keys::Signed::Signature,
        keys::Signed::Approval,
        keys::Signed::Move,
    ] {
        let dir = reg.path(&format!("{}{model}/{}", keys::MODELS, kind.folder()));
        let Ok(trees) = fs::read_dir(&dir) else {
            continue;
        };
        for tree in trees.filter_map(Result::ok) {
            let path = tree.path();
            let is_dir = tree.file_type().is_ok_and(|t| t.is_dir());
            let tree_name = tree.file_name().to_string_lossy().into_owned();
            let Some(subject) = Some(tree_name.as_str()).filter(|t| is_dir && keys::is_hash(t))
            else {
                problems.push(Problem {
                    path,
                    message: format!(
                        "a stray entry, not a folder of {}; no command reads it",
                        kind.folder()
                    ),
                });
                continue;
            };
            let Ok(entries) = fs::read_dir(&path) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let file = entry.file_name().to_string_lossy().into_owned();
                let name = file.strip_suffix(".sig");
                let key = keys::signed(model, kind, subject, name.unwrap_or_default());
                if name.is_none() || keys::parse(&key).is_none() {
                    problems.push(Problem {
                        path: entry.path(),
                        message: "a stray file, not a signed record (those are named by the \
                                  BLAKE3 of their bytes, HASH.sig); no command reads it"
                            .to_owned(),
                    });
                    continue;
                }
                match crate::sign::read_signed(reg, &key, kind) {
                    Ok(()) => parsed += 1,
                    Err(err) => problems.push(Problem {
                        path: entry.path(),
                        message: format!("not {}: {err:#}", kind.with_article()),
                    }),
                }
            }
        }
    }
    parsed
}

/// Reads every change of a model's own fields; reports one that does not read, a stray
/// file among them, and a folder holding more than a model keeps. Returns how many
/// changes were parsed.
fn check_info(reg: &Registry, model: &str, problems: &mut Vec<Problem>) -> u64 {
    let dir = reg.path(&keys::infos(model));
    if fs::symlink_metadata(&dir).is_ok_and(|meta| !meta.is_dir()) {
        problems.push(Problem {
            path: dir,
            message: "not a folder: a model's fields are files in its info/ folder; no \
                      command reads it"
                .to_owned(),
        });
        return 0;
    }
    let listing = match super::info::names(reg, model) {
        Ok(listing) => listing,
        Err(err) => {
            problems.push(Problem {
                path: dir,
                message: format!("{err:#}"),
            });
            return 0;
        }
    };
    for stray in &listing.strays {
        problems.push(Problem {
            path: dir.join(stray),
            message: "a stray file, not a change of the model's fields (those are named \
                      NANOS-HASH.toml: 20 digits, a dash, 8 hex digits); no command reads it"
                .to_owned(),
        });
    }
    if listing.beyond > 0 {
        problems.push(Problem {
            path: dir.clone(),
            message: format!(
                "{} changes past the first {}, the most a model keeps; no command reads them",
                listing.beyond,
                super::info::CHANGES_LIMIT
            ),
        });
    }
    let mut parsed = 0;
    for name in listing.names {
        if super::info::is_future(&name) {
            problems.push(Problem {
                path: dir.join(&name),
                message: "dated more than a day after this machine's clock (a clock set wrong \
                          wrote it); no command reads it before that date"
                    .to_owned(),
            });
            continue;
        }
        match super::info::read(reg, model, &name) {
            Ok(_) => parsed += 1,
            Err(err) => problems.push(Problem {
                path: dir.join(&name),
                message: format!("{err:#}"),
            }),
        }
    }
    parsed
}

/// Reports every file in a model's `versions/` folder that is no version record: only
/// `N.toml`, N a decimal number without sign or leading zero, is one, so that no two
/// files claim one number (`7.toml` and `07.toml`). No command reads the others.
fn stray_versions(reg: &Registry, model: &str, problems: &mut Vec<Problem>) {
    let dir = reg.versions_dir(model);
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().and_then(keys::version_number).is_none() {
            problems.push(Problem {
                path: entry.path(),
                message: "a stray file, not a version record (those are named N.toml, N a \
                          decimal number without sign or leading zero); no command reads it"
                    .to_owned(),
            });
        }
    }
}

/// A version record's path and its tree graph as pull would read it, or `None` for a
/// record that cannot be read.
type Loaded = Option<(PathBuf, Result<Graph>)>;

/// Returns the hash and length of a stored object's content (stored in `len` bytes),
/// read no further than the size its trees declare, if any, allows. A chunk list no
/// version declares (a run's data input, or garbage) has its form and its parts
/// checked, each part as an object of its own, but not the whole, which a hostile list
/// could make as long as it likes.
fn check_object(
    reg: &Registry,
    (place, id, len): (&Place, ObjectId, u64),
    declared: Option<u64>,
) -> Result<(ObjectId, u64)> {
    let (path, encoding) = (place.path(), place.encoding());
    let limit = declared.or_else(|| undeclared_limit(encoding, len));
    if encoding == Encoding::Chunked && !reg.stores_in_parts() {
        anyhow::bail!(
            "a chunk list in a registry whose config.toml declares format {}, which holds none: run `mreg upgrade`, or pull and push its file again",
            reg.format()
        );
    }
    if encoding == Encoding::Chunked && declared.is_none() {
        let list = chunks::ChunkList::read(path)
            .with_context(|| format!("reading the chunk list {}", path.display()))?;
        if list.total() <= chunks::CHUNKED_MIN {
            anyhow::bail!(
                "a chunk list standing for {} bytes, a file mreg stores whole",
                list.total()
            );
        }
        parts_present(reg, &list)?;
        return Ok((id, list.total()));
    }
    object::hash_stored(place, limit, &mut std::io::sink(), &|_| {})
}

/// Re-hashes every stored object, several at once, each read no further than the size
/// its trees declare allows; files in parts first, each part read once for its own hash
/// and the whole's, so the parts found whole need no second read. Returns each object's
/// hash and length, in the order of `stored`.
fn check_objects(
    reg: &Registry,
    stored: &[StoredObject],
    declared: &HashMap<ObjectId, u64>,
    progress: &dyn Progress,
) -> Vec<Result<(ObjectId, u64)>> {
    let lists = check_lists(reg, stored, declared);
    let whole_parts: HashMap<(ObjectId, Encoding), u64> = lists
        .values()
        .flat_map(|(_, parts)| parts.iter().copied())
        .collect();
    let mut lists = lists;
    stored
        .iter()
        .map(|(place, _, _)| {
            let path = place.file()?;
            lists.remove(path).map(|(result, _)| result)
        })
        .collect::<Vec<_>>()
        .into_par_iter()
        .zip(stored.par_iter())
        .map(|(checked, (place, id, len))| {
            let whole = match place {
                Place::File(_, encoding) => whole_parts.get(&(*id, *encoding)),
                Place::Packed(_) => None,
            };
            let r = match (checked, whole) {
                (Some(result), _) => result,
                (None, Some(size)) => Ok((*id, *size)),
                (None, None) => check_object(reg, (place, *id, *len), declared.get(id).copied()),
            };
            // A pack a `gc` rewrote while fsck ran is gone, index and all: its objects are
            // checked where they are now.
            let r = match (r, place) {
                (Err(_), Place::Packed(packed))
                    if !reg.path(&pack::index_key(&packed.pack.name)).exists() =>
                {
                    match reg.find_object(*id) {
                        Some(now) => {
                            check_object(reg, (&now, *id, *len), declared.get(id).copied())
                        }
                        None => Err(read::missing(*id)),
                    }
                }
                (r, _) => r,
            };
            progress.advance(*len);
            r
        })
        .collect()
}

/// What checking one file stored in parts found: its content's hash and length (or why
/// it could not be read), and the parts (with the form each was read in) found whole.
type ListChecked = (Result<(ObjectId, u64)>, Vec<((ObjectId, Encoding), u64)>);

/// Checks every chunk list a version declares, several at once: each part is read once,
/// hashed for its own name and for the whole file's. Returns the findings by the list's
/// path; lists no version declares are left to [`check_object`].
fn check_lists(
    reg: &Registry,
    stored: &[StoredObject],
    declared: &HashMap<ObjectId, u64>,
) -> HashMap<PathBuf, ListChecked> {
    if !reg.stores_in_parts() {
        return HashMap::new();
    }
    stored
        .par_iter()
        .filter_map(|(place, id, _)| {
            let Place::File(path, Encoding::Chunked) = place else {
                return None;
            };
            let limit = *declared.get(id)?;
            Some((path.clone(), check_list(reg, path, limit)))
        })
        .collect()
}

/// Reads the parts of the list at `path` once, returning the whole content's hash and
/// length and the parts found whole; a list adding up to more than `limit` (the size
/// its trees declare) is not read, and its length says so.
fn check_list(reg: &Registry, path: &Path, limit: u64) -> ListChecked {
    let list = match object::list_of(path) {
        Ok(list) => list,
        Err(err) => return (Err(err), Vec::new()),
    };
    if list.total() > limit {
        return (Ok((ObjectId::of(b""), list.total())), Vec::new());
    }
    let mut whole = blake3::Hasher::new();
    let mut found = Vec::new();
    let mut buf = vec![0u8; 4 << 20];
    for (part, size) in &list.parts {
        let (mut reader, encoding) = match chunks::open_part(reg.root(), *part, *size) {
            Ok(opened) => opened,
            Err(err) => return (Err(err.into()), found),
        };
        let mut own = blake3::Hasher::new();
        let mut n = 0u64;
        loop {
            let read = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(read) => read,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    let err = anyhow::Error::from(err).context(format!(
                        "reading part {} of {}",
                        part.short(16),
                        path.display()
                    ));
                    return (Err(err), found);
                }
            };
            own.update_rayon(&buf[..read]);
            whole.update_rayon(&buf[..read]);
            n += read as u64;
        }
        if n == *size && ObjectId::from_hasher(&own) == *part {
            found.push(((*part, encoding), *size));
        }
    }
    (Ok((ObjectId::from_hasher(&whole), list.total())), found)
}

/// Fails, naming the first, when a part `list` names is not stored raw or compressed.
fn parts_present(reg: &Registry, list: &chunks::ChunkList) -> Result<()> {
    match reg.absent_parts(list).first() {
        Some((part, _)) => anyhow::bail!("part {} of the chunk list is missing", part.short(16)),
        None => Ok(()),
    }
}

/// Returns how far fsck decodes a compressed object no version declares (a tree, a
/// series chunk, or one no record names): a thousand times what it stores, and at least
/// the largest tree, so that a small frame decoding to terabytes is stopped early. A
/// raw object is read as long as it is.
fn undeclared_limit(encoding: Encoding, stored: u64) -> Option<u64> {
    (encoding == Encoding::Zstd).then(|| stored.saturating_mul(1024).max(read::SMALL_OBJECT_LIMIT))
}

/// Reads every version record and its tree graph, each tree once across all versions;
/// returns one entry per record (the problem of one that cannot be read is pushed).
fn load_versions(reg: &Registry, problems: &mut Vec<Problem>) -> Result<Vec<Loaded>> {
    let mut versions = Vec::new();
    let mut trees: HashMap<ObjectId, Tree> = HashMap::new();
    for model in models::list_models(reg)? {
        stray_versions(reg, &model, problems);
        let numbers = models::list_versions(reg, &model)?;
        let removed = removed_versions(reg, &model, &numbers, problems);
        for n in numbers {
            let path = models::version_path(reg, &model, n);
            match models::load_version(reg, &model, n) {
                Ok(record) if removed.contains(&n) => {
                    // Its objects go with gc: only the record must still read.
                    if let Some(Err(err)) = removals::load(reg, &model, n)
                        .ok()
                        .flatten()
                        .map(|r| removals::check_applies(&r, &record))
                    {
                        problems.push(Problem {
                            path: reg.path(&keys::removal(&model, n)),
                            message: format!("{err:#}"),
                        });
                    }
                }
                Ok(record) => {
                    if let Some(run) = &record.run
                        && !runs::record_path(reg, run).is_file()
                    {
                        problems.push(Problem {
                            path: path.clone(),
                            message: format!("it names run {run}, which is missing"),
                        });
                    }
                    let graph = load_graph(reg, &record, &mut trees);
                    versions.push(Some((path, graph)));
                }
                Err(err) => {
                    problems.push(Problem {
                        path,
                        message: format!("{err:#}"),
                    });
                    versions.push(None);
                }
            }
        }
    }
    Ok(versions)
}

/// Returns the removed versions of a model, reporting removal records that do not read.
fn removed_versions(
    reg: &Registry,
    model: &str,
    numbers: &[u64],
    problems: &mut Vec<Problem>,
) -> HashSet<u64> {
    let mut out = HashSet::new();
    let dir = reg.path(&keys::removals(model));
    let Ok(entries) = fs::read_dir(&dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(n) = name.to_str().and_then(keys::version_number) else {
            problems.push(Problem {
                path: entry.path(),
                message: "a stray file, not a removal record (those are named N.toml); no command reads it".to_owned(),
            });
            continue;
        };
        match removals::load(reg, model, n) {
            // A removal whose record is not here (a sync publishes the removal first)
            // only keeps its number from being given again.
            Ok(Some(_)) => {
                if numbers.binary_search(&n).is_ok() {
                    out.insert(n);
                }
            }
            Ok(None) => {}
            Err(err) => problems.push(Problem {
                path: entry.path(),
                message: format!("{err:#}"),
            }),
        }
    }
    out
}

/// Reads a version's tree graph as pull would, each tree once across all versions.
fn load_graph(
    reg: &Registry,
    record: &VersionRecord,
    trees: &mut HashMap<ObjectId, Tree>,
) -> Result<Graph> {
    models::graph_with(record, &mut |t| {
        if let Some(tree) = trees.get(&t.0) {
            return Ok(tree.clone());
        }
        let tree = read::read_tree(reg, t)?;
        trees.insert(t.0, tree.clone());
        Ok(tree)
    })
}

/// Returns the largest size any tree declares for each object it names.
fn declared_sizes<'a>(graphs: impl Iterator<Item = &'a Graph>) -> HashMap<ObjectId, u64> {
    let mut out: HashMap<ObjectId, u64> = HashMap::new();
    for graph in graphs {
        for placed in graph.trees() {
            for entry in &placed.tree.entries {
                if entry.kind != Kind::Dir {
                    let size = out.entry(entry.id).or_insert(0);
                    *size = (*size).max(entry.size);
                }
            }
        }
    }
    out
}

/// Returns what pull would refuse below a version's tree, as `path: message` lines:
/// objects missing or corrupt, sizes that differ from the objects', links that lead
/// outside the folder. Each distinct folder is looked at once, at the shallowest
/// place it appears.
fn graph_problems(reg: &Registry, graph: &Graph, good: &HashMap<ObjectId, u64>) -> Vec<String> {
    let mut found = Vec::new();
    for placed in graph.trees() {
        for entry in placed.tree.entries.iter().filter(|e| e.kind != Kind::Dir) {
            let path = placed.join(&entry.name);
            let problem = match good.get(&entry.id) {
                None if reg.has_object(entry.id) => {
                    format!("object {} is corrupt", entry.id.short(16))
                }
                None => format!("object {} is missing", entry.id.short(16)),
                Some(n) if *n != entry.size => format!(
                    "object {} holds {n} bytes where its tree declares {}",
                    entry.id.short(16),
                    entry.size
                ),
                Some(_) if entry.kind == Kind::Link => {
                    match read::link_target(reg, entry.id, entry.size) {
                        Err(err) => format!("link: {err:#}"),
                        Ok(target) => match tree::check_link_target(placed.depth, &target) {
                            Err(why) => format!("pull refuses this link: {why}"),
                            Ok(()) => continue,
                        },
                    }
                }
                Some(_) => continue,
            };
            found.push(format!("{path}: {problem}"));
        }
    }
    found
}

/// Walks a model's chain of stage states from `HEAD`: every state must match its name,
/// follow the one before it, and point stages at versions that exist. A lock left by a
/// process that is gone is a leftover (the next writer removes it); one that names no
/// holder and is held is a problem. Returns how many states were parsed.
fn check_stages(
    reg: &Registry,
    model: &str,
    problems: &mut Vec<Problem>,
    leftovers: &mut Vec<PathBuf>,
    unfinished: &mut Vec<String>,
) -> u64 {
    let head = reg.head_path(model);
    let lock = lock::lock_path(&head);
    match lock::inspect(&lock) {
        Ok(Some(_)) if lock::is_abandoned(&lock) => leftovers.push(lock),
        Ok(Some(None)) => problems.push(Problem {
            path: lock,
            message: "a lock that names no holder (empty, or not written by mreg) blocks every \
                      stage move of this model; if no mreg command is running, delete the file"
                .to_owned(),
        }),
        _ => {}
    }
    let chain = match stages::chain(reg, model, None) {
        Ok(chain) => chain,
        Err(err) => {
            problems.push(Problem {
                path: head,
                message: format!("{err:#}"),
            });
            return 0;
        }
    };
    let versions: HashSet<u64> = models::list_versions(reg, model)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let removed = removals::list(reg, model).unwrap_or_default();
    for (id, state) in &chain {
        for (stage, version) in &state.stages {
            if !versions.contains(version) {
                problems.push(Problem {
                    path: stages::state_path(reg, model, id),
                    message: format!("{stage} points at {model}@{version}, which does not exist"),
                });
            }
        }
        if state.action == crate::manifest::state::Action::Remove {
            unfinished.extend(
                state
                    .removed
                    .iter()
                    .filter(|n| !removed.contains_key(n))
                    .map(|n| format!("{model}@{n}")),
            );
        }
    }
    if let Some((id, state)) = chain.first() {
        for (stage, version) in &state.stages {
            if removed.contains_key(version) {
                problems.push(Problem {
                    path: stages::state_path(reg, model, id),
                    message: format!(
                        "{stage} holds {model}@{version}, which was removed: promote another version to {stage}"
                    ),
                });
            }
        }
    }
    chain.len() as u64
}

/// Parses every run record and event, and checks the series objects they name; of a
/// removed run, only its removal record.
/// Returns how many manifests were parsed.
fn check_runs(
    reg: &Registry,
    good: &HashSet<ObjectId>,
    problems: &mut Vec<Problem>,
) -> Result<u64> {
    let dir = reg.runs_dir();
    if !dir.is_dir() {
        return Ok(0);
    }
    let mut parsed = 0;
    for path in list_dir(&dir)? {
        let id = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(RunId::parse);
        let Some(id) = id.filter(|_| path.is_dir()) else {
            problems.push(Problem {
                path,
                message: "unexpected entry in runs/ (a run folder is named by 16 hex digits)"
                    .into(),
            });
            continue;
        };
        if fs::symlink_metadata(runs::record_path(reg, &id)).is_err() {
            // A leftover (see `runs_without_records`), not a run.
            continue;
        }
        // A removed run is on its way out: only its removal record is checked, since
        // `gc` frees the series it named.
        match removals::of_run(reg, &id) {
            Ok(Some(_)) => {
                parsed += 1;
                continue;
            }
            Ok(None) => {}
            Err(err) => {
                problems.push(Problem {
                    path: reg.path(&keys::run_removal(&id)),
                    message: format!("{err:#}"),
                });
                continue;
            }
        }
        parsed += 1;
        match runs::load_start(reg, &id) {
            Ok(record) => {
                let path = runs::record_path(reg, &id);
                series_problems(reg, good, &path, &record.series, problems);
                environment_problems(reg, good, &path, &record, problems);
            }
            Err(err) => problems.push(Problem {
                path: runs::record_path(reg, &id),
                message: format!("{err:#}"),
            }),
        }
        let log = runs::log_dir(reg, &id);
        for name in runs::event_names(reg, &id)? {
            parsed += 1;
            let path = log.join(&name);
            let event = reg
                .read_text(&keys::run_event(&id, &name))
                .and_then(|t| t.ok_or_else(|| anyhow::anyhow!("it is missing")))
                .and_then(|text| RunEvent::parse(&text));
            match event {
                Ok(event) if event.run != id => problems.push(Problem {
                    path,
                    message: format!("it says it belongs to run {}, not {id}", event.run),
                }),
                Ok(event) => series_problems(reg, good, &path, &event.series, problems),
                Err(err) => problems.push(Problem {
                    path,
                    message: format!("{err:#}"),
                }),
            }
        }
    }
    Ok(parsed)
}

/// Reports each object a run's environment names (stored lock files, the package list)
/// that is missing or corrupt, and a package list that is not one or is over the size
/// every reader takes.
fn environment_problems(
    reg: &Registry,
    good: &HashSet<ObjectId>,
    path: &Path,
    record: &crate::manifest::RunRecord,
    problems: &mut Vec<Problem>,
) {
    let Some(env) = &record.environment else {
        return;
    };
    let mut report = |what: String| {
        problems.push(Problem {
            path: path.to_path_buf(),
            message: what,
        });
    };
    let state = |id: ObjectId| {
        if reg.has_object(id) {
            "corrupt"
        } else {
            "missing"
        }
    };
    for lock in env.lockfiles.iter().filter(|l| l.stored) {
        if let Ok(id) = lock.blake3.parse::<ObjectId>()
            && !good.contains(&id)
        {
            report(format!(
                "lock file {}: object {} is {}",
                lock.path,
                id.short(16),
                state(id)
            ));
        }
    }
    let Some(id) = env
        .python
        .as_ref()
        .and_then(|p| p.packages_object.as_deref())
        .and_then(|hex| hex.parse::<ObjectId>().ok())
    else {
        return;
    };
    if !good.contains(&id) {
        report(format!(
            "package list: object {} is {}",
            id.short(16),
            state(id)
        ));
        return;
    }
    let list = super::read::read_up_to(
        reg,
        id,
        crate::lineage::PACKAGE_LIST_LIMIT,
        "a package list",
    )
    .and_then(|bytes| {
        let text = String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("it is not UTF-8"))?;
        crate::lineage::parse_package_list(&text).map_err(|why| anyhow::anyhow!(why))
    });
    if let Err(err) = list {
        report(format!("package list: object {}: {err:#}", id.short(16)));
    }
}

/// Reports each series object that is missing or corrupt.
fn series_problems(
    reg: &Registry,
    good: &HashSet<ObjectId>,
    path: &Path,
    series: &BTreeMap<String, Series>,
    problems: &mut Vec<Problem>,
) {
    for (key, s) in series {
        for id in &s.chunk.objects {
            if !good.contains(id) {
                let state = if reg.has_object(*id) {
                    "corrupt"
                } else {
                    "missing"
                };
                problems.push(Problem {
                    path: path.to_path_buf(),
                    message: format!("series {key}: object {} is {state}", id.short(16)),
                });
            }
        }
    }
}

/// One stored object: where, its id, and the bytes it occupies as stored.
type StoredObject = (Place, ObjectId, u64);

fn list_objects(reg: &Registry, problems: &mut Vec<Problem>) -> Result<Vec<StoredObject>> {
    let mut out = list_packed(reg, problems)?;
    for fan in list_dir(&reg.objects_dir())? {
        let Some(prefix) = fan
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.len() == 2)
            .map(str::to_owned)
        else {
            problems.push(Problem {
                path: fan,
                message: "unexpected entry in objects/".into(),
            });
            continue;
        };
        let kind = fs::symlink_metadata(&fan).map(|m| m.file_type()).ok();
        if kind.is_some_and(|k| k.is_symlink()) {
            // Reported by `special_entries`.
            continue;
        }
        if !kind.is_some_and(|k| k.is_dir()) {
            problems.push(Problem {
                path: fan,
                message: "unexpected file in objects/".into(),
            });
            continue;
        }
        for path in list_dir(&fan)? {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let (rest, encoding) = Encoding::of_name(name);
            let Ok(id) = format!("{prefix}{rest}").parse::<ObjectId>() else {
                problems.push(Problem {
                    path,
                    message: "not an object name".into(),
                });
                continue;
            };
            let meta = fs::symlink_metadata(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            if !meta.is_file() {
                // Reported by `special_entries`.
                continue;
            }
            out.push((Place::File(path, encoding), id, meta.len()));
        }
    }
    Ok(out)
}

/// Returns every object the registry's packs hold, by their indexes. An index that is
/// damaged, or whose pack is missing or of another length, is a problem; a pack
/// without an index (a writer killed before publishing it) is a leftover `gc`
/// removes, reported by [`packs_without_index`].
fn list_packed(reg: &Registry, problems: &mut Vec<Problem>) -> Result<Vec<StoredObject>> {
    let mut out = Vec::new();
    let dir = reg.path(keys::PACKS);
    if !dir.is_dir() {
        return Ok(out);
    }
    for path in list_dir(&dir)? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if pack::name_of_pack(name).is_some() {
            continue;
        }
        let Some(name) = pack::name_of_index(name) else {
            problems.push(Problem {
                path,
                message: "unexpected entry in packs/".into(),
            });
            continue;
        };
        if !reg.stores_in_packs() {
            problems.push(Problem {
                path: path.clone(),
                message: format!(
                    "a pack in a registry whose config.toml declares format {}, which holds none (an older mreg does not see what it holds): run `mreg upgrade`",
                    reg.format()
                ),
            });
        }
        let opened = pack::read_index(reg.root(), name).and_then(|index| {
            let Some(index) = index else {
                return Ok(None);
            };
            let file = pack::open(reg.root(), name, &index)?;
            Ok(Some((index, file)))
        });
        let (index, file) = match opened {
            // Gone since the listing: a `gc` rewrote it; its objects are in another.
            Ok(None) => continue,
            Ok(Some(opened)) => opened,
            Err(err) => {
                problems.push(Problem {
                    path,
                    message: format!(
                        "{err:#}; the objects it lists count as missing (remove it, then push or sync them again)"
                    ),
                });
                continue;
            }
        };
        if out.len() + index.entries.len() > pack::PACKED_OBJECTS_MAX {
            problems.push(Problem {
                path: dir.clone(),
                message: format!(
                    "the packs hold more than {} objects, more than mreg reads; the objects of {} and later indexes were not checked",
                    pack::PACKED_OBJECTS_MAX,
                    pack::index_key(name)
                ),
            });
            break;
        }
        for entry in index.entries {
            let packed = pack::Packed {
                pack: std::sync::Arc::clone(&file),
                entry,
                among: None,
            };
            out.push((Place::Packed(packed), entry.id, entry.stored));
        }
    }
    Ok(out)
}

/// Returns the packs without an index: left by a writer killed before it published
/// one; `gc` removes them.
pub fn packs_without_index(reg: &Registry) -> Vec<PathBuf> {
    let dir = reg.path(keys::PACKS);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let file_name = e.file_name();
            let name = pack::name_of_pack(file_name.to_str()?)?.to_owned();
            let indexed = fs::symlink_metadata(reg.path(&pack::index_key(&name))).is_ok();
            (!indexed).then(|| e.path())
        })
        .collect()
}

/// Reports every link, FIFO, socket or device inside the registry folder: mreg writes
/// none, and reads none (see [`super::files`]).
fn special_entries(reg: &Registry, problems: &mut Vec<Problem>) {
    for entry in walkdir::WalkDir::new(reg.root())
        .follow_links(false)
        .min_depth(1)
        .into_iter()
        .flatten()
    {
        let Some(what) = super::files::special_kind(entry.file_type()) else {
            continue;
        };
        problems.push(Problem {
            path: entry.path().to_path_buf(),
            message: format!(
                "it is {what}; mreg neither writes nor follows one inside a registry, so commands refuse it: remove it"
            ),
        });
    }
}

/// Returns the run folders holding no record: left by an older mreg interrupted while
/// it made a run (mreg now makes a run's folder whole before it has its name).
fn runs_without_records(reg: &Registry) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(reg.runs_dir()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(crate::id::RunId::parse))
        .filter(|id| fs::symlink_metadata(runs::record_path(reg, id)).is_err())
        .map(|id| runs::run_dir(reg, &id))
        .collect()
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        out.push(
            entry
                .with_context(|| format!("listing {}", dir.display()))?
                .path(),
        );
    }
    out.sort();
    Ok(out)
}
