//! The canonical spelling both sides are compared in: the tree fully parenthesised, without casts
//! or qualifiers; numbers without leading zeros or sign noise; unreadable text normalised.

use std::fmt::Write as _;

use super::lexer::{tokenize, Token};
use super::parser::parse;
use super::tree::{Expr, Literal};

impl Expr {
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
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
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
        same(
            r#""wishlist_items"."priority" >= 0 AND "wishlist_items"."priority" <= 5"#,
            "priority >= 0 AND priority <= 5",
        );
        same(r#""accounts"."age" IS NULL OR "accounts"."age" >= 13"#, "age IS NULL OR age >= 13");
        same(r#""accounts"."balance" >= 0"#, "balance >= 0::numeric");
        same(
            r#""memberships"."role" IN ('member', 'admin', 'owner')"#,
            "role = ANY (ARRAY['member'::text, 'admin'::text, 'owner'::text])",
        );
        same(r#"position('@' in "accounts"."email") > 1"#, "POSITION(('@'::text) IN (email)) > 1");
        same("priority BETWEEN 0 AND 5", "priority >= 0 AND priority <= 5");
        same("x NOT BETWEEN 1 AND 2", "x < 1 OR x > 2");
        same(
            "kind NOT IN ('a', 'b')",
            "(kind)::text <> ALL ((ARRAY['a'::character varying, 'b'::character varying])::text[])",
        );
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
        same(
            r#"lower("last_name" || ' ' || "first_name")"#,
            "lower((last_name || ' '::text) || first_name)",
        );
        same(
            r#""listings"."deleted_at" IS NULL AND "listings"."price_cents" > 0"#,
            "deleted_at IS NULL AND price_cents > 0",
        );
        same(r#""catalog_items"."status" <> 'hidden'"#, "status <> 'hidden'::item_status");
        same(r#""listings"."status" = 'published'"#, "status = 'published'::text");
        same("(data ->> 'kind') = 'x'", "(data ->> 'kind'::text) = 'x'::text");
        same("coalesce(a, 0) > 1", "COALESCE(a, 0) > 1");
    }

    #[test]
    fn defaults_and_literals() {
        assert_eq!(
            parse("'USD'::wishlist_currency").unwrap().literal(),
            Some(Literal::Str("USD".into()))
        );
        assert_eq!(
            parse("'USD'::\"public\".\"wishlist_currency\"").unwrap().literal(),
            Some(Literal::Str("USD".into()))
        );
        assert_eq!(
            parse("'it''s for you'::text").unwrap().literal(),
            Some(Literal::Str("it's for you".into()))
        );
        assert_eq!(
            parse("'login'::character varying").unwrap().literal(),
            Some(Literal::Str("login".into()))
        );
        assert_eq!(parse("'{}'::order_priority[]").unwrap().literal(), Some(Literal::Str("{}".into())));
        assert_eq!(
            parse("'2024-01-01 00:00:00'::timestamp without time zone").unwrap().literal(),
            Some(Literal::Str("2024-01-01 00:00:00".into()))
        );
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
    fn unreadable_text_falls_back_to_normalised_text() {
        assert_eq!(canonical("SELECT  1"), canonical("select 1"));
        assert!(parse("(SELECT 1)").is_err());
    }
}
