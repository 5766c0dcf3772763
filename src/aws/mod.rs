//! AWS services the tool talks to: Secrets Manager for credentials, SSM Parameter Store for state.

pub mod envs;
pub mod secrets;
pub mod state;
