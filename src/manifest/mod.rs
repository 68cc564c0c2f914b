//! Manifests: the TOML records of the registry, each with a format version.

pub mod version;

pub use version::VersionRecord;
