//! A migration that cannot run in a transaction, statement by statement: each statement must
//! have committed before the next starts. Each one's commit is recorded in the history table, so
//! an interrupted run resumes after it (`engine/resume.rs`), exactly once: a statement that can
//! run in a transaction block commits with its history row, and one that cannot is checked in
//! the catalog when a run stopped between its commit and its row ([`Step`]).

use std::time::{Duration, Instant};

use tokio_postgres::{Client, GenericClient};

use crate::db::backoff::Backoff;
use crate::db::connection::PgError;
use crate::db::history::HistoryEntry;
use crate::db::points::START_MARK_SQL;
use crate::engine::applier::{applied, failed_migration, Applier, Committed, NotCommitted, Timeouts, QUERY_CANCELED};
use crate::engine::error::{Error, MigrationError};
use crate::engine::invocation::time_left;
use crate::engine::outcome::SegmentStatus;
use crate::engine::progress::PROGRESS;
use crate::engine::resume::{statement_hash, waits_for_older_transactions, Step};
use crate::engine::retry::{AttemptFailure, LOCK_NOT_AVAILABLE};
use crate::migrations::source::Migration;
use crate::migrations::statement::Statement;

/// The bound of the `DROP INDEX CONCURRENTLY` that removes the INVALID index a failed build
/// left. It waits for every transaction holding a lock on the table, which `lock_timeout` would
/// cut short (leaving the index INVALID), while the deadline may be far away or absent.
const CLEANUP_BOUND: Duration = Duration::from_secs(30);

/// How often `--online` tries a step again that could not get its lock within 500 ms: with
/// the pauses, about half a minute of the table's traffic before the run stops (it resumes at
/// this step next time).
const ONLINE_STEP_ATTEMPTS: u32 = 30;

/// Short pauses: the lock wait itself is the step's 500 ms; the pause lets queued writers through.
const ONLINE_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(100),
    cap: Duration::from_millis(500),
    jitter: 0.5,
};

/// `... cannot run inside a transaction block`.
const ACTIVE_SQL_TRANSACTION: &str = "25001";

/// `invalid transaction termination`: a `DO` block or procedure that commits (a batched
/// backfill) inside a transaction block.
const INVALID_TRANSACTION_TERMINATION: &str = "2D000";

/// Why a statement did not end up committed and recorded.
enum Failure {
    /// The statement (or its transaction) failed: nothing of it stays, unless it runs alone.
    Statement(PgError),
    /// The statement committed (or, with its row, was rolled back: see [`Step`]); its history
    /// row was not written.
    Record(PgError),
}

