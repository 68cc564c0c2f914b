//! Remotes: a registry kept in another folder (a mounted share) or under a prefix of an
//! S3-compatible bucket, and the protocol mreg speaks to it.
//!
//! A remote holds the same keys as a registry folder (`config.toml`, `objects/…`,
//! `models/…`, `runs/…`; [`crate::store::keys`] spells them). Everything but a model's `HEAD` is immutable and written
//! create-only; `HEAD` changes only by compare-and-swap. Those two conditional writes
//! are all the atomicity a team's registry needs: version numbers are claimed by
//! creating `versions/N.toml`, and stages move by swapping `HEAD`.

pub mod bootstrap;
pub mod collect;
pub mod folder;
pub mod known;
pub mod lease;
#[cfg(test)]
pub mod memory;
pub mod mirror;
pub mod packs;
pub mod probe;
pub mod profile;
#[cfg(feature = "s3")]
pub mod s3;
pub mod settings;
pub mod sync;
pub mod transfer;

use std::fs::File;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::error::Failure;
pub use crate::store::atomic::{Created, Swap};
use crate::store::keys;

/// The longest value [`Remote::get`] returns: a record, a stage state, a `HEAD` or a
/// config is a few KiB; anything longer is not one.
pub const VALUE_LIMIT: u64 = crate::store::files::RECORD_LIMIT;

/// Refuses a value of `len` bytes that [`Remote::get`] would return.
fn check_value_size(remote: &dyn Remote, key: &str, len: u64) -> Result<()> {
    if len > VALUE_LIMIT {
        return Err(Failure::error(format!(
            "{key} on {} is larger than {VALUE_LIMIT} bytes, too large for a record",
            remote.url()
        ))
        .into());
    }
    Ok(())
}

/// Refuses a range longer than a packed object can be.
fn check_range(remote: &dyn Remote, key: &str, len: u64) -> Result<()> {
    if len > crate::store::pack::STORED_MAX {
        return Err(Failure::error(format!(
            "a read of {len} bytes of {key} on {} was asked for, more than a packed object holds",
            remote.url()
        ))
        .into());
    }
    Ok(())
}

/// Returns the error of a range that reaches past the end of its value.
fn short_range(remote: &dyn Remote, key: &str, offset: u64, len: u64) -> anyhow::Error {
    Failure::error(format!(
        "{key} on {} ends before byte {}: the pack is shorter than its index says",
        remote.url(),
        offset.saturating_add(len)
    ))
    .into()
}

/// Refuses a download of `len` bytes when it is longer than `limit`.
fn check_download_size(remote: &dyn Remote, key: &str, len: u64, limit: u64) -> Result<()> {
    if len > limit {
        return Err(Failure::error(format!(
            "{key} on {} is {len} bytes, more than the {limit} that the records naming it allow; it was not used",
            remote.url()
        ))
        .into());
    }
    Ok(())
}

/// A small value read from a remote, with the tag a compare-and-swap names it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The version tag: an S3 ETag, or a hash of the bytes in a folder.
    pub tag: String,
    /// When it was written, by the store's clock (S3's `Last-Modified`, a file's
    /// modification time), where the store says.
    pub modified: Option<std::time::SystemTime>,
}

/// One key found by a listing, relative to the remote's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The key, `/`-separated.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// What it is when it is no regular file (`a FIFO`, `a socket`, `a device`), which a
    /// folder's listing names so that a sync refuses it by name; it is never read.
    pub special: Option<&'static str>,
}

/// One object to send: its key, where its content is, its length, and the journal an
/// interrupted upload of it resumes from.
pub struct Upload {
    /// The key it goes to.
    pub key: String,
    /// Where its bytes are.
    pub source: Source,
    /// Its length in bytes.
    pub len: u64,
    /// The local file recording the parts of an upload in parts that arrived.
    pub journal: PathBuf,
}

/// Where the bytes of an object to send are.
pub enum Source {
    /// A file, opened only when its turn comes (a batch may name thousands).
    Path(PathBuf),
    /// A file open already (content assembled into a file without a name).
    Open(File),
}

