//! Snapshots: a folder scanned (see [`super::scan`]: `.mregignore`, refusals), hashed and
//! (optionally) stored, giving its tree. Files are hashed on all cores, each streamed in
//! chunks, so memory does not grow with file size.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use serde::Serialize;

use super::object;
pub use super::scan::Reading;
use super::scan::{Child, FileItem, Scan, scan};
use super::statcache::{Stamp, StatCache};
use super::tree::{Entry, Kind, Tree};
use super::write::Staging;
use super::{Progress, Registry};
use crate::error::Failure;
use crate::id::{ObjectId, TreeId};

/// The name of the ignore file read at the top of a pushed folder.
pub const IGNORE_FILE: &str = ".mregignore";

/// Returns one path a scan left out, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Skipped {
    /// Path relative to the folder, `/`-separated, with a trailing `/` for folders.
    pub path: String,
    /// `mregignore` (matched by `.mregignore`), `registry` (the registry itself) or
    /// `not part of the model` (left out by an import: `.git`).
    pub reason: &'static str,
}

/// Returns what a snapshot found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The folder's tree hash: its content identity.
    pub tree: TreeId,
    /// Regular files, executables included.
    pub files: u64,
    /// Bytes of all regular files.
    pub bytes: u64,
    /// Bytes read and hashed (files the stat cache could not vouch for).
    pub hashed_bytes: u64,
    /// Content bytes of objects new to the registry.
    pub new_bytes: u64,
    /// Paths left out.
    pub skipped: Vec<Skipped>,
}

/// Where a snapshot's content goes.
pub enum Sink<'a, 'r> {
    /// Only compute hashes (recording data inputs, verifying a pulled folder).
    HashOnly,
    /// Stage new objects for publishing.
    Store(&'a Staging<'r>),
}

/// Hashes (and with [`Sink::Store`], stages) the folder `root`.
///
/// With [`Sink::Store`], blobs and link targets are staged in `staging`; the trees,
/// which must be published after the blobs they name, are returned as bytes.
pub fn snapshot(
    reg: &Registry,
    root: &Path,
    sink: &Sink,
    cache: Option<&StatCache>,
    reading: &Reading,
    progress: &dyn Progress,
) -> Result<(Snapshot, Vec<Vec<u8>>)> {
    let scan = scan(root, Some(reg.root()), reading)?;
    let hashed = hash_files(&scan.files, sink, cache, progress)?;
    let mut trees = Vec::new();
    let mut totals = Totals::default();
    let root_tree = build_tree(&scan, 0, &hashed, sink, &mut trees, &mut totals)?;
    let snapshot = Snapshot {
        tree: root_tree.id(),
        files: scan.files.len() as u64,
        bytes: root_tree.total_size(),
        hashed_bytes: totals.hashed,
        new_bytes: totals.new,
        skipped: scan.skipped,
    };
    Ok((snapshot, trees))
}

/// Publishes what a snapshot staged: its blobs, then the trees that name them, so no
/// tree is ever durable before the objects below it. Also run when nothing was new:
/// objects that went missing from the store since are put back.
pub fn publish(blobs: Staging, trees: &[Vec<u8>], progress: &dyn Progress) -> Result<()> {
    let reg = blobs.registry();
    crate::crash::point("objects-staged");
    // Making what was written durable can take a while after a large push: say so.
    progress.phase("flushing to disk");
    let published = blobs.publish();
    progress.finish();
    published?;
    let staged = Staging::new(reg);
    for tree in trees {
        staged.add_bytes(tree)?;
    }
    staged.publish()?;
    crate::crash::point("objects-published");
    Ok(())
}

#[derive(Default)]
struct Totals {
    hashed: u64,
    new: u64,
}

struct Hashed {
    id: ObjectId,
    size: u64,
    was_read: bool,
    /// Content bytes new to the registry (a file stored in parts: its new parts').
    new: u64,
}

fn hash_files(
    files: &[FileItem],
    sink: &Sink,
    cache: Option<&StatCache>,
    progress: &dyn Progress,
) -> Result<Vec<Hashed>> {
    let cached: Vec<Option<ObjectId>> = files
        .iter()
        .map(|f| cache.and_then(|c| c.lookup(&f.rel, &f.stamp)))
        .collect();
    let to_read: u64 = files
        .iter()
        .zip(&cached)
        .filter(|(_, c)| c.is_none())
        .map(|(f, _)| f.stamp_size())
        .sum();
    progress.start("hashing", to_read);
    let result = files
        .par_iter()
        .zip(cached.par_iter())
        .map(|(file, cached)| -> Result<Hashed> {
            if let Some(id) = cached {
                // The cache vouches for the file, not for the object: one missing or
                // damaged is stored again from the file.
                let new = match sink {
                    Sink::Store(staging) if !staging.holds_whole(*id, file.stamp_size())? => {
                        return read_file(file, sink, cache, progress);
                    }
                    _ => 0,
                };
                return Ok(Hashed {
                    id: *id,
                    size: file.stamp_size(),
                    was_read: false,
                    new,
                });
            }
            read_file(file, sink, cache, progress)
        })
        .collect();
    progress.finish();
    result
}