impl Applier<'_> {
    /// A migration that cannot run in a transaction: each statement commits on its own and is
    /// recorded as done in the history, then its ledger row is written. A failure part-way leaves
    /// the earlier statements in place, and the next run resumes after them: `start` is how many
    /// statements an earlier run completed ([`resume_point`](crate::engine::resume::resume_point)).
    pub async fn autocommit<'m>(&self, client: &mut Client, m: &'m Migration, start: usize) -> Result<Committed, NotCommitted<'m>> {
        let started = Instant::now();
        let timeouts = self.timeouts("SESSION");
        let fail = |error: Error, status, failed| NotCommitted {
            failure: AttemptFailure { error, status, failed },
            attempts: 1,
        };
        // Marks where this run's part of the migration began, for its history rows: a session
        // setting, as each statement commits on its own.
        client
            .batch_execute(&format!("{}; {START_MARK_SQL}", timeouts.sql))
            .await
            .map_err(|e| fail(Error::Session(e.into()), SegmentStatus::NotRun, None))?;
        let result = self.autocommit_statements(&*client, m, &timeouts, start).await;
        let _ = client.batch_execute("RESET lock_timeout; RESET statement_timeout").await;
        if let Err((mut error, pg)) = result {
            if !error.deadline && gave_way_until_deadline(self.settings.online, &pg, time_left(self.deadline)) {
                // Not a failure of the step: the run is out of time, as if cut at its deadline,
                // and the next run resumes at this step (the Lambda answers `inProgress`).
                error.deadline = true;
                error.advice = format!(
                    "Stopped at the invocation deadline while {} kept giving way to locks other sessions hold on its table (not granted within 500 ms, tried again until the deadline); nothing of this step was kept. Run again (--online): it resumes at this step",
                    error.location
                );
            }
            let status = if client.is_closed() && pg.sqlstate.is_none() && !error.deadline {
                // The connection ended, not the server's refusal: the statement may have
                // committed. The next run's resume finds out (its history row, or the catalog).
                error.advice = format!(
                    "The connection ended while {} was running or committing, so whether it committed is unknown. The next run resumes after what it finds recorded and checks the catalog for an index build or drop",
                    error.location
                );
                SegmentStatus::Unknown
            } else if start == 0 && error.location.starts_with("statement 1 ") {
                SegmentStatus::RolledBack
            } else {
                SegmentStatus::PartiallyApplied
            };
            return Err(fail(
                Error::Migration(error),
                status,
                Some(failed_migration(m, pg, started.elapsed())),
            ));
        }
        let duration = started.elapsed();
        let tx = client
            .transaction()
            .await
            .map_err(|e| fail(Error::Session(e.into()), SegmentStatus::PartiallyApplied, None))?;
        let recorded = self
            .ledger
            .insert_and_record(
                &tx,
                m,
                &HistoryEntry {
                    start_marked: true,
                    ..self.history(m, "apply", true, duration, None)
                },
            )
            .await;
        match recorded {
            // A COMMIT whose answer the connection's end cut off may have committed.
            Ok(()) => tx.commit().await.map_err(|e| {
                let status = if e.as_db_error().is_none() {
                    SegmentStatus::Unknown
                } else {
                    SegmentStatus::PartiallyApplied
                };
                fail(Error::Session(e.into()), status, None)
            })?,
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(fail(e.into(), SegmentStatus::PartiallyApplied, None));
            }
        }
        tracing::info!(target: PROGRESS, tag = %m.tag, duration_ms = duration.as_millis() as u64, "applied outside a transaction, committed");
        Ok((vec![applied(m, duration)], 1))
    }

    /// Runs the statements from statement `start + 1` on, in order, each committed and recorded
    /// as done before the next is sent.
    async fn autocommit_statements(
        &self,
        client: &impl GenericClient,
        m: &Migration,
        timeouts: &Timeouts,
        start: usize,
    ) -> Result<(), (MigrationError, PgError)> {
        self.progress.working_on(&m.tag);
        tracing::info!(target: PROGRESS, tag = %m.tag, statements = m.statements.len(), "applying");
        for (i, statement) in m.statements.iter().enumerate().skip(start) {
            let error = |pg: PgError, deadline: bool, advice: String| {
                (MigrationError::at_statement(&m.tag, i, statement, pg.clone(), deadline, advice), pg)
            };
            if let Err(pg) = self.arm_deadline(client).await {
                return Err(error(pg, true, "Stopped at the invocation deadline".into()));
            }
            if let Some(added) = crate::online::add_column::backfill_step(statement) {
                self.online_add_backfill(client, m, i, statement, &added).await?;
                continue;
            }
            if let Some((phase, cts)) = crate::online::change_type::phase(statement) {
                self.online_phase(client, m, i, statement, phase, &cts, timeouts).await?;
                continue;
            }
            let step = Step::of(statement);
            // Only the first statement this run sends can have committed in an earlier run that
            // stopped before its history row: every statement before it has its row.
            if i == start && already_done(client, &step).await {
                tracing::warn!(target: PROGRESS, tag = %m.tag, statement = i + 1, "committed by an earlier run that stopped before recording it: recorded now, not run again");
                self.record_alone(client, m, i, statement)
                    .await
                    .map_err(|pg| record_failed(m, i, statement, &step, pg))?;
                continue;
            }
            if let Step::BuildsIndex(name) = &step {
                // A failed build's INVALID leftover (its cleanup cut short, or the run killed):
                // the statement could never run while it is there.
                if let Err(pg) = self.drop_invalid(client, name, timeouts).await {
                    let advice = format!("An INVALID index {name} (left by a failed concurrent build) could not be dropped before building it again; DROP INDEX CONCURRENTLY {name} when the transactions that hold locks on its table have ended, then run again: this statement resumes");
                    return Err(error(pg, false, advice));
                }
            }
            let mut attempt = 0;
            let failure = loop {
                match self.run_statement(client, m, i, statement, &step, timeouts).await {
                    Ok(()) => break None,
                    Err(Failure::Record(pg)) => return Err(record_failed(m, i, statement, &step, pg)),
                    Err(Failure::Statement(pg)) => match self.online_retry(&pg, attempt) {
                        Some(pause) => {
                            attempt += 1;
                            tracing::info!(target: PROGRESS, tag = %m.tag, statement = i + 1, attempt, pause_ms = pause.as_millis() as u64, "lock not granted within 500 ms: gave way to the table's traffic, trying this step again");
                            tokio::time::sleep(pause).await;
                            if let Err(pg) = self.arm_deadline(client).await {
                                return Err(error(pg, true, "Stopped at the invocation deadline".into()));
                            }
                        }
                        None => break Some(pg),
                    },
                }
            };
            if let (None, Step::BuildsIndex(name)) = (&failure, &step) {
                // IF NOT EXISTS succeeds over an INVALID index it did not build.
                if index_valid(client, name).await == Some(false) {
                    let pg = PgError {
                        sqlstate: None,
                        message: format!("index {name} exists but is INVALID (a concurrent build of it failed)"),
                        detail: None,
                        hint: None,
                    };
                    let advice = format!("Run again: the next run drops the INVALID index {name} and builds it at this statement");
                    return Err(error(pg, false, advice));
                }
            }
            let Some(pg) = failure else { continue };
            let cleanup = match &step {
                Step::BuildsIndex(name) => Some((name, self.drop_invalid(client, name, timeouts).await)),
                _ => None,
            };
            let deadline = timeouts.deadline_bound && pg.is(QUERY_CANCELED);
            let cleaned = match &cleanup {
                Some((name, Ok(true))) => format!("The failed concurrent build left index {name} INVALID; it was dropped, so the statement can run again. "),
                Some((name, Err(e))) => format!("The failed concurrent build left index {name} INVALID and dropping it failed ({}); the next run drops it before building it again. ", e.message),
                _ => String::new(),
            };
            let advice = if deadline {
                format!("{cleaned}Cancelled at the invocation deadline")
            } else if i > 0 {
                format!("{cleaned}This migration runs outside a transaction: statements 1 to {i} were committed and stay, and no ledger row was written. The next run resumes at statement {}: fix what made it fail (statements 1 to {i} must not change), then run again", i + 1)
            } else if matches!(cleanup, Some((_, Ok(true)))) {
                format!("{cleaned}Nothing else was applied; no ledger row was written")
            } else {
                "Nothing was applied; no ledger row was written".to_string()
            };
            return Err(error(pg, deadline, advice));
        }
        Ok(())
    }

    /// Under `--online`, the pause before trying again a step that gave way to a lock held by
    /// the table's traffic (`lock_timeout`, 55P03), jittered so it does not fall in step with
    /// the writers; `None` for any other failure, without `--online`, past the last attempt, or
    /// when the pause would reach the deadline. The step rolled back: trying it again is safe.
    pub(super) fn online_retry(&self, pg: &PgError, attempt: u32) -> Option<Duration> {
        if !self.settings.online || !pg.is(LOCK_NOT_AVAILABLE) || attempt >= ONLINE_STEP_ATTEMPTS {
            return None;
        }
        let pause = ONLINE_BACKOFF.delay(attempt);
        match time_left(self.deadline) {
            Some(left) if left <= pause => None,
            _ => Some(pause),
        }
    }

    /// `statement_timeout` bounds each statement, not the migration: re-armed with what is left
    /// so the whole run ends by the deadline.
    pub(super) async fn arm_deadline(&self, client: &impl GenericClient) -> Result<(), PgError> {
        let Some(left) = time_left(self.deadline) else {
            return Ok(());
        };
        if left.is_zero() {
            return Err(PgError {
                sqlstate: None,
                message: "the invocation deadline was reached before this statement started".into(),
                detail: None,
                hint: None,
            });
        }
        let limit = self.settings.statement_timeout.map_or(left, |c| c.min(left));
        let sql = format!("SET SESSION statement_timeout = '{}ms'", limit.as_millis().max(1));
        client.batch_execute(&sql).await.map_err(PgError::from)
    }

    /// Statement `i` committed and recorded, as its [`Step`] allows.
    async fn run_statement(
        &self,
        client: &impl GenericClient,
        m: &Migration,
        i: usize,
        statement: &Statement,
        step: &Step,
        timeouts: &Timeouts,
    ) -> Result<(), Failure> {
        if *step == Step::WithItsRow {
            let hash = statement_hash(statement);
            let row = self.ledger.record_sql(&self.statement_entry(m, i, &hash));
            // One flight, one transaction: if the statement fails, its row is refused and the
            // COMMIT rolls back; if the row fails, the COMMIT rolls the statement back with it.
            let (begin, ran, recorded, commit) = tokio::join!(
                client.batch_execute("BEGIN"),
                client.batch_execute(&statement.sql),
                client.batch_execute(&row),
                client.batch_execute("COMMIT"),
            );
            begin.map_err(|e| Failure::Statement(e.into()))?;
            match ran.map_err(PgError::from) {
                // The grammar said it may run in a transaction block; the server says not (a
                // statement that must run alone, or a body that commits as it goes).
                Err(pg) if pg.is(ACTIVE_SQL_TRANSACTION) || pg.is(INVALID_TRANSACTION_TERMINATION) => {}
                Err(pg) => return Err(Failure::Statement(pg)),
                Ok(()) => {
                    recorded.map_err(|e| Failure::Record(e.into()))?;
                    return commit.map_err(|e| Failure::Statement(e.into()));
                }
            }
        }
        self.run_alone(client, statement, timeouts).await.map_err(Failure::Statement)?;
        self.record_alone(client, m, i, statement).await.map_err(Failure::Record)
    }

    /// A statement that commits on its own. One that waits for the database's older
    /// transactions runs without `lock_timeout`: the deadline (`statement_timeout`) bounds it.
    async fn run_alone(&self, client: &impl GenericClient, statement: &Statement, timeouts: &Timeouts) -> Result<(), PgError> {
        if !waits_for_older_transactions(statement) {
            return Ok(client.batch_execute(&statement.sql).await?);
        }
        client.batch_execute("SET SESSION lock_timeout = 0").await?;
        let ran = client.batch_execute(&statement.sql).await;
        let restored = client.batch_execute(&timeouts.sql).await;
        ran?;
        Ok(restored?)
    }

    /// Statement `i` committed on its own: its history row lets an interrupted run resume after it.
    pub(super) async fn record_alone(
        &self,
        client: &impl GenericClient,
        m: &Migration,
        i: usize,
        statement: &Statement,
    ) -> Result<(), PgError> {
        let hash = statement_hash(statement);
        self.ledger.record(client, &self.statement_entry(m, i, &hash)).await.map_err(|e| {
            e.pg().cloned().unwrap_or(PgError {
                sqlstate: None,
                message: e.to_string(),
                detail: None,
                hint: None,
            })
        })
    }

    pub(super) fn statement_entry<'e>(&'e self, m: &'e Migration, i: usize, hash: &'e str) -> HistoryEntry<'e> {
        HistoryEntry {
            action: "statement",
            hash,
            statement_index: i32::try_from(i + 1).ok(),
            start_marked: true,
            ..self.history(m, "statement", true, Duration::ZERO, None)
        }
    }

    /// Drops the INVALID index `name` if there is one (a failed concurrent build of it), under
    /// its own bound; whether it dropped one.
    pub(super) async fn drop_invalid(&self, client: &impl GenericClient, name: &str, timeouts: &Timeouts) -> Result<bool, PgError> {
        if index_valid(client, name).await != Some(false) {
            return Ok(false);
        }
        let bound = time_left(self.deadline).map_or(CLEANUP_BOUND, |left| left.min(CLEANUP_BOUND));
        if bound.is_zero() {
            return Err(PgError {
                sqlstate: None,
                message: "the invocation deadline was reached before the INVALID index could be dropped".into(),
                detail: None,
                hint: None,
            });
        }
        let ms = bound.as_millis().max(1);
        client
            .batch_execute(&format!("SET SESSION lock_timeout = 0; SET SESSION statement_timeout = '{ms}ms'"))
            .await?;
        let dropped = client.batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}")).await;
        let restored = client.batch_execute(&timeouts.sql).await;
        match dropped {
            Ok(()) => tracing::warn!(index = name, "dropped the INVALID index a failed concurrent build left"),
            Err(e) => {
                let pg = PgError::from(e);
                tracing::warn!(index = name, error = %pg, "could not drop the INVALID index a failed concurrent build left");
                return Err(pg);
            }
        }
        restored?;
        Ok(true)
    }
}

