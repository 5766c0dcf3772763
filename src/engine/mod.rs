//! The run: one session per invocation, the planner, the applier, one function per command.

pub mod plan;
pub mod rollback;
pub mod runner;
