//! Parses filter expressions: a recursive-descent parser over the tokens of
//! [`super::lex`], with errors that point at a column.

use std::fmt;

use super::key::Key;
use super::lex::{SyntaxError, Tok, Token, tokenize};
use crate::error::Failure;
use crate::manifest::Value;

const GRAMMAR_HINT: &str = "write comparisons like metrics.acc > 0.8, join them with \
                            and/or/not, quote strings: tags.team == \"growth\"";

/// Deepest nesting of parentheses and `not`s accepted, so parsing cannot overflow the stack.
const MAX_DEPTH: usize = 100;

/// Most comparisons (and bare keys) accepted in one expression. A chain of `and`s or
/// `or`s is a tree as deep as it is long, which evaluating and dropping walk
/// recursively, so its length is bounded as nesting is.
const MAX_TERMS: usize = 1000;

/// Returns a parsed filter expression; test rows with [`Expr::matches`].
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub(super) node: Node,
}

/// One node of the expression tree.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    /// `key op value`; a literal written on the left has been moved right.
    Compare {
        key: Key,
        op: Op,
        value: Value,
    },
    /// A bare key: true when its value is the bool `true`.
    Truthy(Key),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
}

/// Returns a comparison operator of `--where` expressions and gates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`: greater than.
    Gt,
    /// `>=`: greater than or equal to.
    Ge,
    /// `<`: less than.
    Lt,
    /// `<=`: less than or equal to.
    Le,
    /// `==`: equal to.
    Eq,
    /// `!=`: not equal to.
    Ne,
}

