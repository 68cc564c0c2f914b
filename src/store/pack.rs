//! Packs: many small objects in one file, found through the pack's index.
//!
//! A registry of format 3 stores each new object of at most [`PACKED_MAX`] content
//! bytes (small files, trees, link targets) in a pack rather than in a file of its own:
//! a push of 5,000 small files writes a few packs, not 5,000 files. A pack is two
//! files under `packs/`, both immutable:
//!
//! - `NAME.pack`: the line `mreg pack 1`, then each object as it would be stored alone
//!   (its exact bytes, or one zstd frame), one after another;
//! - `NAME.idx`: the line `mreg pack-index 1`, the line `pack LEN` giving the pack's
//!   length, then one line per object, sorted by id: `ID ENCODING OFFSET STORED SIZE`
//!   (`raw` or `zst`, where its stored bytes start, how many there are, and the
//!   content's length).
//!
//! `NAME` is the BLAKE3 hash of the index's bytes, so an index is checked against its
//! name before a line of it is believed, and two writers never pick one name. The
//! index is published after its pack is durable: a pack without an index holds
//! nothing (a writer killed in between), and `gc` removes it. Every object read from
//! a pack is checked against its id, as any object is.
//!
//! An index is untrusted input: it is read whole only up to [`INDEX_LIMIT`], each line
//! is parsed strictly, and its entries must lie inside the pack without overlapping.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use tempfile::TempPath;

use super::object::Encoding;
use super::{atomic, files, keys};
use crate::id::ObjectId;

/// Objects of at most this many content bytes go in packs.
pub const PACKED_MAX: u64 = 1 << 20;

/// The most bytes a packed object may occupy in its pack: a zstd frame of content that
/// does not shrink is a little longer than the content.
pub const STORED_MAX: u64 = PACKED_MAX + PACKED_MAX / 64 + (64 << 10);

/// A pack is closed once it holds this many bytes, and a new one begun.
pub const PACK_TARGET: u64 = 32 << 20;

/// The longest index read: far above the index of a full pack.
pub const INDEX_LIMIT: u64 = files::RECORD_LIMIT;

/// The longest pack an index may describe: a full pack and one more object.
pub const PACK_LEN_MAX: u64 = PACK_TARGET + STORED_MAX + 4096;

/// The most packed objects a process reads the entries of, across every index of a
/// registry or a remote (about 60 MB in a reader, a few hundred in `fsck`): indexes
/// past it are left out, their objects counting as missing, so that a registry (or a
/// hostile remote) with thousands of indexes cannot exhaust a reader. A registry
/// holding more packed objects than this is past what mreg supports.
pub const PACKED_OBJECTS_MAX: usize = 1_000_000;

/// An entry as held in memory, compact: a pack is at most [`PACK_LEN_MAX`] bytes, so
/// every number fits 32 bits.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    /// The pack, by its place in the list of packs read.
    pub pack: u32,
    offset: u32,
    stored: u32,
    size: u32,
    zstd: bool,
}

impl Slot {
    /// Returns the slot of an entry of the pack at `pack` in the list (an index parsed
    /// by [`PackIndex::parse`], so every number fits).
    pub fn of(pack: u32, e: &Entry) -> Slot {
        Slot {
            pack,
            offset: e.offset as u32,
            stored: e.stored as u32,
            size: e.size as u32,
            zstd: e.encoding == Encoding::Zstd,
        }
    }

    /// Returns the entry of object `id` this slot holds.
    pub fn entry(&self, id: ObjectId) -> Entry {
        Entry {
            id,
            encoding: if self.zstd {
                Encoding::Zstd
            } else {
                Encoding::Raw
            },
            offset: u64::from(self.offset),
            stored: u64::from(self.stored),
            size: u64::from(self.size),
        }
    }
}

/// The first bytes of every pack.
pub const MAGIC: &[u8] = b"mreg pack 1\n";

/// The first line of every index.
const INDEX_HEADER: &str = "mreg pack-index 1";

/// One object in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The object.
    pub id: ObjectId,
    /// How it is stored: raw or zstd.
    pub encoding: Encoding,
    /// Where its stored bytes start in the pack.
    pub offset: u64,
    /// How many stored bytes it has.
    pub stored: u64,
    /// Its content length.
    pub size: u64,
}

