//! How long to wait before polling or trying again: exponential, capped, and jittered so that
//! runners waiting on the same thing do not retry in step. The lock poll and the `lock_timeout`
//! retry both use it.

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

#[cfg(test)]
mod tests {
    use super::*;

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
