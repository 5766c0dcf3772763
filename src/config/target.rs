//! A fleet's targets: the databases one release migrates, read from a manifest (a JSON array of
//! `{"name", "databaseUrl" | "secretArn", "env"?, "wave"?}`) by the CLI's `fleet` and, one
//! item at a time, by the Lambda when a Distributed Map hands it one.
//!
//! A target's URL holds a password: it never appears in `Debug`, in an error or in a report;
//! only its name does.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;

use super::{environment_name, ConfigError};
use crate::db::connection::ConnectionSettings;

/// Where a target's credentials come from.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A PostgreSQL URL (checked when the manifest is read; shown nowhere).
    DatabaseUrl(String),
    /// A Secrets Manager secret holding the database's credentials, as the function reads its
    /// own `DB_SECRET_ARN`.
    SecretArn(String),
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DatabaseUrl(_) => f.write_str("DatabaseUrl(<not shown>)"),
            Self::SecretArn(arn) => f.debug_tuple("SecretArn").field(arn).finish(),
        }
    }
}

/// One database of a fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Unique in its manifest: the name every report, error and SSM state uses.
    pub name: String,
    pub location: Location,
    /// The environment whose state prefix the target's own state lives under; the run's
    /// environment when absent.
    pub env: Option<String>,
    /// Targets run in ascending waves; absent is wave 0.
    pub wave: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the targets manifest is not a JSON array of targets: {0}; expected [{{\"name\": ..., \"databaseUrl\" | \"secretArn\": ..., \"env\"?: ..., \"wave\"?: ...}}]")]
    NotAManifest(String),
    #[error("target {index} of the manifest has no name: give each target a unique \"name\"")]
    NoName { index: usize },
    #[error("target {name:?}: the name must be letters, digits, '-', '_' or '.' (at most 128), as it names the target's SSM state")]
    BadName { name: String },
    #[error("target {name:?} appears more than once in the manifest: names must be unique")]
    Duplicate { name: String },
    #[error("target {name:?} must have exactly one of \"databaseUrl\" and \"secretArn\"")]
    Location { name: String },
    #[error("target {name:?}: {source}")]
    Invalid {
        name: String,
        #[source]
        source: ConfigError,
    },
}

/// The manifest's item as written, before it is checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Item {
    #[serde(default)]
    name: String,
    database_url: Option<String>,
    secret_arn: Option<String>,
    env: Option<String>,
    wave: Option<u32>,
}

impl Target {
    /// One target from its JSON (a Distributed Map item, say), checked as a manifest's are.
    pub fn from_value(value: serde_json::Value) -> Result<Self, TargetError> {
        let item: Item = serde_json::from_value(value).map_err(|e| TargetError::NotAManifest(e.to_string()))?;
        Self::check(0, item)
    }

    fn check(index: usize, item: Item) -> Result<Self, TargetError> {
        let name = item.name;
        if name.is_empty() {
            return Err(TargetError::NoName { index });
        }
        let ok = name.len() <= 128 && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(TargetError::BadName { name });
        }
        let location = match (item.database_url, item.secret_arn) {
            (Some(url), None) => {
                ConnectionSettings::from_url("databaseUrl", &url).map_err(|source| TargetError::Invalid {
                    name: name.clone(),
                    source,
                })?;
                Location::DatabaseUrl(url)
            }
            (None, Some(arn)) if !arn.is_empty() => Location::SecretArn(arn),
            _ => return Err(TargetError::Location { name }),
        };
        let env = match item.env {
            Some(env) => Some(environment_name("env", env).map_err(|source| TargetError::Invalid {
                name: name.clone(),
                source,
            })?),
            None => None,
        };
        Ok(Self {
            name,
            location,
            env,
            wave: item.wave.unwrap_or(0),
        })
    }

    /// Where the target's own state lives in SSM: under its environment's prefix (the run's
    /// `SSM_PREFIX` or `/wishlist/<env>/migrations`), `<prefix>/targets/<name>`, so `envs` finds
    /// a fleet's targets beside the environment they belong to.
    pub fn state_prefix(&self, environment_prefix: &str) -> String {
        format!("{}/targets/{}", environment_prefix.trim_end_matches('/'), self.name)
    }

    /// The connection settings of a `databaseUrl` target (`None` for a secret's).
    pub fn connection(&self) -> Option<Result<ConnectionSettings, ConfigError>> {
        match &self.location {
            Location::DatabaseUrl(url) => Some(ConnectionSettings::from_url("databaseUrl", url)),
            Location::SecretArn(_) => None,
        }
    }
}

