//! Comparing the tensors of two safetensors files: which were added, removed, retyped,
//! reshaped or modified, and how many of their bytes changed.
//!
//! Headers are read and validated with [`super::safetensors`]; tensor data is compared
//! byte by byte with positioned reads in bounded chunks, tensors in parallel, so memory
//! stays small whatever the size of the files.

use std::fmt;
use std::fs::File;

use rayon::prelude::*;
use serde::Serialize;

#[cfg(test)]
use super::tensor_bytes::{CHUNK, count_differences};
use super::tensor_bytes::{Counts, compare};
use crate::safetensors::{Header, HeaderError, TensorInfo};

/// Returns which side of a diff something belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// A, the old file.
    Old,
    /// B, the new file.
    New,
}

impl fmt::Display for Side {
    /// Writes `old` or `new`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Old => "old",
            Side::New => "new",
        })
    }
}

/// Returns why a tensor diff failed: a bad header on one side, or an I/O failure.
#[derive(Debug)]
pub enum SideError {
    /// One side's header was refused; nothing was compared. A caller can report it as
    /// `model.safetensors (new side): <error>` and carry on with other files.
    Header {
        /// The side whose header was refused.
        side: Side,
        /// Why, as one sentence about that file.
        error: HeaderError,
    },
    /// Reading tensor data failed, or a file was shorter than its header says.
    Io(anyhow::Error),
}

impl fmt::Display for SideError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SideError::Header { side, error } => write!(f, "{side} side: {error}"),
            SideError::Io(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for SideError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The sentence is part of the message already.
            SideError::Header { .. } => None,
            SideError::Io(err) => err.source(),
        }
    }
}

/// Returns the result of comparing two safetensors files; the `--json` shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorDiff {
    /// Counts and byte totals.
    pub summary: Summary,
    /// Every tensor of either side, sorted by name, unchanged ones included.
    pub tensors: Vec<TensorChange>,
    /// Every `__metadata__` key of either side, sorted by key, unchanged ones included.
    pub metadata: Vec<MetadataChange>,
}

/// Returns how one tensor changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorChange {
    /// The tensor's name.
    pub name: String,
    /// What happened to it.
    pub change: Change,
    /// Its layout on the old side; `null` when it is not there.
    pub old: Option<Layout>,
    /// Its layout on the new side; `null` when it is not there.
    pub new: Option<Layout>,
    /// For `modified` and `same`: how many bytes differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_bytes: Option<u64>,
    /// For `modified` and `same` of a dtype with a known element size: how many
    /// elements have at least one differing byte.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_elements: Option<u64>,
    /// For `modified` and `same`: `changed_bytes` over the tensor's bytes (0 when it
    /// has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
}

/// Returns a tensor's dtype, shape and size on one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// The dtype as written in the header, e.g. `F32`.
    pub dtype: String,
    /// The dimensions; empty for a scalar.
    pub shape: Vec<u64>,
    /// The bytes it takes in the file.
    pub bytes: u64,
}

/// Returns what happened to a tensor between the old and the new side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Only on the new side.
    Added,
    /// Only on the old side.
    Removed,
    /// The dtype differs (the shape may too); bytes not compared.
    Retyped,
    /// Same dtype, different shape; bytes not compared.
    Reshaped,
    /// Same dtype and shape, some bytes differ.
    Modified,
    /// Same dtype, shape and bytes.
    Same,
}

/// Returns how one `__metadata__` key changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetadataChange {
    /// The key.
    pub key: String,
    /// What happened to it.
    pub change: super::Change,
    /// Its value on the old side; `null` when it is not there.
    pub old: Option<String>,
    /// Its value on the new side; `null` when it is not there.
    pub new: Option<String>,
}

/// Returns the counts and byte totals of a [`TensorDiff`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Tensors on the old side.
    pub tensors_old: u64,
    /// Tensors on the new side.
    pub tensors_new: u64,
    /// Tensors only on the new side.
    pub added: u64,
    /// Tensors only on the old side.
    pub removed: u64,
    /// Tensors whose dtype changed.
    pub retyped: u64,
    /// Tensors whose shape changed and dtype did not.
    pub reshaped: u64,
    /// Tensors with the same dtype and shape and some bytes changed.
    pub modified: u64,
    /// Tensors with nothing changed.
    pub same: u64,
    /// The bytes of all tensors on the old side.
    pub bytes_old: u64,
    /// The bytes of all tensors on the new side.
    pub bytes_new: u64,
    /// The bytes of the tensors that are on both sides with the same dtype and shape.
    pub compared_bytes: u64,
    /// The bytes that differ, summed over the modified tensors.
    pub changed_bytes: u64,
    /// `changed_bytes / compared_bytes`, 0 when nothing was compared.
    pub share: f64,
}

