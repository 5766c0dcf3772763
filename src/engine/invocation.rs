//! Everything one run needs; the CLI and the Lambda each build an [`Invocation`] and call
//! [`crate::engine::run`].

use std::time::{Duration, Instant};

use crate::config::RunSettings;
use crate::db::connection::ConnectionSettings;
use crate::engine::budget::Budget;
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
    /// Until when it may work: made once at the edge (`engine/budget.rs`).
    pub budget: Budget,
}

impl Invocation<'_> {
    /// The time left before the deadline, if there is one.
    pub fn time_left(&self) -> Option<Duration> {
        self.budget.left()
    }
}

/// [`Budget::left`] of a budget's deadline, for the applier, which keeps the instant.
pub fn time_left(deadline: Option<Instant>) -> Option<Duration> {
    Budget::from(deadline).left()
}

/// Whether a deadline was set and has passed.
pub fn expired(deadline: Option<Instant>) -> bool {
    Budget::from(deadline).expired()
}
