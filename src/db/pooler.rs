//! Whether a connection pooler (PgBouncer, Supavisor, pgcat, RDS Proxy) stands between this
//! tool and PostgreSQL, and whether it keeps one server session for our client while we hold it.
//! A session advisory lock is only worth something on a session that stays ours: behind a
//! transaction-mode pooler each transaction may run on another backend, and the lock stays on a
//! backend other clients then borrow.
//!
//! Two steps, so a direct connection pays nothing:
//! - a pooler answers the startup with a cancel key of its own, so the process id it announces
//!   is not the backend's `pg_backend_pid()` (a plain TCP relay passes the server's through);
//! - only then, a probe with a second client: in session mode a backend serves one client for
//!   that client's whole life, so while we are connected our pid is ours alone and stays the
//!   same; in transaction (or statement) mode a second client is handed our idle backend (the
//!   pooler reuses the most recently freed one first), or our next transaction lands elsewhere.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};
use tokio_postgres::Client;

use crate::db::connection::{first_row, PgError};

/// What the probe saw of the backends serving our client and a second one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Our backend before the second client's query, and after it.
    pub ours_before: i32,
    pub ours_after: i32,
    /// `None`: the second client got no backend within [`SECOND_CLIENT_WAIT`], which a
    /// session-mode pool does when it is full (ours stays reserved for us).
    pub second: Option<i32>,
}

/// How long the second client waits for a backend. A transaction pool hands it our idle one at
/// once; a full session pool makes it queue, and that says nothing against session mode.
pub const SECOND_CLIENT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// How the pooler treats a client's server session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// One backend for our client as long as it stays connected: the lock is safe.
    Session,
    /// Our backend was shared or swapped between transactions.
    Transaction,
}

impl Probe {
    pub fn pooling(&self) -> Pooling {
        let shared = self
            .second
            .is_some_and(|second| second == self.ours_before || second == self.ours_after);
        if shared || self.ours_before != self.ours_after {
            Pooling::Transaction
        } else {
            Pooling::Session
        }
    }
}

/// A warning for a connection to an RDS Proxy endpoint (`*.proxy-*.<region>.rds.amazonaws.com`),
/// which multiplexes transactions like a transaction-mode pooler until something pins the
/// session to one database connection.
pub fn rds_proxy_warning(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let proxy = host.ends_with(".rds.amazonaws.com") && host.split('.').any(|label| label.starts_with("proxy-"));
    proxy.then(|| {
        format!(
            "connected through RDS Proxy ({host}): the run's SET and advisory lock pin the proxy's session to one database connection for the whole run (that connection leaves the proxy's pool until the run ends, and the proxy logs the pinning). The run is safe, but migrations gain nothing from the proxy: point DATABASE_URL (or DB_HOST) at the cluster writer endpoint instead"
        )
    })
}

/// `pg_backend_pid()` in a transaction of its own.
pub async fn backend_pid(client: &Client) -> Result<i32, PgError> {
    let row = first_row(client, "select pg_backend_pid()").await?;
    row.first()
        .and_then(|v| v.as_deref())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| PgError {
            sqlstate: None,
            message: "pg_backend_pid() returned no value".into(),
            detail: None,
            hint: None,
        })
}

/// The process id the server (or a pooler) announced at startup in its BackendKeyData.
/// tokio-postgres keeps it private to the cancel token; the token writes it into a cancel
/// request, so the request is written into memory here and read back. Nothing is sent anywhere.
pub async fn announced_pid(client: &Client) -> Option<i32> {
    let token = client.cancel_token();
    let (ours, mut theirs) = tokio::io::duplex(256);
    let write = token.cancel_query_raw(ours, Passthrough);
    let read = async {
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 64];
        loop {
            let n = theirs.read(&mut chunk).await.ok()?;
            if n == 0 {
                return Some(bytes);
            }
            bytes.extend_from_slice(&chunk[..n]);
            // The token asks for TLS first when the connection's settings want it: say yes.
            if bytes == SSL_REQUEST {
                theirs.write_all(b"S").await.ok()?;
                bytes.clear();
            }
        }
    };
    let (_, bytes) = tokio::join!(write, read);
    cancel_request_pid(&bytes?)
}

const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// The process id of a CancelRequest message: length 16, code 80877102, pid, secret.
fn cancel_request_pid(bytes: &[u8]) -> Option<i32> {
    if bytes.len() != 16 || bytes[..8] != [0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e] {
        return None;
    }
    Some(i32::from_be_bytes(bytes[8..12].try_into().ok()?))
}

/// A "TLS" that is none: the cancel request above only travels through memory.
struct Passthrough;

struct Plain(DuplexStream);

impl TlsConnect<DuplexStream> for Passthrough {
    type Stream = Plain;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Plain, std::io::Error>>;

    fn connect(self, stream: DuplexStream) -> Self::Future {
        std::future::ready(Ok(Plain(stream)))
    }
}

impl TlsStream for Plain {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for Plain {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Plain {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_or_swapped_backend_is_transaction_pooling() {
        let probe = |ours_before, second, ours_after| {
            Probe {
                ours_before,
                ours_after,
                second,
            }
            .pooling()
        };
        assert_eq!(probe(10, Some(11), 10), Pooling::Session);
        assert_eq!(
            probe(10, None, 10),
            Pooling::Session,
            "a full session pool made the second client queue"
        );
        assert_eq!(probe(10, Some(10), 10), Pooling::Transaction, "the second client got our backend");
        assert_eq!(probe(10, Some(11), 11), Pooling::Transaction, "we moved to the second client's");
        assert_eq!(probe(10, Some(11), 12), Pooling::Transaction, "we moved elsewhere");
        assert_eq!(probe(10, None, 12), Pooling::Transaction, "we moved while the pool was full");
    }

    #[test]
    fn only_an_rds_proxy_endpoint_is_warned_about() {
        assert!(rds_proxy_warning("wishlist.proxy-abc123xyz.eu-west-1.rds.amazonaws.com").is_some());
        assert!(rds_proxy_warning("wishlist.cluster-abc123xyz.eu-west-1.rds.amazonaws.com").is_none());
        assert!(rds_proxy_warning("proxy-db.example.com").is_none());
        assert!(rds_proxy_warning("127.0.0.1").is_none());
    }

    #[test]
    fn the_announced_pid_is_read_from_a_cancel_request() {
        let mut request = vec![0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e];
        request.extend_from_slice(&4242i32.to_be_bytes());
        request.extend_from_slice(&7i32.to_be_bytes());
        assert_eq!(cancel_request_pid(&request), Some(4242));
        assert_eq!(cancel_request_pid(&request[..12]), None);
        assert_eq!(cancel_request_pid(&SSL_REQUEST), None);
    }
}