/// Returns how the tensors and metadata of safetensors file `a` (old, `a_len` bytes)
/// differ from those of `b` (new, `b_len` bytes).
///
/// Both must be plain files holding the content to compare. Tensors on both sides
/// with the same dtype and shape are compared byte by byte (so `-0.0` and `0.0`
/// differ, and a NaN equals the same NaN). `progress` is called with byte counts of
/// `a` as they are done; once the diff succeeds they add up to `a_len`, so a progress
/// bar can use `a_len` as its total. A header either side refuses gives
/// [`SideError::Header`] naming the side; a failed read, or a file shorter than its
/// header says, gives [`SideError::Io`].
pub fn diff(
    a: &File,
    a_len: u64,
    b: &File,
    b_len: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<TensorDiff, SideError> {
    diff_knowing(a, a_len, b, b_len, &|_, _| false, progress)
}

/// Returns what [`diff`] returns, without reading the tensors `known_same` says are the
/// same on both sides (given their old and new entries, of the same dtype and shape):
/// those the parts of files stored in parts show to be, say. Only the tensors compared
/// need be in the files; the headers must be.
pub fn diff_knowing(
    a: &File,
    a_len: u64,
    b: &File,
    b_len: u64,
    known_same: &(dyn Fn(&TensorInfo, &TensorInfo) -> bool + Sync),
    progress: &(dyn Fn(u64) + Sync),
) -> Result<TensorDiff, SideError> {
    let old = Header::read(a, a_len).map_err(|error| SideError::Header {
        side: Side::Old,
        error,
    })?;
    let new = Header::read(b, b_len).map_err(|error| SideError::Header {
        side: Side::New,
        error,
    })?;
    let tensors = pair_up(&old, &new);
    let mut work: Vec<(usize, &TensorInfo, &TensorInfo)> = Vec::new();
    for (i, (_, a_info, b_info)) in tensors.iter().enumerate() {
        if let (Some(x), Some(y)) = (*a_info, *b_info) {
            if x.dtype == y.dtype && x.shape == y.shape {
                work.push((i, x, y));
            }
        }
    }
    let mut found = vec![None; tensors.len()];
    work.retain(|(i, x, y)| {
        let same = known_same(x, y);
        if same {
            found[*i] = Some(Counts {
                bytes: 0,
                elements: x.element_size().filter(|&s| s > 0).map(|_| 0),
            });
        }
        !same
    });
    let to_compare: u64 = work.iter().map(|(_, x, _)| x.bytes()).sum();
    progress(a_len.saturating_sub(to_compare));
    // Largest first, so that no big tensor is left alone on one core at the end.
    work.sort_by_key(|(_, x, _)| std::cmp::Reverse(x.bytes()));
    let counts: Vec<(usize, Counts)> = work
        .par_iter()
        .map_init(
            || (Vec::new(), Vec::new()),
            |(buf_a, buf_b), &(i, x, y)| {
                let sides = [(a, &old, x), (b, &new, y)];
                let counts = compare(sides, buf_a, buf_b, progress)?;
                Ok((i, counts))
            },
        )
        .collect::<anyhow::Result<_>>()
        .map_err(SideError::Io)?;
    for (i, c) in counts {
        found[i] = Some(c);
    }
    let changes: Vec<TensorChange> = tensors
        .into_iter()
        .zip(found)
        .map(|((name, x, y), counts)| change(name, x, y, counts))
        .collect();
    Ok(TensorDiff {
        summary: summarize(&changes, &old, &new),
        tensors: changes,
        metadata: metadata_changes(&old, &new),
    })
}

/// Returns every tensor name of either side, sorted, with its entry on each side.
fn pair_up<'h>(
    old: &'h Header,
    new: &'h Header,
) -> Vec<(&'h str, Option<&'h TensorInfo>, Option<&'h TensorInfo>)> {
    let mut out = Vec::with_capacity(old.tensors.len().max(new.tensors.len()));
    let (mut i, mut j) = (0, 0);
    loop {
        let (x, y) = (old.tensors.get(i), new.tensors.get(j));
        let entry = match (x, y) {
            (None, None) => break,
            (Some(x), Some(y)) if x.name == y.name => (x.name.as_str(), Some(x), Some(y)),
            (Some(x), Some(y)) if x.name < y.name => (x.name.as_str(), Some(x), None),
            (Some(x), None) => (x.name.as_str(), Some(x), None),
            (_, Some(y)) => (y.name.as_str(), None, Some(y)),
        };
        i += usize::from(entry.1.is_some());
        j += usize::from(entry.2.is_some());
        out.push(entry);
    }
    out
}

