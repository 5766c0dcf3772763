//! An emulator of the Lambda Runtime API, the service side of what `wishlist-migrator-lambda`
//! polls for events and posts its answers to.

use std::collections::{HashMap, VecDeque};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::http::{respond, serve, HttpRequest, Shared};

const RUNTIME_PREFIX: &str = "/2018-06-01/runtime";
pub const FUNCTION_NAME: &str = "wishlist-migrator-test";
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:wishlist-migrator-test";

/// What the function posted for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    Response(Value),
    Error { error_type: String, error_message: String },
}

impl Invocation {
    /// The response, or a panic naming the error (with `context`, e.g. the logs).
    pub fn expect_response(self, context: &str) -> Value {
        match self {
            Invocation::Response(v) => v,
            Invocation::Error { error_type, error_message } => {
                panic!("expected a response, got error {error_type}: {error_message}\n{context}")
            }
        }
    }

    /// The error type, or a panic showing the response.
    pub fn expect_error(self, context: &str) -> (String, String) {
        match self {
            Invocation::Error { error_type, error_message } => (error_type, error_message),
            Invocation::Response(v) => panic!("expected an error, got response {v}\n{context}"),
        }
    }
}

struct Queued {
    id: String,
    body: Vec<u8>,
    deadline_in: Duration,
    /// Sent as `Lambda-Runtime-Deadline-Ms` instead of the deadline `deadline_in` makes: what
    /// another Runtime API might send (cargo-lambda's emulator, a broken one).
    deadline_header: Option<String>,
}

#[derive(Default)]
struct RuntimeState {
    queue: VecDeque<Queued>,
    /// Ids handed out by `next` and not yet answered, with the deadline each was sent (none
    /// when a test sent a header of its own, which may not be a moment at all).
    in_flight: HashMap<String, Option<SystemTime>>,
    results: HashMap<String, Invocation>,
    init_error: Option<Value>,
    /// Anything the function did that the real service would reject.
    protocol_errors: Vec<String>,
    shutdown: bool,
}

/// A Lambda Runtime API on `127.0.0.1:port()`: events queued with `invoke*` are
/// handed to whoever long-polls `GET /runtime/invocation/next`.
pub struct RuntimeApi {
    port: u16,
    shared: Arc<Shared<RuntimeState>>,
}