impl Upload {
    /// Returns the content, open.
    pub fn open(&self) -> Result<File> {
        match &self.source {
            Source::Path(path) => {
                File::open(path).with_context(|| format!("opening {}", path.display()))
            }
            Source::Open(file) => {
                let mut file = file
                    .try_clone()
                    .context("reopening an object assembled to be sent")?;
                std::io::Seek::rewind(&mut file)
                    .context("rereading an object assembled to be sent")?;
                Ok(file)
            }
        }
    }
}

/// Receives the bytes a transfer moved, for a progress bar.
pub type Tick<'a> = &'a (dyn Fn(u64) + Sync);

/// A registry somewhere else, spoken to with create-only writes and compare-and-swap.
pub trait Remote: Send + Sync {
    /// Returns the remote's URL, as the user named it.
    fn url(&self) -> &str;

    /// Returns a small value and its tag, or `None` when the key is absent. A value
    /// longer than [`VALUE_LIMIT`] is refused, and no more of it is read.
    fn get(&self, key: &str) -> Result<Option<Fetched>>;

    /// Writes the value of `key` from byte `offset` on into `out` at that offset, and
    /// returns its total length, or `None` when the key is absent. A value longer than
    /// `limit` is refused before a byte of it is written.
    fn download(
        &self,
        key: &str,
        out: &File,
        offset: u64,
        limit: u64,
        tick: Tick,
    ) -> Result<Option<u64>>;

    /// Returns the `len` bytes of the value at `key` from byte `offset` on, or `None`
    /// when the key is absent; a value that ends sooner is an error. For a slice of a
    /// pack: `len` is at most a packed object's stored length.
    fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<Option<Vec<u8>>>;

    /// Returns the size of the value at `key`, or `None` when it is absent.
    fn size(&self, key: &str) -> Result<Option<u64>>;

    /// Writes `bytes` at `key` only if the key is absent. A store collected under
    /// leases refuses it while this process holds a writer lease there that was lost
    /// ([`lease::require_held`]): every record naming objects is published this way.
    fn create(&self, key: &str, bytes: &[u8]) -> Result<Created>;

    /// Writes the file at `source` to `key`, in parts when it is large. `journal` is a
    /// local file where an interrupted upload records the parts that arrived, so that
    /// the next attempt sends only the rest. Used for content-addressed keys only, where
    /// two writers can only ever write the same bytes.
    fn upload(
        &self,
        key: &str,
        source: &File,
        len: u64,
        journal: PathBuf,
        tick: Tick,
    ) -> Result<()>;

    /// Writes each of `items` to its key as [`Remote::upload`] does, several at once;
    /// returns once every one is there and durable. A remote that can make a batch of
    /// writes durable together does so: a folder flushes its filesystem twice for the
    /// batch, not twice per object.
    fn upload_all(&self, items: &[Upload], tick: Tick) -> Result<()> {
        transfer::parallel(items, transfer::PARALLEL, &|item| {
            let file = item.open()?;
            self.upload(&item.key, &file, item.len, item.journal.clone(), tick)
        })
    }

    /// Replaces the value at `key` with `bytes` only if it still has the tag `expected`
    /// (`None`: only if the key is absent).
    fn swap(&self, key: &str, expected: Option<&str>, bytes: &[u8]) -> Result<Swap>;

    /// Returns every key under `prefix` (a folder path ending in `/`, or empty).
    fn list(&self, prefix: &str) -> Result<Vec<Listed>>;

    /// Removes a key; absent keys are no error. Used by `remote check` for its own
    /// probe keys, by leases, and by `gc`.
    fn delete(&self, key: &str) -> Result<()>;

    /// Removes many keys, absent ones being no error: in batches where the store
    /// takes them (S3's `DeleteObjects`, a thousand keys a request).
    fn delete_many(&self, keys: &[String]) -> Result<()> {
        keys.iter().try_for_each(|key| self.delete(key))
    }

    /// Returns this process's share of the lock between writers and `gc` on the
    /// remote (an OS lock in a folder, a lease on a bucket), held while the guard
    /// lives, waiting while a `gc` collects it; `on_wait` hears once why it waits.
    /// `None` for a remote with neither.
    fn writing(&self, on_wait: &dyn Fn(&str)) -> Result<Option<Guard>> {
        let _ = on_wait;
        Ok(None)
    }

