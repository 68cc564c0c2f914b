//! Signing keys: ECDSA on P-256 (with SHA-256) and P-384 (with SHA-384), read from PEM,
//! the keys OpenSSF Model Signing's key method takes. Signatures are ASN.1 DER, as its
//! verifier expects; nonces are derived from the key and message (RFC 6979), so no
//! random source is needed.

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};

use crate::store::files;

/// The largest key file read: a PEM key is a few hundred bytes.
const KEY_FILE_LIMIT: u64 = 64 << 10;

/// A private key that signs.
pub enum PrivateKey {
    /// ECDSA P-256 with SHA-256.
    P256(p256::ecdsa::SigningKey),
    /// ECDSA P-384 with SHA-384.
    P384(p384::ecdsa::SigningKey),
}

/// A public key that verifies.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// ECDSA P-256 with SHA-256.
    P256(p256::ecdsa::VerifyingKey),
    /// ECDSA P-384 with SHA-384.
    P384(p384::ecdsa::VerifyingKey),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.short())
    }
}

/// The sentence that says which keys are taken.
const KEY_KINDS: &str = "an ECDSA key on P-256 or P-384 in PEM (P-521, RSA and Ed25519 keys are not taken; `openssl ecparam -name prime256v1 -genkey -noout -out KEY.pem` makes one)";

impl PrivateKey {
    /// Reads a private key from a PEM file (SEC1 `EC PRIVATE KEY` or PKCS#8
    /// `PRIVATE KEY`, unencrypted).
    pub fn read(path: &Path) -> Result<PrivateKey> {
        let text = read_pem(path)?;
        PrivateKey::from_pem(&text)
            .with_context(|| format!("{} is not a private key mreg signs with", path.display()))
    }

    /// Parses a private key from PEM text.
    pub fn from_pem(text: &str) -> Result<PrivateKey> {
        if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
            bail!(
                "it is encrypted; decrypt it to a file only you can read (`openssl pkey -in KEY.pem -out PLAIN.pem`)"
            );
        }
        if text.contains("BEGIN PUBLIC KEY") {
            bail!("it is a public key; signing needs the private key");
        }
        // `openssl ecparam -genkey` without `-noout` writes the curve's parameters
        // first: the key is the block after them.
        let text = text
            .find("-----BEGIN EC PRIVATE KEY-----")
            .map_or(text, |at| &text[at..]);
        if let Ok(key) =
            p256::SecretKey::from_sec1_pem(text).or_else(|_| p256::SecretKey::from_pkcs8_pem(text))
        {
            return Ok(PrivateKey::P256(key.into()));
        }
        if let Ok(key) =
            p384::SecretKey::from_sec1_pem(text).or_else(|_| p384::SecretKey::from_pkcs8_pem(text))
        {
            return Ok(PrivateKey::P384(key.into()));
        }
        bail!("it is not {KEY_KINDS}")
    }

    /// Returns the public half.
    pub fn public(&self) -> PublicKey {
        match self {
            PrivateKey::P256(k) => PublicKey::P256(*k.verifying_key()),
            PrivateKey::P384(k) => PublicKey::P384(*k.verifying_key()),
        }
    }

    /// Returns the DER signature of `message` (hashed with the curve's hash).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            PrivateKey::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
            PrivateKey::P384(k) => {
                let sig: p384::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
        }
    }
}

impl PublicKey {
    /// Reads a public key from a PEM file (`PUBLIC KEY`, as `openssl ec -pubout`
    /// writes); a private key file is taken too, for its public half.
    pub fn read(path: &Path) -> Result<PublicKey> {
        let text = read_pem(path)?;
        PublicKey::from_pem(&text)
            .with_context(|| format!("{} is not a public key mreg verifies with", path.display()))
    }

    /// Parses a public key from PEM text (or the public half of a private key's).
    pub fn from_pem(text: &str) -> Result<PublicKey> {
        if let Ok(key) = p256::PublicKey::from_public_key_pem(text) {
            return Ok(PublicKey::P256(key.into()));
        }
        if let Ok(key) = p384::PublicKey::from_public_key_pem(text) {
            return Ok(PublicKey::P384(key.into()));
        }
        if text.contains("PRIVATE KEY") {
            return Ok(PrivateKey::from_pem(text)?.public());
        }
        bail!("it is not {KEY_KINDS}")
    }

    /// Returns the key as standard PEM (SubjectPublicKeyInfo, 64-character lines).
    pub fn to_pem(&self) -> String {
        match self {
            PublicKey::P256(k) => p256::PublicKey::from(k).to_public_key_pem(LineEnding::LF),
            PublicKey::P384(k) => p384::PublicKey::from(k).to_public_key_pem(LineEnding::LF),
        }
        .expect("a valid public key encodes")
    }

