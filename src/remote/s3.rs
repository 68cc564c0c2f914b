//! A remote under a prefix of an S3-compatible bucket, spoken to through the
//! `object_store` crate (request signing, retries, multipart uploads).
//!
//! Create-only writes are `If-None-Match: *` puts and compare-and-swap is an
//! `If-Match: ETAG` put; `remote check` proves a bucket honours both before stages are
//! moved there. Endpoint, region and credentials come from the AWS variables
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, …) and else from the active
//! profile in `~/.aws`.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as KeyPath;
use object_store::{
    BackoffConfig, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, RetryConfig, UpdateVersion,
};
use serde::{Deserialize, Serialize};

use super::{Created, Fetched, Listed, Remote, Swap, Tick, profile};
use crate::error::Failure;

/// Objects at least this large are sent in parts of this size.
pub const PART_SIZE: u64 = 16 << 20;

/// Parts of one object in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// A bucket prefix used as a remote.
pub struct S3Remote {
    url: String,
    store: AmazonS3,
    prefix: String,
    runtime: tokio::runtime::Runtime,
}

/// What an interrupted multipart upload left: enough to resume it.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    key: String,
    upload: String,
    len: u64,
    part_size: u64,
    parts: Vec<Option<String>>,
}

impl S3Remote {
    /// Connects to `bucket` under `prefix`; nothing is sent until a command asks.
    pub fn open(url: &str, bucket: &str, prefix: &str, endpoint: Option<&str>) -> Result<S3Remote> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let profile = profile::active();
        let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        if env("AWS_ACCESS_KEY_ID").is_none()
            && let (Some(id), Some(secret)) = (&profile.access_key_id, &profile.secret_access_key)
        {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
            if let Some(token) = &profile.session_token {
                builder = builder.with_token(token);
            }
        }
        if env("AWS_REGION").is_none()
            && env("AWS_DEFAULT_REGION").is_none()
            && let Some(region) = &profile.region
        {
            builder = builder.with_region(region);
        }
        if env("AWS_ENDPOINT_URL").is_none()
            && env("AWS_ENDPOINT").is_none()
            && let Some(endpoint) = &profile.endpoint_url
        {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(endpoint) = builder.get_config_value(&AmazonS3ConfigKey::Endpoint) {
            let valid = (endpoint.starts_with("http://") || endpoint.starts_with("https://"))
                && endpoint.len() > "https://".len()
                && !endpoint.contains(char::is_whitespace);
            if !valid {
                return Err(Failure::usage(format!(
                    "the S3 endpoint {endpoint:?} is not an http:// or https:// URL"
                ))
                .hint("set AWS_ENDPOINT_URL (or the profile's endpoint_url) to e.g. http://127.0.0.1:9000")
                .into());
            }
        }
        let no_credentials = builder
            .get_config_value(&AmazonS3ConfigKey::AccessKeyId)
            .is_none()
            && env("AWS_WEB_IDENTITY_TOKEN_FILE").is_none()
            && env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_none()
            && env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_none();
        if no_credentials
            && env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(Failure::error(format!("no AWS credentials were found for {url}"))
                .hint("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials (docs/remotes.md)")
                .into());
        }
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if builder
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .is_some_and(|e| e.starts_with("http://"))
        {
            builder = builder.with_allow_http(true);
        }
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: 4,
            retry_timeout: Duration::from_secs(60),
        };
        let store = builder
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_retry(retry)
            .build()
            .map_err(|err| {
                Failure::error(format!("cannot use {url}: {err}"))
                    .hint("set AWS_REGION, AWS_ENDPOINT_URL and credentials (docs/remotes.md)")
            })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the network runtime")?;
        Ok(S3Remote {
            url: url.to_owned(),
            store,
            prefix: prefix.to_owned(),
            runtime,
        })
    }

    fn path(&self, key: &str) -> KeyPath {
        if self.prefix.is_empty() {
            KeyPath::from(key)
        } else {
            KeyPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Returns one sentence for a failed request, with a hint where the cause is known.
    fn explain(&self, err: &object_store::Error, doing: &str, key: &str) -> anyhow::Error {
        let debug = format!("{err:?}");
        if debug.contains("169.254.169.254") || debug.contains("credential") {
            return Failure::error(format!(
                "no AWS credentials were found for {}",
                self.url
            ))
            .hint("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials (docs/remotes.md)")
            .into();
        }
        let (cause, hint) = if debug.contains("kind: Connect")
            || debug.contains("ConnectionRefused")
        {
            (
                "the store could not be reached".to_owned(),
                "check AWS_ENDPOINT_URL (or the profile's endpoint_url) and that the store is up",
            )
        } else {
            // The client repeats its cause at each level; the first ones say it all.
            let text = err.to_string();
            let cause: String = text
                .split(", after ")
                .next()
                .unwrap_or(&text)
                .chars()
                .take(300)
                .collect();
            let no_bucket = debug.contains("NoSuchBucket");
            let cause = if no_bucket {
                "the bucket does not exist".to_owned()
            } else {
                cause
            };
            let hint = if no_bucket {
                "create the bucket first (mreg never creates buckets), or fix the URL"
            } else if debug.contains("403")
                || debug.contains("AccessDenied")
                || debug.contains("SignatureDoesNotMatch")
                || debug.contains("InvalidAccessKeyId")
            {
                "check the credentials and the bucket's permissions (docs/remotes.md lists what mreg needs)"
            } else {
                "run the command again; a sync resumes where it stopped"
            };
            (cause, hint)
        };
        Failure::error(format!("{doing} {} failed: {cause}", self.describe(key)))
            .hint(hint)
            .into()
    }

    fn describe(&self, key: &str) -> String {
        format!("{}/{key}", self.url.trim_end_matches('/'))
    }

    async fn put_parts(
        &self,
        key: &str,
        source: &File,
        len: u64,
        journal: &PathBuf,
        tick: Tick<'_>,
    ) -> Result<()> {
        let path = self.path(key);
        let count = len.div_ceil(PART_SIZE) as usize;
        let mut state = if let Some(state) = read_journal(journal, key, len) {
            state
        } else {
            {
                let upload = self
                    .store
                    .create_multipart(&path)
                    .await
                    .map_err(|err| self.explain(&err, "starting an upload to", key))?;
                let state = Journal {
                    key: key.to_owned(),
                    upload,
                    len,
                    part_size: PART_SIZE,
                    parts: vec![None; count],
                };
                write_journal(journal, &state)?;
                state
            }
        };
        let done: u64 = state
            .parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some())
            .map(|(i, _)| part_len(i, len))
            .sum();
        if done > 0 {
            tick(done);
        }
        let todo: Vec<usize> = (0..count).filter(|i| state.parts[*i].is_none()).collect();
        let upload = state.upload.clone();
        let sends = futures_util::stream::iter(todo.into_iter().map(|index| {
            let path = path.clone();
            let upload = upload.clone();
            async move {
                let size = part_len(index, len);
                let mut buf = vec![0u8; size as usize];
                source
                    .read_exact_at(&mut buf, index as u64 * PART_SIZE)
                    .context("reading an object to send")?;
                let part = self
                    .store
                    .put_part(&path, &upload, index, PutPayload::from(buf))
                    .await;
                Ok::<_, anyhow::Error>((index, size, part))
            }
        }))
        .buffer_unordered(PARTS_IN_FLIGHT);
        futures_util::pin_mut!(sends);
        while let Some(sent) = sends.next().await {
            let (index, size, part) = sent?;
            match part {
                Ok(part) => {
                    state.parts[index] = Some(part.content_id);
                    write_journal(journal, &state)?;
                    tick(size);
                }
                Err(object_store::Error::NotFound { .. }) => {
                    // The upload expired or was aborted on the server: start over.
                    let _ = fs::remove_file(journal);
                    bail!(
                        "the bucket no longer knows the interrupted upload of {}; run the command again to send it afresh",
                        self.describe(key)
                    );
                }
                Err(err) => return Err(self.explain(&err, "sending a part of", key)),
            }
        }
        let parts = state
            .parts
            .iter()
            .map(|p| PartId {
                content_id: p.clone().expect("every part was sent"),
            })
            .collect();
        self.store
            .complete_multipart(&path, &state.upload, parts)
            .await
            .map_err(|err| self.explain(&err, "completing the upload of", key))?;
        let _ = fs::remove_file(journal);
        Ok(())
    }
}

