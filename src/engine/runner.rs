//! The one run loop behind every command, for the CLI and the Lambda alike: connect, check the
//! session, lock, read the ledger, plan, apply segment by segment, release, report.

use std::time::{Duration, Instant};

use tokio_postgres::{Client, GenericClient};

use crate::db::catalog::{self, Catalog};
use crate::config::RunSettings;
use crate::db::connection::{ConnectionSettings, Database, PgError};
use crate::schema::drift::{self, Difference, DriftError, DriftOptions};
use crate::error::Error;
use crate::db::ledger::{HistoryEntry, LedgerTable};
use crate::db::lock;
use crate::engine::plan::{self, Assessment, PlanOptions, Segment, SegmentMode};
use crate::report::{
    Action, AppliedEntry, MigrationsInfo, PendingEntry, ProblemReport, Report, RollbackReport, RolledBackEntry, SegmentReport,
    SegmentStatus, Status,
};
use crate::engine::rollback::{self, DataAtRisk, RollbackError, RollbackPlan, RollbackTarget};
use crate::schema::snapshot::Snapshot;
use crate::migrations::source::{Migration, MigrationSet, MigrationSource, TransactionMode};
use crate::schema::verify::{self, Check, CheckKind, CheckStatus, VerifyError};

const LOCK_NOT_AVAILABLE: &str = "55P03";
const QUERY_CANCELED: &str = "57014";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Status,
    Plan { target: Option<String> },
    Migrate { target: Option<String>, dry_run: bool },
    /// Compares the live schema with the snapshot of the newest applied migration. Differences
    /// give status `driftDetected`; with `fail_on_drift` they are also an error (`DriftDetected`).
    Drift { fail_on_drift: bool },
    /// Drift, plus enum values, index validity and the hot queries' plans (`analyze`: timings).
    Verify { analyze: bool },
    /// Undoes every applied migration newer than `target`, newest first, in one transaction.
    Rollback {
        target: RollbackTarget,
        dry_run: bool,
        allow_data_loss: bool,
    },
    /// On a scratch database: apply, roll back, compare and re-apply each migration in turn.
    CheckRollback,
}

impl Command {
    pub fn action(&self) -> Action {
        match self {
            Self::Status => Action::Status,
            Self::Plan { .. } => Action::Plan,
            Self::Migrate { .. } => Action::Migrate,
            Self::Drift { .. } => Action::Drift,
            Self::Verify { .. } => Action::Verify,
            Self::Rollback { .. } => Action::Rollback,
            Self::CheckRollback => Action::CheckRollback,
        }
    }

    fn target(&self) -> Option<&str> {
        match self {
            Self::Status | Self::Drift { .. } | Self::Verify { .. } | Self::CheckRollback => None,
            Self::Plan { target } | Self::Migrate { target, .. } => target.as_deref(),
            Self::Rollback { target, .. } => Some(target.tag().unwrap_or(rollback::EMPTY_TARGET)),
        }
    }

    fn dry_run(&self) -> bool {
        match self {
            Self::Status | Self::Drift { .. } | Self::Verify { .. } | Self::CheckRollback => false,
            Self::Plan { .. } => true,
            Self::Migrate { dry_run, .. } | Self::Rollback { dry_run, .. } => *dry_run,
        }
    }
}

/// Everything one run needs; the CLI and the Lambda each build one and call [`run`].
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    pub command: Command,
    pub settings: &'a RunSettings,
    pub connection: &'a ConnectionSettings,
    pub source: &'a MigrationSource,
    /// Who runs it, recorded in the history table (e.g. `cli:alice`, `lambda:fn:7`).
    pub invoker: &'a str,
    /// Work stops before this instant (the Lambda's deadline minus a margin).
    pub deadline: Option<Instant>,
}

/// A failed run: the error, and the report saying how far it got.
#[derive(Debug)]
pub struct Failure {
    pub report: Report,
    pub error: Error,
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
}

/// A run that failed before it could start (bad configuration or request): the same report shape.
pub fn refused(action: Action, environment: &str, error: Error) -> Failure {
    let mut report = Report::new(action, environment, &uuid::Uuid::now_v7().to_string());
    report.fail(&error);
    Failure { report, error }
}

pub async fn run(inv: &Invocation<'_>) -> Result<Report, Box<Failure>> {
    let started = Instant::now();
    let run_id = uuid::Uuid::now_v7().to_string();
    let mut report = Report::new(inv.command.action(), &inv.settings.environment, &run_id);
    report.dry_run = inv.command.dry_run();
    report.target = inv.command.target().map(str::to_string);
    let span = tracing::info_span!("run", run_id = %run_id, action = ?inv.command.action(), environment = %inv.settings.environment);
    let _enter = span.enter();
    let result = execute(inv, &run_id, &mut report).await;
    report.duration_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(status) => {
            report.status = status;
            tracing::info!(status = ?status, applied = report.applied.len(), pending = report.pending.len(), duration_ms = report.duration_ms, "run finished");
            Ok(report)
        }
        Err(error) => {
            report.fail(&error);
            tracing::error!(error_type = %error.error_type(), migration = error.migration(), error = %error, "run failed");
            Err(Box::new(Failure { report, error }))
        }
    }
}

