//! Params, tags and metrics as users give them, in flags and files, turned into typed values.
//!
//! Flags carry `KEY=VALUE` pairs: [`parse_param`] types its value by what it looks like,
//! [`parse_tag`] keeps it a string and [`parse_metric`] wants a number. Files are read
//! whole: [`read_params_file`] flattens a TOML, JSON or YAML document to dotted keys, and
//! [`read_metrics_file`] reads final metrics from such a document or a series from JSON
//! lines. Keys are kept as written, except that nested keys are joined with `.`.
//!
//! JSON is read by a small reader of this module, not serde_json: Python's `json.dump`
//! writes bare `NaN` and `Infinity`, which serde_json refuses, and serde_json's default
//! float parsing can be one unit in the last place off.

mod files;
mod json;
mod kv;
mod metrics;
mod tree;

pub use files::read_params_file;
pub use kv::{parse_metric, parse_param, parse_tag};
pub use metrics::{MetricsFile, Point, read_metrics_file};
