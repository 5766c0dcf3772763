//! SQL expressions as drizzle-kit writes them and as Postgres prints them back (`pg_get_expr`,
//! `pg_get_indexdef`), reduced to one canonical spelling so the two can be compared. Pure.
//!
//! Postgres deparses what it parsed: it adds parentheses and implicit casts, drops table
//! qualifiers, rewrites `IN (..)` as `= ANY (ARRAY[..])` and `BETWEEN` as two comparisons, and
//! prints negative constants as `'-1'::integer`. Drizzle writes `"table"."column"`, bare literals
//! and the SQL the user typed. Both sides are parsed into the same tree and printed fully
//! parenthesised, with casts and qualifiers left out.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read SQL expression at {at}: {reason}")]
pub struct ParseError {
    pub at: usize,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Str(String),
    Num(String),
    /// An unquoted identifier or keyword, folded to lower case as Postgres folds it.
    Ident(String),
    /// A double-quoted identifier, exactly as written.
    Quoted(String),
    Op(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Cast,
    Semicolon,
}

impl Token {
    /// The identifier a token names, quoted or not.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Ident(s) | Self::Quoted(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_keyword(&self, word: &str) -> bool {
        matches!(self, Self::Ident(s) if s == word)
    }
}

const OP_CHARS: &str = "+-*/<>=~!@#%^&|`?";

/// Splits SQL into tokens, dropping comments and whitespace.
pub fn tokenize(sql: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at: usize, reason: &str| ParseError { at, reason: reason.to_string() };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            loop {
                if i + 1 >= chars.len() {
                    return Err(err(i, "unterminated comment"));
                }
                if chars[i] == '/' && chars[i + 1] == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars[i + 1] == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '\'' || ((c == 'e' || c == 'E') && next == Some('\'')) {
            let escapes = c != '\'';
            i += if escapes { 2 } else { 1 };
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(err(i, "unterminated string")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') if escapes => {
                        let e = chars.get(i + 1).copied().ok_or_else(|| err(i, "unterminated string"))?;
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                        i += 2;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Token::Str(s));
        } else if c == '$' && next.is_some_and(|n| n == '$' || n.is_alphabetic() || n == '_') {
            let start = i;
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '$' && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            if chars.get(j) != Some(&'$') {
                return Err(err(i, "bad dollar quote"));
            }
            let tag: String = chars[start..=j].iter().collect();
            let body_start = j + 1;
            let rest: String = chars[body_start..].iter().collect();
            let end = rest.find(&tag).ok_or_else(|| err(i, "unterminated dollar quote"))?;
            out.push(Token::Str(rest[..end].to_string()));
            i = body_start + rest[..end].chars().count() + tag.chars().count();
        } else if c == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(err(i, "unterminated quoted identifier")),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        s.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Token::Quoted(s));
        } else if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                // `1..2` is not a number followed by a number; stop before a second dot.
                if chars[i] == '.' && chars[start..i].contains(&'.') {
                    break;
                }
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            out.push(Token::Num(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push(Token::Ident(word.to_lowercase()));
        } else if c == ':' && next == Some(':') {
            out.push(Token::Cast);
            i += 2;
        } else if OP_CHARS.contains(c) {
            let start = i;
            while i < chars.len() && OP_CHARS.contains(chars[i]) {
                // A comment start ends the operator, as in Postgres's lexer.
                if i > start && ((chars[i] == '-' && chars[i - 1] == '-') || (chars[i] == '*' && chars[i - 1] == '/')) {
                    i -= 1;
                    break;
                }
                i += 1;
            }
            let mut op: String = chars[start..i].iter().collect();
            // Postgres: a multi-character operator ends in + or - only if it also holds one of
            // ~ ! @ # % ^ & | ` ? (so `*-1` is `*` then `-1`).
            while op.len() > 1 && (op.ends_with('+') || op.ends_with('-')) && !op.chars().any(|ch| "~!@#%^&|`?".contains(ch)) {
                op.pop();
                i -= 1;
            }
            out.push(Token::Op(op));
        } else {
            out.push(match c {
                '(' => Token::LParen,
                ')' => Token::RParen,
                '[' => Token::LBracket,
                ']' => Token::RBracket,
                ',' => Token::Comma,
                '.' => Token::Dot,
                ';' => Token::Semicolon,
                _ => return Err(err(i, &format!("unexpected character {c:?}"))),
            });
            i += 1;
        }
    }
    Ok(out)
}