async fn execute(inv: &Invocation<'_>, run_id: &str, report: &mut Report) -> Result<Status, Error> {
    let set = inv.source.load()?;
    report.migrations = Some(MigrationsInfo {
        source: set.source.to_string(),
        count: set.migrations.len(),
    });
    let mut connection = inv.connection.clone();
    if let Some(left) = remaining(inv.deadline) {
        connection.connect_timeout = connection.connect_timeout.min(left.max(Duration::from_millis(100)));
    }
    let mut db = Database::connect(&connection).await?;
    report.database = Some(db.info.clone());
    let result = match &inv.command {
        Command::Status => status(&db, inv, &set, report).await,
        Command::Plan { .. } | Command::Migrate { .. } => migrate(&mut db, inv, &set, run_id, report).await,
        Command::Drift { fail_on_drift } => drift_check(&db, inv, &set, report, *fail_on_drift).await,
        Command::Verify { analyze } => verify_all(&mut db, inv, &set, report, *analyze).await,
        Command::Rollback {
            target,
            dry_run,
            allow_data_loss,
        } => roll_back(&mut db, inv, &set, run_id, report, target, *dry_run, *allow_data_loss).await,
        Command::CheckRollback => check_rollback(&mut db, inv, &set, run_id, report).await,
    };
    db.close().await;
    result
}

async fn status(db: &Database, inv: &Invocation<'_>, set: &MigrationSet, report: &mut Report) -> Result<Status, Error> {
    let rows = inv.settings.ledger.read(db.client()).await?;
    let assessment = plan::assess(&rows, &set.migrations);
    describe(&assessment, report);
    Ok(if !assessment.problems.is_empty() {
        Status::Invalid
    } else if assessment.pending.is_empty() {
        Status::UpToDate
    } else {
        Status::Pending
    })
}

async fn migrate(
    db: &mut Database,
    inv: &Invocation<'_>,
    set: &MigrationSet,
    run_id: &str,
    report: &mut Report,
) -> Result<Status, Error> {
    let target = inv.command.target();
    if inv.command.dry_run() {
        // Changes nothing and takes no lock, so it can run beside a real migration.
        return migrate_locked(db, inv, set, run_id, target, true, report).await;
    }
    let held = take_lock(db, inv, report).await?;
    let result = migrate_locked(db, inv, set, run_id, target, false, report).await;
    give_back(db, held, report).await;
    result
}

/// Checks the session can write, then waits for the advisory lock. Every caller gives it back
/// with [`give_back`] on every path.
async fn take_lock(db: &Database, inv: &Invocation<'_>, report: &mut Report) -> Result<lock::HeldLock, Error> {
    check_writable(db).await?;
    let wait = match remaining(inv.deadline) {
        Some(left) => inv.settings.lock_wait.min(left),
        None => inv.settings.lock_wait,
    };
    let held = match lock::acquire(db.client(), inv.settings.lock_key, wait).await {
        Ok(held) => held,
        Err(e) => {
            // A run that gave up waiting reports how long it waited, like one that got the lock.
            if let lock::LockError::Busy { waited_ms, .. } = &e {
                report.lock_wait_ms = *waited_ms;
            }
            return Err(e.into());
        }
    };
    report.lock_wait_ms = held.waited.as_millis() as u64;
    tracing::info!(key = inv.settings.lock_key, wait_ms = report.lock_wait_ms, "advisory lock held");
    Ok(held)
}

async fn give_back(db: &Database, held: lock::HeldLock, report: &mut Report) {
    if let Err(e) = held.release(db.client()).await {
        report
            .warnings
            .push(format!("{e}; the lock is freed anyway when the connection closes"));
    }
}

async fn check_writable(db: &Database) -> Result<(), Error> {
    let state = db.session_state().await.map_err(Error::Session)?;
    if state.in_recovery {
        return Err(Error::ReadOnly {
            reason: "the server is a standby in recovery",
        });
    }
    if state.read_only {
        return Err(Error::ReadOnly {
            reason: "transaction_read_only is on for this session",
        });
    }
    Ok(())
}

/// Reads the ledger, plans and applies up to `target`; the caller holds the lock (or changes
/// nothing: `dry_run`).
async fn migrate_locked(
    db: &mut Database,
    inv: &Invocation<'_>,
    set: &MigrationSet,
    run_id: &str,
    target: Option<&str>,
    dry_run: bool,
    report: &mut Report,
) -> Result<Status, Error> {
    let ledger = &inv.settings.ledger;
    let rows = ledger.read(db.client()).await?;
    let assessment = plan::assess(&rows, &set.migrations);
    describe(&assessment, report);
    let options = PlanOptions {
        target,
        allow_unknown_rows: inv.settings.allow_unknown_rows,
    };
    let plan = plan::plan(&assessment, &set.migrations, options)?;
    if !assessment.problems.is_empty() {
        report
            .warnings
            .push("ledger rows that match no journal entry were ignored (allow unknown migrations is on)".into());
    }
    report.segments = plan.segments.iter().enumerate().map(|(i, s)| planned(i, s)).collect();
    if plan.is_empty() {
        return Ok(Status::UpToDate);
    }
    if dry_run {
        return Ok(Status::Planned);
    }
    ledger.ensure(db.client()).await?;
    let applier = Applier::new(inv, run_id);
    for (i, segment) in plan.segments.iter().enumerate() {
        let outcome = match remaining(inv.deadline) {
            Some(left) if left.is_zero() => Err(SegmentFailure {
                error: Error::Deadline {
                    during: "starting the next commit segment",
                },
                status: SegmentStatus::NotRun,
                attempts: 0,
                failed: None,
            }),
            _ => match segment.mode {
                SegmentMode::Transaction => applier.transaction(db.client_mut(), segment, &mut report.warnings).await,
                SegmentMode::Autocommit => applier.autocommit(db.client_mut(), segment.migrations[0]).await,
            },
        };
        match outcome {
            Ok((entries, attempts)) => {
                report.segments[i].status = SegmentStatus::Committed;
                report.segments[i].attempts = attempts;
                for entry in entries {
                    report.pending.retain(|p| p.tag != entry.tag);
                    report.current = Some(entry.tag.clone());
                    report.applied.push(entry);
                }
            }
            Err(failure) => {
                report.segments[i].status = failure.status;
                report.segments[i].attempts = failure.attempts;
                for later in &mut report.segments[i + 1..] {
                    later.status = SegmentStatus::NotRun;
                }
                if let Some((migration, pg, duration)) = &failure.failed {
                    applier.record_failure(db.client(), migration, pg, *duration, &mut report.warnings).await;
                }
                return Err(failure.error);
            }
        }
    }
    Ok(Status::Applied)
}

