//! The run's one dedicated database connection: settings, TLS, opening and closing it, the
//! session checks made before anything else, and Postgres errors in an owned, reportable form.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::Client;

use crate::db::backoff;
pub use crate::db::tls::TlsMode;
use crate::db::tls::TlsSetupError;
use crate::error::{Classified, Details, ErrorType};

/// How the server sees this tool's sessions (`pg_stat_activity.application_name`).
pub const APPLICATION_NAME: &str = "wishlist-migrator";

/// TCP keepalives: a peer that vanished (a dropped NAT entry, a failed-over writer) is noticed
/// after about idle + interval * retries (40 s) instead of the kernel's two hours.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;
/// Data sent but not acknowledged for this long ends the connection (Linux `TCP_USER_TIMEOUT`).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(40);

/// `idle_in_transaction_session_timeout` of the migration session: a client frozen inside a
/// transaction (a suspended Lambda, a stalled network) cannot keep its locks longer than this.
/// A long statement is not idle, so it is not affected.
pub const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    pub pg: tokio_postgres::Config,
    pub tls: TlsMode,
    pub ca_bundle: Option<PathBuf>,
    pub connect_timeout: Duration,
}

/// Where a run connected, for reports: never the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseInfo {
    pub host: String,
    pub port: u16,
    pub name: String,
    pub user: String,
}

impl std::fmt::Display for DatabaseInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}/{}", self.user, self.host, self.port, self.name)
    }
}

impl ConnectionSettings {
    pub fn new(pg: tokio_postgres::Config, tls: TlsMode) -> Self {
        Self {
            pg,
            tls,
            ca_bundle: None,
            connect_timeout: Duration::from_secs(10),
        }
    }

    pub fn info(&self) -> DatabaseInfo {
        let host = match self.pg.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let user = self.pg.get_user().unwrap_or("").to_string();
        DatabaseInfo {
            host,
            port: self.pg.get_ports().first().copied().unwrap_or(5432),
            name: self.pg.get_dbname().map(str::to_string).unwrap_or_else(|| user.clone()),
            user,
        }
    }
}

/// A Postgres error as reported to operators: SQLSTATE, message, detail and hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PgError {
    pub sqlstate: Option<String>,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl PgError {
    pub fn is(&self, sqlstate: &str) -> bool {
        self.sqlstate.as_deref() == Some(sqlstate)
    }
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => Self {
                sqlstate: Some(db.code().code().to_string()),
                message: db.message().to_string(),
                detail: db.detail().map(str::to_string),
                hint: db.hint().map(str::to_string),
            },
            None => {
                // Client-side errors (closed connection, timeouts) carry their cause in the chain.
                let mut message = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    // Some errors already print their cause (native-tls's does): say it once.
                    let text = s.to_string();
                    if !message.contains(&text) {
                        message.push_str(": ");
                        message.push_str(&text);
                    }
                    source = s.source();
                }
                Self {
                    sqlstate: e.code().map(|c| c.code().to_string()),
                    message,
                    detail: None,
                    hint: None,
                }
            }
        }
    }
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sqlstate {
            Some(code) => write!(f, "{} (SQLSTATE {code})", self.message)?,
            None => f.write_str(&self.message)?,
        }
        if let Some(detail) = &self.detail {
            write!(f, "; detail: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error("cannot connect to {target}: {error}")]
    Connect { target: DatabaseInfo, error: PgError },
    #[error("cannot connect to {target}: no answer within {seconds} s; check the host, port, security group and that the database is up")]
    Timeout { target: DatabaseInfo, seconds: u64 },
    /// 53300 or 53400 on every attempt until the connect budget ran out.
    #[error("cannot connect to {target}: the server has no connection slot left ({error}); tried {attempts} times over {waited_ms} ms. Close idle sessions (pg_stat_activity), raise the role's CONNECTION LIMIT or max_connections, or run again when fewer clients are connected")]
    TooManyConnections {
        target: DatabaseInfo,
        attempts: u32,
        waited_ms: u64,
        error: PgError,
    },
}

impl ConnectError {
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Connect { error, .. } | Self::TooManyConnections { error, .. } => error.sqlstate.as_deref(),
            _ => None,
        }
    }

    /// Wrong password (or a rotated secret): the Lambda refetches the secret once on this.
    pub fn is_authentication_failure(&self) -> bool {
        matches!(self.sqlstate(), Some("28P01" | "28000"))
    }
}

