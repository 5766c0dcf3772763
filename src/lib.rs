//! wishlist-migrator: applies drizzle-kit migrations to PostgreSQL safely, keeping drizzle-orm's
//! ledger, from a CLI or an AWS Lambda function that share one run loop.

pub mod catalog;
pub mod cfn;
pub mod config;
pub mod database;
pub mod drift;
pub mod embedded;
pub mod error;
pub mod expression;
pub mod journal;
pub mod lambda;
pub mod ledger;
pub mod lock;
pub mod plan;
pub mod report;
pub mod request;
pub mod rollback;
pub mod runner;
pub mod secrets;
pub mod snapshot;
pub mod source;
pub mod state;
pub mod statement;
pub mod verify;

pub use config::{ConfigError, RunSettings};
pub use database::{ConnectionSettings, TlsMode};
pub use error::{Error, ErrorType};
pub use report::{Action, Report, Status};
pub use runner::{run, Command, Failure, Invocation};
pub use source::{MigrationSet, MigrationSource};
