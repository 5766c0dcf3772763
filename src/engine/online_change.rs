//! The three steps of `--online`'s expand/backfill/swap recipe that read the catalog when they
//! run (`online::change_type` plans them, pure): the batched backfill (then the values the new
//! type refuses, in `online_refused`), the rebuild of the column's NOT NULL, indexes and
//! constraints on the new column, and the swap. Each ends with its history row, so a run stopped in one
//! continues it on the next run: the backfill skips the rows already converted (each row is
//! written once), the rebuild what the catalog shows built, and the swap commits with its row.

use std::time::{Duration, Instant};

use tokio_postgres::GenericClient;

use crate::db::connection::PgError;
use crate::engine::applier::{Applier, Timeouts};
use crate::engine::error::MigrationError;
use crate::engine::online_step::{pg, Failed};
use crate::engine::outcome::BackfillProgress;
use crate::engine::progress::PROGRESS;
use crate::migrations::source::Migration;
use crate::migrations::statement::Statement;
use crate::online::change_type::{
    self as recipe, next_batch, refusal, Column, ConstraintFact, Facts, IndexFact, KeyColumn, Phase, Rebuild, BACKFILL_SETTING,
};
use crate::sql::change_type::ChangeType;

/// What a batch aims at: the one throttle writers feel. A writer that touches a row of the
/// batch waits until the batch commits, so this bounds its wait (the target: never 200 ms).
const BATCH_TARGET_MS: u64 = 150;
const FIRST_BATCH: i32 = 1000;
/// What a `VALIDATE CONSTRAINT` fails with when a row breaks the check.
const CHECK_VIOLATION: &str = "23514";

