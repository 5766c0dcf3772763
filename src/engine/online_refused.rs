//! A type change's values the new type refuses: looked for after the backfill (and again when
//! one written since fails the recipe's check), named by column, count and primary keys, never
//! by value; the expand taken back so the column stays as it was and nothing is lost.

use tokio_postgres::GenericClient;

use crate::db::connection::PgError;
use crate::engine::applier::{Applier, Timeouts};
use crate::engine::error::MigrationError;
use crate::engine::online_step::{pg, Failed};
use crate::engine::progress::PROGRESS;
use crate::migrations::source::Migration;
use crate::migrations::statement::Statement;
use crate::online::change_type::{self as recipe, Column};
use crate::sql::change_type::ChangeType;

/// How many offending keys a refusal lists.
pub(super) const SHOWN_KEYS: usize = 20;

impl Applier<'_> {
    /// Each column's values the new type refuses, looked for in the whole table: none, and the
    /// recipe goes on; some, and the expand is taken back and the run stops with ValuesRefused,
    /// naming every column that has some, its count and keys (never a value). `backfill` is the
    /// backfill step's index, which the undo counts the expand steps back from.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn refuse_values(
        &self,
        client: &impl GenericClient,
        m: &Migration,
        i: usize,
        backfill: usize,
        statement: &Statement,
        cols: &[Column],
        timeouts: &Timeouts,
        resumable: &str,
    ) -> Result<(), Failed> {
        let cts: Vec<ChangeType> = cols.iter().map(|(ct, _)| ct.clone()).collect();
        let facts = &cols[0].1;
        let columns = cts.iter().map(|c| c.column.as_str()).collect::<Vec<_>>().join(", ");
        let error = |pg: PgError, deadline: bool, advice: String| {
            (MigrationError::at_statement(&m.tag, i, statement, pg.clone(), deadline, advice), pg)
        };
        let sql = recipe::backfill(&cts, &facts.key, SHOWN_KEYS);
        // Each column's refused values: the error names every column that has some.
        let mut refused = Vec::new();
        for ((ct, _), query) in cols.iter().zip(&sql.refused) {
            let row = client
                .query_one(query, &[])
                .await
                .map_err(|e| error(e.into(), false, resumable.into()))?;
            let (count, keys): (i64, Vec<String>) = (row.get(0), row.get(1));
            if count > 0 {
                refused.push((ct, count, keys));
            }
        }
        if refused.is_empty() {
            return Ok(());
        }
        let total: i64 = refused.iter().map(|r| r.1).sum();
        self.undo(client, m, backfill, &cts, timeouts).await.map_err(|e| {
            error(
                e,
                false,
                format!("The new type refuses {total} value(s), and taking the recipe's trigger, functions and new column(s) back failed: run again to retry, or drop them by hand"),
            )
        })?;
        let key = facts.key.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", ");
        let as_text = facts
            .key
            .iter()
            .map(|k| format!("{}::text", crate::sql::online::quote(&k.name)))
            .collect::<Vec<_>>()
            .join(", ");
        let said = refused
            .iter()
            .map(|(ct, count, keys)| {
                format!(
                    "the new type {} refuses the value of {}.{} in {count} row(s); their primary key ({key}): {}{}",
                    ct.new_type,
                    ct.table_name,
                    ct.column,
                    keys.iter().map(|k| format!("({k})")).collect::<Vec<_>>().join(", "),
                    if *count as usize > keys.len() { ", …" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let queries = refused
            .iter()
            .map(|(ct, _, keys)| {
                format!(
                    "SELECT {key}, {col} FROM {t} WHERE array_to_string(ARRAY[{as_text}], ', ') IN ({listed})",
                    col = crate::sql::online::quote(&ct.column),
                    t = ct.table,
                    listed = keys
                        .iter()
                        .map(|k| crate::db::ledger::quote_literal(k))
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let mut error = error(
            pg(said),
            false,
            format!(
                "Nothing was lost: the column(s) {columns} are untouched, and the recipe's trigger, functions and new column(s) were dropped. \
                 See the values with: {queries}; fix them (or add them to the type), then run again"
            ),
        );
        error.0.refused_values = true;
        Err(error)
    }

    /// The expand taken back, and the expand steps' history rows with it: the next run starts
    /// the recipe from its first step.
    async fn undo(
        &self,
        client: &impl GenericClient,
        m: &Migration,
        i: usize,
        cts: &[ChangeType],
        _timeouts: &Timeouts,
    ) -> Result<(), PgError> {
        let first = (i + 1 - recipe::expand_steps(cts.len())) as i32;
        let forget = format!(
            "DELETE FROM {h} WHERE tag = {tag} AND action = 'statement' AND statement_index >= {first}
               AND id > coalesce((SELECT max(id) FROM {h} WHERE tag = {tag} AND action IN ('apply', 'rollback') AND succeeded), 0)",
            h = self.ledger.history(),
            tag = crate::db::ledger::quote_literal(&m.tag),
        );
        let batch = format!("BEGIN; {}; {forget}; COMMIT", recipe::undo(cts).join("; "));
        self.with_lock_retries(client, m, i, &batch).await?;
        let columns = cts.iter().map(|c| c.column.as_str()).collect::<Vec<_>>().join(", ");
        tracing::warn!(target: PROGRESS, tag = %m.tag, table = %cts[0].table_name, %columns, "values a new type refuses: the expand was taken back, the column(s) untouched");
        Ok(())
    }
}
