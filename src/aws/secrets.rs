//! Database credentials from AWS Secrets Manager (the RDS secret JSON), fetched once per
//! container and fetched again when the database rejects them (rotation).

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::{ConfigError, Lookup};
use crate::db::connection::{ConnectionSettings, TlsMode};
use crate::error::{Classified, ErrorType};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("Secrets Manager GetSecretValue for {id} failed: {reason}. Check DB_SECRET_ID, the function's secretsmanager:GetSecretValue permission and the VPC endpoint / NAT route")]
    Fetch { id: String, reason: String },
    #[error("secret {id} has no SecretString; store the RDS JSON format (username, password, host, port, dbname)")]
    NoString { id: String },
    #[error("secret {id} is not a JSON object in the RDS format (username, password, host, port, dbname)")]
    NotJson { id: String },
    #[error("secret {id} has no {field:?}; the RDS format needs username, password, host, port, dbname (host/port/dbname may come from DB_HOST/DB_PORT/DB_NAME)")]
    MissingField { id: String, field: &'static str },
    #[error("secret {id}: field {field:?} {reason}")]
    BadField {
        id: String,
        field: &'static str,
        reason: &'static str,
    },
}

/// A password that cannot end up in a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The RDS secret's fields; extra keys (engine, dbInstanceIdentifier, ...) are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbSecret {
    pub username: String,
    pub password: Password,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub dbname: Option<String>,
}

#[derive(Deserialize)]
struct RawSecret {
    username: Option<String>,
    password: Option<String>,
    host: Option<String>,
    port: Option<Value>,
    dbname: Option<String>,
}

impl DbSecret {
    pub fn parse(id: &str, text: &str) -> Result<Self, SecretError> {
        let raw: RawSecret = serde_json::from_str(text).map_err(|_| SecretError::NotJson { id: id.into() })?;
        let missing = |field| SecretError::MissingField { id: id.into(), field };
        let port = match raw.port {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.as_u64().and_then(|p| u16::try_from(p).ok()).ok_or(SecretError::BadField {
                id: id.into(),
                field: "port",
                reason: "is not a TCP port number",
            })?),
            Some(Value::String(s)) => Some(s.trim().parse().map_err(|_| SecretError::BadField {
                id: id.into(),
                field: "port",
                reason: "is not a TCP port number",
            })?),
            Some(_) => {
                return Err(SecretError::BadField {
                    id: id.into(),
                    field: "port",
                    reason: "must be a number or a string",
                })
            }
        };
        Ok(Self {
            username: raw.username.filter(|u| !u.is_empty()).ok_or_else(|| missing("username"))?,
            password: Password(raw.password.ok_or_else(|| missing("password"))?),
            host: raw.host.filter(|h| !h.is_empty()),
            port,
            dbname: raw.dbname.filter(|d| !d.is_empty()),
        })
    }

    /// Connection settings from the secret; `DB_HOST`/`DB_PORT`/`DB_NAME` win over its fields
    /// (e.g. the cluster writer endpoint, bypassing RDS Proxy, which pins on advisory locks).
    /// TLS is required unless `DB_SSLMODE` says otherwise.
    pub fn connection(&self, id: &str, env: Lookup<'_>) -> Result<ConnectionSettings, CredentialsError> {
        let host = env("DB_HOST").or_else(|| self.host.clone()).ok_or(SecretError::MissingField {
            id: id.into(),
            field: "host",
        })?;
        let port = match env("DB_PORT") {
            Some(p) => p.trim().parse().map_err(|_| ConfigError::Invalid {
                variable: "DB_PORT",
                value: p,
                expected: "a TCP port number",
            })?,
            None => self.port.unwrap_or(5432),
        };
        let dbname = env("DB_NAME").or_else(|| self.dbname.clone()).ok_or(SecretError::MissingField {
            id: id.into(),
            field: "dbname",
        })?;
        let mut pg = tokio_postgres::Config::new();
        pg.host(&host)
            .port(port)
            .user(&self.username)
            .password(&self.password.0)
            .dbname(&dbname);
        let mut settings = ConnectionSettings::new(pg, TlsMode::Require);
        settings.apply_tls_env(env, TlsMode::Require)?;
        Ok(settings)
    }
}

/// Building a connection from a secret fails either on the secret or on the environment.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The container's copy of the secret: fetched on first use, refetched on demand.
pub struct SecretCache {
    client: aws_sdk_secretsmanager::Client,
    pub id: String,
    cached: Mutex<Option<Arc<DbSecret>>>,
}