/// The name of a schema version in messages: a tag, or the empty schema before any migration.
fn version_label(version: Option<&Migration>) -> String {
    version.map_or_else(|| "none (no migration applied)".to_string(), |m| m.tag.clone())
}

fn drift_options(settings: &RunSettings) -> DriftOptions {
    DriftOptions {
        ledger: settings.ledger.clone(),
        ignore: settings.drift_ignore.clone(),
    }
}

/// The live schema against the snapshot of `version` (the empty schema for `None`).
async fn differences_at(
    db: &Database,
    inv: &Invocation<'_>,
    set: &MigrationSet,
    version: Option<&Migration>,
) -> Result<(Snapshot, Catalog, Vec<Difference>), Error> {
    let expected = Snapshot::at(&set.source, version)?;
    let actual = catalog::read(db.client()).await?;
    let differences = drift::compare(&expected, &actual, &drift_options(inv.settings));
    Ok((expected, actual, differences))
}

/// The ledger read against the migrations (and described in the report), and the schema compared
/// with the current version's snapshot: where `drift` and `verify` both start.
async fn schema_at_current<'m>(
    db: &Database,
    inv: &Invocation<'_>,
    set: &'m MigrationSet,
    report: &mut Report,
) -> Result<(Assessment<'m>, Snapshot, Catalog, Vec<Difference>), Error> {
    let rows = inv.settings.ledger.read(db.client()).await?;
    let assessment = plan::assess(&rows, &set.migrations);
    describe(&assessment, report);
    let (expected, actual, differences) = differences_at(db, inv, set, assessment.current()).await?;
    Ok((assessment, expected, actual, differences))
}

async fn drift_check(
    db: &Database,
    inv: &Invocation<'_>,
    set: &MigrationSet,
    report: &mut Report,
    fail_on_drift: bool,
) -> Result<Status, Error> {
    let (assessment, _, _, differences) = schema_at_current(db, inv, set, report).await?;
    let version = assessment.current();
    report.differences = Some(differences.clone());
    if differences.is_empty() {
        return Ok(Status::NoDrift);
    }
    tracing::info!(count = differences.len(), first = %differences[0], "drift detected");
    report.status = Status::DriftDetected;
    if fail_on_drift {
        return Err(DriftError::detected(&version_label(version), &differences).into());
    }
    Ok(Status::DriftDetected)
}

async fn verify_all(
    db: &mut Database,
    inv: &Invocation<'_>,
    set: &MigrationSet,
    report: &mut Report,
    analyze: bool,
) -> Result<Status, Error> {
    let (assessment, expected, actual, differences) = schema_at_current(db, inv, set, report).await?;
    let version = assessment.current();
    let mut checks = Vec::new();
    let mut schema = Check::new(CheckKind::Schema, version_label(version));
    if differences.is_empty() {
        schema.detail = Some("the schema matches the snapshot".into());
    } else {
        schema.fail(format!("{} difference(s) from the snapshot (see differences)", differences.len()));
    }
    checks.push(schema);
    report.differences = Some(differences);
    checks.extend(verify::enum_checks(&expected, &actual));
    let options = drift_options(inv.settings);
    checks.extend(verify::index_checks(&actual, |schema, table| {
        schema != options.ledger.schema && !options.ignored(schema, table)
    }));
    match set.source.read(verify::QUERY_CATALOGUE)? {
        None => report.warnings.push(format!(
            "no query catalogue ({}) among the migrations: no query plans were checked",
            verify::QUERY_CATALOGUE
        )),
        Some(bytes) => {
            let path = set.source.display_path(verify::QUERY_CATALOGUE);
            let text = String::from_utf8(bytes).map_err(|_| VerifyError::Catalogue {
                path: path.clone(),
                line: 0,
                reason: "not valid UTF-8".into(),
            })?;
            let timeout = inv.settings.statement_timeout.unwrap_or(Duration::from_secs(30));
            for query in verify::parse_catalogue(&text, &path)? {
                if let Some(since) = &query.since {
                    if set.find(since).is_none() {
                        return Err(VerifyError::Catalogue {
                            path,
                            line: query.line,
                            reason: format!("`-- since: {since}` names no migration of the journal"),
                        }
                        .into());
                    }
                    if !assessment.applied.iter().any(|a| &a.migration.tag == since) {
                        let mut skipped = Check::new(CheckKind::QueryPlan, query.name.clone());
                        skipped.status = CheckStatus::Skipped;
                        skipped.detail = Some(format!("needs {since}, which is not applied"));
                        checks.push(skipped);
                        continue;
                    }
                }
                let timeout = remaining(inv.deadline).map_or(timeout, |left| timeout.min(left));
                checks.push(verify::plan_check(db.client_mut(), &query, &actual, analyze, timeout).await);
            }
        }
    }
    conclude(checks, report)
}

