//! Proving that a remote enforces conditional writes, before stages move there.
//!
//! The probe writes one key of its own under `tmp/` and removes it afterwards: a
//! create-only write must fail when the key exists (and leave it unchanged), and a
//! compare-and-swap naming a tag that is no longer current must fail (and leave the
//! value unchanged). A store that ignores `If-None-Match` or `If-Match` fails the
//! probe: on it, two pushes could both take `churn@7` and two promotions could both win.

use anyhow::Result;
use serde::Serialize;

use super::{Created, Remote, Swap};
use crate::store::keys;

/// What the probe found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Probe {
    /// A second create-only write of one key was refused.
    pub create_only: bool,
    /// A compare-and-swap with a stale tag was refused.
    pub compare_and_swap: bool,
}

impl Probe {
    /// Returns whether both conditional writes are enforced.
    pub fn enforced(&self) -> bool {
        self.create_only && self.compare_and_swap
    }
}

/// Runs the probe against `remote`.
pub fn run(remote: &dyn Remote) -> Result<Probe> {
    let nonce = blake3::hash(
        format!("{}-{:?}", std::process::id(), std::time::SystemTime::now()).as_bytes(),
    )
    .to_hex();
    let key = keys::probe(&nonce[..16]);
    let result = probe(remote, &key);
    let cleanup = remote.delete(&key);
    let probe = result?;
    cleanup?;
    Ok(probe)
}

fn probe(remote: &dyn Remote, key: &str) -> Result<Probe> {
    if remote.create(key, b"first")? != Created::New {
        anyhow::bail!("{key} existed before the probe created it; run the check again");
    }
    let second = remote.create(key, b"second")?;
    let value = remote.get(key)?;
    let create_only =
        second == Created::Exists && value.as_ref().is_some_and(|v| v.bytes == b"first");
    let Some(first) = value else {
        anyhow::bail!("{key} vanished during the probe");
    };
    let stale = first.tag.clone();
    let moved = remote.swap(key, Some(&first.tag), b"third")?;
    let stale_swap = remote.swap(key, Some(&stale), b"fourth")?;
    let now = remote.get(key)?.map(|v| v.bytes);
    let compare_and_swap = moved == Swap::Done(())
        && stale_swap == Swap::Moved
        && now.as_deref() == Some(b"third".as_slice());
    Ok(Probe {
        create_only,
        compare_and_swap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::folder::FolderRemote;

    #[test]
    fn a_folder_remote_passes_and_the_probe_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().display().to_string();
        let remote = FolderRemote::open(&url, dir.path(), true).unwrap();
        let probe = run(&remote).unwrap();
        assert!(probe.create_only && probe.compare_and_swap);
        assert!(
            remote
                .list(keys::TMP)
                .unwrap()
                .iter()
                .all(|l| !l.key.contains("probe"))
        );
    }
}
