//! SQL as Postgres reads it, through its own grammar (libpg_query): the lowest layer above
//! `error`, pure, so that every layer above asks one reader what a statement is.

pub mod add_column;
pub mod change_type;
pub mod classify;
pub mod destroys;
pub mod index;
pub mod online;
pub mod parse;
pub mod rename;