#[allow(clippy::too_many_arguments)]
async fn roll_back(
    db: &mut Database,
    inv: &Invocation<'_>,
    set: &MigrationSet,
    run_id: &str,
    report: &mut Report,
    target: &RollbackTarget,
    dry_run: bool,
    allow_data_loss: bool,
) -> Result<Status, Error> {
    if dry_run {
        // Changes nothing and takes no lock, like `migrate --dry-run`.
        return rollback_locked(db, inv, set, run_id, target, true, allow_data_loss, report).await;
    }
    let held = take_lock(db, inv, report).await?;
    let result = rollback_locked(db, inv, set, run_id, target, false, allow_data_loss, report).await;
    give_back(db, held, report).await;
    let status = result?;
    match report.differences.as_deref() {
        Some(differences) if status == Status::RolledBack && !differences.is_empty() => {
            Err(DriftError::after_rollback(&target.to_string(), differences).into())
        }
        _ => Ok(status),
    }
}

fn data_loss(risk: &[DataAtRisk]) -> Error {
    RollbackError::DataLoss {
        tag: risk.first().map(|d| d.migration.clone()).unwrap_or_default(),
        objects: risk.iter().map(|d| d.object.clone()).collect(),
    }
    .into()
}

/// Plans the rollback to `target`, runs it in one transaction (unless `dry_run`) and compares
/// the schema with `target`'s snapshot into `report.differences`. The caller holds the lock.
#[allow(clippy::too_many_arguments)]
async fn rollback_locked(
    db: &mut Database,
    inv: &Invocation<'_>,
    set: &MigrationSet,
    run_id: &str,
    target: &RollbackTarget,
    dry_run: bool,
    allow_data_loss: bool,
    report: &mut Report,
) -> Result<Status, Error> {
    let ledger = &inv.settings.ledger;
    let rows = ledger.read(db.client()).await?;
    let assessment = plan::assess(&rows, &set.migrations);
    describe(&assessment, report);
    let plan = rollback::plan(&assessment, &set.migrations, target, inv.settings.allow_unknown_rows)?;
    report.rollback = Some(RollbackReport {
        to: target.to_string(),
        migrations: plan
            .steps
            .iter()
            .map(|s| RolledBackEntry {
                tag: s.migration.tag.clone(),
                hash: s.migration.hash.clone(),
                statements: s.down.statements.iter().map(|st| st.sql.trim().to_string()).collect(),
                duration_ms: None,
            })
            .collect(),
        data_at_risk: Vec::new(),
    });
    if plan.steps.is_empty() {
        return Ok(Status::UpToDate);
    }
    // The schema is checked against this snapshot afterwards: refuse now, not after the commit.
    let version = target.tag().and_then(|t| set.find(t));
    Snapshot::at(&set.source, version)?;
    if dry_run {
        let risk = rollback::data_at_risk(db.client(), &plan).await?;
        if let Some(r) = report.rollback.as_mut() {
            r.data_at_risk = risk.clone();
        }
        if !risk.is_empty() && !allow_data_loss {
            return Err(data_loss(&risk));
        }
        return Ok(Status::Planned);
    }
    ledger.ensure(db.client()).await?;
    let applier = Applier::new(inv, run_id);
    let (durations, risk) = applier.rollback(db.client_mut(), &plan, allow_data_loss, &mut report.warnings).await?;
    report.status = Status::RolledBack;
    if let Some(r) = report.rollback.as_mut() {
        for (entry, duration) in r.migrations.iter_mut().zip(&durations) {
            entry.duration_ms = Some(duration.as_millis() as u64);
        }
        r.data_at_risk = risk.clone();
    }
    if !risk.is_empty() {
        let objects: Vec<&str> = risk.iter().map(|d| d.object.as_str()).collect();
        report.warnings.push(format!("dropped data (--allow-data-loss): {}", objects.join(", ")));
    }
    let rows = ledger.read(db.client()).await?;
    describe(&plan::assess(&rows, &set.migrations), report);
    let (_, _, differences) = differences_at(db, inv, set, version).await?;
    report.differences = Some(differences);
    Ok(Status::RolledBack)
}

async fn check_rollback(
    db: &mut Database,
    inv: &Invocation<'_>,
    set: &MigrationSet,
    run_id: &str,
    report: &mut Report,
) -> Result<Status, Error> {
    let held = take_lock(db, inv, report).await?;
    let result = check_rollback_locked(db, inv, set, run_id, report).await;
    give_back(db, held, report).await;
    result
}

