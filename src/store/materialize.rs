//! Materializing a tree into a folder: the core of `mreg pull`.
//!
//! A tree is untrusted input. Every tree and link target below the root is read,
//! verified and checked before anything is written: names must be single safe path
//! components (no `..`, no `/`, no duplicates), links must stay inside the folder.
//! The folder is then built beside the target and swapped in with one rename, so a
//! reader sees the old folder or the new one, never half of one. The pull holds an OS
//! lock on the folder it builds; a later pull to the same target removes the folders
//! beside it that a killed pull left (their lock is free).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rayon::prelude::*;

use super::object::{Encoding, Place};
use super::read::{self, copy_to_file};
use super::tree::{self, Kind};
use super::walk::Graph;
use super::{ObjectId, Progress, Registry, atomic};
use crate::error::Failure;

/// Returns everything a tree asks to create, checked and in creation order.
#[derive(Debug, Default)]
pub struct Plan {
    /// Folders, parents before children, as relative `/`-separated paths.
    pub dirs: Vec<String>,
    /// Files: relative path, object, size and whether executable.
    pub files: Vec<PlanFile>,
    /// Symlinks: relative path and target.
    pub links: Vec<(String, String)>,
    /// Bytes of all files.
    pub bytes: u64,
    /// Files of the pull's own beside the version's (a signature, `model.sig`): a
    /// top-level name no entry of the tree has, and their bytes.
    pub beside: Vec<(String, Vec<u8>)>,
}

/// One file of a [`Plan`].
#[derive(Debug, Clone)]
pub struct PlanFile {
    /// Relative `/`-separated path.
    pub path: String,
    /// The object holding the content.
    pub id: ObjectId,
    /// Content bytes.
    pub size: u64,
    /// Whether it gets executable permissions.
    pub exec: bool,
}

/// Returns what a version's tree graph asks to create, with every link target read
/// and checked.
///
/// The graph was held to the walk limits when it was read ([`super::models::graph`]),
/// so this costs time and memory in proportion to the paths it declares.
pub fn plan(reg: &Registry, graph: &Graph) -> Result<Plan> {
    plan_with(reg, graph, None)
}

/// Returns what [`plan`] returns, with only the files and links `select` takes (and
/// every folder; [`Plan::select`] then keeps those that hold them): the targets of the
/// links it leaves out are not read, so a partial pull needs none of their objects.
pub fn plan_with(
    reg: &Registry,
    graph: &Graph,
    select: Option<&super::select::Select>,
) -> Result<Plan> {
    let shape = graph.shape();
    let mut plan = Plan {
        dirs: Vec::with_capacity(shape.dirs as usize),
        files: Vec::with_capacity(shape.files as usize),
        links: Vec::new(),
        bytes: shape.bytes,
        beside: Vec::new(),
    };
    let mut targets: HashMap<ObjectId, String> = HashMap::new();
    graph.for_each(&mut |v| {
        if v.entry.kind != Kind::Dir && select.is_some_and(|s| !s.selects(v.path)) {
            return Ok(());
        }
        let path = v.path.to_owned();
        match v.entry.kind {
            Kind::Dir => plan.dirs.push(path),
            Kind::File | Kind::Exec => plan.files.push(PlanFile {
                path,
                id: v.entry.id,
                size: v.entry.size,
                exec: v.entry.kind == Kind::Exec,
            }),
            Kind::Link => {
                let target = if let Some(target) = targets.get(&v.entry.id) {
                    target.clone()
                } else {
                    let target = read::link_target(reg, v.entry.id, v.entry.size)
                        .with_context(|| format!("reading the target of link {path}"))?;
                    targets.insert(v.entry.id, target.clone());
                    target
                };
                if let Err(why) = tree::check_link_target(v.depth, &target) {
                    return Err(
                        Failure::error(format!("refusing to create link {path}: {why}"))
                            .hint(
                                "the version's tree is unsafe to materialize; nothing was written",
                            )
                            .into(),
                    );
                }
                plan.links.push((path, target));
            }
        }
        Ok(())
    })?;
    Ok(plan)
}

impl Plan {
    /// Keeps the files and links `select` takes, and the folders that hold them; an
    /// empty folder is kept only by a whole pull. Returns the links kept whose targets
    /// are not (`PATH -> TARGET`): they dangle in the pulled folder.
    pub fn select(&mut self, select: &super::select::Select) -> Vec<String> {
        self.files.retain(|f| select.selects(&f.path));
        self.links.retain(|(path, _)| select.selects(path));
        let mut holding = std::collections::HashSet::new();
        for path in self
            .files
            .iter()
            .map(|f| &f.path)
            .chain(self.links.iter().map(|l| &l.0))
        {
            let mut at = path.as_str();
            while let Some((parent, _)) = at.rsplit_once('/') {
                if !holding.insert(parent.to_owned()) {
                    break;
                }
                at = parent;
            }
        }
        self.dirs.retain(|d| holding.contains(d));
        self.bytes = self.files.iter().map(|f| f.size).sum();
        let kept: std::collections::HashSet<&str> = self
            .files
            .iter()
            .map(|f| f.path.as_str())
            .chain(self.links.iter().map(|l| l.0.as_str()))
            .chain(self.dirs.iter().map(String::as_str))
            .collect();
        self.links
            .iter()
            .filter(|(path, target)| {
                let mut parts: Vec<&str> = path.split('/').collect();
                parts.pop();
                for part in target.split('/') {
                    match part {
                        "" | "." => {}
                        ".." => {
                            parts.pop();
                        }
                        other => parts.push(other),
                    }
                }
                let resolved = parts.join("/");
                !kept.contains(resolved.as_str())
            })
            .map(|(path, target)| format!("{path} -> {target}"))
            .collect()
    }
}

