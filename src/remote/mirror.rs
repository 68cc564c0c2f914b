//! A registry on a bucket, used directly: `--registry s3://bucket/prefix`.
//!
//! Commands run against a local mirror of the bucket's registry, kept in the user's
//! cache folder (`$MREG_CACHE_DIR`, else `$XDG_CACHE_HOME/mreg`, else `~/.cache/mreg`,
//! then `mirrors/URLHASH`). Before each command the mirror fetches the bucket's new
//! records (never its objects: those come when a command reads them). Everything a
//! command writes goes to the bucket first, with the bucket's conditional writes
//! deciding version numbers and stage moves, and reaches the mirror only afterwards.
//! The mirror is a cache: deleting it costs only a refetch.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::bootstrap;
use super::known::Known;
use super::sync::{Options, Refused, Sync};
use super::{Created, Remote, Swap, transfer};
use crate::error::Failure;
use crate::id::{ObjectId, StateId};
use crate::manifest::StageState;
use crate::store::backend::{Backend, BackendRef, Writing};
use crate::store::lock::Holder;
use crate::store::object::Encoding;
use crate::store::{NoProgress, Progress, Registry, atomic, gclock, keys, read, runs, stages};

/// How many version numbers a push tries before giving up.
const CLAIM_TRIES: usize = 1000;

/// Returns the folder holding mirrors of bucket registries.
pub fn cache_root() -> Result<PathBuf> {
    crate::store::usercache::dir().ok_or_else(|| {
        Failure::error("no cache folder for the bucket's mirror: HOME is not set")
            .hint("set MREG_CACHE_DIR to a folder mreg may use")
            .into()
    })
}

/// Opens the registry at a bucket URL through its local mirror, refreshed; returns it
/// with the bucket's items the refresh refused (see [`sync`]), which the mirror lacks.
pub fn open(url: &str, progress: Box<dyn Progress + Send>) -> Result<(Registry, Vec<Refused>)> {
    let remote = super::open(url, false)?;
    let config = bootstrap::config_of(
        &*remote,
        format!(
            "create one with `mreg init {url}`, or send a local one there with `mreg remote add NAME {url}` and `mreg sync NAME`"
        ),
    )?;
    // The endpoint is part of the bucket's identity: the same URL through another
    // endpoint is another store, with its own records and its own probe result.
    let endpoint = super::current_endpoint(url).unwrap_or_default();
    let hash = blake3::hash(format!("{url}\0{endpoint}").as_bytes()).to_hex();
    let dir = cache_root()?.join("mirrors").join(&hash[..16]);
    open_in(remote, &config, &dir, progress)
}

/// Opens the registry on `remote`, whose `config.toml` holds `config`, through a mirror
/// kept in `dir`, refreshed; returns it with the items the refresh refused.
pub fn open_in(
    remote: Box<dyn Remote>,
    config: &[u8],
    dir: &std::path::Path,
    progress: Box<dyn Progress + Send>,
) -> Result<(Registry, Vec<Refused>)> {
    let url = remote.url().to_owned();
    let url = url.as_str();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (reg, _) = Registry::init(dir)?;
    bootstrap::adopt_config(&reg, config, url)?;
    let known = Known::load(&reg, url)?;
    known.check_identity(&*remote, false)?;
    let enforced = conditional_writes(&reg, &*remote);
    let options = Options::default();
    let report = Sync::new(&reg, &*remote, &known, options, &NoProgress).run()?;
    if let Some(conflict) = report.conflicts.first() {
        return Err(Failure::error(format!(
            "the local mirror of {url} disagrees with the bucket: {}",
            conflict.message
        ))
        .hint(format!(
            "the mirror is a cache: delete {} and run the command again",
            dir.display()
        ))
        .into());
    }
    let link = Link {
        remote,
        known,
        url: url.to_owned(),
        progress,
        enforced,
        sent: std::sync::atomic::AtomicU64::new(0),
    };
    Ok((reg.with_backend(BackendRef(Arc::new(link))), report.refused))
}

/// A mirror's bucket.
pub(crate) struct Link {
    pub(super) remote: Box<dyn Remote>,
    pub(super) known: Known,
    pub(super) url: String,
    /// Where uploads of a push report their bytes.
    progress: Box<dyn Progress + Send>,
    /// Whether the bucket was shown to enforce conditional writes.
    enforced: bool,
    /// Bytes of objects sent to the bucket by this process.
    sent: std::sync::atomic::AtomicU64,
}

