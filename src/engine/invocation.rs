//! Everything one run needs; the CLI and the Lambda each build an [`Invocation`] and call
//! [`crate::engine::run`].

use std::time::{Duration, Instant};

use crate::config::RunSettings;
use crate::db::connection::ConnectionSettings;
use crate::engine::command::Command;
use crate::migrations::source::MigrationSource;

#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    pub command: Command,
    pub settings: &'a RunSettings,
    pub connection: &'a ConnectionSettings,
    pub source: &'a MigrationSource,
    /// Who runs it, recorded in the history table (e.g. `cli:alice`, `lambda:fn:7`).
    pub invoker: &'a str,
    /// Work stops before this instant (the Lambda's deadline minus a margin).
    pub deadline: Option<Instant>,
}

impl Invocation<'_> {
    /// The time left before the deadline, if there is one.
    pub fn time_left(&self) -> Option<Duration> {
        time_left(self.deadline)
    }
}

pub fn time_left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// Whether a deadline was set and has passed.
pub fn expired(deadline: Option<Instant>) -> bool {
    time_left(deadline).is_some_and(|left| left.is_zero())
}