/// Writes objects into the folder `dir` as files named by the SHA-256 (hex) of their
/// content (a blob store: an OCI layout's `blobs/sha256`, a Hugging Face cache's
/// `blobs`), each verified, and whole or not at all: written under a temp name and
/// renamed. A file already there is kept when its content has that SHA-256 (it is read
/// to know), and replaced otherwise. Returns the files written and their bytes.
pub fn write_blobs(
    reg: &Registry,
    dir: &Path,
    blobs: &[(ObjectId, u64, String)],
    progress: &dyn Progress,
) -> Result<(u64, u64)> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut seen = std::collections::HashSet::new();
    let todo: Vec<&(ObjectId, u64, String)> = blobs
        .iter()
        .filter(|(_, _, name)| seen.insert(name))
        .collect::<Vec<_>>()
        .into_par_iter()
        .filter(|(_, size, name)| !holds_blob(&dir.join(name), *size, name))
        .collect();
    let bytes: u64 = todo.iter().map(|(_, size, _)| size).sum();
    progress.start("writing", bytes);
    let written: Result<()> = todo.par_iter().try_for_each(|(id, size, name)| {
        let temp = tempfile::Builder::new()
            .prefix(".mreg-")
            .suffix(".tmp")
            .make_in(dir, |_| Ok(()))
            .with_context(|| format!("creating a temp file in {}", dir.display()))?
            .into_temp_path();
        copy_to_file(&reg.object(*id)?, *id, *size, &temp, 0o644, &|n| {
            progress.advance(n);
        })
        .with_context(|| format!("writing {}", dir.join(name).display()))?;
        fs::rename(&temp, dir.join(name))
            .with_context(|| format!("writing {}", dir.join(name).display()))?;
        Ok(())
    });
    progress.finish();
    written?;
    Ok((todo.len() as u64, bytes))
}

/// Returns whether `path` is a regular file of `size` bytes whose SHA-256 (hex) is
/// `name`.
pub fn holds_blob(path: &Path, size: u64, name: &str) -> bool {
    use sha2::Digest as _;
    let Ok(file) = fs::File::open(path) else {
        return false;
    };
    if !file
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() == size)
    {
        return false;
    }
    let mut sha = sha2::Sha256::new();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    if std::io::copy(&mut reader, &mut sha).is_err() {
        return false;
    }
    crate::id::hex(&sha.finalize()) == name
}

/// Options of [`materialize`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Replace a folder that is not empty.
    pub force: bool,
    /// Flush the new files to stable storage before they appear.
    pub durable: bool,
}

/// Creates the planned folder at `dest`, replacing it whole or not at all, and
/// returns the real path it wrote.
pub fn materialize(
    reg: &Registry,
    plan: &Plan,
    dest: &Path,
    opts: Options,
    progress: &dyn Progress,
) -> Result<PathBuf> {
    let dest = resolve_target(reg, dest)?;
    let existing = check_target(&dest, opts.force)?;
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("model");
    let parent = dest
        .parent()
        .expect("an absolute path that is not / has a parent");
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let prefix = format!(".{name}.mreg-");
    reclaim_staging(parent, &prefix);
    let staging = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(parent)
        .with_context(|| format!("creating a temp folder in {}", parent.display()))?;
    let base = staging.path();
    let _held = hold(base);
    for dir in &plan.dirs {
        let path = base.join(dir);
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    progress.start("writing", plan.bytes);
    // Each object is located once. Costliest first, so that no big file ends up alone
    // on one core at the end: decoding a compressed object costs about three times
    // copying a raw one.
    let mut order: Vec<(u64, &PlanFile, Place)> = plan
        .files
        .par_iter()
        .map(|f| {
            let stored = reg.object(f.id)?;
            let cost = match stored.encoding() {
                Encoding::Zstd => f.size * 3,
                Encoding::Chunked => f.size * 2,
                Encoding::Raw => f.size,
            };
            Ok((cost, f, stored))
        })
        .collect::<Result<_>>()?;
    order.sort_by_key(|(cost, ..)| std::cmp::Reverse(*cost));
    let written: Result<()> = order.par_iter().try_for_each(|(_, f, stored)| {
        let mode = if f.exec { 0o755 } else { 0o644 };
        let dest = base.join(&f.path);
        copy_to_file(stored, f.id, f.size, &dest, mode, &|n| {
            progress.advance(n);
        })
        .with_context(|| format!("writing {}", f.path))
    });
    progress.finish();
    written?;
    for (path, target) in &plan.links {
        let link = base.join(path);
        std::os::unix::fs::symlink(target, &link)
            .with_context(|| format!("creating link {}", link.display()))?;
    }
    for (name, bytes) in &plan.beside {
        let path = base.join(name);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, bytes))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if opts.durable {
        atomic::sync_filesystem(base)?;
    }
    crate::crash::point("pull-written");
    swap_in(staging, &dest, existing)?;
    Ok(dest)
}

