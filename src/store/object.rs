//! Objects: immutable bytes addressed by the blake3 hash of their uncompressed content.
//!
//! An object lives at `objects/ab/cdef…` when stored raw and `objects/ab/cdef….zst`
//! when stored as one zstd frame, so the stored form says which without reading it.
//! Raw objects are the file's exact bytes and can be copied out without decoding.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::{chunks, pack};
use crate::id::ObjectId;

/// Bytes read per call when streaming a file.
pub const CHUNK: usize = 4 << 20;

/// Files at least this large are hashed with both cores at once.
const PARALLEL_HASH_MIN: u64 = 8 << 20;

/// Files at least this large are copied by the kernel while another thread hashes
/// them; smaller ones are read, hashed and written in one pass.
pub const KERNEL_COPY_MIN: u64 = 8 << 20;

/// Bytes compressed from each sampled place when deciding whether zstd pays.
const SAMPLE: usize = 64 << 10;

/// The zstd level: fast enough to keep pace with the disk.
pub const ZSTD_LEVEL: i32 = 1;

/// Returns how an object is stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The content's exact bytes.
    Raw,
    /// One zstd frame that decodes to the content.
    Zstd,
    /// A list of parts, each an object stored raw or as zstd, whose contents in order
    /// are the content ([`super::chunks`]).
    Chunked,
}

impl Encoding {
    /// Every stored form, in the order a reader looks for them.
    pub const ALL: [Encoding; 3] = [Encoding::Raw, Encoding::Zstd, Encoding::Chunked];

    /// The stored forms that hold the content itself: the forms of a part.
    pub const WHOLE: [Encoding; 2] = [Encoding::Raw, Encoding::Zstd];

    /// Returns the file name suffix of this encoding.
    pub fn suffix(self) -> &'static str {
        match self {
            Encoding::Raw => "",
            Encoding::Zstd => ".zst",
            Encoding::Chunked => ".chunks",
        }
    }

    /// Splits an object's file name into its hex digits and its encoding.
    pub fn of_name(name: &str) -> (&str, Encoding) {
        for encoding in [Encoding::Zstd, Encoding::Chunked] {
            if let Some(hex) = name.strip_suffix(encoding.suffix()) {
                return (hex, encoding);
            }
        }
        (name, Encoding::Raw)
    }
}

/// Where an object is stored, and how.
#[derive(Debug, Clone)]
pub enum Place {
    /// A file of its own under `objects/`, in the given encoding.
    File(std::path::PathBuf, Encoding),
    /// Inside a pack ([`pack`]), raw or as zstd.
    Packed(pack::Packed),
}

impl Place {
    /// Returns how the object is stored.
    pub fn encoding(&self) -> Encoding {
        match self {
            Place::File(_, encoding) => *encoding,
            Place::Packed(packed) => packed.entry.encoding,
        }
    }

    /// Returns the file that holds the object: its own, or its pack.
    pub fn path(&self) -> &Path {
        match self {
            Place::File(path, _) => path,
            Place::Packed(packed) => &packed.pack.path,
        }
    }

    /// Describes where the object is, for a message.
    pub fn describe(&self) -> String {
        match self {
            Place::File(path, _) => path.display().to_string(),
            Place::Packed(packed) => packed.describe(),
        }
    }

    /// Returns how many bytes the object occupies as stored.
    pub fn stored_len(&self) -> Result<u64> {
        match self {
            Place::File(path, _) => Ok(std::fs::metadata(path)
                .with_context(|| format!("reading object {}", path.display()))?
                .len()),
            Place::Packed(packed) => Ok(packed.entry.stored),
        }
    }

    /// Returns the object's file when it has one of its own.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Place::File(path, _) => Some(path),
            Place::Packed(_) => None,
        }
    }
}

/// Checks an object's stored bytes held in memory (a packed object, at most
/// [`pack::STORED_MAX`]) against its id; returns a description of a mismatch.
pub fn verify_stored(bytes: &[u8], encoding: Encoding, id: ObjectId) -> Result<(), String> {
    match hash_stored_bytes(bytes, encoding, pack::PACKED_MAX) {
        Ok((actual, _)) if actual == id => Ok(()),
        Ok((actual, _)) => Err(format!("its content hashes to {}", actual.short(16))),
        Err(err) => Err(format!("it cannot be decoded ({err})")),
    }
}

