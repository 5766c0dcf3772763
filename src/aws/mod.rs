//! AWS services the tool talks to: Secrets Manager for credentials, SSM Parameter Store for state.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;

pub mod envs;
pub mod secrets;
pub mod state;

/// One call to SSM or Secrets Manager, its retries included: an endpoint that accepts the
/// connection and never answers (a VPC endpoint's security group, a proxy) would otherwise hold
/// the run until the Lambda's deadline, and the CLI for ever.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// One attempt of that call, so a retry still fits in `OPERATION_TIMEOUT`.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);

/// The SDK configuration every client of this crate is built from (the default credential and
/// region chain, through `profile` when named), with the timeouts above.
pub async fn sdk_config(profile: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .operation_timeout(OPERATION_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .build(),
    );
    if let Some(name) = profile {
        loader = loader.profile_name(name);
    }
    loader.load().await
}
