//! The JSON forms of records and values that `--json` prints: NaN and the infinities as
//! the strings `"NaN"`, `"inf"` and `"-inf"`, which JSON has no numbers for.

use anyhow::Result;
use serde::Serialize;

use super::Value;

/// Returns a typed value as JSON; NaN and the infinities become the strings `"NaN"`,
/// `"inf"` and `"-inf"`, which JSON has no numbers for.
pub fn json_of_value(value: &Value) -> serde_json::Value {
    match value {
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => json_of_float(*f),
        Value::Str(s) => serde_json::Value::String(s.clone()),
    }
}

fn json_of_float(f: f64) -> serde_json::Value {
    serde_json::Number::from_f64(f).map_or_else(
        || serde_json::Value::String(super::value::format_float(f)),
        serde_json::Value::Number,
    )
}

/// Returns a manifest as JSON by way of its TOML form, so that NaN and infinities
/// come out as strings rather than as `null`.
pub fn json_of_manifest<T: Serialize>(manifest: &T) -> Result<serde_json::Value> {
    Ok(json_of_toml(toml::Value::try_from(manifest)?))
}

fn json_of_toml(value: toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(s) => serde_json::Value::String(s),
        toml::Value::Integer(i) => serde_json::Value::from(i),
        toml::Value::Float(f) => json_of_float(f),
        toml::Value::Boolean(b) => serde_json::Value::Bool(b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(json_of_toml).collect())
        }
        toml::Value::Table(table) => serde_json::Value::Object(
            table
                .into_iter()
                .map(|(k, v)| (k, json_of_toml(v)))
                .collect(),
        ),
    }
}
