//! Approvals and the signing rules of stages: `mreg approve` records a signed approval
//! of a version for a stage, and a promotion checks a stage's `require_signature` and
//! `approvals` against the keys the registry's `[signers]` table trusts.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::sign::{self as signing, Signer};
use crate::error::Failure;
use crate::id::TreeId;
use crate::manifest::state::CheckRecord;
use crate::manifest::{Value, VersionRecord};
use crate::refspec::ModelRef;
use crate::sign::approval::{self, Approval};
use crate::sign::keys::{PrivateKey, PublicKey};
use crate::sign::oms::{self, Bundle};
use crate::store::config::{Config, StagePolicy};
use crate::store::keys::Signed;
use crate::store::{Progress, Registry, models, signatures};

/// What `mreg approve` did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Approved {
    /// The model.
    pub model: String,
    /// The version.
    pub version: u64,
    /// Its tree.
    pub tree: TreeId,
    /// The stage.
    pub stage: String,
    /// The approving key's hint.
    pub key: String,
    /// The signer it is in `[signers]`, if it is one.
    pub signer: Option<String>,
    /// The approval's name in the registry.
    pub approval: String,
    /// Whether it was new.
    pub new: bool,
    /// Why the approval does not count yet, when it does not: the key is no signer of
    /// the registry, or not an approver of the stage, or the stage asks for none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_counted: Option<String>,
}

/// Returns the registry's trusted signers (`[signers]`), refusing a key that does not
/// parse.
pub fn config_signers(config: &Config) -> Result<Vec<Signer>> {
    config
        .signers
        .iter()
        .map(|(name, pem)| {
            if pem.contains("PRIVATE KEY") {
                return Err(Failure::error(format!(
                    "the signer {name} of config.toml is a private key, which must never be shared"
                ))
                .hint("put its public half there (`openssl ec -in KEY.pem -pubout`), and make a new key: this one was exposed")
                .into());
            }
            let key = PublicKey::from_pem(pem).map_err(|e| {
                Failure::error(format!(
                    "the signer {name} of config.toml is not a public key: {e:#}"
                ))
                .hint("paste the output of `openssl ec -in KEY.pem -pubout` between the quotes")
            })?;
            Ok(Signer {
                name: name.clone(),
                key,
            })
        })
        .collect()
}

/// Returns the signers `names` picks among `all`, refusing a name `[signers]` lacks.
fn pick(all: &[Signer], names: &[String], what: &str, stage: &str) -> Result<Vec<Signer>> {
    names
        .iter()
        .map(|name| {
            all.iter().find(|s| &s.name == name).cloned().ok_or_else(|| {
                Failure::error(format!(
                    "the {what} of stage {stage} names {name}, who is not in [signers] of config.toml"
                ))
                .hint("add their public key under [signers], or remove the name from the policy")
                .into()
            })
        })
        .collect()
}

/// Records `key`'s approval of the version `reference` names for `stage`.
pub fn approve(
    reg: &Registry,
    reference: &str,
    stage: &str,
    key: &Path,
    comment: Option<&str>,
) -> Result<Approved> {
    let config = reg.config()?;
    config.require_stage(stage)?;
    let record = models::resolve(reg, &ModelRef::parse(reference)?)?;
    let key = PrivateKey::read(key).map_err(|e| Failure::usage(format!("{e:#}")))?;
    let comment = comment.map(crate::lineage::mask_text);
    if comment
        .as_ref()
        .is_some_and(|c| c.len() > approval::COMMENT_LIMIT)
    {
        return Err(Failure::usage(format!(
            "--comment is longer than the {} bytes an approval carries",
            approval::COMMENT_LIMIT
        ))
        .into());
    }
    let approval = Approval {
        model: record.model.clone(),
        version: record.version,
        tree: record.tree,
        stage: stage.to_owned(),
        time: crate::clock::format_time(crate::clock::now()?),
        comment,
    };
    let bytes = oms::bundle(&key, &approval.statement());
    let public = key.public();
    let signer = config_signers(&config)?
        .into_iter()
        .find(|s| s.key == public)
        .map(|s| s.name);
    let policy = config.policy(stage);
    let not_counted = match &signer {
        None => Some(
            "this key is not under [signers] in config.toml, so no stage policy counts its approval yet"
                .to_owned(),
        ),
        Some(name) if !policy.approvers.is_empty() && !policy.approvers.contains(name) => {
            Some(format!(
                "{name} is not among the approvers of {stage} in config.toml, so promotions to {stage} do not count this approval yet"
            ))
        }
        Some(_) if policy.approvals == 0 => Some(format!(
            "{stage} asks for no approvals (`approvals` in config.toml), so this one is kept for when it does"
        )),
        Some(_) => None,
    };
    let (name, new) = signatures::add(
        reg,
        &record.model,
        Signed::Approval,
        &record.tree.0.to_hex(),
        &bytes,
    )?;
    Ok(Approved {
        model: record.model.clone(),
        version: record.version,
        tree: record.tree,
        stage: stage.to_owned(),
        key: public.hint(),
        signer,
        approval: name,
        new,
        not_counted,
    })
}

