//! The user's own cache folder, outside every registry: `$MREG_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/mreg`, else `~/.cache/mreg`. It holds the mirrors of bucket
//! registries and the key that seals this user's stat caches (see
//! [`super::statcache`]): what others who can write to a shared registry folder must
//! not be able to forge.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

use rustix::fs::{Mode, OFlags};

/// Returns the user's cache folder, or `None` when no variable names one. A relative
/// `XDG_CACHE_HOME` is ignored, as its specification says.
pub fn dir() -> Option<PathBuf> {
    let env = |key: &str| {
        std::env::var_os(key)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("MREG_CACHE_DIR")
        .or_else(|| {
            env("XDG_CACHE_HOME")
                .filter(|d| d.is_absolute())
                .map(|d| d.join("mreg"))
        })
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("mreg")))
}

/// Returns this user's secret key for sealing caches, made (32 bytes from the kernel's
/// random source, readable by this user alone) on first use; `None` when it can be
/// neither read nor made, and then no cache is trusted.
///
/// A key file is used only when it is a regular file of exactly 32 bytes, owned by this
/// user and readable by nobody else; anything else found at its name (a link, a FIFO,
/// an empty or short file, one others can read) is replaced by a new key, since a key
/// someone else can read, or choose, seals nothing.
pub fn seal_key() -> Option<[u8; 32]> {
    let path = dir()?.join("seal-key");
    let read = || -> Option<[u8; 32]> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let mut file = fs::File::from(rustix::fs::open(&path, flags, Mode::empty()).ok()?);
        let meta = file.metadata().ok()?;
        // No permission bit for the group or others (the six lowest), and ours.
        let private =
            meta.mode().trailing_zeros() >= 6 && meta.uid() == rustix::process::getuid().as_raw();
        if !meta.is_file() || meta.len() != 32 || !private {
            return None;
        }
        let mut key = [0u8; 32];
        file.read_exact(&mut key).ok()?;
        Some(key)
    };
    if let Some(key) = read() {
        return Some(key);
    }
    if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
        fs::remove_file(&path).ok()?;
    }
    let mut key = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut r| r.read_exact(&mut key))
        .ok()?;
    fs::create_dir_all(path.parent()?).ok()?;
    let temp = path.with_extension(format!("new-{}", std::process::id()));
    let _ = fs::remove_file(&temp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .ok()?;
    file.write_all(&key).and_then(|()| file.sync_all()).ok()?;
    // Another process may have made one meanwhile: the first name wins, and every
    // process then uses that one.
    let linked = fs::hard_link(&temp, &path);
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => Some(key),
        Err(_) => read(),
    }
}

/// The line of a seal: 64 hex digits and a newline.
pub const SEAL_LEN: usize = 65;

/// Writes the seal of the body after the first [`SEAL_LEN`] bytes of `out` (left for
/// it) under this user's key into those bytes; `None` when the user has no key (the
/// cache is then not kept).
pub fn seal(mut out: Vec<u8>) -> Option<Vec<u8>> {
    let key = seal_key()?;
    let seal = blake3::keyed_hash(&key, &out[SEAL_LEN..]);
    out[..SEAL_LEN - 1].copy_from_slice(seal.to_hex().as_bytes());
    out[SEAL_LEN - 1] = b'\n';
    Some(out)
}

/// Returns the body of a sealed cache file, if its seal verifies under this user's key.
pub fn unseal(bytes: &[u8]) -> Option<&[u8]> {
    let key = seal_key()?;
    let newline = bytes.iter().position(|b| *b == b'\n')?;
    let (line, body) = (&bytes[..newline], &bytes[newline + 1..]);
    let seal = blake3::Hash::from_hex(line).ok()?;
    // `Hash` compares in constant time.
    (seal == blake3::keyed_hash(&key, body)).then_some(body)
}
