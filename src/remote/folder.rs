//! A remote in a folder: another registry on a local disk or a mounted share.
//!
//! It is written with the same protocol as a local registry (temp file, fsync, exclusive
//! hard link; `HEAD` swapped under `HEAD.lock`), so local commands and remotes can use
//! one share at once. Reading never follows a symlink: every folder on the way to a key
//! and the key itself are opened with `O_NOFOLLOW`, so a link planted in a shared
//! folder cannot make mreg read or write outside it.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{Created, Fetched, Listed, Remote, Swap, Tick};
use crate::error::Failure;
use crate::store::lock::{Holder, Lock};
use crate::store::{Registry, atomic, files, keys, tmp};

/// How long a swap waits for another writer's `HEAD.lock`.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Bytes moved per read when copying.
const COPY_CHUNK: usize = 1 << 20;

/// Objects copied into a folder remote at once: a local disk, so about the cores.
const LOCAL_COPIES: usize = 4;

/// A registry folder used as a remote.
pub struct FolderRemote {
    url: String,
    root: PathBuf,
    /// This process's temp folder in the remote's `tmp/`.
    tmp: tmp::Area,
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
        Ok(FolderRemote::at_url(url, reg.root()))
    }

    /// Returns the registry folder `root` (a `.mreg` folder) seen as a remote, to list
    /// a local registry's keys the way a remote's are listed.
    pub fn at_root(root: &Path) -> FolderRemote {
        FolderRemote::at_url(&root.display().to_string(), root)
    }

    fn at_url(url: &str, root: &Path) -> FolderRemote {
        FolderRemote {
            url: url.to_owned(),
            root: root.to_path_buf(),
            tmp: tmp::Area::new(root.join(keys::TMP.trim_end_matches('/'))),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn open_key(&self, key: &str) -> Result<Option<File>> {
        files::open(&self.root, key)
    }

    fn make_parents(&self, key: &str) -> Result<PathBuf> {
        files::make_parents(&self.root, key)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.tmp.dir()
    }

    /// Takes the lock beside `key` (`KEY.lock`, as a stage swap takes it), naming
    /// `command` as its holder; another writer holding it past the wait is a conflict.
    fn lock(&self, key: &str, command: &str) -> Result<Lock> {
        let target = self.make_parents(key)?;
        let holder = Holder::this_process(
            command.to_owned(),
            crate::clock::format_time(std::time::SystemTime::now()),
        );
        Lock::acquire(&self.tmp_dir(), &target, &holder, LOCK_WAIT).map_err(|err| {
            Failure::conflict(format!("{err:#}"))
                .hint("another writer holds the remote's lock; try again")
                .into()
        })
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

    fn lock_head(&self, model: &str) -> Result<Option<super::Guard>> {
        let lock = self.lock(&crate::store::keys::head(model), "mreg sync (removal)")?;
        Ok(Some(Box::new(lock)))
    }

    fn writing(&self, on_wait: &dyn Fn(&str)) -> Result<Option<super::Guard>> {
        let guard = crate::store::gclock::writing(&self.root, on_wait)?;
        Ok(Some(Box::new(guard)))
    }

    fn get(&self, key: &str) -> Result<Option<Fetched>> {
        let Some(file) = self.open_key(key)? else {
            return Ok(None);
        };
        let meta = file.metadata()?;
        super::check_value_size(self, key, meta.len())?;
        let mut bytes = Vec::new();
        file.take(files::RECORD_LIMIT + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", self.path(key).display()))?;
        super::check_value_size(self, key, bytes.len() as u64)?;
        let tag = tag_of(&bytes);
        Ok(Some(Fetched {
            bytes,
            tag,
            modified: meta.modified().ok(),
        }))
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

    fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<Option<Vec<u8>>> {
        super::check_range(self, key, len)?;
        let Some(file) = self.open_key(key)? else {
            return Ok(None);
        };
        let mut bytes = vec![0u8; len as usize];
        match file.read_exact_at(&mut bytes, offset) {
            Ok(()) => Ok(Some(bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(super::short_range(self, key, offset, len))
            }
            Err(err) => Err(err).with_context(|| format!("reading {}", self.path(key).display())),
        }
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

    /// Copies each object into a temp file of the remote's (created read-only, not
    /// flushed), or links it there when it is a file of this registry on the same
    /// filesystem, flushes the remote's filesystem once, links each into place (a key
    /// present already is left as it is), and flushes once more: an object's key only
    /// ever names durable bytes, for two flushes a batch.
    fn upload_all(&self, items: &[super::Upload], tick: Tick) -> Result<()> {
        let staged = std::sync::Mutex::new(Vec::with_capacity(items.len()));
        super::transfer::parallel(items, LOCAL_COPIES, &|item| {
            let target = self.make_parents(&item.key)?;
            if fs::symlink_metadata(&target).is_ok() {
                tick(item.len);
                return Ok(());
            }
            // An object file of this registry on the remote's filesystem is linked, not
            // copied: both are immutable, and the bytes were flushed when it was stored.
            if let super::Source::Path(path) = &item.source
                && let Some(linked) = link_into(path, &self.tmp_dir(), item.len)
            {
                tick(item.len);
                staged
                    .lock()
                    .expect("staged uploads")
                    .push((linked, target));
                return Ok(());
            }
            let mut source = item.open()?;
            let mut temp = atomic::object_temp_file(&self.tmp_dir())?;
            let copied = std::io::copy(&mut source, temp.as_file_mut())
                .with_context(|| format!("writing {}", temp.path().display()))?;
            if copied != item.len {
                bail!(
                    "an object to send changed length: expected {} bytes, found {copied}",
                    item.len
                );
            }
            tick(item.len);
            staged
                .lock()
                .expect("staged uploads")
                .push((temp.into_temp_path(), target));
            Ok(())
        })?;
        let staged = staged.into_inner().expect("staged uploads");
        if staged.is_empty() {
            return Ok(());
        }
        atomic::sync_filesystem(&self.root)?;
        crate::crash::point("upload-staged");
        for (temp, target) in staged {
            match fs::hard_link(&temp, &target) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("publishing {}", target.display()));
                }
            }
        }
        atomic::sync_filesystem(&self.root)
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
        let lock = self.lock(key, "mreg (remote swap)")?;
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
            let kind = entry.file_type();
            if kind.is_dir() {
                continue;
            }
            // A link, FIFO, socket or device is listed, so that a sync names and
            // refuses it rather than stopping or leaving it out without a word; nothing
            // reads or follows it.
            let special =
                (!kind.is_file()).then(|| files::special_kind(kind).unwrap_or("no regular file"));
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

/// Links the object file `path` into a new name in `tmp` when both are on one
/// filesystem and it is a read-only regular file of `len` bytes (an object as a
/// registry stores it); `None` when it cannot be linked, and it is then copied.
fn link_into(path: &Path, tmp: &Path, len: u64) -> Option<tempfile::TempPath> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.len() != len || meta.permissions().mode() & 0o222 != 0 {
        return None;
    }
    tempfile::Builder::new()
        .prefix("tmp-")
        .make_in(tmp, |name| fs::hard_link(path, name))
        .ok()
        .map(tempfile::NamedTempFile::into_temp_path)
}
