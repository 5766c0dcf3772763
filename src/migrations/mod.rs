//! What is on disk, and nothing else: the drizzle-kit folder (0.x: journal, SQL files, down files;
//! 1.0: one folder per migration),
//! split into statements. Pure: no database, no network.

pub mod embedded;
pub mod folders;
pub mod journal;
pub mod source;
pub mod statement;
