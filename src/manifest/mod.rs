//! Manifests: the TOML records of the registry, each with a format version.

pub mod event;
pub mod run;
pub mod state;
pub mod value;
pub mod version;

pub use event::RunEvent;
pub use run::{RunId, RunRecord};
pub use state::{StageState, StateId};
pub use value::Value;
pub use version::VersionRecord;
