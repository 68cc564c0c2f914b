//! What a remote is known to hold: the object keys this registry sent there or fetched
//! from there, remembered in `cache/remotes/URLHASH/objects`, so that a sync sends only
//! what is new without listing or probing the whole bucket every time.
//!
//! The file is an append-only list of keys, one per line, added as each transfer
//! completes: an interrupted sync remembers everything that arrived. It is a cache:
//! deleting it costs one probe per object on the next sync. An object deleted on the
//! remote behind mreg's back is still believed present; `mreg sync --recheck` forgets
//! the file first.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, Result};

use super::{Created, Remote};
use crate::id::ObjectId;
use crate::store::object::Encoding;
use crate::store::{Registry, atomic, files, keys};

/// The longest list of known keys read back: some twenty million keys. A longer one
/// (not written by mreg) is forgotten, which costs probes, never correctness.
const LOG_LIMIT: u64 = 2 << 30;

/// The object keys a remote is known to hold.
pub struct Known {
    root: PathBuf,
    dir: PathBuf,
    keys: Mutex<HashSet<String>>,
    log: Mutex<Option<File>>,
    /// The remote's packs, read at the first object looked for there.
    packs: Mutex<Option<std::sync::Arc<super::packs::RemotePacks>>>,
}

impl Known {
    /// Loads what is known of the remote at `url`, as seen from `reg`.
    pub fn load(reg: &Registry, url: &str) -> Result<Known> {
        let dir = cache_dir(reg, url);
        let path = dir.join("objects");
        let keys = files::read_cache(&path, LOG_LIMIT)
            .map(|bytes| {
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Known {
            root: reg.root().to_path_buf(),
            dir,
            keys: Mutex::new(keys),
            log: Mutex::new(None),
            packs: Mutex::new(None),
        })
    }

    /// Forgets everything remembered when the remote's registry is not the one it was
    /// remembered for: emptied and made again, or another store behind the same URL.
    /// A registry names itself in its `registry-id` key; with `may_create`, one that
    /// has none (made by an older mreg) is given one.
    pub fn check_identity(&self, remote: &dyn Remote, may_create: bool) -> Result<()> {
        let mut id = text_of(remote, keys::REGISTRY_ID)?;
        if id.is_none() && may_create && remote.size(keys::CONFIG)?.is_some() {
            let new = crate::store::registry::new_registry_id();
            if remote.create(keys::REGISTRY_ID, format!("{new}\n").as_bytes())? == Created::New {
                id = Some(new);
            } else {
                id = text_of(remote, keys::REGISTRY_ID)?;
            }
        }
        self.forget_unless_remembered(keys::REGISTRY_ID, id)
    }

    /// Forgets every object remembered when a `gc` deleted objects on the remote since
    /// they were remembered: its `gc.epoch` changed. Called by a writer once it holds
    /// its share of the remote's gc lock or lease, so no `gc` can delete after the check
    /// while the writer relies on what it knows.
    pub fn check_epoch(&self, remote: &dyn Remote) -> Result<()> {
        let epoch = text_of(remote, keys::GC_EPOCH)?;
        self.forget_unless_remembered(keys::GC_EPOCH, epoch)
    }

    /// Forgets everything known unless `value` is what this cache remembers under
    /// `name`; then remembers `value` (or that there is none).
    fn forget_unless_remembered(&self, name: &str, value: Option<String>) -> Result<()> {
        let path = self.dir.join(name);
        let remembered = files::read_cache(&path, 4096)
            .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned());
        if remembered == value {
            return Ok(());
        }
        self.forget()?;
        match value {
            Some(value) => {
                self.make_dir()?;
                atomic::replace(
                    &self.root.join(keys::TMP),
                    &path,
                    format!("{value}\n").as_bytes(),
                )
            }
            None => match fs::remove_file(&path) {
                Err(err) if err.kind() != ErrorKind::NotFound => {
                    Err(err).with_context(|| format!("removing {}", path.display()))
                }
                _ => Ok(()),
            },
        }
    }

