//! Spawned work awaited under the invocation's budget: a panic becomes a value, and work still
//! running [`WIND_DOWN`] after the deadline is abandoned, so the function always answers in time.

use crate::engine::budget::{Budget, WIND_DOWN};

pub enum Guarded<T> {
    Done(T),
    Panicked(String),
    Abandoned,
}

/// Awaits spawned work, turning a panic into a value and giving up shortly after the budget's
/// deadline (aborting the task drops its connection, so the server rolls back and frees the lock).
pub async fn guard<T>(work: tokio::task::JoinHandle<T>, budget: Budget) -> Guarded<T> {
    let abort = work.abort_handle();
    let joined = match budget.abandon_at(WIND_DOWN) {
        Some(at) => match tokio::time::timeout_at(at.into(), work).await {
            Ok(joined) => joined,
            Err(_) => {
                abort.abort();
                return Guarded::Abandoned;
            }
        },
        None => work.await,
    };
    match joined {
        Ok(value) => Guarded::Done(value),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Guarded::Panicked(message)
        }
        Err(_) => Guarded::Panicked("task cancelled".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn a_panic_is_a_value_and_work_past_the_deadline_is_abandoned() {
        let panicked = guard(tokio::spawn(async { panic!("boom") }), Budget::lasting(Duration::from_secs(5))).await;
        assert!(matches!(panicked, Guarded::<()>::Panicked(m) if m == "boom"));
        let started = Instant::now();
        let late = guard(
            tokio::spawn(tokio::time::sleep(Duration::from_secs(60))),
            Budget::lasting(Duration::from_millis(10)),
        )
        .await;
        assert!(matches!(late, Guarded::Abandoned));
        assert!(started.elapsed() < WIND_DOWN + Duration::from_secs(1));
        assert!(matches!(
            guard(tokio::spawn(async { 7 }), Budget::lasting(Duration::ZERO)).await,
            Guarded::Done(7)
        ));
    }
}
