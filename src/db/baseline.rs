//! The baseline: the catalog as the last run of this tool left it, recorded in the history table
//! (`catalog`, on that run's last row; older rows are cleared so the table keeps one) with the
//! ledger it belongs to. `drift` compares the live catalog with it to find changes made outside
//! the migrations; a ledger that has moved since (another tool applied or removed a migration)
//! makes the record stale, and drift replays instead.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::GenericClient;

use crate::db::catalog::Catalog;
use crate::db::ledger::{is_missing_table, LedgerError, LedgerRow, LedgerTable};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedCatalog {
    /// `ledger_digest` of the ledger when the catalog was read.
    pub ledger_digest: String,
    pub ledger_rows: usize,
    pub catalog: Catalog,
}

/// What identifies a ledger's content: every row's hash and `created_at`, in order.
pub fn ledger_digest(rows: &[LedgerRow]) -> String {
    let mut digest = Sha256::new();
    for row in rows {
        digest.update(format!(
            "{}:{}\n",
            row.hash,
            row.created_at.map_or_else(String::new, |c| c.to_string())
        ));
    }
    hex::encode(digest.finalize())
}

impl RecordedCatalog {
    pub fn new(rows: &[LedgerRow], catalog: Catalog) -> Self {
        Self {
            ledger_digest: ledger_digest(rows),
            ledger_rows: rows.len(),
            catalog,
        }
    }

    /// Whether this record describes the database whose ledger is `rows`.
    pub fn belongs_to(&self, rows: &[LedgerRow]) -> bool {
        self.ledger_rows == rows.len() && self.ledger_digest == ledger_digest(rows)
    }
}

impl LedgerTable {
    /// Records `recorded` on the last successful history row of `run_id` and clears older records.
    pub async fn record_catalog(&self, client: &impl GenericClient, run_id: &str, recorded: &RecordedCatalog) -> Result<u64, LedgerError> {
        let json = serde_json::to_string(recorded).map_err(|e| LedgerError::Corrupt {
            table: self.history(),
            reason: format!("the catalog does not serialise: {e}"),
        })?;
        let sql = format!(
            "with target as (select max(id) as id from {h} where run_id = $2 and succeeded),
                  cleared as (update {h} set catalog = null where catalog is not null and id < (select id from target))
             update {h} set catalog = $1::text::jsonb where id = (select id from target) returning id",
            h = self.history()
        );
        // Typed parameters: one round trip, no prepare first.
        let params: [(&(dyn ToSql + Sync), Type); 2] = [(&json, Type::TEXT), (&run_id, Type::TEXT)];
        let updated = client.query_typed(&sql, &params).await.map_err(|e| LedgerError::Database {
            operation: "record the catalog in",
            table: self.history(),
            error: e.into(),
        })?;
        Ok(updated.len() as u64)
    }

    /// The newest recorded catalog; none when nothing was recorded (or the history table, or its
    /// `catalog` column, does not exist yet).
    pub async fn recorded_catalog(&self, client: &impl GenericClient) -> Result<Option<RecordedCatalog>, LedgerError> {
        let sql = format!(
            "select catalog::text from {} where catalog is not null order by id desc limit 1",
            self.history()
        );
        let row = match client.query_opt(&sql, &[]).await {
            Ok(row) => row,
            // Or undefined_column: a history table from before the baseline was recorded.
            Err(e) if is_missing_table(&e) || e.code().is_some_and(|c| c.code() == "42703") => return Ok(None),
            Err(e) => {
                return Err(LedgerError::Database {
                    operation: "read the recorded catalog from",
                    table: self.history(),
                    error: e.into(),
                })
            }
        };
        let Some(row) = row else { return Ok(None) };
        let text: String = row.get(0);
        // A record this version cannot read (written by another version) is as good as none.
        Ok(serde_json::from_str(&text).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i32, hash: &str, created_at: i64) -> LedgerRow {
        LedgerRow {
            id,
            hash: hash.into(),
            created_at: Some(created_at),
            name: None,
        }
    }

    #[test]
    fn a_record_belongs_only_to_the_ledger_it_was_read_with() {
        let rows = vec![row(1, "aa", 1), row(2, "bb", 2)];
        let recorded = RecordedCatalog::new(&rows, Catalog::default());
        assert!(recorded.belongs_to(&rows));
        assert!(!recorded.belongs_to(&rows[..1]), "a migration rolled back by another tool");
        let mut applied_elsewhere = rows.clone();
        applied_elsewhere.push(row(3, "cc", 3));
        assert!(!recorded.belongs_to(&applied_elsewhere), "a migration applied by drizzle-kit");
        let mut changed = rows.clone();
        changed[0].hash = "ab".into();
        assert!(!recorded.belongs_to(&changed));
    }

    #[test]
    fn a_record_survives_its_own_json() {
        let recorded = RecordedCatalog::new(&[row(1, "aa", 1)], Catalog::default());
        let json = serde_json::to_string(&recorded).unwrap();
        assert_eq!(serde_json::from_str::<RecordedCatalog>(&json).unwrap(), recorded);
    }
}
