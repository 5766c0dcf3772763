//! `wishlist-migrate fleet status|plan|migrate`: one command over many databases, each through
//! the same run loop (`report::run`) a single database uses, canary first, a bounded number at
//! once, stopping when failures pass a tolerance.
//!
//! A layer of its own above `aws/` rather than a command under `engine/commands/`: an engine
//! command runs inside one session on one database, while a fleet is many runs of the whole loop
//! (each with its session, its lock and its report), fetches targets' credentials from Secrets
//! Manager and writes each target's SSM state, all of which live above the engine. It sits
//! beside `lambda/`, which runs one such target per invocation; neither imports the other.
//!
//! `schedule` (the order, canary, concurrency, tolerance and exit code) and `outcome` (the
//! per-target lines, summary and output) are pure; `run` is the I/O.

pub mod manifest;
pub mod outcome;
pub mod run;
pub mod schedule;

pub use manifest::{read_manifest, FleetError};
pub use outcome::{FleetReport, Summary, TargetResult, TargetStatus};
pub use run::{run, FleetCommand, FleetRun};
pub use schedule::{Policy, Stop, Tolerance};
