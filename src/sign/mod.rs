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
