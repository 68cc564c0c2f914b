//! A remote under a prefix of an S3-compatible bucket, spoken to through the
//! `object_store` crate (request signing, retries, multipart uploads).
//!
//! Create-only writes are `If-None-Match: *` puts and compare-and-swap is an
//! `If-Match: ETAG` put; `remote check` proves a bucket honours both before stages are
//! moved there. Endpoint, region and credentials come from the AWS variables
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, …) and else from the active
//! profile in `~/.aws`.

mod blocks;
mod connect;
mod errors;
mod listing;
mod multipart;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::path::Path as KeyPath;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    UpdateVersion,
};

use multipart::PART_SIZE;

use crate::remote::{Created, Fetched, Listed, Remote, Swap, Tick};

/// A bucket prefix used as a remote; clones share the connection.
#[derive(Clone)]
pub struct S3Remote {
    url: String,
    store: AmazonS3,
    /// The same store without the client's own retries: for the writes a lease
    /// guards, which [`S3Remote`] retries itself, checking the lease before each.
    once: AmazonS3,
    prefix: String,
    runtime: std::sync::Arc<tokio::runtime::Runtime>,
    /// The MiB of object bytes held in memory to be sent, across every upload at once.
    in_flight: std::sync::Arc<tokio::sync::Semaphore>,
    /// The blocks uploads read object bytes into.
    blocks: std::sync::Arc<blocks::Blocks>,
}

/// How many MiB of object bytes uploads hold in memory at once, together: a push or
/// sync of any size stays within about this much more than its own needs. At least one
/// part ([`PART_SIZE`]).
pub const IN_FLIGHT_MIB: usize = 16;

/// Returns `len` bytes of `source` from `offset`, as a payload.
/// Returns the permits (MiB, rounded up) a buffer of `len` bytes takes from
/// [`IN_FLIGHT_MIB`].
fn mib_of(len: u64) -> u32 {
    // Never more than the whole budget: a larger buffer would wait forever.
    u32::try_from(len.div_ceil(1 << 20).clamp(1, IN_FLIGHT_MIB as u64)).unwrap_or(1)
}

impl S3Remote {
    fn path(&self, key: &str) -> KeyPath {
        if self.prefix.is_empty() {
            KeyPath::from(key)
        } else {
            KeyPath::from(format!("{}/{key}", self.prefix))
        }
    }

    fn describe(&self, key: &str) -> String {
        format!("{}/{key}", self.url.trim_end_matches('/'))
    }
}

/// Returns whether an error says the key is absent.
fn is_not_found(err: &object_store::Error) -> bool {
    matches!(err, object_store::Error::NotFound { .. })
}

/// How many times a guarded write is tried.
const GUARDED_TRIES: u32 = 5;

