//! Sending an artifact to an OCI registry over the distribution API: each blob the
//! registry lacks (asked with `HEAD`) is uploaded in one `PUT` after a `POST` opens the
//! upload, streamed from the registry's verified copy of the file; the manifest goes
//! last, under its tag, and the registry's digest of it is checked against ours.
//!
//! Credentials: `MREG_OCI_USERNAME` and `MREG_OCI_PASSWORD`, sent as Basic
//! authentication or traded for a Bearer token, as the registry's challenge asks;
//! anonymous otherwise.

use std::os::unix::fs::FileExt as _;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt as _;
use reqwest::{Method, StatusCode, header};

use super::{Artifact, MANIFEST_MEDIA_TYPE};
use crate::error::Failure;
use crate::store::{Progress, Registry, read};

/// Blobs uploaded at once.
const PARALLEL: usize = 4;

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the registry may stay silent while an answer is awaited, and how long a
/// request without a blob may take in all: `MREG_OCI_TIMEOUT` seconds, else 120.
fn silence() -> Duration {
    std::env::var("MREG_OCI_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(Duration::from_secs(120), Duration::from_secs)
}

/// The slowest upload waited for: a blob may take this long per MiB, beyond
/// the silence allowed (some 100 KiB/s).
const PER_MIB: Duration = Duration::from_secs(10);

/// Bytes of one chunk of an upload's body.
const CHUNK: usize = 1 << 20;

/// The longest part of a registry's error body quoted back.
const QUOTED: usize = 300;

/// The largest token answer read.
const TOKEN_LIMIT: u64 = 1 << 20;

/// Where an artifact goes: `HOST[:PORT]/REPO[:TAG]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// `HOST[:PORT]`.
    pub host: String,
    /// The repository, `a/b/c`.
    pub repository: String,
    /// The tag, when given.
    pub tag: Option<String>,
}

impl Destination {
    /// Parses `HOST[:PORT]/REPO[:TAG]`; anything else is a usage error saying the form.
    pub fn parse(text: &str) -> Result<Destination> {
        let bad = |why: &str| -> anyhow::Error {
            Failure::usage(format!("'{text}' is not an OCI destination: {why}"))
                .hint("give HOST[:PORT]/REPOSITORY[:TAG], such as registry.example.com/ml/churn:4")
                .into()
        };
        if text.contains('@') {
            return Err(bad(
                "give a tag, not a digest: a push names what it sends by a tag",
            ));
        }
        if text.contains("://") {
            return Err(bad(
                "give no scheme (https is used; --plain-http for a registry without TLS)",
            ));
        }
        let (host, rest) = text
            .split_once('/')
            .ok_or_else(|| bad("it names no repository"))?;
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return Err(bad("the host is not a host name with an optional port"));
        }
        let port = if host.starts_with('[') {
            host.rsplit_once("]:").map(|(_, p)| p)
        } else {
            host.split_once(':').map(|(_, p)| p)
        };
        if port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
            return Err(bad("the port is not a number from 1 to 65535"));
        }
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_owned())),
            _ => (rest, None),
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.ends_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
                })
        };
        if repository.len() > 255 || !repository.split('/').all(component_ok) {
            return Err(bad(
                "a repository is lower-case letters, digits and `._-`, in parts separated by `/`",
            ));
        }
        if let Some(tag) = &tag
            && !super::valid_tag(tag)
        {
            return Err(bad(
                "the tag is up to 128 letters, digits, `_`, `.` and `-`",
            ));
        }
        Ok(Destination {
            host: host.to_owned(),
            repository: repository.to_owned(),
            tag,
        })
    }
}

