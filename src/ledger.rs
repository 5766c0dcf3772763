//! drizzle-orm's ledger table (`"drizzle"."__drizzle_migrations"`, kept exactly as drizzle
//! creates it) and this tool's own append-only history table beside it.

use tokio_postgres::{Client, GenericClient};

use crate::database::PgError;
use crate::source::Migration;

/// Our richer, append-only record of every apply and rollback; drizzle's table stays untouched.
pub const HISTORY_TABLE: &str = "wishlist_migrator_history";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerTable {
    pub schema: String,
    pub table: String,
}

impl Default for LedgerTable {
    fn default() -> Self {
        Self {
            schema: "drizzle".into(),
            table: "__drizzle_migrations".into(),
        }
    }
}

/// A row of drizzle's ledger: what the database says was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub id: i32,
    pub hash: String,
    pub created_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{operation} {table}: {error}")]
    Database {
        operation: &'static str,
        table: String,
        error: PgError,
    },
}

impl LedgerError {
    pub fn pg(&self) -> &PgError {
        match self {
            Self::Database { error, .. } => error,
        }
    }
}

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
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl LedgerTable {
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }

    pub fn history(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(HISTORY_TABLE))
    }

    fn err(&self, operation: &'static str) -> impl Fn(tokio_postgres::Error) -> LedgerError + '_ {
        move |e| LedgerError::Database {
            operation,
            table: self.qualified(),
            error: e.into(),
        }
    }

    /// The applied rows in insertion order; none when drizzle's table does not exist yet.
    pub async fn read(&self, client: &Client) -> Result<Vec<LedgerRow>, LedgerError> {
        let sql = format!("select id, hash, created_at from {} order by id", self.qualified());
        match client.query(&sql, &[]).await {
            Ok(rows) => Ok(rows
                .iter()
                .map(|r| LedgerRow {
                    id: r.get(0),
                    hash: r.get(1),
                    created_at: r.get(2),
                })
                .collect()),
            // undefined_table / invalid_schema_name: nothing was ever applied here.
            Err(e) if matches!(e.code().map(|c| c.code()), Some("42P01" | "3F000")) => Ok(Vec::new()),
            Err(e) => Err(self.err("read")(e)),
        }
    }

    /// Creates drizzle's schema and table exactly as drizzle-orm does, and the history table.
    /// Only what is missing is created: `IF NOT EXISTS` still needs CREATE privilege, which a
    /// migration role on an existing ledger may rightly lack.
    pub async fn ensure(&self, client: &Client) -> Result<(), LedgerError> {
        let row = client
            .query_one(
                "select to_regnamespace($1) is not null, to_regclass($2) is not null, to_regclass($3) is not null",
                &[&quote_ident(&self.schema), &self.qualified(), &self.history()],
            )
            .await
            .map_err(self.err("inspect"))?;
        let (schema, ledger, history): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
        let mut ddl = Vec::new();
        if !schema {
            ddl.push(format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(&self.schema)));
        }
        if !ledger {
            ddl.push(format!(
                "CREATE TABLE IF NOT EXISTS {} (\n\tid SERIAL PRIMARY KEY,\n\thash text NOT NULL,\n\tcreated_at bigint\n)",
                self.qualified()
            ));
        }
        if !history {
            ddl.push(format!(
                "CREATE TABLE IF NOT EXISTS {} (
                    id bigserial PRIMARY KEY,
                    run_id text NOT NULL,
                    action text NOT NULL,
                    tag text NOT NULL,
                    hash text NOT NULL,
                    created_at bigint NOT NULL,
                    succeeded boolean NOT NULL,
                    finished_at timestamptz NOT NULL DEFAULT now(),
                    duration_ms bigint NOT NULL,
                    db_user text NOT NULL DEFAULT current_user,
                    invoker text NOT NULL,
                    environment text NOT NULL,
                    tool_version text NOT NULL,
                    error_sqlstate text,
                    error_message text
                )",
                self.history()
            ));
        }
        if ddl.is_empty() {
            return Ok(());
        }
        let batch = format!("BEGIN; {}; COMMIT", ddl.join("; "));
        if let Err(e) = client.batch_execute(&batch).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(self.err("create")(e));
        }
        Ok(())
    }

    /// drizzle-orm's own insert: the row that makes drizzle see the migration as applied.
    pub async fn insert(&self, client: &impl GenericClient, migration: &Migration) -> Result<(), LedgerError> {
        let sql = format!("insert into {} (\"hash\", \"created_at\") values ($1, $2)", self.qualified());
        client
            .execute(&sql, &[&migration.hash, &migration.created_at])
            .await
            .map_err(self.err("insert into"))?;
        Ok(())
    }

    /// Removes a migration's rows from drizzle's ledger: drizzle-orm then sees it as not applied
    /// and applies it again on its next `migrate()`. Rows are matched on `created_at`, the
    /// journal `when` drizzle-orm compares.
    pub async fn delete(&self, client: &impl GenericClient, migration: &Migration) -> Result<u64, LedgerError> {
        let sql = format!("delete from {} where created_at = $1", self.qualified());
        client
            .execute(&sql, &[&migration.created_at])
            .await
            .map_err(self.err("delete from"))
    }

    pub async fn record(&self, client: &impl GenericClient, entry: &HistoryEntry<'_>) -> Result<(), LedgerError> {
        let sql = format!(
            "insert into {} (run_id, action, tag, hash, created_at, succeeded, duration_ms, invoker, environment, tool_version, error_sqlstate, error_message)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            self.history()
        );
        let sqlstate = entry.error.and_then(|e| e.sqlstate.as_deref());
        let message = entry.error.map(|e| e.to_string());
        client
            .execute(
                &sql,
                &[
                    &entry.run_id,
                    &entry.action,
                    &entry.tag,
                    &entry.hash,
                    &entry.created_at,
                    &entry.succeeded,
                    &entry.duration_ms,
                    &entry.invoker,
                    &entry.environment,
                    &env!("CARGO_PKG_VERSION"),
                    &sqlstate,
                    &message,
                ],
            )
            .await
            .map_err(self.err("insert into"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_escaped() {
        let t = LedgerTable {
            schema: "my\"schema".into(),
            table: "__drizzle_migrations".into(),
        };
        assert_eq!(t.qualified(), r#""my""schema"."__drizzle_migrations""#);
        assert_eq!(LedgerTable::default().history(), r#""drizzle"."wishlist_migrator_history""#);
    }
}
