//! Reading objects back: always verified against their hash.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::chunks;
use super::object::{self, Encoding, Place, check_size};
use super::registry::Registry;
use super::tree::{Kind, Tree};
use super::walk::{self, Graph};
use crate::error::Failure;
use crate::id::{ObjectId, TreeId};

/// Trees and link targets larger than this are refused: they are not trees.
pub const SMALL_OBJECT_LIMIT: u64 = 256 << 20;

/// Returns the failure for an object the registry does not hold.
pub fn missing(id: ObjectId) -> anyhow::Error {
    Failure::error(format!(
        "object {} is missing from the registry",
        id.short(16)
    ))
    .hint("run `mreg fsck` to see what else is missing")
    .into()
}

/// Returns the verified content of a small object (a tree or a link target).
pub fn read_small(reg: &Registry, id: ObjectId) -> Result<Vec<u8>> {
    read_up_to(reg, id, SMALL_OBJECT_LIMIT, "a tree or link")
}

/// Returns the verified content of an object that may hold no more than `limit` bytes
/// (stored, and decoded), which [`SMALL_OBJECT_LIMIT`] caps; `what` names what it is
/// read as, in the refusal.
pub fn read_up_to(reg: &Registry, id: ObjectId, limit: u64, what: &str) -> Result<Vec<u8>> {
    let limit = limit.min(SMALL_OBJECT_LIMIT);
    let place = reg.object(id)?;
    let len = place.stored_len()?;
    if len > limit {
        bail!(
            "object {} is {len} bytes, too large for {what} (at most {limit})",
            id.short(16)
        );
    }
    let mut out = Vec::with_capacity(len as usize);
    let mut limited = LimitedWriter {
        inner: &mut out,
        left: limit,
    };
    object::copy_verified(&place, id, None, &mut limited, &|_| {})
        .with_context(|| format!("reading object {} as {what}", id.short(16)))?;
    Ok(out)
}

/// Returns the verified target of a link whose tree entry declares `size` bytes.
///
/// A target longer than [`walk::LIMITS`] allows, of another length than declared, or
/// not UTF-8 is refused; no more than the limit is ever read.
pub fn link_target(reg: &Registry, id: ObjectId, size: u64) -> Result<String> {
    let limit = walk::LIMITS.link_target;
    if size > limit {
        bail!("its tree declares a target of {size} bytes, more than {limit}");
    }
    let place = reg.object(id)?;
    let mut out = Vec::new();
    let mut limited = LimitedWriter {
        inner: &mut out,
        left: size,
    };
    object::copy_verified(&place, id, Some(size), &mut limited, &|_| {})?;
    String::from_utf8(out).map_err(|_| anyhow::anyhow!("its target is not UTF-8"))
}

/// Returns a parsed, verified tree.
pub fn read_tree(reg: &Registry, id: TreeId) -> Result<Tree> {
    let bytes =
        read_small(reg, id.0).with_context(|| format!("reading tree {}", id.0.short(16)))?;
    Tree::parse(&bytes).with_context(|| format!("parsing tree {}", id.0.short(16)))
}

/// Returns the graph below a tree, read and checked against [`walk::LIMITS`].
pub fn graph(reg: &Registry, id: TreeId) -> Result<Graph> {
    walk::load(id, &walk::LIMITS, &mut |t| read_tree(reg, t))
}

/// Returns the paths below a tree whose objects the registry lacks, checked by
/// existence (fsck re-hashes), the first path to each object once; a tree that cannot
/// be read is listed as `path/` (`.` for the root).
///
/// Each distinct tree is read once, without recursion, and none deeper than the walk
/// limits allow (reading the graph refuses those), so a hostile graph costs no more
/// than the trees it holds.
pub fn missing_below(reg: &Registry, id: TreeId) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::from([id.0]);
    let mut stack: Vec<(ObjectId, String, usize)> = vec![(id.0, String::new(), 0)];
    while let Some((tree, prefix, depth)) = stack.pop() {
        if depth > walk::LIMITS.depth {
            continue;
        }
        let parsed = match read_small(reg, tree).and_then(|b| Tree::parse(&b)) {
            Ok(parsed) => parsed,
            _ if prefix.is_empty() => {
                out.push(".".to_owned());
                continue;
            }
            _ => {
                out.push(format!("{prefix}/"));
                continue;
            }
        };
        for entry in parsed.entries {
            if !seen.insert(entry.id) {
                continue;
            }
            let path = if prefix.is_empty() {
                entry.name.clone()
            } else {
                format!("{prefix}/{}", entry.name)
            };
            if entry.kind == Kind::Dir {
                stack.push((entry.id, path, depth + 1));
            } else if !reg.holds_object(entry.id).unwrap_or(false) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

struct LimitedWriter<'a> {
    inner: &'a mut Vec<u8>,
    left: u64,
}

impl Write for LimitedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(std::io::Error::other(
                "object decodes to more bytes than it may hold",
            ));
        }
        self.left -= buf.len() as u64;
        self.inner.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Opens the raw object `id` stored at `stored`, refusing it before a byte is read when
/// its length is not the `size` its tree declares.
fn open_sized(stored: &Path, id: ObjectId, size: u64) -> Result<File> {
    let (file, stored_len) = object::open_stored(stored)?;
    check_size(id, stored_len, size)?;
    Ok(file)
}

