//! The one time budget of a run: made once at its edge (the Lambda from the invocation's
//! deadline less its margin, the CLI from `--timeout`, or none) and handed down; each layer takes
//! what it needs from it by name. Every reserve kept back before the deadline, and every grace
//! allowed past it, is here with why it exists.
//!
//! Before the deadline the server stops the work (`statement_timeout` re-armed with what is
//! left, the deadline checked before each `COMMIT`); the graces past it exist for a connection
//! that stopped answering, which never delivers that stop.

use std::time::{Duration, Instant};

/// The Lambda's work stops this long before the invocation deadline unless
/// `DEADLINE_MARGIN_MS` says otherwise: the time to write the SSM state, emit the metrics and
/// return the report to Lambda after the run.
pub const LAMBDA_MARGIN: Duration = Duration::from_secs(5);

/// Kept back from a custom resource's work so its answer can still be PUT to the ResponseURL:
/// an unanswered CloudFormation waits an hour. Also the whole budget of an answer when the
/// invocation's deadline was unusable (nothing runs then, but CloudFormation is told why).
pub const CFN_RESPONSE: Duration = Duration::from_secs(3);

/// How long past its deadline the Lambda's guard waits for the run to wind down (roll back,
/// unlock) before it abandons it, so the function always answers before Lambda kills it.
pub const WIND_DOWN: Duration = Duration::from_secs(2);

/// How long past its deadline the engine lets a run go before abandoning it: only a connection
/// that stopped answering gets there. Dropping it drops the connection, and the server rolls
/// back and frees the lock when it notices. Longer than [`WIND_DOWN`]: under the Lambda the guard
/// gives up first; this bounds the CLI, which has no guard.
pub const ABANDON_AFTER: Duration = Duration::from_secs(10);

/// How far past the deadline a session reading the ledger back (after its connection failed
/// with a flight in the air) waits for the migration lock: the run's own backend holds it until
/// the server notices the connection is gone.
pub const READ_BACK_GRACE: Duration = Duration::from_secs(5);

/// The least a connection attempt gets, even at the deadline: it then fails by its own timeout,
/// saying so, rather than by a zero one.
pub const CONNECT_FLOOR: Duration = Duration::from_millis(100);

/// The part of the Lambda's margin a custom resource's answer may still use past the work's
/// deadline: the other half returns the result to Lambda in time.
pub fn answer_grace(margin: Duration) -> Duration {
    margin / 2
}

/// Until when a run may work; no deadline at all for a CLI run without `--timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Budget {
    deadline: Option<Instant>,
}

impl Budget {
    /// No deadline: only the operator's own timeouts bound the run.
    pub const UNBOUNDED: Budget = Budget { deadline: None };

    pub fn until(deadline: Instant) -> Self {
        Self { deadline: Some(deadline) }
    }

    /// `time` from now (`--timeout`, or what the Runtime API says is left).
    pub fn lasting(time: Duration) -> Self {
        Self::lasting_from(time, Instant::now())
    }

    fn lasting_from(time: Duration, now: Instant) -> Self {
        Self::until(now + time)
    }

    /// The CLI's: `--timeout` (or `RUN_TIMEOUT_SECONDS`) if given.
    pub fn of_timeout(timeout: Option<Duration>) -> Self {
        timeout.map_or(Self::UNBOUNDED, Self::lasting)
    }

    pub fn deadline(self) -> Option<Instant> {
        self.deadline
    }

    /// What is left now; `None` without a deadline.
    pub fn left(self) -> Option<Duration> {
        self.left_at(Instant::now())
    }

