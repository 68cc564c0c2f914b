//! Opening a registry folder's own files as the untrusted input they are.
//!
//! Whoever can write to a registry folder (a teammate on a share, a sync, a tool that
//! does not know the layout) may have left a link, a FIFO or a device where mreg keeps
//! a file. So no link is followed on the way to a key or at it, a file is opened without
//! waiting for a writer and used only when it is a regular file, a record is read no
//! further than [`RECORD_LIMIT`], and the folders a write goes into are made one at a
//! time, each checked to be a real folder. The registry folder itself (`.mreg`) may be
//! a link: that is its owner's choice, not something found inside it.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rustix::fs::{Mode, OFlags};

use super::atomic;
use crate::error::Failure;

/// The largest record (version, run, event, stage state, `HEAD`, config, lock) read
/// from a registry: far above any real one, and small enough to hold in memory.
pub const RECORD_LIMIT: u64 = 16 << 20;

/// Opens `key` below `root` for reading, or returns `None` when it is absent.
///
/// Every folder on the way and the key itself are opened with `O_NOFOLLOW`, the key
/// with `O_NONBLOCK` (opening a planted FIFO would otherwise wait forever), and anything
/// but a regular file is refused.
pub fn open(root: &Path, key: &str) -> Result<Option<File>> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = rustix::fs::open(root, dir_flags, Mode::empty())
        .with_context(|| format!("opening {}", root.display()))?;
    let key = key.trim_end_matches('/');
    let parts: Vec<&str> = key.split('/').collect();
    let (last, folders) = parts.split_last().expect("split yields a part");
    for part in folders {
        match rustix::fs::openat(&dir, *part, dir_flags, Mode::empty()) {
            Ok(fd) => dir = fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                return Err(planted_on_the_way(root, key));
            }
            Err(err) => {
                return Err(io::Error::from(err))
                    .with_context(|| format!("opening {}", root.join(key).display()));
            }
        }
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let file = match rustix::fs::openat(&dir, *last, flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP) => return Err(planted(&root.join(key))),
        Err(err) => {
            return Err(io::Error::from(err))
                .with_context(|| format!("opening {}", root.join(key).display()));
        }
    };
    if !file.metadata()?.is_file() {
        return Err(planted(&root.join(key)));
    }
    Ok(Some(file))
}

/// Reads the record at `key` below `root`, or returns `None` when it is absent; a
/// record longer than [`RECORD_LIMIT`] is refused, and no more of it is read.
pub fn read_record(root: &Path, key: &str) -> Result<Option<Vec<u8>>> {
    let Some(file) = open(root, key)? else {
        return Ok(None);
    };
    let path = root.join(key);
    let too_large = || {
        Failure::error(format!(
            "{} is larger than {RECORD_LIMIT} bytes, too large for a record",
            path.display()
        ))
        .hint("`mreg fsck` checks the registry; a record this size was not written by mreg")
    };
    if file.metadata()?.len() > RECORD_LIMIT {
        return Err(too_large().into());
    }
    let mut bytes = Vec::new();
    file.take(RECORD_LIMIT + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > RECORD_LIMIT {
        return Err(too_large().into());
    }
    Ok(Some(bytes))
}

/// Reads the record at `key` below `root` as text, as [`read_record`].
pub fn read_text(root: &Path, key: &str) -> Result<Option<String>> {
    let Some(bytes) = read_record(root, key)? else {
        return Ok(None);
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", root.join(key).display()))
}

/// Makes the folders above `key` below `root` and returns the key's path, refusing a
/// folder on the way that is a link or not a folder, so that no write leaves the
/// registry.
pub fn make_parents(root: &Path, key: &str) -> Result<PathBuf> {
    let key = key.trim_end_matches('/');
    let mut dir = root.to_path_buf();
    let parts: Vec<&str> = key.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(planted(&dir)),
            Err(err) if err.kind() == ErrorKind::NotFound => match fs::create_dir(&dir) {
                Ok(()) => atomic::sync_parent(&dir)?,
                Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                    if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                        return Err(planted(&dir));
                    }
                }
                Err(err) => {
                    return Err(err).with_context(|| format!("creating {}", dir.display()));
                }
            },
            Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
        }
    }
    Ok(root.join(key))
}

