//! Large files stored in parts: where a file is cut, the list naming its parts, and
//! reading the parts back as one stream.
//!
//! In a registry of format 2, a file of at least [`CHUNKED_MIN`] bytes is stored as
//! parts, each an ordinary object (raw or zstd), plus a list at
//! `objects/ab/cdef….chunks` named by the hash of the *whole* content, as any object
//! is. So a tree, a signature or a diff names the file as before; only the store knows
//! it is in parts. A `.safetensors` file is cut at tensor boundaries (its header is one
//! part, each tensor of at least [`GROUP_MAX`] bytes starts a part of its own, smaller
//! neighbours share one, and tensors larger than [`PART_MAX`] are cut every
//! [`PART_MAX`] bytes), so a fine-tune that changed some tensors stores only those.
//! Any other large file is cut where its content says (FastCDC), so an insertion
//! shifts no boundary but its own.
//!
//! A list is untrusted input like everything in a registry: it is bounded
//! ([`LIST_LIMIT`]), its parts must add up to the size a tree declares, and reading
//! verifies the whole content's hash, so a list that lies about its parts yields an
//! error, never other bytes.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::keys;
use super::object::Encoding;
use crate::id::ObjectId;
use crate::safetensors::Header;

/// Files at least this large are stored in parts (in a registry of format 2).
pub const CHUNKED_MIN: u64 = 16 << 20;

/// The largest part: longer tensors are cut every this many bytes.
pub const PART_MAX: u64 = 16 << 20;

/// Tensors smaller than this share a part with their neighbours, up to this size.
pub const GROUP_MAX: u64 = 1 << 20;

/// Content-defined parts of other files: at least, on average and at most.
pub const CDC_MIN: usize = 1 << 20;
/// The average size content-defined cuts aim for.
pub const CDC_AVG: usize = 4 << 20;
/// The largest content-defined part.
pub const CDC_MAX: usize = 16 << 20;

/// The most parts one list may name.
pub const MAX_PARTS: usize = 200_000;

/// The largest list read: [`MAX_PARTS`] lines and the first.
pub const LIST_LIMIT: u64 = 80 * (MAX_PARTS as u64 + 1);

/// The first line of a list.
const MAGIC: &str = "mreg chunks 1";

/// The parts of a file, in order: each part's object and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkList {
    /// The parts, in the order their bytes come in the file.
    pub parts: Vec<(ObjectId, u64)>,
}

impl ChunkList {
    /// Returns the list's stored text: `mreg chunks 1`, then `HASH SIZE` per part.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(16 + self.parts.len() * 80);
        out.push_str(MAGIC);
        out.push('\n');
        for (id, size) in &self.parts {
            out.push_str(&id.to_hex());
            out.push(' ');
            out.push_str(&size.to_string());
            out.push('\n');
        }
        out
    }

    /// Returns the content length the parts add up to.
    pub fn total(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |sum, (_, size)| sum.saturating_add(*size))
    }

    /// Parses a list, refusing anything but the form [`ChunkList::to_text`] writes:
    /// no empty part, none longer than [`PART_MAX`], no more than [`MAX_PARTS`].
    pub fn parse(bytes: &[u8]) -> Result<ChunkList> {
        if bytes.len() as u64 > LIST_LIMIT {
            bail!(
                "a chunk list of {} bytes, more than any mreg writes",
                bytes.len()
            );
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("a chunk list that is not text"))?;
        let mut lines = text.split_terminator('\n');
        if lines.next() != Some(MAGIC) {
            bail!("not a chunk list (it does not start with {MAGIC:?})");
        }
        if !text.ends_with('\n') {
            bail!("a chunk list whose last line does not end");
        }
        let mut parts = Vec::new();
        let mut total = 0u64;
        for (n, line) in lines.enumerate() {
            let bad = || anyhow::anyhow!("line {} of a chunk list is not `HASH SIZE`", n + 2);
            let (hex, size) = line.split_once(' ').ok_or_else(bad)?;
            let id: ObjectId = hex.parse().map_err(|_| bad())?;
            if size.starts_with('0') || size.starts_with('+') {
                return Err(bad());
            }
            let size: u64 = size.parse().map_err(|_| bad())?;
            if size > PART_MAX {
                bail!(
                    "line {} of a chunk list declares a part of {size} bytes, more than any mreg writes ({PART_MAX})",
                    n + 2
                );
            }
            total = total.checked_add(size).ok_or_else(|| {
                anyhow::anyhow!("a chunk list whose parts add up past 2^64 bytes")
            })?;
            parts.push((id, size));
            if parts.len() > MAX_PARTS {
                bail!("a chunk list of more than {MAX_PARTS} parts");
            }
        }
        if parts.is_empty() {
            bail!("a chunk list that names no part");
        }
        Ok(ChunkList { parts })
    }

    /// Reads and parses the list stored at `path` (`objects/ab/NAME.chunks` of a
    /// registry folder), no more than [`LIST_LIMIT`] bytes, opened as every file of a
    /// registry is: no link followed, no FIFO waited on.
    pub fn read(path: &Path) -> Result<ChunkList> {
        ChunkList::read_if_present(path)?.with_context(|| format!("{} is missing", path.display()))
    }

    /// Returns what [`ChunkList::read`] returns, or `None` when nothing is at `path`
    /// (anything there that is not a list's file, a FIFO say, is an error).
    pub fn read_if_present(path: &Path) -> Result<Option<ChunkList>> {
        let root = registry_of(path)?;
        let key = path
            .strip_prefix(root)
            .ok()
            .and_then(Path::to_str)
            .with_context(|| format!("{} is not inside a registry's objects/", path.display()))?;
        let Some(file) = super::files::open(root, key)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        file.take(LIST_LIMIT + 1).read_to_end(&mut bytes)?;
        ChunkList::parse(&bytes).map(Some)
    }
}

