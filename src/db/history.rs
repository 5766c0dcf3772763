//! This tool's history table: written by one writer ([`LedgerTable::history_sql`]) and read
//! back, newest first: every apply, rollback and committed statement of a no-transaction
//! migration, with how long it took, who ran it and how it ended.
//!
//! Each row also says where on the server's clock and in its WAL the work it records began and
//! committed: what an operator picks a point-in-time recovery target from
//! (docs/backup-restore.md). The server's readings, never the client's: the recovery compares
//! the target with commit timestamps the server wrote, and a client clock a second off picks
//! the wrong side of a migration that took less.

use serde::{Deserialize, Serialize};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient};

use crate::db::connection::PgError;
use crate::db::ledger::{is_missing_table, quote_literal, LedgerError, LedgerTable};
use crate::db::points::{point_columns, point_values, rfc3339};
use crate::migrations::source::Migration;

/// The session setting a pipelined segment's server-measured durations are listed in
/// (`db::ledger::DURATION_MARK_SQL`).
const DURATIONS_SETTING: &str = "wishlist_migrator.durations";

/// One line of the history table.
#[derive(Debug, Clone)]
pub struct HistoryEntry<'a> {
    pub run_id: &'a str,
    pub action: &'a str,
    pub tag: &'a str,
    pub hash: &'a str,
    pub created_at: i64,
    pub succeeded: bool,
    pub duration_ms: i64,
    pub invoker: &'a str,
    pub environment: &'a str,
    pub error: Option<&'a PgError>,
    /// For a `statement` row: which statement of a non-transactional migration committed
    /// (1-based); `hash` is then that statement's hash.
    pub statement_index: Option<i32>,
    /// The work this row records began after the start marks in this session, so the row
    /// carries that start; otherwise its start columns stay null rather than guess.
    /// ([`START_MARK_SQL`](crate::db::points::START_MARK_SQL))
    pub start_marked: bool,
}

/// Where a history row's `duration_ms` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// The entry's own `duration_ms`, known when the row is written.
    Entry,
    /// The segment's `n`-th migration (0-based), as the server measured it between two marks
    /// (`db::ledger::DURATION_MARK_SQL`): the client cannot know it when it sends the rows.
    Segment(usize),
}

/// A statement of a non-transactional migration that committed in an earlier, unfinished run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementDone {
    pub index: i32,
    pub hash: String,
    pub run_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRow {
    pub id: i64,
    pub run_id: String,
    /// `apply`, `rollback`, or `statement` (one committed statement of a no-transaction
    /// migration, which a later run resumes after).
    pub action: String,
    pub migration: String,
    pub succeeded: bool,
    /// UTC, RFC 3339.
    pub finished_at: String,
    pub duration_ms: i64,
    /// The database role, and who ran the tool (`cli:<user>`, `lambda:<function>:<version>`).
    pub db_user: String,
    pub invoker: String,
    pub environment: String,
    pub tool_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_sqlstate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement_index: Option<i32>,
    /// When the work this row records began, on the server's clock (`clock_timestamp()` as its
    /// transaction or first statement began), UTC RFC 3339 to the microsecond (`+00:00`, not `Z`,
    /// which `recovery_target_time` refuses): the recovery
    /// target (`recovery_target_time`, not inclusive) that restores everything committed before
    /// it and none of it. Absent on rows of earlier versions and on failure rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// `pg_current_wal_insert_lsn()` at that start: the same target as an LSN
    /// (`recovery_target_lsn`, not inclusive), exact where the time is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_lsn: Option<String>,
    /// The server's clock and WAL insert position as the row was written, in the transaction
    /// that committed the work, just before its COMMIT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_lsn: Option<String>,
}

/// Where a run's first committed work began, on the server's clock and in its WAL: the point
/// just before the run, to recover to if it must be undone (docs/backup-restore.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryPoint {
    /// UTC RFC 3339 to the microsecond, `+00:00`: `recovery_target_time`, not inclusive.
    pub started_at: String,
    /// `recovery_target_lsn`, not inclusive.
    pub start_lsn: String,
}

