//! A parsed gate: the key it tests, its operator, and what it compares with (a literal,
//! or the value of the version a stage holds, maybe adjusted).

use std::fmt;

use crate::manifest::Value;
use crate::query::{Key, Op};

/// Returns a parsed gate: one comparison a model version must satisfy to be promoted.
///
/// Several gates all have to hold; a gate itself has no `and`/`or`. See the module docs
/// for the grammar.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub(super) text: String,
    pub(super) key: Key,
    pub(super) op: Op,
    pub(super) rhs: Rhs,
}

/// Returns what a gate compares its key with.
#[derive(Debug, Clone, PartialEq)]
pub enum Rhs {
    /// A literal value: `0.85`, `"growth"`, `true`; never NaN.
    Literal(Value),
    /// The value under the same key of the version holding a stage, maybe adjusted:
    /// `@production-0.005`.
    Stage {
        /// The stage's name, such as `production`.
        stage: String,
        /// What to do to the holder's value before comparing, if anything.
        adjust: Option<Adjust>,
        /// Whether the gate passes when the stage holds no version (`@production?`),
        /// so a pipeline's first promotion needs no person.
        if_held: bool,
    },
}

/// Returns an adjustment of a stage holder's value; the number is finite and not negative.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Adjust {
    /// `+ n`: the holder's value plus n.
    Plus(f64),
    /// `- n`: the holder's value minus n.
    Minus(f64),
    /// `* n`: the holder's value times n.
    Times(f64),
}

impl Gate {
    /// Returns the gate as written (trimmed), for tables and records.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Returns the key the gate tests.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Returns the gate's operator.
    pub fn op(&self) -> Op {
        self.op
    }

    /// Returns what the gate compares the key with.
    pub fn rhs(&self) -> &Rhs {
        &self.rhs
    }

    /// Returns the stage the gate compares against, if it names one.
    pub fn stage(&self) -> Option<&str> {
        match &self.rhs {
            Rhs::Stage { stage, .. } => Some(stage),
            Rhs::Literal(_) => None,
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Adjust {
    /// Returns the adjusted value; `None` when `value` is not a number.
    ///
    /// An int stays an int under `+`, `-` and `*` by a whole number when the result fits;
    /// anything else is computed as a float (and may be NaN: `inf * 0`).
    pub(super) fn apply(self, value: &Value) -> Option<Value> {
        // 2^53: every whole float below it converts to an i64 exactly.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        let n = self.number();
        if let Value::Int(int) = value
            && n.fract() == 0.0
            && n.abs() < EXACT
        {
            let whole = n as i64;
            let exact = match self {
                Adjust::Plus(_) => int.checked_add(whole),
                Adjust::Minus(_) => int.checked_sub(whole),
                Adjust::Times(_) => int.checked_mul(whole),
            };
            if let Some(result) = exact {
                return Some(Value::Int(result));
            }
        }
        let float = number_of(value)?;
        let raw = match self {
            Adjust::Plus(n) => float + n,
            Adjust::Minus(n) => float - n,
            Adjust::Times(n) => float * n,
        };
        // Rounded to 12 significant digits, as shown: binary floats make 0.7 + 0.1 come
        // out as 0.7999999999999999, which would refuse a candidate scoring 0.8.
        let rounded = if raw.is_finite() {
            format!("{raw:.11e}").parse().unwrap_or(raw)
        } else {
            raw
        };
        Some(Value::Float(rounded))
    }

    /// Returns the adjustment's number.
    pub fn number(self) -> f64 {
        match self {
            Adjust::Plus(n) | Adjust::Minus(n) | Adjust::Times(n) => n,
        }
    }

    /// Returns the adjustment's operator: `+`, `-` or `*`.
    pub fn symbol(self) -> &'static str {
        match self {
            Adjust::Plus(_) => "+",
            Adjust::Minus(_) => "-",
            Adjust::Times(_) => "*",
        }
    }
}

/// Shows `- 0.005`, `* 1.1`, `+ 1`.
impl fmt::Display for Adjust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.symbol(), self.number())
    }
}

/// Shows a literal as [`Value`] does, strings in double quotes; a stage as
/// `@production - 0.005` or `@production? - 0.005`.
impl fmt::Display for Rhs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rhs::Literal(Value::Str(s)) => write!(f, "{s:?}"),
            Rhs::Literal(value) => write!(f, "{value}"),
            Rhs::Stage {
                stage,
                adjust,
                if_held,
            } => {
                write!(f, "@{stage}{}", if *if_held { "?" } else { "" })?;
                match adjust {
                    Some(adjust) => write!(f, " {adjust}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Returns a number's value as a float (ints rounded to the nearest); `None` for other types.
pub(super) fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Int(int) => Some(*int as f64),
        Value::Float(f) => Some(*f),
        Value::Bool(_) | Value::Str(_) => None,
    }
}
