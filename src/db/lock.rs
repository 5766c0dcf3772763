//! The advisory lock that serialises runners of one database: polled with jitter, never a
//! blocking `pg_advisory_lock`, and given back explicitly on every path.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::db::connection::PgError;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another migration run holds the advisory lock {key}{holder}; gave up after {waited_ms} ms. Wait for it to finish (see pg_stat_activity where application_name = 'wishlist-migrator') or raise LOCK_WAIT_SECONDS", holder = holder_text(*holder_pid))]
    Busy {
        key: i64,
        holder_pid: Option<i32>,
        waited_ms: u64,
    },
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
        tokio::time::sleep(backoff(attempt).min(wait - elapsed)).await;
        attempt = attempt.saturating_add(1);
    }
}

impl HeldLock {
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

/// Exponential from 50 ms to 1 s, with ±50 % jitter so waiting runners do not poll in step.
fn backoff(attempt: u32) -> Duration {
    let base = 50u64.saturating_mul(1 << attempt.min(5)).min(1_000);
    Duration::from_millis(base / 2 + fastrand::u64(0..=base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        for attempt in 0..20 {
            let d = backoff(attempt).as_millis() as u64;
            let base = (50u64 << attempt.min(5)).min(1_000);
            assert!(d >= base / 2 && d <= base / 2 + base, "attempt {attempt}: {d}");
        }
        let samples: std::collections::HashSet<u128> = (0..50).map(|_| backoff(4).as_millis()).collect();
        assert!(samples.len() > 1, "jitter varies the delay");
    }
}
