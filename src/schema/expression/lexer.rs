//! SQL split into tokens by Postgres's lexical rules: quoting, escapes, nested comments, and where
//! an operator ends.

use super::error::ParseError;

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
    let err = |at: usize, reason: &str| ParseError {
        at,
        reason: reason.to_string(),
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_follows_postgres_rules() {
        assert_eq!(
            tokenize("a*-1").unwrap(),
            vec![
                Token::Ident("a".into()),
                Token::Op("*".into()),
                Token::Op("-".into()),
                Token::Num("1".into())
            ]
        );
        assert_eq!(tokenize("x @> '{}' -- c\n").unwrap().len(), 3);
        assert_eq!(tokenize("\"A\"\"b\"").unwrap(), vec![Token::Quoted("A\"b".into())]);
        assert!(tokenize("'open").is_err());
    }
}
