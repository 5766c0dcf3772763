//! The one run loop behind every command, for the CLI and the Lambda alike: connect, check the
//! session, lock, read the ledger, plan, apply segment by segment, release, report.

use std::time::{Duration, Instant};

use tokio_postgres::{Client, GenericClient};

use crate::config::RunSettings;
use crate::database::{ConnectionSettings, Database, PgError};
use crate::error::Error;
use crate::ledger::{HistoryEntry, LedgerTable};
use crate::lock;
use crate::plan::{self, Assessment, PlanOptions, Segment, SegmentMode};
use crate::report::{
    Action, AppliedEntry, MigrationsInfo, PendingEntry, ProblemReport, Report, SegmentReport, SegmentStatus, Status,
};
use crate::source::{Migration, MigrationSet, MigrationSource, TransactionMode};

const LOCK_NOT_AVAILABLE: &str = "55P03";
const QUERY_CANCELED: &str = "57014";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Status,
    Plan { target: Option<String> },
    Migrate { target: Option<String>, dry_run: bool },
}

impl Command {
    pub fn action(&self) -> Action {
        match self {
            Self::Status => Action::Status,
            Self::Plan { .. } => Action::Plan,
            Self::Migrate { .. } => Action::Migrate,
        }
    }

    fn target(&self) -> Option<&str> {
        match self {
            Self::Status => None,
            Self::Plan { target } | Self::Migrate { target, .. } => target.as_deref(),
        }
    }

    fn dry_run(&self) -> bool {
        match self {
            Self::Status => false,
            Self::Plan { .. } => true,
            Self::Migrate { dry_run, .. } => *dry_run,
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
    if inv.command.dry_run() {
        // Changes nothing and takes no lock, so it can run beside a real migration.
        return migrate_locked(db, inv, set, run_id, report).await;
    }
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
    let result = migrate_locked(db, inv, set, run_id, report).await;
    if let Err(e) = held.release(db.client()).await {
        report
            .warnings
            .push(format!("{e}; the lock is freed anyway when the connection closes"));
    }
    result
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

/// Reads the ledger, plans and applies; the caller holds the lock (or changes nothing).
async fn migrate_locked(
    db: &mut Database,
    inv: &Invocation<'_>,
    set: &MigrationSet,
    run_id: &str,
    report: &mut Report,
) -> Result<Status, Error> {
    let ledger = &inv.settings.ledger;
    let rows = ledger.read(db.client()).await?;
    let assessment = plan::assess(&rows, &set.migrations);
    describe(&assessment, report);
    let options = PlanOptions {
        target: inv.command.target(),
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
    if inv.command.dry_run() {
        return Ok(Status::Planned);
    }
    ledger.ensure(db.client()).await?;
    let applier = Applier {
        settings: inv.settings,
        ledger,
        run_id,
        invoker: inv.invoker,
        deadline: inv.deadline,
    };
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
                self.ledger.insert(&tx, m).await.map_err(|e| rolled_back(e.into(), None))?;
                let duration = started.elapsed();
                self.ledger
                    .record(&tx, &self.history(m, "apply", true, duration, None))
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
        let recorded = async {
            self.ledger.insert(&tx, m).await?;
            self.ledger.record(&tx, &self.history(m, "apply", true, duration, None)).await
        }
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
