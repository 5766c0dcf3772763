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
    /// The status this server answered with; 0 when it never answered.
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

/// How the stand-in answers PUTs once the `fail_next_puts` count is used up.
#[derive(Debug, Clone, Default)]
pub enum PutAnswer {
    #[default]
    Ok,
    /// S3's answer to an expired or tampered pre-signed URL.
    Forbidden,
    /// A `307 Temporary Redirect` to this URL.
    Redirect(String),
    /// Reads the request and never answers (the connection stays open until shutdown).
    Never,
}

#[derive(Default)]
struct ResponseState {
    requests: Vec<RecordedRequest>,
    fail_puts: usize,
    puts: PutAnswer,
    shutdown: bool,
}

/// Records every request; answers 200, or what it is told to (`fail_next_puts`, `answer_puts`).
pub struct ResponseServer {
    port: u16,
    shared: Arc<Shared<ResponseState>>,
}

const S3_INTERNAL_ERROR: &[u8] =
    b"<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>";
const S3_ACCESS_DENIED: &[u8] = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";

impl ResponseServer {
    pub fn start() -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(ResponseState::default()),
            changed: Condvar::new(),
        });
        let handler_state = shared.clone();
        let port = serve(
            move |request, stream| {
                let answer = {
                    let mut state = handler_state.lock();
                    let answer = match (request.method.as_str(), state.fail_puts) {
                        ("PUT", n) if n > 0 => {
                            state.fail_puts -= 1;
                            Some((500, None))
                        }
                        ("PUT", _) => match &state.puts {
                            PutAnswer::Ok => Some((200, None)),
                            PutAnswer::Forbidden => Some((403, None)),
                            PutAnswer::Redirect(to) => Some((307, Some(to.clone()))),
                            PutAnswer::Never => None,
                        },
                        _ => Some((200, None)),
                    };
                    state.requests.push(RecordedRequest {
                        method: request.method,
                        path: request.path,
                        headers: request.headers,
                        body: request.body,
                        status: answer.as_ref().map_or(0, |(status, _)| *status),
                    });
                    handler_state.changed.notify_all();
                    answer
                };
                let Some((status, location)) = answer else {
                    let mut state = handler_state.lock();
                    while !state.shutdown {
                        state = handler_state.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                    }
                    return Ok(false);
                };
                let body = match status {
                    500 => S3_INTERNAL_ERROR,
                    403 => S3_ACCESS_DENIED,
                    _ => b"",
                };
                let headers: Vec<(&str, &str)> = location.iter().map(|to| ("Location", to.as_str())).collect();
                respond(stream, status, &headers, body)?;
                Ok(true)
            },
            {
                let s = shared.clone();
                move || s.lock().shutdown
            },
        );
        ResponseServer { port, shared }
    }

    /// How every PUT is answered from now on (after any `fail_next_puts`).
    pub fn answer_puts(&self, answer: PutAnswer) {
        self.shared.lock().puts = answer;
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