impl S3Remote {
    /// Runs a write a lease guards (a record's create, a deletion), trying it again
    /// after a failure, each attempt only while this process's writer lease on the
    /// bucket holds, a writer's or the collector's
    /// ([`crate::remote::lease::require_held`]).
    fn guarded<T, F, Fut>(&self, key: &str, verb: &str, attempt: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, object_store::Error>>,
    {
        let mut wait = std::time::Duration::from_millis(100);
        for tries in 1.. {
            // The leases' own keys are written whatever leases this process holds.
            if !key.starts_with(crate::store::keys::GC_PREFIX) {
                crate::remote::lease::require_held(&self.url)?;
                crate::crash::pause("lease-checked");
            }
            match self.runtime.block_on(attempt()) {
                Ok(done) => return Ok(done),
                Err(err) if tries >= GUARDED_TRIES || !retryable(&err) => {
                    return Err(self.explain(&err, verb, key));
                }
                Err(_) => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
        unreachable!("the loop returns")
    }
}

/// Returns whether a failed request may succeed when sent again: a connection that
/// failed or a server error, not a refusal.
fn retryable(err: &object_store::Error) -> bool {
    !matches!(
        err,
        object_store::Error::NotFound { .. }
            | object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::NotModified { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }
            | object_store::Error::NotSupported { .. }
            | object_store::Error::NotImplemented { .. }
            | object_store::Error::InvalidPath { .. }
    )
}

impl Remote for S3Remote {
    fn url(&self) -> &str {
        &self.url
    }

    fn get(&self, key: &str) -> Result<Option<Fetched>> {
        self.runtime.block_on(async {
            let result = match self.store.get(&self.path(key)).await {
                Ok(result) => result,
                Err(err) if is_not_found(&err) => return Ok(None),
                Err(err) => {
                    return Err(err).map_err(|err| self.explain(&err, "reading", key));
                }
            };
            let tag = result.meta.e_tag.clone().unwrap_or_default();
            let modified = Some(std::time::SystemTime::from(result.meta.last_modified));
            super::check_value_size(self, key, result.meta.size)?;
            let mut bytes = Vec::with_capacity(result.meta.size as usize);
            let mut stream = result.into_stream();
            while let Some(chunk) = stream
                .try_next()
                .await
                .map_err(|err| self.explain(&err, "reading", key))?
            {
                bytes.extend_from_slice(&chunk);
                super::check_value_size(self, key, bytes.len() as u64)?;
            }
            Ok(Some(Fetched {
                bytes,
                tag,
                modified,
            }))
        })
    }

    fn download(
        &self,
        key: &str,
        out: &File,
        offset: u64,
        limit: u64,
        tick: Tick,
    ) -> Result<Option<u64>> {
        self.runtime.block_on(async {
            let path = self.path(key);
            if offset > 0 {
                match self.store.head(&path).await {
                    Ok(meta) => {
                        super::check_download_size(self, key, meta.size, limit)?;
                        if meta.size <= offset {
                            return Ok(Some(meta.size));
                        }
                    }
                    Err(err) if is_not_found(&err) => return Ok(None),
                    Err(err) => {
                        return Err(err).map_err(|err| self.explain(&err, "reading", key));
                    }
                }
            }
            let options = GetOptions {
                range: (offset > 0).then_some(GetRange::Offset(offset)),
                ..GetOptions::default()
            };
            let result = match self.store.get_opts(&path, options).await {
                Ok(result) => result,
                Err(err) if is_not_found(&err) => return Ok(None),
                Err(err) => {
                    return Err(err).map_err(|err| self.explain(&err, "reading", key));
                }
            };
            let total = result.meta.size;
            super::check_download_size(self, key, total, limit)?;
            let mut at = offset;
            let mut stream = result.into_stream();
            while let Some(chunk) = stream
                .try_next()
                .await
                .map_err(|err| self.explain(&err, "reading", key))?
            {
                if at + chunk.len() as u64 > total {
                    bail!(
                        "{} sent more than the {total} bytes it declared",
                        self.describe(key)
                    );
                }
                out.write_all_at(&chunk, at)
                    .context("writing a downloaded object to a temp file")?;
                at += chunk.len() as u64;
                tick(chunk.len() as u64);
            }
            if at != total {
                bail!(
                    "{} ended after {at} of its {total} bytes",
                    self.describe(key)
                );
            }
            Ok(Some(total))
        })
    }

    fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<Option<Vec<u8>>> {
        super::check_range(self, key, len)?;
        self.runtime.block_on(async {
            let options = GetOptions {
                range: Some(GetRange::Bounded(offset..offset.saturating_add(len))),
                ..GetOptions::default()
            };
            let result = match self.store.get_opts(&self.path(key), options).await {
                Ok(result) => result,
                Err(err) if is_not_found(&err) => return Ok(None),
                Err(err) if err.to_string().contains("Range") => {
                    return Err(super::short_range(self, key, offset, len));
                }
                Err(err) => return Err(self.explain(&err, "reading", key)),
            };
            let mut bytes = Vec::with_capacity(len as usize);
            let mut stream = result.into_stream();
            while let Some(chunk) = stream
                .try_next()
                .await
                .map_err(|err| self.explain(&err, "reading", key))?
            {
                if bytes.len() + chunk.len() > len as usize {
                    bail!(
                        "{} sent more than the {len} bytes asked for",
                        self.describe(key)
                    );
                }
                bytes.extend_from_slice(&chunk);
            }
            if bytes.len() as u64 != len {
                return Err(super::short_range(self, key, offset, len));
            }
            Ok(Some(bytes))
        })
    }

    fn size(&self, key: &str) -> Result<Option<u64>> {
        self.runtime.block_on(async {
            match self.store.head(&self.path(key)).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(err) if is_not_found(&err) => Ok(None),
                Err(err) => Err(self.explain(&err, "reading", key)),
            }
        })
    }

    fn create(&self, key: &str, bytes: &[u8]) -> Result<Created> {
        let options = || PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        self.guarded(key, "writing", || async {
            match self
                .once
                .put_opts(&self.path(key), PutPayload::from(bytes.to_vec()), options())
                .await
            {
                Ok(_) => Ok(Created::New),
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) => Ok(Created::Exists),
                Err(err) => Err(err),
            }
        })
    }

    fn upload(
        &self,
        key: &str,
        source: &File,
        len: u64,
        journal: PathBuf,
        tick: Tick,
    ) -> Result<()> {
        if len > PART_SIZE {
            return self
                .runtime
                .block_on(self.put_parts(key, source, len, &journal, tick));
        }
        self.runtime.block_on(async {
            let _held = self
                .in_flight
                .acquire_many(mib_of(len))
                .await
                .context("waiting for memory to send an object")?;
            let payload = self.blocks.read(source, 0, len)?;
            self.store
                .put(&self.path(key), payload)
                .await
                .map_err(|err| self.explain(&err, "writing", key))
        })?;
        tick(len);
        Ok(())
    }

    fn swap(&self, key: &str, expected: Option<&str>, bytes: &[u8]) -> Result<Swap> {
        self.runtime.block_on(async {
            let mode = match expected {
                None => PutMode::Create,
                Some(tag) => PutMode::Update(UpdateVersion {
                    e_tag: Some(tag.to_owned()),
                    version: None,
                }),
            };
            let options = PutOptions {
                mode,
                ..PutOptions::default()
            };
            match self
                .store
                .put_opts(&self.path(key), PutPayload::from(bytes.to_vec()), options)
                .await
            {
                Ok(_) => Ok(Swap::Done(())),
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. }
                    | object_store::Error::NotFound { .. },
                ) => Ok(Swap::Moved),
                Err(err) => Err(self.explain(&err, "writing", key)),
            }
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        self.runtime.block_on(async {
            let base = self.path(prefix.trim_end_matches('/'));
            let strip = if self.prefix.is_empty() {
                String::new()
            } else {
                format!("{}/", self.prefix)
            };
            let mut out = Vec::new();
            let mut stream = self.store.list(Some(&base));
            while let Some(meta) = stream
                .try_next()
                .await
                .map_err(|err| self.explain(&err, "listing", prefix))?
            {
                let location = meta.location.to_string();
                let location = listing::original(&location).unwrap_or(location);
                if let Some(key) = location.strip_prefix(&strip) {
                    out.push(Listed {
                        key: key.to_owned(),
                        size: meta.size,
                        special: None,
                    });
                }
            }
            Ok(out)
        })
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.runtime.block_on(async {
            match self.store.delete(&self.path(key)).await {
                Ok(()) => Ok(()),
                Err(err) if is_not_found(&err) => Ok(()),
                Err(err) => Err(self.explain(&err, "removing", key)),
            }
        })
    }

    fn delete_many(&self, keys: &[String]) -> Result<()> {
        self.guarded("objects", "removing", || async {
            let paths: Vec<KeyPath> = keys.iter().map(|k| self.path(k)).collect();
            let stream = futures_util::stream::iter(paths.into_iter().map(Ok)).boxed();
            let mut deleted = self.once.delete_stream(stream);
            while let Some(done) = deleted.next().await {
                match done {
                    Ok(_) => {}
                    Err(err) if is_not_found(&err) => {}
                    Err(err) => return Err(err),
                }
            }
            Ok(())
        })
    }

    fn writing(&self, on_wait: &dyn Fn(&str)) -> Result<Option<crate::remote::Guard>> {
        let handles = || -> Box<dyn Remote> { Box::new(self.clone()) };
        let share = crate::remote::lease::writing(self, &handles, on_wait)?;
        Ok(Some(Box::new(share)))
    }

    fn retake_writing(&self, on_wait: &dyn Fn(&str)) -> Result<()> {
        let handles = || -> Box<dyn Remote> { Box::new(self.clone()) };
        crate::remote::lease::retake_writer(self, &handles, on_wait)
    }

    fn collecting(
        &self,
        wait: std::time::Duration,
        on_wait: &dyn Fn(&str),
    ) -> Result<Option<crate::remote::lease::Held>> {
        let handles = || -> Box<dyn Remote> { Box::new(self.clone()) };
        crate::remote::lease::collecting(self, &handles, wait, on_wait).map(Some)
    }
}