/// Whether a step that failed with `pg` stopped because the deadline left no time for another
/// try after giving way to a lock ([`Applier::online_retry`] declines a pause that would reach
/// it): under `--online`, `lock_timeout` with less than the longest pause left. Such a run is
/// cut by its deadline, not failed.
fn gave_way_until_deadline(online: bool, pg: &PgError, left: Option<Duration>) -> bool {
    let longest_pause = ONLINE_BACKOFF.cap.mul_f64(1.0 + ONLINE_BACKOFF.jitter);
    online && pg.is(LOCK_NOT_AVAILABLE) && left.is_some_and(|left| left <= longest_pause)
}

/// Whether the catalog shows that `step` has already done what it does: a statement that can
/// be told so.
async fn already_done(client: &impl GenericClient, step: &Step) -> bool {
    match step {
        Step::BuildsIndex(name) => index_valid(client, name).await == Some(true),
        Step::DropsIndex(name) => client
            .query_opt("select 1 where to_regclass($1) is null", &[name])
            .await
            .is_ok_and(|row| row.is_some()),
        Step::WithItsRow | Step::Alone => false,
    }
}

/// Whether the index exists and is valid; `None` when it does not exist (or cannot be read).
pub(super) async fn index_valid(client: &impl GenericClient, name: &str) -> Option<bool> {
    let row = client
        .query_opt("select indisvalid from pg_index where indexrelid = to_regclass($1)", &[&name])
        .await
        .ok()??;
    Some(row.get(0))
}

