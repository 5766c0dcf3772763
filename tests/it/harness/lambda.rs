//! The Lambda side of the integration tests: an emulator of the Lambda Runtime API
//! (`RuntimeApi`), the real `wishlist-migrator-lambda` binary running under it
//! (`LambdaProcess`), and a stand-in for CloudFormation's pre-signed ResponseURL
//! (`ResponseServer`).
//!
//! Both servers are plain HTTP/1.1 on loopback, one thread per connection, so the
//! tests need no extra dependencies and can see every byte the function sends.
//! They implement only what the runtime client and the CloudFormation responder
//! use: keep-alive, Content-Length and chunked bodies, `Expect: 100-continue`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const RUNTIME_PREFIX: &str = "/2018-06-01/runtime";
/// How long `invoke` waits beyond the invocation's own deadline before giving up:
/// the function is expected to answer by its deadline, so this only catches hangs.
const INVOKE_GRACE: Duration = Duration::from_secs(60);
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

// ---------------------------------------------------------------------------
// Runtime API

struct Queued {
    id: String,
    body: Vec<u8>,
    deadline_in: Duration,
}

#[derive(Default)]
struct RuntimeState {
    queue: VecDeque<Queued>,
    /// Ids handed out by `next` and not yet answered.
    in_flight: HashSet<String>,
    results: HashMap<String, Invocation>,
    init_error: Option<Value>,
    /// Anything the function did that the real service would reject.
    protocol_errors: Vec<String>,
    shutdown: bool,
}

struct Shared<S> {
    state: Mutex<S>,
    changed: Condvar,
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, S> {
        // A panicking connection thread must not take every later assertion with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
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
    pub fn invoke_raw(
        &self,
        body: Vec<u8>,
        deadline_in: Duration,
        wait: Duration,
        mut give_up: impl FnMut() -> bool,
    ) -> Option<Invocation> {
        let id = uuid::Uuid::now_v7().to_string();
        let mut state = self.shared.lock();
        state.queue.push_back(Queued {
            id: id.clone(),
            body,
            deadline_in,
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
            state.in_flight.insert(next.id.clone());
            drop(state);
            // Like the service, the clock starts when the function receives the event.
            let deadline = SystemTime::now() + next.deadline_in;
            let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis().to_string();
            let trace = format!("Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0", epoch_secs(), fastrand::u128(..) >> 32, fastrand::u64(..));
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
                    Err(e) => Err(format!("response for {id} is not JSON ({e}): {}", String::from_utf8_lossy(&request.body))),
                }
            } else {
                parse_error(&request)
                    .map(|(error_type, error_message)| Invocation::Error { error_type, error_message })
            };
            let mut state = shared.lock();
            if !state.in_flight.remove(*id) {
                state.protocol_errors.push(format!("{kind} for unknown or already answered request id {id}"));
                drop(state);
                respond(stream, 400, &[("Content-Type", "application/json")], br#"{"errorType":"InvalidRequestID","errorMessage":"unknown request id"}"#)?;
                return Ok(true);
            }
            let invocation = result.unwrap_or_else(|msg| {
                state.protocol_errors.push(msg.clone());
                Invocation::Error { error_type: "EmulatorBadBody".into(), error_message: msg }
            });
            state.results.insert(id.to_string(), invocation);
            shared.changed.notify_all();
            drop(state);
            respond(stream, 202, &[("Content-Type", "application/json")], br#"{"status":"OK"}"#)?;
            Ok(true)
        }
        ("POST", ["init", "error"]) => {
            let value = serde_json::from_slice::<Value>(&request.body).unwrap_or_else(|_| {
                serde_json::json!({ "raw": String::from_utf8_lossy(&request.body) })
            });
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
    let body: Value = serde_json::from_slice(&request.body).map_err(|e| {
        format!("error body is not JSON ({e}): {}", String::from_utf8_lossy(&request.body))
    })?;
    let error_type = body
        .get("errorType")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(header)
        .ok_or_else(|| format!("error without errorType: {body}"))?;
    let error_message = body
        .get("errorMessage")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok((error_type, error_message))
}

// ---------------------------------------------------------------------------
// The function process

/// `wishlist-migrator-lambda` running under its own `RuntimeApi`; killed on drop.
pub struct LambdaProcess {
    api: RuntimeApi,
    child: Mutex<Child>,
    logs: Arc<Mutex<Vec<u8>>>,
}

impl LambdaProcess {
    /// Starts the binary with the variables Lambda sets, dummy AWS credentials and
    /// `env` on top. Nothing database- or AWS-related is inherited from the shell.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_binary(env!("CARGO_BIN_EXE_wishlist-migrator-lambda"), env)
    }

    pub fn start_binary(binary: &str, env: &[(&str, &str)]) -> Self {
        const SCRUBBED_PREFIXES: &[&str] = &[
            "PG", "DATABASE_", "DB_", "MIGRATIONS_", "MIGRATOR_", "WISHLIST_", "AWS_", "SSM_", "APP_ENV", "RUST_LOG", "_HANDLER", "LAMBDA_",
        ];
        let api = RuntimeApi::start();
        let mut cmd = Command::new(binary);
        for (key, _) in std::env::vars_os() {
            if let Some(k) = key.to_str() {
                if SCRUBBED_PREFIXES.iter().any(|p| k.starts_with(p)) {
                    cmd.env_remove(&key);
                }
            }
        }
        let log_stream = format!("2025/01/01/[$LATEST]{:032x}", fastrand::u128(..));
        cmd.env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{FUNCTION_NAME}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", log_stream)
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env("_HANDLER", "bootstrap")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_SESSION_TOKEN", "testing")
            .env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {binary}: {e}"));
        let logs = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
            child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            std::thread::spawn(move || copy_lines(pipe, &logs));
        }
        LambdaProcess {
            api,
            child: Mutex::new(child),
            logs,
        }
    }

    /// Invokes with a deadline 60 s from when the function receives the event.
    pub fn invoke(&self, event: Value) -> Invocation {
        self.invoke_with_deadline(event, Duration::from_secs(60))
    }

    pub fn invoke_with_deadline(&self, event: Value, deadline_in: Duration) -> Invocation {
        self.invoke_bytes(serde_json::to_vec(&event).unwrap(), deadline_in)
    }

    /// Sends `body` as is, e.g. to test a payload that is not JSON.
    pub fn invoke_bytes(&self, body: Vec<u8>, deadline_in: Duration) -> Invocation {
        let answer = self.api.invoke_raw(body, deadline_in, deadline_in + INVOKE_GRACE, || self.exited().is_some());
        match answer {
            Some(invocation) => invocation,
            None => {
                let why = if let Some(init) = self.api.init_error() {
                    format!("the function reported an init error: {init}")
                } else if let Some(status) = self.exited() {
                    format!("the function exited ({status}) without answering")
                } else {
                    format!("no answer within {:?} (deadline {deadline_in:?})", deadline_in + INVOKE_GRACE)
                };
                panic!("{why}\n--- function logs (tail) ---\n{}", self.logs_tail(200));
            }
        }
    }

    /// Everything the function wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        String::from_utf8_lossy(&self.logs.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    pub fn logs_tail(&self, lines: usize) -> String {
        let logs = self.logs();
        let all: Vec<&str> = logs.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn init_error(&self) -> Option<Value> {
        self.api.init_error()
    }

    /// See `RuntimeApi::protocol_errors`.
    pub fn protocol_errors(&self) -> Vec<String> {
        self.api.protocol_errors()
    }

    /// The exit status once the process has ended (it should not, between invocations).
    pub fn exited(&self) -> Option<ExitStatus> {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).try_wait().ok().flatten()
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).id()
    }
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
        // RuntimeApi's own Drop stops the server.
    }
}

