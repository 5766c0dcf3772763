//! drizzle-orm's ledger table (`"drizzle"."__drizzle_migrations"`, kept exactly as drizzle
//! creates it) and this tool's own append-only history table beside it.
//!
//! Two shapes of the ledger exist ([`LedgerShape`]): drizzle-orm 0.x's `(id, hash, created_at)`,
//! and drizzle-orm 1.0's, which adds `name` (the migration folder's name, what 1.0 matches
//! applied migrations by) and `applied_at`. A 0.x folder keeps the 0.x shape: a `name` column
//! would tell drizzle-orm 1.0 the ledger was already upgraded, and it would then see only null
//! names and run everything again.

use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient, SimpleQueryMessage, SimpleQueryRow};

use crate::db::connection::PgError;
use crate::db::points::HISTORY_COLUMNS_ADDED;
use crate::error::{Classified, Details, ErrorType, INSUFFICIENT_PRIVILEGE};
use crate::migrations::source::{Layout, Migration};

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
    /// drizzle-orm 1.0's `name` (the folder name); `None` in a 0.x ledger, and for rows a 0.x
    /// tool wrote into a 1.0 ledger (drizzle-orm 1.0 ignores those).
    pub name: Option<String>,
}

/// Which drizzle-orm's table the ledger is, by its columns (as drizzle-orm 1.0's
/// `upgradeIfNeeded` tells them apart: a `name` column means 1.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerShape {
    /// No ledger table yet.
    Absent,
    /// `(id, hash, created_at)`: drizzle-orm 0.x's.
    Drizzle0,
    /// `(id, hash, created_at, name, applied_at)`: drizzle-orm 1.0's.
    Drizzle1,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{operation} {table}: {error}")]
    Database {
        operation: &'static str,
        table: String,
        error: PgError,
    },
    #[error("{table} is not drizzle's ledger as expected: {reason}")]
    Corrupt { table: String, reason: String },
}

impl LedgerError {
    pub fn pg(&self) -> Option<&PgError> {
        match self {
            Self::Database { error, .. } => Some(error),
            Self::Corrupt { .. } => None,
        }
    }
}

/// The ledger and its shape, read in one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRead {
    pub shape: LedgerShape,
    pub rows: Vec<LedgerRow>,
}

/// The data rows among a simple query's messages.
pub fn rows_of(messages: &[SimpleQueryMessage]) -> impl Iterator<Item = &SimpleQueryRow> {
    messages.iter().filter_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    })
}

