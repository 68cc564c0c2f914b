//! Typed values of params, tags and metrics: int, float, bool and string kept apart.
//!
//! TOML holds all four natively (NaN and infinities included), so a manifest keeps a
//! value's type as it was given: `lr = 0.001`, `epochs = 3`, `amp = false`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Returns one typed value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A floating-point number; NaN and the infinities are kept.
    Float(f64),
    /// Any text.
    Str(String),
}

/// Returns a float as people read it: `0.871`, `NaN`, `inf`, `-inf`, `3.0`.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&format_float(*x)),
            Value::Str(s) => f.write_str(s),
        }
    }
}

/// Returns a float that survives JSON: finite values are numbers, NaN and the
/// infinities are the strings `"NaN"`, `"inf"` and `"-inf"` (JSON has no such numbers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JsonFloat(pub f64);

impl Serialize for JsonFloat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            s.serialize_f64(self.0)
        } else {
            s.serialize_str(&format_float(self.0))
        }
    }
}

impl<'de> Deserialize<'de> for JsonFloat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Float;
        impl serde::de::Visitor<'_> for Float {
            type Value = JsonFloat;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, or \"NaN\", \"inf\" or \"-inf\"")
            }
            fn visit_f64<E>(self, v: f64) -> Result<JsonFloat, E> {
                Ok(JsonFloat(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<JsonFloat, E> {
                Ok(JsonFloat(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<JsonFloat, E> {
                Ok(JsonFloat(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<JsonFloat, E> {
                match v {
                    "NaN" => Ok(JsonFloat(f64::NAN)),
                    "inf" => Ok(JsonFloat(f64::INFINITY)),
                    "-inf" => Ok(JsonFloat(f64::NEG_INFINITY)),
                    _ => Err(E::custom(format!("{v:?} is not a number"))),
                }
            }
        }
        d.deserialize_any(Float)
    }
}