impl SecretCache {
    pub fn new(client: aws_sdk_secretsmanager::Client, id: String) -> Self {
        Self {
            client,
            id,
            cached: Mutex::new(None),
        }
    }

    pub async fn get(&self) -> Result<Arc<DbSecret>, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some(secret) = cached.as_ref() {
            return Ok(secret.clone());
        }
        let secret = Arc::new(self.fetch().await?);
        *cached = Some(secret.clone());
        Ok(secret)
    }

    /// Drops the cached copy and fetches the current one (after the database rejected it).
    pub async fn refresh(&self) -> Result<Arc<DbSecret>, SecretError> {
        self.cached.lock().await.take();
        self.get().await
    }

    async fn fetch(&self) -> Result<DbSecret, SecretError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.id)
            .send()
            .await
            .map_err(|e| SecretError::Fetch {
                id: self.id.clone(),
                reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
            })?;
        let text = output
            .secret_string()
            .ok_or_else(|| SecretError::NoString { id: self.id.clone() })?;
        tracing::info!(secret_id = %self.id, "database secret fetched");
        DbSecret::parse(&self.id, text)
    }
}

impl Classified for SecretError {
    fn error_type(&self) -> ErrorType {
        ErrorType::SecretUnavailable
    }
}

impl Classified for CredentialsError {
    fn error_type(&self) -> ErrorType {
        match self {
            Self::Secret(e) => e.error_type(),
            Self::Config(e) => e.error_type(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    const RDS: &str = r#"{"engine":"postgres","username":"migrator","password":"pa:ss@w/rd","host":"db.cluster-x.eu-west-1.rds.amazonaws.com","port":5432,"dbname":"wishlist","dbClusterIdentifier":"c"}"#;

    #[test]
    fn parses_the_rds_format_ignoring_extra_keys() {
        let s = DbSecret::parse("id", RDS).unwrap();
        assert_eq!(s.username, "migrator");
        assert_eq!(s.port, Some(5432));
        assert_eq!(s.dbname.as_deref(), Some("wishlist"));
        assert!(!format!("{s:?}").contains("pa:ss"), "Debug must not print the password");
    }

    #[test]
    fn port_may_be_a_string() {
        let s = DbSecret::parse("id", r#"{"username":"u","password":"p","host":"h","port":"6432","dbname":"d"}"#).unwrap();
        assert_eq!(s.port, Some(6432));
        let err = DbSecret::parse("id", r#"{"username":"u","password":"p","port":"x"}"#).unwrap_err();
        assert!(matches!(err, SecretError::BadField { field: "port", .. }));
    }

    #[test]
    fn missing_fields_are_named_never_the_values() {
        let err = DbSecret::parse("arn:secret", r#"{"password":"hunter2"}"#).unwrap_err();
        assert!(matches!(err, SecretError::MissingField { field: "username", .. }));
        assert!(!err.to_string().contains("hunter2"));
        assert!(matches!(
            DbSecret::parse("id", "not json").unwrap_err(),
            SecretError::NotJson { .. }
        ));
    }

    #[test]
    fn overrides_win_and_tls_is_required_by_default() {
        let s = DbSecret::parse("id", RDS).unwrap();
        let c = s
            .connection(
                "id",
                &env(&[("DB_HOST", "writer.internal"), ("DB_PORT", "5433"), ("DB_NAME", "other")]),
            )
            .unwrap();
        let info = c.info();
        assert_eq!(
            (info.host.as_str(), info.port, info.name.as_str()),
            ("writer.internal", 5433, "other")
        );
        assert_eq!(c.tls, TlsMode::Require);
        assert_eq!(c.pg.get_password(), Some(&b"pa:ss@w/rd"[..]));
        let c = s.connection("id", &env(&[("DB_SSLMODE", "disable")])).unwrap();
        assert_eq!(c.tls, TlsMode::Disable);
    }

    #[test]
    fn a_secret_without_host_needs_db_host() {
        let s = DbSecret::parse("id", r#"{"username":"u","password":"p"}"#).unwrap();
        assert!(s.connection("id", &env(&[])).is_err());
        assert!(s.connection("id", &env(&[("DB_HOST", "h"), ("DB_NAME", "d")])).is_ok());
    }
}
