//! The store: the registry folder (its handle, its backend, and its layout, spelled once
//! in [`keys`]), objects, trees, and the operations built on them.
//!
//! Nothing here prints; long work reports through [`Progress`].

pub mod atomic;
pub mod backend;
pub mod check;
pub mod chunks;
pub mod config;
pub mod files;
pub mod gc;
pub mod gclock;
pub mod info;
pub mod keys;
pub mod lock;
pub mod mapped;
pub mod materialize;
pub mod models;
pub mod object;
pub mod pack;
pub mod read;
pub mod registry;
pub mod removals;
pub mod retention;
pub mod runindex;
pub mod runs;
pub mod scan;
pub mod select;
pub mod signatures;
pub mod snapshot;
pub mod stages;
pub mod statcache;
pub mod tmp;
pub mod tree;
pub mod usercache;
pub mod walk;
pub mod write;

pub use crate::id::{ObjectId, TreeId};
pub use registry::Registry;

/// Receives news of long work, for a progress bar.
pub trait Progress: Sync {
    /// Starts a phase that will process `total` bytes.
    fn start(&self, what: &str, total: u64);
    /// Reports `bytes` more processed.
    fn advance(&self, bytes: u64);
    /// Ends the current phase.
    fn finish(&self);
    /// Starts a phase whose size is unknown (`flushing` the written bytes to disk), so
    /// that a reader sees what is being waited for; [`Progress::finish`] ends it.
    fn phase(&self, what: &str) {
        let _ = what;
    }
}

/// Returns a [`Progress`] that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