/// Returns whether the bucket enforces conditional writes: probed once per mirror (the
/// answer is kept in the mirror's cache), or vouched for by `MREG_SINGLE_WRITER=1`. A
/// probe that cannot run (no write permission) counts as not shown, and is tried again
/// next time.
fn conditional_writes(reg: &Registry, remote: &dyn Remote) -> bool {
    if std::env::var("MREG_SINGLE_WRITER").is_ok_and(|v| v == "1") {
        return true;
    }
    let path = reg.cache_dir().join("conditional-writes");
    if let Some(text) = crate::store::files::read_cache(&path, 64) {
        return text.trim_ascii() == b"enforced";
    }
    match super::probe::run(remote) {
        Ok(probe) => {
            let text = if probe.enforced() {
                "enforced\n"
            } else {
                "not enforced\n"
            };
            let _ = atomic::replace(&reg.tmp_dir(), &path, text.as_bytes());
            probe.enforced()
        }
        Err(_) => false,
    }
}

impl Link {
    /// Fetches the bucket's new records into the mirror.
    fn refresh(&self, reg: &Registry) -> Result<()> {
        let bare = Registry::open(&reg.root().to_string_lossy())?;
        let options = Options::default();
        Sync::new(&bare, &*self.remote, &self.known, options, &NoProgress).run()?;
        Ok(())
    }