    /// Returns the key's hint: the SHA-256 of its standard PEM, in lowercase hex, as
    /// Model Signing names a key in its bundles. mreg names signers by it too.
    pub fn hint(&self) -> String {
        hex(&Sha256::digest(self.to_pem().as_bytes()))
    }

    /// Returns the first 16 hex digits of the hint, for people.
    pub fn short(&self) -> String {
        self.hint()[..16].to_owned()
    }

    /// Returns the curve's name.
    pub fn curve(&self) -> &'static str {
        match self {
            PublicKey::P256(_) => "P-256",
            PublicKey::P384(_) => "P-384",
        }
    }

    /// Returns whether `der` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], der: &[u8]) -> bool {
        match self {
            PublicKey::P256(k) => p256::ecdsa::Signature::from_der(der)
                .is_ok_and(|sig| k.verify(message, &sig).is_ok()),
            PublicKey::P384(k) => p384::ecdsa::Signature::from_der(der)
                .is_ok_and(|sig| k.verify(message, &sig).is_ok()),
        }
    }
}

/// Reads a key file: bounded, never through a FIFO, as text.
fn read_pem(path: &Path) -> Result<String> {
    let bytes = files::read_user_file(path, KEY_FILE_LIMIT)
        .with_context(|| format!("reading the key {}", path.display()))?;
    String::from_utf8(bytes).with_context(|| format!("{} is not a PEM text file", path.display()))
}

pub use crate::id::hex;

#[cfg(test)]
mod tests {
    use super::*;

    // A P-256 key pair made by `openssl ecparam -name prime256v1 -genkey -noout` and
    // `openssl ec -pubout`, and the hint Model Signing 1.1.1 wrote for it.
    pub(crate) const PRIVATE: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIJEukFw7wMd1ljuwZoPWFEwgBQix2KADw2k6TjDl0TDvoAoGCCqGSM49
AwEHoUQDQgAE8bP+VjS46yL4N5XnZ4UC++5Ne6Mu9IuVmRp7TjDSJBjL45ccyWvU
5SUJ6gHwe40uuTFXv1lUNMG1HASKKDh3pw==
-----END EC PRIVATE KEY-----
";
    pub(crate) const PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8bP+VjS46yL4N5XnZ4UC++5Ne6Mu
9IuVmRp7TjDSJBjL45ccyWvU5SUJ6gHwe40uuTFXv1lUNMG1HASKKDh3pw==
-----END PUBLIC KEY-----
";
    const HINT: &str = "eee1a7c9c7c49e047b9f6b8d86935e3a7ed9cec18f13052c2876866aa051c309";

    #[test]
    fn the_hint_is_the_one_model_signing_writes() {
        let public = PublicKey::from_pem(PUBLIC).unwrap();
        assert_eq!(public.to_pem(), PUBLIC);
        assert_eq!(public.hint(), HINT);
        assert_eq!(PrivateKey::from_pem(PRIVATE).unwrap().public(), public);
    }

    #[test]
    fn a_signature_verifies_under_its_key_only() {
        let key = PrivateKey::from_pem(PRIVATE).unwrap();
        let sig = key.sign(b"message");
        assert!(key.public().verifies(b"message", &sig));
        assert!(!key.public().verifies(b"messagf", &sig));
        let other = PrivateKey::P256(p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap());
        assert!(!other.public().verifies(b"message", &sig));
    }

    #[test]
    fn p384_keys_sign_with_sha384() {
        let key = PrivateKey::P384(p384::ecdsa::SigningKey::from_slice(&[9u8; 48]).unwrap());
        let sig = key.sign(b"m");
        assert!(key.public().verifies(b"m", &sig));
        assert_eq!(key.public().curve(), "P-384");
        let again = PublicKey::from_pem(&key.public().to_pem()).unwrap();
        assert_eq!(again, key.public());
    }

    #[test]
    fn a_key_written_with_its_curve_parameters_first_is_read() {
        let with_params = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{PRIVATE}"
        );
        assert_eq!(
            PrivateKey::from_pem(&with_params).unwrap().public(),
            PublicKey::from_pem(PUBLIC).unwrap()
        );
        let encrypted = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n";
        let err = PrivateKey::from_pem(encrypted).err().unwrap();
        assert!(err.to_string().contains("encrypted"), "{err}");
    }

    #[test]
    fn wrong_keys_are_named() {
        let err = PrivateKey::from_pem(PUBLIC).err().unwrap();
        assert!(err.to_string().contains("public key"), "{err}");
        let err = PrivateKey::from_pem("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
            .err()
            .unwrap();
        assert!(err.to_string().contains("encrypted"), "{err}");
        assert!(PublicKey::from_pem("hello").is_err());
    }
}
