//! The advisory lock that serialises runners of one database: polled with jitter, never a
//! blocking `pg_advisory_lock`, and given back explicitly on every path.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::db::backoff::Backoff;
use crate::db::connection::{first_row, PgError};
use crate::error::{Classified, Details, ErrorType};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another migration run holds the advisory lock {key}{holder}; gave up after {waited_ms} ms. Wait for it to finish (see pg_stat_activity where application_name = 'wishlist-migrator') or raise LOCK_WAIT_SECONDS", holder = holder_text(*holder_pid))]
    Busy { key: i64, holder_pid: Option<i32>, waited_ms: u64 },
    #[error("advisory lock {key}: {error}")]
    Database { key: i64, error: PgError },
    /// Checked at release: the lock must be given back by the backend that took it, and the
    /// server must say it was held. Otherwise another runner may have held it too.
    #[error("advisory lock {key} was not held at release ({why}): another run may have held it at the same time. Check pg_locks and the ledger with `status`; a connection pooler in transaction mode (or a proxy that swaps backends) does this: point the connection at the database or a session-mode endpoint", why = lost_text(*locked_pid, *unlock_pid))]
    Lost { key: i64, locked_pid: i32, unlock_pid: i32 },
    /// Found before anything ran: the session is pooled per transaction (`db/pooler.rs`).
    #[error("the connection goes through a connection pooler in transaction (or statement) mode: consecutive transactions ran on different PostgreSQL backends (ours {ours_before} then {ours_after}{second}), so a session advisory lock cannot keep two runs apart and session settings would leak to other clients. Nothing was run. Point the connection at the database itself (the cluster writer endpoint) or at the pooler's session-mode port/database (PgBouncer pool_mode=session; Supavisor port 5432)")]
    PoolerNotSupported { ours_before: i32, ours_after: i32, second: String },
}

fn lost_text(locked_pid: i32, unlock_pid: i32) -> String {
    if locked_pid == unlock_pid {
        format!("backend PID {locked_pid} took it and no longer held it")
    } else {
        format!("taken on backend PID {locked_pid}, given back on backend PID {unlock_pid}")
    }
}

fn holder_text(pid: Option<i32>) -> String {
    pid.map(|p| format!(" (backend PID {p})")).unwrap_or_default()
}

/// A held lock. Release it with [`HeldLock::release`] on every path: behind a pooler the
/// connection's close does not end the server session, so it frees nothing. The close is a
/// backstop for a panic, not the plan.
#[derive(Debug)]
#[must_use = "release the lock on every path"]
pub struct HeldLock {
    key: i64,
    /// The backend that took it: the one that must give it back.
    pid: i32,
    pub waited: Duration,
}

/// Polls `pg_try_advisory_lock` until it succeeds or `wait` has passed.
pub async fn acquire(client: &Client, key: i64, wait: Duration) -> Result<HeldLock, LockError> {
    let started = Instant::now();
    let db = |error: tokio_postgres::Error| LockError::Database { key, error: error.into() };
    let mut attempt: u32 = 0;
    let mut freed_meanwhile: u32 = 0;
    loop {
        let row = first_row(client, &format!("select pg_try_advisory_lock({key}), pg_backend_pid()"))
            .await
            .map_err(db)?;
        if row.first().is_some_and(|v| v.as_deref() == Some("t")) {
            return Ok(HeldLock {
                key,
                pid: pid_of(&row, 1),
                waited: started.elapsed(),
            });
        }
        let elapsed = started.elapsed();
        if elapsed >= wait {
            let holder_pid = holder(client, key).await.map_err(db)?;
            // No holder: it was released between our try and the look-up. Reporting a free lock
            // as busy (exit 4, holder unknown) would fail a deploy for nothing; try again a few times.
            if holder_pid.is_none() && freed_meanwhile < 3 {
                freed_meanwhile += 1;
                continue;
            }
            return Err(LockError::Busy {
                key,
                holder_pid,
                waited_ms: elapsed.as_millis() as u64,
            });
        }
        if attempt == 0 {
            let holder_pid = holder(client, key).await.map_err(db)?;
            tracing::info!(key, holder_pid, "advisory lock busy; waiting");
        }
        tokio::time::sleep(POLL.delay(attempt).min(wait - elapsed)).await;
        attempt = attempt.saturating_add(1);
    }
}

