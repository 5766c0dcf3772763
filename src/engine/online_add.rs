//! The backfill step of `--online`'s add-then-backfill recipe for a volatile `DEFAULT` on
//! `ADD COLUMN` (`online::add_column` plans it, pure): the rows that were there before the
//! default was set are given their own value of it in batches, in primary-key order, each
//! batch sized toward a short time and committed on its own. Only rows still NULL are written,
//! so a run stopped part-way walks again on the next run and writes each row once.

use std::time::{Duration, Instant};

use tokio_postgres::GenericClient;

use crate::db::connection::PgError;
use crate::engine::applier::{Applier, QUERY_CANCELED};
use crate::engine::error::MigrationError;
use crate::engine::invocation::time_left;
use crate::engine::online_step::Failed;
use crate::engine::outcome::BackfillProgress;
use crate::engine::progress::PROGRESS;
use crate::migrations::source::Migration;
use crate::migrations::statement::Statement;
use crate::online::add_column::{batches, refusal, RECIPE};
use crate::online::change_type::{next_batch, KeyColumn};
use crate::online::{Decision, OnlinePlan};
use crate::sql::add_column::{add_column, AddColumn};

/// What a batch aims at: a writer waiting on one of its rows waits about this long at most.
const BATCH_TARGET_MS: u64 = 150;
const FIRST_BATCH: i32 = 1000;
/// How often the progress line is printed at most.
const TELL_EVERY: Duration = Duration::from_secs(1);

/// The table's primary key, in its order; empty without one (or without the table).
async fn primary_key(client: &impl GenericClient, table: &str) -> Result<Vec<KeyColumn>, PgError> {
    Ok(client
        .query(
            "select a.attname::text, format_type(a.atttypid, a.atttypmod)
               from pg_index i cross join lateral unnest(i.indkey::int2[]) with ordinality as k(attnum, position)
               join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
              where i.indrelid = to_regclass($1) and i.indisprimary
              order by k.position",
            &[&table],
        )
        .await?
        .iter()
        .map(|r| KeyColumn {
            name: r.get(0),
            type_sql: r.get(1),
        })
        .collect())
}

impl Applier<'_> {
    /// Statement `i`, the recipe's backfill of `a`'s column: every batch committed, then the
    /// step recorded as done.
    pub(super) async fn online_add_backfill(
        &self,
        client: &impl GenericClient,
        m: &Migration,
        i: usize,
        statement: &Statement,
        a: &AddColumn,
    ) -> Result<(), Failed> {
        let resumable = "The backfill stopped between batches: the rows it filled are committed, and new rows get the default. Run again (--online): it continues the backfill, writing only the rows still empty";
        let error = |pg: PgError, deadline: bool, advice: &str| {
            (MigrationError::at_statement(&m.tag, i, statement, pg.clone(), deadline, advice), pg)
        };
        let key = primary_key(client, &a.table).await.map_err(|e| error(e, false, resumable))?;
        if let Some(reason) = refusal(a, &key) {
            let pg = PgError {
                sqlstate: None,
                message: reason,
                detail: None,
                hint: None,
            };
            return Err(error(
                pg,
                false,
                "The column was added and its default set; add a primary key to the table, then run again: the backfill resumes",
            ));
        }
        let sql = batches(a, &key);
        let estimated: i64 = client
            .query_one(
                "select greatest(reltuples, 0)::int8 from pg_class where oid = to_regclass($1)",
                &[&a.table],
            )
            .await
            .map_or(0, |r| r.get(0));
        let started = Instant::now();
        let mut progress = BackfillProgress {
            migration: m.tag.clone(),
            table: a.table_name.clone(),
            column: a.column.clone(),
            rows: 0,
            written: 0,
            estimated_rows: estimated,
            batches: 0,
            duration_ms: 0,
        };
        let mut last: Option<Vec<String>> = None;
        let mut size = FIRST_BATCH;
        let mut attempt = 0;
        let mut told = Instant::now();
        loop {
            if let Err(e) = self.arm_deadline(client).await {
                return Err(error(e, true, resumable));
            }
            let batch = Instant::now();
            let answer = match &last {
                None => client.query_one(&sql.first, &[&size]).await,
                Some(k) => client.query_one(&sql.after, &[&size, k]).await,
            }
            .map_err(PgError::from);
            let row = match answer {
                Ok(row) => row,
                // A writer holds a row of the batch past the step's lock_timeout: the batch
                // rolled back, and is tried again after a pause that lets the writers through.
                Err(e) => match self.online_retry(&e, attempt) {
                    Some(pause) => {
                        attempt += 1;
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                    None => {
                        let out_of_time = time_left(self.deadline).is_some_and(|left| left < Duration::from_secs(1));
                        let deadline = self.deadline.is_some() && (e.is(QUERY_CANCELED) || out_of_time);
                        self.report_backfill(progress, started);
                        return Err(error(e, deadline, resumable));
                    }
                },
            };
            attempt = 0;
            let (walked, written, end): (i64, i64, Option<Vec<String>>) = (row.get(0), row.get(1), row.get(2));
            if walked == 0 {
                break;
            }
            let took = batch.elapsed();
            progress.rows += walked;
            progress.written += written;
            progress.batches += 1;
            last = end;
            if told.elapsed() >= TELL_EVERY || walked < i64::from(size) {
                told = Instant::now();
                tracing::info!(target: PROGRESS, tag = %m.tag, table = %a.table_name, column = %a.column, rows = progress.rows, estimated = estimated.max(progress.rows), batch = size, "backfilling the default");
            }
            size = next_batch(i64::from(size), took.as_millis() as u64, BATCH_TARGET_MS) as i32;
            // Throttled: a quarter of the batch's time left to the table's traffic.
            tokio::time::sleep(took / 4).await;
        }
        tracing::info!(target: PROGRESS, tag = %m.tag, table = %a.table_name, column = %a.column, rows = progress.rows, written = progress.written, duration_ms = started.elapsed().as_millis() as u64, "backfilled the default");
        self.report_backfill(progress, started);
        self.record_alone(client, m, i, statement).await.map_err(|e| {
            error(
                e,
                false,
                "Recording the step failed; the next run walks the rows again and writes none twice",
            )
        })
    }

    /// What the backfill did, for the run's report and metrics (a backfill cut short too: the
    /// rows it filled are committed).
    fn report_backfill(&self, mut progress: BackfillProgress, started: Instant) {
        progress.duration_ms = started.elapsed().as_millis() as u64;
        self.backfills.lock().expect("not poisoned").push(progress);
    }
}

/// Before anything runs: a volatile default's recipe on a table without a primary key (which
/// its backfill walks) is refused, naming the table. A table not there yet is judged when its
/// step runs.
pub async fn refuse_without_key(client: &impl GenericClient, pending: &[&Migration], plans: &mut [OnlinePlan]) {
    for (m, plan) in pending.iter().zip(plans.iter_mut()) {
        for s in plan.statements.iter_mut() {
            if !matches!(&s.decision, Decision::Recipe { recipe, .. } if recipe == RECIPE) {
                continue;
            }
            let Some(a) = m.statements.get(s.statement - 1).and_then(|st| add_column(&st.sql)) else {
                continue;
            };
            let exists = client
                .query_one("select to_regclass($1) is not null", &[&a.table])
                .await
                .is_ok_and(|r| r.get(0));
            let Ok(key) = primary_key(client, &a.table).await else { continue };
            if let Some(reason) = refusal(&a, &key).filter(|_| exists) {
                s.decision = Decision::Refused {
                    rule: crate::lint::rule::Rule::VolatileDefault.id().into(),
                    reason,
                };
            }
        }
    }
}