/// A pack's index: the pack's length and its objects, sorted by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackIndex {
    /// The pack file's length.
    pub pack_len: u64,
    /// Its objects, sorted by id, each once.
    pub entries: Vec<Entry>,
}

impl PackIndex {
    /// Returns the index as it is stored.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(40 + self.entries.len() * 100);
        out.push_str(INDEX_HEADER);
        out.push('\n');
        let _ = writeln!(out, "pack {}", self.pack_len);
        for e in &self.entries {
            let _ = writeln!(
                out,
                "{} {} {} {} {}",
                e.id.to_hex(),
                encoding_name(e.encoding),
                e.offset,
                e.stored,
                e.size
            );
        }
        out
    }

    /// Returns the name of the pack this index describes: the hash of its text.
    pub fn name(&self) -> String {
        name_of(self.to_text().as_bytes())
    }

    /// Parses an index, refusing anything mreg would not write: another spelling,
    /// entries out of order or repeated, outside the pack, overlapping, or larger than
    /// a packed object may be.
    pub fn parse(bytes: &[u8]) -> Result<PackIndex> {
        if bytes.len() as u64 > INDEX_LIMIT {
            bail!("it is larger than {INDEX_LIMIT} bytes");
        }
        let text = std::str::from_utf8(bytes).context("it is not UTF-8 text")?;
        let Some(body) = text.strip_suffix('\n') else {
            bail!("it does not end with a newline");
        };
        let mut lines = body.split('\n');
        if lines.next() != Some(INDEX_HEADER) {
            bail!("its first line is not `{INDEX_HEADER}`");
        }
        let pack_len = lines
            .next()
            .and_then(|l| l.strip_prefix("pack "))
            .and_then(number)
            .context("its second line is not `pack LENGTH`")?;
        let mut entries: Vec<Entry> = Vec::new();
        for (n, line) in lines.enumerate() {
            let entry =
                parse_entry(line).with_context(|| format!("its entry {} is malformed", n + 1))?;
            if entries.last().is_some_and(|last| last.id >= entry.id) {
                bail!("its entry {} is out of order or repeated", n + 1);
            }
            entries.push(entry);
        }
        let mut spans: Vec<(u64, u64)> = entries.iter().map(|e| (e.offset, e.stored)).collect();
        spans.sort_unstable();
        let mut end = MAGIC.len() as u64;
        for (offset, stored) in spans {
            if offset < end {
                bail!("two of its entries overlap, or one covers the pack's header");
            }
            end = offset.saturating_add(stored);
        }
        if end > pack_len {
            bail!("an entry reaches past the pack's {pack_len} bytes");
        }
        if pack_len > PACK_LEN_MAX {
            bail!(
                "it describes a pack of {pack_len} bytes, more than a pack holds ({PACK_LEN_MAX})"
            );
        }
        Ok(PackIndex { pack_len, entries })
    }

    /// Returns the entry of `id`, if the pack holds it.
    pub fn find(&self, id: ObjectId) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.id.cmp(&id))
            .ok()
            .map(|i| &self.entries[i])
    }
}

/// Returns the name of the pack whose index has these bytes.
pub fn name_of(index: &[u8]) -> String {
    blake3::hash(index).to_hex().to_string()
}

fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Raw => "raw",
        Encoding::Zstd => "zst",
        Encoding::Chunked => unreachable!("a chunk list is never packed"),
    }
}

