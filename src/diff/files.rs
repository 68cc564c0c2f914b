//! Files of two versions: added, removed, modified, renamed (same content, new path),
//! read from their trees; and the tensors of the `.safetensors` files that changed.
//!
//! Both tree graphs are read first, each within the limits of [`walk`]; they are then
//! walked together and a folder whose tree hash is the same on both sides is not
//! opened, so comparing two versions that share most of their files visits only the
//! changed paths.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;

use super::FileTensors;
use super::parts;
use super::tensors::{self, SideError};
use crate::id::{ObjectId, TreeId};
use crate::store::tree::Kind;
use crate::store::walk::Graph;
use crate::store::{Progress, Registry, read};

/// Returns how one path differs between two versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileChange {
    /// Only the new version has it.
    Added,
    /// Only the old version has it.
    Removed,
    /// Both have it, with different content or kind.
    Modified,
    /// The new version has the old one's content at another path.
    Renamed,
    /// Both have it, unchanged.
    Same,
}

/// Returns one file as one side holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSide {
    /// `file`, `exec` or `link`.
    pub kind: &'static str,
    /// Bytes of content (of the target, for a link).
    pub size: u64,
    /// The content's blake3 hash.
    pub hash: ObjectId,
}

/// Returns one path of either version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRow {
    /// The path, `/`-separated; for a rename, the new path.
    pub path: String,
    /// How it changed.
    pub change: FileChange,
    /// For a rename, the old path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    /// The file in the old version.
    pub old: Option<FileSide>,
    /// The file in the new version.
    pub new: Option<FileSide>,
}

/// Returns counts of what changed, and the sizes of both versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FilesSummary {
    /// Paths only the new version has.
    pub added: u64,
    /// Paths only the old version has.
    pub removed: u64,
    /// Paths whose content or kind changed.
    pub modified: u64,
    /// Content moved to another path.
    pub renamed: u64,
    /// Bytes of files added, counted in the new version.
    pub bytes_added: u64,
    /// Bytes of files removed, counted in the old version.
    pub bytes_removed: u64,
}

/// Returns the file comparison of two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilesDiff {
    /// Counts.
    pub summary: FilesSummary,
    /// One row per path, sorted by path; unchanged files only when asked for.
    pub entries: Vec<FileRow>,
}

/// Compares the files of two trees; with `all`, unchanged files are listed too (which
/// reads every folder), otherwise folders that did not change are skipped.
pub fn diff(reg: &Registry, old: TreeId, new: TreeId, all: bool) -> Result<FilesDiff> {
    let graphs = (read::graph(reg, old)?, read::graph(reg, new)?);
    let mut entries = Vec::new();
    walk(&graphs, (Some(old.0), Some(new.0)), "", all, &mut entries)?;
    pair_renames(&mut entries);
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let mut summary = FilesSummary::default();
    for row in &entries {
        match row.change {
            FileChange::Added => {
                summary.added += 1;
                summary.bytes_added += row.new.as_ref().map_or(0, |f| f.size);
            }
            FileChange::Removed => {
                summary.removed += 1;
                summary.bytes_removed += row.old.as_ref().map_or(0, |f| f.size);
            }
            FileChange::Modified => summary.modified += 1,
            FileChange::Renamed => summary.renamed += 1,
            FileChange::Same => {}
        }
    }
    Ok(FilesDiff { summary, entries })
}

/// One entry of a tree, as the walk sees it.
#[derive(Clone, Copy)]
struct Node {
    kind: Kind,
    id: ObjectId,
    size: u64,
}

impl Node {
    fn side(self) -> FileSide {
        FileSide {
            kind: self.kind.as_str(),
            size: self.size,
            hash: self.id,
        }
    }
}

