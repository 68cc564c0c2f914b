//! A version's model card: what the registry knows of it, gathered for `mreg card`.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::manifest::info::ModelInfo;
use crate::manifest::state::StageState;
use crate::manifest::{RunRecord, VersionRecord};
use crate::refspec::ModelRef;
use crate::sign::approval::Approval;
use crate::sign::oms::Bundle;
use crate::store::keys::Signed;
use crate::store::{Registry, info, models, runs, signatures, stages};

/// The most stage moves a card lists.
const HISTORY_LIMIT: usize = 20;

/// Returns what a model card is made of.
pub struct Card {
    /// The version.
    pub version: VersionRecord,
    /// The run it came from, when it names one the registry holds.
    pub run: Option<RunRecord>,
    /// The stages holding it now.
    pub held: Vec<String>,
    /// The stage moves that moved it or judged it, newest first (at most 20).
    pub moves: Vec<StageState>,
    /// Its run's Python packages, when stored and readable.
    pub packages: Option<BTreeMap<String, String>>,
    /// The model's own fields (`mreg model set`).
    pub info: ModelInfo,
    /// Its signatures and approvals, with who made them.
    pub signed: Vec<SignedLine>,
}

/// One signature or approval of the version, as a card tells it.
pub struct SignedLine {
    /// `signature`, or the stage an approval is for.
    pub what: Option<String>,
    /// The name `[signers]` gives its key, or the key's hint when no signer of the
    /// registry made it.
    pub by: Result<String, String>,
    /// When, and why, as an approval says.
    pub time: Option<String>,
    /// The approver's comment.
    pub comment: Option<String>,
}

/// Returns the signatures and approvals of `version`, each with the signer of the
/// registry whose key made it. Only the signer is checked here, not the files, which
/// `mreg verify` reads; records that do not read are left out (`mreg fsck` names them).
fn signed_lines(reg: &Registry, version: &VersionRecord) -> Vec<SignedLine> {
    let signers = reg
        .config()
        .ok()
        .and_then(|c| super::approve::config_signers(&c).ok())
        .unwrap_or_default();
    let subject = version.tree.0.to_hex();
    let mut out = Vec::new();
    for kind in [Signed::Signature, Signed::Approval] {
        for name in signatures::list(reg, &version.model, kind, &subject).unwrap_or_default() {
            let Some(bundle) = signatures::read(reg, &version.model, kind, &subject, &name)
                .ok()
                .and_then(|bytes| Bundle::parse(&bytes).ok())
            else {
                continue;
            };
            let by = signers
                .iter()
                .find(|s| bundle.signed_by(&s.key))
                .map(|s| s.name.clone())
                .ok_or_else(|| bundle.hint.clone().unwrap_or_default());
            let line = if kind == Signed::Signature {
                if bundle.manifest().is_err() {
                    continue;
                }
                SignedLine {
                    what: None,
                    by,
                    time: None,
                    comment: None,
                }
            } else {
                match Approval::parse(&bundle.payload) {
                    Ok(a) if a.model == version.model && a.tree == version.tree => SignedLine {
                        what: Some(a.stage),
                        by,
                        time: Some(a.time),
                        comment: a.comment,
                    },
                    _ => continue,
                }
            };
            out.push(line);
        }
    }
    out.sort_by(|a, b| (&a.what, &a.time).cmp(&(&b.what, &b.time)));
    out
}

/// Gathers the card of the version `reference` names.
pub fn card(reg: &Registry, reference: &str) -> Result<Card> {
    let version = models::resolve(reg, &ModelRef::parse(reference)?)?;
    let run = match &version.run {
        Some(id) if runs::record_path(reg, id).is_file() => Some(runs::load(reg, id)?),
        _ => None,
    };
    let held = stages::current(reg, &version.model)?
        .map(|(_, state)| {
            state
                .stages
                .iter()
                .filter(|(_, v)| **v == version.version)
                .map(|(stage, _)| stage.clone())
                .collect()
        })
        .unwrap_or_default();
    let moves = stages::chain(reg, &version.model, None)?
        .into_iter()
        .map(|(_, state)| state)
        .filter(|s| s.version == version.version || s.moves.iter().any(|m| m.to == version.version))
        .take(HISTORY_LIMIT)
        .collect();
    let packages = run
        .as_ref()
        .and_then(|r| crate::diff::lineage::package_list(reg, r).ok().flatten());
    let info = info::current(reg, &version.model)?;
    let signed = signed_lines(reg, &version);
    Ok(Card {
        version,
        run,
        held,
        moves,
        packages,
        info,
        signed,
    })
}
