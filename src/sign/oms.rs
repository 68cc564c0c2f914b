//! OpenSSF Model Signing (OMS) v1.0 signatures, key method: a Sigstore bundle (media
//! type v0.3) holding a DSSE envelope around an in-toto statement whose predicate lists
//! every file of the model with its digest. `docs/signing.md` says how a version maps
//! onto it; this module writes and reads the bytes.
//!
//! What mreg writes is what the stock verifier (`model_signing verify key`) accepts:
//! per-file SHA-256 digests (it re-hashes with nothing else), compact bundle JSON,
//! standard base64, ECDSA signatures in DER over the DSSE pre-authentication encoding.
//! What mreg reads is untrusted: bounded, parsed strictly where the format is strict,
//! and every digest and name checked before it is believed.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use base64ct::{Base64, Encoding as _};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::keys::{PrivateKey, PublicKey, hex};

/// The bundle media type the stock verifier requires, exactly.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The in-toto statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// The predicate type of a model signature, OMS v1.0.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";

/// The largest bundle read or written: a record's limit, which holds the signature of
/// some 80,000 files.
pub const BUNDLE_LIMIT: u64 = crate::store::files::RECORD_LIMIT;

/// The most files a signature may list.
pub const RESOURCES_LIMIT: usize = 1_000_000;

/// The file name a pulled version's signature takes beside its files, which every
/// signature mreg writes lists in `ignore_paths` so that verifiers skip it.
pub const SIGNATURE_FILE: &str = "model.sig";

/// The digest algorithm of a listed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256: what mreg writes, and what the stock verifier checks.
    Sha256,
    /// BLAKE3: what the stock signer's library writes when asked; mreg checks it
    /// against its object ids directly.
    Blake3,
}

impl Algorithm {
    /// Returns the name the predicate uses.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Blake3 => "blake3",
        }
    }

    fn parse(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "blake3" => Some(Algorithm::Blake3),
            _ => None,
        }
    }
}

/// One file a signature lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Its path in the model, `/`-separated, relative.
    pub name: String,
    /// The algorithm of its digest.
    pub algorithm: Algorithm,
    /// Its digest: 32 bytes.
    pub digest: [u8; 32],
}

/// What a signature says of a model: the files it lists, and the paths verifiers skip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The subject's name (informational: the model's name when mreg signs).
    pub subject: String,
    /// The files, in the order listed.
    pub resources: Vec<Resource>,
    /// Paths relative to the model's root that verifiers do not check, with what is
    /// below them.
    pub ignore_paths: Vec<String>,
    /// Whether links were hashed as their targets' content when it was signed.
    pub allow_symlinks: bool,
}

impl Manifest {
    /// Returns whether `path` is one the signature leaves out (`ignore_paths`).
    pub fn ignores(&self, path: &str) -> bool {
        self.ignore_paths
            .iter()
            .any(|ignored| path == ignored || path.starts_with(&format!("{ignored}/")))
    }
}

/// Orders paths the way the stock signer sorts its manifest: component by component,
/// so `sub/x` comes before `sub.txt`.
pub fn path_order(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

/// Returns the subject digest of a manifest: SHA-256 over the listed digests' bytes,
/// in order.
pub fn root_digest(resources: &[Resource]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for resource in resources {
        hasher.update(resource.digest);
    }
    hasher.finalize().into()
}

/// Returns the DSSE pre-authentication encoding of an in-toto payload: the bytes a
/// signature signs.
pub fn pae(payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {PAYLOAD_TYPE} {} ",
        PAYLOAD_TYPE.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Returns the statement of a model: `files` sorted by [`path_order`] (SHA-256 digests),
/// with [`SIGNATURE_FILE`] left out for verifiers; `allow_symlinks` when some of the
/// files are links listed with their targets' content.
pub fn statement(subject: &str, files: &[(String, [u8; 32])], allow_symlinks: bool) -> Vec<u8> {
    let mut resources: Vec<Resource> = files
        .iter()
        .map(|(name, digest)| Resource {
            name: name.clone(),
            algorithm: Algorithm::Sha256,
            digest: *digest,
        })
        .collect();
    resources.sort_by(|a, b| path_order(&a.name, &b.name));
    let listed: Vec<Value> = resources
        .iter()
        .map(|r| json!({"name": r.name, "algorithm": r.algorithm.name(), "digest": hex(&r.digest)}))
        .collect();
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject, "digest": {"sha256": hex(&root_digest(&resources))}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": allow_symlinks,
                "ignore_paths": [SIGNATURE_FILE],
            },
            "resources": listed,
        },
    });
    serde_json::to_vec_pretty(&statement).expect("a statement serializes")
}

