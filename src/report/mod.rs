//! The one report every command produces: printed by the CLI (`--json` or human lines),
//! returned by the Lambda, and summarised into the SSM state.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::db::connection::DatabaseInfo;
use crate::schema::drift::Difference;
use crate::error::{Error, ErrorType};
use crate::engine::rollback::DataAtRisk;
use crate::schema::verify::{Check, CheckStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Status,
    Plan,
    Migrate,
    Drift,
    Verify,
    Rollback,
    CheckRollback,
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
    /// `drift`: the live schema is what the snapshot says.
    #[serde(rename = "ok")]
    NoDrift,
    /// `drift`: differences found (listed in `differences`).
    DriftDetected,
    /// `verify` / `check-rollback`: every check passed.
    Verified,
    /// `verify` / `check-rollback`: a check failed (see `checks`).
    VerificationFailed,
    /// `rollback`: the down files ran and the ledger rows are gone.
    RolledBack,
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
    /// `drift`, `verify`, `rollback`: how the live schema differs from the expected snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differences: Option<Vec<Difference>>,
    /// `verify`, `check-rollback`: every check made and its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<Check>>,
    /// `rollback`: what is (or would be, with `--dry-run`) undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackReport {
    /// The migration left as the newest applied one, or `none`.
    pub to: String,
    /// Newest first, in the order the down files run.
    pub migrations: Vec<RolledBackEntry>,
    /// Tables and columns holding data that the down files drop.
    pub data_at_risk: Vec<DataAtRisk>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolledBackEntry {
    pub tag: String,
    pub hash: String,
    /// The down file's statements, as they run.
    pub statements: Vec<String>,
    /// Set once the rollback committed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
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
            differences: None,
            checks: None,
            rollback: None,
        }
    }

    /// Marks the report failed with `error`'s type and details.
    pub fn fail(&mut self, error: &Error) {
        // A finding keeps the status that names it (a rollback that committed stays rolledBack);
        // the error adds its type and exit code.
        if !matches!(self.status, Status::DriftDetected | Status::VerificationFailed | Status::RolledBack) {
            self.status = Status::Failed;
        }
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
                Error::Lock(crate::db::lock::LockError::Busy { holder_pid, .. }) => *holder_pid,
                _ => None,
            },
        });
    }

    /// The CLI contract: 0 success or nothing to do, 1 failed, 2 usage or configuration,
    /// 3 validation refused (also `status` finding problems), 4 lock wait exceeded.
    pub fn exit_code(&self) -> i32 {
        match (&self.status, &self.error) {
            (_, Some(e)) => e.error_type.exit_code(),
            (Status::Failed, None) => 1,
            (Status::Invalid | Status::DriftDetected | Status::VerificationFailed, None) => 3,
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
        if let Some(rollback) = &self.rollback {
            for m in &rollback.migrations {
                let took = m.duration_ms.map(|d| format!(" {d:>7} ms")).unwrap_or_default();
                let _ = writeln!(out, "  ↩ {:<48}{took}", m.tag);
                if self.dry_run || m.duration_ms.is_none() {
                    for statement in &m.statements {
                        let _ = writeln!(out, "      {}", statement.replace('\n', "\n      "));
                    }
                }
            }
            for d in &rollback.data_at_risk {
                let _ = writeln!(out, "  ! data loss: {} ({})", d.object, d.migration);
            }
        }
        for c in self.checks.iter().flatten() {
            let mark = match c.status {
                CheckStatus::Passed => "✓",
                CheckStatus::Failed => "✗",
                CheckStatus::Skipped => "-",
            };
            let detail = c.detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default();
            let timing = c
                .timing
                .as_ref()
                .map(|t| format!(" (planning {:.3} ms, execution {:.3} ms, buffers hit {} read {})", t.planning_us as f64 / 1000.0, t.execution_us as f64 / 1000.0, t.shared_hit_blocks, t.shared_read_blocks))
                .unwrap_or_default();
            let kind = serde_json::to_value(c.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            let _ = writeln!(out, "  {mark} {kind} {}{detail}{timing}", c.object);
            for d in &c.differences {
                let _ = writeln!(out, "      ≠ {d}");
            }
        }
        for d in self.differences.iter().flatten() {
            let _ = writeln!(out, "  ≠ {d}");
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
            Status::UpToDate if self.action == Action::Rollback => format!("nothing to roll back; current: {current}"),
            Status::UpToDate => format!("up to date; current: {current}"),
            Status::Pending => format!("{} pending; current: {current}", self.pending.len()),
            Status::Planned if self.action == Action::Rollback => format!(
                "would roll back {} migration(s) to {}; nothing changed; current: {current}",
                self.rollback.as_ref().map_or(0, |r| r.migrations.len()),
                self.rollback.as_ref().map_or("?", |r| r.to.as_str())
            ),
            Status::Planned => format!(
                "would apply {} migration(s) in {} segment(s); nothing changed; current: {current}",
                self.segments.iter().map(|s| s.migrations.len()).sum::<usize>(),
                self.segments.len()
            ),
            Status::Invalid => format!("{} problem(s) found; migrate would refuse; current: {current}", self.problems.len()),
            Status::Failed => format!("failed after {} ms; current: {current}", self.duration_ms),
            Status::NoDrift => format!("no drift: the schema matches the snapshot of {current}"),
            Status::DriftDetected => format!(
                "drift: {} difference(s) from the snapshot of {current}",
                self.differences.as_ref().map_or(0, Vec::len)
            ),
            Status::Verified => format!("verified: {} check(s) passed; current: {current}", self.checks.as_ref().map_or(0, Vec::len)),
            Status::VerificationFailed => format!(
                "verification failed: {} of {} check(s) failed; current: {current}",
                self.checks.iter().flatten().filter(|c| c.failed()).count(),
                self.checks.as_ref().map_or(0, Vec::len)
            ),
            Status::RolledBack => {
                let n = self.rollback.as_ref().map_or(0, |r| r.migrations.len());
                let drift = self.differences.as_ref().map_or(0, Vec::len);
                if drift == 0 {
                    format!("rolled back {n} migration(s) in {} ms; current: {current}; schema matches its snapshot", self.duration_ms)
                } else {
                    format!("rolled back {n} migration(s); current: {current}; but {drift} difference(s) from its snapshot")
                }
            }
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
        Action::Drift => "drift",
        Action::Verify => "verify",
        Action::Rollback => "rollback",
        Action::CheckRollback => "check-rollback",
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
        let e = Error::Plan(crate::engine::plan::PlanError::OutOfOrder {
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