    /// Returns the lock of a model's `HEAD` on the remote, held while the guard lives,
    /// for a sync to publish a removal there that no stage move of the remote decides
    /// around; `None` for a remote without one (a bucket, where removals are stage
    /// moves).
    fn lock_head(&self, model: &str) -> Result<Option<Guard>> {
        let _ = model;
        Ok(None)
    }

    /// Takes this process's writer lease on the remote again after it was lost,
    /// waiting for any `gc` alive to finish ([`lease::retake_writer`]); nothing for a
    /// remote without leases.
    fn retake_writing(&self, on_wait: &dyn Fn(&str)) -> Result<()> {
        let _ = on_wait;
        Ok(())
    }

    /// Returns the lease `gc` holds on the remote while it collects, once no writer is
    /// left, or `None` for a remote collected some other way (a folder, under its OS
    /// lock). Gives up after `wait`.
    fn collecting(
        &self,
        wait: std::time::Duration,
        on_wait: &dyn Fn(&str),
    ) -> Result<Option<lease::Held>> {
        let _ = (wait, on_wait);
        Ok(None)
    }
}

/// A held share of a lock or lease, released when dropped.
pub type Guard = Box<dyn Send>;

/// Returns where a remote is: a folder, or a bucket and a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A registry folder on a local or mounted filesystem (the `.mreg` folder itself).
    Folder(PathBuf),
    /// An S3 bucket, and a prefix inside it (no leading or trailing `/`; may be empty).
    S3 {
        /// The bucket.
        bucket: String,
        /// The prefix.
        prefix: String,
    },
}

impl Location {
    /// Parses a remote URL: `s3://bucket/prefix`, `file:///path`, or a folder path.
    pub fn parse(url: &str) -> Result<Location> {
        if !url.starts_with("s3://") && url.to_ascii_lowercase().starts_with("s3:") {
            return Err(Failure::usage(format!("{url:?} is not a bucket URL"))
                .hint("write s3://BUCKET/PREFIX, with two slashes")
                .into());
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if prefix.starts_with('/') {
                return Err(Failure::usage(format!(
                    "{url:?}: a prefix may not hold empty, `.` or `..` parts"
                ))
                .into());
            }
            let prefix = prefix.trim_end_matches('/');
            check_bucket(url, bucket)?;
            if bucket.is_empty() {
                return Err(Failure::usage(format!("{url:?} names no bucket"))
                    .hint("write s3://BUCKET/PREFIX, e.g. s3://ml-models/registry")
                    .into());
            }
            if prefix.split('/').any(|part| part == "." || part == "..") || prefix.contains("//") {
                return Err(Failure::usage(format!(
                    "{url:?}: a prefix may not hold empty, `.` or `..` parts"
                ))
                .into());
            }
            return Ok(Location::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        if let Some((scheme, _)) = url.split_once("://")
            && scheme != "file"
        {
            return Err(Failure::usage(format!(
                "{url:?} uses the {scheme}:// scheme; a remote is s3://BUCKET/PREFIX or a folder"
            ))
            .hint("for GCS, R2 or MinIO use s3:// with AWS_ENDPOINT_URL set to their S3 endpoint")
            .into());
        }
        Ok(Location::Folder(crate::store::Registry::local_path(url)?))
    }
}

/// Refuses a bucket name S3 would refuse: 3 to 63 of lowercase letters, digits, `.`
/// and `-`, starting and ending with a letter or digit.
fn check_bucket(url: &str, bucket: &str) -> Result<()> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(
            Failure::usage(format!("{url:?}: {bucket:?} is not a valid bucket name"))
                .hint("bucket names are 3 to 63 lowercase letters, digits, `.` and `-`")
                .into(),
        )
    }
}

/// Returns a remote URL that means the same from any folder: a folder's absolute path
/// (it must exist), a bucket URL as it is.
pub fn absolute_url(url: &str) -> Result<String> {
    match Location::parse(url)? {
        Location::S3 { .. } => Ok(url.to_owned()),
        Location::Folder(path) => Ok(std::path::absolute(&path)
            .map_err(|e| anyhow::anyhow!("resolving {}: {e}", path.display()))?
            .display()
            .to_string()),
    }
}

/// Returns whether a registry spec names a bucket rather than a folder.
pub fn is_bucket_url(spec: &str) -> bool {
    spec.to_ascii_lowercase().starts_with("s3:")
}

