//! Run settings read from the environment (flags override them at the CLI edge), and the
//! connection settings for the database.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::db::connection::{ConnectionSettings, TlsMode};
use crate::db::ledger::LedgerTable;
use crate::error::{Classified, ErrorType};

/// The advisory lock key every run takes unless `MIGRATION_LOCK_KEY` says otherwise: the ASCII
/// bytes `wishlist` read as a big-endian i64. Advisory locks are per database, so one key
/// serialises all runners of one database and nothing else.
pub const DEFAULT_LOCK_KEY: i64 = 8_604_535_455_400_686_452;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{variable}={value:?} is not valid: {expected}")]
    Invalid {
        variable: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{variable} is not a valid PostgreSQL connection string ({reason}); the value is not shown because it may hold a password")]
    InvalidUrl { variable: &'static str, reason: String },
    #[error("no database configured: set DATABASE_URL (or --database-url), or the libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE")]
    NoDatabase,
    #[error("{variable}: {reason}")]
    Unusable { variable: &'static str, reason: String },
}

pub mod target;

/// Everything about a run except where the database is.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub environment: String,
    pub migrations_dir: Option<PathBuf>,
    pub ledger: LedgerTable,
    pub lock_key: i64,
    pub lock_wait: Duration,
    /// `SET LOCAL lock_timeout` for migration transactions: DDL must not queue ahead of traffic.
    pub pg_lock_timeout: Duration,
    /// How often a transaction that hit `lock_timeout` (55P03) is tried again.
    pub lock_timeout_retries: u32,
    pub statement_timeout: Option<Duration>,
    /// `RUN_TIMEOUT_SECONDS` (the CLI's `--timeout`): the whole run must end within this long.
    /// The Lambda ignores it: its deadline is the invocation's.
    pub run_timeout: Option<Duration>,
    pub allow_unknown_rows: bool,
    /// `ALLOW_OUT_OF_ORDER` (the CLI's `--allow-out-of-order`): drizzle-kit 1.0 folders only,
    /// apply a pending folder that sorts before an applied one, as drizzle-orm 1.0 does.
    pub allow_out_of_order: bool,
    /// `SSM_PREFIX`; by default `/wishlist/<environment>/migrations`.
    pub ssm_prefix: Option<String>,
    /// `DRIFT_IGNORE`: tables drizzle does not own, never reported as drift.
    pub drift_ignore: Vec<crate::schema::drift::IgnoreRule>,
    /// `SHADOW_DATABASE_URL`: the server (and role) on which drift creates, and drops again, the
    /// scratch database it replays the migrations into; by default the migration server itself.
    pub shadow: Option<Box<ConnectionSettings>>,
    /// `LINT_LARGE_TABLE_ROWS`: from this many rows a scan or rewrite of a live table is an
    /// error-level lint finding.
    pub large_table_rows: u64,
    /// `LINT_ALLOW` (the CLI's `--allow-finding`): `TAG:RULE` findings allowed for this run, for
    /// a migration already applied elsewhere, whose file a waiver would change.
    pub lint_allow: Vec<LintAllowance>,
    /// `LINT_GATE` (the CLI's `--no-lint-gate` turns it off): whether `migrate` refuses on a
    /// blocking lint finding. Off, the findings are still reported, as warnings.
    pub lint_gate: bool,
    /// `ONLINE_MIGRATIONS` (the CLI's `--online`, the Lambda's `"online": true`): a statement the
    /// gate finds blocking on a large live table runs by its lock-safe recipe (`online/`)
    /// instead of being refused, and each statement run on its own waits at most 500 ms for a
    /// lock, tried again with jitter.
    pub online: bool,
}

/// One `TAG:RULE` of `LINT_ALLOW`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintAllowance {
    pub tag: String,
    pub rule: crate::lint::rule::Rule,
}

