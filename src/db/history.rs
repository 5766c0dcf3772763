//! This tool's history table read back, newest first: every apply, rollback and committed
//! statement of a no-transaction migration, with how long it took, who ran it and how it ended.

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;

use crate::db::ledger::{is_missing_table, LedgerError, LedgerTable};

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
}

impl LedgerTable {
    /// The newest `limit` history rows; none when the history table does not exist yet.
    pub async fn history_rows(&self, client: &impl GenericClient, limit: i64) -> Result<Vec<HistoryRow>, LedgerError> {
        let sql = format!(
            "select id, run_id, action, tag, succeeded,
                    to_char(finished_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
                    duration_ms, db_user, invoker, environment, tool_version, error_sqlstate, error_message, statement_index
             from {} order by id desc limit $1",
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
            })
            .collect())
    }
}