/// undefined_table / invalid_schema_name: the table was never created here, which for this tool's
/// tables means "nothing recorded yet", not a failure.
pub fn is_missing_table(e: &tokio_postgres::Error) -> bool {
    matches!(e.code().map(|c| c.code()), Some("42P01" | "3F000"))
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

    pub(super) fn err(&self, operation: &'static str) -> impl Fn(tokio_postgres::Error) -> LedgerError + '_ {
        move |e| LedgerError::Database {
            operation,
            table: self.qualified(),
            error: e.into(),
        }
    }

    /// The applied rows in insertion order; none when drizzle's table does not exist yet.
    pub async fn read(&self, client: &Client) -> Result<Vec<LedgerRow>, LedgerError> {
        Ok(self.read_with_shape(client).await?.rows)
    }

    /// The ledger's rows and its shape in one statement (one round trip): what `status`, `plan`
    /// and `migrate` start from. A missing table or schema is [`LedgerShape::Absent`].
    pub async fn read_with_shape(&self, client: &Client) -> Result<LedgerRead, LedgerError> {
        let sql = format!("select t.* from ({}) t order by t.id", self.rows_sql(""));
        match client.simple_query(&sql).await {
            Ok(messages) => self.parse_read(rows_of(&messages), 0),
            Err(e) if is_missing_table(&e) => Ok(LedgerRead {
                shape: LedgerShape::Absent,
                rows: Vec::new(),
            }),
            Err(e) => Err(self.err("read")(e)),
        }
    }

    /// A subquery of the ledger's rows, each beside whether the table has drizzle-orm 1.0's
    /// `name` column (`has_name, id, hash, created_at, name`); one row of nulls but `has_name`
    /// when the ledger is empty, none when `gate` (a `where` clause over outer columns, or empty)
    /// is false, so a caller can read the ledger only if something else in the statement
    /// succeeded. Fails with 42P01/3F000 when the table or its schema does not exist.
    pub fn rows_sql(&self, gate: &str) -> String {
        format!(
            "select n.has_name, r.id, r.hash, r.created_at, to_jsonb(r) ->> 'name' as name \
             from (select exists (select 1 from pg_attribute where attrelid = to_regclass({literal}) and attname = 'name' and attnum > 0 and not attisdropped) as has_name) n \
             left join lateral (select * from {table} x order by x.id) r on true {gate}",
            literal = quote_literal(&self.qualified()),
            table = self.qualified(),
        )
    }

    /// The ledger from the rows [`rows_sql`](Self::rows_sql) returned, its columns starting at
    /// `offset`.
    pub fn parse_read<'r>(&self, rows: impl Iterator<Item = &'r SimpleQueryRow>, offset: usize) -> Result<LedgerRead, LedgerError> {
        let mut read = LedgerRead {
            shape: LedgerShape::Drizzle0,
            rows: Vec::new(),
        };
        for row in rows {
            if row.get(offset) == Some("t") {
                read.shape = LedgerShape::Drizzle1;
            }
            let corrupt = |what: &str| LedgerError::Corrupt {
                table: self.qualified(),
                reason: format!("{what} in row {:?}", row.get(offset + 1)),
            };
            // The null row of an empty ledger.
            let Some(id) = row.get(offset + 1) else { continue };
            read.rows.push(LedgerRow {
                id: id.parse().map_err(|_| corrupt("no id"))?,
                hash: row.get(offset + 2).ok_or_else(|| corrupt("no hash"))?.to_string(),
                created_at: match row.get(offset + 3) {
                    None => None,
                    Some(v) => Some(v.parse().map_err(|_| corrupt("created_at is not a bigint"))?),
                },
                name: row.get(offset + 4).map(str::to_string),
            });
        }
        Ok(read)
    }

    /// Creates drizzle's schema and table exactly as drizzle-orm does for the folder's layout
    /// (0.x's table for a journal, 1.0's for folders), and the history table. An existing ledger
    /// is kept as it is. Only what is missing is created: `IF NOT EXISTS` still needs CREATE
    /// privilege, which a migration role on an existing ledger may rightly lack.
    pub async fn ensure(&self, client: &Client, layout: Layout) -> Result<(), LedgerError> {
        let (schema, qualified, history) = (quote_ident(&self.schema), self.qualified(), self.history());
        // Typed parameters: one round trip, no prepare first.
        let rows = client
            .query_typed(
                "select to_regnamespace($1) is not null, to_regclass($2) is not null, to_regclass($3) is not null,
                        exists (select 1 from pg_attribute where attrelid = to_regclass($3) and attname = 'statement_index'),
                        exists (select 1 from pg_attribute where attrelid = to_regclass($3) and attname = 'catalog'),
                        exists (select 1 from pg_attribute where attrelid = to_regclass($3) and attname = 'commit_lsn')",
                &[(&schema, Type::TEXT), (&qualified, Type::TEXT), (&history, Type::TEXT)],
            )
            .await
            .map_err(self.err("inspect"))?;
        let row = rows.first().ok_or_else(|| LedgerError::Corrupt {
            table: self.qualified(),
            reason: "the server answered its inspection with no row".into(),
        })?;
        let (schema, ledger, history, progress, baseline, points): (bool, bool, bool, bool, bool, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5));
        let mut ddl = Vec::new();
        if !schema {
            ddl.push(format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(&self.schema)));
        }
        if !ledger {
            ddl.push(match layout {
                Layout::Journal => format!(
                    "CREATE TABLE IF NOT EXISTS {} (\n\tid SERIAL PRIMARY KEY,\n\thash text NOT NULL,\n\tcreated_at bigint\n)",
                    self.qualified()
                ),
                // drizzle-orm 1.0.0-rc.5's pg-core/async/session.js, migrate().
                Layout::Folders => format!(
                    "CREATE TABLE IF NOT EXISTS {} (\n\tid SERIAL PRIMARY KEY,\n\thash text NOT NULL,\n\tcreated_at bigint,\n\tname text,\n\tapplied_at timestamp with time zone DEFAULT now()\n)",
                    self.qualified()
                ),
            });
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
                    error_message text,
                    statement_index integer,
                    catalog jsonb,
                    {HISTORY_COLUMNS_ADDED}
                )",
                self.history()
            ));
        } else {
            // History tables of earlier versions lack the per-statement progress column and the
            // recorded catalog (db/baseline.rs).
            if !progress {
                ddl.push(format!(
                    "ALTER TABLE {} ADD COLUMN IF NOT EXISTS statement_index integer",
                    self.history()
                ));
            }
            if !baseline {
                ddl.push(format!("ALTER TABLE {} ADD COLUMN IF NOT EXISTS catalog jsonb", self.history()));
            }
            // ... and where each run started and committed (db/history.rs).
            if !points {
                let columns: Vec<String> = HISTORY_COLUMNS_ADDED
                    .split(", ")
                    .map(|c| format!("ADD COLUMN IF NOT EXISTS {c}"))
                    .collect();
                ddl.push(format!("ALTER TABLE {} {}", self.history(), columns.join(", ")));
            }
        }
        if ddl.is_empty() {
            return Ok(());
        }
        // Not waiting for the WAL flush: a later synchronous commit of the run (the baseline's
        // write, a failure's history row, or the explicit flush) flushes it, and a crash before
        // that loses the tables with everything recorded in them, which the next run creates again.
        let batch = format!("BEGIN; SET LOCAL synchronous_commit = off; {}; COMMIT", ddl.join("; "));
        if let Err(e) = client.batch_execute(&batch).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(self.err("create")(e));
        }
        Ok(())
    }

    /// drizzle-orm 1.0's upgrade of a 0.x ledger, in one transaction: adds `name` and
    /// `applied_at` and names each row (`applied_at` stays null on the upgraded rows, as drizzle
    /// leaves it). The caller holds the migration lock and matched the rows
    /// (`engine::upgrade`).
    pub async fn upgrade(&self, client: &Client, names: &[(i32, String)]) -> Result<(), LedgerError> {
        let table = self.qualified();
        let mut sql = format!(
            "BEGIN; ALTER TABLE {table} ADD COLUMN IF NOT EXISTS \"name\" text; \
             ALTER TABLE {table} ADD COLUMN IF NOT EXISTS \"applied_at\" timestamp with time zone DEFAULT now()"
        );
        for (id, name) in names {
            sql.push_str(&format!(
                "; UPDATE {table} SET \"name\" = {}, \"applied_at\" = NULL WHERE \"id\" = {id}",
                quote_literal(name)
            ));
        }
        sql.push_str("; COMMIT");
        if let Err(e) = client.batch_execute(&sql).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(self.err("upgrade")(e));
        }
        Ok(())
    }

    /// drizzle-orm's own insert: the row that makes drizzle see the migration as applied.
    pub async fn insert(&self, client: &impl GenericClient, migration: &Migration) -> Result<(), LedgerError> {
        client
            .batch_execute(&self.insert_sql(migration))
            .await
            .map_err(self.err("insert into"))
    }

    // Literals instead of parameters: the simple protocol takes one round trip where a
    // parameterised statement takes two (prepare, execute), and this runs once per migration.
    // A 1.0 folder's row carries its name, as drizzle-orm 1.0 inserts it.
    pub fn insert_sql(&self, migration: &Migration) -> String {
        format!(
            "insert into {} {} values {}",
            self.qualified(),
            Self::ledger_columns(migration),
            Self::ledger_values(migration)
        )
    }

    fn ledger_columns(migration: &Migration) -> &'static str {
        match migration.name {
            None => "(\"hash\", \"created_at\")",
            Some(_) => "(\"hash\", \"created_at\", \"name\")",
        }
    }

    fn ledger_values(migration: &Migration) -> String {
        match &migration.name {
            None => format!("({}, {})", quote_literal(&migration.hash), migration.created_at),
            Some(name) => format!(
                "({}, {}, {})",
                quote_literal(&migration.hash),
                migration.created_at,
                quote_literal(name)
            ),
        }
    }

    /// Removes a migration's rows from drizzle's ledger: drizzle-orm then sees it as not applied
    /// and applies it again on its next `migrate()`. Rows are matched on `created_at`, the
    /// journal `when` drizzle-orm 0.x compares; a 1.0 folder's on its name (folders of one
    /// second share `created_at`).
    pub async fn delete(&self, client: &impl GenericClient, migration: &Migration) -> Result<u64, LedgerError> {
        let deleted = match &migration.name {
            None => {
                let sql = format!("delete from {} where created_at = $1", self.qualified());
                client.execute(&sql, &[&migration.created_at]).await
            }
            Some(name) => {
                let sql = format!("delete from {} where name = $1", self.qualified());
                client.execute(&sql, &[name]).await
            }
        };
        deleted.map_err(self.err("delete from"))
    }

    /// What a failed write of an applied migration's rows says, for a caller that sent the SQL
    /// itself (a pipelined segment, `engine/pipeline.rs`).
    pub fn write_error(&self, e: tokio_postgres::Error) -> LedgerError {
        self.err("insert into")(e)
    }

    /// The ledger rows of `migrations`, in order, as multi-row inserts: what a pipelined segment
    /// writes with their history rows (`db::history`'s `applied_rows_sql`).
    pub fn inserts_sql(&self, migrations: &[&Migration]) -> String {
        let mut sql = Vec::new();
        // A 1.0 folder's row has a name, a 0.x entry's has not: one insert per run of either.
        for run in migrations.chunk_by(|a, b| a.name.is_some() == b.name.is_some()) {
            let values: Vec<String> = run.iter().map(|m| Self::ledger_values(m)).collect();
            sql.push(format!(
                "insert into {} {} values {}",
                self.qualified(),
                Self::ledger_columns(run[0]),
                values.join(", ")
            ));
        }
        sql.join("; ")
    }
}

