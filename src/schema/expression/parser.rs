//! The grammar: Postgres's operators by precedence and the operand forms that defaults, checks,
//! index expressions and predicates use, rewritten as Postgres stores them (`IN`, `BETWEEN`).

use std::fmt::Write as _;

use super::cursor::Parser;
use super::error::ParseError;
use super::lexer::{tokenize, Token};
use super::tree::Expr;

pub fn parse(sql: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(sql)?;
    let mut p = Parser { tokens: &tokens, pos: 0 };
    let e = p.expr(0)?;
    if p.pos != tokens.len() {
        return Err(p.error("unexpected text after the expression"));
    }
    Ok(e)
}

/// Binding powers, after Postgres's operator precedence table (lowest first).
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const IS: u8 = 4;
const COMPARISON: u8 = 5;
const LIKE_IN: u8 = 6;
const OTHER_OP: u8 = 7;
const ADD: u8 = 8;
const MUL: u8 = 9;
const EXP: u8 = 10;
const COLLATE: u8 = 11;
const UNARY: u8 = 12;
const SUBSCRIPT: u8 = 13;
const CAST: u8 = 14;

/// Words that may start a multi-word type name after the first one.
const TYPE_WORDS: &[&str] = &["varying", "precision", "with", "without", "time", "zone"];
/// Names that, followed by a string, make a typed literal (`interval '1 day'`).
const TYPED_LITERALS: &[&str] = &[
    "date",
    "time",
    "timestamp",
    "timestamptz",
    "interval",
    "int",
    "integer",
    "bigint",
    "numeric",
    "text",
    "boolean",
    "bool",
    "json",
    "jsonb",
    "uuid",
    "inet",
    "cidr",
    "bytea",
];

fn binary_power(op: &str) -> u8 {
    match op {
        "=" | "<" | ">" | "<=" | ">=" | "<>" | "!=" => COMPARISON,
        "+" | "-" => ADD,
        "*" | "/" | "%" => MUL,
        "^" => EXP,
        _ => OTHER_OP,
    }
}

fn canonical_op(op: &str) -> String {
    match op {
        "!=" => "<>".into(),
        other => other.to_string(),
    }
}

