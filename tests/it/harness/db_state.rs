//! Reading back what runs left in a test database: drizzle's ledger, our history table, the
//! catalog, sessions.

use std::time::{Duration, Instant};

use super::{ident, TestDb};

/// Rows of drizzle's ledger in id order as (hash, created_at); empty when it does not exist.
pub async fn ledger_in(db: &TestDb, schema: &str, table: &str) -> Vec<(String, i64)> {
    let qualified = format!("{}.{}", ident(schema), ident(table));
    if !db.table_exists(&qualified).await {
        return Vec::new();
    }
    db.client()
        .await
        .query(&format!("select hash, created_at from {qualified} order by id"), &[])
        .await
        .expect("read ledger")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

pub async fn ledger(db: &TestDb) -> Vec<(String, i64)> {
    ledger_in(db, "drizzle", "__drizzle_migrations").await
}

/// Everything a migration could have created outside the system schemas, as sorted lines:
/// schemas, relations (tables, indexes, sequences), columns with type and default, enum
/// types with their labels, and constraints. Equal before and after = nothing changed.
pub async fn catalog(db: &TestDb) -> Vec<String> {
    const USER: &str = "n.nspname not like 'pg\\_%' and n.nspname <> 'information_schema'";
    let sql = format!(
        "select 'schema ' || n.nspname from pg_namespace n where {USER}
         union all
         select 'rel ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text
           from pg_class c join pg_namespace n on n.oid = c.relnamespace where {USER}
         union all
         select 'col ' || n.nspname || '.' || c.relname || '.' || a.attname || ' '
                || format_type(a.atttypid, a.atttypmod) || ' default ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
           from pg_attribute a
           join pg_class c on c.oid = a.attrelid
           join pg_namespace n on n.oid = c.relnamespace
           left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
          where {USER} and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
         union all
         select 'enum ' || n.nspname || '.' || t.typname || ' '
                || coalesce((select string_agg(e.enumlabel, ',' order by e.enumsortorder) from pg_enum e where e.enumtypid = t.oid), '')
           from pg_type t join pg_namespace n on n.oid = t.typnamespace where {USER} and t.typtype = 'e'
         union all
         select 'constraint ' || n.nspname || '.' || c.conname || ' ' || pg_get_constraintdef(c.oid)
           from pg_constraint c join pg_namespace n on n.oid = c.connamespace where {USER}"
    );
    let mut lines: Vec<String> = db
        .client()
        .await
        .query(&sql, &[])
        .await
        .expect("read catalog")
        .iter()
        .map(|r| r.get(0))
        .collect();
    lines.sort();
    lines
}

pub async fn schema_exists(db: &TestDb, schema: &str) -> bool {
    db.client()
        .await
        .query_one("select to_regnamespace($1) is not null", &[&ident(schema)])
        .await
        .expect("to_regnamespace")
        .get(0)
}

/// Whether `table.column` exists in public.
pub async fn column_exists(db: &TestDb, table: &str, column: &str) -> bool {
    db.client()
        .await
        .query_one(
            "select count(*) > 0 from information_schema.columns
              where table_schema = 'public' and table_name = $1 and column_name = $2",
            &[&table, &column],
        )
        .await
        .expect("information_schema.columns")
        .get(0)
}

/// Rows of our history table: (tag, action, succeeded, run_id, error_sqlstate), in order.
pub async fn history(db: &TestDb) -> Vec<(String, String, bool, String, Option<String>)> {
    if !db.table_exists("drizzle.wishlist_migrator_history").await {
        return Vec::new();
    }
    db.client()
        .await
        .query(
            "select tag, action, succeeded, run_id, error_sqlstate
               from drizzle.wishlist_migrator_history order by id",
            &[],
        )
        .await
        .expect("read history")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

/// Backends of this database that belong to wishlist-migrator runs.
pub async fn migrator_sessions(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one(
            "select count(*) from pg_stat_activity
              where datname = $1 and application_name = 'wishlist-migrator'",
            &[&db.name],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

/// Waits (bounded) for a condition the server reaches asynchronously, e.g. a closed client's
/// backend exiting. Returns whether it became true.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
