//! wishlist-migrator: applies drizzle-kit migrations to PostgreSQL safely, keeping drizzle-orm's
//! ledger, from a CLI or an AWS Lambda function that share one run loop.
//!
//! The folders are layers and imports point down (`scripts/check-layers.py` enforces it):
//! `sql` < `migrations` < `db` < `lint`, `schema` < `config`, `online` < `engine` < `report` < `aws` < `lambda`, `fleet`;
//! `error` is a leaf every layer may use. `ARCHITECTURE.md` walks one run through them.

// Errors travel once per run, carrying the migration, statement and SQLSTATE an operator needs;
// boxing them to shrink `Result` would buy nothing measurable.
#![allow(clippy::result_large_err)]

pub mod aws;
pub mod config;
pub mod db;
pub mod engine;
pub mod error;
pub mod fleet;
pub mod lambda;
pub mod lint;
pub mod migrations;
pub mod online;
pub mod report;
pub mod schema;
pub mod sql;

pub use config::{ConfigError, RunSettings};
pub use db::connection::{ConnectionSettings, TlsMode};
pub use engine::{Action, Command, Error, Invocation};
pub use error::{Classified, ErrorType};
pub use migrations::source::{MigrationSet, MigrationSource};
pub use report::{run, Failure, Report, Status};