/// Opens the remote at `url`. A folder must hold a registry unless `create` is set, in
/// which case an empty one is made.
pub fn open(url: &str, create: bool) -> Result<Box<dyn Remote>> {
    open_at(url, None, create)
}

/// Opens the remote at `url`, a bucket through `endpoint` when one is given (else the
/// AWS settings' endpoint).
pub fn open_at(url: &str, endpoint: Option<&str>, create: bool) -> Result<Box<dyn Remote>> {
    match Location::parse(url)? {
        Location::Folder(path) => Ok(Box::new(folder::FolderRemote::open(url, &path, create)?)),
        #[cfg(feature = "s3")]
        Location::S3 { bucket, prefix } => Ok(Box::new(s3::S3Remote::open(
            url, &bucket, &prefix, endpoint,
        )?)),
        #[cfg(not(feature = "s3"))]
        Location::S3 { .. } => {
            let _ = endpoint;
            Err(Failure::usage(format!(
                "{url} is a bucket, and this mreg was built without S3 support"
            ))
            .hint("use a build with the default features (`cargo install --path .`), or a folder")
            .into())
        }
    }
}

/// Returns the endpoint the AWS settings name now (`AWS_ENDPOINT_URL`), which
/// `remote add` records with a bucket remote.
pub fn current_endpoint(url: &str) -> Option<String> {
    if !is_bucket_url(url) {
        return None;
    }
    ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .or_else(|| profile::active().endpoint_url)
}

/// Returns the highest version number of `model` on a remote, 0 when it has none.
pub fn highest_version(remote: &dyn Remote, model: &str) -> Result<u64> {
    let prefix = keys::versions(model);
    Ok(remote
        .list(&prefix)?
        .iter()
        .filter_map(|l| keys::version_number(l.key.strip_prefix(&prefix)?))
        .max()
        .unwrap_or(0))
}

/// Fetches every object below a tree that `reg` lacks from `remote` (with `select`, the
/// trees and what the paths it takes need), in parallel, each re-hashed; returns the
/// bytes moved.
pub fn fetch_tree(
    reg: &crate::store::Registry,
    remote: &dyn Remote,
    known: &known::Known,
    tree: crate::id::TreeId,
    select: Option<&crate::store::select::Select>,
    progress: &dyn crate::store::Progress,
) -> Result<u64> {
    let objects = match select {
        None => transfer::closure(tree, &|t| {
            transfer::read_tree_fetching(reg, remote, known, t)
        })?,
        Some(select) => crate::store::walk::load(tree, &crate::store::walk::LIMITS, &mut |t| {
            transfer::read_tree_fetching(reg, remote, known, t)
        })?
        .objects_selected(select)?,
    };
    let fetched = transfer::fetch_all(reg, remote, known, &objects, progress)?;
    Ok(fetched.require(transfer::needed_here)?.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_urls_parse_into_bucket_and_prefix() {
        assert_eq!(
            Location::parse("s3://ml-models/team/registry/").unwrap(),
            Location::S3 {
                bucket: "ml-models".into(),
                prefix: "team/registry".into()
            }
        );
        assert_eq!(
            Location::parse("s3://ml-models").unwrap(),
            Location::S3 {
                bucket: "ml-models".into(),
                prefix: String::new()
            }
        );
        for bad in [
            "s3://",
            "s3:/ml-models/reg",
            "S3:ml-models",
            "s3://Ml_Models/reg",
            "s3://ml-models//reg",
            "s3://ml-models/a/../b",
            "gs://bucket/reg",
        ] {
            let err = Location::parse(bad).unwrap_err();
            assert_eq!(
                crate::error::exit_code_of(&err),
                crate::error::EXIT_USAGE,
                "{bad}: {err:#}"
            );
        }
    }

    #[test]
    fn folders_and_file_urls_are_folders() {
        assert_eq!(
            Location::parse("file:///srv/reg").unwrap(),
            Location::Folder(PathBuf::from("/srv/reg"))
        );
        assert_eq!(
            Location::parse("/mnt/share/reg/.mreg").unwrap(),
            Location::Folder(PathBuf::from("/mnt/share/reg"))
        );
    }
}