/// What the catalog says of `ct`'s column: read at the edge, right before a step needs it.
/// `None` when the table or column is not there (yet). `default` converts the column's
/// default to the new type (which must exist by then).
pub async fn read_facts(client: &impl GenericClient, ct: &ChangeType, default: bool) -> Result<Option<Facts>, PgError> {
    let Some(column) = client
        .query_opt(
            "select a.attrelid::oid, a.attnum::int4, a.attnotnull, a.attidentity <> '' or a.attgenerated <> '',
                    format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid)
               from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
              where a.attrelid = to_regclass($1) and a.attname = $2 and not a.attisdropped",
            &[&ct.table, &ct.column],
        )
        .await?
    else {
        return Ok(None);
    };
    let (table, attnum): (u32, i32) = (column.get(0), column.get(1));
    let mut facts = Facts {
        not_null: column.get(2),
        ..Facts::default()
    };
    if column.get::<_, bool>(3) {
        facts.blockers.push("its identity or generated definition".into());
    }
    let (convert, old_type, default): (bool, String, Option<String>) = (default, column.get(4), column.get(5));
    facts.key = client
        .query(
            "select a.attname::text, format_type(a.atttypid, a.atttypmod)
               from pg_index i, unnest(i.indkey::int2[]) with ordinality k(attnum, n), pg_attribute a
              where i.indrelid = $1 and i.indisprimary and a.attrelid = i.indrelid and a.attnum = k.attnum
              order by k.n",
            &[&table],
        )
        .await?
        .iter()
        .map(|r| KeyColumn {
            name: r.get(0),
            type_sql: r.get(1),
        })
        .collect();
    for r in client
        .query(
            "select c.relname::text, pg_get_indexdef(i.indexrelid), con.conname::text, con.contype::text
               from pg_index i join pg_class c on c.oid = i.indexrelid
               left join pg_constraint con on con.conindid = i.indexrelid and con.conrelid = i.indrelid
              where i.indrelid = $1
                and ($2::int2 = any(i.indkey::int2[])
                     or exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = i.indexrelid
                                   and d.refobjid = i.indrelid and d.refobjsubid = $2))
              order by 1",
            &[&table, &(attnum as i16)],
        )
        .await?
    {
        let (name, def, constraint, kind): (String, String, Option<String>, Option<String>) = (r.get(0), r.get(1), r.get(2), r.get(3));
        match kind.as_deref() {
            None | Some("u") => facts.indexes.push(IndexFact { name, def, constraint }),
            Some("p") => facts.blockers.push(format!("the primary key {name}")),
            Some(_) => facts.blockers.push(format!("the constraint {name}")),
        }
    }
    for r in client
        .query(
            "select conname::text, contype::text, pg_get_constraintdef(oid) from pg_constraint
              where conrelid = $1 and $2::int2 = any(conkey) and contype not in ('p', 'u', 'x', 'n')
                and conname <> $3 order by 1",
            // The recipe's own check that every value converted is not the column's to rebuild.
            &[&table, &(attnum as i16), &crate::online::change_type::names(ct).converted_check],
        )
        .await?
    {
        let (name, kind, def): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        match kind.as_str() {
            "c" | "f" => facts.constraints.push(ConstraintFact { name, def }),
            _ => facts.blockers.push(format!("the constraint {name}")),
        }
    }
    for r in client
        .query(
            "select format('the foreign key %s of %s', conname, conrelid::regclass) from pg_constraint
              where confrelid = $1 and $2::int4::int2 = any(confkey)
             union
             select format('the %s %s', case v.relkind when 'm' then 'materialized view' when 'v' then 'view' else 'rule of' end, v.oid::regclass)
               from pg_depend d join pg_rewrite w on w.oid = d.objid join pg_class v on v.oid = w.ev_class
              where d.classid = 'pg_rewrite'::regclass and d.refobjid = $1 and d.refobjsubid = $2
             union
             select format('the sequence %s it owns', s.oid::regclass)
               from pg_depend d join pg_class s on s.oid = d.objid and s.relkind = 'S'
              where d.refobjid = $1 and d.refobjsubid = $2 and d.deptype in ('a', 'i')
             union
             select format('the generated column %s', a.attname)
               from pg_depend d join pg_attribute a on a.attrelid = d.objid and a.attnum = d.objsubid
              where d.classid = 'pg_class'::regclass and d.objid = $1 and d.refobjid = $1 and d.refobjsubid = $2 and d.objsubid <> $2
             order by 1",
            &[&table, &attnum],
        )
        .await?
    {
        facts.blockers.push(r.get(0));
    }
    if let Some(default) = default.filter(|_| convert) {
        facts.default = Some(converted_default(client, &old_type, &default, &ct.new_type).await?);
    }
    Ok(Some(facts))
}

/// The default as `ALTER COLUMN … TYPE` converts it (it strips the old column's implicit cast
/// and assigns to the new type), found by Postgres itself on an empty temporary table.
async fn converted_default(client: &impl GenericClient, old_type: &str, default: &str, new_type: &str) -> Result<String, PgError> {
    client
        .batch_execute(&format!(
            "BEGIN; CREATE TEMP TABLE wm_default_probe (c {old_type} DEFAULT {default}) ON COMMIT DROP;
             ALTER TABLE wm_default_probe ALTER COLUMN c TYPE {new_type} USING NULL"
        ))
        .await
        .map_err(PgError::from)?;
    let read = client
        .query_one(
            "select pg_get_expr(adbin, adrelid) from pg_attrdef where adrelid = 'wm_default_probe'::regclass",
            &[],
        )
        .await;
    let _ = client.batch_execute("ROLLBACK").await;
    Ok(read?.get(0))
}