impl LintAllowance {
    pub fn parse(variable: &'static str, text: &str) -> Result<Self, ConfigError> {
        let invalid = || ConfigError::Invalid {
            variable,
            value: text.to_string(),
            expected: "TAG:RULE, with a rule id of docs/schema-evolution.md",
        };
        let (tag, rule) = text.trim().rsplit_once(':').ok_or_else(invalid)?;
        let rule = crate::lint::rule::Rule::from_id(rule.trim())
            .filter(|r| r.waivable())
            .ok_or_else(invalid)?;
        if tag.trim().is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            tag: tag.trim().to_string(),
            rule,
        })
    }

    pub fn parse_list(variable: &'static str, text: &str) -> Result<Vec<Self>, ConfigError> {
        text.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| Self::parse(variable, p))
            .collect()
    }
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            environment: "dev".into(),
            migrations_dir: None,
            ledger: LedgerTable::default(),
            lock_key: DEFAULT_LOCK_KEY,
            lock_wait: Duration::from_secs(30),
            pg_lock_timeout: Duration::from_millis(5_000),
            lock_timeout_retries: 3,
            statement_timeout: None,
            run_timeout: None,
            allow_unknown_rows: false,
            allow_out_of_order: false,
            ssm_prefix: None,
            drift_ignore: Vec::new(),
            shadow: None,
            large_table_rows: crate::lint::live::DEFAULT_LARGE_TABLE_ROWS,
            lint_allow: Vec::new(),
            lint_gate: true,
            online: false,
        }
    }
}

/// Reads variables; a closure so tests and the Lambda can supply their own environment.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl RunSettings {
    pub fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            environment: match env("APP_ENV") {
                Some(name) => environment_name("APP_ENV", name)?,
                None => defaults.environment,
            },
            migrations_dir: env("MIGRATIONS_DIR").map(PathBuf::from),
            ledger: LedgerTable {
                schema: identifier(env, "MIGRATIONS_SCHEMA")?.unwrap_or(defaults.ledger.schema),
                table: identifier(env, "MIGRATIONS_TABLE")?.unwrap_or(defaults.ledger.table),
            },
            lock_key: parse(env, "MIGRATION_LOCK_KEY", "a 64-bit signed integer")?.unwrap_or(defaults.lock_key),
            lock_wait: parse::<u64>(env, "LOCK_WAIT_SECONDS", "a whole number of seconds")?.map_or(defaults.lock_wait, Duration::from_secs),
            pg_lock_timeout: positive_ms(env, "PG_LOCK_TIMEOUT_MS")?.unwrap_or(defaults.pg_lock_timeout),
            lock_timeout_retries: parse(env, "LOCK_TIMEOUT_RETRIES", "a whole number")?.unwrap_or(defaults.lock_timeout_retries),
            statement_timeout: positive_ms(env, "STATEMENT_TIMEOUT_MS")?,
            run_timeout: match parse::<u64>(env, "RUN_TIMEOUT_SECONDS", RUN_TIMEOUT_EXPECTED)? {
                Some(seconds) => Some(run_timeout("RUN_TIMEOUT_SECONDS", seconds)?),
                None => None,
            },
            allow_unknown_rows: parse_bool(env, "ALLOW_UNKNOWN_MIGRATIONS")?.unwrap_or(false),
            allow_out_of_order: parse_bool(env, "ALLOW_OUT_OF_ORDER")?.unwrap_or(false),
            ssm_prefix: env("SSM_PREFIX"),
            drift_ignore: env("DRIFT_IGNORE")
                .map(|v| crate::schema::drift::IgnoreRule::parse_list(&v))
                .unwrap_or_default(),
            shadow: match env("SHADOW_DATABASE_URL") {
                Some(url) => Some(Box::new(ConnectionSettings::from_url("SHADOW_DATABASE_URL", &url)?)),
                None => None,
            },
            large_table_rows: parse(env, "LINT_LARGE_TABLE_ROWS", "a whole number of rows")?.unwrap_or(defaults.large_table_rows),
            lint_allow: match env("LINT_ALLOW") {
                Some(list) => LintAllowance::parse_list("LINT_ALLOW", &list)?,
                None => Vec::new(),
            },
            lint_gate: parse_bool(env, "LINT_GATE")?.unwrap_or(true),
            online: parse_bool(env, "ONLINE_MIGRATIONS")?.unwrap_or(false),
        })
    }

    /// Where this environment's state lives in SSM Parameter Store.
    pub fn state_prefix(&self) -> String {
        self.ssm_prefix.clone().unwrap_or_else(|| default_state_prefix(&self.environment))
    }
}

