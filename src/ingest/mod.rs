//! Params, tags and metrics as users give them, in flags and files, turned into typed values.
//!
//! Flags carry `KEY=VALUE` pairs: [`parse_param`] types its value by what it looks like,
//! [`parse_tag`] keeps it a string and [`parse_metric`] wants a number. Files are read
//! whole: [`read_params_file`] flattens a TOML, JSON or YAML document to dotted keys, and
//! [`read_metrics_file`] reads final metrics from such a document or a series from JSON
//! lines. Keys are kept as written, except that nested keys are joined with `.`.
//!
//! JSON is read with serde_json (exact float parsing), after a pass that turns Python's
//! bare `NaN`, `Infinity` and `-Infinity`, which `json.dump` writes and JSON has no
//! numbers for, into values it accepts.

mod files;
mod json;
mod kv;
mod metrics;
pub mod mlflow;
mod tree;
pub(crate) mod yaml;

pub use files::read_params_file;
pub use kv::{infer, parse_metric, parse_param, parse_tag};
pub use metrics::{MetricsFile, Point, read_metrics_file};
