//! A remote in memory, for the engine's unit tests: sync and the stage transaction run
//! against it without a server. It keeps the two promises of a remote (create-only
//! writes and compare-and-swap) unless told to ignore them, as some stores do, and it
//! can be told to fail, to test interrupted and retried transfers.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Result, bail};

use super::{Created, Fetched, Listed, Remote, Swap, Tick};

/// A bucket in memory; clones share it, as two machines share a bucket.
#[derive(Clone)]
pub struct MemoryRemote {
    url: String,
    state: Arc<State>,
}

/// What a bucket in memory holds and how it behaves.
struct State {
    /// Key → (bytes, tag).
    keys: Mutex<BTreeMap<String, (Vec<u8>, String)>>,
    next_tag: AtomicU64,
    /// Whether create-only writes and compare-and-swap are ignored (plain overwrites).
    ignore_conditions: AtomicBool,
    /// Writes allowed before every further write fails; negative: no limit.
    writes_left: AtomicI64,
    /// Whether a compare-and-swap that succeeds reports an error, as a reply lost on
    /// the way would.
    lose_swap_reply: AtomicBool,
    /// Every call, as `VERB KEY`, in order.
    calls: Mutex<Vec<String>>,
}

impl MemoryRemote {
    /// Returns an empty remote at `url` (used in messages only).
    pub fn new(url: &str) -> MemoryRemote {
        MemoryRemote {
            url: url.to_owned(),
            state: Arc::new(State {
                keys: Mutex::new(BTreeMap::new()),
                next_tag: AtomicU64::new(1),
                ignore_conditions: AtomicBool::new(false),
                writes_left: AtomicI64::new(-1),
                lose_swap_reply: AtomicBool::new(false),
                calls: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Makes the remote ignore create-only writes and compare-and-swap.
    pub fn ignore_conditions(&self) {
        self.state.ignore_conditions.store(true, Ordering::SeqCst);
    }

    /// Makes every write after the next `n` fail; `None` lifts the limit.
    pub fn fail_writes_after(&self, n: Option<i64>) {
        self.state
            .writes_left
            .store(n.unwrap_or(-1), Ordering::SeqCst);
    }

    /// Makes successful compare-and-swaps report an error, as if the reply was lost.
    pub fn lose_swap_replies(&self, lose: bool) {
        self.state.lose_swap_reply.store(lose, Ordering::SeqCst);
    }

    /// Returns the bytes at `key`.
    pub fn bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.state
            .keys
            .lock()
            .expect("keys")
            .get(key)
            .map(|(b, _)| b.clone())
    }

    /// Puts `bytes` at `key` behind mreg's back (a damaged or hostile store).
    pub fn put(&self, key: &str, bytes: &[u8]) {
        let tag = self.tag();
        self.state
            .keys
            .lock()
            .expect("keys")
            .insert(key.to_owned(), (bytes.to_vec(), tag));
    }

    /// Returns every key, sorted.
    pub fn key_list(&self) -> Vec<String> {
        self.state
            .keys
            .lock()
            .expect("keys")
            .keys()
            .cloned()
            .collect()
    }

    /// Returns the calls made so far, and forgets them.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.state.calls.lock().expect("calls"))
    }

    fn tag(&self) -> String {
        format!("\"{}\"", self.state.next_tag.fetch_add(1, Ordering::SeqCst))
    }

    fn note(&self, verb: &str, key: &str) {
        self.state
            .calls
            .lock()
            .expect("calls")
            .push(format!("{verb} {key}"));
    }

    fn write_allowed(&self, key: &str) -> Result<()> {
        let left = self.state.writes_left.load(Ordering::SeqCst);
        if left == 0 {
            bail!("{}: writing {key} failed (the store went away)", self.url);
        }
        if left > 0 {
            self.state.writes_left.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl Remote for MemoryRemote {
    fn url(&self) -> &str {
        &self.url
    }

    fn get(&self, key: &str) -> Result<Option<Fetched>> {
        self.note("get", key);
        let found = self
            .state
            .keys
            .lock()
            .expect("keys")
            .get(key)
            .map(|(b, t)| Fetched {
                bytes: b.clone(),
                tag: t.clone(),
                modified: None,
            });
        if let Some(found) = &found {
            super::check_value_size(self, key, found.bytes.len() as u64)?;
        }
        Ok(found)
    }

    fn download(
        &self,
        key: &str,
        out: &File,
        offset: u64,
        limit: u64,
        tick: Tick,
    ) -> Result<Option<u64>> {
        self.note("download", key);
        let Some(bytes) = self.bytes(key) else {
            return Ok(None);
        };
        super::check_download_size(self, key, bytes.len() as u64, limit)?;
        let from = (offset as usize).min(bytes.len());
        out.write_all_at(&bytes[from..], offset)?;
        tick((bytes.len() - from) as u64);
        Ok(Some(bytes.len() as u64))
    }

    fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<Option<Vec<u8>>> {
        self.note("read_range", key);
        super::check_range(self, key, len)?;
        let Some(bytes) = self.bytes(key) else {
            return Ok(None);
        };
        let end = offset.saturating_add(len);
        if end > bytes.len() as u64 {
            return Err(super::short_range(self, key, offset, len));
        }
        Ok(Some(bytes[offset as usize..end as usize].to_vec()))
    }

    fn size(&self, key: &str) -> Result<Option<u64>> {
        self.note("size", key);
        Ok(self.bytes(key).map(|b| b.len() as u64))
    }

    fn create(&self, key: &str, bytes: &[u8]) -> Result<Created> {
        if !key.starts_with(crate::store::keys::GC_PREFIX) {
            super::lease::require_held(&self.url)?;
        }
        self.note("create", key);
        self.write_allowed(key)?;
        let mut keys = self.state.keys.lock().expect("keys");
        if keys.contains_key(key) && !self.state.ignore_conditions.load(Ordering::SeqCst) {
            return Ok(Created::Exists);
        }
        keys.insert(key.to_owned(), (bytes.to_vec(), self.tag()));
        Ok(Created::New)
    }

    fn upload(
        &self,
        key: &str,
        source: &File,
        len: u64,
        _journal: PathBuf,
        tick: Tick,
    ) -> Result<()> {
        self.note("upload", key);
        self.write_allowed(key)?;
        let mut bytes = Vec::with_capacity(len as usize);
        (&mut &*source).take(len).read_to_end(&mut bytes)?;
        if bytes.len() as u64 != len {
            bail!("an object to send ended early: expected {len} bytes");
        }
        tick(len);
        let mut keys = self.state.keys.lock().expect("keys");
        keys.entry(key.to_owned())
            .or_insert_with(|| (bytes, self.tag()));
        Ok(())
    }

    fn swap(&self, key: &str, expected: Option<&str>, bytes: &[u8]) -> Result<Swap> {
        self.note("swap", key);
        self.write_allowed(key)?;
        {
            let mut keys = self.state.keys.lock().expect("keys");
            let current = keys.get(key).map(|(_, t)| t.as_str());
            if current != expected && !self.state.ignore_conditions.load(Ordering::SeqCst) {
                return Ok(Swap::Moved);
            }
            keys.insert(key.to_owned(), (bytes.to_vec(), self.tag()));
        }
        if self.state.lose_swap_reply.load(Ordering::SeqCst) {
            bail!("{}: the reply to a swap of {key} was lost", self.url);
        }
        Ok(Swap::Done(()))
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        self.note("list", prefix);
        Ok(self
            .state
            .keys
            .lock()
            .expect("keys")
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, (b, _))| Listed {
                key: k.clone(),
                size: b.len() as u64,
                special: None,
            })
            .collect())
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.note("delete", key);
        self.state.keys.lock().expect("keys").remove(key);
        Ok(())
    }

    fn writing(&self, on_wait: &dyn Fn(&str)) -> Result<Option<super::Guard>> {
        let handles = || -> Box<dyn Remote> { Box::new(self.clone()) };
        let share = super::lease::writing(self, &handles, on_wait)?;
        Ok(Some(Box::new(share)))
    }

    fn retake_writing(&self, on_wait: &dyn Fn(&str)) -> Result<()> {
        let handles = || -> Box<dyn Remote> { Box::new(self.clone()) };
        super::lease::retake_writer(self, &handles, on_wait)
    }

    fn collecting(
        &self,
        wait: std::time::Duration,
        on_wait: &dyn Fn(&str),
    ) -> Result<Option<super::lease::Held>> {
        let handles = || -> Box<dyn Remote> { Box::new(self.clone()) };
        super::lease::collecting(self, &handles, wait, on_wait).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::probe;

    #[test]
    fn it_passes_the_probe_unless_it_ignores_conditions() {
        let remote = MemoryRemote::new("mem://probe");
        assert!(probe::run(&remote).unwrap().enforced());
        assert!(remote.key_list().is_empty(), "the probe cleans up");
        remote.ignore_conditions();
        let found = probe::run(&remote).unwrap();
        assert!(!found.create_only && !found.compare_and_swap);
    }
}