impl RuntimeApi {
    pub fn start() -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(RuntimeState::default()),
            changed: Condvar::new(),
        });
        let handler_state = shared.clone();
        let port = serve(move |request, stream| handle_runtime(&handler_state, request, stream), {
            let s = shared.clone();
            move || s.lock().shutdown
        });
        RuntimeApi { port, shared }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Queues an event and waits for its answer, or returns None after `wait`
    /// (or as soon as `give_up()` says so, e.g. because the function died).
    pub fn invoke_raw(&self, body: Vec<u8>, deadline_in: Duration, wait: Duration, give_up: impl FnMut() -> bool) -> Option<Invocation> {
        self.invoke_queued(body, deadline_in, None, wait, give_up)
    }

    /// Like `invoke_raw`, with `header` as the event's `Lambda-Runtime-Deadline-Ms`.
    pub fn invoke_with_deadline_header(
        &self,
        body: Vec<u8>,
        header: &str,
        wait: Duration,
        give_up: impl FnMut() -> bool,
    ) -> Option<Invocation> {
        self.invoke_queued(body, Duration::ZERO, Some(header.to_string()), wait, give_up)
    }

    fn invoke_queued(
        &self,
        body: Vec<u8>,
        deadline_in: Duration,
        deadline_header: Option<String>,
        wait: Duration,
        mut give_up: impl FnMut() -> bool,
    ) -> Option<Invocation> {
        let id = uuid::Uuid::now_v7().to_string();
        let mut state = self.shared.lock();
        state.queue.push_back(Queued {
            id: id.clone(),
            body,
            deadline_in,
            deadline_header,
        });
        self.shared.changed.notify_all();
        let until = Instant::now() + wait;
        loop {
            if let Some(result) = state.results.remove(&id) {
                return Some(result);
            }
            if state.init_error.is_some() || Instant::now() >= until || give_up() {
                // Leave nothing behind for a later `next` to pick up.
                state.queue.retain(|q| q.id != id);
                return None;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub fn init_error(&self) -> Option<Value> {
        self.shared.lock().init_error.clone()
    }

    /// Requests the real service would have rejected (unknown or already answered
    /// request ids, malformed bodies). Tests should expect this to be empty.
    pub fn protocol_errors(&self) -> Vec<String> {
        self.shared.lock().protocol_errors.clone()
    }

    /// Events queued but not yet fetched by the function.
    pub fn queued(&self) -> usize {
        self.shared.lock().queue.len()
    }

    fn shutdown(&self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn handle_runtime(shared: &Shared<RuntimeState>, request: HttpRequest, stream: &mut TcpStream) -> std::io::Result<bool> {
    let path = request.path.split('?').next().unwrap_or_default();
    let Some(rest) = path.strip_prefix(RUNTIME_PREFIX) else {
        respond(stream, 404, &[], br#"{"errorType":"NotFound"}"#)?;
        return Ok(true);
    };
    let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (request.method.as_str(), parts.as_slice()) {
        ("GET", ["invocation", "next"]) => {
            let mut state = shared.lock();
            let next = loop {
                if state.shutdown {
                    return Ok(false);
                }
                if let Some(next) = state.queue.pop_front() {
                    break next;
                }
                state = shared.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            };
            // Like the service, the clock starts when the function receives the event.
            let deadline = SystemTime::now() + next.deadline_in;
            state
                .in_flight
                .insert(next.id.clone(), next.deadline_header.is_none().then_some(deadline));
            drop(state);
            let deadline_ms = next
                .deadline_header
                .clone()
                .unwrap_or_else(|| deadline.duration_since(UNIX_EPOCH).unwrap().as_millis().to_string());
            let trace = format!(
                "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
                epoch_secs(),
                fastrand::u128(..) >> 32,
                fastrand::u64(..)
            );
            let sent = respond(
                stream,
                200,
                &[
                    ("Content-Type", "application/json"),
                    ("Lambda-Runtime-Aws-Request-Id", &next.id),
                    ("Lambda-Runtime-Deadline-Ms", &deadline_ms),
                    ("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN),
                    ("Lambda-Runtime-Trace-Id", &trace),
                ],
                &next.body,
            );
            if sent.is_err() {
                // The poller went away (e.g. a killed process): keep the event for the next one.
                let mut state = shared.lock();
                state.in_flight.remove(&next.id);
                state.queue.push_front(next);
            }
            sent.map(|()| true)
        }
        ("POST", ["invocation", id, kind @ ("response" | "error")]) => {
            let result = if *kind == "response" {
                match serde_json::from_slice::<Value>(&request.body) {
                    Ok(v) => Ok(Invocation::Response(v)),
                    Err(e) => Err(format!(
                        "response for {id} is not JSON ({e}): {}",
                        String::from_utf8_lossy(&request.body)
                    )),
                }
            } else {
                parse_error(&request).map(|(error_type, error_message)| Invocation::Error { error_type, error_message })
            };
            let mut state = shared.lock();
            let Some(deadline) = state.in_flight.remove(*id) else {
                state
                    .protocol_errors
                    .push(format!("{kind} for unknown or already answered request id {id}"));
                drop(state);
                respond(
                    stream,
                    400,
                    &[("Content-Type", "application/json")],
                    br#"{"errorType":"InvalidRequestID","errorMessage":"unknown request id"}"#,
                )?;
                return Ok(true);
            };
            // The service stops a function at its deadline and reports the invocation timed out,
            // whatever the function posts afterwards: a late answer is no answer.
            let late = deadline.and_then(|d| SystemTime::now().duration_since(d).ok());
            let result = match late {
                Some(late) => Ok(Invocation::Error {
                    error_type: "Sandbox.Timedout".into(),
                    error_message: format!("Task timed out: the function answered {} ms after its deadline", late.as_millis()),
                }),
                None => result,
            };
            let invocation = result.unwrap_or_else(|msg| {
                state.protocol_errors.push(msg.clone());
                Invocation::Error {
                    error_type: "EmulatorBadBody".into(),
                    error_message: msg,
                }
            });
            state.results.insert(id.to_string(), invocation);
            shared.changed.notify_all();
            drop(state);
            respond(stream, 202, &[("Content-Type", "application/json")], br#"{"status":"OK"}"#)?;
            Ok(true)
        }
        ("POST", ["init", "error"]) => {
            let value = serde_json::from_slice::<Value>(&request.body)
                .unwrap_or_else(|_| serde_json::json!({ "raw": String::from_utf8_lossy(&request.body) }));
            let mut state = shared.lock();
            state.init_error = Some(value);
            shared.changed.notify_all();
            drop(state);
            respond(stream, 202, &[("Content-Type", "application/json")], br#"{"status":"OK"}"#)?;
            Ok(true)
        }
        _ => {
            respond(stream, 404, &[], br#"{"errorType":"NotFound"}"#)?;
            Ok(true)
        }
    }
}

/// errorType from the JSON body, else from the Lambda-Runtime-Function-Error-Type header.
fn parse_error(request: &HttpRequest) -> Result<(String, String), String> {
    let header = request.header("lambda-runtime-function-error-type").map(str::to_string);
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|e| format!("error body is not JSON ({e}): {}", String::from_utf8_lossy(&request.body)))?;
    let error_type = body
        .get("errorType")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(header)
        .ok_or_else(|| format!("error without errorType: {body}"))?;
    let error_message = body.get("errorMessage").and_then(Value::as_str).unwrap_or_default().to_string();
    Ok((error_type, error_message))
}

fn epoch_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}
