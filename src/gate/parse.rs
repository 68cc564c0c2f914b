//! Parses gates (`acc>0.85`, `acc>=@production-0.005`), with errors that point at a column.

use super::expr::{Adjust, Gate, Rhs, number_of};
use crate::error::Failure;
use crate::manifest::Value;
use crate::names::{reads_as_version, stage_end};
use crate::query::{
    Key, Op, SyntaxError, is_key_char, scan_key, scan_number, scan_quoted, word_end,
};

const GATE_HINT: &str = "a gate is one comparison of a key with a value or a stage: 'acc>0.85', \
                         'tags.team==\"growth\"', 'acc>=@production-0.005'";
const EMPTY_HINT: &str = "write a gate like 'acc>0.85' or 'acc>=@production-0.005'";
const KEY_FIRST_HINT: &str = "a gate starts with the key it tests, then an operator and a value: \
                              'acc>0.85'";
const NEGATE_HINT: &str = "flip the operator instead: 'acc<=0.85' rather than 'not acc>0.85'";
const QUOTE_HINT: &str = "add an operator and a value, and quote the whole gate, since an \
                          unquoted > is a shell redirect: --gate 'acc>0.85'";
const MISSING_OP_HINT: &str = "put an operator (>, >=, <, <=, == or !=) between the key and the \
                               value: 'acc>0.85'";
const VALUE_HINT: &str = "compare with a number, a quoted string, true/false, or the version in \
                          a stage: 'acc>=@production'";
const NAN_HINT: &str = "nothing is greater than, less than or equal to NaN; a gate already \
                        fails when a value is NaN";
const STAGE_HINT: &str = "stage names are lowercase letters, digits and '_', in words joined by \
                          '-', each starting with a letter: @production, @pre-prod, @canary_2";
const VERSION_LIKE_HINT: &str = "a stage cannot be named latest, v3, 3 or like a hash (deadbeef), \
                                 which read as versions; stages have names like @production";
const ADJUST_HINT: &str = "adjust the stage's value with +, - or * and a non-negative number: \
                           @production-0.005, @production*1.1 (to divide by 2, multiply by 0.5)";
const SEVERAL_HINT: &str = "give several gates instead (several --gate flags); all must hold: \
                            --gate 'acc>0.8' --gate 'f1>0.7'";

impl Gate {
    /// Returns the gate parsed from `text`, such as `acc>0.85` or `acc >= @production - 0.005`.
    ///
    /// A syntax error is a usage failure naming the gate, with the column (characters, from
    /// 1), the gate with a caret under the problem, and a hint.
    pub fn parse(text: &str) -> Result<Gate, Failure> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Failure::usage("the gate is empty").hint(EMPTY_HINT));
        }
        let src: Vec<char> = text.chars().collect();
        let (key, op, rhs) = parse_src(&src)
            .map_err(|err| err.into_failure_with(&subject(text), &src, GATE_HINT))?;
        Ok(Gate {
            text: text.to_owned(),
            key,
            op,
            rhs,
        })
    }
}

/// Returns how a failure names the gate: `gate 'acc>'`, or Rust-quoted when it holds a `'`.
fn subject(text: &str) -> String {
    if text.contains('\'') || text.chars().any(char::is_control) {
        format!("gate {text:?}")
    } else {
        format!("gate '{text}'")
    }
}

fn skip_ws(src: &[char], mut pos: usize) -> usize {
    while src.get(pos).is_some_and(|c| c.is_whitespace()) {
        pos += 1;
    }
    pos
}

/// Returns the text of the token at `pos`, for "found '…'": a run of key characters, a
/// two-character operator, or one character.
fn token_at(src: &[char], pos: usize) -> String {
    let Some(&c) = src.get(pos) else {
        return String::new();
    };
    if is_key_char(c) && c != '/' {
        return src[pos..word_end(src, pos)].iter().collect();
    }
    let pair: String = src[pos..src.len().min(pos + 2)].iter().collect();
    if matches!(
        pair.as_str(),
        ">=" | "<=" | "==" | "!=" | "&&" | "||" | "=>" | "=<" | "<>"
    ) {
        return pair;
    }
    c.to_string()
}

/// Returns "found 'TOKEN'" or "found the end of the gate".
fn found(src: &[char], pos: usize) -> String {
    if pos >= src.len() {
        "found the end of the gate".to_owned()
    } else {
        format!("found '{}'", token_at(src, pos))
    }
}

