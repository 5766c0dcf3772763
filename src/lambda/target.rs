//! A fleet's target in the function: the database a request's `"target"` names (a Distributed
//! Map item), its credentials and where its own state lives. The function's own database
//! settings never leak into a target's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::aws::secrets::{CredentialsError, SecretCache};
use crate::config::target::{Location, Target};
use crate::config::{default_state_prefix, Lookup, RunSettings};
use crate::db::connection::{ConnectionSettings, TlsMode};

/// The run settings of one target: its environment (the function's when it names none) and its
/// own SSM state, `<its environment's prefix>/targets/<name>`.
pub fn settings_for(settings: &RunSettings, target: &Target) -> RunSettings {
    let mut settings = settings.clone();
    let environment_prefix = match &target.env {
        // Another environment's prefix is its default one: the function's SSM_PREFIX is its own.
        Some(env) if *env != settings.environment => default_state_prefix(env),
        _ => settings.state_prefix(),
    };
    if let Some(env) = &target.env {
        settings.environment = env.clone();
    }
    settings.ssm_prefix = Some(target.state_prefix(&environment_prefix));
    settings
}

/// `DB_HOST`, `DB_PORT` and `DB_NAME` point the function at its own database (its writer
/// endpoint, say): applied to a target's secret they would send every tenant to that one. The
/// TLS policy (`DB_SSLMODE`, `DB_CA_BUNDLE`) is the function's and holds for every target.
pub fn target_lookup<'a>(env: Lookup<'a>) -> impl Fn(&str) -> Option<String> + 'a {
    move |k: &str| match k {
        "DB_HOST" | "DB_PORT" | "DB_NAME" => None,
        _ => env(k),
    }
}

/// The secrets of the targets this container has served, each fetched once and refetched when
/// its database rejects it (rotation), as the function's own secret is.
pub struct TargetSecrets {
    client: aws_sdk_secretsmanager::Client,
    caches: Mutex<HashMap<String, Arc<SecretCache>>>,
}

impl TargetSecrets {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self {
            client,
            caches: Mutex::new(HashMap::new()),
        }
    }

    /// `env`: the function's variables (Sync: the run is a spawned task).
    pub async fn connection(
        &self,
        target: &Target,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
        refresh: bool,
    ) -> Result<ConnectionSettings, CredentialsError> {
        match &target.location {
            Location::DatabaseUrl(url) => {
                let mut settings = ConnectionSettings::from_url("databaseUrl", url)?;
                settings.apply_tls_env(&target_lookup(env), TlsMode::Require)?;
                Ok(settings)
            }
            Location::SecretArn(arn) => {
                let cache = self
                    .caches
                    .lock()
                    .expect("not poisoned")
                    .entry(arn.clone())
                    .or_insert_with(|| Arc::new(SecretCache::new(self.client.clone(), arn.clone())))
                    .clone();
                let secret = if refresh { cache.refresh().await } else { cache.get().await }?;
                secret.connection(&cache.id, &target_lookup(env))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(value: serde_json::Value) -> Target {
        Target::from_value(value).unwrap()
    }

    #[test]
    fn a_target_keeps_its_state_under_its_environment() {
        let function = RunSettings {
            environment: "prod".into(),
            ..RunSettings::default()
        };
        let own = settings_for(&function, &target(json!({"name": "t1", "secretArn": "a"})));
        assert_eq!(own.environment, "prod");
        assert_eq!(own.state_prefix(), "/wishlist/prod/migrations/targets/t1");
        let other = settings_for(&function, &target(json!({"name": "t2", "secretArn": "a", "env": "eu"})));
        assert_eq!(other.environment, "eu");
        assert_eq!(other.state_prefix(), "/wishlist/eu/migrations/targets/t2");
        let custom = RunSettings {
            ssm_prefix: Some("/acme/prod/".into()),
            ..function
        };
        let same_env = settings_for(&custom, &target(json!({"name": "t3", "secretArn": "a", "env": "prod"})));
        assert_eq!(same_env.state_prefix(), "/acme/prod/targets/t3");
    }

    #[test]
    fn the_functions_own_host_never_reaches_a_target() {
        let env = |k: &str| match k {
            "DB_HOST" => Some("writer.internal".to_string()),
            "DB_SSLMODE" => Some("verify-full".to_string()),
            _ => None,
        };
        let lookup = target_lookup(&env);
        assert_eq!(lookup("DB_HOST"), None);
        assert_eq!(lookup("DB_SSLMODE").as_deref(), Some("verify-full"));
    }
}
