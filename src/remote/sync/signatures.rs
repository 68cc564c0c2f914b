//! Syncing the signatures and approvals of versions: each side gets the ones it lacks
//! of the models it holds. They are immutable and named by the hash of their bytes, so
//! copying both ways never meets a conflict. What comes from either side is checked
//! before it is written: its name is its hash, and it is the signature or approval its
//! folder says ([`crate::sign::check_signed`]); whether anyone trusts its signer is for
//! `mreg verify` and `mreg promote` to decide.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use anyhow::{Result, bail};

use super::{Keys, Side, Sync};
use crate::id::StateId;
use crate::remote::{Remote, transfer};
use crate::sign::keys::PublicKey;
use crate::sign::oms::{BUNDLE_LIMIT, Bundle};
use crate::store::keys::{self, Signed};
use crate::store::signatures::{self, UNTRUSTED_LIMIT};
use crate::store::{Registry, atomic, files, models};

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
    crate::sign::check_signed(bytes, kind_of(entry.split('/').next().unwrap_or_default()))
}

/// Returns the kind of signed record kept in `folder`.
fn kind_of(folder: &str) -> Signed {
    match folder {
        "approvals" => Signed::Approval,
        "moves" => Signed::Move,
        _ => Signed::Signature,
    }
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

/// What became of one record a fetch brought.
enum Fetch {
    /// Written here (`true`) or already here (`false`).
    Taken(bool),
    /// Left on the remote: its subject already holds [`UNTRUSTED_LIMIT`] records and
    /// none of this registry's signers signed it.
    Over,
    /// Refused, on the side that failed.
    Refused(Side, anyhow::Error),
}

/// Returns the keys of the registry's `[signers]`; a record one of them signed is always
/// taken. A signer that does not parse is left out here (`mreg verify` and `mreg
/// promote` name it).
fn trusted_keys(reg: &Registry) -> Result<Vec<PublicKey>> {
    Ok(reg
        .config()?
        .signers
        .values()
        .filter_map(|pem| PublicKey::from_pem(pem).ok())
        .collect())
}

/// Keeps of `wanted` the records whose subject this registry holds: a tree of one of the
/// model's versions (signatures, approvals), or one of its stage states (signed moves).
/// The others vouch for nothing here, and are fetched once what they are of is.
fn held_subjects(reg: &Registry, wanted: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut trees: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    wanted
        .into_iter()
        .filter(|(model, entry)| {
            let mut parts = entry.split('/');
            let (Some(kind), Some(subject)) = (parts.next(), parts.next()) else {
                return false;
            };
            if kind == Signed::Move.folder() {
                return StateId::parse(subject)
                    .is_some_and(|id| reg.path(&keys::state(model, &id)).is_file());
            }
            trees
                .entry(model.clone())
                .or_insert_with(|| {
                    models::list_versions(reg, model)
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|n| models::load_version(reg, model, n).ok())
                        .map(|record| record.tree.0.to_hex())
                        .collect()
                })
                .contains(subject)
        })
        .collect()
}

