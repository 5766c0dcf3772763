//! The one retry policy: a transaction (a migrate segment or the rollback) that hit
//! `lock_timeout` (55P03) gave way to the API's traffic, and is tried again after a jittered
//! backoff while retries and time remain. Any other failure is final at once.

use std::time::{Duration, Instant};

use crate::db::backoff::Backoff;
use crate::db::connection::PgError;
use crate::engine::error::Error;
use crate::engine::invocation::time_left;
use crate::engine::outcome::SegmentStatus;
use crate::engine::rollback_plan::RollbackError;
use crate::migrations::source::Migration;

pub const LOCK_NOT_AVAILABLE: &str = "55P03";

/// 1 s, 2 s, 4 s, ... capped at 10 s, within ±25 % so retrying runners spread out.
const BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(1),
    cap: Duration::from_secs(10),
    jitter: 0.25,
};

/// A failed attempt at a transaction.
#[derive(Debug)]
pub struct AttemptFailure<'m> {
    pub error: Error,
    pub status: SegmentStatus,
    /// The migration to record as failed in the history, with its error and time spent.
    pub failed: Option<FailedMigration<'m>>,
}

#[derive(Debug)]
pub struct FailedMigration<'m> {
    pub migration: &'m Migration,
    pub error: PgError,
    pub duration: Duration,
}

impl AttemptFailure<'_> {
    /// Gave way to other sessions' locks: a statement, or the rollback's lock on a table at risk.
    pub fn lock_timeout(&self) -> bool {
        match &self.error {
            Error::Migration(e) => e.error.is(LOCK_NOT_AVAILABLE),
            Error::Rollback(RollbackError::Inspect { error, .. }) => error.is(LOCK_NOT_AVAILABLE),
            _ => false,
        }
    }
}

/// Counts the attempts at one transaction and decides after each failure.
pub struct Retry {
    retries: u32,
    deadline: Option<Instant>,
    /// Names the transaction in warnings: `attempt` or `rollback attempt`.
    attempt_name: &'static str,
    attempts: u32,
}

impl Retry {
    pub fn new(retries: u32, deadline: Option<Instant>, attempt_name: &'static str) -> Self {
        Self {
            retries,
            deadline,
            attempt_name,
            attempts: 0,
        }
    }

    /// Call before each attempt.
    pub fn start(&mut self) {
        self.attempts += 1;
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// After a failed attempt: waits and returns `None` when it is worth another, otherwise
    /// gives the failure back (its advice saying it gave up, when lock_timeout wore it down).
    pub async fn after<'m>(&mut self, mut failure: AttemptFailure<'m>, warnings: &mut Vec<String>) -> Option<AttemptFailure<'m>> {
        let lock_timeout = failure.lock_timeout();
        let delay = BACKOFF.delay(self.attempts.saturating_sub(1));
        let time_left = time_left(self.deadline).is_none_or(|left| left > delay * 2);
        if lock_timeout && self.attempts <= self.retries && time_left {
            let tag = failure.failed.as_ref().map_or("?", |f| f.migration.tag.as_str());
            let (name, attempt) = (self.attempt_name, self.attempts);
            tracing::warn!(
                tag,
                attempt,
                delay_ms = delay.as_millis() as u64,
                "lock_timeout; retrying the {name}"
            );
            warnings.push(format!(
                "{tag}: lock_timeout on {name} {attempt} (other sessions held conflicting locks); retried after {} ms",
                delay.as_millis()
            ));
            tokio::time::sleep(delay).await;
            return None;
        }
        if lock_timeout {
            if let Error::Migration(e) = &mut failure.error {
                e.advice = format!(
                    "Gave up after {} attempt(s): long-running transactions hold locks on the table. Nothing was kept. Run again when traffic is lower, or raise PG_LOCK_TIMEOUT_MS / LOCK_TIMEOUT_RETRIES",
                    self.attempts
                );
            }
        }
        Some(failure)
    }
}
