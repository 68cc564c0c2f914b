//! Signatures of versions: OpenSSF Model Signing (OMS) bundles made and checked from a
//! version's tree ([`oms`]), the keys that sign them ([`keys`]), and the SHA-256 digest
//! of each object, computed once and remembered ([`digests`]). See `docs/signing.md`.

pub mod digests;
pub mod keys;
pub mod oms;