fn read_file(
    file: &FileItem,
    sink: &Sink,
    cache: Option<&StatCache>,
    progress: &dyn Progress,
) -> Result<Hashed> {
    let advance = |n| progress.advance(n);
    let (id, size, new) = match sink {
        Sink::HashOnly => {
            let (id, size) = object::hash_file(&file.abs, &advance)?;
            (id, size, 0)
        }
        Sink::Store(staging) => {
            // A large file this folder never held at this size is most likely new:
            // stored in one pass, without hashing it whole first.
            let likely_new = cache.is_some_and(|c| !c.saw(&file.rel, file.stamp_size()));
            let stored = staging.add_file_as(&file.abs, likely_new, &advance)?;
            (stored.id, stored.size, stored.new_bytes)
        }
    };
    let after = if file.followed {
        fs::metadata(&file.abs)
    } else {
        fs::symlink_metadata(&file.abs)
    }
    .with_context(|| format!("reading {}", file.abs.display()))?;
    if Stamp::of(&after) != file.stamp || size != file.stamp_size() {
        return Err(Failure::error(format!(
            "{} changed while mreg was reading it",
            file.abs.display()
        ))
        .hint("wait until whatever writes it has finished, then push again")
        .into());
    }
    if let Some(cache) = cache {
        cache.record(&file.rel, file.stamp, id);
    }
    Ok(Hashed {
        id,
        size,
        was_read: true,
        new,
    })
}

impl FileItem {
    fn stamp_size(&self) -> u64 {
        self.stamp.size()
    }
}

fn build_tree(
    scan: &Scan,
    dir: usize,
    hashed: &[Hashed],
    sink: &Sink,
    trees: &mut Vec<Vec<u8>>,
    totals: &mut Totals,
) -> Result<Tree> {
    let mut entries = Vec::with_capacity(scan.dirs[dir].len());
    for child in &scan.dirs[dir] {
        entries.push(match child {
            Child::File(name, i) => {
                let h = &hashed[*i];
                if h.was_read {
                    totals.hashed += h.size;
                }
                totals.new += h.new;
                let kind = if scan.files[*i].exec {
                    Kind::Exec
                } else {
                    Kind::File
                };
                Entry {
                    name: name.clone(),
                    kind,
                    id: h.id,
                    size: h.size,
                }
            }
            Child::Link(name, target) => {
                let id = match sink {
                    Sink::HashOnly => ObjectId::of(target.as_bytes()),
                    Sink::Store(staging) => staging.add_bytes(target.as_bytes())?.id,
                };
                Entry {
                    name: name.clone(),
                    kind: Kind::Link,
                    id,
                    size: target.len() as u64,
                }
            }
            Child::Dir(name, sub) => {
                let tree = build_tree(scan, *sub, hashed, sink, trees, totals)?;
                let bytes = tree.to_bytes();
                let id = ObjectId::of(&bytes);
                if matches!(sink, Sink::Store(_)) {
                    trees.push(bytes);
                }
                Entry {
                    name: name.clone(),
                    kind: Kind::Dir,
                    id,
                    size: tree.total_size(),
                }
            }
        });
    }
    let tree = Tree::new(entries);
    if dir == 0 && matches!(sink, Sink::Store(_)) {
        trees.push(tree.to_bytes());
    }
    Ok(tree)
}

/// Returns the canonical path of a folder to snapshot, or a clear refusal.
pub fn check_folder(dir: &Path) -> Result<PathBuf> {
    let meta = fs::metadata(dir).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => {
            Failure::error(format!("folder {} does not exist", dir.display()))
                .hint("push takes the folder holding the model's files")
        }
        _ => Failure::error(format!("cannot read folder {}: {err}", dir.display())),
    })?;
    if !meta.is_dir() {
        bail!(
            Failure::usage(format!("{} is not a folder", dir.display()))
                .hint("push takes the folder holding the model's files")
        );
    }
    dir.canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))
}
