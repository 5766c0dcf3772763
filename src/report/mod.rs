//! The one report every command produces: printed by the CLI (`--json` or human lines),
//! returned by the Lambda, and summarised into the SSM state.

mod build;
mod github;
mod human;
mod in_progress;
pub mod progress;

use serde::{Deserialize, Serialize};

use crate::db::connection::DatabaseInfo;
use crate::db::history::{HistoryRow, RecoveryPoint};
use crate::engine::check::TrapFinding;
pub use crate::engine::command::Action;
use crate::engine::error::Error;
use crate::engine::invocation::Invocation;
use crate::engine::outcome::BaselineSource;
pub use crate::engine::outcome::SegmentStatus;
use crate::engine::rollback_plan::DataAtRisk;
use crate::error::ErrorType;
use crate::schema::drift::{Difference, ModelMismatch};
use crate::schema::verify::Check;

/// Runs the invocation's command and reports it: the one run loop, with its report.
pub async fn run(inv: &Invocation<'_>) -> Result<Report, Box<Failure>> {
    let outcome = crate::engine::run(inv).await;
    let report = Report::from_outcome(&outcome);
    match outcome.error {
        None => Ok(report),
        Some(error) => Err(Box::new(Failure { report, error })),
    }
}

/// A failed run: the error, and the report saying how far it got.
#[derive(Debug)]
pub struct Failure<E = Error> {
    pub report: Report,
    pub error: E,
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
    /// `drift`: nobody changed the database, and the snapshot agrees with the migrations.
    #[serde(rename = "ok")]
    NoDrift,
    /// `drift`: the database was changed outside its migrations (listed in `differences`).
    DriftDetected,
    /// `drift`: no manual change, but drizzle's snapshot and what the migrations build disagree
    /// (listed in `modelMismatches`).
    ModelMismatch,
    /// `verify` / `check-rollback`: every check passed.
    Verified,
    /// `verify` / `check-rollback`: a check failed (see `checks`).
    VerificationFailed,
    /// `rollback`: the down files ran and the ledger rows are gone.
    RolledBack,
    /// `require`: the version and everything before it are applied.
    Satisfied,
    /// `require`: migrations the version needs are not applied (listed in `missing`).
    SchemaBehind,
    /// `history`: the rows are in `history`.
    Listed,
    /// `lint`: no finding blocks (warnings and waived findings may be listed in `findings`).
    Clean,
    /// `lint`, or `migrate` refusing before it applied anything: an error-level finding without
    /// a waiver (in `findings`).
    LintFailed,
    /// `check`: a trap or a blocking lint finding in the migrations folder (in `traps`,
    /// `findings`).
    CheckFailed,
    /// `migrate --online` reached its deadline part-way through a recipe: the steps that
    /// committed stay and the next run resumes after them (what is left in `inProgress`).
    InProgress,
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

/// One finding of the lint gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingReport {
    pub rule: String,
    /// `error` or `warning`.
    pub level: String,
    pub migration: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub excerpt: String,
    pub message: String,
    pub alternative: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// With a database: the planner's row estimate of the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_bytes: Option<u64>,
    /// With a database: how long writes to the table would wait, estimated from its size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks_writes_ms: Option<u64>,
    /// The waiver's reason; a waived finding blocks nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waived: Option<String>,
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

/// What an online run stopped by its deadline leaves for the next run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InProgressReport {
    /// The migrations still to apply, in order; the first may be part-way.
    pub remaining: Vec<String>,
    /// The migration the run stopped in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<String>,
    /// The step (1-based, of `steps`: the migration's statements with each recipe's steps in
    /// place of its statement) the next run starts at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// That step's first line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// Why the run stopped where it did.
    pub reason: String,
}

