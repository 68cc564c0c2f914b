//! Where a registry's contested writes are decided and its missing objects come from.
//!
//! A registry folder decides for itself: a version number is claimed by creating
//! `versions/N.toml` exclusively, a stage moves by swapping `HEAD` under `HEAD.lock`,
//! and an object it lacks is missing. A registry opened as `--registry s3://…` is a
//! local mirror of a bucket, and the bucket decides: numbers and stage moves are claimed
//! there with create-only writes and compare-and-swap, run records are published there,
//! and missing objects are fetched from there (the remote module implements that
//! [`Backend`]). The registry handle holds one backend, chosen when it is opened, and
//! the store asks it; nothing else needs to know which kind a registry is.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::Registry;
use super::atomic::Swap;
use super::lock::Holder;
use super::object::Place;
use super::{Progress, gclock, models, read, stages};
use crate::id::{ObjectId, StateId, TreeId};
use crate::manifest::StageState;

/// Decides a registry's contested writes and supplies the objects it lacks.
pub trait Backend: Send + Sync {
    /// Returns the bucket URL this registry mirrors, or `None` for a registry folder.
    fn bucket_url(&self) -> Option<&str>;

    /// Returns the backend as `Any`, for the commands that act on a bucket as a whole
    /// (`gc`, `du`) to reach it.
    fn as_any(&self) -> &dyn std::any::Any;

    /// Fails unless concurrent writers are arbitrated (conditional writes, or a
    /// vouched-for single writer): checked before a command writes anything.
    fn require_conditional_writes(&self, what: &str) -> Result<()>;

    /// Returns the bytes of objects this process has sent to the bucket so far.
    fn sent_bytes(&self) -> Option<u64>;

    /// Fetches an object the registry lacks, verified, into its object folder, and
    /// returns where it now is; an error names an object found nowhere.
    fn fetch_object(&self, reg: &Registry, id: ObjectId) -> Result<Place>;

    /// Fetches every object below a tree that the registry lacks (with `select`, only
    /// what the paths it takes need) and returns the bytes moved, or `None` when there
    /// is nowhere to fetch from.
    fn fetch_tree(
        &self,
        reg: &Registry,
        tree: TreeId,
        select: Option<&super::select::Select>,
        progress: &dyn Progress,
    ) -> Result<Option<u64>>;

    /// Returns whether an object the registry lacks is held where it would come from.
    fn holds_object(&self, reg: &Registry, id: ObjectId) -> Result<bool>;

    /// Publishes a run record or event (`runs/…`), already written locally, with the
    /// objects it names.
    fn publish_file(&self, reg: &Registry, key: &str, bytes: &[u8]) -> Result<()>;

    /// Claims a version number for a record whose tree and objects are in the registry:
    /// `render(n)` is created at the first free `n` from `first`. Returns the number.
    fn claim_version(
        &self,
        reg: &Registry,
        model: &str,
        tree: TreeId,
        first: u64,
        render: &dyn Fn(u64) -> Result<String>,
    ) -> Result<u64>;

    /// Returns this process's share of the lock between writers and `gc`: the registry
    /// folder's OS lock, and for a mirror the bucket's writer lease as well, after
    /// which what the mirror remembers of the bucket's objects is checked against its
    /// `gc.epoch`. Waits while a `gc` runs, telling [`Registry::notice`].
    fn writing(&self, reg: &Registry) -> Result<Writing>;

    /// Publishes `new` and swaps the model's `HEAD` to it if it still names `expected`;
    /// when it had moved, nothing is written (and a mirror holds what it moved to).
    fn swap_head(
        &self,
        reg: &Registry,
        expected: Option<&StateId>,
        new: &StageState,
        holder: &Holder,
        wait: Duration,
    ) -> Result<Swap<StateId>>;
}

/// A writer's share of the locks between writers and `gc`, released when dropped: the
/// bucket's lease (for a mirror) first, then the folder's OS lock.
pub struct Writing {
    /// The bucket's lease, for a mirror.
    pub lease: Option<Box<dyn Send>>,
    /// The registry folder's OS lock.
    pub local: gclock::Writing,
}

/// The backend of a registry folder: it decides everything itself.
pub struct Folder;

impl Backend for Folder {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn writing(&self, reg: &Registry) -> Result<Writing> {
        Ok(Writing {
            lease: None,
            local: gclock::writing(reg.root(), &|m| reg.notice(m))?,
        })
    }

    fn bucket_url(&self) -> Option<&str> {
        None
    }

    fn require_conditional_writes(&self, _what: &str) -> Result<()> {
        Ok(())
    }

    fn sent_bytes(&self) -> Option<u64> {
        None
    }

    fn fetch_object(&self, _reg: &Registry, id: ObjectId) -> Result<Place> {
        Err(read::missing(id))
    }

    fn fetch_tree(
        &self,
        _: &Registry,
        _: TreeId,
        _: Option<&super::select::Select>,
        _: &dyn Progress,
    ) -> Result<Option<u64>> {
        Ok(None)
    }

    fn holds_object(&self, _reg: &Registry, _id: ObjectId) -> Result<bool> {
        Ok(false)
    }

    fn publish_file(&self, _reg: &Registry, _key: &str, _bytes: &[u8]) -> Result<()> {
        Ok(())
    }

    fn claim_version(
        &self,
        reg: &Registry,
        model: &str,
        _tree: TreeId,
        first: u64,
        render: &dyn Fn(u64) -> Result<String>,
    ) -> Result<u64> {
        models::claim_in_folder(reg, model, first, render)
    }

    fn swap_head(
        &self,
        reg: &Registry,
        expected: Option<&StateId>,
        new: &StageState,
        holder: &Holder,
        wait: Duration,
    ) -> Result<Swap<StateId>> {
        stages::swap_in_folder(reg, expected, new, holder, wait)
    }
}

/// A shared handle on a backend, as a [`Registry`] holds it.
#[derive(Clone)]
pub struct BackendRef(pub Arc<dyn Backend>);

impl fmt::Debug for BackendRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.bucket_url() {
            Some(url) => write!(f, "Mirror({url})"),
            None => f.write_str("Folder"),
        }
    }
}