/// Returns the entries of a tree by name, or none for a missing side.
fn children(graph: &Graph, id: Option<ObjectId>) -> Result<BTreeMap<&str, Node>> {
    let Some(id) = id else {
        return Ok(BTreeMap::new());
    };
    let tree = graph
        .tree(id)
        .with_context(|| format!("tree {} is not part of its graph", id.short(16)))?;
    Ok(tree
        .entries
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                Node {
                    kind: e.kind,
                    id: e.id,
                    size: e.size,
                },
            )
        })
        .collect())
}

/// Walks two folders (either may be absent) and lists their files' changes. The
/// recursion is as deep as the folders nest, which [`crate::store::walk::LIMITS`]
/// bounds.
fn walk(
    graphs: &(Graph, Graph),
    (old, new): (Option<ObjectId>, Option<ObjectId>),
    prefix: &str,
    all: bool,
    out: &mut Vec<FileRow>,
) -> Result<()> {
    if old == new && !all {
        return Ok(());
    }
    let (old_entries, new_entries) = (children(&graphs.0, old)?, children(&graphs.1, new)?);
    let mut names: Vec<&str> = old_entries
        .keys()
        .chain(new_entries.keys())
        .copied()
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let path = format!("{prefix}{name}");
        let (x, y) = (
            old_entries.get(name).copied(),
            new_entries.get(name).copied(),
        );
        let dir = |n: Option<Node>| n.filter(|n| n.kind == Kind::Dir).map(|n| n.id);
        let file = |n: Option<Node>| n.filter(|n| n.kind != Kind::Dir);
        if dir(x).is_some() || dir(y).is_some() {
            walk(graphs, (dir(x), dir(y)), &format!("{path}/"), all, out)?;
        }
        let (x, y) = (file(x), file(y));
        let change = match (x, y) {
            (None, None) => continue,
            (None, Some(_)) => FileChange::Added,
            (Some(_), None) => FileChange::Removed,
            (Some(p), Some(q)) if p.kind == q.kind && p.id == q.id => FileChange::Same,
            (Some(_), Some(_)) => FileChange::Modified,
        };
        if change == FileChange::Same && !all {
            continue;
        }
        out.push(FileRow {
            path,
            change,
            old_path: None,
            old: x.map(Node::side),
            new: y.map(Node::side),
        });
    }
    Ok(())
}

/// Turns a removed file and an added one with the same content into one rename, pairing
/// paths in sorted order when several files share that content.
fn pair_renames(entries: &mut Vec<FileRow>) {
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let mut removed: BTreeMap<ObjectId, Vec<usize>> = BTreeMap::new();
    for (i, row) in entries.iter().enumerate() {
        if row.change == FileChange::Removed
            && let Some(old) = &row.old
        {
            removed.entry(old.hash).or_default().push(i);
        }
    }
    let mut gone = vec![false; entries.len()];
    for i in 0..entries.len() {
        if entries[i].change != FileChange::Added {
            continue;
        }
        let Some(new) = entries[i].new.clone() else {
            continue;
        };
        let Some(candidates) = removed.get_mut(&new.hash) else {
            continue;
        };
        if candidates.is_empty() {
            continue;
        }
        let j = candidates.remove(0);
        gone[j] = true;
        let old = entries[j].old.clone();
        let old_path = entries[j].path.clone();
        let row = &mut entries[i];
        row.change = FileChange::Renamed;
        row.old = old;
        row.old_path = Some(old_path);
    }
    let mut index = 0;
    entries.retain(|_| {
        let keep = !gone[index];
        index += 1;
        keep
    });
}

/// Returns whether a path names a safetensors file.
pub fn is_safetensors(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|name| name.to_ascii_lowercase().ends_with(".safetensors"))
}

