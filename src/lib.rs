//! mreg: a model registry in one binary.
//!
//! The library holds everything but the command line: the content-addressed
//! [`store`], the TOML [`manifest`]s, and [`refspec`] parsing. The `cli` module turns
//! them into commands; nothing outside it prints.

pub mod cli;
pub mod clock;
pub mod diff;
pub mod error;
pub mod gate;
pub mod id;
pub mod ingest;
pub mod lineage;
pub mod manifest;
pub mod names;
pub mod ops;
pub mod query;
pub mod refspec;
pub mod remote;
pub mod stage;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
