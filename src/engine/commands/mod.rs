//! One file per command. Each takes the run's [`Session`](crate::engine::session::Session) and
//! returns its typed outcome; none writes a report.

pub mod check;
pub mod check_rollback;
pub mod drift;
pub mod history;
pub mod lint;
pub mod migrate;
pub mod require;
pub mod rollback;
pub mod status;
pub mod verify;