/// For each migration in order: apply it, compare with its snapshot, roll it back, compare with
/// the previous snapshot, apply it again and compare once more; with the same functions
/// `migrate` and `rollback` use.
async fn check_rollback_locked(
    db: &mut Database,
    inv: &Invocation<'_>,
    set: &MigrationSet,
    run_id: &str,
    report: &mut Report,
) -> Result<Status, Error> {
    let rows = inv.settings.ledger.read(db.client()).await?;
    if !rows.is_empty() {
        return Err(RollbackError::NotScratch { rows: rows.len() }.into());
    }
    let environment = inv.settings.environment.clone();
    let scratch = |action| Report::new(action, &environment, run_id);
    let mut checks: Vec<Check> = Vec::new();
    let mut stopped = false;
    for (i, m) in set.migrations.iter().enumerate() {
        let mut check = Check::new(CheckKind::RollbackRoundTrip, m.tag.clone());
        if stopped {
            check.status = CheckStatus::Skipped;
            check.detail = Some("an earlier migration could not be re-applied".into());
            checks.push(check);
            continue;
        }
        let previous = i.checked_sub(1).map(|p| &set.migrations[p]);
        let target = previous.map_or(RollbackTarget::Empty, |p| RollbackTarget::Migration(p.tag.clone()));
        let mut step = scratch(Action::Migrate);
        // A migration that does not apply on an empty database is an error, not a finding.
        if let Err(e) = migrate_locked(db, inv, set, run_id, Some(&m.tag), false, &mut step).await {
            check.fail(format!("applying it failed: {e}"));
            checks.push(check);
            report.checks = Some(checks);
            return Err(e);
        }
        report.warnings.append(&mut step.warnings);
        let (_, _, applied) = differences_at(db, inv, set, Some(m)).await?;
        if !applied.is_empty() {
            check.fail(format!("once applied, the schema differs from {}'s snapshot in {} place(s)", m.tag, applied.len()));
            check.differences.extend(applied);
        }
        if m.down.is_none() {
            check.fail(format!("no down file {}.down.sql", m.tag));
            checks.push(check);
            continue;
        }
        // A scratch database holds no data worth keeping.
        let mut back = scratch(Action::Rollback);
        match rollback_locked(db, inv, set, run_id, &target, false, true, &mut back).await {
            Ok(_) => {
                let differences = back.differences.take().unwrap_or_default();
                if !differences.is_empty() {
                    check.fail(format!(
                        "rolled back to {target}, the schema differs from its snapshot in {} place(s)",
                        differences.len()
                    ));
                    check.differences.extend(differences);
                }
            }
            Err(e) => {
                // Its transaction was rolled back: the migration is still applied, go on.
                check.fail(format!("rolling back failed: {e}"));
                checks.push(check);
                continue;
            }
        }
        let mut again = scratch(Action::Migrate);
        match migrate_locked(db, inv, set, run_id, Some(&m.tag), false, &mut again).await {
            Ok(_) => {
                let (_, _, reapplied) = differences_at(db, inv, set, Some(m)).await?;
                if !reapplied.is_empty() {
                    check.fail(format!(
                        "applied again after the rollback, the schema differs from {}'s snapshot in {} place(s)",
                        m.tag,
                        reapplied.len()
                    ));
                    check.differences.extend(reapplied);
                }
            }
            Err(e) => {
                check.fail(format!("applying it again after the rollback failed: {e}"));
                stopped = true;
            }
        }
        if !check.failed() {
            check.detail = Some(format!("applied, rolled back to {target} matching its snapshot, applied again"));
        }
        checks.push(check);
    }
    let rows = inv.settings.ledger.read(db.client()).await?;
    describe(&plan::assess(&rows, &set.migrations), report);
    conclude(checks, report)
}

/// `verified` when every check passed; otherwise the first failure names the rest's count.
fn conclude(checks: Vec<Check>, report: &mut Report) -> Result<Status, Error> {
    let failed: Vec<&Check> = checks.iter().filter(|c| c.failed()).collect();
    let outcome = match failed.first() {
        None => Ok(Status::Verified),
        Some(first) => {
            report.status = Status::VerificationFailed;
            Err(VerifyError::Failed {
                count: failed.len(),
                first: first.describe(),
            }
            .into())
        }
    };
    report.checks = Some(checks);
    outcome
}

fn describe(assessment: &Assessment<'_>, report: &mut Report) {
    report.current = assessment.current().map(|m| m.tag.clone());
    report.pending = assessment
        .pending
        .iter()
        .map(|m| PendingEntry {
            tag: m.tag.clone(),
            hash: m.hash.clone(),
            statements: m.statements.len(),
        })
        .collect();
    report.problems = assessment
        .problems
        .iter()
        .map(|p| ProblemReport {
            kind: p.kind().to_string(),
            migration: p.tag().map(str::to_string),
            message: p.describe(),
        })
        .collect();
}

fn planned(index: usize, segment: &Segment<'_>) -> SegmentReport {
    let reason = match (segment.mode, segment.migrations.last()) {
        (SegmentMode::Autocommit, Some(m)) => match &m.mode {
            TransactionMode::Autocommit { reason } => Some(reason.clone()),
            TransactionMode::Transaction => None,
        },
        (SegmentMode::Transaction, Some(m)) if m.adds_enum_value => {
            Some(format!("commits after {} so its new enum value can be used", m.tag))
        }
        _ => None,
    };
    SegmentReport {
        index,
        mode: match segment.mode {
            SegmentMode::Transaction => "transaction".into(),
            SegmentMode::Autocommit => "autocommit".into(),
        },
        migrations: segment.migrations.iter().map(|m| m.tag.clone()).collect(),
        status: SegmentStatus::Planned,
        attempts: 0,
        reason,
    }
}

fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

struct SegmentFailure<'m> {
    error: Error,
    status: SegmentStatus,
    attempts: u32,
    /// The migration to record as failed in the history, with its error and time spent.
    failed: Option<(&'m Migration, PgError, Duration)>,
}

struct Applier<'a> {
    settings: &'a RunSettings,
    ledger: &'a LedgerTable,
    run_id: &'a str,
    invoker: &'a str,
    deadline: Option<Instant>,
}

/// Session settings for one attempt, and whether the deadline (not the operator) set the
/// statement timeout.
struct Timeouts {
    sql: String,
    deadline_bound: bool,
}

impl<'a> Applier<'a> {
    fn new(inv: &'a Invocation<'a>, run_id: &'a str) -> Self {
        Self {
            settings: inv.settings,
            ledger: &inv.settings.ledger,
            run_id,
            invoker: inv.invoker,
            deadline: inv.deadline,
        }
    }

    fn timeouts(&self, scope: &str) -> Timeouts {
        let lock_ms = self.settings.pg_lock_timeout.as_millis();
        let configured = self.settings.statement_timeout;
        let (statement, deadline_bound) = match (configured, remaining(self.deadline)) {
            (Some(c), Some(left)) if left < c => (Some(left), true),
            (None, Some(left)) => (Some(left), true),
            (c, _) => (c, false),
        };
        let mut sql = format!("SET {scope} lock_timeout = '{lock_ms}ms'");
        if let Some(statement) = statement {
            // 0 would mean "no limit": the deadline has passed, so use the smallest real one.
            let ms = statement.as_millis().max(1);
            sql.push_str(&format!("; SET {scope} statement_timeout = '{ms}ms'"));
        }
        Timeouts { sql, deadline_bound }
    }

