//! A remote in a folder: another registry on a local disk or a mounted share.
//!
//! It is written with the same protocol as a local registry (temp file, fsync, exclusive
//! hard link; `HEAD` swapped under `HEAD.lock`), so local commands and remotes can use
//! one share at once. Reading never follows a symlink: every folder on the way to a key
//! and the key itself are opened with `O_NOFOLLOW`, so a link planted in a shared
//! folder cannot make mreg read or write outside it.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rustix::fs::{Mode, OFlags};

use super::{Created, Fetched, Listed, Remote, Swap, Tick};
use crate::error::Failure;
use crate::store::lock::{Holder, Lock};
use crate::store::{Registry, atomic, keys};

/// How long a swap waits for another writer's `HEAD.lock`.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Bytes moved per read when copying.
const COPY_CHUNK: usize = 1 << 20;

/// A registry folder used as a remote.
pub struct FolderRemote {
    url: String,
    root: PathBuf,
}

impl FolderRemote {
    /// Opens the registry at `path` (a folder holding `.mreg`, or `.mreg` itself);
    /// with `create`, makes one there when there is none.
    pub fn open(url: &str, path: &Path, create: bool) -> Result<FolderRemote> {
        let reg = match Registry::open(&path.to_string_lossy()) {
            Ok(reg) => reg,
            Err(_) if create => Registry::init(path)?.0,
            Err(err) => return Err(err),
        };
        Ok(FolderRemote {
            url: url.to_owned(),
            root: reg.root().to_path_buf(),
        })
    }

    /// Returns the registry folder `root` (a `.mreg` folder) seen as a remote, to list
    /// a local registry's keys the way a remote's are listed.
    pub fn at_root(root: &Path) -> FolderRemote {
        FolderRemote {
            url: root.display().to_string(),
            root: root.to_path_buf(),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Opens a key for reading without following any symlink on the way, or returns
    /// `None` when it is absent.
    fn open_key(&self, key: &str) -> Result<Option<File>> {
        let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut dir = rustix::fs::open(&self.root, dir_flags, Mode::empty())
            .with_context(|| format!("opening {}", self.root.display()))?;
        let parts: Vec<&str> = key.split('/').collect();
        let (last, folders) = parts.split_last().expect("split yields a part");
        for part in folders {
            match rustix::fs::openat(&dir, *part, dir_flags, Mode::empty()) {
                Ok(fd) => dir = fd,
                Err(rustix::io::Errno::NOENT) => return Ok(None),
                Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                    return Err(planted_on_the_way(&self.root, key));
                }
                Err(err) => {
                    return Err(io::Error::from(err))
                        .with_context(|| format!("opening {}", self.path(key).display()));
                }
            }
        }
        // Without NONBLOCK, opening a FIFO planted there would wait for a writer forever.
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let file = match rustix::fs::openat(&dir, *last, flags, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(rustix::io::Errno::LOOP) => return Err(planted(&self.path(key))),
            Err(err) => {
                return Err(io::Error::from(err))
                    .with_context(|| format!("opening {}", self.path(key).display()));
            }
        };
        if !file.metadata()?.is_file() {
            bail!(
                "{} is not a regular file; a registry holds only files there",
                self.path(key).display()
            );
        }
        Ok(Some(file))
    }

    /// Makes the folders above `key`, refusing any that is a symlink.
    fn make_parents(&self, key: &str) -> Result<PathBuf> {
        let mut dir = self.root.clone();
        let parts: Vec<&str> = key.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            dir.push(part);
            match fs::symlink_metadata(&dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(planted(&dir)),
                Err(err) if err.kind() == ErrorKind::NotFound => match fs::create_dir(&dir) {
                    Ok(()) => atomic::sync_parent(&dir)?,
                    Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
                    Err(err) => {
                        return Err(err).with_context(|| format!("creating {}", dir.display()));
                    }
                },
                Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
            }
        }
        Ok(self.path(key))
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join(keys::TMP.trim_end_matches('/'))
    }
}

/// Returns the refusal for a symlink where a registry keeps a folder or file.
fn planted(path: &Path) -> anyhow::Error {
    Failure::error(format!(
        "{} is a symlink, or not what the registry keeps there; mreg does not follow links in a remote",
        path.display()
    ))
    .hint("a registry folder holds only plain files and folders: remove the link, and have whoever planted it checked")
    .into()
}

/// Returns the refusal for the first symlink or non-folder on the way to `key`.
fn planted_on_the_way(root: &Path, key: &str) -> anyhow::Error {
    let mut path = root.to_path_buf();
    for part in key.split('/') {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            _ => return planted(&path),
        }
    }
    planted(&path)
}

/// Returns what a file that is neither a regular file, a folder nor a symlink is.
fn special_kind(kind: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "no regular file"
    }
}