    /// Makes sure the objects a record just published names are on the bucket, when
    /// this process's lease was lost while the record was on its way: a `gc` that took
    /// the lease for abandoned may have deleted some of them meanwhile. It takes the
    /// lease again (waiting for that `gc` to finish), forgets what it remembered of the
    /// bucket, and sends whatever is missing, so the record never names a missing
    /// object.
    fn make_whole(&self, reg: &Registry, objects: &[ObjectId]) -> Result<()> {
        if super::lease::require_held(&self.url).is_ok() {
            return Ok(());
        }
        self.remote.retake_writing(&|m| reg.notice(m))?;
        self.known.forget()?;
        let (_, sent) = transfer::send_all(reg, &*self.remote, &self.known, objects, &NoProgress)?
            .require(transfer::damaged_here)?;
        self.sent
            .fetch_add(sent, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Creates `key` on the bucket; the same bytes found there count as ours (a retry
    /// after a lost reply); other bytes are a conflict.
    fn create_same(&self, key: &str, bytes: &[u8]) -> Result<bool> {
        match self.remote.create(key, bytes)? {
            Created::New => Ok(true),
            Created::Exists => {
                let there = self.remote.get(key)?.map(|f| f.bytes);
                if there.as_deref() == Some(bytes) {
                    Ok(false)
                } else {
                    Err(Failure::conflict(format!(
                        "{key} already holds something else on {}",
                        self.url
                    ))
                    .hint("run the command again")
                    .into())
                }
            }
        }
    }
}

impl Backend for Link {
    fn bucket_url(&self) -> Option<&str> {
        Some(&self.url)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn writing(&self, reg: &Registry) -> Result<Writing> {
        let local = gclock::writing(reg.root(), &|m| reg.notice(m))?;
        let lease = self.remote.writing(&|m| reg.notice(m))?;
        self.known.check_epoch(&*self.remote)?;
        Ok(Writing { lease, local })
    }

    fn require_conditional_writes(&self, what: &str) -> Result<()> {
        if self.enforced {
            return Ok(());
        }
        Err(Failure::error(format!(
            "{} does not enforce conditional writes, so {what} there could silently overwrite another writer's",
            self.url
        ))
        .hint("use a store that enforces them (docs/remotes.md); if only one writer ever uses this bucket, set MREG_SINGLE_WRITER=1")
        .into())
    }

    fn sent_bytes(&self) -> Option<u64> {
        Some(self.sent.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn fetch_object(&self, reg: &Registry, id: ObjectId) -> Result<crate::store::object::Place> {
        transfer::fetch_one(reg, &*self.remote, &self.known, id, None, &|_| {})
    }

    fn fetch_tree(
        &self,
        reg: &Registry,
        tree: crate::id::TreeId,
        select: Option<&crate::store::select::Select>,
        progress: &dyn crate::store::Progress,
    ) -> Result<Option<u64>> {
        super::fetch_tree(reg, &*self.remote, &self.known, tree, select, progress).map(Some)
    }

    fn holds_object(&self, _reg: &Registry, id: ObjectId) -> Result<bool> {
        if self.known.encoding_of(id).is_some() || self.known.packed(&*self.remote, id)?.is_some() {
            return Ok(true);
        }
        for encoding in Encoding::ALL {
            let key = keys::object(id, encoding);
            if self.remote.size(&key)?.is_some() {
                self.known.insert(&key)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn publish_file(&self, reg: &Registry, key: &str, bytes: &[u8]) -> Result<()> {
        let objects: Vec<ObjectId> = if key.starts_with(keys::RUNS) {
            runs::run_objects(key, bytes, &|t| read::read_tree(reg, t))?
                .into_iter()
                .map(|(id, _)| id)
                .collect()
        } else {
            Vec::new()
        };
        let (_, sent) = transfer::send_all(reg, &*self.remote, &self.known, &objects, &NoProgress)?
            .require(transfer::damaged_here)?;
        self.sent
            .fetch_add(sent, std::sync::atomic::Ordering::Relaxed);
        self.create_same(key, bytes)?;
        self.make_whole(reg, &objects)
    }

    fn claim_version(
        &self,
        reg: &Registry,
        model: &str,
        tree: crate::id::TreeId,
        first: u64,
        render: &dyn Fn(u64) -> Result<String>,
    ) -> Result<u64> {
        self.require_conditional_writes("numbering a version")?;
        let objects: Vec<ObjectId> = transfer::closure(tree, &|t| read::read_tree(reg, t))?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let (_, sent) =
            transfer::send_all(reg, &*self.remote, &self.known, &objects, &*self.progress)?
                .require(transfer::damaged_here)?;
        self.sent
            .fetch_add(sent, std::sync::atomic::Ordering::Relaxed);
        let taken = super::highest_version(&*self.remote, model)?;
        let start = first.max(taken.saturating_add(1));
        if taken == u64::MAX {
            return Err(Failure::error(format!(
                "{model} on {} has a version numbered {taken}, the highest number there is, so no version can follow it",
                self.url
            ))
            .hint("push under another model name")
            .into());
        }
        for n in (start..=u64::MAX).take(CLAIM_TRIES) {
            let text = render(n)?;
            let key = keys::version(model, n);
            let ours = match self.remote.create(&key, text.as_bytes())? {
                Created::New => true,
                // The same bytes, nonce and all: our own earlier attempt whose reply
                // was lost.
                Created::Exists => {
                    self.remote.get(&key)?.map(|f| f.bytes).as_deref() == Some(text.as_bytes())
                }
            };
            let path = crate::store::models::version_path(reg, model, n);
            if ours {
                self.make_whole(reg, &objects)?;
                atomic::replace(&reg.tmp_dir(), &path, text.as_bytes())?;
                self.known.note_same_record(&key, text.as_bytes())?;
                return Ok(n);
            }
            if let Some(there) = self.remote.get(&key)? {
                atomic::create_exclusive(&reg.tmp_dir(), &path, &there.bytes)?;
                self.known.note_same_record(&key, &there.bytes)?;
            }
        }
        Err(Failure::conflict(format!(
            "could not claim a version number for {model} on {}: {CLAIM_TRIES} numbers were taken while trying",
            self.url
        ))
        .hint("push again")
        .into())
    }

    fn swap_head(
        &self,
        reg: &Registry,
        expected: Option<&StateId>,
        new: &StageState,
        _holder: &Holder,
        _wait: std::time::Duration,
    ) -> Result<Swap<StateId>> {
        self.require_conditional_writes("moving a stage")?;
        let model = new.model.as_str();
        let key = keys::head(model);
        let current = self.remote.get(&key)?;
        let current_id = current.as_ref().and_then(|f| stages::parse_head(&f.bytes));
        if current_id.as_ref() != expected {
            self.refresh(reg)?;
            return Ok(Swap::Moved);
        }
        let text = new.to_toml()?;
        let id = StateId::of(text.as_bytes());
        self.create_same(&keys::state(model, &id), text.as_bytes())?;
        let tag = current.as_ref().map(|f| f.tag.as_str());
        let swapped = match self.remote.swap(&key, tag, &stages::head_bytes(&id)) {
            Ok(swapped) => swapped,
            Err(err) => {
                // A reply lost on the way: the swap may have happened all the same.
                let now = self.remote.get(&key).ok().flatten();
                let names_ours = now.and_then(|f| stages::parse_head(&f.bytes)) == Some(id.clone());
                if names_ours {
                    Swap::Done(())
                } else {
                    return Err(err);
                }
            }
        };
        match swapped {
            Swap::Done(()) => {
                super::sync::mark_head(&*self.remote, model)?;
                stages::publish_state(reg, new)?;
                let holder =
                    Holder::this_process(new.command.clone().unwrap_or_default(), new.time.clone());
                let local = stages::head_file(reg, model)?;
                stages::advance(
                    reg,
                    model,
                    local.as_ref(),
                    &id,
                    &holder,
                    std::time::Duration::from_secs(10),
                )?;
                Ok(Swap::Done(id))
            }
            Swap::Moved => {
                self.refresh(reg)?;
                Ok(Swap::Moved)
            }
        }
    }
}

#[cfg(test)]
#[path = "mirror_tests.rs"]
mod tests;
