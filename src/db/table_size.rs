//! How big the live tables are, for the lint gate: the planner's row estimate and the bytes of
//! heap, indexes and TOAST. Read-only, one query, no table is scanned.

use std::collections::BTreeMap;

use tokio_postgres::GenericClient;

use crate::db::catalog::CatalogError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSize {
    pub estimated_rows: u64,
    pub total_bytes: u64,
}

/// Bytes a row is taken to hold on a table never analyzed or vacuumed (`reltuples` is then -1):
/// about what a `wishlist_items` row takes on disk.
const BYTES_PER_ROW_GUESS: i64 = 100;

/// Every ordinary and partitioned table outside the system schemas, keyed as the lint names
/// tables (`public` left out). The estimates are Postgres's own (`pg_class.reltuples`, kept by
/// ANALYZE and autovacuum), not counts.
pub async fn read(client: &impl GenericClient) -> Result<BTreeMap<String, TableSize>, CatalogError> {
    let sql = format!(
        "SELECT CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END, \
                CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint ELSE pg_relation_size(c.oid) / {BYTES_PER_ROW_GUESS} END, \
                pg_total_relation_size(c.oid) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
           AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
    );
    let rows = client.query(sql.as_str(), &[]).await.map_err(|e| CatalogError {
        what: "table sizes",
        error: e.into(),
    })?;
    Ok(rows
        .iter()
        .map(|r| {
            let rows: i64 = r.get(1);
            let bytes: i64 = r.get(2);
            (
                r.get::<_, String>(0),
                TableSize {
                    estimated_rows: rows.max(0) as u64,
                    total_bytes: bytes.max(0) as u64,
                },
            )
        })
        .collect())
}