/// Returns the length of part `index` of an object of `len` bytes.
fn part_len(index: usize, len: u64) -> u64 {
    let start = index as u64 * PART_SIZE;
    (len - start).min(PART_SIZE)
}

fn read_journal(path: &PathBuf, key: &str, len: u64) -> Option<Journal> {
    let text = fs::read(path).ok()?;
    let journal: Journal = serde_json::from_slice(&text).ok()?;
    (journal.key == key
        && journal.len == len
        && journal.part_size == PART_SIZE
        && journal.parts.len() as u64 == len.div_ceil(PART_SIZE))
    .then_some(journal)
}

fn write_journal(path: &PathBuf, journal: &Journal) -> Result<()> {
    let dir = path.parent().expect("a journal lives in a folder");
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let bytes = serde_json::to_vec(journal)?;
    let temp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .expect("a journal has a name")
            .to_string_lossy()
    ));
    fs::write(&temp, bytes).with_context(|| format!("writing {}", temp.display()))?;
    fs::rename(&temp, path).with_context(|| format!("writing {}", path.display()))
}

/// Returns whether an error says the key is absent.
fn is_not_found(err: &object_store::Error) -> bool {
    matches!(err, object_store::Error::NotFound { .. })
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
            let bytes = result
                .bytes()
                .await
                .map_err(|err| self.explain(&err, "reading", key))?;
            Ok(Some(Fetched {
                bytes: bytes.to_vec(),
                tag,
            }))
        })
    }

    fn download(&self, key: &str, out: &File, offset: u64, tick: Tick) -> Result<Option<u64>> {
        self.runtime.block_on(async {
            let path = self.path(key);
            if offset > 0 {
                match self.store.head(&path).await {
                    Ok(meta) if meta.size <= offset => return Ok(Some(meta.size)),
                    Ok(_) => {}
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
            let mut at = offset;
            let mut stream = result.into_stream();
            while let Some(chunk) = stream
                .try_next()
                .await
                .map_err(|err| self.explain(&err, "reading", key))?
            {
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
        self.runtime.block_on(async {
            let options = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match self
                .store
                .put_opts(&self.path(key), PutPayload::from(bytes.to_vec()), options)
                .await
            {
                Ok(_) => Ok(Created::New),
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) => Ok(Created::Exists),
                Err(err) => Err(self.explain(&err, "writing", key)),
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
        if len >= PART_SIZE {
            return self
                .runtime
                .block_on(self.put_parts(key, source, len, &journal, tick));
        }
        let mut buf = vec![0u8; len as usize];
        source
            .read_exact_at(&mut buf, 0)
            .context("reading an object to send")?;
        self.runtime.block_on(async {
            self.store
                .put(&self.path(key), PutPayload::from(buf))
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
                if let Some(key) = location.strip_prefix(&strip) {
                    out.push(Listed {
                        key: key.to_owned(),
                        size: meta.size,
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
}