    async fn transaction<'m>(
        &self,
        client: &mut Client,
        segment: &Segment<'m>,
        warnings: &mut Vec<String>,
    ) -> Result<(Vec<AppliedEntry>, u32), SegmentFailure<'m>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.try_transaction(client, segment).await {
                Ok(entries) => return Ok((entries, attempt)),
                Err(failure) => failure,
            };
            let lock_timeout = matches!(&failure.error, Error::Migration(e) if e.error.is(LOCK_NOT_AVAILABLE));
            let delay = retry_delay(attempt);
            let time_left = remaining(self.deadline).is_none_or(|left| left > delay * 2);
            if lock_timeout && attempt <= self.settings.lock_timeout_retries && time_left {
                let tag = failure.failed.as_ref().map_or("?", |(m, _, _)| m.tag.as_str());
                tracing::warn!(tag, attempt, delay_ms = delay.as_millis() as u64, "lock_timeout; retrying the transaction");
                warnings.push(format!(
                    "{tag}: lock_timeout on attempt {attempt} (other sessions held conflicting locks); retried after {} ms",
                    delay.as_millis()
                ));
                tokio::time::sleep(delay).await;
                continue;
            }
            let mut failure = failure;
            failure.attempts = attempt;
            if lock_timeout {
                if let Error::Migration(e) = &mut failure.error {
                    e.advice = format!(
                        "Gave up after {attempt} attempt(s): long-running transactions hold locks on the table. Nothing was kept. Run again when traffic is lower, or raise PG_LOCK_TIMEOUT_MS / LOCK_TIMEOUT_RETRIES"
                    );
                }
            }
            return Err(failure);
        }
    }

    async fn try_transaction<'m>(
        &self,
        client: &mut Client,
        segment: &Segment<'m>,
    ) -> Result<Vec<AppliedEntry>, SegmentFailure<'m>> {
        let rolled_back = |error: Error, failed| SegmentFailure {
            error,
            status: SegmentStatus::RolledBack,
            attempts: 1,
            failed,
        };
        let tx = client
            .transaction()
            .await
            .map_err(|e| rolled_back(Error::Session(e.into()), None))?;
        let timeouts = self.timeouts("LOCAL");
        let body = async {
            tx.batch_execute(&timeouts.sql)
                .await
                .map_err(|e| rolled_back(Error::Session(e.into()), None))?;
            let mut entries = Vec::with_capacity(segment.migrations.len());
            for m in &segment.migrations {
                let started = Instant::now();
                self.statements(&tx, m, &timeouts, false)
                    .await
                    .map_err(|(e, pg)| rolled_back(Error::Migration(e), Some((*m, pg, started.elapsed()))))?;
                let duration = started.elapsed();
                self.ledger
                    .insert_and_record(&tx, m, &self.history(m, "apply", true, duration, None))
                    .await
                    .map_err(|e| rolled_back(e.into(), None))?;
                tracing::info!(tag = %m.tag, duration_ms = duration.as_millis() as u64, statements = m.statements.len(), "migration applied (commits with its segment)");
                entries.push(applied_entry(m, duration));
            }
            Ok(entries)
        };
        match body.await {
            Ok(entries) => {
                let last = segment.migrations.last().expect("segments are never empty");
                tx.commit().await.map_err(|e| {
                    let pg = PgError::from(e);
                    let error = MigrationError {
                        tag: last.tag.clone(),
                        location: "COMMIT".into(),
                        statement: None,
                        deadline: false,
                        advice: "The transaction was rolled back; nothing of this segment was kept".into(),
                        error: pg.clone(),
                    };
                    rolled_back(Error::Migration(error), Some((*last, pg, Duration::ZERO)))
                })?;
                Ok(entries)
            }
            Err(failure) => {
                let _ = tx.rollback().await;
                Err(failure)
            }
        }
    }

    /// A migration that cannot run in a transaction: each statement commits on its own, then
    /// its ledger row is written. A failure part-way leaves the earlier statements in place.
    async fn autocommit<'m>(
        &self,
        client: &mut Client,
        m: &'m Migration,
    ) -> Result<(Vec<AppliedEntry>, u32), SegmentFailure<'m>> {
        let started = Instant::now();
        let timeouts = self.timeouts("SESSION");
        let fail = |error: Error, status, failed| SegmentFailure {
            error,
            status,
            attempts: 1,
            failed,
        };
        client
            .batch_execute(&timeouts.sql)
            .await
            .map_err(|e| fail(Error::Session(e.into()), SegmentStatus::NotRun, None))?;
        let result = self.statements(&*client, m, &timeouts, true).await;
        let _ = client.batch_execute("RESET lock_timeout; RESET statement_timeout").await;
        if let Err((error, pg)) = result {
            let status = if error.location.starts_with("statement 1 ") {
                SegmentStatus::RolledBack
            } else {
                SegmentStatus::PartiallyApplied
            };
            return Err(fail(Error::Migration(error), status, Some((m, pg, started.elapsed()))));
        }
        let duration = started.elapsed();
        let tx = client
            .transaction()
            .await
            .map_err(|e| fail(Error::Session(e.into()), SegmentStatus::PartiallyApplied, None))?;
        let recorded = self
            .ledger
            .insert_and_record(&tx, m, &self.history(m, "apply", true, duration, None))
            .await;
        match recorded {
            Ok(()) => tx
                .commit()
                .await
                .map_err(|e| fail(Error::Session(e.into()), SegmentStatus::PartiallyApplied, None))?,
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(fail(e.into(), SegmentStatus::PartiallyApplied, None));
            }
        }
        tracing::info!(tag = %m.tag, duration_ms = duration.as_millis() as u64, "migration applied outside a transaction");
        Ok((vec![applied_entry(m, duration)], 1))
    }

    async fn statements(
        &self,
        client: &impl GenericClient,
        m: &Migration,
        timeouts: &Timeouts,
        autocommit: bool,
    ) -> Result<(), (MigrationError, PgError)> {
        for (i, statement) in m.statements.iter().enumerate() {
            let location = || format!("statement {} (line {})", i + 1, statement.line);
            if let Some(left) = remaining(self.deadline) {
                // statement_timeout bounds each statement, not the segment: re-arm it with what is
                // left so the whole run ends by the deadline.
                let limit = self.settings.statement_timeout.map_or(left, |c| c.min(left));
                let scope = if autocommit { "SESSION" } else { "LOCAL" };
                let armed = if left.is_zero() {
                    Err(PgError {
                        sqlstate: None,
                        message: "the invocation deadline was reached before this statement started".into(),
                        detail: None,
                        hint: None,
                    })
                } else {
                    let sql = format!("SET {scope} statement_timeout = '{}ms'", limit.as_millis().max(1));
                    client.batch_execute(&sql).await.map_err(PgError::from)
                };
                if let Err(pg) = armed {
                    let error = MigrationError {
                        tag: m.tag.clone(),
                        location: location(),
                        statement: Some(statement.summary()),
                        error: pg.clone(),
                        deadline: true,
                        advice: "Stopped at the invocation deadline".into(),
                    };
                    return Err((error, pg));
                }
            }
            if let Err(e) = client.batch_execute(&statement.sql).await {
                let pg = PgError::from(e);
                let deadline = timeouts.deadline_bound && pg.is(QUERY_CANCELED);
                let advice = if deadline {
                    "Cancelled at the invocation deadline".to_string()
                } else if autocommit && i > 0 {
                    format!("This migration runs outside a transaction: statements 1 to {i} were committed and stay, and no ledger row was written. Finish or undo them by hand, then run again")
                } else if autocommit && statement.autocommit_reason() == Some("CREATE INDEX CONCURRENTLY") {
                    "A failed CREATE INDEX CONCURRENTLY can leave an INVALID index behind: DROP INDEX CONCURRENTLY it before running again".to_string()
                } else if autocommit {
                    "Nothing was applied; no ledger row was written".to_string()
                } else {
                    "The transaction was rolled back: nothing of this segment was kept, and no ledger row was written".to_string()
                };
                let error = MigrationError {
                    tag: m.tag.clone(),
                    location: location(),
                    statement: Some(statement.summary()),
                    error: pg.clone(),
                    deadline,
                    advice,
                };
                return Err((error, pg));
            }
        }
        Ok(())
    }

    fn history<'e>(
        &'e self,
        m: &'e Migration,
        action: &'e str,
        succeeded: bool,
        duration: Duration,
        error: Option<&'e PgError>,
    ) -> HistoryEntry<'e> {
        HistoryEntry {
            run_id: self.run_id,
            action,
            tag: &m.tag,
            hash: &m.hash,
            created_at: m.created_at,
            succeeded,
            duration_ms: duration.as_millis() as i64,
            invoker: self.invoker,
            environment: &self.settings.environment,
            error,
        }
    }

    /// Best effort, after the rollback: the failure itself must not be lost, nor hidden by this.
    async fn record_failure(&self, client: &Client, m: &Migration, pg: &PgError, duration: Duration, warnings: &mut Vec<String>) {
        let entry = self.history(m, "apply", false, duration, Some(pg));
        if let Err(e) = self.ledger.record(client, &entry).await {
            warnings.push(format!("could not record the failure in the history table: {e}"));
        }
    }

    /// Runs the plan's down files newest first and deletes their ledger rows, all in one
    /// transaction, retried like a migration segment when `lock_timeout` strikes.
    async fn rollback(
        &self,
        client: &mut Client,
        plan: &RollbackPlan<'_>,
        allow_data_loss: bool,
        warnings: &mut Vec<String>,
    ) -> Result<(Vec<Duration>, Vec<DataAtRisk>), Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if remaining(self.deadline).is_some_and(|left| left.is_zero()) {
                return Err(Error::Deadline {
                    during: "starting the rollback transaction",
                });
            }
            let (error, failed) = match self.try_rollback(client, plan, allow_data_loss).await {
                Ok(done) => return Ok(done),
                Err(failure) => failure,
            };
            let lock_timeout = matches!(&error, Error::Migration(e) if e.error.is(LOCK_NOT_AVAILABLE));
            let delay = retry_delay(attempt);
            let time_left = remaining(self.deadline).is_none_or(|left| left > delay * 2);
            if lock_timeout && attempt <= self.settings.lock_timeout_retries && time_left {
                let tag = failed.as_ref().map_or("?", |(m, _, _)| m.tag.as_str());
                tracing::warn!(tag, attempt, delay_ms = delay.as_millis() as u64, "lock_timeout; retrying the rollback");
                warnings.push(format!(
                    "{tag}: lock_timeout on rollback attempt {attempt} (other sessions held conflicting locks); retried after {} ms",
                    delay.as_millis()
                ));
                tokio::time::sleep(delay).await;
                continue;
            }
            if let Some((m, pg, duration)) = &failed {
                let entry = self.history(m, "rollback", false, *duration, Some(pg));
                if let Err(e) = self.ledger.record(&*client, &entry).await {
                    warnings.push(format!("could not record the failed rollback in the history table: {e}"));
                }
            }
            return Err(error);
        }
    }

    #[allow(clippy::type_complexity)]
    async fn try_rollback<'m>(
        &self,
        client: &mut Client,
        plan: &RollbackPlan<'m>,
        allow_data_loss: bool,
    ) -> Result<(Vec<Duration>, Vec<DataAtRisk>), (Error, Option<(&'m Migration, PgError, Duration)>)> {
        let tx = client.transaction().await.map_err(|e| (Error::Session(e.into()), None))?;
        let timeouts = self.timeouts("LOCAL");
        let body = async {
            tx.batch_execute(&timeouts.sql).await.map_err(|e| (Error::Session(e.into()), None))?;
            // Checked inside the transaction, before any down statement takes its locks.
            let risk = rollback::data_at_risk(&tx, plan).await.map_err(|e| (e.into(), None))?;
            if !risk.is_empty() && !allow_data_loss {
                return Err((data_loss(&risk), None));
            }
            let mut durations = Vec::with_capacity(plan.steps.len());
            for step in &plan.steps {
                let m = step.migration;
                let started = Instant::now();
                for (i, statement) in step.down.statements.iter().enumerate() {
                    if let Err(e) = tx.batch_execute(&statement.sql).await {
                        let pg = PgError::from(e);
                        let deadline = timeouts.deadline_bound && pg.is(QUERY_CANCELED);
                        let error = MigrationError {
                            tag: m.tag.clone(),
                            location: format!("down statement {} (line {} of {}.down.sql)", i + 1, statement.line, m.tag),
                            statement: Some(statement.summary()),
                            error: pg.clone(),
                            deadline,
                            advice: "The rollback transaction was rolled back: the schema and the ledger are as they were".into(),
                        };
                        return Err((Error::Migration(error), Some((m, pg, started.elapsed()))));
                    }
                }
                // The "journal cleanup": drizzle-orm decides what is applied from these rows.
                self.ledger.delete(&tx, m).await.map_err(|e| (e.into(), None))?;
                let duration = started.elapsed();
                self.ledger
                    .record(&tx, &self.history(m, "rollback", true, duration, None))
                    .await
                    .map_err(|e| (e.into(), None))?;
                tracing::info!(tag = %m.tag, duration_ms = duration.as_millis() as u64, "migration rolled back (commits with the rollback)");
                durations.push(duration);
            }
            Ok((durations, risk))
        };
        match body.await {
            Ok(done) => {
                tx.commit().await.map_err(|e| (Error::Session(e.into()), None))?;
                Ok(done)
            }
            Err(failure) => {
                let _ = tx.rollback().await;
                Err(failure)
            }
        }
    }
}

fn applied_entry(m: &Migration, duration: Duration) -> AppliedEntry {
    AppliedEntry {
        tag: m.tag.clone(),
        hash: m.hash.clone(),
        duration_ms: duration.as_millis() as u64,
    }
}

/// 1 s, 2 s, 4 s, ... capped at 10 s, with jitter so retrying runners spread out.
fn retry_delay(attempt: u32) -> Duration {
    let base = 1_000u64.saturating_mul(1 << attempt.saturating_sub(1).min(4)).min(10_000);
    Duration::from_millis(base * 3 / 4 + fastrand::u64(0..=base / 2))
}