/// Returns the registry folder holding the list or object stored at `path`
/// (`ROOT/objects/ab/NAME`): where the parts it names are found.
pub fn registry_of(path: &Path) -> Result<&Path> {
    path.ancestors()
        .nth(3)
        .with_context(|| format!("{} is not inside a registry's objects/", path.display()))
}

/// Bytes of a file read at once while it is cut into parts: a largest part and room
/// for a few more. Cuts do not depend on it (a content-defined cut is sought only with
/// a largest part's bytes ahead, or the end of the file); memory does, once per file
/// being cut at the same time.
const WINDOW: usize = 20 << 20;

/// The parts ending inside one window of a file: each part's start in the window and
/// its length, in order.
pub type Slices = [(usize, usize)];

/// What [`walk_parts`] calls with each window: its offset in the file, its bytes, and
/// the parts ending inside it.
pub type EachWindow<'a> = dyn FnMut(u64, &[u8], &Slices) -> Result<()> + 'a;

/// Reads the file `name` (its last path component), open as `file`, of `len` bytes, one
/// window at a time, and calls `each` with the window's offset in the file, its bytes,
/// and the parts that end inside it, so that every byte is read once. A `.safetensors`
/// file whose header reads is cut at its tensors; any other file where its content
/// says (FastCDC).
pub fn walk_parts(file: &File, len: u64, name: &str, each: &mut EachWindow<'_>) -> Result<()> {
    let tensor_cuts = name
        .ends_with(".safetensors")
        .then(|| Header::read(file, len).ok().and_then(|h| tensor_cuts(&h)))
        .flatten();
    let by_tensor = tensor_cuts.is_some();
    let mut cuts = tensor_cuts.into_iter().flatten().chain([len]).peekable();
    let mut buf = vec![0u8; WINDOW.min(usize::try_from(len).unwrap_or(WINDOW))];
    let (mut base, mut filled, mut count) = (0u64, 0usize, 0usize);
    let mut slices = Vec::new();
    while base < len {
        while filled < buf.len() && base + (filled as u64) < len {
            match file.read_at(&mut buf[filled..], base + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err.into()),
            }
        }
        let at_end = base + filled as u64 >= len;
        slices.clear();
        let mut pos = 0usize;
        if by_tensor {
            while let Some(&cut) = cuts.peek() {
                let end = usize::try_from(cut - base).unwrap_or(usize::MAX);
                if end > filled {
                    break;
                }
                slices.push((pos, end - pos));
                pos = end;
                cuts.next();
            }
        } else {
            // A largest part ahead of each cut, or the rest of the file.
            while pos < filled && (at_end || filled - pos >= CDC_MAX) {
                let n = next_content_cut(&buf[pos..filled]);
                if n == 0 {
                    break;
                }
                slices.push((pos, n));
                pos += n;
            }
        }
        if pos == 0 {
            bail!("the file changed while mreg was reading it");
        }
        count += slices.len();
        if count > MAX_PARTS {
            bail!("the file makes more parts than a chunk list holds ({MAX_PARTS})");
        }
        each(base, &buf[..filled], &slices)?;
        buf.copy_within(pos..filled, 0);
        filled -= pos;
        base += pos as u64;
    }
    Ok(())
}