/// Returns the change of one tensor, given its entries and, if it was compared, the
/// differing bytes.
fn change(
    name: &str,
    x: Option<&TensorInfo>,
    y: Option<&TensorInfo>,
    counts: Option<Counts>,
) -> TensorChange {
    let layout = |t: &TensorInfo| Layout {
        dtype: t.dtype.clone(),
        shape: t.shape.clone(),
        bytes: t.bytes(),
    };
    let kind = match (x, y, counts) {
        (None, _, _) => Change::Added,
        (_, None, _) => Change::Removed,
        (_, _, Some(c)) if c.bytes > 0 => Change::Modified,
        (_, _, Some(_)) => Change::Same,
        (Some(x), Some(y), None) if x.dtype != y.dtype => Change::Retyped,
        (Some(_), Some(_), None) => Change::Reshaped,
    };
    let total = x
        .map_or(0, TensorInfo::bytes)
        .max(y.map_or(0, TensorInfo::bytes));
    TensorChange {
        name: name.to_string(),
        change: kind,
        old: x.map(layout),
        new: y.map(layout),
        changed_bytes: counts.map(|c| c.bytes),
        changed_elements: counts.and_then(|c| c.elements),
        share: counts.map(|c| ratio(c.bytes, total)),
    }
}

/// Returns `part / whole`, 0 when `whole` is 0.
fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Returns the summary of the tensor changes between two headers.
fn summarize(changes: &[TensorChange], old: &Header, new: &Header) -> Summary {
    let count = |kind: Change| changes.iter().filter(|c| c.change == kind).count() as u64;
    let compared_bytes = changes
        .iter()
        .filter(|c| c.changed_bytes.is_some())
        .map(|c| {
            let bytes = |l: &Option<Layout>| l.as_ref().map_or(0, |l| l.bytes);
            bytes(&c.old).max(bytes(&c.new))
        })
        .sum();
    let changed_bytes = changes.iter().filter_map(|c| c.changed_bytes).sum();
    Summary {
        tensors_old: old.tensors.len() as u64,
        tensors_new: new.tensors.len() as u64,
        added: count(Change::Added),
        removed: count(Change::Removed),
        retyped: count(Change::Retyped),
        reshaped: count(Change::Reshaped),
        modified: count(Change::Modified),
        same: count(Change::Same),
        bytes_old: old.tensors.iter().map(TensorInfo::bytes).sum(),
        bytes_new: new.tensors.iter().map(TensorInfo::bytes).sum(),
        compared_bytes,
        changed_bytes,
        share: ratio(changed_bytes, compared_bytes),
    }
}

/// Returns every `__metadata__` key of either side, sorted, with how it changed.
fn metadata_changes(old: &Header, new: &Header) -> Vec<MetadataChange> {
    let mut keys: Vec<&String> = old.metadata.keys().chain(new.metadata.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|key| {
            let (x, y) = (old.metadata.get(key), new.metadata.get(key));
            let change = match (x, y) {
                (None, _) => super::Change::Added,
                (_, None) => super::Change::Removed,
                (Some(x), Some(y)) if x == y => super::Change::Same,
                _ => super::Change::Changed,
            };
            MetadataChange {
                key: key.clone(),
                change,
                old: x.cloned(),
                new: y.cloned(),
            }
        })
        .collect()
}

#[cfg(test)]
// Shares are exact quotients, computed the same way by the tests.
#[allow(clippy::float_cmp)]
#[path = "tensors_tests.rs"]
mod tests;