impl HeldLock {
    /// The lock a combined first statement took at once on backend `pid` (`db/opening.rs`).
    pub fn taken_at_once(key: i64, pid: i32) -> Self {
        Self {
            key,
            pid,
            waited: Duration::ZERO,
        }
    }

    /// Gives the lock back, on the backend that took it only: on any other the unlock would
    /// free nothing of ours (or another session's lock). Either miss is [`LockError::Lost`].
    pub async fn release(self, client: &Client) -> Result<(), LockError> {
        let Self { key, pid, .. } = self;
        let row = first_row(
            client,
            &format!("select pg_backend_pid(), case when pg_backend_pid() = {pid} then pg_advisory_unlock({key}) else false end"),
        )
        .await
        .map_err(|error| LockError::Database { key, error: error.into() })?;
        let unlock_pid = pid_of(&row, 0);
        if row.get(1).and_then(|v| v.as_deref()) != Some("t") {
            return Err(LockError::Lost {
                key,
                locked_pid: pid,
                unlock_pid,
            });
        }
        Ok(())
    }
}

/// A pid column of a simple-protocol row; 0 (no backend has it) if absent.
fn pid_of(row: &[Option<String>], i: usize) -> i32 {
    row.get(i).and_then(|v| v.as_deref()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// SQL: whether this session's backend holds the lock now (`pg_locks` is not MVCC: it says what
/// is held at the moment it is read, whatever the statement's snapshot).
pub fn held_here_sql(key: i64) -> String {
    format!(
        "exists (select 1 from pg_locks where locktype = 'advisory' and granted and objsubid = 1 \
         and pid = pg_backend_pid() and database = (select oid from pg_database where datname = current_database()) \
         and classid::bigint = (({key})::bigint >> 32) & 4294967295 and objid::bigint = ({key})::bigint & 4294967295)"
    )
}

/// This session's backend and whether it holds the lock.
pub async fn held_here(client: &Client, key: i64) -> Result<(i32, bool), LockError> {
    let row = first_row(client, &format!("select pg_backend_pid(), {}", held_here_sql(key)))
        .await
        .map_err(|error| LockError::Database { key, error: error.into() })?;
    Ok((pid_of(&row, 0), row.get(1).and_then(|v| v.as_deref()) == Some("t")))
}

/// The backend holding the lock, if any: a bigint key is stored as (classid, objid) halves.
async fn holder(client: &Client, key: i64) -> Result<Option<i32>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "select pid from pg_locks
             where locktype = 'advisory' and granted and objsubid = 1
               and database = (select oid from pg_database where datname = current_database())
               and classid::bigint = ($1::bigint >> 32) & 4294967295
               and objid::bigint = $1::bigint & 4294967295
             limit 1",
            &[&key],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// From 50 ms to 1 s: short enough to notice a freed lock quickly, long enough not to hammer.
const POLL: Backoff = Backoff {
    first: Duration::from_millis(50),
    cap: Duration::from_secs(1),
    jitter: 0.5,
};

impl Classified for LockError {
    fn error_type(&self) -> ErrorType {
        match self {
            Self::Busy { .. } => ErrorType::MigrationLockBusy,
            Self::Database { .. } => ErrorType::ConnectionFailed,
            Self::Lost { .. } => ErrorType::MigrationLockLost,
            Self::PoolerNotSupported { .. } => ErrorType::PoolerNotSupported,
        }
    }

    fn details(&self) -> Details {
        match self {
            Self::Busy { holder_pid, .. } => Details {
                holder_pid: *holder_pid,
                ..Details::default()
            },
            Self::Database { error, .. } => error.details(),
            Self::Lost { .. } | Self::PoolerNotSupported { .. } => Details::default(),
        }
    }
}
