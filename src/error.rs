//! The error contract every layer shares: the stable names deploy automation matches on
//! (`errorType`), their exit codes, and the [`Classified`] trait through which each layer's own
//! error type states its name. A leaf: it imports nothing of the crate.

use serde::{Deserialize, Serialize};

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
    /// The advisory lock was not held by our backend when it was given back: another run may
    /// have held it at the same time.
    MigrationLockLost,
    /// The connection goes through a pooler in transaction or statement mode.
    PoolerNotSupported,
    InvalidMigrations,
    ChecksumMismatch,
    OutOfOrderMigration,
    UnknownMigrations,
    MigrationFailed,
    DeadlineExceeded,
    /// The Lambda Runtime API sent no deadline, or one already past: nothing ran.
    InvalidDeadline,
    /// The database was changed outside the migrations (`drift` with failOnDrift), or differs
    /// from its snapshot after a rollback.
    DriftDetected,
    /// drizzle's snapshot and what the migrations build disagree (`drift --strict`).
    ModelMismatch,
    /// `require`: the database lacks a migration the version asked for needs.
    SchemaBehind,
    /// `lint`, or `migrate` before it applies anything: a migration breaks an error-level rule of
    /// the schema-evolution policy without a waiver.
    LintFailed,
    /// A `verify` or `check-rollback` check failed.
    VerificationFailed,
    /// A rollback would lose data, lacks a down file, or cannot be undone safely.
    RollbackRefused,
    /// A drizzle-kit snapshot is missing, unreadable or of an unsupported version.
    InvalidSnapshot,
    /// Reading the live schema from pg_catalog failed.
    InspectionFailed,
    /// `check`: the migrations folder holds a team-workflow trap (a duplicate prefix, a `when`
    /// going backwards, a released migration changed...) or a new migration breaks the lint.
    CheckFailed,
    /// `migrate --online`: the new type of a column refuses some of its values; the column is
    /// untouched and the recipe taken back.
    ValuesRefused,
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
            Self::MigrationLockLost => "MigrationLockLost",
            Self::PoolerNotSupported => "PoolerNotSupported",
            Self::InvalidMigrations => "InvalidMigrations",
            Self::ChecksumMismatch => "ChecksumMismatch",
            Self::OutOfOrderMigration => "OutOfOrderMigration",
            Self::UnknownMigrations => "UnknownMigrations",
            Self::MigrationFailed => "MigrationFailed",
            Self::DeadlineExceeded => "DeadlineExceeded",
            Self::InvalidDeadline => "InvalidDeadline",
            Self::DriftDetected => "DriftDetected",
            Self::ModelMismatch => "ModelMismatch",
            Self::SchemaBehind => "SchemaBehind",
            Self::LintFailed => "LintFailed",
            Self::VerificationFailed => "VerificationFailed",
            Self::RollbackRefused => "RollbackRefused",
            Self::InvalidSnapshot => "InvalidSnapshot",
            Self::InspectionFailed => "InspectionFailed",
            Self::CheckFailed => "CheckFailed",
            Self::ValuesRefused => "ValuesRefused",
        }
    }

    /// The CLI contract: 1 failed, 2 usage or configuration, 3 validation refused, 4 lock busy.
    pub fn exit_code(self) -> i32 {
        match self {
            Self::InvalidRequest | Self::ConfigError | Self::InvalidDeadline | Self::PoolerNotSupported => 2,
            Self::InvalidMigrations
            | Self::ChecksumMismatch
            | Self::OutOfOrderMigration
            | Self::UnknownMigrations
            | Self::DriftDetected
            | Self::ModelMismatch
            | Self::SchemaBehind
            | Self::LintFailed
            | Self::VerificationFailed
            | Self::RollbackRefused
            | Self::InvalidSnapshot
            | Self::CheckFailed
            | Self::ValuesRefused => 3,
            Self::MigrationLockBusy => 4,
            Self::SecretUnavailable
            | Self::ConnectionFailed
            | Self::ReadOnlyDatabase
            | Self::PermissionDenied
            | Self::MigrationFailed
            | Self::MigrationLockLost
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

/// What an error report carries besides the message, filled by the layer that knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    pub sqlstate: Option<String>,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// The first line of the statement that failed.
    pub statement: Option<String>,
    /// The backend holding the advisory lock.
    pub holder_pid: Option<i32>,
}

/// Every layer's error type says what it is in the contract's words: its stable
/// [`ErrorType`] (and so its exit code), the migration it is about, and its details.
pub trait Classified: std::error::Error + Send + Sync + 'static {
    fn error_type(&self) -> ErrorType;

    fn migration(&self) -> Option<&str> {
        None
    }

    fn details(&self) -> Details {
        Details::default()
    }

    fn exit_code(&self) -> i32 {
        self.error_type().exit_code()
    }
}

/// The message of `error` as every output but the report's own `detail` field carries it
/// (logs, the Lambda's error, CloudFormation's reason, the SSM state): Postgres's detail can
/// quote row values, so it is left out of all of them by this one rule.
pub fn public_message(error: &dyn Classified) -> String {
    without_detail(&error.to_string(), error.details().detail.as_deref())
}

/// `message` without Postgres's `detail`: "; detail: …" as `PgError` writes it is removed, and
/// any other occurrence is replaced.
pub fn without_detail(message: &str, detail: Option<&str>) -> String {
    match detail.map(str::trim) {
        Some(detail) if !detail.is_empty() => message
            .replace(&format!("; detail: {detail}"), "")
            .replace(detail, "(detail withheld)"),
        _ => message.to_string(),
    }
}

/// `insufficient_privilege`: the role may not do what the migration asks.
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";

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
        assert_eq!(ErrorType::PoolerNotSupported.exit_code(), 2);
        assert_eq!(ErrorType::MigrationLockLost.exit_code(), 1);
        assert_eq!(ErrorType::MigrationFailed.exit_code(), 1);
        for finding in [
            ErrorType::DriftDetected,
            ErrorType::ModelMismatch,
            ErrorType::SchemaBehind,
            ErrorType::LintFailed,
            ErrorType::VerificationFailed,
            ErrorType::RollbackRefused,
            ErrorType::InvalidSnapshot,
            ErrorType::CheckFailed,
            ErrorType::ValuesRefused,
        ] {
            assert_eq!(finding.exit_code(), 3, "{finding}");
        }
        assert_eq!(ErrorType::InspectionFailed.exit_code(), 1);
    }

    #[test]
    fn type_names_serialize_as_written() {
        assert_eq!(
            serde_json::to_string(&ErrorType::MigrationLockBusy).unwrap(),
            "\"MigrationLockBusy\""
        );
        assert_eq!(ErrorType::DeadlineExceeded.as_str(), "DeadlineExceeded");
    }
}
