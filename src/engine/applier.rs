//! Runs SQL for the engine: a commit segment in one transaction sent as one flight
//! ([`pipeline`]), a migration that cannot run in one statement by statement
//! (`engine/autocommit.rs`), and a rollback's down files in one transaction; with the ledger
//! and history rows written beside the work they record. Each transaction goes through
//! [`Retry`] when `lock_timeout` strikes.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::config::RunSettings;
use crate::db::connection::PgError;
use crate::db::history::HistoryEntry;
use crate::db::ledger::{LedgerTable, DURATION_MARK_SQL, MARK_SQL};
use crate::db::points::START_MARK_SQL;
use crate::engine::error::{Error, MigrationError};
use crate::engine::invocation::{expired, time_left, Invocation};
use crate::engine::outcome::{AppliedMigration, SegmentStatus};
use crate::engine::pipeline;
use crate::engine::plan::Segment;
use crate::engine::progress::{Progress, PROGRESS};
use crate::engine::retry::{AttemptFailure, FailedMigration, Retry};
use crate::engine::rollback_plan::{self, DataAtRisk, RollbackError, RollbackPlan};
use crate::migrations::source::Migration;

pub(super) const QUERY_CANCELED: &str = "57014";

pub struct Applier<'a> {
    pub(super) settings: &'a RunSettings,
    pub(super) ledger: &'a LedgerTable,
    pub(super) run_id: &'a str,
    pub(super) invoker: &'a str,
    pub(super) deadline: Option<Instant>,
    pub(super) progress: &'a Progress,
    /// See [`pipeline::Bounds::share`].
    share_requests: bool,
    /// The run's deadline on the server's clock, read on the first segment that needs it.
    server_deadline: std::sync::OnceLock<String>,
    /// What each online backfill of this run did, for its report.
    pub(super) backfills: std::sync::Mutex<Vec<crate::engine::outcome::BackfillProgress>>,
}

/// What a committed segment applied, and in how many attempts.
pub type Committed = (Vec<AppliedMigration>, u32);

/// A segment that did not commit, and in how many attempts.
pub struct NotCommitted<'m> {
    pub failure: AttemptFailure<'m>,
    pub attempts: u32,
}

/// Session settings for one attempt, and whether the deadline (not the operator) set the
/// statement timeout.
pub(super) struct Timeouts {
    pub(super) sql: String,
    pub(super) deadline_bound: bool,
}

impl<'a> Applier<'a> {
    pub fn new(inv: &'a Invocation<'a>, run_id: &'a str, progress: &'a Progress, share_requests: bool) -> Self {
        Self {
            settings: inv.settings,
            ledger: &inv.settings.ledger,
            run_id,
            invoker: inv.invoker,
            deadline: inv.budget.deadline(),
            progress,
            share_requests,
            server_deadline: std::sync::OnceLock::new(),
            backfills: Default::default(),
        }
    }

    /// The deadline as the server's clock will see it (`None` without one): one round trip on
    /// the first call of a run that has a deadline, none after. Each flight compares the
    /// server's own clock with it, so a flight that reaches the server after the client gave up
    /// on it (a link that held every byte) fails before its `COMMIT`, however late it arrives.
    async fn server_deadline(&self, client: &Client) -> Result<Option<String>, tokio_postgres::Error> {
        let Some(deadline) = self.deadline else { return Ok(None) };
        if let Some(known) = self.server_deadline.get() {
            return Ok(Some(known.clone()));
        }
        let messages = client.simple_query("select clock_timestamp()::text").await?;
        let now = crate::db::ledger::rows_of(&messages)
            .next()
            .and_then(|row| row.get(0).map(str::to_string))
            .unwrap_or_default();
        let known = pipeline::server_deadline(&now, deadline.saturating_duration_since(Instant::now()));
        Ok(Some(self.server_deadline.get_or_init(|| known).clone()))
    }

