//! The invocation deadline as the Runtime API states it (`Lambda-Runtime-Deadline-Ms`), read
//! into how long the function has. AWS sends epoch milliseconds; cargo-lambda's emulator (1.9)
//! sends the function's timeout, a duration, in the same header. Taken as epoch milliseconds that
//! duration is a moment in January 1970, and every run would stop before it started.

use std::time::Duration;

use crate::error::{Classified, ErrorType};

/// Below this (September 2001) a value cannot be the epoch deadline of a live invocation, and
/// above any timeout Lambda allows (15 minutes): the two conventions cannot be confused.
const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;

/// How long the invocation has, and by which convention the header said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// Epoch milliseconds, as AWS sends them: this much is left.
    Epoch(Duration),
    /// A duration, as cargo-lambda's emulator sends it: counted from receipt.
    Emulated(Duration),
}

impl Deadline {
    pub fn left(self) -> Duration {
        match self {
            Self::Epoch(left) | Self::Emulated(left) => left,
        }
    }
}

/// A deadline nothing can run under: the invocation fails before anything starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadlineError {
    #[error(
        "the Lambda Runtime API sent no invocation deadline (Lambda-Runtime-Deadline-Ms is 0): nothing ran; \
         check the runtime or emulator in front of the function, which must send the deadline in epoch milliseconds"
    )]
    Missing,
    #[error(
        "the invocation deadline (Lambda-Runtime-Deadline-Ms {deadline_ms}) had passed {late_ms} ms before the function \
         received the event: nothing ran; invoke again, and check the clock of the machine running the function"
    )]
    Passed { deadline_ms: u64, late_ms: u64 },
}

impl Classified for DeadlineError {
    fn error_type(&self) -> ErrorType {
        ErrorType::InvalidDeadline
    }
}

/// Reads the header's value at `now_ms` (epoch milliseconds).
pub fn read(deadline_ms: u64, now_ms: u64) -> Result<Deadline, DeadlineError> {
    if deadline_ms == 0 {
        return Err(DeadlineError::Missing);
    }
    if deadline_ms < EPOCH_MS_FLOOR {
        return Ok(Deadline::Emulated(Duration::from_millis(deadline_ms)));
    }
    match deadline_ms.checked_sub(now_ms) {
        Some(left) if left > 0 => Ok(Deadline::Epoch(Duration::from_millis(left))),
        _ => Err(DeadlineError::Passed {
            deadline_ms,
            late_ms: now_ms - deadline_ms,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_796_500_000_000;

    #[test]
    fn epoch_milliseconds_are_the_time_left() {
        assert_eq!(read(NOW + 900_000, NOW), Ok(Deadline::Epoch(Duration::from_secs(900))));
    }

    #[test]
    fn cargo_lambdas_duration_is_counted_from_receipt() {
        // What cargo-lambda 1.9.2's `watch` sends, whatever its --timeout.
        assert_eq!(read(600_000, NOW), Ok(Deadline::Emulated(Duration::from_secs(600))));
        assert_eq!(read(600_000, NOW).unwrap().left(), Duration::from_secs(600));
    }

    #[test]
    fn a_missing_or_past_deadline_is_an_error_of_its_own() {
        assert_eq!(read(0, NOW), Err(DeadlineError::Missing));
        let past = read(NOW - 1_500, NOW).unwrap_err();
        assert_eq!(
            past,
            DeadlineError::Passed {
                deadline_ms: NOW - 1_500,
                late_ms: 1_500
            }
        );
        assert!(past.to_string().contains("1500 ms"), "{past}");
        assert_eq!(read(NOW, NOW).unwrap_err().error_type(), ErrorType::InvalidDeadline);
        assert_eq!(ErrorType::InvalidDeadline.as_str(), "InvalidDeadline");
    }
}