/// Returns a bundle of `payload` signed by `key`, as the stock signer writes one.
pub fn bundle(key: &PrivateKey, payload: &[u8]) -> Vec<u8> {
    let sig = key.sign(&pae(payload));
    let bundle = json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key.public().hint()}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": Base64::encode_string(payload),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": Base64::encode_string(&sig), "keyid": ""}],
        },
    });
    serde_json::to_vec(&bundle).expect("a bundle serializes")
}

/// A bundle as read: its envelope, not yet trusted.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The key hint the bundle gives, if any (a hint, not a proof).
    pub hint: Option<String>,
    /// The statement's bytes.
    pub payload: Vec<u8>,
    /// The DER signatures over the payload's encoding.
    pub signatures: Vec<Vec<u8>>,
}

impl Bundle {
    /// Parses a bundle, refusing what the stock verifier refuses: another media type,
    /// another payload type, no signature, or a field it does not know.
    pub fn parse(bytes: &[u8]) -> Result<Bundle> {
        if bytes.len() as u64 > BUNDLE_LIMIT {
            bail!("it is larger than {BUNDLE_LIMIT} bytes");
        }
        let value: Value = serde_json::from_slice(bytes).context("it is not JSON")?;
        let top = object(&value, "the bundle")?;
        only(
            top,
            &["mediaType", "verificationMaterial", "dsseEnvelope"],
            "the bundle",
        )?;
        if string(top, "mediaType")? != BUNDLE_MEDIA_TYPE {
            bail!("its media type is not {BUNDLE_MEDIA_TYPE}");
        }
        let material = object(field(top, "verificationMaterial")?, "verificationMaterial")?;
        let hint = match material.get("publicKey") {
            Some(key) => {
                let key = object(key, "publicKey")?;
                key.get("hint")
                    .and_then(Value::as_str)
                    .filter(|h| !h.is_empty())
                    .map(str::to_owned)
            }
            None => bail!("it names no public key (a certificate bundle is not a key signature)"),
        };
        let envelope = object(field(top, "dsseEnvelope")?, "dsseEnvelope")?;
        only(
            envelope,
            &["payload", "payloadType", "signatures"],
            "dsseEnvelope",
        )?;
        if string(envelope, "payloadType")? != PAYLOAD_TYPE {
            bail!("its payload type is not {PAYLOAD_TYPE}");
        }
        let payload = Base64::decode_vec(string(envelope, "payload")?)
            .map_err(|_| anyhow::anyhow!("its payload is not base64"))?;
        let listed = field(envelope, "signatures")?
            .as_array()
            .context("its signatures are not a list")?;
        if listed.is_empty() {
            bail!("it holds no signature");
        }
        let mut signatures = Vec::with_capacity(listed.len().min(16));
        for sig in listed.iter().take(16) {
            let sig = object(sig, "a signature")?;
            only(sig, &["sig", "keyid"], "a signature")?;
            signatures.push(
                Base64::decode_vec(string(sig, "sig")?)
                    .map_err(|_| anyhow::anyhow!("a signature is not base64"))?,
            );
        }
        Ok(Bundle {
            hint,
            payload,
            signatures,
        })
    }

    /// Returns whether the bundle is `key`'s signature of its payload, as the stock
    /// verifier decides it: its first signature verifies under the key, and the key
    /// hint it gives, if any, is that key's (a bundle relabelled with another key's
    /// hint is refused, not believed).
    pub fn signed_by(&self, key: &PublicKey) -> bool {
        let hint_fits = self.hint.as_ref().is_none_or(|h| *h == key.hint());
        hint_fits
            && self
                .signatures
                .first()
                .is_some_and(|sig| key.verifies(&pae(&self.payload), sig))
    }

