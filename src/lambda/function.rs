//! The Lambda function: turns an invocation into a run of the shared loop, answers
//! CloudFormation on every path, records each migrate in SSM, and maps errors to stable
//! `errorType`s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::aws::secrets::{CredentialsError, SecretCache};
use crate::aws::state::{EnvironmentState, StateStore};
use crate::config::target::Target;
use crate::config::{ConfigError, RunSettings};
use crate::db::connection::{ConnectionSettings, TlsMode};
use crate::engine::budget::{answer_grace, Budget, CFN_RESPONSE, LAMBDA_MARGIN};
use crate::engine::command::Command;
use crate::engine::error::Error;
use crate::engine::invocation::Invocation;
use crate::error::{Classified, ErrorType};
use crate::lambda::cfn::{
    self, data, in_progress_reason, reason_of, success_reason, Answer, CfnRequest, Envelope, Malformed, RequestType, ResponseUrlPolicy,
};
use crate::lambda::delivery;

mod custom_resource;
use crate::lambda::deadline::{self, Deadline, DeadlineError};
use crate::lambda::error::InvocationError;
use crate::lambda::guard::{guard, Guarded};
use crate::lambda::metrics::{self, Invoker};
use crate::lambda::request::{self, Request, RequestError};
use crate::lambda::target::{self, TargetSecrets};
use crate::migrations::source::MigrationSource;
use crate::report::{Failure, Report, Status};

/// The errorType of an invocation whose handler panicked.
const PANICKED: &str = "InternalError";

enum Credentials {
    Url(Box<ConnectionSettings>),
    Secret(SecretCache),
}

/// What the function knows after init; a configuration error is kept and reported per
/// invocation, because a custom resource must still be answered.
struct Setup {
    settings: RunSettings,
    source: MigrationSource,
    credentials: Credentials,
    state: StateStore,
    /// The secrets of the fleet targets requests name (`"target"`).
    targets: TargetSecrets,
}

pub struct Function {
    setup: Result<Setup, ConfigError>,
    env: HashMap<String, String>,
    environment: String,
    margin: Duration,
    version: String,
    invoker: String,
    http: reqwest::Client,
    /// Where a custom resource answer may be PUT (`CFN_RESPONSE_URL_ALLOW`).
    response_urls: ResponseUrlPolicy,
    /// `DB_ALLOW_PLAINTEXT=true`: lets `DB_SSLMODE` be `disable` or `prefer` (local stacks only).
    allow_plaintext: bool,
    /// Custom resource answers already given by this container, by RequestId.
    answered: Mutex<HashMap<String, Answer>>,
}

