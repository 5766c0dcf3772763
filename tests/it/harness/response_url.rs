//! A stand-in for CloudFormation's pre-signed ResponseURL, where the function PUTs its answer
//! to a custom resource request.

use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::{respond, serve, Shared};

/// One request as received; header names lowercased, values kept verbatim
/// (including empty ones: CloudFormation's signature covers an empty Content-Type).
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status this server answered with.
    pub status: u16,
}

impl RecordedRequest {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().filter(|(n, _)| *n == name).map(|(_, v)| v.as_str()).collect()
    }

    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

#[derive(Default)]
struct ResponseState {
    requests: Vec<RecordedRequest>,
    fail_puts: usize,
    shutdown: bool,
}

/// Records every request; answers 200, or 500 to the first N PUTs when told to.
pub struct ResponseServer {
    port: u16,
    shared: Arc<Shared<ResponseState>>,
}

impl ResponseServer {
    pub fn start() -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(ResponseState::default()),
            changed: Condvar::new(),
        });
        let handler_state = shared.clone();
        let port = serve(
            move |request, stream| {
                let status = {
                    let mut state = handler_state.lock();
                    let status = if request.method == "PUT" && state.fail_puts > 0 {
                        state.fail_puts -= 1;
                        500
                    } else {
                        200
                    };
                    state.requests.push(RecordedRequest {
                        method: request.method,
                        path: request.path,
                        headers: request.headers,
                        body: request.body,
                        status,
                    });
                    handler_state.changed.notify_all();
                    status
                };
                let body: &[u8] = if status == 500 {
                    b"<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>"
                } else {
                    b""
                };
                respond(stream, status, &[], body)?;
                Ok(true)
            },
            {
                let s = shared.clone();
                move || s.lock().shutdown
            },
        );
        ResponseServer { port, shared }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/<path>`; `path` may carry a query string.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, path.trim_start_matches('/'))
    }

    /// Answers 500 to the next `n` PUTs (then 200 again), to exercise retries.
    pub fn fail_next_puts(&self, n: usize) {
        self.shared.lock().fail_puts = n;
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Waits until at least `n` requests arrived; returns them all (maybe fewer on timeout).
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let until = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while state.requests.len() < n {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self.shared.changed.wait_timeout(state, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        state.requests.clone()
    }
}

impl Drop for ResponseServer {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
