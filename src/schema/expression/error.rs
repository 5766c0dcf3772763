//! The one error of reading SQL text, from the lexer or the parser: where reading stopped and why.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read SQL expression at {at}: {reason}")]
pub struct ParseError {
    pub at: usize,
    pub reason: String,
}
