//! TLS for the run's connection: the mode and CA bundle checked (and the bundle loaded) when the
//! connection is opened, the native-tls connector itself built only when the server agrees to
//! TLS, and shared per process.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

use std::path::Path;

use tokio_postgres::config::SslMode;

/// `DB_CA_BUNDLE` value naming the bundle compiled into the binary.
pub const EMBEDDED_CA_BUNDLE: &str = "embedded";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsMode {
    Disable,
    /// TLS when the server offers it.
    Prefer,
    /// TLS or no connection. Certificates are verified (host name included) when `DB_CA_BUNDLE`
    /// names the trusted CAs; without a bundle the link is encrypted but the server unverified,
    /// as with libpq's `require`.
    Require,
    /// Like `Require`, but refuses to connect without a CA bundle.
    VerifyFull,
}

impl TlsMode {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "disable" => Some(Self::Disable),
            "prefer" | "allow" => Some(Self::Prefer),
            "require" => Some(Self::Require),
            "verify-full" | "verify-ca" => Some(Self::VerifyFull),
            _ => None,
        }
    }

    pub(crate) fn from_pg(mode: SslMode) -> Self {
        match mode {
            SslMode::Disable => Self::Disable,
            SslMode::Require => Self::Require,
            _ => Self::Prefer,
        }
    }
}

/// The TLS settings cannot work: a configuration error, found before anything connects.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("DB_CA_BUNDLE {path}: {reason}")]
    CaBundle { path: String, reason: String },
    #[error("cannot set up TLS: {reason}")]
    Settings { reason: String },
}

/// The connector for `settings`: checked now, built on first use.
pub(super) fn connector(mode: TlsMode, ca_bundle: Option<&Path>) -> Result<LazyTls, TlsSetupError> {
    Ok(LazyTls(tls_source(mode, ca_bundle)?))
}

/// What the TLS connector is built from; also the key of the per-process connector cache.
#[derive(Clone)]
struct TlsSource {
    mode: TlsMode,
    bundle: Option<(String, Arc<Vec<native_tls::Certificate>>)>,
}

/// Checks the TLS settings and loads the CA bundle now (a bad bundle is a configuration error,
/// not a connection failure), but leaves building the connector to [`LazyTls`].
fn tls_source(mode: TlsMode, ca_bundle: Option<&Path>) -> Result<TlsSource, TlsSetupError> {
    let bundle = match (ca_bundle, mode) {
        (Some(path), _) => {
            let display = path.display().to_string();
            let pem = if display == EMBEDDED_CA_BUNDLE {
                crate::migrations::embedded::CA_BUNDLE.map(<[u8]>::to_vec).ok_or_else(|| TlsSetupError::CaBundle {
                    path: display.clone(),
                    reason: "this build has no CA bundle built in: put the PEM at certs/rds-ca-bundle.pem before building (see certs/README.md)".into(),
                })?
            } else {
                std::fs::read(path).map_err(|e| TlsSetupError::CaBundle {
                    path: display.clone(),
                    reason: e.to_string(),
                })?
            };
            let certificates = pem_certificates(&pem).map_err(|reason| TlsSetupError::CaBundle {
                path: display.clone(),
                reason,
            })?;
            Some((display, Arc::new(certificates)))
        }
        (None, TlsMode::VerifyFull) => {
            return Err(TlsSetupError::Settings {
                reason: "DB_SSLMODE=verify-full needs DB_CA_BUNDLE naming the CA certificates to trust".into(),
            })
        }
        (None, _) => None,
    };
    Ok(TlsSource { mode, bundle })
}

/// What a cached TLS connector was built for: the mode and the CA bundle path.
type ConnectorKey = (TlsMode, Option<String>);

impl TlsSource {
    fn key(&self) -> ConnectorKey {
        (self.mode, self.bundle.as_ref().map(|(path, _)| path.clone()))
    }

    fn build(&self) -> Result<native_tls::TlsConnector, native_tls::Error> {
        let mut builder = native_tls::TlsConnector::builder();
        match &self.bundle {
            Some((_, certificates)) => {
                builder.disable_built_in_roots(true);
                for certificate in certificates.iter() {
                    builder.add_root_certificate(certificate.clone());
                }
            }
            None => {
                builder.danger_accept_invalid_certs(true);
                builder.danger_accept_invalid_hostnames(true);
            }
        }
        builder.build()
    }

    /// Building a connector loads the system trust store (tens of milliseconds): do it once per
    /// process and settings, so warm Lambda invocations and retries reuse it.
    fn connector(&self) -> Result<native_tls::TlsConnector, native_tls::Error> {
        static CACHE: Mutex<Vec<(ConnectorKey, native_tls::TlsConnector)>> = Mutex::new(Vec::new());
        let key = self.key();
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, connector)) = cache.iter().find(|(k, _)| *k == key) {
            return Ok(connector.clone());
        }
        let connector = self.build()?;
        cache.push((key, connector.clone()));
        Ok(connector)
    }
}

/// A `MakeTlsConnect` that builds the real connector only once the server has agreed to TLS:
/// a `prefer` connection to a server without TLS never pays for it.
#[derive(Clone)]
pub(super) struct LazyTls(TlsSource);

pub(super) struct LazyConnect {
    source: TlsSource,
    domain: String,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S> MakeTlsConnect<S> for LazyTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = postgres_native_tls::TlsStream<S>;
    type TlsConnect = LazyConnect;
    type Error = BoxError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<LazyConnect, BoxError> {
        Ok(LazyConnect {
            source: self.0.clone(),
            domain: domain.to_string(),
        })
    }
}

impl<S> TlsConnect<S> for LazyConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = postgres_native_tls::TlsStream<S>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Stream, BoxError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let connector = self.source.connector()?;
            let tls = postgres_native_tls::TlsConnector::new(connector, &self.domain);
            Ok(TlsConnect::connect(tls, stream).await?)
        })
    }
}

/// Every certificate of a PEM bundle (native-tls parses one certificate per call).
pub(super) fn pem_certificates(pem: &[u8]) -> Result<Vec<native_tls::Certificate>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = std::str::from_utf8(pem).map_err(|_| "not a PEM text file".to_string())?;
    let mut certificates = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let end = rest[start..]
            .find(END)
            .map(|e| start + e + END.len())
            .ok_or_else(|| format!("certificate {} has no END line", certificates.len() + 1))?;
        let certificate = native_tls::Certificate::from_pem(&rest.as_bytes()[start..end])
            .map_err(|e| format!("certificate {} is invalid: {e}", certificates.len() + 1))?;
        certificates.push(certificate);
        rest = &rest[end..];
    }
    if certificates.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(certificates)
}