impl Function {
    pub async fn from_env() -> Self {
        // Read once at init: the environment of a Lambda container never changes.
        let env: HashMap<String, String> = std::env::vars().filter(|(_, v)| !v.is_empty()).collect();
        let lookup = |k: &str| env.get(k).cloned();
        let aws = crate::aws::sdk_config(None).await;
        let setup = Self::setup(&lookup, &aws);
        let environment = match &setup {
            Ok(s) => s.settings.environment.clone(),
            Err(_) => lookup("APP_ENV").unwrap_or_else(|| "dev".into()),
        };
        let margin = lookup("DEADLINE_MARGIN_MS")
            .and_then(|v| v.parse().ok())
            .map_or(LAMBDA_MARGIN, Duration::from_millis);
        let version = lookup("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_else(|| "$LATEST".into());
        let invoker = format!("lambda:{}:{version}", lookup("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default());
        if let Err(e) = &setup {
            tracing::error!(error = %e, "configuration error; every invocation will report it");
        }
        Self {
            setup,
            environment,
            margin,
            version,
            invoker,
            response_urls: ResponseUrlPolicy::from_allow_list(lookup("CFN_RESPONSE_URL_ALLOW").as_deref()),
            allow_plaintext: lookup("DB_ALLOW_PLAINTEXT").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            env,
            http: delivery::response_client(),
            answered: Mutex::new(HashMap::new()),
        }
    }

    fn setup(lookup: &dyn Fn(&str) -> Option<String>, aws: &aws_config::SdkConfig) -> Result<Setup, ConfigError> {
        let settings = RunSettings::from_env(lookup)?;
        let credentials = match (lookup("DB_SECRET_ID"), lookup("DATABASE_URL")) {
            (Some(id), _) => Credentials::Secret(SecretCache::new(aws_sdk_secretsmanager::Client::new(aws), id)),
            (None, Some(_)) => Credentials::Url(Box::new(ConnectionSettings::from_env(lookup, TlsMode::Require)?)),
            (None, None) => {
                return Err(ConfigError::Unusable {
                    variable: "DB_SECRET_ID",
                    reason: "not set: name the Secrets Manager secret holding the database credentials (or DATABASE_URL for local runs)"
                        .into(),
                })
            }
        };
        Ok(Setup {
            source: MigrationSource::from(settings.migrations_dir.as_deref()),
            state: StateStore::new(aws_sdk_ssm::Client::new(aws), &settings.state_prefix()),
            settings,
            credentials,
            targets: TargetSecrets::new(aws_sdk_secretsmanager::Client::new(aws)),
        })
    }

    fn lookup(&self, k: &str) -> Option<String> {
        self.env.get(k).cloned()
    }

    pub async fn handle(self: Arc<Self>, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
        let (payload, context) = event.into_parts();
        let budget = self.budget(context.deadline);
        match request::parse(&payload) {
            Err(e) => {
                let error = InvocationError::from(e);
                metrics::emit_failure(&self.environment, None, error.error_type().as_str());
                Err(error.into())
            }
            Ok(Request::Direct(command)) => {
                let action = command.action();
                let online = request::wants_online(&payload);
                // `parse` has already refused a malformed target.
                let fleet_target = request::target_of(&payload).ok().flatten();
                let budget = match budget {
                    Ok(budget) => budget,
                    Err(e) => {
                        let error = InvocationError::from(e);
                        metrics::emit_failure(&self.environment, Some(action), error.error_type().as_str());
                        return Err(error.into());
                    }
                };
                let this = self.clone();
                let work = tokio::spawn(async move { this.direct(command, budget, online, fleet_target).await });
                // A run emits its own metrics; a panic or an abandoned run leaves no report to emit.
                match guard(work, budget).await {
                    Guarded::Done(result) => result.map_err(Diagnostic::from),
                    Guarded::Panicked(message) => {
                        metrics::emit_failure(&self.environment, Some(action), PANICKED);
                        Err(Diagnostic {
                            error_type: PANICKED.into(),
                            error_message: format!("the handler panicked: {message}"),
                        })
                    }
                    Guarded::Abandoned => {
                        let error = InvocationError::from(Error::Deadline { during: "running" });
                        metrics::emit_failure(&self.environment, Some(action), error.error_type().as_str());
                        Err(error.into())
                    }
                }
            }
            Ok(Request::CloudFormation(event)) => match CfnRequest::from_value(&event) {
                Ok(cfn) => {
                    self.check_response_url(&cfn.envelope)?;
                    let budget = match (budget, cfn.request_type) {
                        (Ok(budget), _) => budget,
                        // A Delete runs nothing: answered as always, in the time kept for an answer.
                        (Err(_), RequestType::Delete) => Budget::lasting(CFN_RESPONSE),
                        // Nothing can run, but CloudFormation is still told why instead of waiting an hour.
                        (Err(e), _) => {
                            let error = InvocationError::from(e);
                            metrics::emit_failure(&self.environment, Some(crate::engine::Action::Migrate), error.error_type().as_str());
                            let physical_id = cfn
                                .envelope
                                .physical_resource_id
                                .clone()
                                .unwrap_or_else(|| self.physical_resource_id());
                            let answer = Answer::failed(reason_of(&error));
                            return self
                                .respond(&cfn.envelope, physical_id, &answer, Budget::lasting(CFN_RESPONSE))
                                .await;
                        }
                    };
                    // Boxed: the custom resource path nests deep enough to strain rustc's layout queries.
                    Box::pin(self.cloudformation(cfn, budget)).await
                }
                // Nothing runs: CloudFormation is told what is wrong instead of waiting an hour.
                Err(Malformed::Answerable { envelope, reason }) => {
                    self.check_response_url(&envelope)?;
                    tracing::warn!(%reason, "malformed CloudFormation request; answering FAILED");
                    let physical_id = envelope.physical_resource_id.clone().unwrap_or_else(|| self.physical_resource_id());
                    let budget = budget.unwrap_or_else(|_| Budget::lasting(CFN_RESPONSE));
                    self.respond(&envelope, physical_id, &Answer::failed(reason), budget).await
                }
                Err(Malformed::Unanswerable(e)) => Err(InvocationError::from(e).into()),
            },
        }
    }

    /// The invocation's budget, made once here and handed down: the invocation deadline less the
    /// margin. cargo-lambda's emulator sends a duration where AWS sends epoch milliseconds
    /// (`deadline::read`).
    fn budget(&self, header_ms: u64) -> Result<Budget, DeadlineError> {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let read = deadline::read(header_ms, now_ms);
        if let Ok(Deadline::Emulated(left)) = read {
            tracing::warn!(
                deadline_ms = header_ms,
                "Lambda-Runtime-Deadline-Ms is a duration, not epoch milliseconds (cargo-lambda's emulator sends it so): \
                 the invocation's deadline is taken as {} s from now",
                left.as_secs()
            );
        }
        Ok(Budget::lasting(read?.left()).reserve(self.margin))
    }

    /// Refuses, before anything runs, a ResponseURL the policy does not allow; the log names
    /// the host only (the query string holds a signature).
    fn check_response_url(&self, envelope: &Envelope) -> Result<(), Diagnostic> {
        match self.response_urls.check(&envelope.response_url) {
            Ok(_) => Ok(()),
            Err(reason) => {
                let host = reqwest::Url::parse(&envelope.response_url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_default();
                tracing::error!(%host, %reason, request_id = %envelope.request_id, "ResponseURL refused; nothing runs and no answer is sent");
                Err(InvocationError::from(RequestError::ResponseUrl { host, reason }).into())
            }
        }
    }

    /// `fleet_target`: the request's `"target"`, the database to run against instead of the
    /// function's own; its name is in the report and leads the error's message.
    async fn direct(&self, command: Command, budget: Budget, online: bool, fleet_target: Option<Target>) -> Result<Value, InvocationError> {
        // Every run that can change the schema publishes the environment's (or the target's) state.
        let records = command.changes_schema();
        let mut result = match self.run_with(command, budget, online, fleet_target.as_ref()).await {
            // Not a failure: the release workflow invokes the function again while it answers so.
            Err(failure) if failure.report.status == Status::InProgress => Ok(in_progress(failure.report)),
            other => other,
        };
        let report = match &mut result {
            Ok(report) => report,
            Err(failure) => &mut failure.report,
        };
        report.target_name = fleet_target.as_ref().map(|t| t.name.clone());
        if records {
            self.record(report, None, fleet_target.as_ref()).await;
        }
        metrics::emit(report_of(&result), Invoker::Direct);
        match (result, fleet_target) {
            (Ok(report), _) => Ok(serde_json::to_value(&report).expect("report serializes")),
            (Err(failure), None) => Err(failure.error),
            (Err(failure), Some(t)) => Err(InvocationError::Target {
                name: t.name,
                source: Box::new(failure.error),
            }),
        }
    }

    /// One run of the shared loop; a rejected password is retried once with a refetched
    /// secret, since rotation changes it under a warm container.
    async fn run(&self, command: Command, budget: Budget) -> Result<Report, Box<Failure<InvocationError>>> {
        self.run_with(command, budget, false, None).await
    }

    /// `online`: the request's `"online": true`, on top of the function's `ONLINE_MIGRATIONS`;
    /// `fleet_target`: the database to run against instead of the function's own.
    async fn run_with(
        &self,
        command: Command,
        budget: Budget,
        online: bool,
        fleet_target: Option<&Target>,
    ) -> Result<Report, Box<Failure<InvocationError>>> {
        let environment = fleet_target.and_then(|t| t.env.clone()).unwrap_or_else(|| self.environment.clone());
        let refused = |error: InvocationError| {
            Box::new(Failure {
                report: Report::refused(command.action(), &environment, &error),
                error,
            })
        };
        let setup = match &self.setup {
            Ok(setup) => setup,
            Err(e) => return Err(refused(e.clone().into())),
        };
        let lookup = |k: &str| self.lookup(k);
        let mut refreshed = false;
        loop {
            let connection = match (fleet_target, &setup.credentials) {
                (Some(t), _) => setup.targets.connection(t, &lookup, refreshed).await,
                (None, Credentials::Url(c)) => Ok(c.as_ref().clone()),
                (None, Credentials::Secret(cache)) => {
                    let secret = if refreshed { cache.refresh().await } else { cache.get().await };
                    secret
                        .map_err(CredentialsError::from)
                        .and_then(|s| s.connection(&cache.id, &lookup))
                }
            };
            let connection = match connection {
                Ok(c) => c,
                Err(e) => return Err(refused(e.into())),
            };
            if matches!(connection.tls, TlsMode::Disable | TlsMode::Prefer) && !self.allow_plaintext {
                return Err(refused(
                    ConfigError::Unusable {
                        variable: "DB_SSLMODE",
                        reason: "disable and prefer can send credentials and data unencrypted: use verify-full (with DB_CA_BUNDLE=embedded for RDS) or require; for a local stack only, set DB_ALLOW_PLAINTEXT=true".into(),
                    }
                    .into(),
                ));
            }
            let mut settings = std::borrow::Cow::Borrowed(&setup.settings);
            if let Some(t) = fleet_target {
                settings = std::borrow::Cow::Owned(target::settings_for(&setup.settings, t));
            }
            if online {
                settings.to_mut().online = true;
            }
            let invocation = Invocation {
                command: command.clone(),
                settings: &settings,
                connection: &connection,
                source: &setup.source,
                invoker: &self.invoker,
                budget,
            };
            let mut result = crate::report::run(&invocation).await;
            // The durations compared are the environments' own; a fleet's targets are not among them.
            if let (Ok(report), Command::Plan { .. } | Command::Migrate { .. }, None) = (&mut result, &command, fleet_target) {
                crate::aws::envs::warn_about_durations(setup.state.client(), &setup.settings.state_prefix(), report).await;
            }
            let rejected = matches!(&result, Err(f) if f.error.is_authentication_failure());
            let secret = match fleet_target {
                Some(t) => matches!(t.location, crate::config::target::Location::SecretArn(_)),
                None => matches!(setup.credentials, Credentials::Secret(_)),
            };
            if rejected && !refreshed && secret {
                tracing::warn!("database rejected the credentials; fetching the secret again (rotation?)");
                refreshed = true;
                continue;
            }
            return result.map_err(|f| {
                Box::new(Failure {
                    report: f.report,
                    error: f.error.into(),
                })
            });
        }
    }

    /// Writes the SSM state; a failure is a warning, never the run's failure: the ledger is the
    /// truth and the next run rewrites the state.
    /// A fleet target's state is its own (`target::settings_for`), never the environment's.
    async fn record(&self, report: &mut Report, cfn_request_id: Option<&str>, fleet_target: Option<&Target>) {
        let Ok(setup) = &self.setup else { return };
        let mut state = EnvironmentState::from_report(report, &self.version, time::OffsetDateTime::now_utc());
        state.cfn_request_id = cfn_request_id.map(str::to_string);
        let target_store = fleet_target.map(|t| {
            let prefix = target::settings_for(&setup.settings, t).state_prefix();
            StateStore::new(setup.state.client().clone(), &prefix)
        });
        if let Err(e) = target_store.as_ref().unwrap_or(&setup.state).record(state).await {
            tracing::warn!(error = %e, "migration state not recorded");
            report.warnings.push(format!(
                "{e}; the database ledger is unaffected and the next run rewrites the state"
            ));
        }
    }
}

/// An online run its deadline stopped part-way, as the answer to a direct invocation: status
/// `inProgress` with what is left, and no error (why it stopped is `inProgress.reason`).
fn in_progress(mut report: Report) -> Report {
    if let Some(left) = &report.in_progress {
        tracing::info!(left = %left.summary(), "online run stopped at the deadline part-way; invoke again to continue");
    }
    report.error = None;
    report
}

/// The report of a run, finished or failed.
fn report_of<E>(result: &Result<Report, Box<Failure<E>>>) -> &Report {
    match result {
        Ok(report) => report,
        Err(failure) => &failure.report,
    }
}
