//! The upstream of a registry: where a local copy of a registry that really lives
//! elsewhere (a bucket) reads what it lacks and writes what it makes.
//!
//! A registry opened as `--registry s3://…` is a local mirror with an upstream: reads
//! fetch missing objects from it, and every write that must be atomic across machines
//! (a version number, a stage move) is decided there first, with create-only writes and
//! compare-and-swap, and only then copied into the mirror. The store calls these hooks;
//! the remote module implements them.

use std::fmt;
use std::path::PathBuf;

use anyhow::Result;

use super::Registry;
use super::object::Encoding;
use crate::id::ObjectId;
use crate::manifest::{StageState, StateId};

/// How an upstream swap of a model's `HEAD` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadSwap {
    /// The upstream `HEAD` names the new state, which the mirror now also holds.
    Done(StateId),
    /// The upstream `HEAD` had moved; the mirror now holds what it moved to.
    Moved,
}

/// The place a mirror's content really lives.
pub trait Upstream: Send + Sync {
    /// Returns the upstream's URL, for messages.
    fn url(&self) -> &str;

    /// Fails unless the upstream arbitrates concurrent writers (conditional writes, or a
    /// vouched-for single writer): checked before a command writes anything there.
    fn require_conditional_writes(&self, what: &str) -> Result<()>;

    /// Returns the bytes of objects this process has sent upstream so far.
    fn sent_bytes(&self) -> u64;

    /// Fetches an object the mirror lacks, verified, into the mirror's object folder,
    /// and returns where it now is.
    fn fetch_object(&self, reg: &Registry, id: ObjectId) -> Result<(PathBuf, Encoding)>;

    /// Fetches every object below a tree that the mirror lacks, in parallel, and
    /// returns the bytes moved.
    fn fetch_tree(
        &self,
        reg: &Registry,
        tree: super::TreeId,
        progress: &dyn super::Progress,
    ) -> Result<u64>;

    /// Returns whether the upstream holds an object.
    fn holds_object(&self, reg: &Registry, id: ObjectId) -> Result<bool>;

    /// Publishes a file of the mirror (a run record or event: `runs/…`) upstream,
    /// create-only, with the objects it names.
    fn publish_file(&self, reg: &Registry, key: &str, bytes: &[u8]) -> Result<()>;

    /// Claims a version number upstream for a record: the objects of its tree and its
    /// run are sent, then `render(n)` is created at the first free `n` from `first`.
    /// Returns the number taken; numbers found taken are copied into the mirror.
    fn claim_version(
        &self,
        reg: &Registry,
        model: &str,
        tree: ObjectId,
        first: u64,
        render: &dyn Fn(u64) -> Result<String>,
    ) -> Result<u64>;

    /// Publishes `new` upstream and swaps the model's upstream `HEAD` to it if it still
    /// names `expected`; on success the mirror holds the state and `HEAD` too.
    fn swap_head(
        &self,
        reg: &Registry,
        expected: Option<&StateId>,
        new: &StageState,
    ) -> Result<HeadSwap>;
}

/// A shared handle on an upstream, as a [`Registry`] holds it.
#[derive(Clone)]
pub struct UpstreamRef(pub std::sync::Arc<dyn Upstream>);

impl fmt::Debug for UpstreamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Upstream({})", self.0.url())
    }
}