/// Line by line, so a test reading `logs()` mid-run never sees half a line.
fn copy_lines(pipe: Box<dyn Read + Send>, logs: &Mutex<Vec<u8>>) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => logs.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(&line),
        }
    }
}

// ---------------------------------------------------------------------------
// CloudFormation ResponseURL stand-in

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
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
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

// ---------------------------------------------------------------------------
// Minimal HTTP/1.1 server

struct HttpRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Serves on a kernel-chosen loopback port (the listener is bound before anyone
/// learns the port, so there is no race). `handle` returns whether to keep the
/// connection open.
fn serve<H, S>(handle: H, stopped: S) -> u16
where
    H: Fn(HttpRequest, &mut TcpStream) -> std::io::Result<bool> + Send + Sync + 'static,
    S: Fn() -> bool + Send + 'static,
{
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a loopback port");
    let port = listener.local_addr().unwrap().port();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stopped() {
                return;
            }
            let Ok(stream) = stream else { continue };
            let handle = handle.clone();
            std::thread::spawn(move || serve_connection(stream, &*handle));
        }
    });
    port
}

fn serve_connection(mut stream: TcpStream, handle: &dyn Fn(HttpRequest, &mut TcpStream) -> std::io::Result<bool>) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    loop {
        match read_request(&mut reader, &mut stream) {
            Ok(Some(request)) => {
                let close = request
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"));
                match handle(request, &mut stream) {
                    Ok(true) if !close => continue,
                    _ => break,
                }
            }
            Ok(None) => break,
            Err(_) => {
                let _ = respond(&mut stream, 400, &[], b"bad request");
                break;
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Ok(None) on a clean end of stream between requests.
fn read_request(reader: &mut BufReader<TcpStream>, stream: &mut TcpStream) -> std::io::Result<Option<HttpRequest>> {
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
    let mut line = String::new();
    // Tolerate stray blank lines between pipelined requests.
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut words = line.split_whitespace();
    let (Some(method), Some(path), Some(_version)) = (words.next(), words.next(), words.next()) else {
        return Err(invalid(format!("bad request line {line:?}")));
    };
    let (method, path) = (method.to_string(), path.to_string());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(invalid("end of stream inside headers".into()));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':').ok_or_else(|| invalid(format!("bad header {l:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let request_header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    if request_header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let chunked = request_header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(reader)?
    } else {
        let len: usize = match request_header("content-length") {
            Some(v) => v.parse().map_err(|_| invalid(format!("bad Content-Length {v:?}")))?,
            None => 0,
        };
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        body
    };
    Ok(Some(HttpRequest {
        method,
        path,
        headers,
        body,
    }))
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size_text = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        line.clear();
        reader.read_line(&mut line)?;
    }
}

fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<()> {
    let reason = match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    stream.write_all(&out)?;
    stream.flush()
}

fn epoch_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}