/// An expression tree; only as much of Postgres's grammar as column defaults, check
/// constraints, index expressions and predicates use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    /// A column or other bare name; table and schema qualifiers are dropped.
    Name(String),
    Star,
    Func { name: String, args: Vec<Expr>, distinct: bool },
    Binary { op: String, left: Box<Expr>, right: Box<Expr> },
    Unary { op: String, operand: Box<Expr> },
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `IS NULL`, `IS NOT TRUE`, ... (the test in lower case, without the leading `is`).
    Is { operand: Box<Expr>, test: String },
    /// `IS DISTINCT FROM`; `IS NOT DISTINCT FROM` is its negation, as Postgres stores it.
    Distinct { left: Box<Expr>, right: Box<Expr> },
    /// `left op ANY|ALL (right)`; `IN (..)` ends up here too, as Postgres rewrites it.
    Quantified { op: String, left: Box<Expr>, all: bool, right: Box<Expr> },
    Array(Vec<Expr>),
    Row(Vec<Expr>),
    Case { operand: Option<Box<Expr>>, whens: Vec<(Expr, Expr)>, otherwise: Option<Box<Expr>> },
    Subscript { base: Box<Expr>, index: Box<Expr> },
    Collate { operand: Box<Expr>, collation: String },
    Cast { operand: Box<Expr>, type_name: String },
}

/// A literal value once casts are looked through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
}

impl Expr {
    /// The expression without the casts wrapped around it.
    pub fn uncast(&self) -> &Expr {
        match self {
            Self::Cast { operand, .. } => operand.uncast(),
            other => other,
        }
    }

    /// The literal this expression is, casts aside (`'-1'::integer`, `-1`, `'USD'::currency`).
    pub fn literal(&self) -> Option<Literal> {
        match self.uncast() {
            Self::Null => Some(Literal::Null),
            Self::Bool(b) => Some(Literal::Bool(*b)),
            Self::Num(n) => Some(Literal::Num(n.clone())),
            Self::Str(s) => Some(Literal::Str(s.clone())),
            Self::Unary { op, operand } if op == "-" => match operand.literal()? {
                Literal::Num(n) => Some(Literal::Num(format!("-{n}"))),
                _ => None,
            },
            _ => None,
        }
    }

    /// The canonical spelling: fully parenthesised, lower-case keywords and names, no casts, no
    /// qualifiers, numeric strings as numbers.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Num(n) => out.push_str(&canonical_number(n).unwrap_or_else(|| n.clone())),
            Self::Str(s) => match canonical_number(s) {
                // Postgres prints some numeric constants quoted ('-1'::integer) and drizzle
                // writes numeric defaults quoted ('0'); the cast is gone, so the value decides.
                Some(n) => out.push_str(&n),
                None => out.push_str(&quote_literal(s)),
            },
            Self::Name(n) => out.push_str(&quote_name(n)),
            Self::Star => out.push('*'),
            Self::Func { name, args, distinct } => {
                out.push_str(&quote_name(name));
                out.push('(');
                if *distinct {
                    out.push_str("distinct ");
                }
                write_list(out, args);
                out.push(')');
            }
            Self::Binary { op, left, right } => {
                out.push('(');
                left.write(out);
                let _ = write!(out, " {op} ");
                right.write(out);
                out.push(')');
            }
            Self::Unary { op, operand } => {
                if let Some(Literal::Num(n)) = self.literal() {
                    out.push_str(&canonical_number(&n).unwrap_or(n));
                    return;
                }
                out.push('(');
                out.push_str(op);
                operand.write(out);
                out.push(')');
            }
            Self::And(items) | Self::Or(items) => {
                let word = if matches!(self, Self::And(_)) { " and " } else { " or " };
                out.push('(');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(word);
                    }
                    item.write(out);
                }
                out.push(')');
            }
            Self::Not(e) => {
                out.push_str("(not ");
                e.write(out);
                out.push(')');
            }
            Self::Is { operand, test } => {
                out.push('(');
                operand.write(out);
                let _ = write!(out, " is {test})");
            }
            Self::Distinct { left, right } => {
                out.push('(');
                left.write(out);
                out.push_str(" is distinct from ");
                right.write(out);
                out.push(')');
            }
            Self::Quantified { op, left, all, right } => {
                out.push('(');
                left.write(out);
                let _ = write!(out, " {op} {} (", if *all { "all" } else { "any" });
                right.write(out);
                out.push_str("))");
            }
            Self::Array(items) => {
                out.push_str("array[");
                write_list(out, items);
                out.push(']');
            }
            Self::Row(items) => {
                out.push_str("row(");
                write_list(out, items);
                out.push(')');
            }
            Self::Case { operand, whens, otherwise } => {
                out.push_str("(case");
                if let Some(o) = operand {
                    out.push(' ');
                    o.write(out);
                }
                for (when, then) in whens {
                    out.push_str(" when ");
                    when.write(out);
                    out.push_str(" then ");
                    then.write(out);
                }
                if let Some(e) = otherwise {
                    out.push_str(" else ");
                    e.write(out);
                }
                out.push_str(" end)");
            }
            Self::Subscript { base, index } => {
                base.write(out);
                out.push('[');
                index.write(out);
                out.push(']');
            }
            Self::Collate { operand, collation } => {
                out.push('(');
                operand.write(out);
                let _ = write!(out, " collate {})", quote_name(collation));
            }
            // Postgres adds implicit casts that drizzle never writes: compare without them.
            Self::Cast { operand, .. } => operand.write(out),
        }
    }
}