    /// Forgets everything known, so the next transfers probe the remote again.
    pub fn forget(&self) -> Result<()> {
        self.keys.lock().expect("known keys").clear();
        *self.log.lock().expect("known log") = None;
        match fs::remove_file(self.dir.join("objects")) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err).context("forgetting what the remote holds"),
        }
    }

    /// Returns the key of the pack on `remote` holding `id`, and its entry there, if
    /// the remote holds it packed; the remote's pack indexes are read once.
    pub fn packed(
        &self,
        remote: &dyn Remote,
        id: ObjectId,
    ) -> Result<Option<(String, crate::store::pack::Entry)>> {
        let mut slot = self.packs.lock().expect("remote packs");
        if slot.is_none() {
            *slot = Some(std::sync::Arc::new(super::packs::RemotePacks::load(
                remote,
            )?));
        }
        let packs = slot.as_ref().expect("loaded just now");
        Ok(packs.find(id).map(|(key, entry)| (key.to_owned(), entry)))
    }

    /// Returns the remote's packs, their indexes read once.
    pub fn remote_packs(
        &self,
        remote: &dyn Remote,
    ) -> Result<std::sync::Arc<super::packs::RemotePacks>> {
        let mut slot = self.packs.lock().expect("remote packs");
        if slot.is_none() {
            *slot = Some(std::sync::Arc::new(super::packs::RemotePacks::load(
                remote,
            )?));
        }
        Ok(std::sync::Arc::clone(
            slot.as_ref().expect("loaded just now"),
        ))
    }

    /// Forgets the remote's pack indexes, so the next lookup reads them again.
    pub fn forget_packs(&self) {
        *self.packs.lock().expect("remote packs") = None;
    }

    /// Remembers every object the remote's packs hold as held there (in the encoding
    /// its pack stores it in), reading the remote's pack indexes if need be.
    pub fn note_packed(&self, remote: &dyn Remote) -> Result<()> {
        let packs = self.remote_packs(remote)?;
        for (id, encoding) in packs.objects() {
            self.insert(&keys::object(id, encoding))?;
        }
        Ok(())
    }

    /// Returns the encoding the remote holds an object in, if it is known to.
    pub fn encoding_of(&self, id: ObjectId) -> Option<Encoding> {
        let keys = self.keys.lock().expect("known keys");
        Encoding::ALL
            .into_iter()
            .find(|e| keys.contains(&keys::object(id, *e)))
    }

    /// Returns whether the remote is known to hold `key` (an object, or a version
    /// record known to be the same on both sides).
    pub fn contains(&self, key: &str) -> bool {
        self.keys.lock().expect("known keys").contains(key)
    }

    /// Returns whether the remote's record at `key` is known to hold exactly `bytes`.
    pub fn same_record(&self, key: &str, bytes: &[u8]) -> bool {
        self.contains(&record_entry(key, bytes))
    }

    /// Records that the remote's record at `key` holds exactly `bytes`. The entry names
    /// the bytes' hash, so a local record that changes later is compared again.
    pub fn note_same_record(&self, key: &str, bytes: &[u8]) -> Result<()> {
        self.insert(&record_entry(key, bytes))
    }

    /// Records that the remote holds `key`.
    pub fn insert(&self, key: &str) -> Result<()> {
        if !self.keys.lock().expect("known keys").insert(key.to_owned()) {
            return Ok(());
        }
        let mut log = self.log.lock().expect("known log");
        if log.is_none() {
            self.make_dir()?;
            *log = Some(files::open_append(&self.dir.join("objects"))?);
        }
        let file = log.as_mut().expect("opened above");
        file.write_all(format!("{key}\n").as_bytes())
            .context("remembering what the remote holds")
    }

    /// Records every object key among `keys`.
    pub fn insert_all<'a>(&self, keys: impl Iterator<Item = &'a str>) -> Result<()> {
        for key in keys.filter(|k| k.starts_with(keys::OBJECTS)) {
            self.insert(key)?;
        }
        Ok(())
    }

    /// Makes this remote's cache folder, each folder on the way a real one.
    fn make_dir(&self) -> Result<()> {
        let key = self
            .dir
            .strip_prefix(&self.root)
            .ok()
            .and_then(|k| k.to_str());
        let key = key.expect("a remote's cache folder is inside the registry");
        files::make_dir(&self.root, key).map(drop)
    }

    /// Returns where an interrupted upload of `id` to this remote keeps its journal,
    /// making the folder that holds it.
    pub fn journal(&self, id: ObjectId) -> Result<PathBuf> {
        let dir = self.dir.join("uploads");
        let key = dir.strip_prefix(&self.root).ok().and_then(|k| k.to_str());
        let key = key.expect("a remote's cache folder is inside the registry");
        files::make_dir(&self.root, key)?;
        Ok(dir.join(format!("{}.json", id.to_hex())))
    }
}

/// Returns the small text value at `key` on the remote, trimmed; `None` when absent.
fn text_of(remote: &dyn Remote, key: &str) -> Result<Option<String>> {
    Ok(remote
        .get(key)?
        .map(|f| String::from_utf8_lossy(&f.bytes).trim().to_owned()))
}

/// Returns the entry that says a record at `key` holds `bytes`.
fn record_entry(key: &str, bytes: &[u8]) -> String {
    format!("{key} {}", &blake3::hash(bytes).to_hex()[..32])
}

/// Returns the local cache folder of what is known about the remote at `url`.
fn cache_dir(reg: &Registry, url: &str) -> PathBuf {
    let hash = blake3::hash(url.as_bytes()).to_hex();
    reg.cache_dir().join("remotes").join(&hash[..16])
}
