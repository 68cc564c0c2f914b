//! Connecting to a bucket: endpoint, region and credentials from the AWS variables,
//! else from the active profile in `~/.aws`, checked before any request is made.

use std::time::Duration;

use anyhow::{Context, Result};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::{BackoffConfig, RetryConfig};

use super::S3Remote;
use crate::error::Failure;
use crate::remote::profile::{self, Profile};

impl S3Remote {
    /// Connects to `bucket` under `prefix`, through `endpoint` when one is given;
    /// nothing is sent until a command asks.
    pub fn open(url: &str, bucket: &str, prefix: &str, endpoint: Option<&str>) -> Result<S3Remote> {
        let builder = with_profile(
            AmazonS3Builder::from_env().with_bucket_name(bucket),
            &profile::active(),
        );
        check_endpoint(&builder)?;
        check_credentials(&builder, url)?;
        let mut builder = builder;
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
        let builder = builder
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_http_connector(super::listing::Connector);
        let failed = |err: object_store::Error| {
            Failure::error(format!("cannot use {url}: {err}"))
                .hint("set AWS_REGION, AWS_ENDPOINT_URL and credentials (docs/remotes.md)")
        };
        // Record creates and deletions are retried by S3Remote itself, each attempt
        // only while this process's lease holds (remote/lease.rs): a retry the client
        // sent on its own after the process was paused could land long after.
        let once = builder
            .clone()
            .with_retry(RetryConfig {
                max_retries: 0,
                ..retry.clone()
            })
            .build()
            .map_err(failed)?;
        let store = builder.with_retry(retry).build().map_err(failed)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the network runtime")?;
        Ok(S3Remote {
            url: url.to_owned(),
            store,
            once,
            prefix: prefix.to_owned(),
            runtime: std::sync::Arc::new(runtime),
            in_flight: std::sync::Arc::new(tokio::sync::Semaphore::new(super::IN_FLIGHT_MIB)),
            // What is in flight, and a few blocks of payloads the client has yet to drop.
            blocks: super::blocks::Blocks::new(super::IN_FLIGHT_MIB),
        })
    }
}

/// Returns a variable of the environment; empty counts as unset.
fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// Returns the builder with what the profile says where the variables say nothing:
/// credentials, region, endpoint.
fn with_profile(mut builder: AmazonS3Builder, profile: &Profile) -> AmazonS3Builder {
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
    builder
}

/// Refuses an endpoint that is not an http:// or https:// URL.
fn check_endpoint(builder: &AmazonS3Builder) -> Result<()> {
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
    Ok(())
}

/// Refuses to go on without credentials when none can come from the machine either
/// (the instance metadata service is turned off).
fn check_credentials(builder: &AmazonS3Builder, url: &str) -> Result<()> {
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
    Ok(())
}
