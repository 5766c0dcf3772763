//! The one place a report is made: from a run's typed outcome, or from an error that stopped
//! the run before it started. The status is decided here and nowhere else.

use crate::engine::check::CheckError;
use crate::engine::command::{Action, Command};
use crate::engine::error::Error;
use crate::engine::outcome::{Done, LedgerView, Migrated, RollbackSteps, RunOutcome, SegmentOutcome};
use crate::engine::plan::SegmentMode;
use crate::error::Classified;
use crate::lint::rule::Level;
use crate::lint::{Finding, LintError};
use crate::report::{
    AppliedEntry, ErrorReport, FindingReport, MigrationsInfo, PendingEntry, ProblemReport, Report, RollbackReport, RolledBackEntry,
    SegmentReport, Status,
};
use crate::schema::drift::DriftError;
use crate::schema::verify::VerifyError;

impl Report {
    pub fn from_outcome(outcome: &RunOutcome) -> Self {
        let mut report = Report::new(outcome.command.action(), &outcome.environment, &outcome.run_id);
        report.dry_run = outcome.command.dry_run();
        report.target = outcome.command.target().map(str::to_string);
        report.duration_ms = outcome.duration.as_millis() as u64;
        report.lock_wait_ms = outcome.lock_wait.as_millis() as u64;
        report.database = outcome.database.clone();
        report.migrations = outcome.migrations.as_ref().map(|m| MigrationsInfo {
            source: m.source.clone(),
            count: m.count,
        });
        report.in_progress = match (&outcome.done, &outcome.error) {
            (Done::Migrate(m), Some(error)) if !outcome.command.dry_run() => super::in_progress::of(m, error),
            _ => None,
        };
        report.status = match report.in_progress {
            Some(_) => Status::InProgress,
            None => status(&outcome.command, &outcome.done, outcome.error.as_ref()),
        };
        let ledger = match &outcome.done {
            Done::Nothing => None,
            Done::Status(view) => Some(view),
            Done::Migrate(m) => {
                report.segments = m.segments.iter().enumerate().map(|(i, s)| segment(i, s)).collect();
                report.applied = m
                    .applied
                    .iter()
                    .map(|a| AppliedEntry {
                        tag: a.tag.clone(),
                        hash: a.hash.clone(),
                        duration_ms: a.duration.as_millis() as u64,
                    })
                    .collect();
                report.findings = m.findings.iter().map(finding).collect();
                report.recovery_point = m.recovery_point.clone();
                report.online = m.online.clone();
                report.backfills = m.backfills.clone();
                m.ledger.as_ref()
            }
            Done::Drift(d) => {
                report.differences = d.differences.clone();
                report.baseline = d.baseline;
                report.model_mismatches = d.model_mismatches.clone();
                report.notes = d.notes.clone();
                d.ledger.as_ref()
            }
            Done::Verify(v) => {
                report.differences = v.differences.clone();
                report.baseline = v.baseline;
                report.model_mismatches = v.model_mismatches.clone();
                report.notes = v.notes.clone();
                report.checks = v.checks.clone();
                v.ledger.as_ref()
            }
            Done::Rollback(r) => {
                report.rollback = r.plan.as_ref().map(rollback);
                report.differences = r.differences.clone();
                r.ledger.as_ref()
            }
            Done::History(rows) => {
                report.history = Some(rows.clone());
                None
            }
            Done::Require(r) => {
                report.missing = r.missing.clone();
                r.ledger.as_ref()
            }
            Done::Lint(l) => {
                report.findings = l.findings.iter().map(finding).collect();
                report.linted = Some(l.linted.clone());
                l.ledger.as_ref()
            }
            Done::Check(c) => {
                report.traps = Some(c.traps.clone());
                report.findings = c.findings.iter().map(finding).collect();
                report.base = c.base.clone();
                report.new_migrations = c.base.as_ref().map(|_| c.new.clone());
                None
            }
            Done::CheckRollback(c) => {
                report.checks = c.checks.clone();
                c.ledger.as_ref()
            }
        };
        if let Some(view) = ledger {
            describe(view, &mut report);
        }
        report.warnings = outcome.warnings.clone();
        report.error = outcome.error.as_ref().map(|e| ErrorReport::of(e));
        report
    }

    /// A run that could not start (bad configuration, request or credentials): the same shape,
    /// status `failed`.
    pub fn refused(action: Action, environment: &str, error: &dyn Classified) -> Self {
        let mut report = Report::new(action, environment, &uuid::Uuid::now_v7().to_string());
        report.error = Some(ErrorReport::of(error));
        report
    }
}

