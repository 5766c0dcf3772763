//! A run's error: the errors of the layers below under one type, each classified by its own
//! layer through [`Classified`].

use crate::db::catalog::CatalogError;
use crate::db::connection::{ConnectError, PgError};
use crate::db::ledger::LedgerError;
use crate::db::lock::LockError;
use crate::engine::check::CheckError;
use crate::engine::command::Action;
use crate::engine::plan::PlanError;
use crate::engine::resume::ResumeError;
use crate::engine::rollback_plan::RollbackError;
use crate::error::{Classified, Details, ErrorType, INSUFFICIENT_PRIVILEGE};
use crate::lint::LintError;
use crate::migrations::source::SourceError;
use crate::migrations::statement::Statement;
use crate::schema::drift::DriftError;
use crate::schema::snapshot::SnapshotError;
use crate::schema::verify::VerifyError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    #[error("{} did not finish by its deadline: the database stopped answering{} (a stalled connection or a network that dropped it). Whatever the server had not committed by the deadline never commits (it checks the deadline on its own clock before each COMMIT), and it rolls that back and frees the migration lock once it notices the connection is gone; what it committed before is in the ledger. Check with `status`, then run it again", action.name(), in_migration.as_deref().map(|tag| format!(" while it was applying {tag}")).unwrap_or_default())]
    Abandoned { action: Action, in_migration: Option<String> },
    #[error("{tag}: the connection failed ({cause}) after the segment's COMMIT was sent, so its answer could not say whether the server committed. {settled}")]
    ConnectionLost { tag: String, cause: String, settled: String },
    #[error("the database lacks {} migration(s) that {version} needs: {}. Run the release's migrate first (Step Functions workflow or the custom resource), then deploy what needs {version}", missing.len(), missing.join(", "))]
    SchemaBehind { version: String, missing: Vec<String> },
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
    #[error(transparent)]
    Resume(#[from] ResumeError),
    #[error(transparent)]
    Lint(#[from] LintError),
    #[error(transparent)]
    Check(#[from] CheckError),
}

impl Error {
    fn layer(&self) -> Option<&dyn Classified> {
        Some(match self {
            Self::Source(e) => e,
            Self::Connect(e) => e,
            Self::Lock(e) => e,
            Self::Plan(e) => e,
            Self::Ledger(e) => e,
            Self::Migration(e) => e,
            Self::Snapshot(e) => e,
            Self::Catalog(e) => e,
            Self::Drift(e) => e,
            Self::Verify(e) => e,
            Self::Rollback(e) => e,
            Self::Resume(e) => e,
            Self::Lint(e) => e,
            Self::Check(e) => e,
            Self::ReadOnly { .. }
            | Self::Session(_)
            | Self::Deadline { .. }
            | Self::Abandoned { .. }
            | Self::SchemaBehind { .. }
            | Self::ConnectionLost { .. } => return None,
        })
    }

    /// A wrong password (or a rotated secret): the Lambda fetches the secret again on this.
    pub fn is_authentication_failure(&self) -> bool {
        matches!(self, Self::Connect(e) if e.is_authentication_failure())
    }
}

impl Classified for Error {
    fn error_type(&self) -> ErrorType {
        match self {
            Self::ReadOnly { .. } => ErrorType::ReadOnlyDatabase,
            Self::Session(_) | Self::ConnectionLost { .. } => ErrorType::ConnectionFailed,
            Self::Deadline { .. } | Self::Abandoned { .. } => ErrorType::DeadlineExceeded,
            Self::SchemaBehind { .. } => ErrorType::SchemaBehind,
            _ => self.layer().map_or(ErrorType::MigrationFailed, Classified::error_type),
        }
    }

    fn migration(&self) -> Option<&str> {
        match self {
            Self::Abandoned { in_migration, .. } => return in_migration.as_deref(),
            Self::ConnectionLost { tag, .. } => return Some(tag),
            _ => {}
        }
        self.layer().and_then(Classified::migration)
    }

    fn details(&self) -> Details {
        match self {
            Self::Session(pg) => pg.details(),
            _ => self.layer().map(Classified::details).unwrap_or_default(),
        }
    }
}

/// A statement (or the commit) of a migration failed.
#[derive(Debug, thiserror::Error)]
#[error("{tag}: {location} failed: {error}. {advice}")]
pub struct MigrationError {
    pub tag: String,
    /// e.g. "statement 3 (line 7)" or "COMMIT".
    pub location: String,
    /// The statement's first line, to find it in the file.
    pub statement: Option<String>,
    pub error: PgError,
    /// The statement was cancelled because the invocation ran out of time.
    pub deadline: bool,
    pub advice: String,
    /// `--online`: the new type refuses values of the column (`ValuesRefused`).
    pub refused_values: bool,
}

impl MigrationError {
    /// Statement `i` (0-based) of migration `tag` failed with `error`.
    pub fn at_statement(tag: &str, i: usize, statement: &Statement, error: PgError, deadline: bool, advice: impl Into<String>) -> Self {
        Self {
            tag: tag.to_string(),
            location: format!("statement {} (line {})", i + 1, statement.line),
            statement: Some(statement.summary()),
            error,
            deadline,
            advice: advice.into(),
            refused_values: false,
        }
    }

    /// The 1-based statement [`Self::at_statement`] named, or `None` for the COMMIT.
    pub fn statement_number(&self) -> Option<usize> {
        self.location.strip_prefix("statement ")?.split(' ').next()?.parse().ok()
    }
}

impl Classified for MigrationError {
    fn error_type(&self) -> ErrorType {
        if self.error.is(INSUFFICIENT_PRIVILEGE) {
            ErrorType::PermissionDenied
        } else if self.refused_values {
            ErrorType::ValuesRefused
        } else if self.deadline {
            ErrorType::DeadlineExceeded
        } else {
            ErrorType::MigrationFailed
        }
    }

    fn migration(&self) -> Option<&str> {
        Some(&self.tag)
    }

    fn details(&self) -> Details {
        Details {
            statement: self.statement.clone(),
            ..self.error.details()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(sqlstate: &str) -> PgError {
        PgError {
            sqlstate: Some(sqlstate.into()),
            message: "m".into(),
            detail: Some("d".into()),
            hint: None,
        }
    }

    #[test]
    fn each_layer_names_its_own_error_type() {
        let plan = Error::from(PlanError::OutOfOrder {
            tag: "0003_x".into(),
            when: 1,
            newest_applied_when: 2,
        });
        assert_eq!(plan.error_type(), ErrorType::OutOfOrderMigration);
        assert_eq!(plan.migration(), Some("0003_x"));
        let busy = Error::from(LockError::Busy {
            key: 1,
            holder_pid: Some(42),
            waited_ms: 10,
        });
        assert_eq!(busy.error_type(), ErrorType::MigrationLockBusy);
        assert_eq!(busy.exit_code(), 4);
        assert_eq!(busy.details().holder_pid, Some(42));
        let rollback = Error::from(RollbackError::Plan(PlanError::UnknownTarget { tag: "x".into() }));
        assert_eq!(rollback.error_type(), ErrorType::InvalidRequest);
        let denied = Error::from(LedgerError::Database {
            operation: "insert into",
            table: "t".into(),
            error: pg(INSUFFICIENT_PRIVILEGE),
        });
        assert_eq!(denied.error_type(), ErrorType::PermissionDenied);
        assert_eq!(denied.details().sqlstate.as_deref(), Some(INSUFFICIENT_PRIVILEGE));
        assert_eq!(Error::Deadline { during: "x" }.error_type(), ErrorType::DeadlineExceeded);
        assert_eq!(Error::Session(pg("08006")).error_type(), ErrorType::ConnectionFailed);
    }

    #[test]
    fn a_failed_statement_carries_its_location_and_deadline() {
        let failed = |deadline, sqlstate| MigrationError {
            tag: "0001_a".into(),
            location: "statement 2 (line 5)".into(),
            statement: Some("ALTER TABLE x".into()),
            error: pg(sqlstate),
            deadline,
            advice: "a".into(),
            refused_values: false,
        };
        assert_eq!(Error::from(failed(false, "42P07")).error_type(), ErrorType::MigrationFailed);
        assert_eq!(Error::from(failed(true, "57014")).error_type(), ErrorType::DeadlineExceeded);
        assert_eq!(
            Error::from(failed(false, INSUFFICIENT_PRIVILEGE)).error_type(),
            ErrorType::PermissionDenied
        );
        let details = Error::from(failed(false, "42P07")).details();
        assert_eq!(details.statement.as_deref(), Some("ALTER TABLE x"));
        assert_eq!(details.detail.as_deref(), Some("d"));
    }
}