/// Makes the folder `key` below `root` and every folder above it, as [`make_parents`].
pub fn make_dir(root: &Path, key: &str) -> Result<PathBuf> {
    let key = key.trim_end_matches('/');
    make_parents(root, &format!("{key}/-"))?;
    Ok(root.join(key))
}

/// Reads a cache file at `path`, or returns `None` when it is absent, not a regular
/// file, unreadable or longer than `limit`: a cache that cannot be trusted is only
/// rebuilt, never an error.
pub fn read_cache(path: &Path, limit: u64) -> Option<Vec<u8>> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let file = File::from(rustix::fs::open(path, flags, Mode::empty()).ok()?);
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > limit {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= limit).then_some(bytes)
}

/// Reads a file a user names on the command line (a key, a list of signers): links
/// followed, as the user meant, but never a FIFO or device waited on, and at most
/// `limit` bytes, else an error saying so.
pub fn read_user_file(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let file = File::from(
        rustix::fs::open(path, flags, Mode::empty())
            .with_context(|| format!("opening {}", path.display()))?,
    );
    let meta = file.metadata()?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        bail!("{} is larger than {limit} bytes", path.display());
    }
    Ok(bytes)
}

/// Opens the file at `path` (in a folder already checked to be real) for appending,
/// making it if need be; a link or special file there is refused.
pub fn open_append(path: &Path) -> Result<File> {
    let flags = OFlags::WRONLY
        | OFlags::APPEND
        | OFlags::CREATE
        | OFlags::NOFOLLOW
        | OFlags::CLOEXEC
        | OFlags::NONBLOCK;
    let file = match rustix::fs::open(path, flags, Mode::from_raw_mode(0o666)) {
        Ok(fd) => File::from(fd),
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NXIO) => return Err(planted(path)),
        Err(err) => {
            return Err(io::Error::from(err))
                .with_context(|| format!("opening {}", path.display()));
        }
    };
    if !file.metadata()?.is_file() {
        return Err(planted(path));
    }
    Ok(file)
}

/// Opens the file at `path` (in a folder already checked to be real) for reading and
/// writing, keeping what it holds, or makes it: for a download resumed across runs. A
/// link, FIFO or device found there is removed and a new file made in its place, so a
/// planted link cannot turn the write into one outside the registry.
pub fn open_resumable(path: &Path) -> Result<File> {
    let flags =
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let mode = Mode::from_raw_mode(0o666);
    let found = match rustix::fs::open(path, flags, mode) {
        Ok(fd) => {
            let file = File::from(fd);
            file.metadata()?.is_file().then_some(file)
        }
        Err(rustix::io::Errno::LOOP) => None,
        Err(err) => {
            return Err(io::Error::from(err))
                .with_context(|| format!("opening {}", path.display()));
        }
    };
    if let Some(file) = found {
        return Ok(file);
    }
    fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    let fd = rustix::fs::open(path, flags | OFlags::EXCL, mode)
        .map_err(io::Error::from)
        .with_context(|| format!("creating {}", path.display()))?;
    Ok(File::from(fd))
}

/// Leaves an empty marker file at `path` (in a folder already checked to be real) if
/// there is none; something else planted at the name (a link, a FIFO) is replaced, never
/// followed.
pub fn mark(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => return Ok(()),
        Ok(meta) if meta.is_dir() => return Err(planted(path)),
        Ok(_) => fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?,
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    }
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::open(path, flags, Mode::from_raw_mode(0o666)) {
        Ok(_) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(err) => {
            Err(io::Error::from(err)).with_context(|| format!("creating {}", path.display()))
        }
    }
}

