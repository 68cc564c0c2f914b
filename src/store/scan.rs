//! Scanning a folder to snapshot: every entry walked without following links, what
//! `.mregignore` matches (and the registry folder itself) left out, and what a tree
//! cannot hold refused with its path: FIFOs, sockets, devices, names that are not UTF-8,
//! symlinks leading out of the folder. Only metadata is read.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::snapshot::{IGNORE_FILE, Skipped};
use super::statcache::Stamp;
use super::{tree, walk};
use crate::error::Failure;

/// A regular file found by a scan.
pub(super) struct FileItem {
    /// Its path relative to the folder, `/`-separated.
    pub(super) rel: String,
    /// Its path.
    pub(super) abs: PathBuf,
    /// Its size and times, to ask the stat cache.
    pub(super) stamp: Stamp,
    /// Whether it is executable.
    pub(super) exec: bool,
    /// The folder holding it, by its index in the scan.
    dir: usize,
    /// Whether it is a link leading out of the folder, read as the file it names
    /// ([`Reading::follow_into`]).
    pub(super) followed: bool,
}

/// How a folder is read, beyond what `.mregignore` says.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// Read a link that leads out of the folder as the file it names when that file is
    /// inside this folder, instead of refusing it: a Hugging Face cache snapshot is
    /// links into the cache's `blobs/`. A link anywhere else is still refused.
    pub follow_into: Option<PathBuf>,
    /// Top-level names left out (`.git` of a cloned repository), reported as skipped.
    pub leave_out: Vec<String>,
}

/// An entry of a scanned folder: files and folders by their index in the scan.
pub(super) enum Child {
    File(String, usize),
    Link(String, String),
    Dir(String, usize),
}

/// What scanning a folder found, before anything is read.
pub(super) struct Scan {
    /// Every regular file.
    pub(super) files: Vec<FileItem>,
    /// Every folder's entries; the folder itself is at 0.
    pub(super) dirs: Vec<Vec<Child>>,
    /// What was left out.
    pub(super) skipped: Vec<Skipped>,
    /// Every folder's path, by its index (the folder itself at 0).
    dir_paths: Vec<PathBuf>,
    /// Bytes of every path found, together.
    path_bytes: u64,
}

fn load_ignore(root: &Path) -> Result<Gitignore> {
    let mut builder = GitignoreBuilder::new(root);
    let path = root.join(IGNORE_FILE);
    if path.is_file()
        && let Some(err) = builder.add(&path)
    {
        return Err(
            Failure::error(format!("cannot read {}: {err}", path.display()))
                .hint("fix the line it names; the syntax is the one of .gitignore")
                .into(),
        );
    }
    builder
        .build()
        .with_context(|| format!("reading {}", path.display()))
}

fn refuse(path: &Path, why: &str) -> anyhow::Error {
    Failure::error(format!("cannot store {}: {why}", path.display()))
        .hint(format!(
            "remove it, or list it in {IGNORE_FILE} to leave it out"
        ))
        .into()
}

/// Walks `root` (leaving out the registry folder `registry` and what `.mregignore`
/// matches), refusing what a tree cannot hold, and reads nothing but metadata.
pub(super) fn scan(root: &Path, registry: Option<&Path>, reading: &Reading) -> Result<Scan> {
    let ignore = load_ignore(root)?;
    let mut skipped = Vec::new();
    let mut found = Scan {
        files: Vec::new(),
        dirs: vec![Vec::new()],
        skipped: Vec::new(),
        dir_paths: vec![root.to_path_buf()],
        path_bytes: 0,
    };
    let mut stack: Vec<usize> = vec![0];
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| {
            let rel = e.path().strip_prefix(root).unwrap_or(e.path());
            let is_dir = e.file_type().is_dir();
            let reason = if is_dir && registry.is_some_and(|r| e.path() == r) {
                "registry"
            } else if e.depth() == 1
                && reading
                    .leave_out
                    .iter()
                    .any(|n| e.file_name() == std::ffi::OsStr::new(n))
            {
                "not part of the model"
            } else if ignore.matched(rel, is_dir).is_ignore() {
                "mregignore"
            } else {
                return true;
            };
            let mut path = rel.to_string_lossy().into_owned();
            if is_dir {
                path.push('/');
            }
            skipped.push(Skipped { path, reason });
            false
        });
    for entry in walker {
        let entry = entry.map_err(|err| {
            let path = err
                .path()
                .map_or_else(|| root.to_path_buf(), Path::to_path_buf);
            anyhow::Error::new(err).context(format!("scanning {}", path.display()))
        })?;
        found.add(root, &entry, &mut stack, reading)?;
    }
    found.skipped = skipped;
    found.stat_files()?;
    Ok(found)
}