const RUN_TIMEOUT_EXPECTED: &str = "a whole number of seconds greater than 0";

/// A run timeout (`RUN_TIMEOUT_SECONDS` or `--timeout`): at least one second.
pub fn run_timeout(variable: &'static str, seconds: u64) -> Result<Duration, ConfigError> {
    if seconds == 0 {
        return Err(ConfigError::Invalid {
            variable,
            value: "0".into(),
            expected: RUN_TIMEOUT_EXPECTED,
        });
    }
    Ok(Duration::from_secs(seconds))
}

/// Where an environment's state lives in SSM unless `SSM_PREFIX` says otherwise.
pub fn default_state_prefix(environment: &str) -> String {
    format!("/wishlist/{environment}/migrations")
}

impl ConnectionSettings {
    /// `DATABASE_URL`, else the libpq variables; `DB_SSLMODE` and `DB_CA_BUNDLE` on top.
    pub fn from_env(env: Lookup<'_>, default_tls: TlsMode) -> Result<Self, ConfigError> {
        let mut settings = match env("DATABASE_URL") {
            Some(url) => Self::from_url("DATABASE_URL", &url)?,
            None => Self::from_libpq_env(env)?,
        };
        if settings.pg.get_password().is_none() {
            if let Some(password) = env("PGPASSWORD") {
                settings.pg.password(password);
            }
        }
        settings.apply_tls_env(env, default_tls)?;
        Ok(settings)
    }

    pub fn from_url(variable: &'static str, url: &str) -> Result<Self, ConfigError> {
        // tokio-postgres parses only disable/prefer/require; libpq's verifying modes map to ours.
        let verifying = ["sslmode=verify-full", "sslmode=verify-ca"].iter().find(|m| url.contains(*m));
        let url = match verifying {
            Some(mode) => url.replacen(mode, "sslmode=require", 1),
            None => url.to_string(),
        };
        let url = url.as_str();
        let pg = tokio_postgres::Config::from_str(url).map_err(|e| ConfigError::InvalidUrl {
            variable,
            reason: redact_reason(&with_causes(&e), url),
        })?;
        if pg.get_hosts().is_empty() {
            return Err(ConfigError::Unusable {
                variable,
                reason: "names no host".into(),
            });
        }
        let tls = match verifying {
            Some(_) => TlsMode::VerifyFull,
            None => TlsMode::from_pg(pg.get_ssl_mode()),
        };
        Ok(Self::new(pg, tls))
    }

