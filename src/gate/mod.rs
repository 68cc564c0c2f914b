//! Promotion gates: one comparison each that a model version must pass to be promoted.
//!
//! # Grammar
//!
//! ```text
//! gate   = KEY OP rhs
//! OP     = ">" | ">=" | "<" | "<=" | "==" | "!="
//! rhs    = LITERAL | "@" STAGE [ "?" ] [ ADJUST ]
//! ADJUST = ("+" | "-" | "*") NUMBER
//! ```
//!
//! - **Keys and literals** are those of `--where` ([`crate::query`]): a bare name is a
//!   metric (`acc` is `metrics.acc`), other names go in backticks, strings in quotes.
//!   `nan` is refused: nothing compares with NaN.
//! - **Stages** ([`crate::names::is_stage_name`]) are lowercase words of
//!   letters, digits and `_`, each starting with a letter, joined by `-`: `production`,
//!   `pre-prod`, `canary_2`. `@STAGE` stands for the value under the same key of the
//!   version holding that stage. `@STAGE?` is the same, except that the gate passes
//!   while the stage holds no version (the first promotion of a pipeline).
//! - **Adjustments** apply to that value: `+ n`, `- n` or `* n`, where n is a non-negative
//!   number. In `@pre-prod-0.005` the stage is `pre-prod`, since no word of a stage name
//!   starts with a digit, and `-0.005` is the tolerance.
//! - Whitespace may stand between any two tokens. A gate has no `and`/`or`: give several
//!   gates, which must all hold.
//!
//! On a shell command line, quote each gate: an unquoted `>` or `<` is a redirect.
//!
//! ```text
//! --gate 'acc>0.85'                          more than 0.85
//! --gate 'metrics.val.loss <= 0.3'
//! --gate 'tags.team == "growth"'
//! --gate 'acc>=@production-0.005'            at most 0.005 below the production version
//! --gate 'acc>=@production?-0.005'           the same, or production is still empty
//! --gate 'latency_ms <= @production * 1.1'   at most 10% slower than production
//! --gate 'params.epochs >= @pre-prod+1'      stage pre-prod, tolerance +1
//! ```
//!
//! # Evaluation
//!
//! [`evaluate`] compares as `--where` does (numbers exactly, ints and
//! floats mixed; strings by bytes; bools only with `==` and `!=`; other pairings of types
//! fail) but never passes silently: a missing key, a NaN, a stage holding no version
//! (unless written `@STAGE?`), or an adjustment of a value that is not a number fails the
//! gate with a sentence saying why.

mod eval;
mod expr;
mod parse;

pub use eval::{Check, Subject, evaluate};
pub use expr::{Adjust, Gate, Rhs};
