//! The SHA-256 digest of each object a signature lists, computed once and remembered.
//!
//! Objects are named by BLAKE3, but the stock Model Signing verifier re-hashes a
//! folder with SHA-256 and nothing else, so a signature it accepts must list SHA-256
//! digests. The first signature of a version reads each of its files once (verified
//! against its BLAKE3 name on the way); the digests are then kept in
//! `cache/sha256.bin`, so signing or verifying the version again reads nothing.
//!
//! The cache decides what a signature vouches for, so it is sealed like the stat
//! cache, under a key only this user can read: another user who can write to the
//! registry folder cannot make a colleague sign digests of content of their choosing.
//! A cache whose seal fails is ignored, and the digests computed again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, Result};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::id::ObjectId;
use crate::store::{Registry, atomic, files, object, read, usercache};

/// The first line of the cache's body.
const MAGIC: &[u8] = b"mreg sha256 1\n";

/// The largest cache read back: some 780,000 digests.
const CACHE_LIMIT: u64 = 48 << 20;

/// Bytes of one entry: a BLAKE3 id and its content's SHA-256.
const ENTRY: usize = 64;

/// The digests this user computed in a registry, and those this process adds.
pub struct Digests {
    path: PathBuf,
    known: HashMap<ObjectId, [u8; 32]>,
    added: Mutex<Vec<(ObjectId, [u8; 32])>>,
}

impl Digests {
    /// Loads the registry's digest cache; a missing, damaged or unsealed one is empty.
    pub fn load(reg: &Registry) -> Digests {
        let path = reg.cache_dir().join("sha256.bin");
        let known = files::read_cache(&path, CACHE_LIMIT)
            .and_then(|bytes| usercache::unseal(&bytes).and_then(decode))
            .unwrap_or_default();
        Digests {
            path,
            known,
            added: Mutex::new(Vec::new()),
        }
    }

    /// Returns the SHA-256 of each of `objects` (ids with content sizes), in order:
    /// remembered, or computed from the registry's copy, which is verified against
    /// its id as it is read. `progress` is told of the bytes read.
    pub fn sha256_of(
        &self,
        reg: &Registry,
        objects: &[(ObjectId, u64)],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<[u8; 32]>> {
        objects
            .par_iter()
            .map(|&(id, size)| {
                if let Some(digest) = self.known.get(&id) {
                    return Ok(*digest);
                }
                let digest = compute(reg, id, size, progress)?;
                self.added
                    .lock()
                    .expect("digest lock is never poisoned")
                    .push((id, digest));
                Ok(digest)
            })
            .collect()
    }

    /// Returns the bytes that [`Digests::sha256_of`] would have to read for `objects`.
    pub fn to_read(&self, objects: &[(ObjectId, u64)]) -> u64 {
        objects
            .iter()
            .filter(|(id, _)| !self.known.contains_key(id))
            .map(|(_, size)| size)
            .sum()
    }

    /// Writes the cache back with what this process added; a failure to write only
    /// costs time later, and is not an error.
    pub fn save(self, reg: &Registry) {
        let added = self
            .added
            .into_inner()
            .expect("digest lock is never poisoned");
        if added.is_empty() {
            return;
        }
        let mut all = self.known;
        all.extend(added);
        let max = (CACHE_LIMIT as usize - usercache::SEAL_LEN - MAGIC.len()) / ENTRY;
        let mut entries: Vec<_> = all.into_iter().collect();
        entries.sort_unstable_by_key(|(id, _)| *id);
        entries.truncate(max);
        let mut out = vec![0u8; usercache::SEAL_LEN];
        out.extend_from_slice(MAGIC);
        for (id, digest) in &entries {
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(digest);
        }
        let Some(bytes) = usercache::seal(out) else {
            return;
        };
        if reg.make_parents_of(&self.path).is_ok() {
            let _ = atomic::replace(&reg.tmp_dir(), &self.path, &bytes);
        }
    }
}

/// Returns the SHA-256 of an object's content, read from the registry and verified
/// against its id.
fn compute(reg: &Registry, id: ObjectId, size: u64, progress: &dyn Fn(u64)) -> Result<[u8; 32]> {
    let place = reg.find_object(id).ok_or_else(|| read::missing(id))?;
    let mut hasher = Sha256::new();
    object::copy_verified(&place, id, Some(size), &mut hasher, progress)
        .with_context(|| format!("reading object {} to digest it", id.short(16)))?;
    Ok(hasher.finalize().into())
}

fn decode(body: &[u8]) -> Option<HashMap<ObjectId, [u8; 32]>> {
    let entries = body.strip_prefix(MAGIC)?;
    if entries.len() % ENTRY != 0 {
        return None;
    }
    Some(
        entries
            .chunks_exact(ENTRY)
            .map(|e| {
                let id = ObjectId::from_bytes(e[..32].try_into().expect("32 bytes"));
                (id, e[32..].try_into().expect("32 bytes"))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_computed_once_then_remembered_and_a_forged_cache_is_ignored() {
        let temp = crate::testing::TempRegistry::new();
        let reg = &temp.reg;
        let version = temp.push("m", &[("weights.bin", b"weights")], &[]);
        let graph = read::graph(reg, version.tree).unwrap();
        let objects: Vec<_> = graph
            .objects()
            .into_iter()
            .filter(|(_, size)| *size == 7)
            .collect();
        let digests = Digests::load(reg);
        assert_eq!(digests.to_read(&objects), 7);
        let first = digests.sha256_of(reg, &objects, &|_| {}).unwrap();
        assert_eq!(first[0], <[u8; 32]>::from(Sha256::digest(b"weights")));
        digests.save(reg);
        if usercache::seal_key().is_none() {
            return; // No user cache folder here: nothing is remembered, by design.
        }
        assert_eq!(Digests::load(reg).to_read(&objects), 0);
        // Someone else rewrites the cache without the seal key: it is not believed.
        let path = reg.cache_dir().join("sha256.bin");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(Digests::load(reg).to_read(&objects), 7);
    }
}