    pub(super) fn timeouts(&self, scope: &str) -> Timeouts {
        // `--online`: every statement gives way to the table's traffic after 500 ms, and its
        // step (or transaction) is tried again, so no writer queues behind it for longer.
        let lock_ms = match self.settings.online {
            true => u128::from(crate::online::STEP_LOCK_TIMEOUT_MS),
            false => self.settings.pg_lock_timeout.as_millis(),
        };
        let configured = self.settings.statement_timeout;
        let (statement, deadline_bound) = match (configured, time_left(self.deadline)) {
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

    fn retry(&self, attempt_name: &'static str) -> Retry {
        Retry::new(self.settings.lock_timeout_retries, self.deadline, attempt_name)
    }

    /// The segment's migrations and their ledger rows in one transaction, all or nothing.
    ///
    /// Its `COMMIT` answers before the WAL is flushed (`synchronous_commit = off` for the
    /// transaction), and the caller makes the run durable: any synchronous commit flushes all
    /// the WAL before it, so the next segment's, the baseline's write after the last segment
    /// (`Session::record_baseline`) or else [`Applier::flush`] makes every earlier segment
    /// durable. A crash of the server before that loses the unflushed segments whole (schema
    /// and ledger rows together), never half of one, and the next run applies them again.
    pub async fn transaction<'m>(
        &self,
        client: &mut Client,
        segment: &Segment<'m>,
        warnings: &mut Vec<String>,
    ) -> Result<Committed, NotCommitted<'m>> {
        let mut retry = self.retry("attempt");
        loop {
            retry.start();
            let failure = match self.try_transaction(client, segment).await {
                Ok(entries) => return Ok((entries, retry.attempts())),
                Err(failure) => failure,
            };
            // Part of it is committed (a migration's own COMMIT): another attempt would run that
            // part twice.
            if failure.status != SegmentStatus::RolledBack {
                return Err(NotCommitted {
                    failure,
                    attempts: retry.attempts(),
                });
            }
            if let Some(failure) = retry.after(failure, warnings).await {
                return Err(NotCommitted {
                    failure,
                    attempts: retry.attempts(),
                });
            }
        }
    }