impl Op {
    /// Returns the operator as written: `>`, `>=`, `<`, `<=`, `==` or `!=`.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// Returns the operator that holds with its operands swapped: `a < b` is `b > a`.
    fn flipped(self) -> Op {
        match self {
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Eq | Op::Ne => self,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl Expr {
    /// Parses a `--where` expression; errors name "--where expression".
    pub fn parse(text: &str) -> Result<Expr, Failure> {
        Expr::parse_as(text, "--where expression")
    }

    /// Parses an expression; a syntax error names `subject` (e.g. "gate of churn").
    ///
    /// The error is a usage failure whose message gives the column (characters, from 1)
    /// and shows the expression with a caret under the problem.
    pub fn parse_as(text: &str, subject: &str) -> Result<Expr, Failure> {
        let src: Vec<char> = text.chars().collect();
        if src.iter().all(|c| c.is_whitespace()) {
            return Err(Failure::usage(format!("{subject} is empty")).hint(GRAMMAR_HINT));
        }
        parse_src(&src)
            .map(|node| Expr { node })
            .map_err(|err| err.into_failure_with(subject, &src, GRAMMAR_HINT))
    }

    /// Returns the key of the expression's last term when that term is a bare key, not
    /// negated (`acc`, `x > 1 and acc`): the shape an unquoted `--where acc>0.85` leaves
    /// once the shell has taken `>0.85` as a redirect. (`not params.debug` is a common
    /// query of its own.)
    pub fn trailing_bare_key(&self) -> Option<&Key> {
        let mut node = &self.node;
        loop {
            match node {
                Node::Truthy(key) => return Some(key),
                Node::Compare { .. } | Node::Not(_) => return None,
                Node::And(_, last) | Node::Or(_, last) => node = last,
            }
        }
    }

    /// Returns the keys the expression mentions, in order of appearance, without repeats.
    pub fn keys(&self) -> Vec<Key> {
        fn walk(node: &Node, out: &mut Vec<Key>) {
            match node {
                Node::Compare { key, .. } | Node::Truthy(key) => {
                    if !out.contains(key) {
                        out.push(key.clone());
                    }
                }
                Node::Not(inner) => walk(inner, out),
                Node::And(a, b) | Node::Or(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.node, &mut out);
        out
    }
}

fn parse_src(src: &[char]) -> Result<Node, SyntaxError> {
    let mut parser = Parser {
        src,
        tokens: tokenize(src),
        i: 0,
        depth: 0,
        terms: 0,
        bare_key_at: None,
    };
    let node = parser.or()?;
    let next = parser.peek()?;
    match next.tok {
        Tok::End => Ok(node),
        Tok::Close => Err(SyntaxError::new(next.start, "')' has no matching '('")),
        _ => Err(parser.expected("'and', 'or' or the end of the expression")),
    }
}

struct Parser<'a> {
    src: &'a [char],
    tokens: Vec<Token>,
    /// Index of the next token; never moves past `End` or `Bad`.
    i: usize,
    /// Current nesting of parentheses and `not`s.
    depth: usize,
    /// Comparisons and bare keys read so far.
    terms: usize,
    /// Index of the token after the latest bare key, to suggest an operator there.
    bare_key_at: Option<usize>,
}

impl Parser<'_> {
    fn peek(&self) -> Result<&Token, SyntaxError> {
        let token = &self.tokens[self.i];
        match &token.tok {
            Tok::Bad(err) => Err(err.clone()),
            _ => Ok(token),
        }
    }

    fn text(&self, token: &Token) -> String {
        self.src[token.start..token.end].iter().collect()
    }

    /// Returns "expected WANT after 'PREV', found 'NEXT'" at the next token; after a bare
    /// key, an operator is expected too.
    fn expected(&self, want: &str) -> SyntaxError {
        let next = &self.tokens[self.i];
        if let Tok::Bad(err) = &next.tok {
            return err.clone();
        }
        let want = if self.bare_key_at == Some(self.i) {
            format!("an operator, {want}")
        } else {
            want.to_owned()
        };
        let after = match self.i.checked_sub(1) {
            Some(prev) => format!(" after '{}'", self.text(&self.tokens[prev])),
            None => String::new(),
        };
        let found = match next.tok {
            Tok::End => "the end of the expression".to_owned(),
            _ => format!("'{}'", self.text(next)),
        };
        SyntaxError::new(next.start, format!("expected {want}{after}, found {found}"))
    }

    fn nest(&mut self, at: usize) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SyntaxError::new(
                at,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Node, SyntaxError> {
        let mut node = self.and()?;
        while self.peek()?.tok == Tok::Or {
            self.i += 1;
            node = Node::Or(Box::new(node), Box::new(self.and()?));
        }
        Ok(node)
    }

    fn and(&mut self) -> Result<Node, SyntaxError> {
        let mut node = self.not()?;
        while self.peek()?.tok == Tok::And {
            self.i += 1;
            node = Node::And(Box::new(node), Box::new(self.not()?));
        }
        Ok(node)
    }

    fn not(&mut self) -> Result<Node, SyntaxError> {
        let token = self.peek()?;
        if token.tok != Tok::Not {
            return self.primary();
        }
        let at = token.start;
        self.i += 1;
        self.nest(at)?;
        let inner = self.not()?;
        self.depth -= 1;
        Ok(Node::Not(Box::new(inner)))
    }

    fn primary(&mut self) -> Result<Node, SyntaxError> {
        let token = self.peek()?.clone();
        if matches!(token.tok, Tok::Key(_) | Tok::Value(_)) {
            self.terms += 1;
            if self.terms > MAX_TERMS {
                return Err(SyntaxError::new(
                    token.start,
                    format!("more than {MAX_TERMS} comparisons in one expression"),
                ));
            }
        }
        match token.tok {
            Tok::Open => {
                self.i += 1;
                self.nest(token.start)?;
                let node = self.or()?;
                let next = self.peek()?;
                if next.tok == Tok::End {
                    let what = format!("the '(' at column {} is never closed", token.start + 1);
                    return Err(SyntaxError::new(next.start, what));
                }
                if next.tok != Tok::Close {
                    return Err(self.expected("'and', 'or' or ')'"));
                }
                self.i += 1;
                self.depth -= 1;
                Ok(node)
            }
            Tok::Key(key) => {
                self.i += 1;
                let Tok::Op(op) = self.peek()?.tok else {
                    self.bare_key_at = Some(self.i);
                    return Ok(Node::Truthy(key));
                };
                self.i += 1;
                let value = match self.peek()?.tok.clone() {
                    Tok::Value(value) => value,
                    Tok::Key(_) => {
                        let err = self.expected("a value");
                        return Err(SyntaxError::new(
                            err.column,
                            format!("{} (a key can only be compared with a value)", err.what),
                        ));
                    }
                    _ => return Err(self.expected("a value")),
                };
                self.i += 1;
                Ok(Node::Compare { key, op, value })
            }
            Tok::Value(value) => {
                self.i += 1;
                let Tok::Op(op) = self.peek()?.tok else {
                    return Err(self.expected("a comparison operator"));
                };
                self.i += 1;
                let Tok::Key(key) = self.peek()?.tok.clone() else {
                    return Err(self.expected("a key"));
                };
                self.i += 1;
                Ok(Node::Compare {
                    key,
                    op: op.flipped(),
                    value,
                })
            }
            _ => Err(self.expected("a key, a value or '('")),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::query::Namespace;
    use crate::testing::fuzz;

    fn metric(name: &str) -> Key {
        Key::new(Namespace::Metrics, name)
    }

    fn node(text: &str) -> Node {
        Expr::parse(text).expect("valid expression").node
    }

    /// Returns the 1-based column and the description of the syntax error in `text`.
    fn error(text: &str) -> (usize, String) {
        let src: Vec<char> = text.chars().collect();
        let err = parse_src(&src).expect_err("a syntax error");
        (err.column + 1, err.what)
    }

    #[test]
    fn example_parses_with_precedence() {
        let cmp = |ns, name: &str, op, value| Node::Compare {
            key: Key::new(ns, name),
            op,
            value,
        };
        let expected = Node::And(
            Box::new(Node::And(
                Box::new(cmp(Namespace::Metrics, "acc", Op::Gt, Value::Float(0.8))),
                Box::new(Node::Or(
                    Box::new(cmp(Namespace::Params, "lr", Op::Lt, Value::Float(0.01))),
                    Box::new(cmp(
                        Namespace::Tags,
                        "team",
                        Op::Eq,
                        Value::Str("growth".into()),
                    )),
                )),
            )),
            Box::new(Node::Not(Box::new(Node::Truthy(Key::new(
                Namespace::Params,
                "debug",
            ))))),
        );
        let text = concat!(
            r#"metrics.acc > 0.8 and (params.lr < 0.01 or tags.team == "growth")"#,
            " and not params.debug"
        );
        assert_eq!(node(text), expected);
        let symbols = r#"metrics.acc>0.8&&(params.lr<0.01||tags.team=="growth")&&!params.debug"#;
        assert_eq!(node(symbols), expected);
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(node("A AND NOT B OR C"), node("A and not B or C"));
        assert_eq!(node("x == TRUE"), node("x == true"));
        assert_eq!(node("Inf < x"), node("inf < x"));
    }

    #[test]
    fn literals_parse_to_typed_values() {
        let value = |text: &str| match node(&format!("x == {text}")) {
            Node::Compare { value, .. } => value,
            other => panic!("not a comparison: {other:?}"),
        };
        assert_eq!(value("3"), Value::Int(3));
        assert_eq!(value("-3"), Value::Int(-3));
        assert_eq!(value("0.5"), Value::Float(0.5));
        assert_eq!(value(".5"), Value::Float(0.5));
        assert_eq!(value("-1e-5"), Value::Float(-1e-5));
        assert_eq!(value("2E3"), Value::Float(2000.0));
        assert_eq!(value("99999999999999999999"), Value::Float(1e20));
        assert_eq!(value("inf"), Value::Float(f64::INFINITY));
        assert_eq!(value("-INF"), Value::Float(f64::NEG_INFINITY));
        assert!(matches!(value("NAN"), Value::Float(f) if f.is_nan()));
        assert_eq!(value("false"), Value::Bool(false));
        assert_eq!(
            value(r#""a \"q\" \\ 'b'""#),
            Value::Str(r#"a "q" \ 'b'"#.into())
        );
        assert_eq!(value(r"'it\'s'"), Value::Str("it's".into()));
        assert_eq!(value("''"), Value::Str(String::new()));
    }

    #[test]
    fn literal_on_the_left_flips_the_operator() {
        assert_eq!(node("0.8 < acc"), node("acc > 0.8"));
        assert_eq!(node("0.8 >= acc"), node("acc <= 0.8"));
        assert_eq!(node("'a' != tags.t"), node("tags.t != 'a'"));
    }

    #[test]
    fn keys_with_dots_backticks_and_aliases() {
        assert_eq!(
            node("params.model.depth"),
            Node::Truthy(Key::new(Namespace::Params, "model.depth"))
        );
        assert_eq!(node("val.loss"), Node::Truthy(metric("val.loss")));
        assert_eq!(node("metrics.val/loss"), Node::Truthy(metric("val/loss")));
        assert_eq!(
            node("param.`learning-rate`"),
            Node::Truthy(Key::new(Namespace::Params, "learning-rate"))
        );
        assert_eq!(node("`weird key`"), Node::Truthy(metric("weird key")));
        assert_eq!(node("`and`"), Node::Truthy(metric("and")));
        assert_eq!(node("info"), Node::Truthy(metric("info")));
        assert_eq!(node("foo.bar"), Node::Truthy(metric("foo.bar")));
    }

    #[test]
    fn keys_lists_each_key_once_in_order() {
        let expr = Expr::parse("b > 1 or (params.a and not b) or 2 < tags.c and params.a == 3")
            .expect("valid expression");
        let expected = vec![
            metric("b"),
            Key::new(Namespace::Params, "a"),
            Key::new(Namespace::Tags, "c"),
        ];
        assert_eq!(expr.keys(), expected);
    }

    #[test]
    fn error_message_shows_a_caret_under_the_column() {
        let err = Expr::parse("metrics.acc > and x").expect_err("syntax error");
        assert_eq!(
            err.message,
            "--where expression has a syntax error at column 15: expected a value after '>', \
             found 'and'\n  metrics.acc > and x\n                ^"
        );
        assert_eq!(err.kind, crate::error::Kind::Usage);
        assert_eq!(err.hint.as_deref(), Some(GRAMMAR_HINT));
        let err = Expr::parse_as("`ü`\t> 1 )", "gate of churn").expect_err("syntax error");
        assert_eq!(
            err.message,
            "gate of churn has a syntax error at column 9: ')' has no matching '('\n\
             \x20 `ü` > 1 )\n\
             \x20         ^"
        );
    }

    #[test]
    fn empty_expression_is_a_usage_error() {
        for text in ["", "   "] {
            let err = Expr::parse(text).expect_err("empty");
            assert_eq!(err.message, "--where expression is empty");
            assert_eq!(err.kind, crate::error::Kind::Usage);
        }
    }

    #[test]
    fn unexpected_end() {
        assert_eq!(
            error("metrics.acc >"),
            (
                14,
                "expected a value after '>', found the end of the expression".into()
            )
        );
        assert_eq!(
            error("a > 1 and  "),
            (
                10,
                "expected a key, a value or '(' after 'and', found the end of the expression"
                    .into()
            )
        );
        assert_eq!(
            error("not"),
            (
                4,
                "expected a key, a value or '(' after 'not', found the end of the expression"
                    .into()
            )
        );
        assert_eq!(
            error("0.8"),
            (
                4,
                "expected a comparison operator after '0.8', found the end of the expression"
                    .into()
            )
        );
        assert_eq!(
            error("0.8 <"),
            (
                6,
                "expected a key after '<', found the end of the expression".into()
            )
        );
    }

    #[test]
    fn unbalanced_parentheses() {
        assert_eq!(
            error("(a > 1"),
            (7, "the '(' at column 1 is never closed".into())
        );
        assert_eq!(
            error("a and (b or (c)  "),
            (16, "the '(' at column 7 is never closed".into())
        );
        assert_eq!(
            error("(a > 1 b)"),
            (8, "expected 'and', 'or' or ')' after '1', found 'b'".into())
        );
        assert_eq!(
            error("(acc gt 1)"),
            (
                6,
                "expected an operator, 'and', 'or' or ')' after 'acc', found 'gt'".into()
            )
        );
        assert_eq!(error("a > 1)"), (6, "')' has no matching '('".into()));
        assert_eq!(
            error("()"),
            (
                2,
                "expected a key, a value or '(' after '(', found ')'".into()
            )
        );
        assert_eq!(
            error(")"),
            (1, "expected a key, a value or '(', found ')'".into())
        );
    }

    #[test]
    fn unknown_operators_get_a_specific_hint() {
        for (text, col, op) in [
            ("a = 1", 3, "="),
            ("a => 1", 3, "=>"),
            ("a =< 1", 3, "=<"),
            ("a <> 1", 3, "<>"),
            ("a === 1", 3, "==="),
            ("a & b", 3, "&"),
            ("a | b", 3, "|"),
        ] {
            assert_eq!(
                error(text),
                (col, format!("'{op}' is not an operator")),
                "{text}"
            );
        }
        let err = Expr::parse("tags.team = 'x'").expect_err("single =");
        assert_eq!(
            err.hint.as_deref(),
            Some("use == to test equality: tags.team == \"growth\"")
        );
    }

    #[test]
    fn unterminated_strings_and_bad_escapes() {
        assert_eq!(
            error(r#"tags.team == "growth"#),
            (14, "unterminated string: no closing \"".into())
        );
        assert_eq!(
            error("tags.team == 'growth"),
            (14, "unterminated string: no closing '".into())
        );
        assert_eq!(
            error("params.`lr > 1"),
            (8, "unterminated key: no closing `".into())
        );
        assert_eq!(error(r"t == 'a\nb'"), (8, r"unknown escape '\n'".into()));
        assert_eq!(error(r"t == 'a\"), (8, r"unknown escape '\'".into()));
    }

    #[test]
    fn trailing_garbage_and_stray_characters() {
        assert_eq!(
            error("a > 1 b"),
            (
                7,
                "expected 'and', 'or' or the end of the expression after '1', found 'b'".into()
            )
        );
        let want = "expected an operator, 'and', 'or' or the end of the expression after 'acc', \
                    found 'gt'";
        assert_eq!(error("acc gt 0.8"), (5, want.into()));
        assert_eq!(
            error("a > 1 > 2"),
            (
                7,
                "expected 'and', 'or' or the end of the expression after '1', found '>'".into()
            )
        );
        assert_eq!(error("a > 1 ; b"), (7, "unexpected character ';'".into()));
        assert_eq!(error("a > 1.2.3"), (5, "'1.2.3' is not a number".into()));
        assert_eq!(error("a > 5fold"), (5, "'5fold' is not a number".into()));
        assert_eq!(error("a > -b"), (5, "unexpected character '-'".into()));
        assert_eq!(
            error("a > b"),
            (
                5,
                "expected a value after '>', found 'b' (a key can only be compared with a value)"
                    .into()
            )
        );
        assert_eq!(
            error("1 < 2"),
            (5, "expected a key after '<', found '2'".into())
        );
        assert_eq!(
            error("and a"),
            (1, "expected a key, a value or '(', found 'and'".into())
        );
        assert_eq!(
            error("params. > 1"),
            (8, "expected a key name after 'params.'".into())
        );
    }

    #[test]
    fn errors_report_the_leftmost_problem() {
        // The parser fails at '>' before the tokenizer reaches the unterminated string.
        assert_eq!(error("> 'abc").0, 1);
        // A bad token is reported where it stands, even as a trailing token.
        assert_eq!(error("a > 1 'x").0, 7);
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(error("tags.`é` == 'ü' x").0, 17);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}a{}", "(".repeat(1000), ")".repeat(1000));
        assert_eq!(error(&deep), (101, "nesting deeper than 100 levels".into()));
        let nots = "not ".repeat(1000) + "a";
        assert_eq!(error(&nots).0, 401);
        let fine = format!("{}a{}", "(".repeat(50), ")".repeat(50));
        assert_eq!(node(&fine), Node::Truthy(metric("a")));
    }

    #[test]
    fn a_long_chain_of_ors_overflowed_the_stack() {
        // 43,000 `a||` fit in one command-line argument, and the tree they made was so
        // deep that walking or dropping it overflowed the stack of `mreg runs`.
        let chain = vec!["a"; 43_000].join("||");
        let (column, what) = error(&chain);
        assert_eq!(what, "more than 1000 comparisons in one expression");
        assert_eq!(column, 1000 * 3 + 1);
        let longest = vec!["metrics.a > 1"; MAX_TERMS].join(" and ");
        let expr = Expr::parse(&longest).expect("at the limit");
        assert_eq!(expr.keys().len(), 1);
    }

    /// Expressions using every part of the grammar, for mutations to start from.
    const VALID: [&str; 4] = [
        "metrics.acc > 0.8 and (params.lr < 0.01 or tags.team == \"growth\")",
        "not `eval acc` and 0.5 <= metrics.f1",
        "tags.`a b` == 'a b' || !metrics.x && attr.status != 'failed'",
        "metrics.loss >= -inf or params.n == 007 or metrics.z == nan",
    ];

    #[test]
    fn the_seeds_of_the_mutations_parse() {
        for text in VALID {
            Expr::parse(text).expect("a valid expression");
        }
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn parsing_any_text_never_panics(text in any::<String>()) {
            if let Ok(expr) = Expr::parse(&text) {
                let _ = expr.keys();
            }
        }

        #[test]
        fn parsing_a_mutated_expression_never_panics(text in fuzz::mutated_one_of(&VALID)) {
            if let Ok(expr) = Expr::parse(&text) {
                let _ = expr.keys();
            }
        }
    }
}