/// An open connection and the task driving it.
pub struct Database {
    client: Client,
    driver: JoinHandle<()>,
    pub info: DatabaseInfo,
    /// The server's major version, from what it reported at startup (`server_version`).
    pub server_major: Option<u32>,
}

/// What the session may do, read before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionState {
    pub read_only: bool,
    pub in_recovery: bool,
}

impl Database {
    /// Connects; a server out of connection slots (53300, 53400) is tried again with backoff
    /// for up to `connect_timeout` in all (which `Session::open` clamps to the run's deadline).
    pub async fn connect(settings: &ConnectionSettings) -> Result<Self, ConnectError> {
        let started = std::time::Instant::now();
        let mut attempt: u32 = 0;
        loop {
            match Self::connect_once(settings).await {
                Err(ConnectError::Connect { target, error }) if error.sqlstate.as_deref().is_some_and(backoff::is_connection_limit) => {
                    let elapsed = started.elapsed();
                    let Some(delay) = backoff::connect_retry_delay(attempt, elapsed, settings.connect_timeout) else {
                        return Err(ConnectError::TooManyConnections {
                            target,
                            attempts: attempt + 1,
                            waited_ms: elapsed.as_millis() as u64,
                            error,
                        });
                    };
                    tracing::info!(
                        attempt = attempt + 1,
                        sqlstate = error.sqlstate.as_deref(),
                        delay_ms = delay.as_millis() as u64,
                        "no connection slot; trying again"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn connect_once(settings: &ConnectionSettings) -> Result<Self, ConnectError> {
        let info = settings.info();
        let mut pg = settings.pg.clone();
        pg.application_name(APPLICATION_NAME);
        pg.connect_timeout(settings.connect_timeout);
        pg.keepalives(true);
        pg.keepalives_idle(KEEPALIVE_IDLE);
        pg.keepalives_interval(KEEPALIVE_INTERVAL);
        pg.keepalives_retries(KEEPALIVE_RETRIES);
        pg.tcp_user_timeout(TCP_USER_TIMEOUT);
        pg.ssl_mode(match settings.tls {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyFull => SslMode::Require,
        });
        let tls = super::tls::connector(settings.tls, settings.ca_bundle.as_deref())?;
        let connecting = pg.connect(tls);
        // connect_timeout covers each socket attempt, not the whole handshake: bound it all.
        let (client, connection) = match tokio::time::timeout(settings.connect_timeout + Duration::from_secs(1), connecting).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                // OpenSSL's reasons ("IP address mismatch", "unable to get local issuer
                // certificate") do not say which setting to fix.
                let tls_failed = std::error::Error::source(&e).is_some_and(|s| s.is::<native_tls::Error>());
                let mut error = PgError::from(e);
                if tls_failed && settings.ca_bundle.is_some() && error.hint.is_none() {
                    error.hint = Some(format!(
                        "the server's certificate must be signed by a CA in DB_CA_BUNDLE and name {:?} (the host connected to) in its subjectAltName",
                        info.host
                    ));
                }
                return Err(ConnectError::Connect { target: info, error });
            }
            Err(_) => {
                return Err(ConnectError::Timeout {
                    seconds: settings.connect_timeout.as_secs() + 1,
                    target: info,
                })
            }
        };
        let server_major = connection.parameter("server_version").and_then(major_version);
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "database connection ended with an error");
            }
        });
        Ok(Self {
            client,
            driver,
            info,
            server_major,
        })
    }

    /// Whether the server times each statement of a multi-statement request on its own
    /// (`statement_timeout`, PostgreSQL 13 on; before, the whole request shared one).
    pub fn times_each_statement(&self) -> bool {
        self.server_major.is_some_and(|major| major >= 13)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Also sets `idle_in_transaction_session_timeout` for the session, in the same round trip:
    /// this runs before the advisory lock is taken.
    pub async fn session_state(&self) -> Result<SessionState, PgError> {
        let sql = format!(
            "{}; select current_setting('transaction_read_only') = 'on', pg_is_in_recovery()",
            session_setup_sql()
        );
        let row = first_row(&self.client, &sql).await?;
        Ok(SessionState {
            read_only: row.first().is_some_and(|v| v.as_deref() == Some("t")),
            in_recovery: row.get(1).is_some_and(|v| v.as_deref() == Some("t")),
        })
    }

    /// Drops the connection at once, without waiting for an answer still owed (a query queued in
    /// a pooler): the socket closes, which ends the queued request too.
    pub fn abandon(self) {
        self.driver.abort();
    }

    /// Ends the session; the server releases anything it still holds for it.
    pub async fn close(self) {
        drop(self.client);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.driver).await;
    }
}