/// Returns the key, operator and right-hand side of a gate, or the leftmost syntax error.
pub(super) fn parse_src(src: &[char]) -> Result<(Key, Op, Rhs), SyntaxError> {
    let start = skip_ws(src, 0);
    if start == src.len() {
        return Err(SyntaxError::new(start, "the gate is empty").with_hint(EMPTY_HINT));
    }
    let (key, key_end) = key_at(src, start)?;
    let op_at = skip_ws(src, key_end);
    let key_text: String = src[start..key_end].iter().collect();
    let op_follows = src.get(op_at).is_none_or(|&c| "<>=!".contains(c));
    if key_text.eq_ignore_ascii_case("not") && !op_follows {
        let what = "a gate cannot be negated with 'not'";
        return Err(SyntaxError::new(start, what).with_hint(NEGATE_HINT));
    }
    let (op, op_end) = op_at_pos(src, op_at, key_end, &key_text)?;
    let rhs_at = skip_ws(src, op_end);
    let (rhs, rhs_end) = rhs_at_pos(src, rhs_at, op_end, op)?;
    let rest = skip_ws(src, rhs_end);
    if rest < src.len() {
        return Err(trailing(src, rest, &src[rhs_at..rhs_end], &rhs));
    }
    Ok((key, op, rhs))
}

fn key_at(src: &[char], pos: usize) -> Result<(Key, usize), SyntaxError> {
    let c = src[pos];
    if c == '!' && src.get(pos + 1) != Some(&'=') {
        let what = "a gate cannot be negated with '!'";
        return Err(SyntaxError::new(pos, what).with_hint(NEGATE_HINT));
    }
    if c != '`' && !c.is_ascii_alphabetic() && c != '_' {
        let what = format!("expected a key, {}", found(src, pos));
        return Err(SyntaxError::new(pos, what).with_hint(KEY_FIRST_HINT));
    }
    scan_key(src, pos)
}

/// Returns the operator at `pos`; `key_end` is where an error at the end points.
fn op_at_pos(
    src: &[char],
    pos: usize,
    key_end: usize,
    key_text: &str,
) -> Result<(Op, usize), SyntaxError> {
    let at = |i: usize| src.get(pos + i).copied();
    let not_op = |text: &str, hint: &'static str| {
        Err(SyntaxError::new(pos, format!("'{text}' is not an operator")).with_hint(hint))
    };
    let (op, len) = match (at(0), at(1)) {
        (Some('>'), Some('=')) => (Op::Ge, 2),
        (Some('<'), Some('=')) => (Op::Le, 2),
        (Some('='), Some('=')) if at(2) == Some('=') => {
            return not_op("===", "use == to test equality: 'acc==0.85'");
        }
        (Some('='), Some('=')) => (Op::Eq, 2),
        (Some('!'), Some('=')) => (Op::Ne, 2),
        (Some('<'), Some('>')) => return not_op("<>", "use != for 'not equal': 'acc!=0.85'"),
        (Some('='), Some('>')) => return not_op("=>", "use >= for 'at least': 'acc>=0.85'"),
        (Some('='), Some('<')) => return not_op("=<", "use <= for 'at most': 'acc<=0.85'"),
        (Some('>'), _) => (Op::Gt, 1),
        (Some('<'), _) => (Op::Lt, 1),
        (Some('='), _) => return not_op("=", "use == to test equality: 'acc==0.85'"),
        (None, _) => {
            let what =
                format!("expected an operator after '{key_text}', found the end of the gate");
            return Err(SyntaxError::new(key_end, what).with_hint(QUOTE_HINT));
        }
        (Some(_), _) => {
            let what = format!(
                "expected an operator after '{key_text}', {}",
                found(src, pos)
            );
            return Err(SyntaxError::new(pos, what).with_hint(MISSING_OP_HINT));
        }
    };
    Ok((op, pos + len))
}

/// Returns the right-hand side at `pos`; `op_end` is where an error at the end points.
fn rhs_at_pos(
    src: &[char],
    pos: usize,
    op_end: usize,
    op: Op,
) -> Result<(Rhs, usize), SyntaxError> {
    let expected = |at: usize| {
        let what = format!(
            "expected a number, a string, true/false or @STAGE after '{op}', {}",
            found(src, at)
        );
        SyntaxError::new(at, what).with_hint(VALUE_HINT)
    };
    let Some(&c) = src.get(pos) else {
        return Err(expected(op_end));
    };
    let (value, end) = match c {
        '@' => return stage_at(src, pos),
        '"' | '\'' => {
            let (text, end) = scan_quoted(src, pos)?;
            (Value::Str(text), end)
        }
        c if c.is_ascii_digit() || c == '.' || c == '-' => scan_number(src, pos)?,
        c if c.is_ascii_alphabetic() || c == '_' => {
            let end = word_end(src, pos);
            let word: String = src[pos..end].iter().collect();
            let value = match word.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "inf" => Value::Float(f64::INFINITY),
                "nan" => {
                    let what = "a gate cannot compare with NaN";
                    return Err(SyntaxError::new(pos, what).with_hint(NAN_HINT));
                }
                _ => return Err(expected(pos)),
            };
            (value, end)
        }
        _ => return Err(expected(pos)),
    };
    Ok((Rhs::Literal(value), end))
}

