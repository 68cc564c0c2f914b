//! Manifests: the TOML records of the registry, each with a format version.

pub mod event;
pub mod fields;
pub mod info;
pub mod json;
pub mod lineage;
pub mod removal;
pub mod run;
pub mod series;
pub mod state;
pub mod value;
pub mod version;

pub use crate::id::{RunId, StateId};
pub use event::RunEvent;
pub use removal::{Removal, RunRemoval};
pub use run::RunRecord;
pub use state::StageState;
pub use value::Value;
pub use version::VersionRecord;