    fn left_at(self, now: Instant) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(now))
    }

    /// Whether there is a deadline and it has passed.
    pub fn expired(self) -> bool {
        self.left().is_some_and(|left| left.is_zero())
    }

    /// The budget for the work once `kept` is set aside before the deadline (one of the reserves
    /// above). A budget shorter than the reserve is spent: its work ends now, not in the past.
    pub fn reserve(self, kept: Duration) -> Budget {
        self.reserve_at(kept, Instant::now())
    }

    fn reserve_at(self, kept: Duration, now: Instant) -> Budget {
        Budget {
            deadline: self.deadline.map(|d| d.checked_sub(kept).unwrap_or(d).max(now)),
        }
    }

    /// When work still running `grace` past the deadline is abandoned; `None` without a deadline.
    pub fn abandon_at(self, grace: Duration) -> Option<Instant> {
        self.deadline.map(|d| d + grace)
    }

    /// `bound` (an operator's timeout) cut to what is left, never below [`CONNECT_FLOOR`].
    pub fn bound_connect(self, bound: Duration) -> Duration {
        self.left().map_or(bound, |left| bound.min(left.max(CONNECT_FLOOR)))
    }
}

impl From<Option<Instant>> for Budget {
    fn from(deadline: Option<Instant>) -> Self {
        Self { deadline }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_reserve_is_taken_from_the_end_of_the_budget() {
        let now = Instant::now();
        let budget = Budget::lasting_from(S(60), now);
        let work = budget.reserve_at(CFN_RESPONSE, now);
        assert_eq!(work.left_at(now), Some(S(57)));
        assert_eq!(budget.left_at(now), Some(S(60)), "the budget it came from is unchanged");
        // Reserves add up, each layer taking its own.
        let answered = budget.reserve_at(LAMBDA_MARGIN, now).reserve_at(CFN_RESPONSE, now);
        assert_eq!(answered.left_at(now), Some(S(52)));
        assert_eq!(budget.reserve_at(Duration::ZERO, now), budget);
    }

    #[test]
    fn a_budget_shorter_than_its_reserve_is_spent_now_not_in_the_past() {
        let now = Instant::now();
        for total in [0, 1, 2, 3] {
            let work = Budget::lasting_from(S(total), now).reserve_at(CFN_RESPONSE, now);
            assert_eq!(work, Budget::until(now), "{total} s less a 3 s reserve");
            assert_eq!(work.left_at(now), Some(Duration::ZERO));
        }
        let later = now + S(1);
        let work = Budget::lasting_from(S(2), now).reserve_at(CFN_RESPONSE, later);
        assert_eq!(work.deadline(), Some(later), "taken later, it ends at that moment");
    }

    #[test]
    fn a_passed_deadline_leaves_nothing_and_is_expired() {
        let budget = Budget::until(Instant::now() - Duration::from_millis(5));
        assert_eq!(budget.left(), Some(Duration::ZERO));
        assert!(budget.expired());
        assert!(budget.reserve(WIND_DOWN).expired());
        assert_eq!(budget.bound_connect(S(30)), CONNECT_FLOOR, "a connection still gets its floor");
        assert!(!Budget::lasting(S(60)).expired());
    }

    #[test]
    fn no_deadline_has_no_reserve_no_grace_and_never_expires() {
        let none = Budget::of_timeout(None);
        assert_eq!(none, Budget::UNBOUNDED);
        assert_eq!(none, Budget::default());
        assert_eq!(none.left(), None);
        assert!(!none.expired());
        assert_eq!(none.reserve(CFN_RESPONSE), Budget::UNBOUNDED);
        assert_eq!(none.abandon_at(ABANDON_AFTER), None);
        assert_eq!(none.bound_connect(S(30)), S(30), "the operator's timeout stands");
    }

    #[test]
    fn graces_reach_past_the_deadline_and_bounds_are_cut_to_what_is_left() {
        let now = Instant::now();
        let budget = Budget::until(now + S(20));
        assert_eq!(budget.abandon_at(WIND_DOWN), Some(now + S(22)));
        assert_eq!(budget.abandon_at(ABANDON_AFTER), Some(now + S(30)));
        assert!(WIND_DOWN < ABANDON_AFTER, "under the Lambda the guard gives up before the engine");
        let cli = Budget::of_timeout(Some(S(90)));
        assert!(cli.left().is_some_and(|left| left <= S(90) && left > S(89)));
        assert!(budget.bound_connect(S(5)) == S(5));
        assert!(budget.bound_connect(S(60)) <= S(20));
        assert_eq!(answer_grace(LAMBDA_MARGIN), Duration::from_millis(2500));
    }
}