/// Marks "now" on the server's clock, in a setting, and starts an empty list of durations: a
/// pipelined segment sends it as it begins. After each migration, [`DURATION_MARK_SQL`] appends
/// the milliseconds since the mark to the list and marks again, so each migration's duration is
/// measured between two marks by the server itself (it excludes the network, and includes any
/// time the server waited for the rest of the flight to arrive); the segment's history rows
/// read their durations from the list.
///
/// Session settings, not transaction-local ones: a migration file that ends with its own
/// `COMMIT` (some real histories do) ends the segment's transaction, and its rows come after.
/// It also marks where the segment began, for its history rows (`db::points::START_MARK_SQL`).
pub const MARK_SQL: &str = "select set_config('wishlist_migrator.mark', clock_timestamp()::text, false), set_config('wishlist_migrator.durations', '', false), \
     set_config('wishlist_migrator.started', clock_timestamp()::text, false), set_config('wishlist_migrator.start_lsn', pg_current_wal_insert_lsn()::text, false)";

/// After each migration of a pipelined segment, sent with its last statement: its duration since
/// the last mark, appended to the list and answered as the request's last row; then a new mark.
/// Without a mark it is 0.
pub const DURATION_MARK_SQL: &str = "select d, set_config('wishlist_migrator.durations', \
     coalesce(current_setting('wishlist_migrator.durations', true), '') || d || ',', false), \
     set_config('wishlist_migrator.mark', clock_timestamp()::text, false) \
     from (select coalesce((extract(epoch from clock_timestamp() - nullif(current_setting('wishlist_migrator.mark', true), '')::timestamptz) * 1000)::bigint, 0) as d) s";

