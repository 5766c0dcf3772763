//! The real `wishlist-migrator-lambda` binary, running under a `RuntimeApi` of its own.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::runtime_api::{Invocation, RuntimeApi, FUNCTION_NAME};

/// How long `invoke` waits beyond the invocation's own deadline before giving up:
/// the function is expected to answer by its deadline, so this only catches hangs.
const INVOKE_GRACE: Duration = Duration::from_secs(60);

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
        let api = RuntimeApi::start();
        let mut cmd = function_command(binary, &api.address(), env);
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
    /// The function's resident memory now, in KiB (`VmRSS`), to watch a warm container's growth.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.lock().expect("child").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the function is running");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    pub fn invoke(&self, event: Value) -> Invocation {
        self.invoke_with_deadline(event, Duration::from_secs(60))
    }

    pub fn invoke_with_deadline(&self, event: Value, deadline_in: Duration) -> Invocation {
        self.invoke_bytes(serde_json::to_vec(&event).unwrap(), deadline_in)
    }

    /// Sends `body` as is, e.g. to test a payload that is not JSON.
    pub fn invoke_bytes(&self, body: Vec<u8>, deadline_in: Duration) -> Invocation {
        let answer = self
            .api
            .invoke_raw(body, deadline_in, deadline_in + INVOKE_GRACE, || self.exited().is_some());
        self.answered(answer, deadline_in)
    }

    /// Invokes with `header` as `Lambda-Runtime-Deadline-Ms`, whatever it means.
    pub fn invoke_with_deadline_header(&self, event: Value, header: &str) -> Invocation {
        let body = serde_json::to_vec(&event).unwrap();
        let answer = self
            .api
            .invoke_with_deadline_header(body, header, INVOKE_GRACE, || self.exited().is_some());
        self.answered(answer, Duration::ZERO)
    }

    fn answered(&self, answer: Option<Invocation>, deadline_in: Duration) -> Invocation {
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

    /// See `RuntimeApi::protocol_errors`.
    pub fn protocol_errors(&self) -> Vec<String> {
        self.api.protocol_errors()
    }

    /// The exit status once the process has ended (it should not, between invocations).
    pub fn exited(&self) -> Option<ExitStatus> {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).try_wait().ok().flatten()
    }
}

/// The function binary as Lambda starts it: the variables Lambda sets, dummy AWS credentials,
/// the Runtime API at `runtime_api` and `env` on top. Nothing database- or AWS-related is
/// inherited from the shell; stdin is closed and stdout and stderr are piped.
pub fn function_command(binary: &str, runtime_api: &str, env: &[(&str, &str)]) -> Command {
    const SCRUBBED_PREFIXES: &[&str] = &[
        "PG",
        "DATABASE_",
        "DB_",
        "MIGRATIONS_",
        "MIGRATOR_",
        "WISHLIST_",
        "AWS_",
        "SSM_",
        "APP_ENV",
        "RUST_LOG",
        "_HANDLER",
        "LAMBDA_",
        "CFN_",
    ];
    let mut cmd = Command::new(binary);
    for (key, _) in std::env::vars_os() {
        if let Some(k) = key.to_str() {
            if SCRUBBED_PREFIXES.iter().any(|p| k.starts_with(p)) {
                cmd.env_remove(&key);
            }
        }
    }
    let log_stream = format!("2025/01/01/[$LATEST]{:032x}", fastrand::u128(..));
    cmd.env("AWS_LAMBDA_RUNTIME_API", runtime_api)
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
        .env("NO_COLOR", "1")
        // The ResponseURL stand-in listens on the loopback: allowed instead of S3 (`env` may override).
        .env("CFN_RESPONSE_URL_ALLOW", "http://127.0.0.1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
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
pub fn copy_lines(pipe: Box<dyn Read + Send>, logs: &Mutex<Vec<u8>>) {
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