/// Parses a decimal number written as mreg writes it: digits, no leading zero.
fn number(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

fn parse_entry(line: &str) -> Result<Entry> {
    let mut fields = line.split(' ');
    let (Some(hex), Some(encoding), Some(offset), Some(stored), Some(size), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        bail!("it does not have 5 fields");
    };
    let id: ObjectId = hex
        .parse()
        .context("its id is not 64 lowercase hex digits")?;
    let encoding = match encoding {
        "raw" => Encoding::Raw,
        "zst" => Encoding::Zstd,
        other => bail!("{other:?} is not an encoding (raw, zst)"),
    };
    let (Some(offset), Some(stored), Some(size)) = (number(offset), number(stored), number(size))
    else {
        bail!("its offset, length or size is not a number");
    };
    if size > PACKED_MAX || stored > STORED_MAX {
        bail!("it is larger than a packed object may be ({PACKED_MAX} bytes)");
    }
    if encoding == Encoding::Raw && stored != size {
        bail!("it is stored raw in {stored} bytes but declares {size}");
    }
    Ok(Entry {
        id,
        encoding,
        offset,
        stored,
        size,
    })
}

/// Returns the key of a pack's file.
pub fn pack_key(name: &str) -> String {
    format!("{}{name}.pack", keys::PACKS)
}

/// Returns the key of a pack's index.
pub fn index_key(name: &str) -> String {
    format!("{}{name}.idx", keys::PACKS)
}

/// Returns the name of a pack from its index's file name, when it is one mreg writes:
/// `NAME.idx` with 64 lowercase hex digits.
pub fn name_of_index(file_name: &str) -> Option<&str> {
    let name = file_name.strip_suffix(".idx")?;
    is_name(name).then_some(name)
}

/// Returns the name of a pack from its file name (`NAME.pack`).
pub fn name_of_pack(file_name: &str) -> Option<&str> {
    let name = file_name.strip_suffix(".pack")?;
    is_name(name).then_some(name)
}

fn is_name(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Reads the index of the pack `name` in the registry at `root`, checked against its
/// name and parsed; `None` when it is absent.
pub fn read_index(root: &Path, name: &str) -> Result<Option<PackIndex>> {
    let key = index_key(name);
    let Some(bytes) = files::read_record(root, &key)? else {
        return Ok(None);
    };
    let path = root.join(&key);
    let actual = name_of(&bytes);
    if actual != name {
        bail!(
            "the pack index {} is damaged: its bytes hash to {}",
            path.display(),
            &actual[..16]
        );
    }
    PackIndex::parse(&bytes)
        .map(Some)
        .with_context(|| format!("reading the pack index {}", path.display()))
}

/// Returns the names of the packs whose indexes the registry at `root` holds, sorted.
pub fn names(root: &Path) -> Result<Vec<String>> {
    let dir = root.join(keys::PACKS);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if let Some(name) = entry.file_name().to_str().and_then(name_of_index) {
            out.push(name.to_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Returns the pack `name` of the registry at `root`, refusing one that is missing or
/// not as long as its index says.
pub fn open(root: &Path, name: &str, index: &PackIndex) -> Result<Arc<PackFile>> {
    let pack = PackFile {
        name: name.to_owned(),
        path: root.join(pack_key(name)),
        root: root.to_path_buf(),
        len: index.pack_len,
        objects: index.entries.len(),
    };
    pack.open()?;
    Ok(Arc::new(pack))
}

/// A pack whose index was read. It is opened for each read, never held open: a
/// registry may hold more packs than a process may open files.
#[derive(Debug)]
pub struct PackFile {
    /// Its name.
    pub name: String,
    /// Its path.
    pub path: PathBuf,
    /// The registry folder it is in.
    root: PathBuf,
    /// Its length, as its index says.
    len: u64,
    /// How many objects its index lists.
    pub objects: usize,
}

impl PackFile {
    /// Opens the pack like a record (no link followed, no FIFO waited on), refusing it
    /// when it is missing or not as long as its index says.
    fn open(&self) -> Result<File> {
        let file = files::open(&self.root, &pack_key(&self.name))?.with_context(|| {
            format!(
                "the pack {} is missing; its index names it",
                self.path.display()
            )
        })?;
        let len = file
            .metadata()
            .with_context(|| format!("reading {}", self.path.display()))?
            .len();
        if len != self.len {
            bail!(
                "the pack {} holds {len} bytes where its index says {}",
                self.path.display(),
                self.len
            );
        }
        Ok(file)
    }
}

/// Where a packed object is: its pack and its entry.
#[derive(Debug, Clone)]
pub struct Packed {
    /// The pack.
    pub pack: Arc<PackFile>,
    /// The object's entry.
    pub entry: Entry,
    /// The packs it was found among, to look again when its pack went meanwhile (a
    /// `gc` rewrote it): `None` for a pack read on its own (fsck, gc).
    pub among: Option<Arc<Packs>>,
}

impl Packed {
    /// Returns the object's stored bytes (at most [`STORED_MAX`]). When its pack went
    /// since it was found, the object is looked for again once, in the packs as they
    /// are now.
    pub fn read_stored(&self) -> Result<Vec<u8>> {
        match self.read_here() {
            Ok(bytes) => Ok(bytes),
            Err(err) => {
                let moved = self.among.as_ref().and_then(|packs| {
                    packs.reread(&self.pack.name);
                    packs
                        .find(self.entry.id)
                        .filter(|again| again.pack.name != self.pack.name)
                });
                match moved {
                    Some(again) => again.read_here(),
                    None => Err(err),
                }
            }
        }
    }

    fn read_here(&self) -> Result<Vec<u8>> {
        let file = self.pack.open()?;
        let mut bytes = vec![0u8; self.entry.stored as usize];
        file.read_exact_at(&mut bytes, self.entry.offset)
            .with_context(|| {
                format!(
                    "reading object {} from the pack {}",
                    self.entry.id.short(16),
                    self.pack.path.display()
                )
            })?;
        Ok(bytes)
    }

    /// Describes where the object is, for a message.
    pub fn describe(&self) -> String {
        format!("{} at byte {}", self.pack.path.display(), self.entry.offset)
    }
}

/// The packs of a registry, as far as this process has read their indexes: loaded at
/// the first lookup, and again when a lookup misses after the `packs/` folder changed
/// (another process published a pack, or `gc` repacked).
#[derive(Debug)]
pub struct Packs {
    root: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When `packs/` last changed as seen at the last load (`None`: absent then).
    stamp: Option<std::time::SystemTime>,
    /// Whether the indexes were ever read, or must be read again.
    fresh: bool,
    loaded: HashSet<String>,
    packs: Vec<Arc<PackFile>>,
    /// Each object: the pack (its place in `packs`) and its entry.
    objects: HashMap<ObjectId, Slot>,
}

impl Packs {
    /// Returns the packs of the registry at `root`, none read yet.
    pub fn new(root: &Path) -> Packs {
        Packs {
            root: root.to_path_buf(),
            state: Mutex::new(State::default()),
        }
    }

    /// Returns where `id` is packed, if it is.
    pub fn find(self: &Arc<Self>, id: ObjectId) -> Option<Packed> {
        let mut state = self.state.lock().expect("packs lock is never poisoned");
        if let Some(found) = state.get(id, self) {
            return Some(found);
        }
        let stamp = std::fs::metadata(self.root.join(keys::PACKS))
            .ok()
            .and_then(|m| m.modified().ok());
        // A folder's time moves in coarse steps: one that changed within the last
        // moments may change again without its time moving, so it is listed again.
        let settled = stamp.is_none_or(|t| {
            t.elapsed()
                .is_ok_and(|age| age > std::time::Duration::from_secs(2))
        });
        if state.fresh && state.stamp == stamp && settled {
            return None;
        }
        state.stamp = stamp;
        state.fresh = true;
        self.load(&mut state);
        state.get(id, self)
    }

    /// Forgets every index read when the pack `gone` is among them, so that the next
    /// lookup reads the indexes as they are now: the pack went (a `gc` rewrote it into
    /// another). Once is enough for every read that found it gone.
    pub fn reread(&self, gone: &str) {
        let mut state = self.state.lock().expect("packs lock is never poisoned");
        if state.loaded.contains(gone) {
            *state = State::default();
        }
    }

    /// Forgets when `packs/` last changed, so that the next lookup that misses lists it
    /// again: called once this process published packs.
    pub fn changed(&self) {
        self.state
            .lock()
            .expect("packs lock is never poisoned")
            .stamp = None;
    }

    /// Reads the indexes not read yet. One that is damaged, or whose pack is missing or
    /// of another length, is left out: its objects count as missing, and `mreg fsck`
    /// names it.
    fn load(&self, state: &mut State) {
        let Ok(names) = names(&self.root) else {
            return;
        };
        for name in names {
            if state.loaded.contains(&name) {
                continue;
            }
            let Ok(Some(index)) = read_index(&self.root, &name) else {
                continue;
            };
            let Ok(pack) = open(&self.root, &name, &index) else {
                continue;
            };
            if state.objects.len() + index.entries.len() > PACKED_OBJECTS_MAX {
                continue;
            }
            let at = state.packs.len() as u32;
            state.packs.push(pack);
            for entry in &index.entries {
                state.objects.entry(entry.id).or_insert(Slot::of(at, entry));
            }
            state.loaded.insert(name);
        }
    }
}

impl State {
    fn get(&self, id: ObjectId, among: &Arc<Packs>) -> Option<Packed> {
        self.objects.get(&id).map(|slot| Packed {
            pack: Arc::clone(&self.packs[slot.pack as usize]),
            entry: slot.entry(id),
            among: Some(Arc::clone(among)),
        })
    }
}

/// A pack being written: its temp file and the entries so far.
pub struct PackWriter {
    out: std::io::BufWriter<File>,
    path: TempPath,
    len: u64,
    entries: Vec<Entry>,
}

/// A pack written to temp files, waiting to be published: the pack, then its index.
pub struct Finished {
    /// Its name.
    pub name: String,
    /// The pack's temp file.
    pub pack: TempPath,
    /// The index's temp file.
    pub index: TempPath,
    /// Its objects.
    pub entries: usize,
}

impl PackWriter {
    /// Begins a pack in a temp file of `tmp_dir`.
    pub fn new(tmp_dir: &Path) -> Result<PackWriter> {
        let (file, path) = atomic::object_temp_file(tmp_dir)?.into_parts();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        out.write_all(MAGIC)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(PackWriter {
            out,
            path,
            len: MAGIC.len() as u64,
            entries: Vec::new(),
        })
    }

    /// Appends an object's stored bytes.
    pub fn add(&mut self, id: ObjectId, encoding: Encoding, size: u64, body: &[u8]) -> Result<()> {
        self.out
            .write_all(body)
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.entries.push(Entry {
            id,
            encoding,
            offset: self.len,
            stored: body.len() as u64,
            size,
        });
        self.len += body.len() as u64;
        Ok(())
    }

    /// Returns the pack's length so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Returns whether it holds no object yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the index beside the pack; returns both, named, not yet published.
    pub fn finish(mut self, tmp_dir: &Path) -> Result<Finished> {
        self.out
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.entries.sort_unstable_by_key(|e| e.id);
        self.entries.dedup_by_key(|e| e.id);
        let index = PackIndex {
            pack_len: self.len,
            entries: self.entries,
        };
        let text = index.to_text();
        let mut temp = atomic::object_temp_file(tmp_dir)?;
        temp.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", temp.path().display()))?;
        Ok(Finished {
            name: name_of(text.as_bytes()),
            pack: self.path,
            index: temp.into_temp_path(),
            entries: index.entries.len(),
        })
    }
}

/// Publishes packs written to temp files: flushes the filesystem, gives each pack its
/// name, then each index its name, and flushes again. An index whose name outlived a
/// crash that lost its pack's name is no harm: an index counts only with its pack
/// present at its length. `root` is the registry folder.
pub fn publish(root: &Path, done: Vec<Finished>) -> Result<()> {
    if done.is_empty() {
        return Ok(());
    }
    files::make_dir(root, keys::PACKS)?;
    atomic::sync_filesystem(root)?;
    let mut indexes = Vec::with_capacity(done.len());
    for finished in done {
        let target = root.join(pack_key(&finished.name));
        finished
            .pack
            .persist(&target)
            .map_err(|e| e.error)
            .with_context(|| format!("publishing {}", target.display()))?;
        indexes.push((finished.index, root.join(index_key(&finished.name))));
    }
    for (temp, target) in indexes {
        temp.persist(&target)
            .map_err(|e| e.error)
            .with_context(|| format!("publishing {}", target.display()))?;
    }
    atomic::sync_filesystem(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seed: &[u8], offset: u64, stored: u64) -> Entry {
        Entry {
            id: ObjectId::of(seed),
            encoding: Encoding::Raw,
            offset,
            stored,
            size: stored,
        }
    }

    fn index(mut entries: Vec<Entry>, pack_len: u64) -> PackIndex {
        entries.sort_by_key(|e| e.id);
        PackIndex { pack_len, entries }
    }

    #[test]
    fn an_index_reads_back_as_written() {
        let idx = index(vec![entry(b"a", 12, 5), entry(b"b", 17, 3)], 20);
        let text = idx.to_text();
        assert!(text.starts_with("mreg pack-index 1\npack 20\n"));
        assert_eq!(PackIndex::parse(text.as_bytes()).unwrap(), idx);
        assert_eq!(idx.find(ObjectId::of(b"b")).unwrap().offset, 17);
        assert!(idx.find(ObjectId::of(b"c")).is_none());
    }

    #[test]
    fn indexes_mreg_would_not_write_are_refused() {
        let good = index(vec![entry(b"a", 12, 5), entry(b"b", 17, 3)], 20).to_text();
        let overlapping = index(vec![entry(b"a", 12, 5), entry(b"b", 16, 3)], 20).to_text();
        let past_end = index(vec![entry(b"a", 12, 5), entry(b"b", 17, 3)], 19).to_text();
        let on_header = index(vec![entry(b"a", 11, 5)], 20).to_text();
        let mut lines: Vec<&str> = good.lines().collect();
        lines.swap(2, 3);
        let unsorted = lines.join("\n") + "\n";
        let huge = format!(
            "mreg pack-index 1\npack {}\n{} raw 12 {} {}\n",
            PACKED_MAX * 3,
            ObjectId::of(b"a").to_hex(),
            PACKED_MAX + 1,
            PACKED_MAX + 1
        );
        let raw_mismatch = format!(
            "mreg pack-index 1\npack 40\n{} raw 12 5 6\n",
            ObjectId::of(b"a").to_hex()
        );
        let leading_zero = good.replace(" 12 ", " 012 ");
        for (what, text) in [
            ("overlapping", overlapping),
            ("past the end", past_end),
            ("on the header", on_header),
            ("unsorted", unsorted),
            ("too large", huge),
            ("raw of another size", raw_mismatch),
            ("leading zero", leading_zero),
            ("no newline", good.trim_end().to_owned()),
            ("other header", good.replace("pack-index 1", "pack-index 2")),
        ] {
            assert!(
                PackIndex::parse(text.as_bytes()).is_err(),
                "{what} was accepted"
            );
        }
    }

    #[test]
    fn a_written_pack_is_found_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("packs")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        let mut writer = PackWriter::new(&root.join("tmp")).unwrap();
        for body in [&b"first"[..], b"second", b"third"] {
            writer
                .add(ObjectId::of(body), Encoding::Raw, body.len() as u64, body)
                .unwrap();
        }
        let done = writer.finish(&root.join("tmp")).unwrap();
        done.pack.persist(root.join(pack_key(&done.name))).unwrap();
        let packs = Arc::new(Packs::new(root));
        assert!(
            packs.find(ObjectId::of(b"second")).is_none(),
            "no index yet"
        );
        done.index
            .persist(root.join(index_key(&done.name)))
            .unwrap();
        let found = packs
            .find(ObjectId::of(b"second"))
            .expect("found once indexed");
        assert_eq!(found.read_stored().unwrap(), b"second");
        assert_eq!(
            read_index(root, &done.name).unwrap().unwrap().entries.len(),
            3
        );
    }

    #[test]
    fn a_read_whose_pack_was_rewritten_finds_the_object_in_the_new_pack() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("packs")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        let write = |bodies: &[&[u8]]| {
            let mut writer = PackWriter::new(&root.join("tmp")).unwrap();
            for body in bodies {
                writer
                    .add(ObjectId::of(body), Encoding::Raw, body.len() as u64, body)
                    .unwrap();
            }
            let done = writer.finish(&root.join("tmp")).unwrap();
            let name = done.name.clone();
            publish(root, vec![done]).unwrap();
            name
        };
        let old = write(&[b"kept", b"garbage"]);
        let packs = Arc::new(Packs::new(root));
        let found = packs.find(ObjectId::of(b"kept")).unwrap();
        // A gc rewrites the pack: the new one first, then the old one goes.
        let new = write(&[b"kept"]);
        assert_ne!(old, new);
        std::fs::remove_file(root.join(index_key(&old))).unwrap();
        std::fs::remove_file(root.join(pack_key(&old))).unwrap();
        assert_eq!(found.read_stored().unwrap(), b"kept");
        assert!(packs.find(ObjectId::of(b"garbage")).is_none());
    }
}