impl<'t> Parser<'t> {
    pub(super) fn expr(&mut self, min: u8) -> Result<Expr, ParseError> {
        let mut left = self.prefix()?;
        while let Some(token) = self.peek() {
            // `NOT` before IN / LIKE / BETWEEN / ILIKE / SIMILAR negates them.
            let negated = token.is_keyword("not")
                && self
                    .peek_at(1)
                    .is_some_and(|t| ["in", "like", "ilike", "between", "similar"].iter().any(|w| t.is_keyword(w)));
            let word = if negated { self.peek_at(1) } else { Some(token) };
            match word {
                Some(Token::Cast) if CAST >= min => {
                    self.pos += 1;
                    let type_name = self.type_name()?;
                    left = Expr::Cast {
                        operand: Box::new(left),
                        type_name,
                    };
                }
                Some(Token::LBracket) if SUBSCRIPT >= min => {
                    self.pos += 1;
                    let index = self.expr(0)?;
                    self.expect(&Token::RBracket)?;
                    left = Expr::Subscript {
                        base: Box::new(left),
                        index: Box::new(index),
                    };
                }
                Some(t) if t.is_keyword("collate") && COLLATE >= min => {
                    self.pos += 1;
                    let mut collation = self.name()?;
                    while self.eat(&Token::Dot) {
                        collation = self.name()?;
                    }
                    left = Expr::Collate {
                        operand: Box::new(left),
                        collation,
                    };
                }
                Some(t) if t.is_keyword("and") && AND >= min => {
                    self.pos += 1;
                    let right = self.expr(AND + 1)?;
                    left = flatten(left, right, true);
                }
                Some(t) if t.is_keyword("or") && OR >= min => {
                    self.pos += 1;
                    let right = self.expr(OR + 1)?;
                    left = flatten(left, right, false);
                }
                Some(t) if (t.is_keyword("isnull") || t.is_keyword("notnull")) && IS >= min => {
                    self.pos += 1;
                    let test = if t.is_keyword("isnull") { "null" } else { "not null" };
                    left = Expr::Is {
                        operand: Box::new(left),
                        test: test.into(),
                    };
                }
                Some(t) if t.is_keyword("is") && IS >= min => {
                    self.pos += 1;
                    let not = self.eat_keyword("not");
                    if self.eat_keyword("distinct") {
                        self.expect_keyword("from")?;
                        let right = self.expr(IS + 1)?;
                        let distinct = Expr::Distinct {
                            left: Box::new(left),
                            right: Box::new(right),
                        };
                        left = if not { Expr::Not(Box::new(distinct)) } else { distinct };
                    } else {
                        let what = self.name()?;
                        if !matches!(what.as_str(), "null" | "true" | "false" | "unknown") {
                            return Err(self.error("expected NULL, TRUE, FALSE or UNKNOWN after IS"));
                        }
                        let test = if not { format!("not {what}") } else { what };
                        left = Expr::Is {
                            operand: Box::new(left),
                            test,
                        };
                    }
                }
                Some(t) if t.is_keyword("in") && LIKE_IN >= min => {
                    self.pos += if negated { 2 } else { 1 };
                    self.expect(&Token::LParen)?;
                    let items = self.list(&Token::RParen)?;
                    // Postgres stores `x IN (a, b)` as `x = ANY (ARRAY[a, b])`.
                    left = Expr::Quantified {
                        op: if negated { "<>".into() } else { "=".into() },
                        left: Box::new(left),
                        all: negated,
                        right: Box::new(Expr::Array(items)),
                    };
                }
                Some(t) if t.is_keyword("between") && LIKE_IN >= min => {
                    self.pos += if negated { 2 } else { 1 };
                    self.eat_keyword("symmetric");
                    let low = self.expr(OTHER_OP)?;
                    self.expect_keyword("and")?;
                    let high = self.expr(OTHER_OP)?;
                    // Postgres stores BETWEEN as two comparisons.
                    let (lo_op, hi_op) = if negated { ("<", ">") } else { (">=", "<=") };
                    let a = binary(lo_op, left.clone(), low);
                    let b = binary(hi_op, left, high);
                    left = if negated { Expr::Or(vec![a, b]) } else { Expr::And(vec![a, b]) };
                }
                Some(t) if (t.is_keyword("like") || t.is_keyword("ilike")) && LIKE_IN >= min => {
                    self.pos += if negated { 2 } else { 1 };
                    let right = self.expr(LIKE_IN + 1)?;
                    // Postgres prints LIKE as its operator.
                    let op = match (t.is_keyword("ilike"), negated) {
                        (false, false) => "~~",
                        (false, true) => "!~~",
                        (true, false) => "~~*",
                        (true, true) => "!~~*",
                    };
                    left = binary(op, left, right);
                    if self.eat_keyword("escape") {
                        let escape = self.expr(LIKE_IN + 1)?;
                        left = Expr::Func {
                            name: "escape".into(),
                            args: vec![left, escape],
                            distinct: false,
                        };
                    }
                }
                Some(t) if t.is_keyword("similar") && LIKE_IN >= min => {
                    self.pos += if negated { 2 } else { 1 };
                    self.expect_keyword("to")?;
                    let right = self.expr(LIKE_IN + 1)?;
                    left = binary(if negated { "!~ similar" } else { "~ similar" }, left, right);
                }
                Some(t) if t.is_keyword("at") && COLLATE >= min => {
                    self.pos += 1;
                    self.expect_keyword("time")?;
                    self.expect_keyword("zone")?;
                    let zone = self.expr(COLLATE + 1)?;
                    left = Expr::Func {
                        name: "timezone".into(),
                        args: vec![zone, left],
                        distinct: false,
                    };
                }
                Some(Token::Op(op)) if !negated => {
                    let power = binary_power(op);
                    if power < min {
                        break;
                    }
                    self.pos += 1;
                    let quantifier = match self.peek() {
                        Some(t)
                            if (t.is_keyword("any") || t.is_keyword("some") || t.is_keyword("all"))
                                && self.peek_at(1) == Some(&Token::LParen) =>
                        {
                            self.pos += 2;
                            Some(t.is_keyword("all"))
                        }
                        _ => None,
                    };
                    if let Some(all) = quantifier {
                        let right = self.expr(0)?;
                        self.expect(&Token::RParen)?;
                        left = Expr::Quantified {
                            op: canonical_op(op),
                            left: Box::new(left),
                            all,
                            right: Box::new(right),
                        };
                    } else {
                        let right = self.expr(power + 1)?;
                        left = binary(op, left, right);
                    }
                }
                _ => break,
            }
        }
        Ok(left)
    }