/// The history row of statement `i` was not written.
fn record_failed(m: &Migration, i: usize, statement: &Statement, step: &Step, pg: PgError) -> (MigrationError, PgError) {
    let n = i + 1;
    let stays = match i {
        0 => "Nothing before it was applied".to_string(),
        _ => format!("Statements 1 to {i} were committed and stay"),
    };
    let what = match step {
        Step::WithItsRow => format!("{stays}; statement {n} was rolled back with its history row, and the next run resumes at it"),
        Step::BuildsIndex(_) | Step::DropsIndex(_) => {
            format!("{stays}; statement {n} committed too, and the next run finds it done in the catalog and records it")
        }
        Step::Alone => format!("{stays}; statement {n} committed too, and the next run runs it again"),
    };
    let error = MigrationError {
        tag: m.tag.clone(),
        location: format!("recording statement {n} (line {}) as done", statement.line),
        statement: Some(statement.summary()),
        error: pg.clone(),
        deadline: false,
        advice: format!("{what}. Check the history table's permissions"),
        refused_values: false,
    };
    (error, pg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(sqlstate: &str) -> PgError {
        PgError {
            sqlstate: Some(sqlstate.into()),
            message: "m".into(),
            detail: None,
            hint: None,
        }
    }

    #[test]
    fn a_step_giving_way_to_locks_with_no_time_for_another_try_is_cut_by_the_deadline() {
        let lock = failed(LOCK_NOT_AVAILABLE);
        let near = Some(Duration::from_millis(300));
        assert!(gave_way_until_deadline(true, &lock, near));
        assert!(gave_way_until_deadline(true, &lock, Some(Duration::ZERO)));
        assert!(
            gave_way_until_deadline(true, &lock, Some(Duration::from_millis(750))),
            "the longest jittered pause"
        );
        // Time for another try: the attempts ran out, a failure of the step.
        assert!(!gave_way_until_deadline(true, &lock, Some(Duration::from_millis(751))));
        assert!(!gave_way_until_deadline(true, &lock, None), "no deadline: only the attempts end it");
        assert!(
            !gave_way_until_deadline(false, &lock, near),
            "without --online a lock wait is not retried"
        );
        assert!(
            !gave_way_until_deadline(true, &failed("23505"), near),
            "another failure stays a failure"
        );
    }
}
