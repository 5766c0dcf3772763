//! What is on disk, and nothing else: the drizzle-kit folder (journal, SQL files, down files),
//! split into statements. Pure: no database, no network.

pub mod embedded;
pub mod journal;
pub mod source;
pub mod statement;