impl Applier<'_> {
    /// Runs step `i`, one of the recipe's catalog-reading phases, and records it as done.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn online_phase(
        &self,
        client: &impl GenericClient,
        m: &Migration,
        i: usize,
        statement: &Statement,
        phase: Phase,
        cts: &[ChangeType],
        timeouts: &Timeouts,
    ) -> Result<(), Failed> {
        let error = |pg: PgError, deadline: bool, advice: &str| {
            (MigrationError::at_statement(&m.tag, i, statement, pg.clone(), deadline, advice), pg)
        };
        let mut cols: Vec<Column> = Vec::with_capacity(cts.len());
        for ct in cts {
            let facts = match read_facts(client, ct, true).await {
                Ok(Some(facts)) => facts,
                Ok(None) => {
                    return Err(error(
                        pg(format!("column {}.{} not found", ct.table, ct.column)),
                        false,
                        "Something changed the table while the recipe ran; check it and run again",
                    ))
                }
                Err(e) => return Err(error(e, false, "Reading the column's catalog failed; run again")),
            };
            if let Some(reason) = refusal(ct, &facts) {
                return Err(error(pg(reason), false, "Nothing of the swap ran"));
            }
            cols.push((ct.clone(), facts));
        }
        let columns = cts.iter().map(|c| c.column.as_str()).collect::<Vec<_>>().join(", ");
        let table = &cts[0].table_name;
        match phase {
            Phase::Backfill => self.backfill(client, m, i, statement, &cols, timeouts).await?,
            Phase::Rebuild => self.rebuild(client, m, i, statement, &cols, timeouts).await?,
            Phase::Swap => {
                let mut sql = recipe::swap(&cols);
                sql.push(
                    self.ledger
                        .record_sql(&self.statement_entry(m, i, &crate::engine::resume::statement_hash(statement))),
                );
                let batch = format!("BEGIN; {}; COMMIT", sql.join("; "));
                self.with_lock_retries(client, m, i, &batch).await.map_err(|e| {
                    let deadline = e.is(crate::engine::applier::QUERY_CANCELED);
                    error(e, deadline, "The swap rolled back as a whole: the original column is untouched and the new one stays in step. Run again: the next run resumes at the swap")
                })?;
                tracing::info!(target: PROGRESS, tag = %m.tag, %table, %columns, "swapped the converted column(s) in");
                return Ok(());
            }
        }
        self.record_alone(client, m, i, statement)
            .await
            .map_err(|e| error(e, false, "Recording the step failed; the next run does it again without harm"))
    }

    #[allow(clippy::too_many_arguments)]
    async fn backfill(
        &self,
        client: &impl GenericClient,
        m: &Migration,
        i: usize,
        statement: &Statement,
        cols: &[Column],
        timeouts: &Timeouts,
    ) -> Result<(), Failed> {
        let cts: Vec<ChangeType> = cols.iter().map(|(ct, _)| ct.clone()).collect();
        let (ct, facts) = &cols[0];
        let columns = cts.iter().map(|c| c.column.as_str()).collect::<Vec<_>>().join(", ");
        let error = |pg: PgError, deadline: bool, advice: String| {
            (MigrationError::at_statement(&m.tag, i, statement, pg.clone(), deadline, advice), pg)
        };
        let resumable = "The backfill stopped between batches: what it converted is committed and the trigger keeps it in step. Run again (--online): it continues the backfill, skipping the rows already converted";
        let sql = recipe::backfill(&cts, &facts.key, super::online_refused::SHOWN_KEYS);
        let estimated: i64 = client
            .query_one(
                "select greatest(reltuples, 0)::int8 from pg_class where oid = to_regclass($1)",
                &[&ct.table],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(0);
        let started = Instant::now();
        let mut progress = BackfillProgress {
            migration: m.tag.clone(),
            table: ct.table_name.clone(),
            column: columns.clone(),
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
        client
            // Each batch's commit need not wait for its WAL to reach disk: a batch lost to a
            // server crash is one the next run's backfill finds unconverted and writes again.
            .batch_execute(&format!("SET {BACKFILL_SETTING} = 'on'; SET synchronous_commit = off"))
            .await
            .map_err(|e| error(e.into(), false, resumable.into()))?;
        loop {
            if let Err(e) = self.arm_deadline(client).await {
                return Err(error(e, true, resumable.into()));
            }
            let batch = Instant::now();
            let answer = match &last {
                None => client.query_one(&sql.first, &[&size]).await,
                Some(k) => client.query_one(&sql.next, &[&size, k]).await,
            }
            .map_err(PgError::from);
            let row = match answer {
                Ok(row) => row,
                // A value the new type refuses (class 22, data exception): this batch again,
                // each row converted by the trigger, which leaves a refused one NULL.
                Err(e) if e.sqlstate.as_deref().is_some_and(|s| s.starts_with("22")) => {
                    let fallback = async {
                        client.batch_execute(&format!("SET {BACKFILL_SETTING} = 'off'")).await?;
                        let row = client.query_one(&sql.fallback, &[&size, &last]).await;
                        client.batch_execute(&format!("SET {BACKFILL_SETTING} = 'on'")).await?;
                        row
                    };
                    match fallback.await.map_err(PgError::from) {
                        Ok(row) => row,
                        Err(e) => return Err(self.backfill_failed(e, &error, resumable)),
                    }
                }
                Err(e) => match self.online_retry(&e, attempt) {
                    Some(pause) => {
                        attempt += 1;
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                    None => return Err(self.backfill_failed(e, &error, resumable)),
                },
            };
            attempt = 0;
            let (walked, written, key): (i64, i64, Option<Vec<String>>) = (row.get(0), row.get(1), row.get(2));
            if walked == 0 {
                break;
            }
            let took = batch.elapsed();
            progress.rows += walked;
            progress.written += written;
            progress.batches += 1;
            last = key;
            if told.elapsed() >= Duration::from_secs(1) || walked < i64::from(size) {
                told = Instant::now();
                tracing::info!(target: PROGRESS, tag = %m.tag, table = %ct.table_name, %columns, rows = progress.rows, estimated = estimated.max(progress.rows), batch = size, "backfilling");
            }
            size = next_batch(i64::from(size), took.as_millis() as u64, BATCH_TARGET_MS) as i32;
            // No pause before the next batch. It would not serve the writers: one that waited on a
            // row of this batch got it at the commit, and the next batch locks other rows. Nor
            // the server: the backfill is one backend on one core, and a fixed pause bounds
            // neither a replica's lag nor the WAL rate. Measured on 1M rows under 6 writers, a
            // pause of a quarter of each batch cost ~9 s of a 43 s backfill and a tenth ~2 s of
            // 20 s, with the writers' longest wait no shorter either way.
        }
        let _ = client
            .batch_execute(&format!("RESET {BACKFILL_SETTING}; RESET synchronous_commit"))
            .await;
        progress.duration_ms = started.elapsed().as_millis() as u64;
        tracing::info!(target: PROGRESS, tag = %m.tag, table = %ct.table_name, %columns, rows = progress.rows, written = progress.written, duration_ms = progress.duration_ms, "backfilled");
        self.backfills.lock().expect("not poisoned").push(progress);
        self.refuse_values(client, m, i, i, statement, cols, timeouts, resumable).await
    }

    /// A batch that failed: at the deadline (cancelled, or its lock not granted before the
    /// time left ran out) the error says so, and either way the backfill resumes next run.
    fn backfill_failed(&self, e: PgError, error: &impl Fn(PgError, bool, String) -> Failed, resumable: &str) -> Failed {
        let out_of_time = crate::engine::invocation::time_left(self.deadline).is_some_and(|left| left < Duration::from_secs(1));
        let deadline = self.deadline.is_some() && (e.is(crate::engine::applier::QUERY_CANCELED) || out_of_time);
        error(e, deadline, resumable.into())
    }

    #[allow(clippy::too_many_arguments)]
    async fn rebuild(
        &self,
        client: &impl GenericClient,
        m: &Migration,
        i: usize,
        statement: &Statement,
        cols: &[Column],
        timeouts: &Timeouts,
    ) -> Result<(), Failed> {
        let ct = &cols[0].0;
        let error = |pg: PgError, advice: &str| {
            let deadline = pg.is(crate::engine::applier::QUERY_CANCELED) && self.deadline.is_some();
            (MigrationError::at_statement(&m.tag, i, statement, pg.clone(), deadline, advice), pg)
        };
        let Some(steps) = recipe::rebuild(cols) else {
            let columns = cols.iter().map(|(c, _)| c.column.as_str()).collect::<Vec<_>>().join(", ");
            return Err(error(
                pg(format!(
                    "an index or constraint on {}.{columns} cannot be rebuilt on the new column",
                    ct.table_name
                )),
                "Nothing of the swap ran; drop and re-create that index or constraint around the change",
            ));
        };
        let advice = "What was rebuilt stays (under temporary names); the next run continues the rebuild";
        for step in steps {
            if let Err(e) = self.arm_deadline(client).await {
                return Err(error(e, advice));
            }
            match step {
                Rebuild::Index { name, sql } => {
                    let quoted = match &ct.schema {
                        Some(s) => format!("{}.{}", crate::sql::online::quote(s), crate::sql::online::quote(&name)),
                        None => crate::sql::online::quote(&name),
                    };
                    if super::autocommit::index_valid(client, &quoted).await == Some(true) {
                        continue;
                    }
                    self.drop_invalid(client, &quoted, timeouts).await.map_err(|e| error(e, advice))?;
                    let run = async {
                        client.batch_execute("SET SESSION lock_timeout = 0").await?;
                        let ran = client.batch_execute(&sql).await;
                        client.batch_execute(&timeouts.sql).await?;
                        ran
                    };
                    if let Err(e) = run.await {
                        let _ = self.drop_invalid(client, &quoted, timeouts).await;
                        return Err(error(e.into(), advice));
                    }
                }
                Rebuild::Constraint { name, sql } => {
                    if self
                        .constraint_state(client, ct, &name)
                        .await
                        .map_err(|e| error(e, advice))?
                        .is_some()
                    {
                        continue;
                    }
                    self.with_lock_retries(client, m, i, &sql).await.map_err(|e| error(e, advice))?;
                }
                Rebuild::Validate { name, sql } => {
                    if self.constraint_state(client, ct, &name).await.map_err(|e| error(e, advice))? == Some(true) {
                        continue;
                    }
                    if let Err(e) = self.with_lock_retries(client, m, i, &sql).await {
                        // A value the new type refuses, written after the backfill looked and
                        // before the check held, fails the check's validation: it is named as
                        // the backfill names one, not left as a bare violation.
                        if e.is(CHECK_VIOLATION) {
                            // The rebuild is the step after the backfill.
                            self.refuse_values(client, m, i, i - 1, statement, cols, timeouts, advice).await?;
                        }
                        return Err(error(e, advice));
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the table has the constraint, and whether it is validated.
    async fn constraint_state(&self, client: &impl GenericClient, ct: &ChangeType, name: &str) -> Result<Option<bool>, PgError> {
        let row = client
            .query_opt(
                "select convalidated from pg_constraint where conrelid = to_regclass($1) and conname = $2",
                &[&ct.table, &name],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }
}

/// Before anything runs: a type change whose table has no primary key, or whose column has
/// something the recipe cannot rebuild depending on it, is refused, naming it. A table not
/// there yet (created earlier in the same run) is judged when its step runs.
pub async fn refuse_what_cannot_swap(client: &impl GenericClient, pending: &[&Migration], plans: &mut [crate::online::OnlinePlan]) {
    use crate::online::Decision;
    for (m, plan) in pending.iter().zip(plans.iter_mut()) {
        for s in plan.statements.iter_mut() {
            let merged = matches!(s.decision, Decision::Merged { .. });
            if !merged && !matches!(&s.decision, Decision::Recipe { recipe: r, .. } if r == recipe::RECIPE) {
                continue;
            }
            let Some(ct) = m
                .statements
                .get(s.statement - 1)
                .and_then(|st| crate::sql::change_type::change_type(&st.sql))
            else {
                continue;
            };
            if let Ok(Some(facts)) = read_facts(client, &ct, false).await {
                if let Some(reason) = refusal(&ct, &facts) {
                    s.decision = Decision::Refused {
                        rule: crate::lint::rule::Rule::ColumnTypeRewrite.id().into(),
                        reason,
                    };
                }
            }
        }
    }
}
