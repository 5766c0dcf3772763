//! The parser's place in the tokens: lookahead, taking expected tokens and keywords, and errors
//! that say where reading stopped. The grammar itself is in `parser.rs`.

use super::error::ParseError;
use super::lexer::Token;

pub(super) struct Parser<'t> {
    pub(super) tokens: &'t [Token],
    pub(super) pos: usize,
}

impl<'t> Parser<'t> {
    pub(super) fn peek(&self) -> Option<&'t Token> {
        self.tokens.get(self.pos)
    }

    pub(super) fn peek_at(&self, offset: usize) -> Option<&'t Token> {
        self.tokens.get(self.pos + offset)
    }

    pub(super) fn error(&self, reason: &str) -> ParseError {
        ParseError {
            at: self.pos,
            reason: reason.to_string(),
        }
    }

    pub(super) fn next(&mut self) -> Result<&'t Token, ParseError> {
        let t = self.tokens.get(self.pos).ok_or_else(|| self.error("unexpected end"))?;
        self.pos += 1;
        Ok(t)
    }

    pub(super) fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, token: &Token) -> Result<(), ParseError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {token:?}")))
        }
    }

    pub(super) fn eat_keyword(&mut self, word: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_keyword(word)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect_keyword(&mut self, word: &str) -> Result<(), ParseError> {
        if self.eat_keyword(word) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {}", word.to_uppercase())))
        }
    }

    pub(super) fn name(&mut self) -> Result<String, ParseError> {
        match self.next()? {
            Token::Ident(s) | Token::Quoted(s) => Ok(s.clone()),
            _ => Err(ParseError {
                at: self.pos - 1,
                reason: "expected a name".into(),
            }),
        }
    }
}
