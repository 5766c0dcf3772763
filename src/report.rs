//! The one report every command produces: printed by the CLI (`--json` or human lines),
//! returned by the Lambda, and summarised into the SSM state.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::database::DatabaseInfo;
use crate::error::{Error, ErrorType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Status,
    Plan,
    Migrate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Migrations were applied by this run.
    Applied,
    /// Nothing pending, nothing wrong.
    UpToDate,
    /// `status`: migrations wait to be applied.
    Pending,
    /// `status`: the ledger and the files disagree; `migrate` would refuse.
    Invalid,
    /// `plan` or `migrate --dry-run`: what would happen, nothing changed.
    Planned,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedEntry {
    pub tag: String,
    pub hash: String,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingEntry {
    pub tag: String,
    pub hash: String,
    pub statements: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SegmentStatus {
    Planned,
    Committed,
    RolledBack,
    /// An autocommit segment failed after some statements had committed.
    PartiallyApplied,
    NotRun,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentReport {
    pub index: usize,
    /// `transaction` or `autocommit`.
    pub mode: String,
    pub migrations: Vec<String>,
    pub status: SegmentStatus,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProblemReport {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    #[serde(rename = "type")]
    pub error_type: ErrorType,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_pid: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationsInfo {
    pub source: String,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub action: Action,
    pub status: Status,
    pub environment: String,
    /// The last applied migration: the database's schema version.
    pub current: Option<String>,
    /// Applied by this run.
    pub applied: Vec<AppliedEntry>,
    /// Still pending after this run.
    pub pending: Vec<PendingEntry>,
    pub duration_ms: u64,
    pub lock_wait_ms: u64,
    pub run_id: String,
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub segments: Vec<SegmentReport>,
    pub problems: Vec<ProblemReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrations: Option<MigrationsInfo>,
    pub tool_version: String,
}

impl Report {
    pub fn new(action: Action, environment: &str, run_id: &str) -> Self {
        Self {
            action,
            status: Status::Failed,
            environment: environment.to_string(),
            current: None,
            applied: Vec::new(),
            pending: Vec::new(),
            duration_ms: 0,
            lock_wait_ms: 0,
            run_id: run_id.to_string(),
            warnings: Vec::new(),
            error: None,
            dry_run: false,
            target: None,
            segments: Vec::new(),
            problems: Vec::new(),
            database: None,
            migrations: None,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// Marks the report failed with `error`'s type and details.
    pub fn fail(&mut self, error: &Error) {
        self.status = Status::Failed;
        let pg = error.pg();
        self.error = Some(ErrorReport {
            error_type: error.error_type(),
            message: error.to_string(),
            migration: error.migration().map(str::to_string),
            sqlstate: pg.and_then(|p| p.sqlstate.clone()),
            statement: match error {
                Error::Migration(m) => m.statement.clone(),
                _ => None,
            },
            detail: pg.and_then(|p| p.detail.clone()),
            hint: pg.and_then(|p| p.hint.clone()),
            holder_pid: match error {
                Error::Lock(crate::lock::LockError::Busy { holder_pid, .. }) => *holder_pid,
                _ => None,
            },
        });
    }

    /// The CLI contract: 0 success or nothing to do, 1 failed, 2 usage or configuration,
    /// 3 validation refused (also `status` finding problems), 4 lock wait exceeded.
    pub fn exit_code(&self) -> i32 {
        match (&self.status, &self.error) {
            (Status::Failed, Some(e)) => e.error_type.exit_code(),
            (Status::Failed, None) => 1,
            (Status::Invalid, _) => 3,
            _ => 0,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }

    /// Lines for a person at a terminal: one per migration, then a summary.
    pub fn render_human(&self) -> String {
        let mut out = String::new();
        let db = self.database.as_ref().map(|d| format!(" · {d}")).unwrap_or_default();
        let _ = writeln!(out, "wishlist-migrator {} · env {}{db}", action_name(self.action), self.environment);
        for p in &self.problems {
            let _ = writeln!(out, "  ! {}", p.message);
        }
        for a in &self.applied {
            let _ = writeln!(out, "  ✓ {:<48} {:>7} ms", a.tag, a.duration_ms);
        }
        let show_pending = matches!(self.status, Status::Planned | Status::Pending | Status::Invalid | Status::UpToDate)
            || self.action == Action::Status;
        if show_pending {
            for s in self.segments.iter().filter(|s| s.status == SegmentStatus::Planned) {
                let why = s.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
                let _ = writeln!(out, "  segment {} · {}{why}", s.index + 1, s.mode);
                for tag in &s.migrations {
                    let statements = self.pending.iter().find(|p| &p.tag == tag).map_or(0, |p| p.statements);
                    let _ = writeln!(out, "    → {tag:<46} {statements} statement(s)");
                }
            }
            if self.segments.is_empty() {
                for p in &self.pending {
                    let _ = writeln!(out, "  · {:<48} pending", p.tag);
                }
            }
        }
        for w in &self.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
        let current = self.current.as_deref().unwrap_or("none");
        let summary = match self.status {
            Status::Applied => {
                let committed = self.segments.iter().filter(|s| s.status == SegmentStatus::Committed).count();
                format!(
                    "applied {} migration(s) in {committed} commit(s) in {} ms; current: {current}",
                    self.applied.len(),
                    self.duration_ms
                )
            }
            Status::UpToDate => format!("up to date; current: {current}"),
            Status::Pending => format!("{} pending; current: {current}", self.pending.len()),
            Status::Planned => format!(
                "would apply {} migration(s) in {} segment(s); nothing changed; current: {current}",
                self.segments.iter().map(|s| s.migrations.len()).sum::<usize>(),
                self.segments.len()
            ),
            Status::Invalid => format!("{} problem(s) found; migrate would refuse; current: {current}", self.problems.len()),
            Status::Failed => format!("failed after {} ms; current: {current}", self.duration_ms),
        };
        let _ = writeln!(out, "{summary}");
        out
    }

    /// The error part for stderr.
    pub fn render_error(&self) -> Option<String> {
        let e = self.error.as_ref()?;
        let mut out = format!("error[{}]: {}", e.error_type, e.message);
        if let Some(statement) = &e.statement {
            let _ = write!(out, "\n  statement: {statement}");
        }
        Some(out)
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Status => "status",
        Action::Plan => "plan",
        Action::Migrate => "migrate",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_camel_case_with_the_contract_fields() {
        let mut r = Report::new(Action::Migrate, "dev", "run-1");
        r.status = Status::UpToDate;
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for field in ["action", "status", "environment", "current", "applied", "pending", "durationMs", "lockWaitMs", "runId", "warnings"] {
            assert!(v.get(field).is_some(), "missing {field}");
        }
        assert_eq!(v["status"], "upToDate");
        assert!(v.get("error").is_none());
    }

    #[test]
    fn failure_carries_type_and_migration() {
        let mut r = Report::new(Action::Migrate, "dev", "run-1");
        let e = Error::Plan(crate::plan::PlanError::OutOfOrder {
            tag: "0003_x".into(),
            when: 1,
            newest_applied_when: 2,
        });
        r.fail(&e);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["error"]["type"], "OutOfOrderMigration");
        assert_eq!(v["error"]["migration"], "0003_x");
        assert!(r.render_error().unwrap().starts_with("error[OutOfOrderMigration]"));
    }
}
