//! A run's error: every layer's error under one type, with the stable name deploy automation
//! matches on (`errorType`) and the CLI's exit code.

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::database::{ConnectError, PgError};
use crate::ledger::LedgerError;
use crate::lock::LockError;
use crate::plan::PlanError;
use crate::request::RequestError;
use crate::runner::MigrationError;
use crate::secrets::SecretError;
use crate::source::SourceError;

/// Stable error names: Step Functions `Retry`/`Catch` and operators match on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorType {
    InvalidRequest,
    ConfigError,
    SecretUnavailable,
    ConnectionFailed,
    ReadOnlyDatabase,
    PermissionDenied,
    MigrationLockBusy,
    InvalidMigrations,
    ChecksumMismatch,
    OutOfOrderMigration,
    UnknownMigrations,
    MigrationFailed,
    DeadlineExceeded,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "InvalidRequest",
            Self::ConfigError => "ConfigError",
            Self::SecretUnavailable => "SecretUnavailable",
            Self::ConnectionFailed => "ConnectionFailed",
            Self::ReadOnlyDatabase => "ReadOnlyDatabase",
            Self::PermissionDenied => "PermissionDenied",
            Self::MigrationLockBusy => "MigrationLockBusy",
            Self::InvalidMigrations => "InvalidMigrations",
            Self::ChecksumMismatch => "ChecksumMismatch",
            Self::OutOfOrderMigration => "OutOfOrderMigration",
            Self::UnknownMigrations => "UnknownMigrations",
            Self::MigrationFailed => "MigrationFailed",
            Self::DeadlineExceeded => "DeadlineExceeded",
        }
    }

    /// The CLI contract: 1 failed, 2 usage or configuration, 3 validation refused, 4 lock busy.
    pub fn exit_code(self) -> i32 {
        match self {
            Self::InvalidRequest | Self::ConfigError => 2,
            Self::InvalidMigrations
            | Self::ChecksumMismatch
            | Self::OutOfOrderMigration
            | Self::UnknownMigrations => 3,
            Self::MigrationLockBusy => 4,
            Self::SecretUnavailable
            | Self::ConnectionFailed
            | Self::ReadOnlyDatabase
            | Self::PermissionDenied
            | Self::MigrationFailed
            | Self::DeadlineExceeded => 1,
        }
    }
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("the database session is read-only ({reason}); migrations need the writer: point the connection at the primary / cluster writer endpoint")]
    ReadOnly { reason: &'static str },
    #[error("cannot inspect the session: {0}")]
    Session(PgError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error("stopped before the invocation deadline while {during}; nothing of the unfinished transaction was kept. Give the function more time (timeout) or apply fewer migrations per run (--to)")]
    Deadline { during: &'static str },
}

const INSUFFICIENT_PRIVILEGE: &str = "42501";

impl Error {
    pub fn error_type(&self) -> ErrorType {
        match self {
            Self::Request(_) => ErrorType::InvalidRequest,
            Self::Config(_) => ErrorType::ConfigError,
            Self::Secret(_) => ErrorType::SecretUnavailable,
            Self::Source(_) => ErrorType::InvalidMigrations,
            Self::Connect(ConnectError::CaBundle { .. } | ConnectError::Tls { .. }) => ErrorType::ConfigError,
            Self::Connect(_) | Self::Session(_) => ErrorType::ConnectionFailed,
            Self::ReadOnly { .. } => ErrorType::ReadOnlyDatabase,
            Self::Lock(LockError::Busy { .. }) => ErrorType::MigrationLockBusy,
            Self::Lock(LockError::Database { .. }) => ErrorType::ConnectionFailed,
            Self::Plan(PlanError::ChecksumMismatch { .. }) => ErrorType::ChecksumMismatch,
            Self::Plan(PlanError::OutOfOrder { .. }) => ErrorType::OutOfOrderMigration,
            Self::Plan(PlanError::UnknownRows { .. }) => ErrorType::UnknownMigrations,
            Self::Plan(PlanError::UnknownTarget { .. }) => ErrorType::InvalidRequest,
            Self::Ledger(e) if e.pg().is(INSUFFICIENT_PRIVILEGE) => ErrorType::PermissionDenied,
            Self::Ledger(_) => ErrorType::MigrationFailed,
            Self::Migration(e) if e.error.is(INSUFFICIENT_PRIVILEGE) => ErrorType::PermissionDenied,
            Self::Migration(e) if e.deadline => ErrorType::DeadlineExceeded,
            Self::Migration(_) => ErrorType::MigrationFailed,
            Self::Deadline { .. } => ErrorType::DeadlineExceeded,
        }
    }

    pub fn exit_code(&self) -> i32 {
        self.error_type().exit_code()
    }

    /// The migration the error is about, when there is one.
    pub fn migration(&self) -> Option<&str> {
        match self {
            Self::Source(e) => e.tag(),
            Self::Plan(e) => e.tag(),
            Self::Migration(e) => Some(&e.tag),
            _ => None,
        }
    }

    pub fn pg(&self) -> Option<&PgError> {
        match self {
            Self::Connect(ConnectError::Connect { error, .. })
            | Self::Session(error)
            | Self::Lock(LockError::Database { error, .. }) => Some(error),
            Self::Ledger(e) => Some(e.pg()),
            Self::Migration(e) => Some(&e.error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_cli_contract() {
        assert_eq!(ErrorType::ConfigError.exit_code(), 2);
        assert_eq!(ErrorType::ChecksumMismatch.exit_code(), 3);
        assert_eq!(ErrorType::OutOfOrderMigration.exit_code(), 3);
        assert_eq!(ErrorType::InvalidMigrations.exit_code(), 3);
        assert_eq!(ErrorType::MigrationLockBusy.exit_code(), 4);
        assert_eq!(ErrorType::MigrationFailed.exit_code(), 1);
    }

    #[test]
    fn type_names_serialize_as_written() {
        assert_eq!(serde_json::to_string(&ErrorType::MigrationLockBusy).unwrap(), "\"MigrationLockBusy\"");
        assert_eq!(ErrorType::DeadlineExceeded.as_str(), "DeadlineExceeded");
    }
}