/// Fetches one record (`entry` of `model`), checks it, and writes it unless it is
/// one too many by keys nobody here trusts.
fn fetch_signed(
    reg: &Registry,
    remote: &dyn Remote,
    (model, entry): (&str, &str),
    trusted: &[PublicKey],
    held: &Mutex<BTreeMap<String, usize>>,
) -> Fetch {
    let key = key_of(model, entry);
    let fetched = remote.get(&key).and_then(|fetched| {
        let fetched = fetched.ok_or_else(|| anyhow::anyhow!("it is missing"))?;
        if fetched.bytes.len() as u64 > BUNDLE_LIMIT {
            bail!("it is larger than {BUNDLE_LIMIT} bytes");
        }
        check(entry, &fetched.bytes)?;
        Ok(fetched.bytes)
    });
    let bytes = match fetched {
        Ok(bytes) => bytes,
        Err(err) => return Fetch::Refused(Side::Remote, err),
    };
    let signed_here =
        Bundle::parse(&bytes).is_ok_and(|bundle| trusted.iter().any(|key| bundle.signed_by(key)));
    let write = || {
        reg.make_parents(&key)
            .and_then(|path| atomic::create_exclusive(&reg.tmp_dir(), &path, &bytes))
    };
    let written = if signed_here {
        write()
    } else {
        let (kind, rest) = entry.split_once('/').unwrap_or((entry, ""));
        let subject = rest.split('/').next().unwrap_or_default();
        let kind = kind_of(kind);
        let mut held = held.lock().expect("held");
        let count = held
            .entry(format!("{kind:?}/{subject}"))
            .or_insert_with(|| signatures::list(reg, model, kind, subject).map_or(0, |l| l.len()));
        if *count >= UNTRUSTED_LIMIT {
            return Fetch::Over;
        }
        let written = write();
        if matches!(written, Ok(true)) {
            *count += 1;
        }
        written
    };
    match written {
        Ok(new) => Fetch::Taken(new),
        Err(err) => Fetch::Refused(Side::Local, err),
    }
}

impl Sync<'_> {
    /// Copies the signatures the remote holds and this registry lacks, of what this
    /// registry holds; of each subject, at most [`UNTRUSTED_LIMIT`] records that none of
    /// its `[signers]` signed.
    pub(super) fn fetch_signatures(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        let root = self.reg.root().to_path_buf();
        let wanted = missing(theirs, ours, &|model| {
            files::dir_exists(&root, &keys::versions(model)).unwrap_or(false)
        });
        let wanted = held_subjects(self.reg, wanted);
        if wanted.is_empty() {
            return Ok(());
        }
        let trusted = trusted_keys(self.reg)?;
        // Records each subject holds here, counted when first met.
        let held: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());
        let outcomes = Mutex::new(Vec::with_capacity(wanted.len()));
        transfer::parallel(&wanted, transfer::PARALLEL, &|(model, entry)| {
            let outcome = fetch_signed(self.reg, self.remote, (model, entry), &trusted, &held);
            outcomes
                .lock()
                .expect("outcomes")
                .push((key_of(model, entry), outcome));
            Ok(())
        })?;
        let mut outcomes = outcomes.into_inner().expect("outcomes");
        outcomes.sort_by(|a, b| a.0.cmp(&b.0));
        let mut left: BTreeMap<String, usize> = BTreeMap::new();
        for (key, outcome) in outcomes {
            match outcome {
                Fetch::Taken(true) => self.report.fetched.signatures += 1,
                Fetch::Taken(false) => {}
                Fetch::Over => {
                    let dir = key.rsplit_once('/').map_or(key.as_str(), |(d, _)| d);
                    *left.entry(format!("{dir}/")).or_default() += 1;
                }
                Fetch::Refused(side, err) => self.refuse(&key, side, None, &err),
            }
        }
        for (dir, count) in left {
            let err = anyhow::anyhow!(
                "{count} records there were left on the remote: none of this registry's [signers] signed them, and it takes at most {UNTRUSTED_LIMIT} such records of one subject; add a signer to [signers] in config.toml to always take its records"
            );
            self.refuse(&dir, Side::Remote, None, &err);
        }
        Ok(())
    }

    /// Sends the signatures this registry holds and the remote lacks.
    pub(super) fn send_signatures(&mut self, theirs: &Keys, ours: &Keys) -> Result<()> {
        let mut pending = Vec::new();
        for (model, entry) in missing(ours, theirs, &|_| true) {
            let key = key_of(&model, &entry);
            match signatures::read_key(self.reg, &key).and_then(|bytes| {
                check(&entry, &bytes)?;
                Ok(bytes)
            }) {
                Ok(bytes) => pending.push((key, bytes)),
                Err(err) => self.refuse(&key, Side::Local, None, &err),
            }
        }
        self.report.sent.signatures += self.create_each(&pending)?;
        Ok(())
    }
}
