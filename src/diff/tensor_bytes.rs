//! Comparing the bytes of two tensors: both ranges read in bounded chunks with
//! positioned reads, and the differing bytes and elements counted word by word.

use std::fs::File;
use std::os::unix::fs::FileExt;

use anyhow::{Context, anyhow};

use super::tensors::Side;
use crate::safetensors::{Header, TensorInfo};

/// Bytes read from each side at a time; a multiple of every element size.
pub(super) const CHUNK: usize = 1 << 20;

/// Returns the differing bytes and elements of one compared tensor.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counts {
    pub(super) bytes: u64,
    pub(super) elements: Option<u64>,
}

/// Returns the differing bytes (and elements, for a known element size) of a tensor
/// with the same dtype and shape on both sides, each side given as (file, header,
/// entry).
///
/// Reads both ranges in chunks of at most [`CHUNK`] bytes into the given buffers.
/// Ranges of different lengths (possible only for dtypes of unknown element size)
/// count the bytes past the shorter one as changed.
pub(super) fn compare(
    sides: [(&File, &Header, &TensorInfo); 2],
    buf_a: &mut Vec<u8>,
    buf_b: &mut Vec<u8>,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Counts> {
    let [(file_a, old, ta), (file_b, new, tb)] = sides;
    let size = ta.element_size().filter(|&s| s > 0);
    let common = ta.bytes().min(tb.bytes());
    let mut counts = Counts {
        bytes: ta.bytes().abs_diff(tb.bytes()),
        elements: size.map(|_| 0),
    };
    let mut done = 0;
    while done < common {
        let n = usize::try_from(common - done).map_or(CHUNK, |left| left.min(CHUNK));
        buf_a.resize(n, 0);
        buf_b.resize(n, 0);
        read_range(file_a, old, ta, done, buf_a, Side::Old)?;
        read_range(file_b, new, tb, done, buf_b, Side::New)?;
        if buf_a != buf_b {
            // Chunks start at multiples of CHUNK, itself a multiple of every known
            // element size, so elements never straddle two chunks.
            let (bytes, elements) = count_differences(buf_a, buf_b, size);
            counts.bytes += bytes;
            if let Some(total) = counts.elements.as_mut() {
                *total += elements;
            }
        }
        done += n as u64;
        progress(n as u64);
    }
    if ta.bytes() > common {
        progress(ta.bytes() - common);
    }
    Ok(counts)
}

/// Returns how many bytes differ between `a` and `b` (of equal length), and how many
/// elements of `size` bytes (when known) do.
pub(super) fn count_differences(a: &[u8], b: &[u8], size: Option<u64>) -> (u64, u64) {
    match size {
        Some(1) => count_words::<1>(a, b),
        Some(2) => count_words::<2>(a, b),
        Some(4) => count_words::<4>(a, b),
        Some(8) => count_words::<8>(a, b),
        other => {
            // Other element sizes are counted one element at a time.
            let size = other.map_or(1, |s| s as usize);
            let elements = a
                .chunks(size)
                .zip(b.chunks(size))
                .filter(|(p, q)| p != q)
                .count() as u64;
            (count_words::<1>(a, b).0, elements)
        }
    }
}

/// Counts differing bytes and `S`-byte elements eight bytes at a time, without a
/// branch or a popcount instruction, so the loop vectorizes on any x86-64 or ARM.
///
/// In the XOR `x` of two words, a byte is non-zero exactly when the high bit of
/// `((x & 0x7f…) + 0x7f…) | x` is set; shifted down, that is a 1 in each differing byte.
/// Folding those per element leaves a 1 in the low byte of each differing element.
/// The ones are summed per byte lane for up to 255 words, then across lanes.
fn count_words<const S: usize>(a: &[u8], b: &[u8]) -> (u64, u64) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let word = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("chunks of 8 bytes"));
    let lanes = |acc: u64| {
        let pairs = (acc & 0x00ff_00ff_00ff_00ff) + ((acc >> 8) & 0x00ff_00ff_00ff_00ff);
        pairs.wrapping_mul(0x0001_0001_0001_0001) >> 48
    };
    let whole = a.len() / 8 * 8;
    let (mut bytes, mut elements) = (0u64, 0u64);
    for (p, q) in a[..whole].chunks(8 * 255).zip(b[..whole].chunks(8 * 255)) {
        let (mut byte_acc, mut elem_acc) = (0u64, 0u64);
        for (u, v) in p.chunks_exact(8).zip(q.chunks_exact(8)) {
            let x = word(u) ^ word(v);
            let ones = ((((x & LOW7) + LOW7) | x) >> 7) & ONES;
            byte_acc += ones;
            elem_acc += match S {
                1 => ones,
                2 => (ones | (ones >> 8)) & 0x0001_0001_0001_0001,
                4 => (ones | (ones >> 8) | (ones >> 16) | (ones >> 24)) & 0x0000_0001_0000_0001,
                _ => u64::from(x != 0),
            };
        }
        bytes += lanes(byte_acc);
        elements += lanes(elem_acc);
    }
    let (p, q) = (&a[whole..], &b[whole..]);
    bytes += p.iter().zip(q).filter(|(u, v)| u != v).count() as u64;
    elements += p.chunks(S).zip(q.chunks(S)).filter(|(u, v)| u != v).count() as u64;
    (bytes, elements)
}

/// Fills `buf` from the tensor's range, `offset` bytes into it.
fn read_range(
    file: &File,
    header: &Header,
    tensor: &TensorInfo,
    offset: u64,
    buf: &mut [u8],
    side: Side,
) -> anyhow::Result<()> {
    let at = header.data_start + tensor.begin + offset;
    match file.read_exact_at(buf, at) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => Err(anyhow!(
            "the {side} file ends before byte {}, where its header says tensor {:?} ends; \
             it is shorter than the {} bytes it was said to hold",
            header.data_start + tensor.end,
            tensor.name,
            header.file_len
        )),
        Err(err) => Err(err).with_context(|| {
            format!(
                "reading tensor {:?} of the {side} file at byte {at}",
                tensor.name
            )
        }),
    }
}
