//! The registry handle: where a registry folder is found, its format version, and the
//! paths inside it ([`super::keys`] spells the layout).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use super::backend::{Backend, BackendRef, Folder};
use super::config::{self, Config};
use super::keys;
use super::object::{Encoding, Place};
use super::{atomic, files, gclock, pack, tmp};
use crate::error::Failure;
use crate::id::ObjectId;

/// The layout format this build reads and writes.
pub const FORMAT: u32 = 3;

/// The first layout format whose registries store large files in parts.
pub const PARTS_FORMAT: u32 = 2;

/// The first layout format whose registries store small objects in packs.
pub const PACKS_FORMAT: u32 = 3;

/// The name of the registry folder inside a project.
pub const DIR_NAME: &str = ".mreg";

/// Returns the format line of `config.toml`, read before anything else in it.
#[derive(Deserialize)]
struct FormatOnly {
    format: u32,
}

/// A registry on the local filesystem: the `.mreg` folder and the paths inside it.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
    backend: BackendRef,
    /// This process's temp folder, shared by every handle cloned from this one.
    tmp: std::sync::Arc<tmp::Area>,
    /// Who hears what a command waits for.
    notice: Notice,
    /// The packs, as far as this process has read their indexes; shared by clones.
    packs: std::sync::Arc<pack::Packs>,
}

/// Hears, in a sentence, what a command waits for (a `gc` collecting the registry),
/// for the user to be told while it waits.
#[derive(Clone)]
pub struct Notice(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notice")
    }
}

impl Registry {
    /// Creates `.mreg` inside `dir` (made if missing).
    ///
    /// Returns the registry and whether it was newly created; an existing registry
    /// is left as it is.
    pub fn init(dir: &Path) -> Result<(Registry, bool)> {
        let root = dir.join(DIR_NAME);
        if root.join(keys::CONFIG).is_file() {
            return Ok((Registry::open_root(&root)?, false));
        }
        fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let reg = Registry::at(root.canonicalize()?);
        for sub in keys::FOLDERS {
            fs::create_dir_all(reg.path(sub))
                .with_context(|| format!("creating {}", reg.path(sub).display()))?;
        }
        // The registry is data, not source: keep it out of the project's git status,
        // where it would also make every run's source look dirty.
        atomic::replace(&reg.tmp_dir(), &reg.path(keys::GITIGNORE), b"*\n")?;
        atomic::replace(
            &reg.tmp_dir(),
            &reg.path(keys::REGISTRY_ID),
            format!("{}\n", new_registry_id()).as_bytes(),
        )?;
        // The gc lock files, made now so that no later command has to add a file to a
        // registry it was only going to read or refuse to write.
        gclock::make(&reg.root)?;
        let config = config::initial_text(FORMAT);
        atomic::replace(&reg.tmp_dir(), &reg.path(keys::CONFIG), config.as_bytes())?;
        Ok((reg, true))
    }

    /// Finds the registry named on the command line, or else by walking up from `start`.
    pub fn locate(explicit: Option<&str>, start: &Path) -> Result<Registry> {
        match explicit {
            Some(spec) => Registry::open(spec),
            None => Registry::discover(start),
        }
    }

    /// Opens the registry `spec` names: a folder holding `.mreg`, the `.mreg` folder
    /// itself, or a `file://` URL of either.
    pub fn open(spec: &str) -> Result<Registry> {
        let path = Registry::local_path(spec)?;
        for candidate in [path.join(DIR_NAME), path.clone()] {
            if candidate.join(keys::CONFIG).is_file() {
                return Registry::open_root(&candidate);
            }
        }
        Err(
            Failure::error(format!("no mreg registry at {}", path.display()))
                .hint(format!("create one with `mreg init {}`", path.display()))
                .into(),
        )
    }

