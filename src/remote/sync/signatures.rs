//! Syncing the signatures and approvals of versions: each side gets the ones it lacks
//! of the models it holds. They are immutable and named by the hash of their bytes, so
//! copying both ways never meets a conflict. What comes from either side is checked
//! before it is written: its name is its hash, and it is the signature or approval its
//! folder says ([`crate::sign::check_signed`]); whether anyone trusts its signer is for
//! `mreg verify` and `mreg promote` to decide.

use std::sync::Mutex;

use anyhow::{Result, bail};

use super::{Keys, Side, Sync, create_or_same};
use crate::remote::transfer;
use crate::sign::oms::BUNDLE_LIMIT;
use crate::store::{atomic, files, keys};

/// Signatures of one model a sync copies at most, each way: a model is signed by a
/// few keys per version, and a side holding more is not believed further.
const PER_MODEL_LIMIT: usize = 100_000;

/// Checks a signed record read from a side (`entry` is `signatures|approvals/TREE/NAME`):
/// its bytes hash to its name, and it reads as what its folder says it is.
fn check(entry: &str, bytes: &[u8]) -> Result<()> {
    let name = entry.rsplit('/').next().unwrap_or_default();
    if keys::signature_name(bytes) != name {
        bail!("its bytes are not the ones its name is the hash of");
    }
    let kind = match entry.split('/').next() {
        Some("approvals") => keys::Signed::Approval,
        Some("moves") => keys::Signed::Move,
        _ => keys::Signed::Signature,
    };
    crate::sign::check_signed(bytes, kind)
}

/// Returns the `(model, TREE/NAME)` signatures `from` holds and `to` lacks, for the
/// models `want` accepts.
fn missing(from: &Keys, to: &Keys, want: &dyn Fn(&str) -> bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (model, names) in &from.signatures {
        if !want(model) {
            continue;
        }
        let have = to.signatures.get(model);
        out.extend(
            names
                .iter()
                .filter(|n| have.is_none_or(|h| !h.contains(*n)))
                .take(PER_MODEL_LIMIT)
                .map(|n| (model.clone(), n.clone())),
        );
    }
    out
}

/// Returns the key of a `signatures|approvals/TREE/NAME` record of `model`.
fn key_of(model: &str, entry: &str) -> String {
    format!("{}{model}/{entry}.sig", keys::MODELS)
}

impl Sync<'_> {
    /// Copies the signatures the remote holds and this registry lacks, for the models
    /// whose versions this registry holds.
    pub(super) fn fetch_signatures(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        let root = self.reg.root().to_path_buf();
        let wanted = missing(theirs, ours, &|model| {
            files::dir_exists(&root, &keys::versions(model)).unwrap_or(false)
        });
        if wanted.is_empty() {
            return Ok(());
        }
        let bodies = Mutex::new(Vec::with_capacity(wanted.len()));
        transfer::parallel(&wanted, transfer::PARALLEL, &|(model, entry)| {
            let key = key_of(model, entry);
            let fetched = self.remote.get(&key).and_then(|fetched| {
                let fetched = fetched.ok_or_else(|| anyhow::anyhow!("it is missing"))?;
                if fetched.bytes.len() as u64 > BUNDLE_LIMIT {
                    bail!("it is larger than {BUNDLE_LIMIT} bytes");
                }
                check(entry, &fetched.bytes)?;
                Ok(fetched.bytes)
            });
            bodies.lock().expect("bodies").push((key, fetched));
            Ok(())
        })?;
        let mut bodies = bodies.into_inner().expect("bodies");
        bodies.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, fetched) in bodies {
            match fetched {
                Ok(bytes) => {
                    match self.reg.make_parents(&key).and_then(|path| {
                        atomic::create_exclusive(&self.reg.tmp_dir(), &path, &bytes)
                    }) {
                        Ok(true) => self.report.fetched.signatures += 1,
                        Ok(false) => {}
                        Err(err) => self.refuse(&key, Side::Local, None, &err),
                    }
                }
                Err(err) => self.refuse(&key, Side::Remote, None, &err),
            }
        }
        Ok(())
    }

    /// Sends the signatures this registry holds and the remote lacks.
    pub(super) fn send_signatures(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        let mut pending = Vec::new();
        for (model, entry) in missing(ours, theirs, &|_| true) {
            let key = key_of(&model, &entry);
            match crate::store::signatures::read_key(self.reg, &key).and_then(|bytes| {
                check(&entry, &bytes)?;
                Ok(bytes)
            }) {
                Ok(bytes) => pending.push((key, bytes)),
                Err(err) => self.refuse(&key, Side::Local, None, &err),
            }
        }
        let created = std::sync::atomic::AtomicU64::new(0);
        let failed = Mutex::new(Vec::new());
        transfer::parallel(&pending, transfer::PARALLEL, &|(key, bytes)| {
            match create_or_same(self.remote, key, bytes) {
                Ok(true) => {
                    created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(false) => {}
                Err(err) => failed.lock().expect("failed").push((key.clone(), err)),
            }
            Ok(())
        })?;
        self.report.sent.signatures += created.into_inner();
        let mut failed = failed.into_inner().expect("failed");
        failed.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, err) in failed {
            self.refuse(&key, Side::Remote, None, &err);
        }
        Ok(())
    }
}