/// What a push sent.
#[derive(Debug, Default)]
pub struct Sent {
    /// Blobs uploaded (the others the registry had).
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// A session with one repository of a registry.
struct Session {
    client: reqwest::Client,
    base: String,
    repository: String,
    credentials: Option<(String, String)>,
    /// The `Authorization` header that worked last; sent only to the registry's own
    /// origin, never to another host an upload's `Location` names.
    authorization: Mutex<Option<String>>,
    /// Whether the registry is spoken to over plain HTTP.
    plain_http: bool,
}

/// Sends `artifact` to `to` under `tag`; `plain_http` speaks HTTP instead of HTTPS.
pub fn push(
    reg: &Registry,
    artifact: &Artifact,
    to: &Destination,
    tag: &str,
    plain_http: bool,
    progress: &dyn Progress,
) -> Result<Sent> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the network runtime")?;
    let credentials = match (
        std::env::var("MREG_OCI_USERNAME"),
        std::env::var("MREG_OCI_PASSWORD"),
    ) {
        (Ok(user), Ok(password)) if !user.is_empty() => Some((user, password)),
        _ => None,
    };
    let session = Session {
        client: reqwest::Client::builder()
            .user_agent(concat!("mreg/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(silence())
            .build()
            .context("starting the HTTP client")?,
        base: format!(
            "{}://{}",
            if plain_http { "http" } else { "https" },
            to.host
        ),
        repository: to.repository.clone(),
        credentials,
        authorization: Mutex::new(None),
        plain_http,
    };
    runtime.block_on(session.push(reg, artifact, tag, progress))
}

impl Session {
    async fn push(
        &self,
        reg: &Registry,
        artifact: &Artifact,
        tag: &str,
        progress: &dyn Progress,
    ) -> Result<Sent> {
        let mut seen = std::collections::HashSet::new();
        let layers: Vec<&super::Layer> = artifact
            .layers
            .iter()
            .filter(|l| seen.insert(l.digest.clone()))
            .collect();
        let mut missing = Vec::new();
        for layer in layers {
            if !self.has_blob(&layer.digest).await? {
                missing.push(layer);
            }
        }
        let sent = Sent {
            blobs: missing.len() as u64,
            bytes: missing.iter().map(|l| l.size).sum(),
        };
        progress.start("sending", sent.bytes);
        let results: Vec<Result<()>> = futures_util::stream::iter(missing)
            .map(|layer| async {
                let file = read::verified_file(reg, layer.id, layer.size, &|_| {})
                    .with_context(|| format!("reading {}", layer.path))?;
                let file = file
                    .file()
                    .try_clone()
                    .with_context(|| format!("reading {}", layer.path))?;
                self.upload(&layer.digest, layer.size, Body::File(file))
                    .await
                    .with_context(|| format!("sending {} ({})", layer.path, layer.digest))?;
                progress.advance(layer.size);
                Ok(())
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        progress.finish();
        results.into_iter().collect::<Result<Vec<()>>>()?;
        let config_digest = super::digest_of(&artifact.config);
        let mut sent = sent;
        if !self.has_blob(&config_digest).await? {
            self.upload(
                &config_digest,
                artifact.config.len() as u64,
                Body::Bytes(artifact.config.clone()),
            )
            .await
            .context("sending the model config")?;
            sent.blobs += 1;
            sent.bytes += artifact.config.len() as u64;
        }
        self.put_manifest(artifact, tag).await?;
        Ok(sent)
    }

    /// Returns whether the repository holds the blob `digest`.
    async fn has_blob(&self, digest: &str) -> Result<bool> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base, self.repository);
        let response = self.send(Method::HEAD, &url, |r| r).await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(refused(response, "asked for a blob").await),
        }
    }

    /// Uploads one blob: a `POST` opens the upload, one `PUT` sends it whole.
    async fn upload(&self, digest: &str, size: u64, body: Body) -> Result<()> {
        let url = format!("{}/v2/{}/blobs/uploads/", self.base, self.repository);
        let opened = self
            .send(Method::POST, &url, |r| r.header(header::CONTENT_LENGTH, 0))
            .await?;
        if opened.status() != StatusCode::ACCEPTED {
            return Err(refused(opened, "opening an upload").await);
        }
        let location = opened
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .context("the registry opened an upload without saying where (no Location)")?;
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_owned()
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={digest}");
        let body = body.into_body(size);
        let timeout = silence() + PER_MIB * u32::try_from(size >> 20).unwrap_or(u32::MAX);
        let done = self
            .send_once(Method::PUT, &url, |r| {
                r.header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, size)
                    .timeout(timeout)
                    .body(body)
            })
            .await?;
        if done.status() != StatusCode::CREATED {
            return Err(refused(done, "taking a blob").await);
        }
        Ok(())
    }

