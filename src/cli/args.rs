//! Flag groups more than one command takes: what feeds a run (params, tags, metrics,
//! data inputs, parent models), and how they become a request.

use std::path::PathBuf;

use super::Ctx;
use crate::lineage;
use crate::ops::inputs::Inputs;

/// Warns that the free text given with `flag` (a reason, a message, a run's name) holds
/// credentials, which are masked when it is recorded (docs/runs.md, "Secrets").
pub fn warn_masked(ctx: &Ctx, flag: &str, text: Option<&str>) {
    let Some(text) = text else { return };
    let masked = lineage::mask_text(text);
    if masked != text {
        ctx.out.warn(&format!(
            "{flag} holds credentials (in a URL, a header or under a secret-looking key): it is recorded as {masked:?}"
        ));
    }
}

/// Params and tags, from flags and files.
#[derive(Debug, Default, clap::Args)]
pub struct ParamArgs {
    /// A param, KEY=VALUE; its type is inferred: int, float, bool, else text (repeatable)
    ///
    /// A key that looks like a secret (api_key, hf_token, db.password) is recorded with
    /// the value `[redacted]`; see --not-secret.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// A params file: TOML, JSON or YAML, nested keys flattened with dots (repeatable)
    ///
    /// Keys that look like secrets (auth.token) are recorded as `[redacted]`, as with
    /// --param.
    #[arg(long = "params-file", value_name = "FILE")]
    pub params_files: Vec<PathBuf>,
    /// A tag, KEY=VALUE, kept as text (repeatable)
    ///
    /// A key that looks like a secret is recorded with the value `[redacted]`, as with
    /// --param.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// Record param or tag KEY as given, though its name looks like a secret (repeatable)
    ///
    /// Without it, a param or tag whose key has a word such as secret, password, apikey
    /// or credential, ends in token or pat, or has key after api, access, secret or
    /// private (hf_token, db.password, auth.token, api_key), is recorded as `[redacted]`,
    /// and one whose text holds URL credentials or a Bearer token loses them, with a
    /// warning naming the key. KEY is the key as recorded (auth.token for a nested
    /// key of a params file). The rule in full: docs/runs.md, "Secrets".
    #[arg(long = "not-secret", value_name = "KEY")]
    pub not_secret: Vec<String>,
}

/// Metrics, from flags and files.
#[derive(Debug, Default, clap::Args)]
pub struct MetricArgs {
    /// A metric, KEY=NUMBER; nan and inf are kept (repeatable)
    #[arg(long = "metric", value_name = "KEY=NUMBER")]
    pub metrics: Vec<String>,
    /// A metrics file: JSON lines of {"step": 3, "loss": 0.41} records (a series), or a
    /// JSON, TOML or YAML file of final values such as eval.json (repeatable)
    #[arg(long = "metrics-file", value_name = "FILE")]
    pub metrics_files: Vec<PathBuf>,
}

/// Data inputs and parent models.
#[derive(Debug, Default, clap::Args)]
pub struct LineageArgs {
    /// A data input: a file or folder, whose blake3 hash is recorded, or a URI such as
    /// s3://bucket/key, recorded as given, with an optional @VERSION or @ETAG (repeatable)
    #[arg(long = "data", value_name = "PATH|URI")]
    pub data: Vec<String>,
    /// Also store the bytes of local --data inputs in the registry
    #[arg(long)]
    pub store_data: bool,
    /// A model version the run starts from, for fine-tunes and distillations: NAME@REF
    /// (repeatable)
    #[arg(long = "parent", value_name = "REF")]
    pub parents: Vec<String>,
}

/// Returns the request of whichever groups a command takes.
pub fn inputs(
    params: &ParamArgs,
    metrics: Option<&MetricArgs>,
    lineage: Option<&LineageArgs>,
    step: Option<i64>,
) -> Inputs {
    let mut inputs = Inputs {
        params: params.params.clone(),
        params_files: params.params_files.clone(),
        tags: params.tags.clone(),
        not_secret: params.not_secret.clone(),
        step,
        ..Inputs::default()
    };
    if let Some(m) = metrics {
        inputs.metrics.clone_from(&m.metrics);
        inputs.metrics_files.clone_from(&m.metrics_files);
    }
    if let Some(l) = lineage {
        inputs.data.clone_from(&l.data);
        inputs.store_data = l.store_data;
        inputs.parents.clone_from(&l.parents);
    }
    inputs
}