    fn from_libpq_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let Some(host) = env("PGHOST") else {
            return Err(ConfigError::NoDatabase);
        };
        let mut pg = tokio_postgres::Config::new();
        for h in host.split(',') {
            if h.starts_with('/') {
                pg.host_path(h);
            } else {
                pg.host(h);
            }
        }
        if let Some(port) = parse::<u16>(env, "PGPORT", "a TCP port number")? {
            pg.port(port);
        }
        let user = env("PGUSER").or_else(|| env("USER")).ok_or(ConfigError::Unusable {
            variable: "PGUSER",
            reason: "not set, and no USER to default to".into(),
        })?;
        pg.user(&user);
        pg.dbname(env("PGDATABASE").unwrap_or(user).as_str());
        Ok(Self::new(pg, TlsMode::Prefer))
    }

    /// `DB_SSLMODE` wins over the URL's `sslmode`; without either, `default_tls` applies
    /// (the CLI prefers TLS like libpq, the Lambda requires it).
    pub fn apply_tls_env(&mut self, env: Lookup<'_>, default_tls: TlsMode) -> Result<(), ConfigError> {
        if let Some(mode) = env("DB_SSLMODE") {
            self.tls = TlsMode::parse(&mode).ok_or(ConfigError::Invalid {
                variable: "DB_SSLMODE",
                value: mode,
                expected: "one of disable, prefer, require, verify-full",
            })?;
        } else if self.tls == TlsMode::Prefer {
            self.tls = default_tls;
        }
        if let Some(path) = env("DB_CA_BUNDLE") {
            self.ca_bundle = Some(PathBuf::from(path));
        }
        Ok(())
    }
}

fn environment_name(variable: &'static str, name: String) -> Result<String, ConfigError> {
    let ok = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(ConfigError::Invalid {
            variable,
            value: name,
            expected: "letters, digits, '-' or '_' (at most 64), e.g. dev, staging, prod",
        })
    }
}

/// Validates an environment name given on the command line the same way as `APP_ENV`.
pub fn validate_environment(name: &str) -> Result<String, ConfigError> {
    environment_name("--env", name.to_string())
}

fn identifier(env: Lookup<'_>, variable: &'static str) -> Result<Option<String>, ConfigError> {
    match env(variable) {
        None => Ok(None),
        Some(v) if v.len() <= 63 && !v.contains('\0') => Ok(Some(v)),
        Some(v) => Err(ConfigError::Invalid {
            variable,
            value: v,
            expected: "a PostgreSQL identifier of at most 63 bytes",
        }),
    }
}

fn parse<T: FromStr>(env: Lookup<'_>, variable: &'static str, expected: &'static str) -> Result<Option<T>, ConfigError> {
    match env(variable) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| ConfigError::Invalid {
            variable,
            value: v,
            expected,
        }),
    }
}

fn positive_ms(env: Lookup<'_>, variable: &'static str) -> Result<Option<Duration>, ConfigError> {
    match parse::<u64>(env, variable, "a whole number of milliseconds greater than 0")? {
        Some(0) => Err(ConfigError::Invalid {
            variable,
            value: "0".into(),
            expected: "a whole number of milliseconds greater than 0",
        }),
        other => Ok(other.map(Duration::from_millis)),
    }
}

pub fn parse_bool(env: Lookup<'_>, variable: &'static str) -> Result<Option<bool>, ConfigError> {
    match env(variable).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(None),
        Some("1" | "true" | "yes" | "on") => Ok(Some(true)),
        Some("0" | "false" | "no" | "off") => Ok(Some(false)),
        Some(other) => Err(ConfigError::Invalid {
            variable,
            value: other.to_string(),
            expected: "true or false",
        }),
    }
}

/// The parse error with its cause (`invalid value for option `port``), which its own text omits.
fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Parse errors may quote the input; never let the URL, its password or a piece of it through.
fn redact_reason(reason: &str, url: &str) -> String {
    let leaks = |secret: &str| {
        let chars: Vec<char> = secret.chars().collect();
        let window = chars.len().min(4);
        window > 0 && chars.windows(window).any(|w| reason.contains(&w.iter().collect::<String>()))
    };
    if passwords_in(url).iter().any(|p| leaks(p)) {
        return "it could not be parsed".into();
    }
    if url.len() > 3 && reason.contains(url) {
        reason.replace(url, "<url>")
    } else {
        reason.to_string()
    }
}