    /// Puts the manifest under `tag`, and checks the digest the registry gives it.
    async fn put_manifest(&self, artifact: &Artifact, tag: &str) -> Result<()> {
        let url = format!("{}/v2/{}/manifests/{tag}", self.base, self.repository);
        let bytes = artifact.manifest.clone();
        let response = self
            .send(Method::PUT, &url, |r| {
                r.header(header::CONTENT_TYPE, MANIFEST_MEDIA_TYPE)
                    .body(bytes.clone())
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(refused(response, "taking the manifest").await);
        }
        let ours = artifact.manifest_digest();
        if let Some(theirs) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|d| d.to_str().ok())
            && theirs != ours
        {
            bail!("the registry stored the manifest as {theirs}, not {ours}: it changed it");
        }
        Ok(())
    }

    /// Sends a request that can be repeated, answering an authentication challenge
    /// once.
    async fn send(
        &self,
        method: Method,
        url: &str,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let response = self.attempt(method.clone(), url, &build).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        self.answer(&response).await?;
        self.attempt(method, url, &build).await
    }

    /// Sends a request whose body streams once; authentication is settled first with
    /// a request that has no body.
    async fn send_once(
        &self,
        method: Method,
        url: &str,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let request = self.authorize(build(self.client.request(method, url)), url);
        request.send().await.map_err(|e| self.unreachable(url, &e))
    }

    async fn attempt(
        &self,
        method: Method,
        url: &str,
        build: &impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let request = self.authorize(
            build(self.client.request(method, url)).timeout(silence()),
            url,
        );
        request.send().await.map_err(|e| self.unreachable(url, &e))
    }

    /// Adds the credentials to a request for `url`, if it goes to the registry's own
    /// origin (scheme, host and port): never to another host an upload's `Location`
    /// names.
    fn authorize(&self, request: reqwest::RequestBuilder, url: &str) -> reqwest::RequestBuilder {
        let origin = |u: &str| reqwest::Url::parse(u).ok().map(|u| u.origin());
        let same = origin(url).is_some_and(|o| Some(o) == origin(&self.base));
        match self.authorization.lock().expect("auth").clone() {
            Some(auth) if same => request.header(header::AUTHORIZATION, auth),
            _ => request,
        }
    }

    /// Returns the error of a request to `url` that never got an answer.
    fn unreachable(&self, url: &str, err: &reqwest::Error) -> anyhow::Error {
        let host = reqwest::Url::parse(url)
            .ok()
            .map_or_else(|| self.base.clone(), |u| u.origin().ascii_serialization());
        let hint = if err.is_timeout() {
            "the registry stopped answering; try again later, or check it"
        } else if self.plain_http {
            "check the host and port"
        } else {
            "check the host and port; a registry without TLS needs --plain-http"
        };
        Failure::error(format!("cannot reach {host}: {}", chain(err)))
            .hint(hint)
            .into()
    }