/// A manifest's targets, in its order, every one checked and the names unique.
pub fn parse_manifest(text: &str) -> Result<Vec<Target>, TargetError> {
    let items: Vec<Item> = serde_json::from_str(text).map_err(|e| TargetError::NotAManifest(e.to_string()))?;
    let mut seen = HashSet::new();
    let mut targets = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let target = Target::check(index, item)?;
        if !seen.insert(target.name.clone()) {
            return Err(TargetError::Duplicate { name: target.name });
        }
        targets.push(target);
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_both_kinds_of_target_in_order() {
        let targets = parse_manifest(
            r#"[{"name": "tenant-a", "databaseUrl": "postgres://u:pw@127.0.0.1:5432/a", "wave": 1},
                {"name": "tenant-b", "secretArn": "arn:aws:secretsmanager:us-east-1:1:secret:b", "env": "prod"}]"#,
        )
        .unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(
            (targets[0].name.as_str(), targets[0].wave, targets[0].env.as_deref()),
            ("tenant-a", 1, None)
        );
        assert!(targets[0].connection().unwrap().is_ok());
        assert_eq!(targets[1].env.as_deref(), Some("prod"));
        assert_eq!(targets[1].wave, 0);
        assert!(matches!(&targets[1].location, Location::SecretArn(arn) if arn.ends_with(":b")));
    }

    #[test]
    fn a_password_never_shows_in_debug_or_errors() {
        let targets = parse_manifest(r#"[{"name": "a", "databaseUrl": "postgres://u:hunter2@h/a"}]"#).unwrap();
        assert!(!format!("{targets:?}").contains("hunter2"));
        let err = parse_manifest(r#"[{"name": "a", "databaseUrl": "postgres://u:hunter2@h:notaport/a"}]"#).unwrap_err();
        assert!(matches!(err, TargetError::Invalid { ref name, .. } if name == "a"), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn each_bad_target_is_named() {
        let cases = [
            ("{}", "not a JSON array"),
            (r#"[{"databaseUrl": "postgres://h/a"}]"#, "target 0 of the manifest has no name"),
            (r#"[{"name": "a b", "databaseUrl": "postgres://h/a"}]"#, "\"a b\": the name must be"),
            (r#"[{"name": "a"}]"#, "\"a\" must have exactly one"),
            (
                r#"[{"name": "a", "databaseUrl": "postgres://h/a", "secretArn": "arn"}]"#,
                "\"a\" must have exactly one",
            ),
            (
                r#"[{"name": "a", "databaseUrl": "postgres://h/a"}, {"name": "a", "secretArn": "x"}]"#,
                "\"a\" appears more than once",
            ),
            (
                r#"[{"name": "a", "secretArn": "x", "env": "pr od"}]"#,
                "target \"a\": env=\"pr od\" is not valid",
            ),
            (r#"[{"name": "a", "secretArn": "x", "region": "eu"}]"#, "unknown field `region`"),
        ];
        for (text, expected) in cases {
            let err = parse_manifest(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn a_map_item_is_one_target() {
        let t = Target::from_value(serde_json::json!({"name": "t1", "secretArn": "arn:x"})).unwrap();
        assert_eq!(t.name, "t1");
        assert_eq!(t.state_prefix("/wishlist/prod/migrations/"), "/wishlist/prod/migrations/targets/t1");
        assert!(Target::from_value(serde_json::json!({"name": "t1"})).is_err());
    }
}