/// Returns the `@STAGE [ADJUST]` at `pos`, which holds the `@`.
fn stage_at(src: &[char], pos: usize) -> Result<(Rhs, usize), SyntaxError> {
    let start = skip_ws(src, pos + 1);
    let end = stage_end(src, start);
    // The run a user meant as the name: letters of any case, digits, '_', and '-' + letter.
    let mut meant = start;
    while let Some(&c) = src.get(meant) {
        let joins = c == '-' && src.get(meant + 1).is_some_and(char::is_ascii_alphabetic);
        if !(c.is_ascii_alphanumeric() || c == '_' || joins) {
            break;
        }
        meant += 1;
    }
    if meant == start {
        let what = format!("expected a stage name after '@', {}", found(src, start));
        let at = if start < src.len() { start } else { pos + 1 };
        return Err(SyntaxError::new(at, what).with_hint(STAGE_HINT));
    }
    let name: String = src[start..meant].iter().collect();
    if end != meant {
        let what = format!("'{name}' is not a stage name");
        return Err(SyntaxError::new(start, what).with_hint(STAGE_HINT));
    }
    if reads_as_version(&name) {
        let what =
            format!("'{name}' is not a stage name: it reads as a version, as in churn@{name}");
        return Err(SyntaxError::new(start, what).with_hint(VERSION_LIKE_HINT));
    }
    // `@production?`: the gate passes while the stage holds no version.
    let if_held = src.get(end) == Some(&'?');
    let end = if if_held { end + 1 } else { end };
    let sign_at = skip_ws(src, end);
    let Some(&sign @ ('+' | '-' | '*')) = src.get(sign_at) else {
        // Whatever follows is reported as trailing text.
        return Ok((
            Rhs::Stage {
                stage: name,
                adjust: None,
                if_held,
            },
            end,
        ));
    };
    let num_at = skip_ws(src, sign_at + 1);
    if !src
        .get(num_at)
        .is_some_and(|&c| c.is_ascii_digit() || c == '.')
    {
        let what = format!("expected a number after '{sign}', {}", found(src, num_at));
        let at = if num_at < src.len() {
            num_at
        } else {
            sign_at + 1
        };
        return Err(SyntaxError::new(at, what).with_hint(ADJUST_HINT));
    }
    let (value, num_end) = scan_number(src, num_at)?;
    let Some(n) = number_of(&value).filter(|n| n.is_finite()) else {
        let text: String = src[num_at..num_end].iter().collect();
        let what = format!("'{text}' is too large to adjust by");
        return Err(SyntaxError::new(num_at, what).with_hint(ADJUST_HINT));
    };
    let adjust = match sign {
        '+' => Adjust::Plus(n),
        '-' => Adjust::Minus(n),
        _ => Adjust::Times(n),
    };
    let rhs = Rhs::Stage {
        stage: name,
        adjust: Some(adjust),
        if_held,
    };
    Ok((rhs, num_end))
}

/// Returns the error for text after a complete gate at `pos`; `last` is the right-hand side
/// as written.
fn trailing(src: &[char], pos: usize, last: &[char], rhs: &Rhs) -> SyntaxError {
    let token = token_at(src, pos);
    if matches!(
        token.to_ascii_lowercase().as_str(),
        "and" | "or" | "&&" | "||"
    ) {
        let what = format!("a gate is one comparison, so '{token}' cannot join another");
        return SyntaxError::new(pos, what).with_hint(SEVERAL_HINT);
    }
    let last: String = last.iter().collect();
    if matches!(rhs, Rhs::Stage { adjust: None, .. }) {
        let what =
            format!("expected +, -, * or the end of the gate after '{last}', found '{token}'");
        return SyntaxError::new(pos, what).with_hint(ADJUST_HINT);
    }
    let what = format!("expected the end of the gate after '{last}', found '{token}'");
    SyntaxError::new(pos, what).with_hint(GATE_HINT)
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
