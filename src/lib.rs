//! mreg: a model registry in one binary.
//!
//! The library holds everything the binary does: [`cli`] parses and renders, [`ops`]
//! holds one use case per command, and below them the engines ([`diff`], [`stage`],
//! [`remote`]), the registry folder ([`store`]), and the records ([`manifest`]) with their
//! identities ([`id`]) and naming rules ([`names`]). Nothing outside [`cli`] prints.
//! `docs/architecture.md` is the map: what each module owns, the direction of imports,
//! and where a new command, remote kind or record field goes.

pub mod cli;
pub mod clock;
pub mod crash;
pub mod diff;
pub mod error;
pub mod gate;
pub mod id;
pub mod ingest;
pub mod lineage;
pub mod manifest;
pub mod names;
pub mod oci;
pub mod ops;
pub mod query;
pub mod refspec;
pub mod remote;
pub mod safetensors;
pub mod sign;
pub mod stage;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
