//! Comparing the tensors of two `.safetensors` files stored in parts without reading
//! what their parts show to be the same.
//!
//! A file stored in parts ([`crate::store::chunks`]) is cut at tensor boundaries, so a
//! tensor covered on both sides by the same parts, at the same places, holds the same
//! bytes: it is known the same without a byte of it being read. Each side is
//! assembled into a sparse temp file holding only its header and the parts of the
//! tensors that must be compared, each part verified against its name as it is
//! written. The lists themselves are trusted as the registry holds them (each was
//! checked against its file's whole content when it was pushed or fetched; `mreg
//! fsck` checks them again).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use anyhow::{Context, Result};

use super::tensors::{self, SideError, TensorDiff};
use crate::id::ObjectId;
use crate::safetensors::{Header, MAX_HEADER, TensorInfo};
use crate::store::Registry;
use crate::store::chunks::ChunkList;
use crate::store::object::{self, Encoding};

/// Returns the chunk list of `id` when the registry holds it in parts.
pub fn list_of(reg: &Registry, id: ObjectId) -> Option<ChunkList> {
    match reg.find_file(id) {
        Some((path, Encoding::Chunked)) => ChunkList::read(&path).ok(),
        _ => None,
    }
}

/// One side: a sparse file as long as the content, and where each part lies in it.
struct Side {
    file: File,
    len: u64,
    /// Each part's first byte, one past its last, and its object.
    parts: Vec<(u64, u64, ObjectId)>,
    written: Vec<bool>,
}

impl Side {
    fn new(reg: &Registry, list: &ChunkList, len: u64) -> Result<Side> {
        let file = tempfile::tempfile_in(reg.tmp_dir())
            .or_else(|_| tempfile::tempfile())
            .context("creating a temp file to compare tensors in")?;
        file.set_len(len)?;
        let mut parts = Vec::with_capacity(list.parts.len());
        let mut at = 0;
        for (id, size) in &list.parts {
            parts.push((at, at + size, *id));
            at += size;
        }
        anyhow::ensure!(
            at == len,
            "its chunk list adds up to {at} bytes where its tree declares {len}"
        );
        Ok(Side {
            file,
            len,
            written: vec![false; parts.len()],
            parts,
        })
    }

    /// Returns the indexes of the parts overlapping `start..end`.
    fn overlapping(&self, start: u64, end: u64) -> std::ops::Range<usize> {
        let first = self.parts.partition_point(|(_, e, _)| *e <= start);
        let last = self.parts.partition_point(|(b, _, _)| *b < end);
        first..last.max(first)
    }

    /// Returns the parts covering `start..end`, each with where it starts relative to
    /// `start`: equal on two sides, the bytes are.
    fn covering(&self, start: u64, end: u64) -> Vec<(ObjectId, i128)> {
        self.parts[self.overlapping(start, end)]
            .iter()
            .map(|(b, _, id)| (*id, i128::from(*b) - i128::from(start)))
            .collect()
    }

    /// Writes every part overlapping `start..end` into the file, verified.
    fn fill(&mut self, reg: &Registry, start: u64, end: u64, progress: &dyn Fn(u64)) -> Result<()> {
        for i in self.overlapping(start, end.min(self.len)) {
            if self.written[i] {
                continue;
            }
            let (b, e, id) = self.parts[i];
            let stored = reg.object(id)?;
            anyhow::ensure!(
                stored.encoding() != Encoding::Chunked,
                "part {} is stored as a chunk list itself",
                id.short(16)
            );
            let mut out = At {
                file: &self.file,
                offset: b,
            };
            object::copy_verified(&stored, id, Some(e - b), &mut out, progress)?;
            self.written[i] = true;
        }
        Ok(())
    }

    /// Writes the parts holding the header: its length, then the header itself.
    fn fill_header(&mut self, reg: &Registry, progress: &dyn Fn(u64)) -> Result<()> {
        self.fill(reg, 0, 8, progress)?;
        let mut prefix = [0u8; 8];
        if self.len >= 8 {
            self.file.read_exact_at(&mut prefix, 0)?;
        }
        let header = u64::from_le_bytes(prefix).min(MAX_HEADER);
        self.fill(reg, 0, 8u64.saturating_add(header), progress)
    }
}

/// Writes into a file from an offset on.
struct At<'f> {
    file: &'f File,
    offset: u64,
}

impl Write for At<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write_all_at(buf, self.offset)?;
        self.offset += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Returns the tensor diff of two files stored in parts (`a` old, `b` new, of the
/// sizes their trees declare), reading only the headers and the parts of tensors whose
/// parts differ.
pub fn diff(
    reg: &Registry,
    (old_list, a_len): (&ChunkList, u64),
    (new_list, b_len): (&ChunkList, u64),
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Result<TensorDiff, SideError>> {
    let mut x = Side::new(reg, old_list, a_len)?;
    let mut y = Side::new(reg, new_list, b_len)?;
    x.fill_header(reg, progress)?;
    y.fill_header(reg, progress)?;
    let (Ok(old), Ok(new)) = (Header::read(&x.file, a_len), Header::read(&y.file, b_len)) else {
        // The whole diff says which side is malformed, and how.
        return Ok(tensors::diff(&x.file, a_len, &y.file, b_len, progress));
    };
    let range = |h: &Header, t: &TensorInfo| (h.data_start + t.begin, h.data_start + t.end);
    let mut same = std::collections::HashSet::new();
    let mut to_fill = Vec::new();
    for t in &old.tensors {
        if let Ok(i) = new.tensors.binary_search_by(|u| u.name.cmp(&t.name)) {
            let u = &new.tensors[i];
            if t.dtype != u.dtype || t.shape != u.shape {
                continue;
            }
            let ((xs, xe), (ys, ye)) = (range(&old, t), range(&new, u));
            if xe - xs == ye - ys && x.covering(xs, xe) == y.covering(ys, ye) {
                same.insert(t.name.as_str());
            } else {
                to_fill.push(((xs, xe), (ys, ye)));
            }
        }
    }
    for ((xs, xe), (ys, ye)) in to_fill {
        x.fill(reg, xs, xe, progress)?;
        y.fill(reg, ys, ye, progress)?;
    }
    let known_same = |t: &TensorInfo, _: &TensorInfo| same.contains(t.name.as_str());
    Ok(tensors::diff_knowing(
        &x.file,
        a_len,
        &y.file,
        b_len,
        &known_same,
        progress,
    ))
}
