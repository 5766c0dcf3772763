//! Index elements as drizzle-kit writes them: an expression, then the operator class, direction
//! and nulls order that follow it and are not part of it.

use super::cursor::Parser;
use super::error::ParseError;
use super::lexer::{tokenize, Token};
use super::tree::Expr;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
