//! How long to wait before polling or trying again: exponential, capped, and jittered so that
//! runners waiting on the same thing do not retry in step. The lock poll, the `lock_timeout`
//! retry and connecting to a server out of connection slots use it.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The base delay of the first wait; each later one doubles, up to `cap`.
    pub first: Duration,
    pub cap: Duration,
    /// The delay lands uniformly within ±`jitter` of the base (0.5 = from half to one and a half).
    pub jitter: f64,
}

impl Backoff {
    /// The wait before attempt `n + 1`, counting from 0.
    pub fn delay(&self, n: u32) -> Duration {
        let base = self.base(n).as_millis() as u64;
        let spread = (base as f64 * self.jitter) as u64;
        Duration::from_millis(base - spread + fastrand::u64(0..=spread * 2))
    }

    fn base(&self, n: u32) -> Duration {
        self.first.saturating_mul(1u32 << n.min(16)).min(self.cap)
    }
}

/// `too_many_connections` and `configuration_limit_exceeded` (a role's or database's
/// CONNECTION LIMIT): transient on a busy server, so connecting is tried again.
pub fn is_connection_limit(sqlstate: &str) -> bool {
    matches!(sqlstate, "53300" | "53400")
}

/// From 100 ms to 2 s between connection attempts.
const CONNECT_RETRY: Backoff = Backoff {
    first: Duration::from_millis(100),
    cap: Duration::from_secs(2),
    jitter: 0.5,
};

/// The wait before connection attempt `attempt + 1`, or `None` when it would end past `budget`.
pub fn connect_retry_delay(attempt: u32, elapsed: Duration, budget: Duration) -> Option<Duration> {
    let delay = CONNECT_RETRY.delay(attempt);
    (elapsed + delay < budget).then_some(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_limits_are_retried_within_the_budget_only() {
        assert!(is_connection_limit("53300") && is_connection_limit("53400") && !is_connection_limit("28P01"));
        let budget = Duration::from_secs(3);
        assert!(connect_retry_delay(0, Duration::ZERO, budget).is_some());
        assert!(
            connect_retry_delay(5, Duration::from_millis(2_900), budget).is_none(),
            "a wait past the budget is not started"
        );
        let mut elapsed = Duration::ZERO;
        let mut attempts = 0;
        while let Some(delay) = connect_retry_delay(attempts, elapsed, budget) {
            elapsed += delay;
            attempts += 1;
        }
        assert!(elapsed < budget && attempts >= 3, "{attempts} attempts in {elapsed:?}");
    }

    #[test]
    fn delays_grow_are_capped_and_jittered() {
        let backoff = Backoff {
            first: Duration::from_millis(50),
            cap: Duration::from_secs(1),
            jitter: 0.5,
        };
        for n in 0..40 {
            let d = backoff.delay(n).as_millis() as u64;
            let base = (50u64 << n.min(16)).min(1_000);
            assert!(d >= base / 2 && d <= base / 2 * 3, "wait {n}: {d} ms");
        }
        let samples: std::collections::HashSet<u128> = (0..50).map(|_| backoff.delay(4).as_millis()).collect();
        assert!(samples.len() > 1, "jitter varies the delay");
    }
}
