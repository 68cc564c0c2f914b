//! The tokens of filter expressions, and the syntax errors that point at a column.

use super::key::{Key, is_key_char, scan_key, scan_quoted, word_end};
use super::parse::Op;
use crate::error::Failure;
use crate::manifest::Value;

/// A syntax error: where (0-based character index), what, and maybe a specific hint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub(crate) column: usize,
    pub(crate) what: String,
    pub(crate) hint: Option<&'static str>,
}

impl SyntaxError {
    pub(crate) fn new(column: usize, what: impl Into<String>) -> SyntaxError {
        SyntaxError {
            column,
            what: what.into(),
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: &'static str) -> SyntaxError {
        self.hint = Some(hint);
        self
    }

    /// Returns the usage failure for this error in `src`: "SUBJECT has a syntax error at
    /// column N: WHAT", the source with a caret under the column, and the error's hint or
    /// else `default_hint`.
    pub(crate) fn into_failure_with(
        self,
        subject: &str,
        src: &[char],
        default_hint: &str,
    ) -> Failure {
        // Every character takes one column, so tabs and newlines show as spaces.
        let shown: String = src
            .iter()
            .map(|&c| {
                if c.is_whitespace() || c.is_control() {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        let message = format!(
            "{subject} has a syntax error at column {}: {}\n  {shown}\n  {}^",
            self.column + 1,
            self.what,
            " ".repeat(self.column),
        );
        Failure::usage(message).hint(self.hint.unwrap_or(default_hint))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Key(Key),
    Value(Value),
    Op(Op),
    And,
    Or,
    Not,
    Open,
    Close,
    End,
    /// A tokenizing error; reported only if the parser gets this far.
    Bad(SyntaxError),
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// Splits the source into tokens, ending with `End` or, at the first bad character, `Bad`.
pub(super) fn tokenize(src: &[char]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    let mut last_end = 0;
    loop {
        while src.get(pos).is_some_and(|c| c.is_whitespace()) {
            pos += 1;
        }
        if pos == src.len() {
            let (start, end) = (last_end, last_end);
            tokens.push(Token {
                tok: Tok::End,
                start,
                end,
            });
            return tokens;
        }
        match next_token(src, pos) {
            Ok((tok, end)) => {
                tokens.push(Token {
                    tok,
                    start: pos,
                    end,
                });
                (pos, last_end) = (end, end);
            }
            Err(err) => {
                tokens.push(Token {
                    tok: Tok::Bad(err),
                    start: pos,
                    end: pos,
                });
                return tokens;
            }
        }
    }
}

fn next_token(src: &[char], pos: usize) -> Result<(Tok, usize), SyntaxError> {
    let at = |i: usize| src.get(pos + i).copied();
    let not_op = |text: &str, hint: &'static str| {
        Err(SyntaxError::new(pos, format!("'{text}' is not an operator")).with_hint(hint))
    };
    let c = src[pos];
    let two = match (c, at(1)) {
        ('>', Some('=')) => Some(Tok::Op(Op::Ge)),
        ('<', Some('=')) => Some(Tok::Op(Op::Le)),
        ('=', Some('=')) if at(2) == Some('=') => return not_op("===", "use == to test equality"),
        ('=', Some('=')) => Some(Tok::Op(Op::Eq)),
        ('!', Some('=')) => Some(Tok::Op(Op::Ne)),
        ('&', Some('&')) => Some(Tok::And),
        ('|', Some('|')) => Some(Tok::Or),
        ('<', Some('>')) => return not_op("<>", "use != for 'not equal'"),
        ('=', Some('>')) => return not_op("=>", "use >= for 'at least'"),
        ('=', Some('<')) => return not_op("=<", "use <= for 'at most'"),
        _ => None,
    };
    if let Some(tok) = two {
        return Ok((tok, pos + 2));
    }
    let one = match c {
        '(' => Tok::Open,
        ')' => Tok::Close,
        '>' => Tok::Op(Op::Gt),
        '<' => Tok::Op(Op::Lt),
        '!' => Tok::Not,
        '=' => return not_op("=", "use == to test equality: tags.team == \"growth\""),
        '&' => return not_op("&", "use && or and"),
        '|' => return not_op("|", "use || or or"),
        '"' | '\'' => {
            let (text, end) = scan_quoted(src, pos)?;
            return Ok((Tok::Value(Value::Str(text)), end));
        }
        '`' => {
            let (key, end) = scan_key(src, pos)?;
            return Ok((Tok::Key(key), end));
        }
        c if c.is_ascii_alphabetic() || c == '_' => return word(src, pos),
        c if c.is_ascii_digit() || c == '.' || c == '-' => {
            let (value, end) = scan_number(src, pos)?;
            return Ok((Tok::Value(value), end));
        }
        c => return Err(SyntaxError::new(pos, format!("unexpected character '{c}'"))),
    };
    Ok((one, pos + 1))
}

/// Scans a keyword or a key starting with a letter or `_`.
fn word(src: &[char], pos: usize) -> Result<(Tok, usize), SyntaxError> {
    let end = word_end(src, pos);
    let word: String = src[pos..end].iter().collect();
    let tok = match word.to_ascii_lowercase().as_str() {
        "and" => Tok::And,
        "or" => Tok::Or,
        "not" => Tok::Not,
        "true" => Tok::Value(Value::Bool(true)),
        "false" => Tok::Value(Value::Bool(false)),
        "nan" => Tok::Value(Value::Float(f64::NAN)),
        "inf" => Tok::Value(Value::Float(f64::INFINITY)),
        _ => {
            let (key, end) = scan_key(src, pos)?;
            return Ok((Tok::Key(key), end));
        }
    };
    Ok((tok, end))
}

/// Scans a number: `-`, digits, a fraction, an exponent; or `-inf`.
pub(crate) fn scan_number(src: &[char], start: usize) -> Result<(Value, usize), SyntaxError> {
    let digits_from = |i: usize| word_end_by(src, i, char::is_ascii_digit);
    let mut i = start + usize::from(src[start] == '-');
    if i > start && word_text(src, i).eq_ignore_ascii_case("inf") {
        return Ok((Value::Float(f64::NEG_INFINITY), word_end(src, i)));
    }
    let mantissa = i;
    i = digits_from(i);
    let mut is_float = false;
    if src.get(i) == Some(&'.') {
        is_float = true;
        i = digits_from(i + 1);
    }
    if !src[mantissa..i].iter().any(char::is_ascii_digit) {
        let what = format!("unexpected character '{}'", src[start]);
        return Err(SyntaxError::new(start, what));
    }
    if matches!(src.get(i), Some('e' | 'E')) {
        let sign = usize::from(matches!(src.get(i + 1), Some('+' | '-')));
        if src.get(i + 1 + sign).is_some_and(char::is_ascii_digit) {
            is_float = true;
            i = digits_from(i + 1 + sign);
        }
    }
    let text: String = src[start..i].iter().collect();
    if src.get(i).is_some_and(|&c| is_key_char(c)) {
        let whole: String = src[start..word_end(src, i)].iter().collect();
        return Err(SyntaxError::new(
            start,
            format!("'{whole}' is not a number"),
        ));
    }
    let value = match text.parse::<i64>() {
        Ok(int) if !is_float => Value::Int(int),
        // An integer too large for i64 is still a number.
        _ => Value::Float(
            text.parse()
                .map_err(|_| SyntaxError::new(start, format!("'{text}' is not a number")))?,
        ),
    };
    Ok((value, i))
}

fn word_end_by(src: &[char], start: usize, keep: impl Fn(&char) -> bool) -> usize {
    src[start..]
        .iter()
        .position(|c| !keep(c))
        .map_or(src.len(), |n| start + n)
}

fn word_text(src: &[char], start: usize) -> String {
    src[start..word_end(src, start)].iter().collect()
}
