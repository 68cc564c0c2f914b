//! Use cases: one module for each thing a user does with a registry. Each takes a
//! plain request (the command line's words, already parsed) and returns a serializable
//! outcome, the one `--json` prints, with any warnings in it. Nothing here prints,
//! reads the terminal or names a flag's spelling beyond the messages users see; long
//! work reports through [`crate::store::Progress`].
//!
//! A use case that must say something before it is done (a warning about an input
//! file, while later inputs may still fail) takes a `warn` callback, as it takes a
//! progress reporter.

pub mod diff;
pub mod fsck;
pub mod gate;
pub mod history;
pub mod init;
pub mod inputs;
pub mod log;
pub mod ls;
pub mod promote;
pub mod pull;
pub mod push;
pub mod record;
pub mod remote;
pub mod rollback;
pub mod run;
pub mod runs;
pub mod show;
pub mod sync;

use std::path::Path;

use anyhow::Result;

use crate::store::{Progress, Registry};

/// Opens the registry `spec` names (`--registry`, `MREG_REGISTRY`): a bucket URL
/// through its local mirror (whose uploads report to `progress`), a folder, or, without
/// a spec, the nearest `.mreg` above `cwd`.
pub fn open(
    spec: Option<&str>,
    cwd: &Path,
    progress: Box<dyn Progress + Send>,
) -> Result<Registry> {
    match spec {
        Some(url) if crate::remote::is_bucket_url(url) => {
            crate::remote::mirror::open(url, progress)
        }
        spec => Registry::locate(spec, cwd),
    }
}