/// Returns the approvers who validly approved `record`'s tree for `stage`, by name, and
/// why each other approval found does not count.
pub fn approvals_of(
    reg: &Registry,
    record: &VersionRecord,
    stage: &str,
    approvers: &[Signer],
) -> Result<(BTreeSet<String>, Vec<String>)> {
    let mut valid = BTreeSet::new();
    let mut refused = Vec::new();
    for name in signatures::list(
        reg,
        &record.model,
        Signed::Approval,
        &record.tree.0.to_hex(),
    )? {
        let short = &name[..12];
        let checked = signatures::read(
            reg,
            &record.model,
            Signed::Approval,
            &record.tree.0.to_hex(),
            &name,
        )
        .and_then(|bytes| {
            let bundle = Bundle::parse(&bytes)?;
            let approval = Approval::parse(&bundle.payload)?;
            Ok((bundle, approval))
        });
        let (bundle, approval) = match checked {
            Ok(read) => read,
            Err(err) => {
                refused.push(format!("approval {short} is damaged: {err:#}"));
                continue;
            }
        };
        let Some(by) = approvers.iter().find(|a| bundle.signed_by(&a.key)) else {
            refused.push(format!(
                "approval {short} is not signed by an approver of {stage} (an unknown or revoked key)"
            ));
            continue;
        };
        if approval.model != record.model || approval.tree != record.tree {
            refused.push(format!(
                "approval {short} by {} is for another version",
                by.name
            ));
        } else if approval.stage != stage {
            refused.push(format!(
                "approval {short} by {} is for {}, not {stage}",
                by.name, approval.stage
            ));
        } else {
            valid.insert(by.name.clone());
        }
    }
    Ok((valid, refused))
}

/// Returns the checks a stage's signing rules make of a version (none when its policy
/// has none): a signature by one of `require_signature`, and `approvals` approvals.
pub fn policy_checks(
    reg: &Registry,
    config: &Config,
    policy: &StagePolicy,
    record: &VersionRecord,
    stage: &str,
    progress: &dyn Progress,
) -> Result<Vec<CheckRecord>> {
    let mut checks = Vec::new();
    if policy.require_signature.is_empty() && policy.approvals == 0 {
        return Ok(checks);
    }
    let source = format!("policy of {stage}");
    let all = config_signers(config)?;
    if !policy.require_signature.is_empty() {
        let signers = pick(&all, &policy.require_signature, "require_signature", stage)?;
        checks.push(signature_check(reg, record, &signers, &source, progress));
    }
    if policy.approvals > 0 {
        let approvers = if policy.approvers.is_empty() {
            all.clone()
        } else {
            pick(&all, &policy.approvers, "approvers", stage)?
        };
        let (valid, refused) = approvals_of(reg, record, stage, &approvers)?;
        let need = policy.approvals as usize;
        let passed = valid.len() >= need;
        let have: Vec<&str> = valid.iter().map(String::as_str).collect();
        let waiting: Vec<&str> = approvers
            .iter()
            .map(|a| a.name.as_str())
            .filter(|n| !valid.contains(*n))
            .collect();
        let why = (!passed).then(|| {
            let mut why = format!(
                "{} of {need} approvals for {stage}{}; {} more from {}",
                valid.len(),
                if have.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", have.join(", "))
                },
                need - valid.len(),
                waiting.join(", ")
            );
            if !refused.is_empty() {
                let shown: Vec<&str> = refused.iter().take(5).map(String::as_str).collect();
                let more = refused.len() - shown.len();
                let tail = if more > 0 {
                    format!(" (and {more} more)")
                } else {
                    String::new()
                };
                why = format!("{why}; not counted: {}{tail}", shown.join("; "));
            }
            why
        });
        let by_name: BTreeSet<&str> = approvers.iter().map(|a| a.name.as_str()).collect();
        checks.push(CheckRecord {
            gate: format!("approvals >= {need}"),
            source,
            required: format!(
                "{need} approvals for {stage} from {}",
                by_name.into_iter().collect::<Vec<_>>().join(", ")
            ),
            threshold: Some(Value::Int(i64::from(policy.approvals))),
            against: None,
            // Who approved, for the history to show.
            actual: Some(Value::Str(if have.is_empty() {
                "none".to_owned()
            } else {
                have.join(", ")
            })),
            passed,
            why,
        });
    }
    Ok(checks)
}