    /// Returns the local folder a registry spec names, refusing URL schemes other
    /// than `file://`.
    pub fn local_path(spec: &str) -> Result<PathBuf> {
        if let Some((scheme, _)) = spec.split_once("://")
            && scheme != "file"
        {
            return Err(Failure::usage(format!(
                "registry {spec:?} uses the {scheme}:// scheme, which this mreg cannot open"
            ))
            .hint("name a local folder (--registry /srv/registry) or a bucket (--registry s3://BUCKET/PREFIX; GCS, R2 and MinIO through their S3 endpoints)")
            .into());
        }
        let path = match spec.strip_prefix("file://") {
            Some(rest) => PathBuf::from(rest.strip_prefix("localhost").unwrap_or(rest)),
            None => PathBuf::from(spec),
        };
        // `--registry /srv/reg/.mreg` names the registry folder itself.
        if path.file_name().is_some_and(|n| n == DIR_NAME) && !path.join(DIR_NAME).exists() {
            return Ok(path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf));
        }
        Ok(path)
    }

    /// Finds `.mreg` in `start` or the nearest folder above it.
    pub fn discover(start: &Path) -> Result<Registry> {
        let start = start.canonicalize().unwrap_or_else(|_| start.to_path_buf());
        for dir in start.ancestors() {
            let root = dir.join(DIR_NAME);
            if root.join(keys::CONFIG).is_file() {
                return Registry::open_root(&root);
            }
        }
        Err(Failure::error(format!(
            "no mreg registry in {} or any folder above it",
            start.display()
        ))
        .hint("create one with `mreg init`, or name one with --registry PATH or MREG_REGISTRY")
        .into())
    }

    fn open_root(root: &Path) -> Result<Registry> {
        let reg = Registry::at(root.canonicalize()?);
        reg.config()?;
        for sub in keys::FOLDERS {
            files::make_dir(&reg.root, sub)?;
        }
        Ok(reg)
    }

    /// Returns the layout format `config.toml` declares (a config that does not say is
    /// of this build's format, as [`check_config`] reads it).
    pub fn format(&self) -> u32 {
        files::read_text(&self.root, keys::CONFIG)
            .ok()
            .flatten()
            .map_or(FORMAT, |text| format_of(&text))
    }

    /// Returns whether pushes store large files in parts here: a registry of format 2
    /// or later ([`super::chunks`]).
    pub fn stores_in_parts(&self) -> bool {
        self.format() >= PARTS_FORMAT
    }

    /// Returns whether pushes store small objects in packs here: a registry of format
    /// 3 or later ([`super::pack`]).
    pub fn stores_in_packs(&self) -> bool {
        self.format() >= PACKS_FORMAT
    }

    /// Returns the registry's packs, as far as this process has read them.
    pub fn packs(&self) -> &std::sync::Arc<pack::Packs> {
        &self.packs
    }

    /// Returns the registry's parsed `config.toml`, refusing a newer layout format.
    pub fn config(&self) -> Result<Config> {
        let path = self.path(keys::CONFIG);
        let text = files::read_text(&self.root, keys::CONFIG)
            .with_context(|| format!("reading registry config {}", path.display()))?
            .ok_or_else(|| anyhow::anyhow!("registry config {} is missing", path.display()))?;
        check_config(&text, &self.root.display().to_string(), &path)
    }
}

/// Returns a new registry id: 32 hex digits unique to this moment and process, written
/// to `registry-id` when a registry is made, so that whoever remembers things about a
/// remote can tell when the registry there was replaced by another.
pub fn new_registry_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("mreg registry\0{}\0{nanos}", std::process::id());
    blake3::hash(seed.as_bytes()).to_hex()[..32].to_owned()
}

/// Returns the layout format a `config.toml`'s text declares; one that does not say
/// is of this build's format.
pub fn format_of(text: &str) -> u32 {
    toml::from_str::<FormatOnly>(text).map_or(FORMAT, |f| f.format)
}

/// Returns the config of the registry `name` names, parsed from `text` (read from
/// `path`), refusing a newer layout format before anything else in it.
pub fn check_config(text: &str, name: &str, path: &Path) -> Result<Config> {
    let format = format_of(text);
    if format == 0 {
        return Err(Failure::error(format!(
            "the config.toml of the registry at {name} declares layout format 0, which no mreg writes"
        ))
        .hint(format!("set `format = 1` in {} if mreg 0.1 made it", path.display()))
        .into());
    }
    if format > FORMAT {
        return Err(Failure::error(format!(
            "the registry at {name} has layout format {format}, newer than this mreg reads ({FORMAT})",
        ))
        .hint("upgrade mreg")
        .into());
    }
    Config::parse(text, path)
}