    fn prefix(&mut self) -> Result<Expr, ParseError> {
        let token = self.next()?;
        Ok(match token {
            Token::Str(s) => Expr::Str(s.clone()),
            Token::Num(n) => Expr::Num(n.clone()),
            Token::Op(op) if op == "-" || op == "+" || op == "~" => {
                let operand = self.expr(UNARY)?;
                if op == "+" {
                    operand
                } else {
                    Expr::Unary {
                        op: op.clone(),
                        operand: Box::new(operand),
                    }
                }
            }
            Token::Op(op) if op == "*" => Expr::Star,
            Token::LParen => {
                let items = self.list(&Token::RParen)?;
                match <[Expr; 1]>::try_from(items) {
                    Ok([single]) => single,
                    Err(items) => Expr::Row(items),
                }
            }
            Token::Quoted(name) => self.named(name.clone())?,
            Token::Ident(word) => match word.as_str() {
                "null" => Expr::Null,
                "true" => Expr::Bool(true),
                "false" => Expr::Bool(false),
                "not" => Expr::Not(Box::new(self.expr(NOT)?)),
                "case" => self.case()?,
                "array" if self.peek() == Some(&Token::LBracket) => {
                    self.pos += 1;
                    self.array()?
                }
                "row" if self.peek() == Some(&Token::LParen) => {
                    self.pos += 1;
                    Expr::Row(self.list(&Token::RParen)?)
                }
                "cast" if self.peek() == Some(&Token::LParen) => {
                    self.pos += 1;
                    let operand = self.expr(0)?;
                    self.expect_keyword("as")?;
                    let type_name = self.type_name()?;
                    self.expect(&Token::RParen)?;
                    Expr::Cast {
                        operand: Box::new(operand),
                        type_name,
                    }
                }
                "position" if self.peek() == Some(&Token::LParen) => {
                    self.pos += 1;
                    // POSITION(a IN b): parse `a` above IN so the IN is not read as a list test.
                    let needle = self.expr(LIKE_IN + 1)?;
                    if self.eat_keyword("in") {
                        let haystack = self.expr(0)?;
                        self.expect(&Token::RParen)?;
                        Expr::Func {
                            name: "position".into(),
                            args: vec![haystack, needle],
                            distinct: false,
                        }
                    } else {
                        self.expect(&Token::Comma)?;
                        let second = self.expr(0)?;
                        self.expect(&Token::RParen)?;
                        Expr::Func {
                            name: "position".into(),
                            args: vec![needle, second],
                            distinct: false,
                        }
                    }
                }
                "extract" if self.peek() == Some(&Token::LParen) => {
                    self.pos += 1;
                    let field = match self.next()? {
                        Token::Ident(f) | Token::Quoted(f) | Token::Str(f) => f.to_lowercase(),
                        _ => return Err(self.error("expected a field name in EXTRACT")),
                    };
                    self.expect_keyword("from")?;
                    let source = self.expr(0)?;
                    self.expect(&Token::RParen)?;
                    Expr::Func {
                        name: "extract".into(),
                        args: vec![Expr::Str(field), source],
                        distinct: false,
                    }
                }
                w if TYPED_LITERALS.contains(&w) && matches!(self.peek(), Some(Token::Str(_))) => {
                    let Some(Token::Str(s)) = self.peek() else { unreachable!() };
                    self.pos += 1;
                    Expr::Cast {
                        operand: Box::new(Expr::Str(s.clone())),
                        type_name: w.to_string(),
                    }
                }
                _ => self.named(word.clone())?,
            },
            _ => {
                self.pos -= 1;
                return Err(self.error("expected an expression"));
            }
        })
    }

