//! One sentence for a failed request to a bucket, with a hint where the cause is known:
//! missing credentials, an unreachable store, a missing bucket, a refused signature.

use super::S3Remote;
use crate::error::Failure;

impl S3Remote {
    /// Returns one sentence for a failed request, with a hint where the cause is known.
    pub(super) fn explain(
        &self,
        err: &object_store::Error,
        doing: &str,
        key: &str,
    ) -> anyhow::Error {
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
}
