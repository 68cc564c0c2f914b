//! Identities: the newtypes every layer names things by, so that a swapped argument
//! fails to compile. Each is a hash or a hash prefix in lowercase hex.
//!
//! [`ObjectId`] names an object by the blake3 hash of its uncompressed bytes, and
//! [`TreeId`] a tree object, and so a model's content. [`RunId`] names a run (16 hex
//! digits), [`StateId`] a stage state (the hash of its bytes). Nothing here reads or
//! writes the registry.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// Returns the content identity of an object: the blake3 hash of its uncompressed bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 32]);

impl ObjectId {
    /// Returns the id of the given bytes.
    pub fn of(bytes: &[u8]) -> Self {
        ObjectId(*blake3::hash(bytes).as_bytes())
    }

    /// Returns the id a finished hasher holds.
    pub fn from_hasher(hasher: &blake3::Hasher) -> Self {
        ObjectId(*hasher.finalize().as_bytes())
    }

    /// Returns the id whose 32 bytes these are (as [`ObjectId::as_bytes`] gives them).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ObjectId(bytes)
    }

    /// Returns the id's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Returns the full lowercase hex form (64 characters).
    pub fn to_hex(self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// Returns the first `n` hex characters, for display.
    pub fn short(self, n: usize) -> String {
        let mut hex = self.to_hex();
        hex.truncate(n);
        hex
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.short(12))
    }
}

impl FromStr for ObjectId {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            bail!("{s:?} is not an object hash (64 lowercase hex characters)");
        }
        Ok(ObjectId(*blake3::Hash::from_hex(s)?.as_bytes()))
    }
}

impl Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Returns the identity of a tree, and so of a model's content.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TreeId(pub ObjectId);

impl fmt::Display for TreeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for TreeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TreeId({})", self.0.short(12))
    }
}

impl FromStr for TreeId {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(TreeId(s.parse()?))
    }
}

/// Returns a run's identity: 16 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    /// Number of hex digits in a run id.
    pub const LEN: usize = 16;

    /// Returns the id if `text` is one: exactly 16 lowercase hex digits.
    pub fn parse(text: &str) -> Option<RunId> {
        (text.len() == Self::LEN && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| RunId(text.to_owned()))
    }

    /// Returns the id made of the first 16 hex digits of a hash.
    pub fn from_hash(hash: &blake3::Hash) -> RunId {
        let mut hex = hash.to_hex().to_string();
        hex.truncate(Self::LEN);
        RunId(hex)
    }

    /// Returns the id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the first 8 digits, for tables.
    pub fn short(&self) -> &str {
        &self.0[..8]
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Returns the id of a state: the blake3 hash of its bytes, 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StateId(String);

impl StateId {
    /// Returns the id of a state's bytes.
    pub fn of(bytes: &[u8]) -> StateId {
        StateId(blake3::hash(bytes).to_hex().to_string())
    }

    /// Returns the id if `text` is 64 lowercase hex digits.
    pub fn parse(text: &str) -> Option<StateId> {
        (text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| StateId(text.to_owned()))
    }

    /// Returns the id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the first 12 digits, for listings.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl TryFrom<String> for StateId {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        StateId::parse(&text).ok_or_else(|| format!("{text:?} is not a state id"))
    }
}

impl From<StateId> for String {
    fn from(id: StateId) -> String {
        id.0
    }
}

impl fmt::Display for StateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Returns `bytes` in lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_sixteen_lowercase_hex_digits() {
        assert!(RunId::parse("0123456789abcdef").is_some());
        assert!(RunId::parse("0123456789ABCDEF").is_none());
        assert!(RunId::parse("0123456789abcde").is_none());
        assert!(RunId::parse("../../etc/passwd").is_none());
    }
}