impl InProgressReport {
    /// One line for a log or a CloudFormation reason: where the run stopped and what is left.
    pub fn summary(&self) -> String {
        let at = match (&self.migration, self.step, self.steps) {
            (Some(m), Some(step), Some(steps)) => format!("{m} is part-way (next: step {step} of {steps})"),
            (Some(m), Some(step), None) => format!("{m} is part-way (next: step {step})"),
            (Some(m), _, _) => format!("{m} is part-way"),
            (None, _, _) => "the run stopped between migrations".into(),
        };
        format!("{at}; {} migration(s) left: {}", self.remaining.len(), self.remaining.join(", "))
    }
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
    /// The fleet target (a manifest's `name`) the run was for, when a request named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    pub segments: Vec<SegmentReport>,
    pub problems: Vec<ProblemReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrations: Option<MigrationsInfo>,
    pub tool_version: String,
    /// `drift`, `verify`: changes made to the database outside its migrations; `rollback`: how
    /// the schema differs from the target's snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differences: Option<Vec<Difference>>,
    /// `drift`, `verify`: what `differences` were measured against: `recorded` (the catalog this
    /// tool recorded after its last run), `replayed` (the migrations replayed into a scratch
    /// database) or `snapshot` (neither was possible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineSource>,
    /// `drift`, `verify`: where drizzle's snapshot disagrees with what the migrations build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_mismatches: Option<Vec<ModelMismatch>>,
    /// `migrate`: where the run's committed work began on the server's clock and in its WAL:
    /// the point-in-time recovery target that undoes the run (docs/backup-restore.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_point: Option<RecoveryPoint>,
    /// `history`: the history table's rows, newest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryRow>>,
    /// `require`: the migrations up to the version asked for that are not applied, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// `lint`, `plan`, `migrate`: the schema-evolution policy's findings (docs/schema-evolution.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<FindingReport>,
    /// `plan`, `migrate` with `--online`: the migrations that run by lock-safe recipes, each
    /// statement's decision and the steps that run instead of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub online: Vec<crate::online::OnlinePlan>,
    /// `migrate --online` stopped by its deadline part-way (status `inProgress`): what is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<InProgressReport>,
    /// `migrate --online`: each backfill's progress (rows done of the table's estimate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backfills: Vec<crate::engine::outcome::BackfillProgress>,
    /// `lint`: the migrations it read, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linted: Option<Vec<String>>,
    /// Information that needs no action (enum values in the order Postgres appended them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// `verify`, `check-rollback`: every check made and its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<Check>>,
    /// `rollback`: what is (or would be, with `--dry-run`) undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReport>,
    /// `check`: drizzle-kit's team-workflow traps found in the folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traps: Option<Vec<TrapFinding>>,
    /// `check`: the `--base` the folder was compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// `check` with a base: the migrations the change adds (the ones linted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_migrations: Option<Vec<String>>,
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
            target_name: None,
            segments: Vec::new(),
            problems: Vec::new(),
            database: None,
            migrations: None,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            differences: None,
            baseline: None,
            model_mismatches: None,
            notes: Vec::new(),
            missing: Vec::new(),
            findings: Vec::new(),
            online: Vec::new(),
            in_progress: None,
            backfills: Vec::new(),
            linted: None,
            history: None,
            recovery_point: None,
            checks: None,
            rollback: None,
            traps: None,
            base: None,
            new_migrations: None,
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_camel_case_with_the_contract_fields() {
        let mut r = Report::new(Action::Migrate, "dev", "run-1");
        r.status = Status::UpToDate;
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for field in [
            "action",
            "status",
            "environment",
            "current",
            "applied",
            "pending",
            "durationMs",
            "lockWaitMs",
            "runId",
            "warnings",
        ] {
            assert!(v.get(field).is_some(), "missing {field}");
        }
        assert_eq!(v["status"], "upToDate");
        assert!(v.get("error").is_none());
    }

    #[test]
    fn failure_carries_type_and_migration() {
        let e = Error::Plan(crate::engine::plan::PlanError::OutOfOrder {
            tag: "0003_x".into(),
            when: 1,
            newest_applied_when: 2,
        });
        let r = Report::refused(Action::Migrate, "dev", &e);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["error"]["type"], "OutOfOrderMigration");
        assert_eq!(v["error"]["migration"], "0003_x");
        assert!(r.render_error().unwrap().starts_with("error[OutOfOrderMigration]"));
    }
}