    /// One attempt at the segment, in flights (`engine/pipeline.rs`): a flight's requests are
    /// all sent at once, then its answers are read in order as they arrive, so progress events
    /// still follow the migrations as the server finishes them. A segment is one flight, except
    /// that a migration's own `COMMIT` ends one: the next is sent only once every answer up to
    /// that `COMMIT` says it kept its work. Durations are the server's: after each migration a
    /// mark measures `clock_timestamp()` since the previous mark (or the `BEGIN`), without the
    /// network, answers with it and keeps it for the segment's history rows.
    async fn try_transaction<'m>(&self, client: &mut Client, segment: &Segment<'m>) -> Result<Vec<AppliedMigration>, AttemptFailure<'m>> {
        let timeouts = self.timeouts("LOCAL");
        let deadline = self.server_deadline(client).await.map_err(|e| AttemptFailure {
            error: Error::Session(e.into()),
            status: SegmentStatus::NotRun,
            failed: None,
        })?;
        let bounds = pipeline::Bounds {
            deadline: deadline.as_deref(),
            statement_timeout: self.settings.statement_timeout,
            share: self.share_requests,
        };
        let bookkeeping = pipeline::Bookkeeping {
            // The COMMIT answers before the WAL is flushed: see [`Applier::transaction`].
            settings: format!("{}; SET LOCAL synchronous_commit = off", timeouts.sql),
            mark: MARK_SQL,
            duration_mark: DURATION_MARK_SQL,
            rows: |range: std::ops::Range<usize>| {
                let applied: Vec<_> = range
                    .map(|i| {
                        let m = segment.migrations[i];
                        let entry = HistoryEntry {
                            start_marked: true,
                            ..self.history(m, "apply", true, Duration::ZERO, None)
                        };
                        (m, entry, i)
                    })
                    .collect();
                self.ledger.applied_rows_sql(&applied)
            },
        };
        let requests = pipeline::requests(segment, &bookkeeping, bounds);
        let mut answers = Vec::with_capacity(requests.len());
        let mut entries = Vec::with_capacity(segment.migrations.len());
        // When the server began the migration it is on: the previous one's last answer.
        let mut started = Instant::now();
        let mut failed = false;
        // How long the failed migration had run when its error arrived (the answers after it are
        // only the server's rejections).
        let mut failed_after = Duration::ZERO;
        // The migration's own COMMITs that kept their work before a later flight failed.
        let mut kept_by_file: Option<(usize, usize)> = None;
        for flight in pipeline::flights(&requests) {
            // Sent ahead of the answers being read (all of it, unless it is huge).
            let mut sending = pipeline::Flight::new(client, flight);
            for request in flight {
                let Some(stream) = sending.next().await else { break };
                let first_of_migration = match request.first() {
                    pipeline::Part::Arm { statement: 0, .. } => true,
                    pipeline::Part::Statement { statement: 0, .. } => bounds.deadline.is_none(),
                    _ => false,
                };
                if let (false, true, Some(mi)) = (failed, first_of_migration, request.first().migration()) {
                    let m = segment.migrations[mi];
                    self.progress.working_on(&m.tag);
                    tracing::info!(target: PROGRESS, tag = %m.tag, statements = m.statements.len(), "applying");
                }
                let answer = pipeline::answer(stream).await;
                if let (false, Some(migration), Ok(duration)) = (failed, request.ends, &answer) {
                    let m = segment.migrations[migration];
                    let duration = duration
                        .as_deref()
                        .and_then(|ms| ms.parse::<u64>().ok())
                        .map_or_else(|| started.elapsed(), Duration::from_millis);
                    tracing::info!(target: PROGRESS, tag = %m.tag, duration_ms = duration.as_millis() as u64, statements = m.statements.len(), "applied, commits with its segment");
                    entries.push(applied(m, duration));
                    started = Instant::now();
                }
                if !failed && answer.is_err() {
                    failed = true;
                    failed_after = started.elapsed();
                }
                let part = match &answer {
                    Err(failed) => request.failed_part(failed.completed, failed.position()),
                    Ok(_) => request.first(),
                };
                answers.push((part, answer.map(|_| ()).map_err(|failed| failed.error)));
            }
            if failed {
                break;
            }
            if let Some(pipeline::Part::Statement { migration, statement }) = flight.last().map(pipeline::Request::first) {
                kept_by_file = Some((migration, statement));
            }
        }
        let Some(at) = pipeline::first_failure(&answers, |e| e.code().map(|c| c.code())) else {
            let took: Duration = entries.iter().map(|e| e.duration).sum();
            tracing::info!(target: PROGRESS, migrations = entries.len(), duration_ms = took.as_millis() as u64, "segment committed");
            return Ok(entries);
        };
        let (part, answer) = answers.swap_remove(at);
        let e = answer.expect_err("first_failure points at an error");
        if e.as_db_error().is_none() {
            // Not the server's refusal but the connection's end (or a reply the client could not
            // read): the whole flight, COMMIT included, was sent, and the server may have run it.
            return Err(AttemptFailure {
                error: Error::ConnectionLost {
                    tag: segment.migrations[0].tag.clone(),
                    cause: e.to_string(),
                    settled: String::new(),
                },
                status: SegmentStatus::Unknown,
                failed: None,
            });
        }
        let mut failure = self.attempt_failed(segment, part, e, &timeouts, failed_after);
        if let Some((mi, si)) = kept_by_file {
            // The flights up to the file's own COMMIT kept their work; the one that failed did not.
            let m = segment.migrations[mi];
            failure.status = SegmentStatus::PartiallyApplied;
            if let Error::Migration(error) = &mut failure.error {
                error.advice = format!(
                    "The file's own COMMIT (statement {}, line {}) had committed the statements before it: they stay, and no ledger row was written for {}, so the next run applies the whole file again. Undo what those statements did by hand, or make them safe to run twice, before running again",
                    si + 1,
                    m.statements[si].line,
                    m.tag
                );
            }
        }
        Err(failure)
    }

    /// What failed an attempt at a segment: the request's part and its error. The `COMMIT` (or
    /// the connection's end) settled the transaction: nothing of it was kept.
    fn attempt_failed<'m>(
        &self,
        segment: &Segment<'m>,
        part: pipeline::Part,
        e: tokio_postgres::Error,
        timeouts: &Timeouts,
        failed_after: Duration,
    ) -> AttemptFailure<'m> {
        let rolled_back = |error: Error, failed| AttemptFailure {
            error,
            status: SegmentStatus::RolledBack,
            failed,
        };
        match part {
            pipeline::Part::Begin | pipeline::Part::Rebegin | pipeline::Part::Mark { .. } => rolled_back(Error::Session(e.into()), None),
            pipeline::Part::Rows { .. } => rolled_back(self.ledger.write_error(e).into(), None),
            pipeline::Part::CommitCheck => rolled_back(
                Error::Deadline {
                    during: "committing the segment",
                },
                None,
            ),
            pipeline::Part::Arm { migration, statement } | pipeline::Part::Statement { migration, statement } => {
                let m = segment.migrations[migration];
                let armed = matches!(part, pipeline::Part::Arm { .. });
                let (error, pg) = self.statement_failed(m, statement, e, timeouts, armed);
                rolled_back(Error::Migration(error), Some(failed_migration(m, pg, failed_after)))
            }
            pipeline::Part::Commit => {
                let last = segment.migrations.last().expect("segments are never empty");
                let pg = PgError::from(e);
                let error = MigrationError {
                    tag: last.tag.clone(),
                    location: "COMMIT".into(),
                    statement: None,
                    deadline: false,
                    advice: "The transaction was rolled back; nothing of this segment was kept".into(),
                    refused_values: false,
                    error: pg.clone(),
                };
                rolled_back(Error::Migration(error), Some(failed_migration(last, pg, Duration::ZERO)))
            }
        }
    }

    /// Statement `i` of `m` failed inside a pipelined segment (or its deadline check did, `armed`).
    fn statement_failed(
        &self,
        m: &Migration,
        i: usize,
        e: tokio_postgres::Error,
        timeouts: &Timeouts,
        armed: bool,
    ) -> (MigrationError, PgError) {
        let statement = &m.statements[i];
        let (pg, deadline) = if armed && e.code().map(|c| c.code()) != Some(pipeline::IN_FAILED_TRANSACTION) && e.as_db_error().is_some() {
            let pg = PgError {
                sqlstate: None,
                message: "the invocation deadline was reached before this statement started".into(),
                detail: None,
                hint: None,
            };
            (pg, true)
        } else {
            let pg = PgError::from(e);
            let deadline = pg.is(QUERY_CANCELED) && (timeouts.deadline_bound || expired(self.deadline));
            (pg, deadline)
        };
        let advice = if deadline {
            if armed {
                "Stopped at the invocation deadline"
            } else {
                "Cancelled at the invocation deadline"
            }
        } else {
            "The transaction was rolled back: nothing of this segment was kept, and no ledger row was written"
        };
        (MigrationError::at_statement(&m.tag, i, statement, pg.clone(), deadline, advice), pg)
    }

    pub(super) fn history<'e>(
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
            statement_index: None,
            start_marked: false,
        }
    }

    /// After segments committed (their commits deferred, see [`Applier::transaction`]) and no
    /// synchronous commit followed: a transaction that takes a transaction id commits
    /// synchronously, which waits for the flush of all the WAL before it, so the segments the
    /// report says committed are on disk. Best effort: if it fails, the report says their
    /// durability is not confirmed.
    pub async fn flush(&self, client: &Client, warnings: &mut Vec<String>) {
        if let Err(e) = client.batch_execute("select txid_current()").await {
            tracing::warn!(error = %e, "flushing the committed segments failed");
            warnings.push(format!(
                "the segments committed before the failure were not confirmed on disk ({e}); a crash of the server before it flushed its WAL would lose them whole, with their ledger rows, and the next run would apply them again"
            ));
        }
    }

    /// Best effort, after the transaction rolled back: the failure itself must not be lost,
    /// nor hidden by this.
    pub async fn record_failure(&self, client: &Client, action: &str, failed: &FailedMigration<'_>, warnings: &mut Vec<String>) {
        let entry = self.history(failed.migration, action, false, failed.duration, Some(&failed.error));
        if let Err(e) = self.ledger.record(client, &entry).await {
            let what = if action == "rollback" {
                "the failed rollback"
            } else {
                "the failure"
            };
            warnings.push(format!("could not record {what} in the history table: {e}"));
        }
    }

    /// Runs the plan's down files newest first and deletes their ledger rows, all in one
    /// transaction, retried like a migration segment when `lock_timeout` strikes.
    pub async fn rollback(
        &self,
        client: &mut Client,
        plan: &RollbackPlan<'_>,
        allow_data_loss: bool,
        warnings: &mut Vec<String>,
    ) -> Result<(Vec<Duration>, Vec<DataAtRisk>), Error> {
        let mut retry = self.retry("rollback attempt");
        loop {
            retry.start();
            if time_left(self.deadline).is_some_and(|left| left.is_zero()) {
                return Err(Error::Deadline {
                    during: "starting the rollback transaction",
                });
            }
            let failure = match self.try_rollback(client, plan, allow_data_loss).await {
                Ok(done) => return Ok(done),
                Err(failure) => failure,
            };
            if let Some(failure) = retry.after(failure, warnings).await {
                if let Some(failed) = &failure.failed {
                    self.record_failure(client, "rollback", failed, warnings).await;
                }
                return Err(failure.error);
            }
        }
    }

    async fn try_rollback<'m>(
        &self,
        client: &mut Client,
        plan: &RollbackPlan<'m>,
        allow_data_loss: bool,
    ) -> Result<(Vec<Duration>, Vec<DataAtRisk>), AttemptFailure<'m>> {
        let fail = |error: Error, failed| AttemptFailure {
            error,
            status: SegmentStatus::RolledBack,
            failed,
        };
        let tx = client.transaction().await.map_err(|e| fail(Error::Session(e.into()), None))?;
        let timeouts = self.timeouts("LOCAL");
        let body = async {
            tx.batch_execute(&format!("{}; {START_MARK_SQL}", timeouts.sql))
                .await
                .map_err(|e| fail(Error::Session(e.into()), None))?;
            // Checked inside the transaction, before any down statement takes its locks.
            let risk = rollback_plan::data_at_risk(&tx, plan, true)
                .await
                .map_err(|e| fail(e.into(), None))?;
            if !risk.is_empty() && !allow_data_loss {
                return Err(fail(data_loss(&risk), None));
            }
            let mut durations = Vec::with_capacity(plan.steps.len());
            for step in &plan.steps {
                let m = step.migration;
                self.progress.working_on(&m.tag);
                let started = Instant::now();
                for (i, statement) in step.down.statements.iter().enumerate() {
                    if let Err(e) = tx.batch_execute(&statement.sql).await {
                        let pg = PgError::from(e);
                        let deadline = timeouts.deadline_bound && pg.is(QUERY_CANCELED);
                        let error = MigrationError {
                            tag: m.tag.clone(),
                            location: format!("down statement {} (line {} of {})", i + 1, statement.line, m.down_file()),
                            statement: Some(statement.summary()),
                            error: pg.clone(),
                            deadline,
                            advice: "The rollback transaction was rolled back: the schema and the ledger are as they were".into(),
                            refused_values: false,
                        };
                        return Err(fail(Error::Migration(error), Some(failed_migration(m, pg, started.elapsed()))));
                    }
                }
                // The "journal cleanup": drizzle-orm decides what is applied from these rows.
                self.ledger.delete(&tx, m).await.map_err(|e| fail(e.into(), None))?;
                let duration = started.elapsed();
                let entry = HistoryEntry {
                    start_marked: true,
                    ..self.history(m, "rollback", true, duration, None)
                };
                self.ledger.record(&tx, &entry).await.map_err(|e| fail(e.into(), None))?;
                tracing::info!(target: PROGRESS, tag = %m.tag, duration_ms = duration.as_millis() as u64, "rolled back, commits with the rollback");
                durations.push(duration);
            }
            Ok((durations, risk))
        };
        match body.await {
            Ok(done) => {
                tx.commit().await.map_err(|e| fail(Error::Session(e.into()), None))?;
                Ok(done)
            }
            Err(failure) => {
                let _ = tx.rollback().await;
                Err(failure)
            }
        }
    }
}

/// The refusal when down files would drop data and the operator did not allow it.
pub fn data_loss(risk: &[DataAtRisk]) -> Error {
    RollbackError::DataLoss {
        tag: risk.first().map(|d| d.migration.clone()).unwrap_or_default(),
        objects: risk.iter().map(|d| d.object.clone()).collect(),
    }
    .into()
}

pub(super) fn failed_migration(migration: &Migration, error: PgError, duration: Duration) -> FailedMigration<'_> {
    FailedMigration {
        migration,
        error,
        duration,
    }
}

pub(super) fn applied(m: &Migration, duration: Duration) -> AppliedMigration {
    AppliedMigration {
        tag: m.tag.clone(),
        hash: m.hash.clone(),
        duration,
    }
}
