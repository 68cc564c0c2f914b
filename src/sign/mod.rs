//! Signatures of versions: OpenSSF Model Signing (OMS) bundles made and checked from a
//! version's tree ([`oms`]), the keys that sign them ([`keys`]), and the SHA-256 digest
//! of each object, computed once and remembered ([`digests`]); approvals of a version
//! for a stage, signed the same way ([`approval`]). See `docs/signing.md`.

pub mod approval;
pub mod digests;
pub mod keys;
pub mod oms;

use anyhow::Result;

use crate::store::Registry;
use crate::store::keys::Signed;

/// Checks a signed record's bytes: a model signature, an approval or a signed stage
/// move, as its kind says (its signer is not judged here).
pub fn check_signed(bytes: &[u8], kind: Signed) -> Result<()> {
    let bundle = oms::Bundle::parse(bytes)?;
    match kind {
        Signed::Signature => {
            bundle
                .manifest()
                .map_err(|e| e.context("not a model signature"))?;
        }
        Signed::Approval => {
            approval::Approval::parse(&bundle.payload).map_err(|e| e.context("not an approval"))?;
        }
        Signed::Move => {
            approval::StageMove::parse(&bundle.payload)
                .map_err(|e| e.context("not a signed stage move"))?;
        }
    }
    Ok(())
}

/// Reads the signed record at `key` of a registry and checks it ([`check_signed`]).
pub fn read_signed(reg: &Registry, key: &str, kind: Signed) -> Result<()> {
    let bytes = crate::store::signatures::read_key(reg, key)?;
    check_signed(&bytes, kind)
}

/// What a registry holds of one version's signed records, as their bundles name them:
/// not verified (that needs the keys, `mreg verify` and `mreg promote` do it), for
/// people to see that they are there.
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    /// The key hints of its signatures, as the bundles give them.
    pub signatures: Vec<String>,
    /// Stage → the key hints of the approvals for it.
    pub approvals: std::collections::BTreeMap<String, Vec<String>>,
}

impl Summary {
    /// Returns whether the version has no signature and no approval.
    pub fn is_empty(&self) -> bool {
        self.signatures.is_empty() && self.approvals.is_empty()
    }
}

/// Returns the [`Summary`] of the version of `model` with `tree`; records that do not
/// read are left out (`mreg fsck` names them).
pub fn summary(reg: &Registry, model: &str, tree: &crate::id::TreeId) -> Summary {
    use crate::store::signatures;
    let subject = tree.0.to_hex();
    let hint = |bundle: &oms::Bundle| {
        bundle
            .hint
            .as_deref()
            .filter(|h| crate::store::keys::is_hash(h))
            .map_or_else(|| "unnamed".to_owned(), |h| h[..16].to_owned())
    };
    let read = |kind: Signed| -> Vec<oms::Bundle> {
        signatures::list(reg, model, kind, &subject)
            .unwrap_or_default()
            .iter()
            .filter_map(|name| signatures::read(reg, model, kind, &subject, name).ok())
            .filter_map(|bytes| oms::Bundle::parse(&bytes).ok())
            .collect()
    };
    let mut out = Summary::default();
    for bundle in read(Signed::Signature) {
        if bundle.manifest().is_ok() {
            out.signatures.push(hint(&bundle));
        }
    }
    for bundle in read(Signed::Approval) {
        if let Ok(approval) = approval::Approval::parse(&bundle.payload) {
            let keys = out.approvals.entry(approval.stage).or_default();
            keys.push(hint(&bundle));
            keys.sort();
            keys.dedup();
        }
    }
    out.signatures.sort();
    out.signatures.dedup();
    out
}