/// Writes the content of the object stored at `stored` to a new file at `dest` with
/// the given mode, verified.
///
/// Small raw objects are read, hashed and written in one pass. Large raw objects are
/// cloned (reflink) or copied in the kernel (`copy_file_range`) while this thread
/// hashes the object; compressed ones, and those stored in parts, are decoded and
/// hashed in one pass. `dest` must
/// not exist. On a mismatch the error names the corrupt object.
pub fn copy_to_file(
    place: &Place,
    id: ObjectId,
    size: u64,
    dest: &Path,
    mode: u32,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    let out = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dest)
        .with_context(|| format!("creating {}", dest.display()))?;
    let stored = match place {
        Place::File(path, _) => path.as_path(),
        Place::Packed(_) => return copy_packed(place, id, size, (&out, dest), progress),
    };
    match place.encoding() {
        Encoding::Chunked => {
            // Every part into its place at once, then the file written hashed whole
            // against its name: what is checked is what the folder holds.
            let list = object::list_of(stored)?;
            check_size(id, list.total(), size)?;
            out.set_len(size)
                .with_context(|| format!("writing {}", dest.display()))?;
            let root = chunks::registry_of(stored)?;
            chunks::write_parts(root, &list, &out, progress)
                .with_context(|| format!("writing {} from its parts", dest.display()))?;
            let (actual, n) = object::hash_reader(&mut (&out).take(size + 1), size, None, &|_| {})
                .with_context(|| format!("reading {}", dest.display()))?;
            check_size(id, n, size)?;
            if actual != id {
                // Name the part that is damaged, if one is; else the list is wrong.
                if let Some((part, why)) = chunks::first_bad_part(root, &list) {
                    return Err(Failure::error(format!(
                        "part {} of object {} is corrupt: {why}",
                        part.short(16),
                        id.short(16)
                    ))
                    .hint("`mreg fsck` names its file; delete that file, then `mreg sync NAME --recheck`, or push the folder again")
                    .into());
                }
                bail!(
                    "object {} is corrupt: its chunk list {} names parts that hash to {}",
                    id.short(16),
                    stored.display(),
                    actual.short(16)
                );
            }
        }
        Encoding::Raw if size < object::KERNEL_COPY_MIN => {
            // One open: its length checked before a byte is read, then read whole.
            let mut src = open_sized(stored, id, size)?;
            let mut bytes = Vec::with_capacity(size as usize);
            (&mut src)
                .take(size + 1)
                .read_to_end(&mut bytes)
                .with_context(|| format!("reading object {}", stored.display()))?;
            let actual = ObjectId::of(&bytes);
            if actual != id {
                bail!(object::corrupt_message(
                    id,
                    actual,
                    &stored.display().to_string()
                ));
            }
            check_size(id, bytes.len() as u64, size)?;
            (&out)
                .write_all(&bytes)
                .with_context(|| format!("writing {}", dest.display()))?;
            progress(size);
        }
        Encoding::Raw => {
            // The kernel copies on a thread of its own while this thread hashes.
            let src = open_sized(stored, id, size)?;
            let (copied, hashed) = std::thread::scope(|scope| {
                let copier = scope.spawn(|| object::clone_or_copy(stored, &out));
                let hashed = object::hash_reader(&mut &src, size, None, progress);
                (
                    copier.join().expect("the copy thread does not panic"),
                    hashed,
                )
            });
            copied.with_context(|| {
                format!("copying object {} to {}", stored.display(), dest.display())
            })?;
            let (actual, n) =
                hashed.with_context(|| format!("reading object {}", stored.display()))?;
            if actual != id {
                bail!(object::corrupt_message(
                    id,
                    actual,
                    &stored.display().to_string()
                ));
            }
            check_size(id, n, size)?;
        }
        Encoding::Zstd => {
            let mut writer = BufWriter::with_capacity(1 << 20, &out);
            object::copy_verified(place, id, Some(size), &mut writer, progress)?;
            writer
                .flush()
                .with_context(|| format!("writing {}", dest.display()))?;
        }
    }
    Ok(())
}

/// Writes a packed object to `out` (the new file at `dest`): read whole, since a
/// packed object is small, and checked before a byte is written.
fn copy_packed(
    place: &Place,
    id: ObjectId,
    size: u64,
    (out, dest): (&File, &Path),
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 20));
    object::copy_verified(place, id, Some(size), &mut bytes, &|_| {})?;
    let mut out = out;
    out.write_all(&bytes)
        .with_context(|| format!("writing {}", dest.display()))?;
    progress(size);
    Ok(())
}

/// Returns a readable file holding an object's verified content: the object itself
/// when it is stored raw, else a decoded (or assembled) copy in a temp file that has no name (so it
/// disappears with the process, however it ends).
pub fn verified_file(
    reg: &Registry,
    id: ObjectId,
    size: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerifiedFile> {
    let place = reg.object(id)?;
    if let Place::File(stored, Encoding::Raw) = &place {
        let file = open_sized(stored, id, size)?;
        let (actual, n) = object::hash_reader(&mut &file, size, None, progress)
            .with_context(|| format!("reading object {}", stored.display()))?;
        if actual != id {
            bail!(object::corrupt_message(
                id,
                actual,
                &stored.display().to_string()
            ));
        }
        check_size(id, n, size)?;
        return Ok(VerifiedFile { file, len: n });
    }
    // A file without a name: nothing is left behind, even if mreg is killed. The
    // registry's tmp/ is on the registry's disk; a read-only registry falls back to the
    // system's temp folder.
    let file = tempfile::tempfile_in(reg.tmp_dir())
        .or_else(|_| tempfile::tempfile())
        .context("creating a temp file to decode a compressed object into")?;
    let mut writer = BufWriter::with_capacity(1 << 20, &file);
    let n = object::copy_verified(&place, id, Some(size), &mut writer, progress)?;
    writer
        .flush()
        .context("writing a decoded object to a temp file")?;
    drop(writer);
    Ok(VerifiedFile { file, len: n })
}

/// An object's verified content in a file that can be read at any offset.
pub struct VerifiedFile {
    file: File,
    len: u64,
}

impl VerifiedFile {
    /// Returns the file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Returns its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Returns whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
