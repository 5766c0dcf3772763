//! What a run did, as typed values: every command returns one of these, and the report is
//! built from them in one place (`report::build`). A command that fails part-way still says how
//! far it got: its outcome comes back with the error beside it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::db::connection::DatabaseInfo;
use crate::db::history::{HistoryRow, RecoveryPoint};
use crate::engine::check::TrapFinding;
use crate::engine::command::Command;
use crate::engine::error::Error;
use crate::engine::plan::{Assessment, SegmentMode};
use crate::engine::rollback_plan::DataAtRisk;
use crate::lint::Finding;
use crate::schema::drift::{Difference, ModelMismatch};
use crate::schema::verify::Check;

/// One run, start to end.
#[derive(Debug)]
pub struct RunOutcome {
    pub run_id: String,
    pub command: Command,
    pub environment: String,
    pub duration: Duration,
    /// Where the run connected, once it had.
    pub database: Option<DatabaseInfo>,
    /// The migration set, once it was loaded.
    pub migrations: Option<MigrationsLoaded>,
    /// How long the run waited for the advisory lock (also when it gave up).
    pub lock_wait: Duration,
    pub warnings: Vec<String>,
    pub done: Done,
    pub error: Option<Error>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationsLoaded {
    pub source: String,
    pub count: usize,
}

/// What the command did, by command; `Nothing` when it stopped before its first step.
#[derive(Debug, Default)]
pub enum Done {
    #[default]
    Nothing,
    Status(LedgerView),
    Migrate(Migrated),
    Drift(Drifted),
    Verify(Verified),
    Rollback(RolledBack),
    CheckRollback(CheckedRollback),
    Require(Required),
    History(Vec<HistoryRow>),
    Lint(Linted),
    Check(Checked),
}

/// `check`: the folder's traps, and the lint of what the change adds.
#[derive(Debug, Default)]
pub struct Checked {
    /// `--base` as given.
    pub base: Option<String>,
    /// The migrations the base lacks, in order (none without a base).
    pub new: Vec<String>,
    pub traps: Vec<TrapFinding>,
    pub findings: Vec<Finding>,
}

/// `lint`: what was linted and what the policy found.
#[derive(Debug, Default)]
pub struct Linted {
    pub findings: Vec<Finding>,
    /// The migrations linted, in order.
    pub linted: Vec<String>,
    /// Whether the live tables' sizes were considered (only the pending migrations are linted then).
    pub live: bool,
    pub ledger: Option<LedgerView>,
}

/// `require`: the version asked for, and the migrations up to it the database lacks.
#[derive(Debug, Default)]
pub struct Required {
    pub ledger: Option<LedgerView>,
    pub version: String,
    pub missing: Vec<String>,
}

/// A command's outcome as far as it got, its warnings, and the error that stopped it.
#[derive(Debug, Default)]
pub struct Finished<T> {
    pub outcome: T,
    pub warnings: Vec<String>,
    pub error: Option<Error>,
}

impl<T: Default> Finished<T> {
    pub fn failed(error: Error) -> Self {
        Self {
            outcome: T::default(),
            warnings: Vec::new(),
            error: Some(error),
        }
    }
}

impl<T> Finished<T> {
    pub fn new(outcome: T, warnings: Vec<String>, error: Option<Error>) -> Self {
        Self { outcome, warnings, error }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Finished<U> {
        Finished {
            outcome: f(self.outcome),
            warnings: self.warnings,
            error: self.error,
        }
    }
}

/// The database's ledger against the local migrations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerView {
    /// The newest applied migration: the schema version.
    pub current: Option<String>,
    pub pending: Vec<PendingMigration>,
    pub problems: Vec<ProblemFound>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMigration {
    pub tag: String,
    pub hash: String,
    pub statements: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemFound {
    pub kind: &'static str,
    pub migration: Option<String>,
    pub message: String,
}

impl LedgerView {
    pub fn of(assessment: &Assessment<'_>) -> Self {
        Self {
            current: assessment.current().map(|m| m.tag.clone()),
            pending: assessment
                .pending
                .iter()
                .map(|m| PendingMigration {
                    tag: m.tag.clone(),
                    hash: m.hash.clone(),
                    statements: m.statements.len(),
                })
                .collect(),
            problems: assessment
                .problems
                .iter()
                .map(|p| ProblemFound {
                    kind: p.kind(),
                    migration: p.tag().map(str::to_string),
                    message: p.describe(),
                })
                .collect(),
        }
    }

    /// `tag` was applied: it is the current version and no longer pending.
    pub fn applied(&mut self, tag: &str) {
        self.pending.retain(|p| p.tag != tag);
        self.current = Some(tag.to_string());
    }
}

/// `plan` and `migrate`.
#[derive(Debug, Default)]
pub struct Migrated {
    /// The ledger as it stands after the run (read before it, updated per commit).
    pub ledger: Option<LedgerView>,
    pub segments: Vec<SegmentOutcome>,
    pub applied: Vec<AppliedMigration>,
    /// The lint gate's findings on the pending migrations.
    pub findings: Vec<Finding>,
    /// Where the run's committed work began: the recovery target that undoes it.
    pub recovery_point: Option<RecoveryPoint>,
    /// `--online`: the migrations that run by recipes, each statement's decision and steps.
    pub online: Vec<crate::online::OnlinePlan>,
    /// `--online`: what each backfill of this run did (rows walked and written, batches, time).
    pub backfills: Vec<BackfillProgress>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub tag: String,
    pub hash: String,
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SegmentStatus {
    Planned,
    Committed,
    RolledBack,
    /// The segment failed after some of its statements had committed: an autocommit segment, or
    /// a migration whose own `COMMIT` had kept the part before it.
    PartiallyApplied,
    NotRun,
    /// The connection failed after the segment's `COMMIT` was sent, and reading the ledger back
    /// afterwards failed too: the client cannot know whether the server committed it.
    Unknown,
}

/// One commit segment of the plan, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentOutcome {
    pub mode: SegmentMode,
    pub migrations: Vec<String>,
    pub status: SegmentStatus,
    pub attempts: u32,
    /// Why the segment ends where it does (runs outside a transaction, commits an enum value).
    pub reason: Option<String>,
}

/// `drift`: `differences` is `None` until the comparison ran.
#[derive(Debug, Default)]
pub struct Drifted {
    pub ledger: Option<LedgerView>,
    pub baseline: Option<BaselineSource>,
    /// Changes made to the database outside the migrations.
    pub differences: Option<Vec<Difference>>,
    pub model_mismatches: Option<Vec<ModelMismatch>>,
    pub notes: Vec<String>,
}

/// Where the "what the migrations built" side came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BaselineSource {
    /// Recorded at the end of this tool's last `migrate` or `rollback`, for the current ledger.
    Recorded,
    /// Built just now by replaying the applied migrations into a scratch database.
    Replayed,
    /// No baseline could be had: the live schema was compared with the snapshot.
    Snapshot,
}

/// `verify`.
#[derive(Debug, Default)]
pub struct Verified {
    pub ledger: Option<LedgerView>,
    pub baseline: Option<BaselineSource>,
    pub differences: Option<Vec<Difference>>,
    pub model_mismatches: Option<Vec<ModelMismatch>>,
    pub notes: Vec<String>,
    pub checks: Option<Vec<Check>>,
}

/// `rollback`.
#[derive(Debug, Default)]
pub struct RolledBack {
    pub ledger: Option<LedgerView>,
    pub plan: Option<RollbackSteps>,
    /// The rollback transaction committed.
    pub committed: bool,
    /// The schema afterwards against the target's snapshot.
    pub differences: Option<Vec<Difference>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollbackSteps {
    /// The migration left as the newest applied one, or `none`.
    pub to: String,
    /// Newest first, in the order the down files run.
    pub steps: Vec<RollbackStep>,
    pub data_at_risk: Vec<DataAtRisk>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackStep {
    pub tag: String,
    pub hash: String,
    pub statements: Vec<String>,
    /// Set once the rollback committed.
    pub duration: Option<Duration>,
}

/// `check-rollback`.
#[derive(Debug, Default)]
pub struct CheckedRollback {
    pub ledger: Option<LedgerView>,
    pub checks: Option<Vec<Check>>,
}

/// Backfill progress, for the run's report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillProgress {
    pub migration: String,
    pub table: String,
    pub column: String,
    /// Rows walked by this run, and of them written (the others were converted already).
    pub rows: i64,
    pub written: i64,
    /// The planner's estimate of the table's rows when the backfill started.
    pub estimated_rows: i64,
    pub batches: u32,
    pub duration_ms: u64,
}
