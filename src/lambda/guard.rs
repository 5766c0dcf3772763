//! Spawned work awaited under the invocation deadline: a panic becomes a value, and work still
//! running shortly after the deadline is abandoned, so the function always answers in time.

use std::time::{Duration, Instant};

/// Time a run gets past its deadline to wind down (roll back, unlock) before it is abandoned.
const WIND_DOWN: Duration = Duration::from_secs(2);

pub enum Guarded<T> {
    Done(T),
    Panicked(String),
    Abandoned,
}

/// Awaits spawned work, turning a panic into a value and giving up shortly after `deadline`
/// (aborting the task drops its connection, so the server rolls back and frees the lock).
pub async fn guard<T>(work: tokio::task::JoinHandle<T>, deadline: Instant) -> Guarded<T> {
    let abort = work.abort_handle();
    match tokio::time::timeout_at((deadline + WIND_DOWN).into(), work).await {
        Ok(Ok(value)) => Guarded::Done(value),
        Ok(Err(e)) if e.is_panic() => {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Guarded::Panicked(message)
        }
        Ok(Err(_)) => Guarded::Panicked("task cancelled".into()),
        Err(_) => {
            abort.abort();
            Guarded::Abandoned
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_a_value_and_work_past_the_deadline_is_abandoned() {
        let panicked = guard(tokio::spawn(async { panic!("boom") }), Instant::now() + Duration::from_secs(5)).await;
        assert!(matches!(panicked, Guarded::<()>::Panicked(m) if m == "boom"));
        let started = Instant::now();
        let late = guard(
            tokio::spawn(tokio::time::sleep(Duration::from_secs(60))),
            Instant::now() + Duration::from_millis(10),
        )
        .await;
        assert!(matches!(late, Guarded::Abandoned));
        assert!(started.elapsed() < WIND_DOWN + Duration::from_secs(1));
        assert!(matches!(guard(tokio::spawn(async { 7 }), Instant::now()).await, Guarded::Done(7)));
    }
}