impl LedgerTable {
    /// The one writer of the history table: the insert of `rows`, as SQL text the caller sends
    /// in the same flight or transaction as the work they record, so a row exists exactly when
    /// its work committed. Literals instead of parameters: they ride in a caller's multi-statement
    /// request (the simple protocol), one round trip.
    pub fn history_sql(&self, rows: &[(&HistoryEntry<'_>, Timing)]) -> String {
        let values: Vec<String> = rows.iter().map(|(entry, timing)| values(entry, *timing)).collect();
        format!(
            "insert into {} (run_id, action, tag, hash, created_at, succeeded, duration_ms, invoker, environment, tool_version, error_sqlstate, error_message, {}, statement_index) values {}",
            self.history(),
            point_columns(),
            values.join(", ")
        )
    }

    /// One row, its duration its own: [`history_sql`](Self::history_sql) of it.
    pub fn record_sql(&self, entry: &HistoryEntry<'_>) -> String {
        self.history_sql(&[(entry, Timing::Entry)])
    }

    /// The ledger row and the history row of an applied migration, in one round trip.
    pub async fn insert_and_record(
        &self,
        client: &impl GenericClient,
        migration: &Migration,
        entry: &HistoryEntry<'_>,
    ) -> Result<(), LedgerError> {
        let sql = format!("{}; {}", self.insert_sql(migration), self.record_sql(entry));
        client.batch_execute(&sql).await.map_err(self.err("insert into"))
    }

    /// The ledger rows and the history rows of migrations applied in a pipelined segment, as one
    /// request: `applied` holds each migration with its history entry and its place in the
    /// segment, whose duration the server measured ([`Timing::Segment`]).
    pub fn applied_rows_sql(&self, applied: &[(&Migration, HistoryEntry<'_>, usize)]) -> String {
        let migrations: Vec<&Migration> = applied.iter().map(|(m, _, _)| *m).collect();
        let rows: Vec<_> = applied.iter().map(|(_, entry, place)| (entry, Timing::Segment(*place))).collect();
        format!("{}; {}", self.inserts_sql(&migrations), self.history_sql(&rows))
    }

    /// One row, sent alone (a failure recorded after its rollback, a rollback in its transaction).
    pub async fn record(&self, client: &impl GenericClient, entry: &HistoryEntry<'_>) -> Result<(), LedgerError> {
        client.batch_execute(&self.record_sql(entry)).await.map_err(self.err("insert into"))
    }

    /// The statements of `tag` that committed since its last completed apply or rollback: where
    /// an interrupted non-transactional migration resumes. None when the history is missing.
    pub async fn statements_done(&self, client: &Client, tag: &str) -> Result<Vec<StatementDone>, LedgerError> {
        let sql = format!(
            "select statement_index, hash, run_id from {h}
             where tag = $1 and action = 'statement' and succeeded and statement_index is not null
               and id > coalesce((select max(id) from {h} where tag = $1 and action in ('apply', 'rollback') and succeeded), 0)
             order by statement_index, id",
            h = self.history()
        );
        let rows = match client.query(&sql, &[&tag]).await {
            Ok(rows) => rows,
            Err(e) if is_missing_table(&e) => return Ok(Vec::new()),
            Err(e) => return Err(self.err("read")(e)),
        };
        Ok(rows
            .iter()
            .map(|r| StatementDone {
                index: r.get(0),
                hash: r.get(1),
                run_id: r.get(2),
            })
            .collect())
    }

    /// Where `run_id`'s earliest recorded work began; none when the run recorded no start (it
    /// committed nothing, or the history is from an earlier version).
    pub async fn recovery_point(&self, client: &impl GenericClient, run_id: &str) -> Result<Option<RecoveryPoint>, LedgerError> {
        let sql = format!(
            "select {}, start_lsn::text from {} where run_id = $1 and started_at is not null order by started_at, id limit 1",
            rfc3339("started_at"),
            self.history()
        );
        // Typed parameters: one round trip, no prepare first.
        let rows = client
            .query_typed(&sql, &[(&run_id, Type::TEXT)])
            .await
            .map_err(|e| LedgerError::Database {
                operation: "read the run's start from",
                table: self.history(),
                error: e.into(),
            })?;
        Ok(rows.first().map(|r| RecoveryPoint {
            started_at: r.get(0),
            start_lsn: r.get(1),
        }))
    }

    /// The newest `limit` history rows; none when the history table does not exist yet.
    pub async fn history_rows(&self, client: &impl GenericClient, limit: i64) -> Result<Vec<HistoryRow>, LedgerError> {
        let sql = format!(
            "select id, run_id, action, tag, succeeded,
                    to_char(finished_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
                    duration_ms, db_user, invoker, environment, tool_version, error_sqlstate, error_message, statement_index,
                    {}, start_lsn::text, {}, commit_lsn::text
             from {} order by id desc limit $1",
            rfc3339("started_at"),
            rfc3339("committed_at"),
            self.history()
        );
        let rows = match client.query(&sql, &[&limit]).await {
            Ok(rows) => rows,
            Err(e) if is_missing_table(&e) => return Ok(Vec::new()),
            Err(e) => {
                return Err(LedgerError::Database {
                    operation: "read",
                    table: self.history(),
                    error: e.into(),
                })
            }
        };
        Ok(rows
            .iter()
            .map(|r| HistoryRow {
                id: r.get(0),
                run_id: r.get(1),
                action: r.get(2),
                migration: r.get(3),
                succeeded: r.get(4),
                finished_at: r.get(5),
                duration_ms: r.get(6),
                db_user: r.get(7),
                invoker: r.get(8),
                environment: r.get(9),
                tool_version: r.get(10),
                error_sqlstate: r.get(11),
                error_message: r.get(12),
                statement_index: r.get(13),
                started_at: r.get(14),
                start_lsn: r.get(15),
                committed_at: r.get(16),
                commit_lsn: r.get(17),
            })
            .collect())
    }
}

/// One row's values, in [`LedgerTable::history_sql`]'s column order.
fn values(entry: &HistoryEntry<'_>, timing: Timing) -> String {
    let text = |v: Option<&str>| v.map_or_else(|| "NULL".to_string(), quote_literal);
    let message = entry.error.map(|e| e.to_string());
    let duration_ms = match timing {
        Timing::Entry => entry.duration_ms.to_string(),
        Timing::Segment(n) => format!(
            "coalesce(nullif(split_part(current_setting('{DURATIONS_SETTING}', true), ',', {}), '')::bigint, 0)",
            n + 1
        ),
    };
    format!(
        "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
        quote_literal(entry.run_id),
        quote_literal(entry.action),
        quote_literal(entry.tag),
        quote_literal(entry.hash),
        entry.created_at,
        entry.succeeded,
        duration_ms,
        quote_literal(entry.invoker),
        quote_literal(entry.environment),
        quote_literal(env!("CARGO_PKG_VERSION")),
        text(entry.error.and_then(|e| e.sqlstate.as_deref())),
        text(message.as_deref()),
        point_values(entry.start_marked),
        entry.statement_index.map_or_else(|| "NULL".to_string(), |i| i.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::ledger::{DURATION_MARK_SQL, MARK_SQL};

    fn entry(statement_index: Option<i32>, error: Option<&PgError>) -> HistoryEntry<'_> {
        HistoryEntry {
            run_id: "r1",
            action: if statement_index.is_some() { "statement" } else { "apply" },
            tag: "0001_it's",
            hash: "h",
            created_at: 1_735_732_800_000,
            succeeded: error.is_none(),
            duration_ms: 42,
            invoker: "cli:alice",
            environment: "dev",
            error,
            statement_index,
            start_marked: statement_index.is_some(),
        }
    }

    #[test]
    fn every_history_row_is_written_by_one_insert_of_one_shape() {
        let table = LedgerTable::default();
        let failed = PgError {
            sqlstate: Some("42P07".into()),
            message: "exists".into(),
            detail: None,
            hint: None,
        };
        let (apply, statement, failure) = (entry(None, None), entry(Some(3), None), entry(None, Some(&failed)));
        let one = table.record_sql(&apply);
        assert_eq!(one, table.history_sql(&[(&apply, Timing::Entry)]));
        let segment = table.history_sql(&[(&apply, Timing::Segment(0)), (&statement, Timing::Segment(1))]);
        // One column list for every kind of row: the writer has one shape.
        let head = |sql: &str| sql.split_once(" values ").unwrap().0.to_string();
        for sql in [&table.record_sql(&statement), &table.record_sql(&failure), &segment] {
            assert_eq!(head(sql), head(&one));
        }
        assert!(head(&one).starts_with(r#"insert into "drizzle"."wishlist_migrator_history" (run_id, "#));
        assert!(head(&one).ends_with(", statement_index)"), "{one}");
        assert!(one.contains("'0001_it''s'") && one.contains(", 42, "), "{one}");
        assert!(
            one.ends_with("clock_timestamp(), pg_current_wal_insert_lsn(), NULL)"),
            "no statement index: {one}"
        );
        assert!(one.contains("NULL, NULL, clock_timestamp()"), "not start-marked: {one}");
        let statement = table.record_sql(&statement);
        assert!(statement.ends_with("pg_current_wal_insert_lsn(), 3)"), "{statement}");
        assert!(
            statement.contains("current_setting('wishlist_migrator.started', true)"),
            "{statement}"
        );
        let failure = table.record_sql(&failure);
        assert!(failure.contains("false, 42, ") && failure.contains("'42P07'"), "{failure}");
        // A segment's durations are the server's, each row its own place in the list.
        assert!(!segment.contains(", 42, "), "{segment}");
        for n in [1, 2] {
            let duration = format!("split_part(current_setting('{DURATIONS_SETTING}', true), ',', {n})");
            assert_eq!(segment.matches(&duration).count(), 1, "{segment}");
        }
        assert!(DURATION_MARK_SQL.contains(DURATIONS_SETTING) && MARK_SQL.contains(DURATIONS_SETTING));
    }

    #[test]
    fn a_pipelined_segment_marks_its_start_as_a_statement_by_statement_migration_does() {
        for call in crate::db::points::START_MARK_SQL.split("set_config(").skip(1) {
            let call = call.trim_end().trim_end_matches(',');
            assert!(MARK_SQL.contains(&format!("set_config({call}")), "{call}");
        }
    }
}
