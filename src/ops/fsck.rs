//! Checking a registry: every object re-hashed, every manifest parsed, every tree
//! walked; a bucket is checked by cloning it.

use anyhow::Result;

use crate::error::Failure;
use crate::store::check::{self, Report};
use crate::store::{Progress, Registry};

/// Checks a local registry and returns every problem found.
pub fn fsck(reg: &Registry, progress: &dyn Progress) -> Result<Report> {
    if let Some(url) = reg.bucket_url() {
        return Err(Failure::usage(format!(
            "fsck checks a local registry, not a bucket's ({url})"
        ))
        .hint(format!(
            "clone it (`mreg clone {url} DIR`: every object is re-hashed on the way) and run `mreg fsck` there"
        ))
        .into());
    }
    check::check(reg, progress)
}
