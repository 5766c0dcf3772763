//! This tool's history table read back, newest first: every apply, rollback and committed
//! statement of a no-transaction migration, with how long it took, who ran it and how it ended.
//!
//! Each row also says where on the server's clock and in its WAL the work it records began and
//! committed: what an operator picks a point-in-time recovery target from
//! (docs/backup-restore.md). The server's readings, never the client's: the recovery compares
//! the target with commit timestamps the server wrote, and a client clock a second off picks
//! the wrong side of a migration that took less.

use serde::{Deserialize, Serialize};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient};

use crate::db::ledger::{is_missing_table, LedgerError, LedgerTable};
use crate::db::points::rfc3339;

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

#[cfg(test)]
mod tests {
    use crate::db::ledger::MARK_SQL;

    #[test]
    fn a_pipelined_segment_marks_its_start_as_a_statement_by_statement_migration_does() {
        for call in crate::db::points::START_MARK_SQL.split("set_config(").skip(1) {
            let call = call.trim_end().trim_end_matches(',');
            assert!(MARK_SQL.contains(&format!("set_config({call}")), "{call}");
        }
    }
}