/// A SQL string literal, as Postgres's `quote_literal` writes it: safe whatever
/// `standard_conforming_strings` says, because backslashes get the `E''` form.
pub fn quote_literal(text: &str) -> String {
    let quoted = text.replace('\'', "''");
    if text.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

impl Classified for LedgerError {
    fn error_type(&self) -> ErrorType {
        match self.pg() {
            Some(pg) if pg.is(INSUFFICIENT_PRIVILEGE) => ErrorType::PermissionDenied,
            _ => ErrorType::MigrationFailed,
        }
    }

    fn details(&self) -> Details {
        self.pg().map(PgError::details).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_quoted_like_postgres_quote_literal() {
        assert_eq!(quote_literal("plain"), "'plain'");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"C:\dir's"), r"E'C:\\dir''s'");
        assert_eq!(quote_literal(""), "''");
    }

    #[test]
    fn identifiers_are_quoted_and_escaped() {
        let t = LedgerTable {
            schema: "my\"schema".into(),
            table: "__drizzle_migrations".into(),
        };
        assert_eq!(t.qualified(), r#""my""schema"."__drizzle_migrations""#);
        assert_eq!(LedgerTable::default().history(), r#""drizzle"."wishlist_migrator_history""#);
    }

    fn migration(name: Option<&str>) -> Migration {
        Migration {
            idx: 0,
            tag: name.unwrap_or("0000_a").to_string(),
            created_at: 1_735_732_800_000,
            name: name.map(str::to_string),
            hash: "abc".into(),
            statements: Vec::new(),
            marked_no_transaction: false,
            commit_after: false,
            down: None,
            needs: crate::migrations::source::Needs {
                mode: crate::migrations::source::TransactionMode::Transaction,
                adds_enum_value: false,
                ends_transaction: false,
            }
            .into(),
        }
    }

    #[test]
    fn a_0_x_row_has_no_name_and_a_1_0_row_has_its_folder_s() {
        let t = LedgerTable::default();
        assert_eq!(
            t.insert_sql(&migration(None)),
            r#"insert into "drizzle"."__drizzle_migrations" ("hash", "created_at") values ('abc', 1735732800000)"#
        );
        assert_eq!(
            t.insert_sql(&migration(Some("20250101120000_it's"))),
            r#"insert into "drizzle"."__drizzle_migrations" ("hash", "created_at", "name") values ('abc', 1735732800000, '20250101120000_it''s')"#
        );
    }
}