/// What may be a password in a connection string, well-formed or not: the userinfo after the
/// user name (`scheme://user:PASSWORD@`) and every `password=` value.
fn passwords_in(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some((_, rest)) = url.split_once("://") {
        if let Some((userinfo, _)) = rest.rsplit_once('@') {
            if let Some((_, password)) = userinfo.split_once(':') {
                found.push(password.to_string());
            }
        }
    }
    let mut rest = url;
    while let Some(at) = rest.find("password=") {
        rest = &rest[at + "password=".len()..];
        let value = rest.trim_start_matches('\'');
        let end = value
            .find(|c: char| c.is_whitespace() || c == '&' || c == '\'')
            .unwrap_or(value.len());
        found.push(value[..end].to_string());
    }
    found.retain(|p| !p.is_empty());
    found
}

impl Classified for ConfigError {
    fn error_type(&self) -> ErrorType {
        ErrorType::ConfigError
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

    #[test]
    fn defaults_when_nothing_is_set() {
        let s = RunSettings::from_env(&env(&[])).unwrap();
        assert_eq!(s.environment, "dev");
        assert_eq!(s.lock_wait, Duration::from_secs(30));
        assert_eq!(s.pg_lock_timeout, Duration::from_millis(5000));
        assert_eq!(s.ledger.schema, "drizzle");
        assert_eq!(s.ledger.table, "__drizzle_migrations");
        assert_eq!(s.lock_key, i64::from_be_bytes(*b"wishlist"));
        assert!(s.statement_timeout.is_none());
        assert!(s.run_timeout.is_none());
    }

    #[test]
    fn reads_every_variable() {
        let s = RunSettings::from_env(&env(&[
            ("APP_ENV", "prod"),
            ("MIGRATIONS_DIR", "db/out"),
            ("MIGRATIONS_SCHEMA", "ops"),
            ("MIGRATIONS_TABLE", "ledger"),
            ("MIGRATION_LOCK_KEY", "-42"),
            ("LOCK_WAIT_SECONDS", "5"),
            ("PG_LOCK_TIMEOUT_MS", "250"),
            ("LOCK_TIMEOUT_RETRIES", "0"),
            ("STATEMENT_TIMEOUT_MS", "60000"),
            ("RUN_TIMEOUT_SECONDS", "900"),
            ("ALLOW_UNKNOWN_MIGRATIONS", "true"),
            ("ALLOW_OUT_OF_ORDER", "true"),
        ]))
        .unwrap();
        assert_eq!(s.environment, "prod");
        assert_eq!(s.migrations_dir, Some(PathBuf::from("db/out")));
        assert_eq!((s.ledger.schema.as_str(), s.ledger.table.as_str()), ("ops", "ledger"));
        assert_eq!(s.lock_key, -42);
        assert_eq!(s.lock_wait, Duration::from_secs(5));
        assert_eq!(s.pg_lock_timeout, Duration::from_millis(250));
        assert_eq!(s.lock_timeout_retries, 0);
        assert_eq!(s.statement_timeout, Some(Duration::from_secs(60)));
        assert_eq!(s.run_timeout, Some(Duration::from_secs(900)));
        assert!(s.allow_unknown_rows);
        assert!(s.allow_out_of_order);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases = [
            ("LOCK_WAIT_SECONDS", "soon"),
            ("PG_LOCK_TIMEOUT_MS", "0"),
            ("MIGRATION_LOCK_KEY", "12x"),
            ("APP_ENV", "prod env"),
            ("ALLOW_UNKNOWN_MIGRATIONS", "maybe"),
            ("RUN_TIMEOUT_SECONDS", "0"),
            ("RUN_TIMEOUT_SECONDS", "1h"),
        ];
        for (var, value) in cases {
            let err = RunSettings::from_env(&env(&[(var, value)])).unwrap_err();
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn database_url_and_libpq_variables() {
        let c = ConnectionSettings::from_env(
            &env(&[("DATABASE_URL", "postgres://app:pw@db.internal:6432/wish")]),
            TlsMode::Prefer,
        )
        .unwrap();
        assert_eq!(c.info().name, "wish");
        assert_eq!(c.info().port, 6432);
        let c = ConnectionSettings::from_env(
            &env(&[
                ("PGHOST", "h"),
                ("PGPORT", "7"),
                ("PGUSER", "u"),
                ("PGPASSWORD", "p"),
                ("PGDATABASE", "d"),
            ]),
            TlsMode::Prefer,
        )
        .unwrap();
        let info = c.info();
        assert_eq!(
            (info.host.as_str(), info.port, info.user.as_str(), info.name.as_str()),
            ("h", 7, "u", "d")
        );
        assert_eq!(c.pg.get_password(), Some(&b"p"[..]));
        assert_eq!(
            ConnectionSettings::from_env(&env(&[]), TlsMode::Prefer).unwrap_err(),
            ConfigError::NoDatabase
        );
    }

    #[test]
    fn an_invalid_url_never_echoes_the_password() {
        let err = ConnectionSettings::from_env(&env(&[("DATABASE_URL", "postgres://u:s3cr3t@h:notaport/d")]), TlsMode::Prefer).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        assert!(err.to_string().contains("DATABASE_URL"));
    }

    #[test]
    fn a_malformed_url_never_echoes_a_piece_of_the_password() {
        for url in [
            "postgres://u:s3cr3t@host:s3cr3t/db",
            "host=h port=s3cr3t password=s3cr3t",
            "postgres://u:s3cr3t@host:notaport/db",
            "postgres://u:s3cr3t@[::1/db",
            "postgres://u:s3cr3t@host:5432/db?sslmode=sometimes",
            "postgres://u:s3cr3t@host/db?s3cr3t=1",
            "host=h password=s3cr3t port=x",
            "host=h password='s3cr3t port=5",
            "postgres:/u:s3cr3t@host/db",
        ] {
            let err = ConnectionSettings::from_url("DATABASE_URL", url).unwrap_err().to_string();
            for piece in ["s3cr3t", "s3cr", "3cr3", "cr3t"] {
                assert!(!err.contains(piece), "{url}: {err}");
            }
            assert!(err.starts_with("DATABASE_URL"), "{err}");
        }
        let err = ConnectionSettings::from_url("DATABASE_URL", "postgres://u:pw@host:notaport/db").unwrap_err();
        assert!(err.to_string().contains("port"), "the reason names what to fix: {err}");
    }

    #[test]
    fn tls_mode_precedence() {
        let url = "postgres://u@h/d?sslmode=disable";
        let c = ConnectionSettings::from_env(&env(&[("DATABASE_URL", url)]), TlsMode::Require).unwrap();
        assert_eq!(c.tls, TlsMode::Disable, "an explicit sslmode in the URL stands");
        let c = ConnectionSettings::from_env(&env(&[("DATABASE_URL", "postgres://u@h/d")]), TlsMode::Require).unwrap();
        assert_eq!(c.tls, TlsMode::Require, "the caller's default applies");
        let c = ConnectionSettings::from_env(
            &env(&[("DATABASE_URL", url), ("DB_SSLMODE", "require"), ("DB_CA_BUNDLE", "ca.pem")]),
            TlsMode::Prefer,
        )
        .unwrap();
        assert_eq!(c.tls, TlsMode::Require);
        assert_eq!(c.ca_bundle, Some(PathBuf::from("ca.pem")));
        let verifying =
            ConnectionSettings::from_env(&env(&[("DATABASE_URL", "postgres://u@h/d?sslmode=verify-full")]), TlsMode::Prefer).unwrap();
        assert_eq!(verifying.tls, TlsMode::VerifyFull, "libpq's verify-full in a URL is honoured");
        let err = ConnectionSettings::from_env(&env(&[("DATABASE_URL", url), ("DB_SSLMODE", "sometimes")]), TlsMode::Prefer).unwrap_err();
        assert!(err.to_string().contains("DB_SSLMODE"));
    }
}