    /// Returns the manifest the payload states, checked: the statement and predicate
    /// types, one subject whose digest is the root of the listed digests, per-file
    /// serialization, and names that are relative paths listed once.
    pub fn manifest(&self) -> Result<Manifest> {
        let value: Value =
            serde_json::from_slice(&self.payload).context("its statement is not JSON")?;
        let top = object(&value, "the statement")?;
        if string(top, "_type")? != STATEMENT_TYPE {
            bail!("its statement is not an in-toto statement v1");
        }
        if string(top, "predicateType")? != PREDICATE_TYPE {
            bail!("its predicate is not a model signature v1.0 ({PREDICATE_TYPE})");
        }
        let subjects = field(top, "subject")?
            .as_array()
            .context("its subject is not a list")?;
        let [subject] = subjects.as_slice() else {
            bail!("its statement has {} subjects, not one", subjects.len());
        };
        let subject = object(subject, "the subject")?;
        let subject_name = subject
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let root = string(
            object(field(subject, "digest")?, "the subject's digest")?,
            "sha256",
        )?;
        let predicate = object(field(top, "predicate")?, "the predicate")?;
        let serialization = object(field(predicate, "serialization")?, "the serialization")?;
        if string(serialization, "method")? != "files" {
            bail!("it lists shards of files; mreg verifies signatures made file by file");
        }
        let hash_type = string(serialization, "hash_type")?;
        let hash_type = Algorithm::parse(hash_type)
            .with_context(|| format!("its hash type {hash_type:?} is not sha256 or blake3"))?;
        let Some(allow_symlinks) = serialization.get("allow_symlinks") else {
            bail!("its serialization does not say allow_symlinks, which a verifier needs");
        };
        let allow_symlinks = allow_symlinks.as_bool().unwrap_or(false);
        let ignore_paths = match serialization.get("ignore_paths") {
            None => Vec::new(),
            Some(list) => list
                .as_array()
                .context("its ignore_paths are not a list")?
                .iter()
                .take(1024)
                .map(|p| {
                    p.as_str()
                        .map(|p| p.trim_end_matches('/').to_owned())
                        .context("an ignored path is not text")
                })
                .collect::<Result<_>>()?,
        };
        let resources = parse_resources(field(predicate, "resources")?, hash_type)?;
        if hex(&root_digest(&resources)) != root {
            bail!("its subject digest is not the digest of the files it lists");
        }
        let manifest = Manifest {
            subject: subject_name,
            resources,
            ignore_paths,
            allow_symlinks,
        };
        if let Some(both) = manifest
            .resources
            .iter()
            .find(|r| manifest.ignores(&r.name))
        {
            bail!("it lists {}, which it also ignores", both.name);
        }
        if let Some(hint) = &self.hint
            && (hint.len() != 64 || !hint.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            bail!("its key hint is not a SHA-256 in hex");
        }
        Ok(manifest)
    }
}

/// Parses the listed files of a statement: each a relative path listed once, with a
/// 32-byte digest of the signature's hash type.
fn parse_resources(listed: &Value, hash_type: Algorithm) -> Result<Vec<Resource>> {
    let listed = listed.as_array().context("its resources are not a list")?;
    if listed.len() > RESOURCES_LIMIT {
        bail!("it lists more than {RESOURCES_LIMIT} files");
    }
    let mut resources = Vec::with_capacity(listed.len());
    let mut names = BTreeSet::new();
    for item in listed {
        let item = object(item, "a resource")?;
        let name = normal_name(string(item, "name")?)?;
        let algorithm = string(item, "algorithm")?;
        let algorithm = Algorithm::parse(algorithm)
            .filter(|a| *a == hash_type)
            .with_context(|| {
                format!(
                    "{name} is listed with the digest {algorithm:?}, not the signature's hash type {}",
                    hash_type.name()
                )
            })?;
        let digest = parse_digest(string(item, "digest")?)
            .with_context(|| format!("the digest of {name} is not 32 bytes in hex"))?;
        if !names.insert(name.clone()) {
            bail!("it lists {name} twice");
        }
        resources.push(Resource {
            name,
            algorithm,
            digest,
        });
    }
    Ok(resources)
}

/// Returns a listed name as a relative `/`-separated path, refusing absolute paths,
/// `..` and empty components (`./` is dropped, as the stock verifier does).
fn normal_name(name: &str) -> Result<String> {
    let parts: Vec<&str> = name.split('/').filter(|p| *p != ".").collect();
    if name.starts_with('/')
        || parts.is_empty()
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == ".." || p.contains('\0'))
    {
        bail!("it lists {name:?}, which is not a path inside the model");
    }
    Ok(parts.join("/"))
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    value
        .as_object()
        .with_context(|| format!("{what} is not a JSON object"))
}

fn field<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a Value> {
    map.get(key).with_context(|| format!("it has no {key:?}"))
}

fn string<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a str> {
    field(map, key)?
        .as_str()
        .with_context(|| format!("its {key:?} is not text"))
}

fn only(map: &Map<String, Value>, known: &[&str], what: &str) -> Result<()> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(extra) => bail!("{what} has a field {extra:?} a model signature does not have"),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "oms_tests.rs"]
mod tests;
