//! The run: one [`Session`](session::Session) per invocation, the pure planners, the applier
//! with its one retry policy, and one file per command, each returning a typed outcome.

pub mod applier;
pub mod autocommit;
pub mod budget;
pub mod check;
pub mod command;
pub mod commands;
pub mod error;
pub mod examine;
pub mod invocation;
pub mod model;
pub mod online_add;
pub mod online_change;
pub mod online_refused;
pub mod online_step;
pub mod outcome;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod replay;
pub mod resume;
pub mod retry;
pub mod rollback_plan;
pub mod run;
pub mod session;
pub mod upgrade;

pub use command::{Action, Command};
pub use error::Error;
pub use invocation::Invocation;
pub use outcome::RunOutcome;
pub use run::run;