/// Returns whether the folder `key` below `root` exists, refusing a link or a
/// non-folder on the way or at it.
pub fn dir_exists(root: &Path, key: &str) -> Result<bool> {
    let mut dir = root.to_path_buf();
    for part in key.trim_end_matches('/').split('/') {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(planted(&dir)),
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
        }
    }
    Ok(true)
}

/// Returns what an entry that is neither a regular file nor a folder is, in words
/// (`a symlink`, `a FIFO`, `a socket`, `a device`), or `None` for a file or folder.
pub fn special_kind(kind: fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    Some(if kind.is_symlink() {
        "a symlink"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        return None;
    })
}

/// Returns the refusal for a link, FIFO or device where a registry keeps a file or
/// folder.
pub fn planted(path: &Path) -> anyhow::Error {
    Failure::error(format!(
        "{} is a symlink, or not what a registry keeps there; mreg does not follow links or read special files inside a registry",
        path.display()
    ))
    .hint("a registry folder holds only plain files and folders: remove it (`mreg fsck` lists every such entry), and have whoever planted it checked")
    .into()
}

/// Returns the refusal for the first link or non-folder on the way to `key`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fifos_and_oversized_records_are_refused_and_absent_keys_are_none() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("models")).unwrap();
        fs::write(root.join("models/a.toml"), b"x = 1\n").unwrap();
        assert_eq!(
            read_record(root, "models/a.toml").unwrap().unwrap(),
            b"x = 1\n"
        );
        assert!(read_record(root, "models/none.toml").unwrap().is_none());
        assert!(read_record(root, "absent/none.toml").unwrap().is_none());

        std::os::unix::fs::symlink("/etc/hostname", root.join("models/link.toml")).unwrap();
        let err = read_record(root, "models/link.toml").unwrap_err();
        assert!(format!("{err:#}").contains("is a symlink"), "{err:#}");

        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            root.join("models/fifo"),
            Mode::RUSR | Mode::WUSR,
        )
        .unwrap();
        let err = read_record(root, "models/fifo").unwrap_err();
        assert!(format!("{err:#}").contains("special files"), "{err:#}");

        std::os::unix::fs::symlink("/", root.join("linked")).unwrap();
        let err = read_record(root, "linked/etc/hostname").unwrap_err();
        assert!(format!("{err:#}").contains("linked"), "{err:#}");
        let err = make_parents(root, "linked/new/file").unwrap_err();
        assert!(format!("{err:#}").contains("linked"), "{err:#}");

        let big = File::create(root.join("models/big.toml")).unwrap();
        big.set_len(RECORD_LIMIT + 1).unwrap();
        let err = read_record(root, "models/big.toml").unwrap_err();
        assert!(format!("{err:#}").contains("too large"), "{err:#}");
    }

    #[test]
    fn a_resumable_file_keeps_its_bytes_and_replaces_a_planted_link_or_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let temp = dir.path().join("fetch-1");
        std::os::unix::fs::symlink(&victim, &temp).unwrap();
        let file = open_resumable(&temp).unwrap();
        assert_eq!(file.metadata().unwrap().len(), 0);
        std::os::unix::fs::FileExt::write_all_at(&file, b"new", 0).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(!fs::symlink_metadata(&temp).unwrap().is_symlink());
        drop(file);
        assert_eq!(open_resumable(&temp).unwrap().metadata().unwrap().len(), 3);

        let fifo = dir.path().join("fetch-2");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, Mode::RUSR | Mode::WUSR).unwrap();
        assert!(open_resumable(&fifo).unwrap().metadata().unwrap().is_file());
    }

    #[test]
    fn make_dir_makes_every_folder_and_returns_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let made = make_dir(dir.path(), "objects/ab").unwrap();
        assert!(made.is_dir());
        assert_eq!(made, dir.path().join("objects/ab"));
        assert!(!made.join("-").exists());
    }
}
