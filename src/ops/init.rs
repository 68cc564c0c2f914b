//! Making a registry: a `.mreg` folder, or a registry under a bucket prefix.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::remote::{self, bootstrap};
use crate::store::Registry;

/// Returns what `mreg init` did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The registry folder, or the bucket URL.
    pub path: String,
    /// Whether it was made now (`false`: one was there, left as it is).
    pub created: bool,
    /// Whether it is on a bucket.
    #[serde(skip)]
    pub bucket: bool,
}

/// Makes a registry where `dir` says (a folder or `s3://BUCKET/PREFIX`), else where
/// `registry` (`--registry`, `MREG_REGISTRY`) says, else in the current folder.
pub fn init(dir: Option<&Path>, registry: Option<&str>) -> Result<Outcome> {
    let named = match dir {
        Some(dir) => dir.to_str(),
        None => registry,
    };
    if let Some(url) = named.filter(|u| remote::is_bucket_url(u)) {
        let created = bootstrap::init(&*remote::open(url, false)?)?;
        return Ok(Outcome {
            path: url.to_owned(),
            created,
            bucket: true,
        });
    }
    let dir = match (dir, registry) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(spec)) => Registry::local_path(spec)?,
        (None, None) => PathBuf::from("."),
    };
    let (reg, created) = Registry::init(&dir)?;
    Ok(Outcome {
        path: reg.root().display().to_string(),
        created,
        bucket: false,
    })
}