/// Returns the length of the next content-defined part at the start of `window`, which
/// holds at least [`CDC_MAX`] bytes or the rest of the file (FastCDC's 2020 algorithm,
/// normalization level 1); 0 when it is empty.
fn next_content_cut(window: &[u8]) -> usize {
    use fastcdc::v2020::{Normalization, cut, select_masks};
    let (mask_s, mask_l) = select_masks(CDC_AVG, Normalization::Level1);
    cut(
        window,
        CDC_MIN,
        CDC_AVG,
        CDC_MAX,
        mask_s,
        mask_l,
        mask_s << 1,
        mask_l << 1,
    )
    .1
}

/// Returns the cut offsets of a `.safetensors` file from its header: after the header,
/// before each tensor of at least [`GROUP_MAX`] bytes and after it, between smaller
/// neighbours once [`GROUP_MAX`] bytes gathered, and every [`PART_MAX`] bytes inside a
/// tensor. `None` when it would make more than [`MAX_PARTS`] parts.
fn tensor_cuts(header: &Header) -> Option<Vec<u64>> {
    let mut ranges: Vec<(u64, u64)> = header
        .tensors
        .iter()
        .map(|t| (header.data_start + t.begin, header.data_start + t.end))
        .filter(|(b, e)| e > b)
        .collect();
    ranges.sort_unstable();
    let mut cuts = vec![header.data_start];
    let mut last = header.data_start;
    for (begin, end) in ranges {
        let size = end - begin;
        if size >= GROUP_MAX {
            if begin > last {
                cuts.push(begin);
            }
            let mut at = begin + PART_MAX;
            while at < end {
                cuts.push(at);
                at += PART_MAX;
            }
            cuts.push(end);
            last = end;
        } else if end - last > GROUP_MAX {
            // The gathered neighbours are a part; this tensor starts the next.
            if begin > last {
                cuts.push(begin);
                last = begin;
            }
        }
        if cuts.len() > MAX_PARTS {
            return None;
        }
    }
    cuts.retain(|&c| c > 0 && c < header.file_len);
    cuts.dedup();
    // A long header, or a long gap between tensors, is cut like a long tensor.
    let mut out = Vec::with_capacity(cuts.len());
    let mut last = 0;
    for cut in cuts.into_iter().chain([header.file_len]) {
        let mut at = last + PART_MAX;
        while at < cut {
            out.push(at);
            at += PART_MAX;
        }
        out.push(cut);
        last = cut;
    }
    out.pop();
    (out.len() < MAX_PARTS).then_some(out)
}

/// Reads a file's parts as one stream: each part's stored form (raw or zstd) in turn,
/// each no longer than its list says (a part of another length is an error). The
/// caller verifies the whole content's hash.
pub struct PartsReader {
    objects: PathBuf,
    parts: std::vec::IntoIter<(ObjectId, u64)>,
    current: Option<(Box<dyn Read>, ObjectId, u64, u64)>,
}

impl PartsReader {
    /// Returns a reader of `list`'s parts, found in the registry folder `root` (its
    /// `.mreg` folder).
    pub fn new(root: &Path, list: ChunkList) -> PartsReader {
        PartsReader {
            objects: root.to_path_buf(),
            parts: list.parts.into_iter(),
            current: None,
        }
    }
}

impl Read for PartsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                let Some((id, size)) = self.parts.next() else {
                    return Ok(0);
                };
                let (reader, _) = open_part(&self.objects, id, size)?;
                self.current = Some((reader, id, size, 0));
            }
            let (reader, id, size, read) = self.current.as_mut().expect("a part is open");
            let n = reader.read(buf)?;
            *read += n as u64;
            if *read > *size {
                return Err(io::Error::other(format!(
                    "part {} holds more than the {size} bytes its list declares",
                    id.short(16)
                )));
            }
            if n == 0 {
                if *read < *size {
                    return Err(io::Error::other(format!(
                        "part {} holds {read} bytes where its list declares {size}",
                        id.short(16)
                    )));
                }
                self.current = None;
                continue;
            }
            return Ok(n);
        }
    }
}