/// Returns the check of `require_signature`: a signature by one of `signers` that
/// covers every file of the version.
fn signature_check(
    reg: &Registry,
    record: &VersionRecord,
    signers: &[Signer],
    source: &str,
    progress: &dyn Progress,
) -> CheckRecord {
    let names: Vec<&str> = signers.iter().map(|s| s.name.as_str()).collect();
    let verified = signing::verify_version(reg, &record.reference(), signers, progress);
    // A signature that leaves files of the version out (its ignore_paths) does not
    // vouch for exactly its files, so it does not meet the rule.
    let whole = |v: &signing::Verified| {
        v.signatures
            .iter()
            .find(|c| c.valid && c.ignored.is_empty())
            .and_then(|c| c.signer.clone())
    };
    let (actual, why) = match &verified {
        Ok(v) if whole(v).is_some() => (whole(v), None),
        Ok(v) if v.verified => (
            None,
            Some(format!(
                "the signatures by {} leave files of the version out: {}",
                names.join(" or "),
                v.signatures
                    .iter()
                    .filter(|c| c.valid)
                    .flat_map(|c| c.ignored.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ),
        Ok(v) => (
            None,
            Some(format!(
                "no valid signature by {}: {}",
                names.join(" or "),
                v.signatures
                    .iter()
                    .filter_map(|c| c.problem.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        ),
        Err(err) => (None, Some(format!("{err:#}"))),
    };
    CheckRecord {
        gate: format!("signed by {}", names.join("|")),
        source: source.to_owned(),
        required: format!("a signature by {} of exactly its files", names.join(" or ")),
        threshold: None,
        against: None,
        passed: actual.is_some(),
        actual: actual.map(Value::Str),
        why,
    }
}

/// Signs the stage move that wrote the state `written` (a promotion just made) with
/// `key`, as a record others can check; returns the record's name.
pub fn sign_move(
    reg: &Registry,
    record: &VersionRecord,
    stage: &str,
    written: &crate::id::StateId,
    key: &PrivateKey,
) -> Result<String> {
    let moved = approval::StageMove {
        model: record.model.clone(),
        stage: stage.to_owned(),
        version: record.version,
        tree: record.tree,
        state: written.to_string(),
        time: crate::clock::format_time(crate::clock::now()?),
    };
    let bytes = oms::bundle(key, &moved.statement());
    let (name, _) = signatures::add(reg, &record.model, Signed::Move, written.as_str(), &bytes)?;
    Ok(name)
}

/// Returns who signed the stage move that wrote `state`, for people: the `[signers]`
/// name of each key whose signature of it verifies, or `key HINT (not a signer)` for a
/// signature by a key the registry does not name (not verified, since no key is at
/// hand to verify it with).
pub fn move_signers(
    reg: &Registry,
    signers: &[Signer],
    model: &str,
    state: &crate::id::StateId,
) -> Vec<String> {
    let Ok(names) = signatures::list(reg, model, Signed::Move, state.as_str()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names {
        let Ok(bytes) = signatures::read(reg, model, Signed::Move, state.as_str(), &name) else {
            continue;
        };
        let Ok(bundle) = Bundle::parse(&bytes) else {
            continue;
        };
        let Ok(moved) = approval::StageMove::parse(&bundle.payload) else {
            continue;
        };
        // The predicate repeats what the state says: a record saying otherwise is not
        // a signature of this move.
        let agrees = crate::store::stages::load_state(reg, model, state)
            .is_ok_and(|s| s.stage == moved.stage && s.version == moved.version);
        if moved.state != state.as_str() || moved.model != model || !agrees {
            continue;
        }
        match signers.iter().find(|s| bundle.signed_by(&s.key)) {
            Some(signer) => out.push(signer.name.clone()),
            None => out.push(format!(
                "key {} (not a signer)",
                bundle
                    .hint
                    .as_deref()
                    .filter(|h| crate::store::keys::is_hash(h))
                    .map_or("unnamed", |h| &h[..16])
            )),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Refuses (exit 3) to put `record` in `stage` other than by a promotion when the
/// stage's signing rules do not hold for it, saying which fail; `how` says what was
/// asked (`rolled back to`).
pub fn refuse_unsigned(
    reg: &Registry,
    config: &Config,
    record: &VersionRecord,
    stage: &str,
    how: &str,
) -> Result<()> {
    let checks = policy_checks(
        reg,
        config,
        &config.policy(stage),
        record,
        stage,
        &crate::store::NoProgress,
    )?;
    let Some(failed) = failing(&checks) else {
        return Ok(());
    };
    Err(Failure::gate(format!(
        "{stage} was not {how} {}: the stage's signing rules do not hold for it ({failed})",
        record.reference(),
    ))
    .hint(format!(
        "sign and approve {} for {stage} (`mreg sign`, `mreg approve`), then try again",
        record.reference()
    ))
    .into())
}

/// Returns the checks of `checks` that failed, as `GATE: why; …`, or `None` when all
/// passed.
pub fn failing(checks: &[CheckRecord]) -> Option<String> {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.gate, c.why.as_deref().unwrap_or("failed")))
        .collect();
    (!failed.is_empty()).then(|| failed.join("; "))
}
