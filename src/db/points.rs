//! Where on the server's clock and in its WAL the work a history row records began and
//! committed: the columns, the session marks that carry a start to the rows, and their values.
//! What an operator picks a point-in-time recovery target from (docs/backup-restore.md).

/// The history columns that record where work began and committed, as `CREATE TABLE` and
/// `ALTER TABLE ... ADD COLUMN` write them (no defaults: rows of earlier versions stay null
/// rather than claim a moment nobody measured).
pub const HISTORY_COLUMNS_ADDED: &str = "started_at timestamptz, start_lsn pg_lsn, committed_at timestamptz, commit_lsn pg_lsn";

/// Marks where the work about to be sent begins: `clock_timestamp()` and the WAL insert
/// position, in session settings the work's history rows read ([`point_values`]). The insert
/// position, not `pg_current_wal_lsn()` (the write position): with `synchronous_commit = off`
/// a commit record can sit above the write position for a while, and a target below it would
/// undo a transaction that committed before the migration began.
/// [`MARK_SQL`](crate::db::ledger::MARK_SQL) sets the same two settings for a pipelined segment.
pub const START_MARK_SQL: &str = "select set_config('wishlist_migrator.started', clock_timestamp()::text, false), \
     set_config('wishlist_migrator.start_lsn', pg_current_wal_insert_lsn()::text, false)";

pub fn point_columns() -> &'static str {
    "started_at, start_lsn, committed_at, commit_lsn"
}

/// The values of [`point_columns`] for a row written in the transaction that commits its work.
pub fn point_values(start_marked: bool) -> &'static str {
    if start_marked {
        "nullif(current_setting('wishlist_migrator.started', true), '')::timestamptz, \
         nullif(current_setting('wishlist_migrator.start_lsn', true), '')::pg_lsn, \
         clock_timestamp(), pg_current_wal_insert_lsn()"
    } else {
        "NULL, NULL, clock_timestamp(), pg_current_wal_insert_lsn()"
    }
}

/// A timestamptz column as UTC RFC 3339 to the microsecond, its zone written `+00:00` rather
/// than `Z`: `recovery_target_time` refuses zone abbreviations, and the operator pastes it there.
pub fn rfc3339(column: &str) -> String {
    format!("to_char({column} at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_without_a_start_mark_claims_no_start() {
        assert!(point_values(false).starts_with("NULL, NULL,"));
        assert_eq!(point_values(true).matches("current_setting").count(), 2);
    }
}
