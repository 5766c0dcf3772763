//! A run's error: every layer's error under one type, with the stable name deploy automation
//! matches on (`errorType`) and the CLI's exit code.

use serde::{Deserialize, Serialize};

use crate::db::catalog::CatalogError;
use crate::config::ConfigError;
use crate::db::connection::{ConnectError, PgError};
use crate::schema::drift::DriftError;
use crate::db::ledger::LedgerError;
use crate::db::lock::LockError;
use crate::engine::plan::PlanError;
use crate::lambda::request::RequestError;
use crate::engine::rollback::RollbackError;
use crate::engine::runner::MigrationError;
use crate::aws::secrets::SecretError;
use crate::schema::snapshot::SnapshotError;
use crate::migrations::source::SourceError;
use crate::schema::verify::VerifyError;

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
    /// The live schema differs from the snapshot (`drift` with failOnDrift, or after a rollback).
    DriftDetected,
    /// A `verify` or `check-rollback` check failed.
    VerificationFailed,
    /// A rollback would lose data, lacks a down file, or cannot be undone safely.
    RollbackRefused,
    /// A drizzle-kit snapshot is missing, unreadable or of an unsupported version.
    InvalidSnapshot,
    /// Reading the live schema from pg_catalog failed.
    InspectionFailed,
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
            Self::DriftDetected => "DriftDetected",
            Self::VerificationFailed => "VerificationFailed",
            Self::RollbackRefused => "RollbackRefused",
            Self::InvalidSnapshot => "InvalidSnapshot",
            Self::InspectionFailed => "InspectionFailed",
        }
    }

    /// The CLI contract: 1 failed, 2 usage or configuration, 3 validation refused, 4 lock busy.
    pub fn exit_code(self) -> i32 {
        match self {
            Self::InvalidRequest | Self::ConfigError => 2,
            Self::InvalidMigrations
            | Self::ChecksumMismatch
            | Self::OutOfOrderMigration
            | Self::UnknownMigrations
            | Self::DriftDetected
            | Self::VerificationFailed
            | Self::RollbackRefused
            | Self::InvalidSnapshot => 3,
            Self::MigrationLockBusy => 4,
            Self::SecretUnavailable
            | Self::ConnectionFailed
            | Self::ReadOnlyDatabase
            | Self::PermissionDenied
            | Self::MigrationFailed
            | Self::DeadlineExceeded
            | Self::InspectionFailed => 1,
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
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Drift(#[from] DriftError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Rollback(#[from] RollbackError),
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
            Self::Ledger(e) if e.pg().is_some_and(|pg| pg.is(INSUFFICIENT_PRIVILEGE)) => ErrorType::PermissionDenied,
            Self::Ledger(_) => ErrorType::MigrationFailed,
            Self::Migration(e) if e.error.is(INSUFFICIENT_PRIVILEGE) => ErrorType::PermissionDenied,
            Self::Migration(e) if e.deadline => ErrorType::DeadlineExceeded,
            Self::Migration(_) => ErrorType::MigrationFailed,
            Self::Deadline { .. } => ErrorType::DeadlineExceeded,
            Self::Snapshot(SnapshotError::Source(_)) => ErrorType::InvalidMigrations,
            Self::Snapshot(_) => ErrorType::InvalidSnapshot,
            Self::Catalog(e) if e.error.is(INSUFFICIENT_PRIVILEGE) => ErrorType::PermissionDenied,
            Self::Catalog(_) => ErrorType::InspectionFailed,
            Self::Drift(_) => ErrorType::DriftDetected,
            Self::Verify(VerifyError::Catalogue { .. }) => ErrorType::InvalidMigrations,
            Self::Verify(VerifyError::Failed { .. }) => ErrorType::VerificationFailed,
            Self::Rollback(RollbackError::Plan(PlanError::ChecksumMismatch { .. })) => ErrorType::ChecksumMismatch,
            Self::Rollback(RollbackError::Plan(PlanError::UnknownRows { .. })) => ErrorType::UnknownMigrations,
            Self::Rollback(RollbackError::Plan(PlanError::UnknownTarget { .. })) => ErrorType::InvalidRequest,
            Self::Rollback(RollbackError::Plan(PlanError::OutOfOrder { .. })) => ErrorType::OutOfOrderMigration,
            Self::Rollback(RollbackError::Inspect { error, .. }) if error.is(INSUFFICIENT_PRIVILEGE) => ErrorType::PermissionDenied,
            Self::Rollback(RollbackError::Inspect { .. }) => ErrorType::InspectionFailed,
            Self::Rollback(_) => ErrorType::RollbackRefused,
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
            Self::Snapshot(e) => e.tag(),
            Self::Rollback(e) => e.tag(),
            _ => None,
        }
    }

    pub fn pg(&self) -> Option<&PgError> {
        match self {
            Self::Connect(ConnectError::Connect { error, .. })
            | Self::Session(error)
            | Self::Lock(LockError::Database { error, .. }) => Some(error),
            Self::Ledger(e) => e.pg(),
            Self::Migration(e) => Some(&e.error),
            Self::Catalog(e) => Some(&e.error),
            Self::Rollback(e) => e.pg(),
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
        for finding in [ErrorType::DriftDetected, ErrorType::VerificationFailed, ErrorType::RollbackRefused, ErrorType::InvalidSnapshot] {
            assert_eq!(finding.exit_code(), 3, "{finding}");
        }
        assert_eq!(ErrorType::InspectionFailed.exit_code(), 1);
    }

    #[test]
    fn type_names_serialize_as_written() {
        assert_eq!(serde_json::to_string(&ErrorType::MigrationLockBusy).unwrap(), "\"MigrationLockBusy\"");
        assert_eq!(ErrorType::DeadlineExceeded.as_str(), "DeadlineExceeded");
    }
}
