//! The I/O of a fleet: each target through the one run loop (`report::run`) with its own
//! connection settings, environment, advisory lock and report; the schedule says which starts
//! when, and a semaphore holds the number of open databases to `--concurrency` whatever happens.

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{OnceCell, Semaphore};

use crate::aws::secrets::{CredentialsError, SecretCache};
use crate::aws::state::{EnvironmentState, StateStore};
use crate::config::target::{Location, Target};
use crate::config::{Lookup, RunSettings};
use crate::db::connection::{ConnectionSettings, TlsMode};
use crate::engine::budget::Budget;
use crate::engine::command::Command;
use crate::engine::invocation::Invocation;
use crate::error::Classified;
use crate::fleet::outcome::{FleetReport, TargetResult};
use crate::fleet::schedule::{Policy, Schedule};
use crate::migrations::source::MigrationSource;
use crate::report::Report;

/// The commands a fleet runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetCommand {
    Status,
    Plan,
    Migrate,
}

impl FleetCommand {
    fn command(self) -> Command {
        match self {
            Self::Status => Command::Status,
            Self::Plan => Command::Plan { target: None },
            Self::Migrate => Command::Migrate {
                target: None,
                dry_run: false,
            },
        }
    }
}

/// Everything a fleet run needs; the CLI builds it.
pub struct FleetRun<'a> {
    pub command: FleetCommand,
    pub targets: &'a [Target],
    /// For `migrate`. `status` and `plan` change nothing, so they have no canary and no
    /// tolerance: every target is read, whatever fails.
    pub policy: Policy,
    /// The run's settings; a target's `env` replaces its environment.
    pub settings: &'a RunSettings,
    pub source: &'a MigrationSource,
    pub invoker: &'a str,
    /// The process environment (TLS settings for every target).
    pub env: Lookup<'a>,
    /// Write each target's state to SSM after `migrate`, under its environment's prefix.
    pub record: bool,
}

/// Runs the fleet; `finished` hears of each target as it ends (progress on a terminal).
pub async fn run(fleet: &FleetRun<'_>, mut finished: impl FnMut(&TargetResult)) -> FleetReport {
    let policy = match fleet.command {
        FleetCommand::Migrate => fleet.policy,
        FleetCommand::Status | FleetCommand::Plan => Policy {
            canary: Some(0),
            tolerance: None,
            ..fleet.policy
        },
    };
    let waves: Vec<u32> = fleet.targets.iter().map(|t| t.wave).collect();
    let mut schedule = Schedule::new(&waves, policy);
    let open = Semaphore::new(policy.concurrency.max(1));
    let aws = OnceCell::new();
    let mut results: Vec<Option<TargetResult>> = vec![None; fleet.targets.len()];
    let mut running = FuturesUnordered::new();
    loop {
        while let Some(index) = schedule.start() {
            let (open, aws) = (&open, &aws);
            running.push(async move {
                // Held until the target's session is closed: never more databases open than this.
                let _permit = open.acquire().await.expect("the semaphore is never closed");
                (index, run_target(fleet, &fleet.targets[index], aws).await)
            });
        }
        let Some((index, result)) = running.next().await else {
            break;
        };
        schedule.finished(index, result.failed());
        finished(&result);
        results[index] = Some(result);
    }
    let lines = fleet
        .targets
        .iter()
        .zip(results)
        .map(|(target, result)| result.unwrap_or_else(|| TargetResult::not_run(&target.name)))
        .collect();
    FleetReport::new(lines, schedule.stop())
}

/// One target's run, as the single-database command runs it; a secret's password that the
/// database rejects is fetched again once (rotation), as the Lambda does.
async fn run_target(fleet: &FleetRun<'_>, target: &Target, aws: &OnceCell<aws_config::SdkConfig>) -> TargetResult {
    let mut settings = fleet.settings.clone();
    if let Some(env) = &target.env {
        settings.environment = env.clone();
    }
    let command = fleet.command.command();
    let secret = match &target.location {
        Location::SecretArn(arn) => Some(SecretCache::new(aws_sdk_secretsmanager::Client::new(sdk(aws).await), arn.clone())),
        Location::DatabaseUrl(_) => None,
    };
    let mut refreshed = false;
    let (report, error): (Report, Option<Box<dyn Classified>>) = loop {
        let connection = match connection(target, secret.as_ref(), refreshed, fleet.env).await {
            Ok(connection) => connection,
            Err(e) => break (Report::refused(command.action(), &settings.environment, &*e), Some(e)),
        };
        let invocation = Invocation {
            command: command.clone(),
            settings: &settings,
            connection: &connection,
            source: fleet.source,
            invoker: fleet.invoker,
            budget: Budget::of_timeout(settings.run_timeout),
        };
        match crate::report::run(&invocation).await {
            Ok(report) => break (report, None),
            Err(failure) if failure.error.is_authentication_failure() && secret.is_some() && !refreshed => {
                tracing::warn!(target_name = %target.name, "the database rejected the secret's credentials; fetching it again (rotation?)");
                refreshed = true;
            }
            Err(failure) => break (failure.report, Some(Box::new(failure.error))),
        }
    };
    if fleet.record && fleet.command == FleetCommand::Migrate {
        record(target, &settings, &report, aws).await;
    }
    TargetResult::from_report(&target.name, &report, error.as_deref())
}

async fn connection(
    target: &Target,
    secret: Option<&SecretCache>,
    refreshed: bool,
    env: Lookup<'_>,
) -> Result<ConnectionSettings, Box<dyn Classified>> {
    match (&target.location, secret) {
        (Location::SecretArn(arn), Some(cache)) => {
            let fetched = if refreshed { cache.refresh().await } else { cache.get().await };
            // DB_HOST/DB_PORT/DB_NAME point the function's one secret elsewhere; over a fleet
            // they would send every target to the same database, so only TLS settings apply.
            let tls_only = |name: &str| {
                if name.starts_with("DB_SSL") || name == "DB_CA_BUNDLE" {
                    env(name)
                } else {
                    None
                }
            };
            let secret = fetched.map_err(|e| Box::new(CredentialsError::from(e)) as Box<dyn Classified>)?;
            secret.connection(arn, &tls_only).map_err(|e| Box::new(e) as Box<dyn Classified>)
        }
        _ => {
            let parsed = target.connection().expect("a databaseUrl target has connection settings");
            let mut settings = parsed.map_err(|e| Box::new(e) as Box<dyn Classified>)?;
            settings
                .apply_tls_env(env, TlsMode::Prefer)
                .map_err(|e| Box::new(e) as Box<dyn Classified>)?;
            Ok(settings)
        }
    }
}

/// The target's state in SSM under its environment's prefix, as `migrate --record` writes an
/// environment's; a failure is a warning: the ledger is the truth, and the next run rewrites it.
async fn record(target: &Target, settings: &RunSettings, report: &Report, aws: &OnceCell<aws_config::SdkConfig>) {
    let store = StateStore::new(
        aws_sdk_ssm::Client::new(sdk(aws).await),
        &target.state_prefix(&settings.state_prefix()),
    );
    let state = EnvironmentState::from_report(report, "cli", time::OffsetDateTime::now_utc());
    if let Err(e) = store.record(state).await {
        tracing::warn!(target_name = %target.name, error = %e, "the target's migration state was not recorded; its ledger is unaffected");
    }
}

/// One AWS configuration for the whole fleet, loaded only when a target needs it.
async fn sdk(aws: &OnceCell<aws_config::SdkConfig>) -> &aws_config::SdkConfig {
    aws.get_or_init(|| crate::aws::sdk_config(None)).await
}