impl Registry {
    /// Returns the `.mreg` folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns the path of a key (see [`keys`]) inside the registry folder, allocated
    /// once at its full size.
    pub fn path(&self, key: &str) -> PathBuf {
        let key = key.trim_end_matches('/');
        let mut path = PathBuf::with_capacity(self.root.as_os_str().len() + 1 + key.len());
        path.push(&self.root);
        path.push(key);
        path
    }

    /// Reads the record at `key`, or returns `None` when it is absent: bounded, and
    /// refusing a link or a special file there (see [`files`]).
    pub fn read_record(&self, key: &str) -> Result<Option<Vec<u8>>> {
        files::read_record(&self.root, key)
    }

    /// Reads the record at `key` as text, as [`Registry::read_record`].
    pub fn read_text(&self, key: &str) -> Result<Option<String>> {
        files::read_text(&self.root, key)
    }

    /// Makes the folders above `key` (each a real folder, never a link) and returns
    /// the key's path, for a write that must stay inside the registry.
    pub fn make_parents(&self, key: &str) -> Result<PathBuf> {
        files::make_parents(&self.root, key)
    }

    /// Returns the key of a path inside the registry folder.
    fn key_of<'p>(&self, path: &'p Path) -> Result<&'p str> {
        path.strip_prefix(&self.root)
            .ok()
            .and_then(Path::to_str)
            .ok_or_else(|| anyhow::anyhow!("{} is not inside the registry", path.display()))
    }

    /// Reads the record at `path` inside the registry, as [`Registry::read_record`].
    pub fn read_path(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        self.read_record(self.key_of(path)?)
    }

    /// Makes the folders above `path` inside the registry, as
    /// [`Registry::make_parents`].
    pub fn make_parents_of(&self, path: &Path) -> Result<()> {
        self.make_parents(self.key_of(path)?).map(drop)
    }

    /// Returns the handle of the registry folder `root` (canonical), on its own
    /// filesystem.
    fn at(root: PathBuf) -> Registry {
        let tmp = tmp::Area::new(root.join(keys::TMP.trim_end_matches('/')));
        Registry {
            backend: BackendRef(std::sync::Arc::new(Folder)),
            tmp: std::sync::Arc::new(tmp),
            notice: Notice(std::sync::Arc::new(|_| {})),
            packs: std::sync::Arc::new(pack::Packs::new(&root)),
            root,
        }
    }

    /// Returns this process's folder of temp files, on the same filesystem as
    /// everything else, made on first use (see [`tmp`]).
    pub fn tmp_dir(&self) -> PathBuf {
        self.tmp.dir()
    }

    /// Returns this process's share of the lock between writers and `gc`, held until
    /// the guard is dropped: taken before a command first looks whether an object
    /// exists, kept until its last record naming objects is published ([`gclock`];
    /// for a mirror, the bucket's lease too). It waits while a `gc` of this registry
    /// runs, telling [`Registry::notice`] why.
    pub fn writing(&self) -> Result<super::backend::Writing> {
        self.backend().writing(self)
    }

    /// Tells whoever the command set to hear it what the command waits for.
    pub fn notice(&self, sentence: &str) {
        (self.notice.0)(sentence);
    }

    /// Returns this registry with `notice` hearing what its commands wait for.
    #[must_use]
    pub fn with_notice(mut self, notice: Notice) -> Registry {
        self.notice = notice;
        self
    }

    /// Returns the folder of objects.
    pub fn objects_dir(&self) -> PathBuf {
        self.path(keys::OBJECTS)
    }

    /// Returns the folder of local caches.
    pub fn cache_dir(&self) -> PathBuf {
        self.path(keys::CACHE)
    }

    /// Returns the folder holding every model.
    pub fn models_dir(&self) -> PathBuf {
        self.path(keys::MODELS)
    }

    /// Returns the folder holding every run.
    pub fn runs_dir(&self) -> PathBuf {
        self.path(keys::RUNS)
    }

    /// Returns the folder of one model's version records.
    pub fn versions_dir(&self, model: &str) -> PathBuf {
        self.path(&keys::versions(model))
    }

    /// Returns the folder of one model's stage states.
    pub fn states_dir(&self, model: &str) -> PathBuf {
        self.path(&keys::states(model))
    }

    /// Returns the file naming one model's newest stage state.
    pub fn head_path(&self, model: &str) -> PathBuf {
        self.path(&keys::head(model))
    }

    /// Returns where an object is stored in the given encoding.
    pub fn object_path(&self, id: ObjectId, encoding: Encoding) -> PathBuf {
        self.path(&keys::object(id, encoding))
    }

    /// Returns where and how an object is stored, or `None` when it is absent: in a
    /// file of its own, or in a pack.
    pub fn find_object(&self, id: ObjectId) -> Option<Place> {
        Encoding::ALL
            .into_iter()
            .find_map(|encoding| {
                let path = self.object_path(id, encoding);
                path.is_file().then_some(Place::File(path, encoding))
            })
            .or_else(|| self.packs.find(id).map(Place::Packed))
    }

    /// Returns where an object is stored in a file of its own, or `None`.
    pub fn find_file(&self, id: ObjectId) -> Option<(PathBuf, Encoding)> {
        Encoding::ALL.into_iter().find_map(|encoding| {
            let path = self.object_path(id, encoding);
            path.is_file().then_some((path, encoding))
        })
    }

    /// Returns whether the object `id`, of `size` content bytes, is stored in parts
    /// here with every part it names: its list reads, adds up to `size`, and no part
    /// is missing.
    pub fn holds_in_parts(&self, id: ObjectId, size: u64) -> bool {
        // Only a file larger than any part is stored in parts: no list to look for.
        size > super::chunks::CHUNKED_MIN
            && self
                .missing_parts(id)
                .is_some_and(|(total, missing)| total == size && missing.is_empty())
    }

    /// Returns, for an object stored here in parts whose list reads, the content length
    /// its list gives and the parts (with their sizes) stored neither raw nor
    /// compressed; `None` when there is no such list.
    pub fn missing_parts(&self, id: ObjectId) -> Option<(u64, Vec<(ObjectId, u64)>)> {
        let path = self.object_path(id, Encoding::Chunked);
        let list = super::chunks::ChunkList::read(&path).ok()?;
        Some((list.total(), self.absent_parts(&list)))
    }

    /// Returns the parts `list` names that are stored here neither raw nor compressed,
    /// with their sizes. A link or a FIFO in a part's place is no part: a push of the
    /// file, or a fetch, puts the part back.
    pub fn absent_parts(&self, list: &super::chunks::ChunkList) -> Vec<(ObjectId, u64)> {
        list.parts
            .iter()
            .filter(|(part, _)| {
                !Encoding::WHOLE.iter().any(|e| {
                    fs::symlink_metadata(self.object_path(*part, *e)).is_ok_and(|m| m.is_file())
                })
            })
            .copied()
            .collect()
    }

    /// Returns whether the object is stored.
    pub fn has_object(&self, id: ObjectId) -> bool {
        self.find_object(id).is_some()
    }

    /// Returns where and how an object is stored, fetching it from the bucket when this
    /// registry is a mirror that lacks it; an error names an object found nowhere.
    pub fn object(&self, id: ObjectId) -> Result<Place> {
        match self.find_object(id) {
            Some(found) => Ok(found),
            None => self.backend().fetch_object(self, id),
        }
    }

    /// Returns whether the object is stored here or, for a mirror, in the bucket.
    pub fn holds_object(&self, id: ObjectId) -> Result<bool> {
        if self.has_object(id) {
            return Ok(true);
        }
        self.backend().holds_object(self, id)
    }

    /// Returns this registry with `backend` deciding its writes: how a mirror of a
    /// bucket is opened.
    #[must_use]
    pub fn with_backend(mut self, backend: BackendRef) -> Registry {
        self.backend = backend;
        self
    }

    /// Returns what decides this registry's contested writes.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend.0
    }

    /// Returns the bucket URL this registry mirrors, or `None` for a registry folder.
    pub fn bucket_url(&self) -> Option<&str> {
        self.backend().bucket_url()
    }

    /// Returns how another mreg process names this registry (in `MREG_REGISTRY`): the
    /// bucket a mirror stands for, else the registry folder.
    pub fn spec(&self) -> std::ffi::OsString {
        match self.bucket_url() {
            Some(url) => url.into(),
            None => self.root.clone().into_os_string(),
        }
    }
}