    /// Answers a `401`: Basic credentials as they are, or a Bearer token fetched from
    /// the realm the challenge names, for pulling and pushing this repository.
    async fn answer(&self, response: &reqwest::Response) -> Result<()> {
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|c| c.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let no_credentials = || -> anyhow::Error {
            Failure::error(format!(
                "{} asks for credentials to push to {}",
                self.base, self.repository
            ))
            .hint("set MREG_OCI_USERNAME and MREG_OCI_PASSWORD (a token works as the password)")
            .into()
        };
        let (scheme, params) = challenge.split_once(' ').unwrap_or((&challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let (user, password) = self.credentials.as_ref().ok_or_else(no_credentials)?;
            *self.authorization.lock().expect("auth") = Some(basic(user, password));
            return Ok(());
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            if challenge.trim().is_empty() {
                bail!(
                    "{} refuses the push (401) without saying how to authenticate",
                    self.base
                );
            }
            bail!(
                "{} asks for an authentication mreg does not speak: {}",
                self.base,
                clip(&challenge)
            );
        }
        let param = |name: &str| {
            params.split(',').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k.eq_ignore_ascii_case(name)).then(|| v.trim_matches('"').to_owned())
            })
        };
        let realm = param("realm").context("the registry's Bearer challenge names no realm")?;
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            bail!(
                "the registry's token realm is not an http(s) URL: {}",
                clip(&realm)
            );
        }
        let mut query = vec![(
            "scope".to_owned(),
            format!("repository:{}:pull,push", self.repository),
        )];
        if let Some(service) = param("service") {
            query.push(("service".to_owned(), service));
        }
        let realm_url = reqwest::Url::parse_with_params(&realm, &query)
            .with_context(|| format!("the registry's token realm {} is not a URL", clip(&realm)))?;
        let mut request = self.client.get(realm_url);
        if let Some((user, password)) = &self.credentials {
            request = request.header(header::AUTHORIZATION, basic(user, password));
        }
        let token = request
            .timeout(silence())
            .send()
            .await
            .map_err(|e| self.unreachable(&realm, &e))?;
        if !token.status().is_success() {
            if self.credentials.is_none() {
                return Err(no_credentials());
            }
            return Err(refused(token, "giving a token").await);
        }
        let body = read_bounded(token, TOKEN_LIMIT).await?;
        if body.len() as u64 >= TOKEN_LIMIT {
            bail!(
                "the registry's token answer is larger than {} MiB",
                TOKEN_LIMIT >> 20
            );
        }
        let body: serde_json::Value =
            serde_json::from_slice(&body).context("the registry's token answer is not JSON")?;
        let token = body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .context("the registry's token answer holds no token")?;
        *self.authorization.lock().expect("auth") = Some(format!("Bearer {token}"));
        Ok(())
    }
}

/// Returns a Basic `Authorization` header.
fn basic(user: &str, password: &str) -> String {
    use base64ct::Encoding as _;
    format!(
        "Basic {}",
        base64ct::Base64::encode_string(format!("{user}:{password}").as_bytes())
    )
}

/// Returns an error with its causes, cut to [`QUOTED`] characters.
fn chain(err: &reqwest::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        message = format!("{message}: {inner}");
        source = inner.source();
    }
    clip(&message)
}

/// Returns `text` cut to [`QUOTED`] characters, control characters made spaces.
fn clip(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(QUOTED)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > QUOTED {
        out.push('…');
    }
    out
}

/// Returns the error of a request the registry answered with a failure, quoting the
/// start of what it said.
async fn refused(response: reqwest::Response, doing: &str) -> anyhow::Error {
    let status = response.status();
    let url = response.url().to_string();
    let body = read_bounded(response, QUOTED as u64 * 4)
        .await
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&body);
    let quoted: String = body
        .chars()
        .take(QUOTED)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let quoted = quoted.trim();
    let hint = match status.as_u16() {
        401 | 403 => {
            "check MREG_OCI_USERNAME and MREG_OCI_PASSWORD: the registry refused them, or wants them"
        }
        404 => "check the repository's name",
        _ => "the registry's own logs say more",
    };
    Failure::error(format!(
        "the registry answered {status} when {doing} ({url}){}",
        if quoted.is_empty() {
            String::new()
        } else {
            format!(": {quoted}")
        }
    ))
    .hint(hint)
    .into()
}

/// Reads up to `limit` bytes of a response's body: what a registry says is untrusted,
/// and is not read further.
async fn read_bounded(mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .context("reading the registry's answer")?
    {
        let room = (limit as usize).saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() as u64 >= limit {
            break;
        }
    }
    Ok(out)
}

/// The body of an upload.
enum Body {
    /// A file, read from its start.
    File(std::fs::File),
    /// Bytes in memory (the model config).
    Bytes(Vec<u8>),
}

impl Body {
    /// Returns the request body: a file streamed in chunks of 1 MiB, never whole in
    /// memory.
    fn into_body(self, size: u64) -> reqwest::Body {
        match self {
            Body::Bytes(bytes) => reqwest::Body::from(bytes),
            Body::File(file) => {
                let chunks = (0..size.div_ceil(CHUNK as u64)).map(move |i| {
                    let offset = i * CHUNK as u64;
                    let len = (size - offset).min(CHUNK as u64) as usize;
                    let mut buf = vec![0u8; len];
                    file.read_exact_at(&mut buf, offset).map(|()| buf)
                });
                reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
            }
        }
    }
}
