//! Finding the published states in SSM: each environment's `<root>/<env>/migrations/state`
//! and each fleet target's `<root>/<env>/migrations/targets/<name>/state` (`Target::state_prefix`).

use aws_sdk_ssm::types::ParameterStringFilter;
use aws_sdk_ssm::Client;

use super::model::{Discovered, Published, PublishedTarget};
use crate::aws::state::{EnvironmentState, StateStoreError};

/// GetParameters' limit of names per call.
const NAMES_PER_CALL: usize = 10;
/// GetParameters calls in flight at once: 500 targets are read in about seven round trips,
/// well under SSM's default 40 transactions per second.
const CALLS_IN_FLIGHT: usize = 8;

/// What a parameter's name says it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Environment { environment: String },
    Target { environment: String, name: String },
}

/// The kind of state `name` holds, from its shape alone; `None` for any other parameter.
pub fn classify(name: &str) -> Option<Found> {
    let last_segment = |rest: &str| rest.rsplit('/').next().filter(|s| !s.is_empty()).map(str::to_string);
    // A target first: one named `migrations` would otherwise pass for an environment.
    if let Some((below, target)) = name.strip_suffix("/state").and_then(|rest| rest.rsplit_once('/')) {
        if let Some(environment) = below.strip_suffix("/migrations/targets").and_then(last_segment) {
            if !target.is_empty() {
                return Some(Found::Target {
                    environment,
                    name: target.to_string(),
                });
            }
        }
    }
    name.strip_suffix("/migrations/state")
        .and_then(last_segment)
        .map(|environment| Found::Environment { environment })
}

fn ssm_error(operation: &'static str, name: &str, e: impl std::error::Error) -> StateStoreError {
    StateStoreError::Ssm {
        operation,
        name: name.to_string(),
        reason: aws_sdk_ssm::error::DisplayErrorContext(e).to_string(),
    }
}

/// Every environment under `prefix` (e.g. `/wishlist`), with its history when `with_history`,
/// and, when `with_targets`, every fleet target's current state (never its history: hundreds).
///
/// The names come from DescribeParameters, which returns no values, and only the states' values
/// are read: a role can then be granted `<prefix>/*/migrations/state` and nothing else under the
/// prefix (GetParametersByPath would hand it every parameter below, another environment's
/// settings and secrets included). Targets are read ten to a GetParameters call.
pub async fn read(client: &Client, prefix: &str, with_history: bool, with_targets: bool) -> Result<Discovered, StateStoreError> {
    let prefix = prefix.trim_end_matches('/');
    let begins = format!("{prefix}/");
    let filter = ParameterStringFilter::builder()
        .key("Name")
        .option("BeginsWith")
        .values(&begins)
        .build()
        .map_err(|e| ssm_error("DescribeParameters", &begins, e))?;
    let mut environments = Vec::new();
    let mut targets = Vec::new();
    // 50 names a page, the most SSM gives (10 by default): a fleet of 500 in 10 round trips.
    let mut pages = client
        .describe_parameters()
        .parameter_filters(filter)
        .max_results(50)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ssm_error("DescribeParameters", &begins, e))?;
        for name in page.parameters().iter().filter_map(|p| p.name()) {
            match classify(name) {
                Some(Found::Environment { environment }) => environments.push((name.to_string(), environment)),
                Some(Found::Target { environment, name: target }) if with_targets => targets.push((name.to_string(), environment, target)),
                _ => {}
            }
        }
    }
    let mut out = Discovered::default();
    for (name, environment) in environments {
        let Some(current) = state(client, &name).await? else {
            continue;
        };
        let history = if with_history { history(client, &name).await? } else { Vec::new() };
        out.environments.push(Published {
            environment,
            current,
            history,
        });
    }
    out.targets = read_targets(client, targets).await?;
    out.sort();
    Ok(out)
}