impl Scan {
    /// Reads every file's metadata, several folders at once, each file by its name in
    /// its folder (opened once): on a folder of thousands of small files the `lstat`s
    /// are most of a push that finds nothing new, and a full path walked per file
    /// doubles them.
    fn stat_files(&mut self) -> Result<()> {
        let mut by_dir: Vec<Vec<usize>> = vec![Vec::new(); self.dirs.len()];
        for (i, file) in self.files.iter().enumerate() {
            by_dir[file.dir].push(i);
        }
        let files = &self.files;
        let found: Vec<(usize, Stamp, bool)> = by_dir
            .par_iter()
            .enumerate()
            .filter(|(_, list)| !list.is_empty())
            .map(|(dir, list)| -> Result<Vec<(usize, Stamp, bool)>> {
                let path = &self.dir_paths[dir];
                let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let fd = rustix::fs::open(path, flags, Mode::empty())
                    .with_context(|| format!("reading {}", path.display()))?;
                list.iter()
                    .map(|&i| {
                        let file = &files[i];
                        let name = file.abs.file_name().unwrap_or_default();
                        let follow = if file.followed {
                            AtFlags::empty()
                        } else {
                            AtFlags::SYMLINK_NOFOLLOW
                        };
                        let st = rustix::fs::statat(&fd, name, follow)
                            .with_context(|| format!("reading {}", file.abs.display()))?;
                        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                            return Err(refuse(
                                &file.abs,
                                "it stopped being a file while mreg scanned the folder",
                            ));
                        }
                        Ok((i, Stamp::of_stat(&st), st.st_mode & 0o111 != 0))
                    })
                    .collect()
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        for (i, stamp, exec) in found {
            self.files[i].stamp = stamp;
            self.files[i].exec = exec;
        }
        Ok(())
    }

    /// Adds one walked entry under the folder on top of `stack`, the folders from the
    /// root down to the entry's parent.
    fn add(
        &mut self,
        root: &Path,
        entry: &walkdir::DirEntry,
        stack: &mut Vec<usize>,
        reading: &Reading,
    ) -> Result<()> {
        let path = entry.path();
        let Some(name) = entry.file_name().to_str() else {
            return Err(refuse(path, "its name is not valid UTF-8"));
        };
        let name = name.to_owned();
        let depth = entry.depth();
        stack.truncate(depth);
        let parent = *stack
            .last()
            .expect("the root folder is always on the stack");
        let rel = path
            .strip_prefix(root)
            .expect("walked paths are under the root");
        let rel = rel
            .to_str()
            .expect("every component was checked to be UTF-8")
            .to_owned();
        let ft = entry.file_type();
        if rel.len() as u64 > walk::LIMITS.path_len {
            return Err(refuse(
                path,
                &format!(
                    "its path is longer than {} bytes, more than a version may hold",
                    walk::LIMITS.path_len
                ),
            ));
        }
        self.path_bytes += rel.len() as u64;
        if self.path_bytes > walk::LIMITS.path_bytes {
            return Err(refuse(
                root,
                &format!(
                    "its paths take more than {} bytes together, more than a version may hold",
                    walk::LIMITS.path_bytes
                ),
            ));
        }
        let paths = self.files.len() + self.dirs.len();
        if paths as u64 >= walk::LIMITS.paths {
            return Err(refuse(
                root,
                &format!(
                    "it holds more than {} files and folders, more than a version may hold",
                    walk::LIMITS.paths
                ),
            ));
        }
        if ft.is_dir() {
            if depth > walk::LIMITS.depth {
                return Err(refuse(
                    path,
                    &format!(
                        "it nests folders deeper than {} levels, which no version may",
                        walk::LIMITS.depth
                    ),
                ));
            }
            self.dirs.push(Vec::new());
            self.dir_paths.push(path.to_path_buf());
            let idx = self.dirs.len() - 1;
            self.dirs[parent].push(Child::Dir(name, idx));
            stack.push(idx);
        } else if ft.is_file() {
            // Its metadata is read after the walk, for every file at once.
            self.files.push(FileItem {
                rel,
                abs: path.to_path_buf(),
                stamp: Stamp::default(),
                exec: false,
                dir: parent,
                followed: false,
            });
            self.dirs[parent].push(Child::File(name, self.files.len() - 1));
        } else if ft.is_symlink() {
            self.add_link(path, name, rel, (depth, parent), reading)?;
        } else {
            return Err(refuse(path, special(ft)));
        }
        Ok(())
    }

    /// Adds a link: kept as a link when it stays inside the folder, read as the file it
    /// names when it leads into [`Reading::follow_into`], refused otherwise.
    fn add_link(
        &mut self,
        path: &Path,
        name: String,
        rel: String,
        (depth, parent): (usize, usize),
        reading: &Reading,
    ) -> Result<()> {
        let target =
            fs::read_link(path).with_context(|| format!("reading link {}", path.display()))?;
        let Some(target) = target.to_str() else {
            return Err(refuse(path, "its link target is not valid UTF-8"));
        };
        if let Err(why) = tree::check_link_target(depth - 1, target) {
            let inside = reading.follow_into.as_ref().is_some_and(|root| {
                fs::canonicalize(path).is_ok_and(|real| real.starts_with(root))
                    && fs::metadata(path).is_ok_and(|m| m.is_file())
            });
            if inside {
                self.files.push(FileItem {
                    rel,
                    abs: path.to_path_buf(),
                    stamp: Stamp::default(),
                    exec: false,
                    dir: parent,
                    followed: true,
                });
                self.dirs[parent].push(Child::File(name, self.files.len() - 1));
                return Ok(());
            }
            return Err(refuse(path, &format!("it is a symlink and {why}")));
        }
        self.dirs[parent].push(Child::Link(name, target.to_owned()));
        Ok(())
    }
}

/// Says what a file that is neither a file, a folder nor a symlink is.
fn special(ft: fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "it is a FIFO (named pipe)"
    } else if ft.is_socket() {
        "it is a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "it is a device"
    } else {
        "it is not a file, folder or symlink"
    }
}
