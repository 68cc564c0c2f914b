//! Hashing a file being pushed through a memory map: the hashing threads read the
//! page cache's own pages, with no copy into a buffer, which on a warm cache takes a
//! third off the time of hashing what `read` returns.
//!
//! Only files of the folder being pushed are mapped, never the registry's or a
//! remote's (those are untrusted, and read through bounded reads). A mapped file that
//! another program truncates while it is hashed ends the push by `SIGBUS` (exit status
//! 135 in a shell), as it can end `git add` and `b3sum`. A push publishes only at its
//! end, so the registry is left as it was. Peak RSS counts the mapped pages: they are
//! the page cache's, shared and reclaimable, not memory mreg allocates.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use crate::id::ObjectId;

/// Files smaller than this are read: mapping them saves too little to pay for the map.
const MAPPED_MIN: u64 = 16 << 20;

/// Returns the id of `file`'s content, `len` bytes long, hashed on all cores from a
/// read-only map of it; `None` when it is not worth mapping or cannot be (the caller
/// then reads it). A file whose length is not `len` before and after is refused.
pub fn hash_file(file: &File, len: u64, progress: &dyn Fn(u64)) -> Option<io::Result<ObjectId>> {
    if len < MAPPED_MIN {
        return None;
    }
    // The open file itself, by its descriptor: not the path, which may name another
    // file by now.
    let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    if !path.exists() {
        return None;
    }
    let unchanged = || match file.metadata() {
        Ok(meta) if meta.len() == len => Ok(()),
        Ok(_) => Err(io::Error::other(
            "the file changed while mreg was reading it",
        )),
        Err(err) => Err(err),
    };
    let hashed = unchanged().and_then(|()| {
        let mut hasher = blake3::Hasher::new();
        hasher.update_mmap_rayon(&path)?;
        unchanged()?;
        Ok(ObjectId::from_hasher(&hasher))
    });
    progress(len);
    Some(hashed)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn mapped_hash_is_the_content_id() {
        let mut file = tempfile::tempfile().unwrap();
        let bytes: Vec<u8> = (0..40u32 << 20).map(|i| (i * 7 + i / 3) as u8).collect();
        file.write_all(&bytes).unwrap();
        let seen = std::sync::atomic::AtomicU64::new(0);
        let id = hash_file(&file, bytes.len() as u64, &|n| {
            seen.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap()
        .unwrap();
        assert_eq!(id, crate::store::object::hash_bytes(&bytes));
        assert_eq!(seen.into_inner(), bytes.len() as u64);
    }

    #[test]
    fn a_file_of_another_length_is_refused() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![1; 20 << 20]).unwrap();
        assert!(hash_file(&file, 24 << 20, &|_| {}).unwrap().is_err());
        assert!(hash_file(&file, 1 << 20, &|_| {}).is_none());
    }
}
