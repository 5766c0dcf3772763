//! The advisory lock that serialises runners of one database: polled with jitter, never a
//! blocking `pg_advisory_lock`, and given back explicitly on every path.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::db::backoff::Backoff;
use crate::db::connection::PgError;
use crate::error::{Classified, Details, ErrorType};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another migration run holds the advisory lock {key}{holder}; gave up after {waited_ms} ms. Wait for it to finish (see pg_stat_activity where application_name = 'wishlist-migrator') or raise LOCK_WAIT_SECONDS", holder = holder_text(*holder_pid))]
    Busy { key: i64, holder_pid: Option<i32>, waited_ms: u64 },
    #[error("advisory lock {key}: {error}")]
    Database { key: i64, error: PgError },
}

fn holder_text(pid: Option<i32>) -> String {
    pid.map(|p| format!(" (backend PID {p})")).unwrap_or_default()
}

/// A held lock. Release it with [`HeldLock::release`]; closing the connection also frees it, which
/// is the backstop, not the plan.
#[derive(Debug)]
#[must_use = "release the lock on every path"]
pub struct HeldLock {
    key: i64,
    pub waited: Duration,
}

/// Polls `pg_try_advisory_lock` until it succeeds or `wait` has passed.
pub async fn acquire(client: &Client, key: i64, wait: Duration) -> Result<HeldLock, LockError> {
    let started = Instant::now();
    let db = |error: tokio_postgres::Error| LockError::Database { key, error: error.into() };
    let mut attempt: u32 = 0;
    let mut freed_meanwhile: u32 = 0;
    loop {
        if crate::db::connection::query_bool(client, &format!("select pg_try_advisory_lock({key})"))
            .await
            .map_err(db)?
        {
            return Ok(HeldLock {
                key,
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
    /// The lock a combined first statement took at once (`db/opening.rs`).
    pub fn taken_at_once(key: i64) -> Self {
        Self {
            key,
            waited: Duration::ZERO,
        }
    }

    /// Keeps the lock until the session closes, which frees it: for a run that ends right after
    /// and has nothing to give back early for, the unlock would be a round trip for nothing.
    pub fn leave_to_close(self) {
        tracing::debug!(key = self.key, "advisory lock left to the session's close");
    }

    pub async fn release(self, client: &Client) -> Result<(), LockError> {
        let key = self.key;
        let released = crate::db::connection::query_bool(client, &format!("select pg_advisory_unlock({key})"))
            .await
            .map_err(|error| LockError::Database { key, error: error.into() })?;
        if !released {
            tracing::warn!(key, "advisory lock was not held at release");
        }
        Ok(())
    }
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
        }
    }

    fn details(&self) -> Details {
        match self {
            Self::Busy { holder_pid, .. } => Details {
                holder_pid: *holder_pid,
                ..Details::default()
            },
            Self::Database { error, .. } => error.details(),
        }
    }
}
