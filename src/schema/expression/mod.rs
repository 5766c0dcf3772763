//! SQL expressions as drizzle-kit writes them and as Postgres prints them back (`pg_get_expr`,
//! `pg_get_indexdef`), reduced to one canonical spelling so the two can be compared. Pure.
//!
//! Postgres deparses what it parsed: it adds parentheses and implicit casts, drops table
//! qualifiers, rewrites `IN (..)` as `= ANY (ARRAY[..])` and `BETWEEN` as two comparisons, and
//! prints negative constants as `'-1'::integer`. Drizzle writes `"table"."column"`, bare literals
//! and the SQL the user typed. Both sides are parsed into the same tree and printed fully
//! parenthesised, with casts and qualifiers left out.

mod canonical;
mod cursor;
mod error;
mod index_element;
mod lexer;
mod parser;
mod tree;

pub use canonical::{canonical, canonical_number, normalised_text};
pub use error::ParseError;
pub use index_element::{parse_index_element, IndexElement};
pub use lexer::{tokenize, Token};
pub use parser::parse;
pub use tree::{Expr, Literal};