/// `15.18 (Debian 15.18-0+deb12u1)` → 15, `9.6.24` → 9.
fn major_version(server_version: &str) -> Option<u32> {
    let digits: String = server_version.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// What a session that may write sets before anything else: a transaction left idle by a
/// stalled client must not hold its locks for long.
pub fn session_setup_sql() -> String {
    format!(
        "set idle_in_transaction_session_timeout = '{}s'",
        IDLE_IN_TRANSACTION_TIMEOUT.as_secs()
    )
}

/// The first row of a simple-protocol query, as text. The simple protocol takes one round trip
/// where a prepared statement takes two: it serves the queries every run makes, with no
/// parameters or with integer literals only.
pub(crate) async fn first_row(client: &Client, sql: &str) -> Result<Vec<Option<String>>, tokio_postgres::Error> {
    for message in client.simple_query(sql).await? {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
            return Ok((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect());
        }
    }
    Ok(Vec::new())
}

impl PgError {
    pub fn details(&self) -> Details {
        Details {
            sqlstate: self.sqlstate.clone(),
            detail: self.detail.clone(),
            hint: self.hint.clone(),
            ..Details::default()
        }
    }
}

impl Classified for ConnectError {
    fn error_type(&self) -> ErrorType {
        match self {
            Self::Tls(_) => ErrorType::ConfigError,
            Self::Connect { .. } | Self::Timeout { .. } | Self::TooManyConnections { .. } => ErrorType::ConnectionFailed,
        }
    }

    fn details(&self) -> Details {
        match self {
            Self::Connect { error, .. } | Self::TooManyConnections { error, .. } => error.details(),
            _ => Details::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_major_version_is_read_from_what_the_server_reports() {
        assert_eq!(major_version("15.18 (Debian 15.18-0+deb12u1)"), Some(15));
        assert_eq!(major_version("12.22"), Some(12));
        assert_eq!(major_version("17beta1"), Some(17));
        assert_eq!(major_version("unknown"), None);
    }

    #[test]
    fn tls_modes_parse_like_libpq() {
        assert_eq!(TlsMode::parse("disable"), Some(TlsMode::Disable));
        assert_eq!(TlsMode::parse("Require"), Some(TlsMode::Require));
        assert_eq!(TlsMode::parse("verify-full"), Some(TlsMode::VerifyFull));
        assert_eq!(TlsMode::parse("on"), None);
    }

    #[test]
    fn a_bundle_without_certificates_is_refused() {
        let error = |pem: &[u8]| crate::db::tls::pem_certificates(pem).err().expect("refused");
        assert!(error(b"hello").contains("no PEM"));
        assert!(error(b"-----BEGIN CERTIFICATE-----\nMIIB").contains("no END"));
    }

    #[test]
    fn pg_error_display_carries_sqlstate_detail_and_hint() {
        let e = PgError {
            sqlstate: Some("42P07".into()),
            message: "relation \"wishlist_items\" already exists".into(),
            detail: Some("d".into()),
            hint: Some("h".into()),
        };
        assert_eq!(
            e.to_string(),
            "relation \"wishlist_items\" already exists (SQLSTATE 42P07); detail: d; hint: h"
        );
        assert!(e.is("42P07"));
    }
}