/// Writes the content of `list`'s parts, found in the registry folder `root`, into
/// `out` at their places, several parts at once: raw ones copied by the kernel, the
/// others decoded; each no longer or shorter than its list says. `out` must be as long
/// as the list's total. The caller verifies the whole content's hash, reading `out`.
pub fn write_parts(
    root: &Path,
    list: &ChunkList,
    out: &File,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<()> {
    use rayon::prelude::*;
    let mut placed = Vec::with_capacity(list.parts.len());
    let mut at = 0;
    for (id, size) in &list.parts {
        placed.push((*id, *size, at));
        at += size;
    }
    placed.par_iter().try_for_each(|&(id, size, offset)| {
        write_part(root, (id, size), out, offset)?;
        progress(size);
        Ok(())
    })
}

/// Returns the content of the part `id` of `size` bytes, found in the registry folder
/// `root`, to read, with the stored form it was opened in (raw or compressed): opened
/// as every file of a registry is (no link followed, no FIFO waited on, nothing but a
/// regular file), and read no further than one byte past `size`.
pub fn open_part(root: &Path, id: ObjectId, size: u64) -> io::Result<(Box<dyn Read>, Encoding)> {
    for encoding in Encoding::WHOLE {
        let key = keys::object(id, encoding);
        let file = match super::files::open(root, &key) {
            Ok(Some(file)) => file,
            Ok(None) => continue,
            Err(err) => {
                return Err(io::Error::other(format!(
                    "part {} of a file stored in parts cannot be read: {err:#}",
                    id.short(16)
                )));
            }
        };
        let reader: Box<dyn Read> = match encoding {
            Encoding::Zstd => Box::new(zstd::stream::read::Decoder::new(file)?.take(size + 1)),
            _ => Box::new(file.take(size + 1)),
        };
        return Ok((reader, encoding));
    }
    Err(io::Error::other(format!(
        "part {} of a file stored in parts is missing",
        id.short(16)
    )))
}

/// Returns whether `copy_file_range` failed only because the kernel cannot copy between
/// these two files (they are on different filesystems, or one that does not support
/// it), so that a copy through memory will do.
pub fn kernel_cannot_copy(err: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    [
        Errno::XDEV,
        Errno::INVAL,
        Errno::NOSYS,
        Errno::OPNOTSUPP,
        Errno::PERM,
    ]
    .contains(&err)
}

/// Returns the first of `list`'s parts, found in the registry folder `root`, whose
/// content does not match its name, with why: what to name when a file assembled
/// from its parts does not match its own name.
pub fn first_bad_part(root: &Path, list: &ChunkList) -> Option<(ObjectId, String)> {
    for (id, size) in &list.parts {
        let checked = open_part(root, *id, *size)
            .and_then(|(mut part, _)| super::object::hash_reader(&mut part, *size, None, &|_| {}));
        match checked {
            Ok((actual, n)) if actual == *id && n == *size => {}
            Ok((actual, n)) if n == *size => {
                return Some((*id, format!("its content hashes to {}", actual.short(16))));
            }
            Ok((_, n)) => {
                return Some((
                    *id,
                    format!("it holds {n} bytes where its list declares {size}"),
                ));
            }
            Err(err) => return Some((*id, err.to_string())),
        }
    }
    None
}

/// Writes one part into `out` at `offset`.
fn write_part(root: &Path, (id, size): (ObjectId, u64), out: &File, offset: u64) -> io::Result<()> {
    let too_long = || {
        io::Error::other(format!(
            "part {} holds more than the {size} bytes its list declares",
            id.short(16)
        ))
    };
    let too_short = |n: u64| {
        io::Error::other(format!(
            "part {} holds {n} bytes where its list declares {size}",
            id.short(16)
        ))
    };
    // A raw part of the right length is copied by the kernel, where it can.
    if let Ok(Some(file)) = super::files::open(root, &keys::object(id, Encoding::Raw)) {
        let len = file.metadata()?.len();
        if len > size {
            return Err(too_long());
        }
        if len < size {
            return Err(too_short(len));
        }
        let (mut from, mut to) = (0u64, offset);
        while from < size {
            let left = usize::try_from(size - from)
                .unwrap_or(usize::MAX)
                .min(1 << 30);
            match rustix::fs::copy_file_range(&file, Some(&mut from), out, Some(&mut to), left) {
                Ok(0) => return Err(too_short(from)),
                // Copied some (or interrupted): the offsets say where to go on.
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                // Another filesystem: copied through memory below.
                Err(err) if from == 0 && kernel_cannot_copy(err) => break,
                Err(err) => return Err(err.into()),
            }
        }
        if from == size {
            return Ok(());
        }
    }
    let (mut part, _) = open_part(root, id, size)?;
    let mut buf = vec![0u8; (size as usize).min(1 << 20)];
    let mut written = 0u64;
    loop {
        let n = part.read(&mut buf)?;
        if n == 0 {
            break;
        }
        written += n as u64;
        if written > size {
            return Err(too_long());
        }
        out.write_all_at(&buf[..n], offset + written - n as u64)?;
    }
    if written < size {
        return Err(too_short(written));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(tensors: &[(u64, u64)], data_start: u64) -> Header {
        let end = tensors.iter().map(|t| t.1).max().unwrap_or(0);
        Header {
            tensors: tensors
                .iter()
                .enumerate()
                .map(|(i, (b, e))| crate::safetensors::TensorInfo {
                    name: format!("t{i}"),
                    dtype: "U8".into(),
                    shape: vec![e - b],
                    begin: *b,
                    end: *e,
                })
                .collect(),
            metadata: std::collections::BTreeMap::default(),
            data_start,
            file_len: data_start + end,
        }
    }

    #[test]
    fn large_tensors_stand_alone_and_small_ones_share_a_part() {
        let mb = 1 << 20;
        // Two small tensors, a large one, three small ones, then one past PART_MAX.
        let h = header(
            &[
                (0, 10),
                (10, 20),
                (20, 20 + 3 * mb),
                (20 + 3 * mb, 21 + 3 * mb),
                (21 + 3 * mb, 22 + 3 * mb),
                (22 + 3 * mb, 23 + 3 * mb),
                (23 + 3 * mb, 23 + 3 * mb + 40 * mb),
            ],
            100,
        );
        let at = tensor_cuts(&h).unwrap();
        let d = 100;
        assert_eq!(
            at,
            vec![
                d,
                d + 20,
                d + 20 + 3 * mb,
                d + 23 + 3 * mb,
                d + 23 + 3 * mb + 16 * mb,
                d + 23 + 3 * mb + 32 * mb,
            ]
        );
    }

    #[test]
    fn many_small_tensors_are_gathered_up_to_the_group_size() {
        let kb = 1 << 10;
        let tensors: Vec<(u64, u64)> = (0..3000).map(|i| (i * kb, (i + 1) * kb)).collect();
        let at = tensor_cuts(&header(&tensors, 8)).unwrap();
        // 3000 KiB in parts of 1 MiB: the header, then three parts.
        assert_eq!(at.len(), 3);
        assert!(at.windows(2).all(|w| w[1] - w[0] == GROUP_MAX));
    }

    /// Returns where [`walk_parts`] cuts a file, checking that the windows it hands
    /// over hold the file's bytes and that its parts tile the file.
    fn cuts_of(file: &File, len: u64, name: &str) -> Vec<u64> {
        let mut cuts = Vec::new();
        let mut next = 0u64;
        walk_parts(file, len, name, &mut |base, window, slices| {
            let mut expect = vec![0u8; window.len()];
            file.read_exact_at(&mut expect, base).unwrap();
            assert!(expect == window);
            for (pos, n) in slices {
                assert_eq!(base + *pos as u64, next);
                next += *n as u64;
                cuts.push(next);
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(cuts.pop(), Some(len));
        cuts
    }

    #[test]
    fn content_cuts_move_with_an_insertion_and_nowhere_else() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let bytes: Vec<u8> = (0..(40 << 20))
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let cuts_of = |content: &[u8]| {
            let path = dir.path().join("f");
            std::fs::write(&path, content).unwrap();
            let file = File::open(&path).unwrap();
            cuts_of(&file, content.len() as u64, "weights.bin")
        };
        let before = cuts_of(&bytes);
        assert!(before.len() >= 4, "{before:?}");
        assert!(
            before
                .windows(2)
                .all(|w| w[1] - w[0] >= CDC_MIN as u64 && w[1] - w[0] <= CDC_MAX as u64)
        );
        let mut inserted = b"a few new bytes".to_vec();
        inserted.extend_from_slice(&bytes);
        let after = cuts_of(&inserted);
        let shifted: Vec<u64> = before.iter().map(|c| c + 15).collect();
        // Every cut but the first lands where it was, 15 bytes on.
        assert_eq!(after[1..], shifted[1..]);
    }

    #[test]
    fn lists_round_trip_and_refuse_other_forms() {
        let list = ChunkList {
            parts: vec![(ObjectId::of(b"a"), 1), (ObjectId::of(b"bc"), 2)],
        };
        let text = list.to_text();
        assert_eq!(ChunkList::parse(text.as_bytes()).unwrap(), list);
        assert_eq!(list.total(), 3);
        let a = ObjectId::of(b"a").to_hex();
        for bad in [
            String::new(),
            "mreg chunks 1\n".to_owned(),
            format!("mreg chunks 2\n{a} 1\n"),
            format!("mreg chunks 1\n{a} 1"),
            format!("mreg chunks 1\n{a} 01\n"),
            format!("mreg chunks 1\n{a} -1\n"),
            format!("mreg chunks 1\n{a}  1\n"),
            format!("mreg chunks 1\n{a} 16777217\n"),
            format!("mreg chunks 1\n{} 1\n", a.to_uppercase()),
        ] {
            assert!(ChunkList::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