    /// A possibly qualified name: a column reference, or a function call when `(` follows.
    fn named(&mut self, first: String) -> Result<Expr, ParseError> {
        let mut last = first;
        while self.peek() == Some(&Token::Dot) {
            self.pos += 1;
            if self.peek() == Some(&Token::Op("*".into())) {
                self.pos += 1;
                return Ok(Expr::Star);
            }
            last = self.name()?;
        }
        if self.eat(&Token::LParen) {
            let distinct = self.eat_keyword("distinct");
            let args = if self.peek() == Some(&Token::Op("*".into())) && self.peek_at(1) == Some(&Token::RParen) {
                self.pos += 2;
                vec![Expr::Star]
            } else {
                self.list(&Token::RParen)?
            };
            return Ok(Expr::Func {
                name: last,
                args,
                distinct,
            });
        }
        Ok(Expr::Name(last))
    }

    fn list(&mut self, close: &Token) -> Result<Vec<Expr>, ParseError> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            if self.peek().is_some_and(|t| t.is_keyword("select")) {
                return Err(self.error("subqueries are not supported"));
            }
            items.push(self.expr(0)?);
            if self.eat(close) {
                return Ok(items);
            }
            self.expect(&Token::Comma)?;
        }
    }

    fn array(&mut self) -> Result<Expr, ParseError> {
        let mut items = Vec::new();
        if self.eat(&Token::RBracket) {
            return Ok(Expr::Array(items));
        }
        loop {
            if self.eat(&Token::LBracket) {
                items.push(self.array()?);
            } else {
                items.push(self.expr(0)?);
            }
            if self.eat(&Token::RBracket) {
                return Ok(Expr::Array(items));
            }
            self.expect(&Token::Comma)?;
        }
    }

    fn case(&mut self) -> Result<Expr, ParseError> {
        let operand = if self.peek().is_some_and(|t| t.is_keyword("when")) {
            None
        } else {
            Some(Box::new(self.expr(0)?))
        };
        let mut whens = Vec::new();
        while self.eat_keyword("when") {
            let when = self.expr(0)?;
            self.expect_keyword("then")?;
            let then = self.expr(0)?;
            whens.push((when, then));
        }
        let otherwise = if self.eat_keyword("else") {
            Some(Box::new(self.expr(0)?))
        } else {
            None
        };
        self.expect_keyword("end")?;
        Ok(Expr::Case { operand, whens, otherwise })
    }

    /// A type name after `::` or `AS`: qualified, multi-word, with typmod and array brackets.
    fn type_name(&mut self) -> Result<String, ParseError> {
        let mut name = self.name()?;
        while self.eat(&Token::Dot) {
            name = self.name()?;
        }
        loop {
            if let Some(Token::Ident(w)) = self.peek() {
                if TYPE_WORDS.contains(&w.as_str()) {
                    name.push(' ');
                    name.push_str(w);
                    self.pos += 1;
                    continue;
                }
            }
            if self.peek() == Some(&Token::LParen) {
                self.pos += 1;
                let mut args = Vec::new();
                loop {
                    match self.next()? {
                        Token::Num(n) => args.push(n.clone()),
                        Token::Comma => {}
                        Token::RParen => break,
                        _ => return Err(self.error("bad type modifier")),
                    }
                }
                let _ = write!(name, "({})", args.join(","));
                continue;
            }
            break;
        }
        while self.eat(&Token::LBracket) {
            if matches!(self.peek(), Some(Token::Num(_))) {
                self.pos += 1;
            }
            self.expect(&Token::RBracket)?;
            name.push_str("[]");
        }
        Ok(name)
    }
}

fn binary(op: &str, left: Expr, right: Expr) -> Expr {
    Expr::Binary {
        op: canonical_op(op),
        left: Box::new(left),
        right: Box::new(right),
    }
}

/// `a AND b AND c` is one list however it was parenthesised.
fn flatten(left: Expr, right: Expr, and: bool) -> Expr {
    let mut items = Vec::new();
    for e in [left, right] {
        match (e, and) {
            (Expr::And(inner), true) | (Expr::Or(inner), false) => items.extend(inner),
            (other, _) => items.push(other),
        }
    }
    if and {
        Expr::And(items)
    } else {
        Expr::Or(items)
    }
}
