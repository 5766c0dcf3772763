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

pub mod outcome;
pub mod run;
pub mod schedule;

pub use outcome::{FleetReport, Summary, TargetResult, TargetStatus};
pub use run::{run, FleetCommand, FleetRun};
pub use schedule::{Policy, Stop, Tolerance};

use crate::config::target::{parse_manifest, Target, TargetError};
use crate::error::{Classified, ErrorType};

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("cannot read the targets manifest {path}: {reason}; pass --targets FILE, a JSON array of targets")]
    ReadManifest { path: String, reason: String },
    #[error("the targets manifest {path}: {source}")]
    Manifest {
        path: String,
        #[source]
        source: TargetError,
    },
    #[error("the targets manifest {path} has no targets: list at least one {{\"name\", \"databaseUrl\" | \"secretArn\"}}")]
    Empty { path: String },
    #[error("--max-failures={value:?} is not valid: give a number of targets (3) or a percentage of the fleet (10%)")]
    MaxFailures { value: String },
}

impl Classified for FleetError {
    fn error_type(&self) -> ErrorType {
        ErrorType::ConfigError
    }
}

/// The manifest at `path`, every target checked.
pub fn read_manifest(path: &std::path::Path) -> Result<Vec<Target>, FleetError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| FleetError::ReadManifest {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let targets = parse_manifest(&text).map_err(|source| FleetError::Manifest {
        path: shown.clone(),
        source,
    })?;
    if targets.is_empty() {
        return Err(FleetError::Empty { path: shown });
    }
    Ok(targets)
}
