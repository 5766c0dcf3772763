//! The one request a run that takes the advisory lock opens with: the session check and the
//! try-lock, then, only if the lock was taken, the ledger read, in one simple query, so a no-op
//! deploy costs one round trip after connecting. A busy lock, a fresh database (no ledger
//! table yet) or a connection through a pooler (`db/pooler.rs`) falls back to the step-by-step
//! path (`engine/session.rs`).

use tokio_postgres::Client;

use crate::db::connection::{PgError, IDLE_IN_TRANSACTION_TIMEOUT};
use crate::db::ledger::{is_missing_table, rows_of, LedgerRead, LedgerTable};
use crate::db::lock::held_here_sql;

/// What the opening statement found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub read_only: bool,
    pub in_recovery: bool,
    /// `pg_backend_pid()`: the backend the lock is taken on.
    pub pid: i32,
    /// Whether the backend is the one the server announced at startup. When it is not, a pooler
    /// stands between: nothing was set or locked, so a transaction-mode pooler cannot carry a
    /// setting or a lock over to other clients before the pooler probe.
    pub direct: bool,
    /// Whether `pg_try_advisory_lock` succeeded: only tried on a session that can write.
    pub locked: bool,
    /// The ledger, read under the lock; `None` when the lock was not taken.
    pub ledger: Option<LedgerRead>,
}

/// Two statements in one simple query. The first sets the session up and takes the lock on a
/// direct connection (a CTE with a volatile function is evaluated once). The second reads the
/// ledger only if the lock is held: a statement of its own, because a statement reads in the
/// snapshot taken when it starts (READ COMMITTED), and a ledger read in the statement that took
/// the lock could miss what a run committed just before it gave the lock up. `announced` is the
/// process id the server announced at startup (`None`: unknown, taken as a pooler).
pub fn sql(ledger: &LedgerTable, key: i64, announced: Option<i32>) -> String {
    let direct = announced.map_or_else(|| "false".to_string(), |pid| format!("pg_backend_pid() = {pid}"));
    format!(
        "with s as (select current_setting('transaction_read_only') = 'on' as ro, pg_is_in_recovery() as rec, \
         pg_backend_pid() as pid, {direct} as direct), \
         l as (select ro, rec, pid, direct, \
         case when direct then set_config('idle_in_transaction_session_timeout', '{idle}s', false) end as setup, \
         case when ro or rec or not direct then false else pg_try_advisory_lock({key}) end as locked from s) \
         select l.ro, l.rec, l.locked, l.pid, l.direct, l.setup from l; \
         select t.* from ({rows}) t order by t.id",
        idle = IDLE_IN_TRANSACTION_TIMEOUT.as_secs(),
        rows = ledger.rows_sql(&format!("where {}", held_here_sql(key))),
    )
}

/// Runs the opening request. `Ok(None)`: the ledger table or its schema does not exist, which
/// the server finds when it comes to the second statement: the first may have taken the lock
/// (its settings were rolled back with the implicit transaction), so the caller asks
/// (`lock::held_here`) before it takes the step-by-step path.
pub async fn open(client: &Client, ledger: &LedgerTable, key: i64, announced: Option<i32>) -> Result<Option<Opening>, OpeningError> {
    let messages = match client.simple_query(&sql(ledger, key, announced)).await {
        Ok(messages) => messages,
        Err(e) if is_missing_table(&e) => return Ok(None),
        Err(e) => return Err(OpeningError::Database(e.into())),
    };
    let rows: Vec<_> = rows_of(&messages).collect();
    let (first, read) = rows.split_first().ok_or(OpeningError::NoRow)?;
    let flag = |i: usize| first.get(i) == Some("t");
    let locked = flag(2);
    // The read has a row even for an empty ledger; none means it did not find the lock held.
    let ledger = if locked && !read.is_empty() {
        Some(ledger.parse_read(read.iter().copied(), 0).map_err(OpeningError::Ledger)?)
    } else {
        None
    };
    Ok(Some(Opening {
        read_only: flag(0),
        in_recovery: flag(1),
        pid: first.get(3).and_then(|v| v.parse().ok()).ok_or(OpeningError::NoRow)?,
        direct: flag(4),
        locked,
        ledger,
    }))
}

#[derive(Debug, thiserror::Error)]
pub enum OpeningError {
    #[error("{0}")]
    Database(PgError),
    #[error("the session check returned no row")]
    NoRow,
    #[error(transparent)]
    Ledger(crate::db::ledger::LedgerError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_statement_checks_locks_and_reads_only_under_the_lock() {
        let sql = sql(&LedgerTable::default(), 42, Some(7));
        assert!(sql.contains("case when direct then set_config('idle_in_transaction_session_timeout', '60s', false) end"));
        assert_eq!(sql.matches("pg_try_advisory_lock(42)").count(), 1);
        assert!(sql.contains("pg_backend_pid() = 7 as direct"));
        assert!(sql.contains("case when ro or rec or not direct then false else pg_try_advisory_lock(42) end"));
        assert!(sql.contains(r#"from "drizzle"."__drizzle_migrations" x"#));
        let (lock, read) = sql.split_once("; ").expect("two statements");
        assert!(lock.contains("pg_try_advisory_lock(42)") && !lock.contains("__drizzle_migrations"));
        assert!(
            read.contains("pg_locks") && read.contains("pid = pg_backend_pid()"),
            "the ledger is read only under the lock, in a snapshot taken after it: {read}"
        );
        assert!(!sql.contains("pg_advisory_unlock"));
    }

    #[test]
    fn an_unknown_announced_pid_sets_and_locks_nothing() {
        let sql = sql(&LedgerTable::default(), 42, None);
        assert!(sql.contains("false as direct"));
        assert!(!sql.contains("set idle_in_transaction_session_timeout"));
    }
}