fn write_list(out: &mut String, items: &[Expr]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        item.write(out);
    }
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn quote_name(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// `007.50` → `7.50`, `+1` → `1`, `-0` → `0`; `None` when `s` is not a plain decimal number.
/// The fraction is kept as written: `numeric` keeps the scale it was given.
pub fn canonical_number(s: &str) -> Option<String> {
    let s = s.trim();
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    if (int.is_empty() && frac.is_none_or(str::is_empty)) || !digits(int) || !frac.is_none_or(digits) {
        return None;
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !digits(e) {
            return None;
        }
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let mut out = String::new();
    let zero = int == "0" && frac.is_none_or(|f| f.chars().all(|c| c == '0')) && exponent.is_none();
    if negative && !zero {
        out.push('-');
    }
    out.push_str(int);
    if let Some(f) = frac {
        if !f.is_empty() {
            out.push('.');
            out.push_str(f);
        }
    }
    if let Some(e) = exponent {
        out.push('e');
        out.push_str(e);
    }
    Some(out)
}

pub fn parse(sql: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(sql)?;
    let mut p = Parser { tokens: &tokens, pos: 0 };
    let e = p.expr(0)?;
    if p.pos != tokens.len() {
        return Err(p.error("unexpected text after the expression"));
    }
    Ok(e)
}

/// The canonical spelling of `sql`; text that is not an expression this module reads is
/// compared by its whitespace- and case-normalised text instead.
pub fn canonical(sql: &str) -> String {
    match parse(sql) {
        Ok(e) => e.canonical(),
        Err(_) => normalised_text(sql),
    }
}

/// Lower case outside quotes, single spaces, no quotes around plain names.
pub fn normalised_text(sql: &str) -> String {
    match tokenize(sql) {
        Ok(tokens) => tokens
            .iter()
            .map(|t| match t {
                Token::Str(s) => quote_literal(s),
                Token::Num(n) => n.clone(),
                Token::Ident(s) | Token::Quoted(s) => quote_name(s),
                Token::Op(o) => o.clone(),
                Token::LParen => "(".into(),
                Token::RParen => ")".into(),
                Token::LBracket => "[".into(),
                Token::RBracket => "]".into(),
                Token::Comma => ",".into(),
                Token::Dot => ".".into(),
                Token::Cast => "::".into(),
                Token::Semicolon => ";".into(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Err(_) => sql.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase(),
    }
}

/// One element of an index definition as drizzle-kit writes it: an expression optionally
/// followed by an operator class (`"attrs" jsonb_path_ops`), direction and nulls order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexElement {
    pub expr: Expr,
    pub opclass: Option<String>,
    pub descending: Option<bool>,
    pub nulls_first: Option<bool>,
}

pub fn parse_index_element(sql: &str) -> Result<IndexElement, ParseError> {
    let tokens = tokenize(sql)?;
    let mut p = Parser { tokens: &tokens, pos: 0 };
    let expr = p.expr(0)?;
    let mut element = IndexElement {
        expr,
        opclass: None,
        descending: None,
        nulls_first: None,
    };
    if let Some(name) = p.peek().and_then(Token::name) {
        if !matches!(name, "asc" | "desc" | "nulls") || matches!(p.peek(), Some(Token::Quoted(_))) {
            let mut opclass = name.to_string();
            p.pos += 1;
            while p.peek() == Some(&Token::Dot) {
                p.pos += 1;
                opclass = p.name()?;
            }
            element.opclass = Some(opclass);
        }
    }
    if p.eat_keyword("asc") {
        element.descending = Some(false);
    } else if p.eat_keyword("desc") {
        element.descending = Some(true);
    }
    if p.eat_keyword("nulls") {
        if p.eat_keyword("first") {
            element.nulls_first = Some(true);
        } else if p.eat_keyword("last") {
            element.nulls_first = Some(false);
        } else {
            return Err(p.error("expected FIRST or LAST"));
        }
    }
    if p.pos != tokens.len() {
        return Err(p.error("unexpected text after the index element"));
    }
    Ok(element)
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
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
    "date", "time", "timestamp", "timestamptz", "interval", "int", "integer", "bigint", "numeric", "text", "boolean",
    "bool", "json", "jsonb", "uuid", "inet", "cidr", "bytea",
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
    fn peek(&self) -> Option<&'t Token> {
        self.tokens.get(self.pos)
    }

    fn peek_at(&self, offset: usize) -> Option<&'t Token> {
        self.tokens.get(self.pos + offset)
    }

    fn error(&self, reason: &str) -> ParseError {
        ParseError {
            at: self.pos,
            reason: reason.to_string(),
        }
    }

    fn next(&mut self) -> Result<&'t Token, ParseError> {
        let t = self.tokens.get(self.pos).ok_or_else(|| self.error("unexpected end"))?;
        self.pos += 1;
        Ok(t)
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &Token) -> Result<(), ParseError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {token:?}")))
        }
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_keyword(word)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), ParseError> {
        if self.eat_keyword(word) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {}", word.to_uppercase())))
        }
    }

    fn name(&mut self) -> Result<String, ParseError> {
        match self.next()? {
            Token::Ident(s) | Token::Quoted(s) => Ok(s.clone()),
            _ => Err(ParseError {
                at: self.pos - 1,
                reason: "expected a name".into(),
            }),
        }
    }

    fn expr(&mut self, min: u8) -> Result<Expr, ParseError> {
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
                        Some(t) if (t.is_keyword("any") || t.is_keyword("some") || t.is_keyword("all"))
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
        Ok(Expr::Case {
            operand,
            whens,
            otherwise,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Drizzle's spelling and Postgres's print-back must canonicalise to the same text.
    fn same(drizzle: &str, postgres: &str) {
        let a = parse(drizzle).unwrap_or_else(|e| panic!("{drizzle}: {e}"));
        let b = parse(postgres).unwrap_or_else(|e| panic!("{postgres}: {e}"));
        assert_eq!(a.canonical(), b.canonical(), "\n drizzle: {drizzle}\nPostgres: {postgres}");
    }

    fn differ(a: &str, b: &str) {
        assert_ne!(canonical(a), canonical(b), "{a} vs {b}");
    }

    #[test]
    fn check_constraints_as_drizzle_writes_and_postgres_prints_them() {
        same(
            r#""wishlist_items"."priority" >= 0 AND "wishlist_items"."priority" <= 5"#,
            "((priority >= 0) AND (priority <= 5))",
        );
        same(r#""wishlist_items"."priority" >= 0 AND "wishlist_items"."priority" <= 5"#, "priority >= 0 AND priority <= 5");
        same(r#""accounts"."age" IS NULL OR "accounts"."age" >= 13"#, "age IS NULL OR age >= 13");
        same(r#""accounts"."balance" >= 0"#, "balance >= 0::numeric");
        same(
            r#""memberships"."role" IN ('member', 'admin', 'owner')"#,
            "role = ANY (ARRAY['member'::text, 'admin'::text, 'owner'::text])",
        );
        same(r#"position('@' in "accounts"."email") > 1"#, "POSITION(('@'::text) IN (email)) > 1");
        same("priority BETWEEN 0 AND 5", "priority >= 0 AND priority <= 5");
        same("x NOT BETWEEN 1 AND 2", "x < 1 OR x > 2");
        same("kind NOT IN ('a', 'b')", "(kind)::text <> ALL ((ARRAY['a'::character varying, 'b'::character varying])::text[])");
        same("\"t\".\"name\" LIKE 'a%'", "name ~~ 'a%'::text");
        same("name NOT ILIKE 'a%'", "name !~~* 'a%'::text");
        same("a != b", "a <> b");
        same("x > -1", "x > '-1'::integer");
        same("char_length(\"t\".\"code\") = 3", "char_length(code) = 3");
        same("\"t\".\"a\" IS NOT DISTINCT FROM \"t\".\"b\"", "NOT (a IS DISTINCT FROM b)");
    }

    #[test]
    fn grouping_and_operators_still_matter() {
        differ("a OR b AND c", "(a OR b) AND c");
        differ("priority >= 0", "priority > 0");
        differ("a - b - c", "a - (b - c)");
        differ("status <> 'hidden'", "status <> 'Hidden'");
        differ("\"Email\" IS NULL", "email IS NULL");
        differ("x = ANY (ARRAY[1, 2])", "x = ALL (ARRAY[1, 2])");
        same("a - b - c", "(a - b) - c");
        same("a || b || c", "(a || b) || c");
    }

    #[test]
    fn index_expressions_and_predicates() {
        same("lower(\"email\")", "lower(email)");
        same(r#"lower("last_name" || ' ' || "first_name")"#, "lower((last_name || ' '::text) || first_name)");
        same(r#""listings"."deleted_at" IS NULL AND "listings"."price_cents" > 0"#, "deleted_at IS NULL AND price_cents > 0");
        same(r#""catalog_items"."status" <> 'hidden'"#, "status <> 'hidden'::item_status");
        same(r#""listings"."status" = 'published'"#, "status = 'published'::text");
        same("(data ->> 'kind') = 'x'", "(data ->> 'kind'::text) = 'x'::text");
        same("coalesce(a, 0) > 1", "COALESCE(a, 0) > 1");
    }

    #[test]
    fn defaults_and_literals() {
        assert_eq!(parse("'USD'::wishlist_currency").unwrap().literal(), Some(Literal::Str("USD".into())));
        assert_eq!(parse("'USD'::\"public\".\"wishlist_currency\"").unwrap().literal(), Some(Literal::Str("USD".into())));
        assert_eq!(parse("'it''s for you'::text").unwrap().literal(), Some(Literal::Str("it's for you".into())));
        assert_eq!(parse("'login'::character varying").unwrap().literal(), Some(Literal::Str("login".into())));
        assert_eq!(parse("'{}'::order_priority[]").unwrap().literal(), Some(Literal::Str("{}".into())));
        assert_eq!(parse("'2024-01-01 00:00:00'::timestamp without time zone").unwrap().literal(), Some(Literal::Str("2024-01-01 00:00:00".into())));
        assert_eq!(parse("'1'::numeric(10, 2)").unwrap().literal(), Some(Literal::Str("1".into())));
        assert_eq!(parse("-5").unwrap().literal(), Some(Literal::Num("-5".into())));
        assert_eq!(parse("true").unwrap().literal(), Some(Literal::Bool(true)));
        assert_eq!(parse("now()").unwrap().literal(), None);
        same("now()", "now()");
        same("gen_random_uuid()", "gen_random_uuid()");
        same("CURRENT_TIMESTAMP", "current_timestamp");
        same("nextval('accounts_id_seq')", "nextval('accounts_id_seq'::regclass)");
        same("(now() + interval '1 day')", "(now() + '1 day'::interval)");
        same("12.5000", "'12.5000'::numeric");
        differ("12.5", "12.50");
        same("E'a\\nb'", "'a\nb'");
        same("$$x$$", "'x'");
    }

    #[test]
    fn index_elements_with_opclass_and_order() {
        let e = parse_index_element("\"attrs\" jsonb_path_ops").unwrap();
        assert_eq!(e.expr, Expr::Name("attrs".into()));
        assert_eq!(e.opclass.as_deref(), Some("jsonb_path_ops"));
        let e = parse_index_element("lower(\"email\") DESC NULLS LAST").unwrap();
        assert_eq!(e.expr.canonical(), "lower(email)");
        assert_eq!((e.opclass, e.descending, e.nulls_first), (None, Some(true), Some(false)));
        let e = parse_index_element("\"col\"").unwrap();
        assert_eq!((e.opclass, e.descending), (None, None));
    }

    #[test]
    fn numbers() {
        assert_eq!(canonical_number("007.50").as_deref(), Some("7.50"));
        assert_eq!(canonical_number("+1").as_deref(), Some("1"));
        assert_eq!(canonical_number("-0").as_deref(), Some("0"));
        assert_eq!(canonical_number("1e10").as_deref(), Some("1e10"));
        assert_eq!(canonical_number(".5").as_deref(), Some("0.5"));
        assert_eq!(canonical_number("abc"), None);
        assert_eq!(canonical_number(""), None);
        assert_eq!(canonical_number("1.2.3"), None);
    }

    #[test]
    fn tokenizer_follows_postgres_rules() {
        assert_eq!(
            tokenize("a*-1").unwrap(),
            vec![Token::Ident("a".into()), Token::Op("*".into()), Token::Op("-".into()), Token::Num("1".into())]
        );
        assert_eq!(tokenize("x @> '{}' -- c\n").unwrap().len(), 3);
        assert_eq!(tokenize("\"A\"\"b\"").unwrap(), vec![Token::Quoted("A\"b".into())]);
        assert!(tokenize("'open").is_err());
    }

    #[test]
    fn unreadable_text_falls_back_to_normalised_text() {
        assert_eq!(canonical("SELECT  1"), canonical("select 1"));
        assert!(parse("(SELECT 1)").is_err());
    }
}
