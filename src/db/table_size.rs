//! How big the live tables are, for the lint gate: the planner's row estimate and the bytes of
//! heap, indexes and TOAST. Read from the statistics Postgres keeps in `pg_class` (kept by
//! VACUUM, ANALYZE and autovacuum) and `pg_stat_user_tables`: no table is scanned, and no lock is
//! taken, so the read never queues behind a session holding one (`pg_total_relation_size` would
//! wait for an ACCESS EXCLUSIVE holder with no lock_timeout to stop it).

use std::collections::BTreeMap;

use tokio_postgres::GenericClient;

use crate::db::catalog::CatalogError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSize {
    pub estimated_rows: u64,
    pub total_bytes: u64,
}

/// Bytes a row is taken to hold on a table never vacuumed or analyzed (its pages are not
/// counted yet): about what a `wishlist_items` row takes on disk.
const BYTES_PER_ROW_GUESS: i64 = 100;

const SIZES: &str = "\
SELECT CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END,
       CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint ELSE coalesce(s.n_live_tup, 0) END,
       (c.relpages::bigint + coalesce(t.relpages, 0)
          + coalesce((SELECT sum(i.relpages) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                      WHERE x.indrelid = c.oid), 0))::bigint * current_setting('block_size')::bigint
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

/// Every ordinary and partitioned table outside the system schemas, keyed as the lint names
/// tables (`public` left out). Estimates, not counts.
pub async fn read(client: &impl GenericClient) -> Result<BTreeMap<String, TableSize>, CatalogError> {
    let rows = client.query(SIZES, &[]).await.map_err(|e| CatalogError {
        what: "table sizes",
        error: e.into(),
    })?;
    Ok(rows
        .iter()
        .map(|r| {
            let rows: i64 = r.get(1);
            let pages_bytes: i64 = r.get(2);
            // Never vacuumed nor analyzed: no pages counted yet, only the live tuples.
            let bytes = if pages_bytes > 0 { pages_bytes } else { rows * BYTES_PER_ROW_GUESS };
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