/// The targets' current states, `CALLS_IN_FLIGHT` GetParameters calls at a time.
async fn read_targets(client: &Client, names: Vec<(String, String, String)>) -> Result<Vec<PublishedTarget>, StateStoreError> {
    let mut out = Vec::with_capacity(names.len());
    let batches: Vec<Vec<(String, String, String)>> = names.chunks(NAMES_PER_CALL).map(<[_]>::to_vec).collect();
    for wave in batches.chunks(CALLS_IN_FLIGHT) {
        let mut calls = tokio::task::JoinSet::new();
        for batch in wave.iter().cloned() {
            let client = client.clone();
            calls.spawn(async move {
                let output = client
                    .get_parameters()
                    .set_names(Some(batch.iter().map(|(n, _, _)| n.clone()).collect()))
                    .send()
                    .await
                    .map_err(|e| ssm_error("GetParameters", &batch[0].0, e))?;
                let mut found = Vec::new();
                for parameter in output.parameters() {
                    let (Some(name), Some(value)) = (parameter.name(), parameter.value()) else {
                        continue;
                    };
                    let Some((_, environment, target)) = batch.iter().find(|(n, _, _)| n == name) else {
                        continue;
                    };
                    match serde_json::from_str::<EnvironmentState>(value) {
                        Ok(state) => found.push(PublishedTarget {
                            environment: environment.clone(),
                            name: target.clone(),
                            state,
                        }),
                        Err(_) => tracing::warn!(parameter = %name, "not a migration state; skipped"),
                    }
                }
                Ok::<_, StateStoreError>(found)
            });
        }
        while let Some(done) = calls.join_next().await {
            out.extend(done.expect("a GetParameters task does not panic")?);
        }
    }
    Ok(out)
}

/// One state parameter's value; `None` when it is gone or not a migration state.
async fn state(client: &Client, name: &str) -> Result<Option<EnvironmentState>, StateStoreError> {
    let output = match client.get_parameter().name(name).send().await {
        Ok(o) => o,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_parameter_not_found()) => return Ok(None),
        Err(e) => return Err(ssm_error("GetParameter", name, e)),
    };
    let Some(value) = output.parameter().and_then(|p| p.value()) else {
        return Ok(None);
    };
    match serde_json::from_str::<EnvironmentState>(value) {
        Ok(state) => Ok(Some(state)),
        Err(_) => {
            tracing::warn!(parameter = %name, "not a migration state; skipped");
            Ok(None)
        }
    }
}

/// `read` through each named AWS profile (environments in other accounts), or the default
/// credentials when none is named; an environment (or a target) seen through two profiles is
/// shown once. The error names the profile it came through.
pub async fn read_profiles(profiles: &[String], prefix: &str, with_history: bool) -> Result<Discovered, (String, StateStoreError)> {
    let accounts: Vec<Option<&str>> = match profiles {
        [] => vec![None],
        named => named.iter().map(|p| Some(p.as_str())).collect(),
    };
    let mut all = Discovered::default();
    for profile in accounts {
        let found = read(&Client::new(&crate::aws::sdk_config(profile).await), prefix, with_history, true)
            .await
            .map_err(|e| (profile.unwrap_or("default").to_string(), e))?;
        for f in found.environments {
            if !all.environments.iter().any(|p| p.environment == f.environment) {
                all.environments.push(f);
            }
        }
        for t in found.targets {
            if !all.targets.iter().any(|o| o.environment == t.environment && o.name == t.name) {
                all.targets.push(t);
            }
        }
    }
    all.sort();
    Ok(all)
}

async fn history(client: &Client, name: &str) -> Result<Vec<EnvironmentState>, StateStoreError> {
    let mut states = Vec::new();
    let mut pages = client.get_parameter_history().name(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ssm_error("GetParameterHistory", name, e))?;
        states.extend(
            page.parameters()
                .iter()
                .filter_map(|p| p.value())
                .filter_map(|v| serde_json::from_str::<EnvironmentState>(v).ok()),
        );
    }
    Ok(states)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_and_targets_are_told_apart_by_their_names() {
        let env = |e: &str| Some(Found::Environment { environment: e.into() });
        let target = |e: &str, n: &str| {
            Some(Found::Target {
                environment: e.into(),
                name: n.into(),
            })
        };
        assert_eq!(classify("/wishlist/prod/migrations/state"), env("prod"));
        assert_eq!(
            classify("/wishlist/prod/migrations/targets/tenant-7/state"),
            target("prod", "tenant-7")
        );
        // A target named like a path segment of the environment's state is still a target.
        assert_eq!(
            classify("/wishlist/prod/migrations/targets/migrations/state"),
            target("prod", "migrations")
        );
        assert_eq!(classify("/wishlist/prod/migrations/targets/a.b_c/state"), target("prod", "a.b_c"));
        for other in [
            "/wishlist/prod/db-url",
            "/wishlist/prod/migrations/targets//state",
            "/wishlist/prod/migrations/targets/t1/other",
            "/migrations/state",
        ] {
            assert_eq!(classify(other), None, "{other}");
        }
    }
}