/// Returns the hash and length of the content of stored bytes held in memory, decoding
/// no more than one byte past `limit`.
pub fn hash_stored_bytes(
    bytes: &[u8],
    encoding: Encoding,
    limit: u64,
) -> io::Result<(ObjectId, u64)> {
    let take = limit.saturating_add(1);
    match encoding {
        Encoding::Zstd => zstd::stream::read::Decoder::new(bytes)
            .and_then(|d| hash_reader(&mut d.take(take), limit, None, &|_| {})),
        _ => hash_reader(&mut bytes.take(take), bytes.len() as u64, None, &|_| {}),
    }
}

/// Returns `bytes` as one zstd frame at [`ZSTD_LEVEL`], with this thread's compression
/// context: making a context costs more than compressing a small file, and a push of
/// thousands of small files compresses thousands of samples.
pub fn compress(bytes: &[u8]) -> io::Result<Vec<u8>> {
    thread_local! {
        static CONTEXT: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    CONTEXT.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Compressor::new(ZSTD_LEVEL)?);
        }
        slot.as_mut().expect("made above").compress(bytes)
    })
}

/// Writes `bytes` to `out` as one zstd frame at [`ZSTD_LEVEL`], streamed through the
/// encoder's own output buffer (about 128 KiB); returns the frame's length.
pub fn compress_to(bytes: &[u8], out: &File) -> io::Result<u64> {
    let mut written = 0u64;
    let counted = Counted {
        inner: out,
        written: &mut written,
    };
    let mut encoder = zstd::stream::write::Encoder::new(counted, ZSTD_LEVEL)?;
    encoder.include_contentsize(true)?;
    encoder.set_pledged_src_size(Some(bytes.len() as u64))?;
    encoder.write_all(bytes)?;
    encoder.finish()?;
    Ok(written)
}

/// A writer that counts the bytes it passes on.
struct Counted<'a, W> {
    inner: W,
    written: &'a mut u64,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        *self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Returns whether compressing `file` with zstd pays, from samples at its start,
/// middle and end: it pays when they shrink by at least a tenth.
pub fn zstd_pays(file: &File, len: u64) -> io::Result<bool> {
    if len < 64 {
        return Ok(false);
    }
    let mut offsets = vec![0];
    if len > 3 * SAMPLE as u64 {
        offsets.push(len / 2);
        offsets.push(len - SAMPLE as u64);
    }
    let mut raw = 0usize;
    let mut packed = 0usize;
    let mut buf = vec![0u8; SAMPLE];
    for offset in offsets {
        let n = read_full_at(file, &mut buf, offset)?;
        raw += n;
        packed += compress(&buf[..n])?.len();
    }
    Ok(packed * 10 <= raw * 9)
}

/// Returns whether compressing `bytes` (content held in memory) with zstd pays, from
/// the same samples [`zstd_pays`] takes of a file.
pub fn zstd_pays_bytes(bytes: &[u8]) -> bool {
    if bytes.len() < 64 {
        return false;
    }
    let mut samples = vec![&bytes[..bytes.len().min(SAMPLE)]];
    if bytes.len() > 3 * SAMPLE {
        let mid = bytes.len() / 2;
        samples.push(&bytes[mid..mid + SAMPLE]);
        samples.push(&bytes[bytes.len() - SAMPLE..]);
    }
    let (mut raw, mut packed) = (0usize, 0usize);
    for sample in samples {
        raw += sample.len();
        packed += compress(sample).map_or(sample.len(), |c| c.len());
    }
    packed * 10 <= raw * 9
}

/// Returns the id of content held in memory, hashed on all cores when it is large.
pub fn hash_bytes(bytes: &[u8]) -> ObjectId {
    let mut hasher = blake3::Hasher::new();
    if bytes.len() as u64 >= PARALLEL_HASH_MIN {
        hasher.update_rayon(bytes);
    } else {
        hasher.update(bytes);
    }
    ObjectId::from_hasher(&hasher)
}

fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Returns a hasher fed with everything `reader` yields, calling `progress` with each
/// chunk's length; large inputs are hashed on all cores.
pub fn hash_reader(
    reader: &mut dyn Read,
    size_hint: u64,
    mut sink: Option<&mut dyn Write>,
    progress: &dyn Fn(u64),
) -> io::Result<(ObjectId, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![
        0u8;
        CHUNK
            .min(usize::try_from(size_hint).unwrap_or(CHUNK))
            .max(8192)
    ];
    let mut total = 0u64;
    loop {
        let n = read_fill(reader, &mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if size_hint >= PARALLEL_HASH_MIN {
            hasher.update_rayon(chunk);
        } else {
            hasher.update(chunk);
        }
        if let Some(sink) = sink.as_deref_mut() {
            sink.write_all(chunk)?;
        }
        total += n as u64;
        progress(n as u64);
    }
    Ok((ObjectId::from_hasher(&hasher), total))
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_fill(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Returns the id of a file's content, streaming it.
pub fn hash_file(path: &Path, progress: &dyn Fn(u64)) -> Result<(ObjectId, u64)> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = file.metadata().map_or(0, |m| m.len());
    hash_reader(&mut file, len, None, progress)
        .with_context(|| format!("reading {}", path.display()))
}

/// Streams a stored object's content into `out`, verifying its hash at the end.
///
/// With the `size` a tree declares, no more than one byte past it is ever read or
/// decoded (a raw object of another length is refused before a byte is read), and
/// any other length is an error. Returns the number of content bytes written. On an
/// error `out` has received bytes that must not be trusted.
pub fn copy_verified(
    place: &Place,
    id: ObjectId,
    size: Option<u64>,
    out: &mut dyn Write,
    progress: &dyn Fn(u64),
) -> Result<u64> {
    if let (Encoding::Raw, Some(size)) = (place.encoding(), size) {
        check_size(id, place.stored_len()?, size)?;
    }
    let (actual, n) = hash_stored(place, size, out, progress)?;
    if let Some(size) = size {
        check_size(id, n, size)?;
    }
    if actual != id {
        bail!(corrupt_message(id, actual, &place.describe()));
    }
    Ok(n)
}

/// Opens the object stored at `stored` and returns it with its stored length.
pub fn open_stored(stored: &Path) -> Result<(File, u64)> {
    let file =
        File::open(stored).with_context(|| format!("opening object {}", stored.display()))?;
    let len = file
        .metadata()
        .with_context(|| format!("reading object {}", stored.display()))?
        .len();
    Ok((file, len))
}

/// Returns the hash and length of a stored object's content, streamed into `out`.
///
/// With a `limit`, reading or decoding stops one byte past it, so the length returned
/// is at most `limit + 1`: a compressed object cannot inflate further than that.
pub fn hash_stored(
    place: &Place,
    limit: Option<u64>,
    out: &mut dyn Write,
    progress: &dyn Fn(u64),
) -> Result<(ObjectId, u64)> {
    let (stored, encoding) = match place {
        Place::File(path, encoding) => (path.as_path(), *encoding),
        Place::Packed(packed) => {
            let bytes = packed.read_stored()?;
            let hint = limit.unwrap_or(packed.entry.size);
            let take = limit.map_or(u64::MAX, |s| s.saturating_add(1));
            return match packed.entry.encoding {
                Encoding::Zstd => {
                    zstd::stream::read::Decoder::new(bytes.as_slice()).and_then(|decoder| {
                        hash_reader(&mut decoder.take(take), hint, Some(out), progress)
                    })
                }
                _ => hash_reader(&mut bytes.as_slice().take(take), hint, Some(out), progress),
            }
            .with_context(|| {
                format!(
                    "reading object {} from {}",
                    packed.entry.id.short(16),
                    packed.describe()
                )
            });
        }
    };
    let (file, stored_len) = open_stored(stored)?;
    let hint = limit.unwrap_or(stored_len);
    let take = limit.map_or(u64::MAX, |s| s.saturating_add(1));
    match encoding {
        Encoding::Raw => hash_reader(&mut (&file).take(take), hint, Some(out), progress),
        Encoding::Zstd => zstd::stream::read::Decoder::new(file)
            .and_then(|decoder| hash_reader(&mut decoder.take(take), hint, Some(out), progress)),
        Encoding::Chunked => {
            let mut parts = parts_of(stored)?;
            hash_reader(&mut (&mut parts).take(take), hint, Some(out), progress)
        }
    }
    .with_context(|| format!("reading object {}", stored.display()))
}

/// Returns a reader of the parts the chunk list stored at `stored` names, found beside
/// it: a list lives at `objects/ab/NAME.chunks` of its registry, as its parts do.
pub fn parts_of(stored: &Path) -> Result<chunks::PartsReader> {
    let list = list_of(stored)?;
    Ok(chunks::PartsReader::new(chunks::registry_of(stored)?, list))
}

/// Returns the chunk list stored at `stored`, refusing one mreg never writes: a list
/// standing for a file it stores whole.
pub fn list_of(stored: &Path) -> Result<chunks::ChunkList> {
    let list = chunks::ChunkList::read(stored)
        .with_context(|| format!("reading the chunk list {}", stored.display()))?;
    // Only a file larger than any part is stored in parts; a list of a smaller one is
    // refused wherever it is read, as a fetch refuses it.
    if list.total() <= chunks::CHUNKED_MIN {
        anyhow::bail!(
            "the chunk list {} stands for {} bytes, a file mreg stores whole (files over {} bytes go in parts)",
            stored.display(),
            list.total(),
            chunks::CHUNKED_MIN
        );
    }
    Ok(list)
}

/// Fails when an object's content length differs from the size its tree declares;
/// `actual` one past `declared` means reading stopped there.
pub fn check_size(id: ObjectId, actual: u64, declared: u64) -> Result<()> {
    if actual > declared {
        bail!(
            "object {} holds more than the {declared} bytes its tree declares",
            id.short(16)
        );
    }
    if actual < declared {
        bail!(
            "object {} holds {actual} bytes where its tree declares {declared}",
            id.short(16)
        );
    }
    Ok(())
}

/// Returns the sentence that reports a corrupt object, stored where `place` says.
pub fn corrupt_message(id: ObjectId, actual: ObjectId, place: &str) -> String {
    format!(
        "object {} is corrupt: its content hashes to {} ({place})",
        id.short(16),
        actual.short(16),
    )
}

/// Copies all of the file at `stored` into the empty file `out`: a reflink where the filesystem
/// shares extents, else a copy inside the kernel.
pub fn clone_or_copy(stored: &Path, out: &File) -> std::io::Result<()> {
    let src = File::open(stored)?;
    #[cfg(target_os = "linux")]
    if rustix::fs::ioctl_ficlone(out, &src).is_ok() {
        return Ok(());
    }
    let mut reader = &src;
    let mut writer = out;
    std::io::copy(&mut reader, &mut writer)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_hash_of_known_bytes() {
        // blake3 of the empty input and of "mreg", pinned: a change here breaks every registry.
        assert_eq!(
            ObjectId::of(b"").to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        let id = ObjectId::of(b"mreg");
        assert_eq!(id.to_hex().parse::<ObjectId>().unwrap(), id);
    }

    #[test]
    fn parallel_and_serial_hashing_agree() {
        let data: Vec<u8> = (0..(20u32 << 20))
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let (id, n) = hash_reader(&mut data.as_slice(), data.len() as u64, None, &|_| {}).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(id, ObjectId::of(&data));
    }

    #[test]
    fn rejects_malformed_hex() {
        assert!("abc".parse::<ObjectId>().is_err());
        assert!("Z".repeat(64).parse::<ObjectId>().is_err());
        assert!("A".repeat(64).parse::<ObjectId>().is_err());
    }

    #[test]
    fn zstd_pays_on_text_not_on_noise() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("text");
        std::fs::write(&text, "the same words again ".repeat(20_000)).unwrap();
        let noise = dir.path().join("noise");
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let bytes: Vec<u8> = (0..400_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(&noise, bytes).unwrap();
        let f = File::open(&text).unwrap();
        assert!(zstd_pays(&f, f.metadata().unwrap().len()).unwrap());
        let f = File::open(&noise).unwrap();
        assert!(!zstd_pays(&f, f.metadata().unwrap().len()).unwrap());
    }
}