/// Compares the tensors of every `.safetensors` file that both versions hold as a
/// regular file at the same path, with different content.
///
/// Each object is read back verified (and decoded, when stored compressed) before its
/// tensors are compared. A malformed header is reported in that file's
/// [`FileTensors::error`]; other files are compared all the same.
pub fn tensors(
    reg: &Registry,
    files: &FilesDiff,
    progress: &dyn Progress,
) -> Result<Vec<FileTensors>> {
    let pairs: Vec<(&str, &FileSide, &FileSide)> = files
        .entries
        .iter()
        .filter(|r| r.change == FileChange::Modified && is_safetensors(&r.path))
        .filter_map(|r| Some((r.path.as_str(), r.old.as_ref()?, r.new.as_ref()?)))
        .filter(|(_, a, b)| a.kind != "link" && b.kind != "link")
        .collect();
    // Each object is read twice: once to verify it, once (the old side driving) to compare.
    let total: u64 = pairs.iter().map(|(_, a, b)| 2 * a.size + b.size).sum();
    let mut out = Vec::new();
    if pairs.is_empty() {
        return Ok(out);
    }
    progress.start("comparing", total);
    let advance = |n| progress.advance(n);
    for (path, a, b) in &pairs {
        // Two files stored in parts: only the headers and the tensors whose parts
        // differ are read.
        let result = if let (Some(la), Some(lb)) =
            (parts::list_of(reg, a.hash), parts::list_of(reg, b.hash))
        {
            parts::diff(reg, (&la, a.size), (&lb, b.size), &advance)
                .with_context(|| format!("reading {path}"))?
        } else {
            whole_diff(reg, (a, b), &advance).with_context(|| format!("reading {path}"))?
        };
        out.push(match result {
            Ok(diff) => FileTensors {
                path: (*path).to_owned(),
                error: None,
                diff: Some(diff),
            },
            Err(SideError::Header { side, error }) => FileTensors {
                path: (*path).to_owned(),
                error: Some(format!("the {side} file's header is malformed: {error}")),
                diff: None,
            },
            Err(SideError::Io(err)) => return Err(err),
        });
    }
    progress.finish();
    Ok(out)
}

/// Returns the tensor diff of two files read whole, each verified first.
fn whole_diff(
    reg: &Registry,
    (a, b): (&FileSide, &FileSide),
    advance: &(dyn Fn(u64) + Sync),
) -> Result<Result<tensors::TensorDiff, SideError>> {
    {
        // One pair at a time, so at most two decoded copies exist at once.
        let (x, y) = rayon::join(
            || read::verified_file(reg, a.hash, a.size, &advance),
            || read::verified_file(reg, b.hash, b.size, &advance),
        );
        let x = x.context("reading it in the old version")?;
        let y = y.context("reading it in the new version")?;
        Ok(tensors::diff(x.file(), x.len(), y.file(), y.len(), advance))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(path: &str, change: FileChange, hash: u8) -> FileRow {
        let side = Some(FileSide {
            kind: "file",
            size: 1,
            hash: ObjectId::of(&[hash]),
        });
        FileRow {
            path: path.into(),
            change,
            old_path: None,
            old: if change == FileChange::Added {
                None
            } else {
                side.clone()
            },
            new: if change == FileChange::Removed {
                None
            } else {
                side
            },
        }
    }

    #[test]
    fn same_content_at_a_new_path_is_a_rename() {
        let mut rows = vec![
            row("b.bin", FileChange::Added, 1),
            row("a.bin", FileChange::Removed, 1),
            row("c.bin", FileChange::Added, 2),
            row("d.bin", FileChange::Removed, 3),
            row("e.bin", FileChange::Added, 1),
        ];
        pair_renames(&mut rows);
        let got: Vec<(&str, FileChange, Option<&str>)> = rows
            .iter()
            .map(|r| (r.path.as_str(), r.change, r.old_path.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("b.bin", FileChange::Renamed, Some("a.bin")),
                ("c.bin", FileChange::Added, None),
                ("d.bin", FileChange::Removed, None),
                ("e.bin", FileChange::Added, None),
            ]
        );
    }

    #[test]
    fn safetensors_files_are_known_by_their_extension() {
        assert!(is_safetensors("model.safetensors"));
        assert!(is_safetensors("shards/Model-00001.SafeTensors"));
        assert!(!is_safetensors("model.safetensors.index.json"));
        assert!(!is_safetensors("safetensors/readme"));
    }
}
