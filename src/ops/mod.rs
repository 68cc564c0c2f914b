//! Use cases: a module for each thing a user does with a registry (`sync` holds sync
//! and clone, `diff` diff and compare), and the two parts every recording of a run
//! shares ([`inputs`], [`record`]). Each takes a plain request (the command line's
//! words, already parsed) and returns a serializable outcome, the one `--json` prints.
//! Nothing here prints or reads the terminal; long work reports through
//! [`crate::store::Progress`].
//!
//! A use case that must tell something before it is done (a warning about an input
//! file, while later inputs may still fail; the paths a push's scan left out) takes a
//! callback for it (`warn`, or push's `notify`), as it takes a progress reporter.

pub mod approve;
pub mod card;
pub mod diff;
pub mod digested;
pub mod du;
pub mod export;
pub mod fsck;
pub mod gate;
pub mod gc;
pub mod history;
pub mod import;
pub mod init;
pub mod inputs;
pub mod layouts;
pub mod log;
pub mod ls;
pub mod model;
pub mod promote;
pub mod pull;
pub mod push;
pub mod record;
pub mod remote;
pub mod report;
pub mod rm;
pub mod rollback;
pub mod run;
pub mod runs;
pub mod show;
pub mod sign;
pub mod sync;
pub mod upgrade;

use std::path::Path;

use anyhow::Result;

use crate::remote::sync::Refused;
use crate::store::{Progress, Registry};

/// Opens the registry `spec` names (`--registry`, `MREG_REGISTRY`): a bucket URL
/// through its local mirror (whose uploads report to `progress`), a folder, or, without
/// a spec, the nearest `.mreg` above `cwd`. Returns it with the bucket's items that
/// refreshing the mirror refused: the mirror lacks them, and the rest is usable.
pub fn open(
    spec: Option<&str>,
    cwd: &Path,
    progress: Box<dyn Progress + Send>,
) -> Result<(Registry, Vec<Refused>)> {
    match spec {
        Some(url) if crate::remote::is_bucket_url(url) => {
            crate::remote::mirror::open(url, progress)
        }
        spec => Ok((Registry::locate(spec, cwd)?, Vec::new())),
    }
}