/// Returns the real path a pull writes to, refusing any place whose replacement
/// would destroy something: the registry or a folder holding it, the current folder
/// or one holding it, the filesystem root.
///
/// A symlink to a folder (a `current -> releases/7` deployment) resolves to that folder.
fn resolve_target(reg: &Registry, dest: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(dest).with_context(|| format!("resolving {}", dest.display()))?;
    let real = if fs::symlink_metadata(&abs).is_ok() {
        abs.canonicalize()
            .with_context(|| format!("resolving {}", dest.display()))?
    } else {
        match (
            abs.parent().and_then(|p| p.canonicalize().ok()),
            abs.file_name(),
        ) {
            (Some(parent), Some(name)) => parent.join(name),
            _ => abs,
        }
    };
    let refuse = |why: &str, hint: &str| -> anyhow::Error {
        Failure::usage(format!("cannot pull into {}: {why}", dest.display()))
            .hint(hint)
            .into()
    };
    if real.parent().is_none() || real.file_name().is_none() {
        return Err(refuse(
            "it is not a folder that can be replaced",
            "name a folder such as ./model",
        ));
    }
    if real.starts_with(reg.root()) {
        return Err(refuse(
            "it is inside the registry",
            "pull into a folder outside .mreg",
        ));
    }
    if reg.root().starts_with(&real) {
        return Err(refuse(
            "it holds the registry, which replacing it would delete",
            "pull into a folder of its own, such as ./model",
        ));
    }
    if std::env::current_dir().is_ok_and(|cwd| cwd.starts_with(&real)) {
        return Err(refuse(
            "it is the current folder or holds it",
            "pull into a folder of its own, such as ./model, or run mreg from elsewhere",
        ));
    }
    Ok(real)
}

/// Returns whether `dest` exists, refusing a non-folder and a non-empty folder
/// without `force`.
fn check_target(dest: &Path, force: bool) -> Result<bool> {
    match fs::symlink_metadata(dest) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err).with_context(|| format!("reading {}", dest.display())),
        Ok(meta) if !meta.is_dir() => Err(Failure::error(format!(
            "{} exists and is not a folder",
            dest.display()
        ))
        .hint("remove it or pull somewhere else")
        .into()),
        Ok(_) => {
            let empty = fs::read_dir(dest)
                .with_context(|| format!("reading {}", dest.display()))?
                .next()
                .is_none();
            if !empty && !force {
                return Err(Failure::error(format!("{} is not empty", dest.display()))
                    .hint("pass --force to replace its contents, or pull into a new folder")
                    .into());
            }
            Ok(true)
        }
    }
}

/// Opens the folder `dir` with an OS lock on it, held while the returned file is open:
/// the sign that the pull building it still runs.
fn hold(dir: &Path) -> Option<fs::File> {
    let flags =
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC;
    let fd = rustix::fs::open(dir, flags, rustix::fs::Mode::empty()).ok()?;
    rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
    Some(fs::File::from(fd))
}

/// Removes the folders named `prefix…` in `parent` that a pull killed while it built
/// or swapped them left: no OS lock on them, and older than the moment between making
/// one and locking it. Errors are ignored; the next pull tries again.
fn reclaim_staging(parent: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let is_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(prefix));
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_ours || !is_dir {
            continue;
        }
        let path = entry.path();
        let old = fs::symlink_metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|m| {
                std::time::SystemTime::now()
                    .duration_since(m)
                    .is_ok_and(|age| age >= super::lock::GRACE)
            });
        if old && let Some(_lock) = hold(&path) {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// Puts the finished folder at `dest` in one step.
fn swap_in(staging: tempfile::TempDir, dest: &Path, existing: bool) -> Result<()> {
    if !existing {
        fs::rename(staging.path(), dest)
            .with_context(|| format!("moving the new folder to {}", dest.display()))?;
        let _ = staging.keep();
        return atomic::sync_parent(dest);
    }
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        if renameat_with(CWD, staging.path(), CWD, dest, RenameFlags::EXCHANGE).is_ok() {
            // The old contents now sit at the temp path, removed when `staging` drops.
            return atomic::sync_parent(dest);
        }
    }
    let old = staging.path().with_extension("old");
    fs::rename(dest, &old).with_context(|| format!("moving {} aside", dest.display()))?;
    fs::rename(staging.path(), dest)
        .with_context(|| format!("moving the new folder to {}", dest.display()))?;
    let _ = staging.keep();
    let _ = fs::remove_dir_all(&old);
    atomic::sync_parent(dest)
}
