//! Row filters and sort keys: `--where`, `--sort` and `--columns` of `mreg runs`, and gates.
//!
//! # Grammar
//!
//! ```text
//! expr    = and ( ("or" | "||") and )*
//! and     = unary ( ("and" | "&&") unary )*
//! unary   = ("not" | "!") unary | primary
//! primary = "(" expr ")" | KEY OP LITERAL | LITERAL OP KEY | KEY
//! OP      = ">" | ">=" | "<" | "<=" | "==" | "!="
//! ```
//!
//! - **Keys** are `NAMESPACE.NAME` with namespace `params`, `metrics`, `tags` or `attributes`
//!   (also `param`, `metric`, `tag`, `attribute`, `attr`; lowercase only). The name may hold
//!   dots: `params.model.depth` is key `model.depth` of `params`. A key without a known
//!   namespace prefix is a metric: `acc` and `val.loss` mean `metrics.acc`, `metrics.val.loss`.
//!   Keys are made of ASCII letters, digits, `_`, `.` and `/`, starting with a letter or `_`;
//!   any other name goes in backticks: ``params.`learning-rate` ``, `` `weird key` `` (a metric).
//!   In expressions the words below are keywords, not keys; write `` `and` `` for a metric
//!   named `and`. In `--sort` and `--columns`, which hold a single key, they are plain keys.
//! - **Literals**: integers, floats (`0.8`, `-1`, `1e-5`), `nan`, `inf`, `-inf`, `true`, `false`
//!   (these words and `and`/`or`/`not` in any case), and strings in `"…"` or `'…'`. Inside
//!   quotes and backticks, `\"`, `\'`, `` \` `` and `\\` are the only escapes.
//! - **Precedence**: `not` binds tighter than `and`, which binds tighter than `or`.
//!
//! # Semantics
//!
//! - A missing key makes its comparison false, whatever the operator (`!=` included), never
//!   an error. `not tags.team == "a"` therefore matches runs without a team tag, while
//!   `tags.team != "a"` does not.
//! - Numbers compare numerically, ints and floats mixed, exactly (two ints as `i64`).
//!   Strings compare by bytes, so RFC 3339 times compare chronologically. Bools support only
//!   `==` and `!=`; ordering them is false. Any other pairing of types is false.
//! - NaN: every comparison with a NaN is false, `!=` included, except `KEY == nan`, which is
//!   true exactly when the value is NaN (to find diverged runs: `metrics.loss == nan`).
//! - A bare key is true only when its value is the bool `true` (not `1`, not `"yes"`), so
//!   `not params.debug` matches runs where `debug` is false, missing or not a bool.
//!
//! Sorting ([`compare_for_sort`]) puts numbers, then strings, then bools, then NaN, then
//! missing values; the direction reverses the order within each group only.

mod eval;
mod key;
mod lex;
mod parse;

pub(crate) use eval::compare;
pub use eval::{Fields, compare_for_sort};
pub use key::{Key, Namespace, SortKey, parse_key};
pub(crate) use key::{is_key_char, scan_key, scan_quoted, word_end};
pub(crate) use lex::{SyntaxError, scan_number};
pub use parse::{Expr, Op};
