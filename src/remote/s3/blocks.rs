//! The memory an upload reads objects into: blocks of 1 MiB, kept for the next upload
//! when the HTTP client is done with them.
//!
//! Reading each object into a buffer of its own size made the allocator's behaviour
//! the sync's peak memory: freeing a buffer of many MiB raises glibc's threshold for
//! mapping large allocations, after which buffers come from per-thread heaps that keep
//! what they held, and a sync of a 1.3 GB folder peaked near 150 MiB although never
//! more than 16 MiB of object bytes were in flight. Blocks of one size, reused, keep
//! the memory an upload holds equal to what it has in flight.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use bytes::Bytes;
use object_store::PutPayload;

/// The size of a block.
const BLOCK: usize = 1 << 20;

/// Payloads smaller than this are read into a buffer of their own: the allocator
/// serves them from its heaps and reuses them well.
const OWN_BUFFER_BELOW: u64 = 64 << 10;

/// Free blocks, shared by every upload of a remote.
pub struct Blocks {
    free: Mutex<Vec<Vec<u8>>>,
    /// How many free blocks are kept; more are given back to the allocator.
    keep: usize,
}

impl Blocks {
    /// Returns an empty pool that keeps at most `keep` free blocks.
    pub fn new(keep: usize) -> Arc<Blocks> {
        Arc::new(Blocks {
            free: Mutex::new(Vec::new()),
            keep,
        })
    }

    /// Returns the `len` bytes of `source` at `offset`, as a payload to send.
    pub fn read(self: &Arc<Self>, source: &File, offset: u64, len: u64) -> Result<PutPayload> {
        if len < OWN_BUFFER_BELOW {
            let mut bytes = vec![0u8; len as usize];
            source
                .read_exact_at(&mut bytes, offset)
                .context("reading an object to send")?;
            return Ok(PutPayload::from(bytes));
        }
        let mut chunks = Vec::with_capacity(len.div_ceil(BLOCK as u64) as usize);
        let mut at = 0u64;
        while at < len {
            let n = (len - at).min(BLOCK as u64) as usize;
            let mut buf = self.take();
            buf.resize(n, 0);
            source
                .read_exact_at(&mut buf, offset + at)
                .context("reading an object to send")?;
            chunks.push(Bytes::from_owner(Block {
                buf,
                pool: Arc::clone(self),
            }));
            at += n as u64;
        }
        Ok(chunks.into_iter().collect())
    }

    fn take(&self) -> Vec<u8> {
        let mut buf = self
            .free
            .lock()
            .expect("the block pool lock is never poisoned")
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BLOCK));
        buf.clear();
        buf
    }

    fn give_back(&self, buf: Vec<u8>) {
        let mut free = self
            .free
            .lock()
            .expect("the block pool lock is never poisoned");
        if free.len() < self.keep && buf.capacity() == BLOCK {
            free.push(buf);
        }
    }
}

/// A block lent to one payload; it returns to its pool when the payload is dropped.
struct Block {
    buf: Vec<u8>,
    pool: Arc<Blocks>,
}

impl AsRef<[u8]> for Block {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_payload_holds_the_bytes_read_and_its_blocks_come_back() {
        let mut file = tempfile::tempfile().unwrap();
        let bytes: Vec<u8> = (0..(3 << 20) + 17).map(|i| (i % 251) as u8).collect();
        file.write_all(&bytes).unwrap();
        let pool = Blocks::new(8);
        let payload = pool.read(&file, 5, bytes.len() as u64 - 5).unwrap();
        let sent: Vec<u8> = payload.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(sent, bytes[5..]);
        assert_eq!(
            payload.as_ref().len(),
            4,
            "three whole blocks and a partial one"
        );
        drop(payload);
        assert_eq!(pool.free.lock().unwrap().len(), 4);
        let small = pool.read(&file, 0, 100).unwrap();
        assert_eq!(small.content_length(), 100);
        assert_eq!(
            pool.free.lock().unwrap().len(),
            4,
            "small payloads take no block"
        );
    }

    #[test]
    fn the_pool_keeps_no_more_than_it_was_told() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![7u8; 5 << 20]).unwrap();
        let pool = Blocks::new(2);
        drop(pool.read(&file, 0, 5 << 20).unwrap());
        assert_eq!(pool.free.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_short_file_is_an_error() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![1u8; 1 << 20]).unwrap();
        assert!(Blocks::new(2).read(&file, 0, 2 << 20).is_err());
    }
}