impl ErrorReport {
    pub fn of(error: &dyn Classified) -> Self {
        let details = error.details();
        Self {
            error_type: error.error_type(),
            message: error.to_string(),
            migration: error.migration().map(str::to_string),
            sqlstate: details.sqlstate,
            statement: details.statement,
            detail: details.detail,
            hint: details.hint,
            holder_pid: details.holder_pid,
        }
    }
}

fn status(command: &Command, done: &Done, error: Option<&Error>) -> Status {
    // A finding keeps the status that names it, and a rollback that committed stays rolledBack;
    // the error adds its type and exit code.
    match (done, error) {
        (Done::Rollback(r), _) if r.committed => Status::RolledBack,
        (_, Some(Error::Drift(DriftError::ModelMismatch { .. }))) => Status::ModelMismatch,
        (_, Some(Error::SchemaBehind { .. })) => Status::SchemaBehind,
        (_, Some(Error::Lint(LintError::Refused { .. }))) => Status::LintFailed,
        (_, Some(Error::Check(CheckError::Failed { .. }))) => Status::CheckFailed,
        (_, Some(Error::Drift(_))) => Status::DriftDetected,
        (_, Some(Error::Verify(VerifyError::Failed { .. }))) => Status::VerificationFailed,
        (_, Some(_)) | (Done::Nothing, None) => Status::Failed,
        (Done::Status(view), None) => {
            if !view.problems.is_empty() {
                Status::Invalid
            } else if view.pending.is_empty() {
                Status::UpToDate
            } else {
                Status::Pending
            }
        }
        (Done::Migrate(Migrated { segments, .. }), None) if segments.is_empty() => Status::UpToDate,
        (Done::Migrate(_), None) if command.dry_run() => Status::Planned,
        (Done::Migrate(_), None) => Status::Applied,
        (Done::Drift(d), None) => match (&d.differences, &d.model_mismatches) {
            (Some(changes), _) if !changes.is_empty() => Status::DriftDetected,
            (_, Some(mismatches)) if !mismatches.is_empty() => Status::ModelMismatch,
            _ => Status::NoDrift,
        },
        (Done::Verify(_) | Done::CheckRollback(_), None) => Status::Verified,
        (Done::Require(_), None) => Status::Satisfied,
        (Done::History(_), None) => Status::Listed,
        (Done::Lint(_) | Done::Check(_), None) => Status::Clean,
        (Done::Rollback(r), None) if r.plan.as_ref().is_none_or(|p| p.steps.is_empty()) => Status::UpToDate,
        (Done::Rollback(_), None) => Status::Planned,
    }
}

fn finding(f: &Finding) -> FindingReport {
    FindingReport {
        rule: f.rule.id().to_string(),
        level: match f.level {
            Level::Error => "error".into(),
            Level::Warning => "warning".into(),
        },
        migration: f.migration.clone(),
        file: f.file.clone(),
        line: f.line,
        column: f.column,
        excerpt: f.excerpt.clone(),
        message: f.message.clone(),
        alternative: f.alternative.to_string(),
        table: f.table.clone(),
        estimated_rows: f.live.as_ref().map(|l| l.estimated_rows),
        table_bytes: f.live.as_ref().map(|l| l.total_bytes),
        blocks_writes_ms: f.live.as_ref().map(|l| l.blocks_writes_for.as_millis() as u64),
        waived: f.waived.clone(),
    }
}

fn describe(view: &LedgerView, report: &mut Report) {
    report.current = view.current.clone();
    report.pending = view
        .pending
        .iter()
        .map(|p| PendingEntry {
            tag: p.tag.clone(),
            hash: p.hash.clone(),
            statements: p.statements,
        })
        .collect();
    report.problems = view
        .problems
        .iter()
        .map(|p| ProblemReport {
            kind: p.kind.to_string(),
            migration: p.migration.clone(),
            message: p.message.clone(),
        })
        .collect();
}

fn segment(index: usize, s: &SegmentOutcome) -> SegmentReport {
    SegmentReport {
        index,
        mode: match s.mode {
            SegmentMode::Transaction => "transaction".into(),
            SegmentMode::Autocommit => "autocommit".into(),
        },
        migrations: s.migrations.clone(),
        status: s.status,
        attempts: s.attempts,
        reason: s.reason.clone(),
    }
}

fn rollback(plan: &RollbackSteps) -> RollbackReport {
    RollbackReport {
        to: plan.to.clone(),
        migrations: plan
            .steps
            .iter()
            .map(|s| RolledBackEntry {
                tag: s.tag.clone(),
                hash: s.hash.clone(),
                statements: s.statements.clone(),
                duration_ms: s.duration.map(|d| d.as_millis() as u64),
            })
            .collect(),
        data_at_risk: plan.data_at_risk.clone(),
    }
}