/// Returns the tag a folder remote gives a value: a hash of its bytes.
fn tag_of(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

impl Remote for FolderRemote {
    fn url(&self) -> &str {
        &self.url
    }

    fn get(&self, key: &str) -> Result<Option<Fetched>> {
        let Some(file) = self.open_key(key)? else {
            return Ok(None);
        };
        super::check_value_size(self, key, file.metadata()?.len())?;
        let mut bytes = Vec::new();
        file.take(super::VALUE_LIMIT + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", self.path(key).display()))?;
        super::check_value_size(self, key, bytes.len() as u64)?;
        let tag = tag_of(&bytes);
        Ok(Some(Fetched { bytes, tag }))
    }

    fn download(
        &self,
        key: &str,
        out: &File,
        offset: u64,
        limit: u64,
        tick: Tick,
    ) -> Result<Option<u64>> {
        let Some(file) = self.open_key(key)? else {
            return Ok(None);
        };
        let len = file.metadata()?.len();
        super::check_download_size(self, key, len, limit)?;
        let mut buf = vec![0u8; COPY_CHUNK];
        let mut at = offset;
        while at < len {
            let n = file
                .read_at(&mut buf, at)
                .with_context(|| format!("reading {}", self.path(key).display()))?;
            if n == 0 {
                break;
            }
            out.write_all_at(&buf[..n], at)
                .context("writing a downloaded object to a temp file")?;
            at += n as u64;
            tick(n as u64);
        }
        Ok(Some(len))
    }

    fn size(&self, key: &str) -> Result<Option<u64>> {
        Ok(match self.open_key(key)? {
            Some(file) => Some(file.metadata()?.len()),
            None => None,
        })
    }

    fn create(&self, key: &str, bytes: &[u8]) -> Result<Created> {
        let target = self.make_parents(key)?;
        Ok(
            if atomic::create_exclusive(&self.tmp_dir(), &target, bytes)? {
                Created::New
            } else {
                Created::Exists
            },
        )
    }

    fn upload(
        &self,
        key: &str,
        source: &File,
        len: u64,
        _journal: PathBuf,
        tick: Tick,
    ) -> Result<()> {
        let target = self.make_parents(key)?;
        if fs::symlink_metadata(&target).is_ok() {
            return Ok(());
        }
        let copy = |temp: &mut tempfile::NamedTempFile| {
            let mut buf = vec![0u8; COPY_CHUNK];
            let mut at = 0;
            while at < len {
                let n = source
                    .read_at(&mut buf, at)
                    .context("reading an object to send")?;
                if n == 0 {
                    bail!("an object to send ended early: expected {len} bytes, found {at}");
                }
                temp.write_all(&buf[..n])
                    .with_context(|| format!("writing {}", temp.path().display()))?;
                at += n as u64;
                tick(n as u64);
            }
            Ok(())
        };
        if atomic::create_exclusive_with(&self.tmp_dir(), &target, copy)? {
            let _ =
                fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o444));
        }
        Ok(())
    }

    fn swap(&self, key: &str, expected: Option<&str>, bytes: &[u8]) -> Result<Swap> {
        let target = self.make_parents(key)?;
        let holder = Holder::this_process(
            "mreg (remote swap)".to_owned(),
            crate::clock::format_time(std::time::SystemTime::now()),
        );
        let lock = Lock::acquire(&self.tmp_dir(), &target, &holder, LOCK_WAIT).map_err(|err| {
            Failure::conflict(format!("{err:#}"))
                .hint("another writer holds the remote's lock; try again")
        })?;
        lock.swap(&self.tmp_dir(), || {
            let current = self.get(key)?.map(|f| f.tag);
            Ok((current.as_deref() == expected).then(|| (bytes.to_vec(), ())))
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        let start = self.root.join(prefix.trim_end_matches('/'));
        let mut out = Vec::new();
        if fs::symlink_metadata(&start).is_err() {
            return Ok(out);
        }
        for entry in walkdir::WalkDir::new(&start).follow_links(false) {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err)
                    if err
                        .io_error()
                        .is_some_and(|e| e.kind() == ErrorKind::NotFound) =>
                {
                    continue;
                }
                Err(err) => {
                    return Err(err).with_context(|| format!("listing {}", start.display()));
                }
            };
            if entry.file_type().is_symlink() {
                return Err(planted(entry.path()));
            }
            let kind = entry.file_type();
            if kind.is_dir() {
                continue;
            }
            // A FIFO, socket or device is listed, so that a sync names and refuses it
            // rather than leaving it out without a word; nothing reads it.
            let special = (!kind.is_file()).then(|| special_kind(kind));
            let rel = entry
                .path()
                .strip_prefix(&self.root)
                .expect("walk stays below the root");
            let Some(key) = rel.to_str() else { continue };
            let size = if special.is_some() {
                0
            } else {
                entry.metadata().map_or(0, |m| m.len())
            };
            out.push(Listed {
                key: key.to_owned(),
                size,
                special,
            });
        }
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<()> {
        match fs::remove_file(self.path(key)) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err).with_context(|| format!("removing {}", self.path(key).display())),
        }
    }
}
