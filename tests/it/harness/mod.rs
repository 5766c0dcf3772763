//! The integration tests' shared harness.
//!
//! One PostgreSQL cluster and, if a test asks, one moto server serve the whole test run:
//! each is started on first use and shared by every test (see `pg` for how tests isolate
//! themselves). The Lambda tests add servers of their own per test (`runtime_api`,
//! `response_url`).
//!
//! Statics are never dropped and tests may panic, so the servers are not
//! stopped from Rust. Instead each one runs under a tiny `sh` wrapper whose
//! stdin is a pipe this process holds open for its whole life: when the test
//! binary exits for any reason (even SIGKILL) the kernel closes the pipe, the
//! wrapper's `read` returns, and it kills the server and deletes its files.

pub mod db_state;
pub mod fixtures;
mod http;
pub mod lambda_process;
pub mod moto;
pub mod pg;
pub mod pgbouncer;
pub mod pitr;
pub mod process;
pub mod proxy;
pub mod response_url;
pub mod runtime_api;
pub mod stack;
pub mod throttle;
pub mod tls;
pub mod workflows;

// The harness's own tests, so a broken environment fails there first and not as confusing
// failures in the real tests; here because a test module `harness` would clash with this one.
mod self_check;

pub use db_state::*;
pub use fixtures::*;
pub use moto::moto;
pub use pg::{pg, pg_tool, private_pg, PgServer, TestDb};
pub use process::*;

use std::net::TcpListener;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::time::Duration;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Port collisions with other processes are possible between choosing a port
/// and the server binding it; a collision is retried with a new port.
const START_ATTEMPTS: u32 = 5;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `sh -c script sh args...` whose stdin is a pipe only we hold the write
/// end of (std marks it close-on-exec, so no other child inherits it).
fn spawn_with_lifeline(script: &str, args: &[String]) -> Result<ChildStdin, String> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Out of the terminal's process group, so Ctrl-C on `cargo test` kills
        // only the test binary and the wrapper still gets to clean up.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("spawn sh: {e}"))?;
    Ok(child.stdin.take().expect("piped stdin"))
}

/// A port that was free a moment ago. Random rather than kernel-assigned
/// (bind to 0) so concurrent test runs rarely pick the same one.
pub fn pick_port() -> u16 {
    loop {
        let port = fastrand::u16(20000..60000);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn tail_file(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{}: {e}>", path.display()));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// SQL identifier quoting.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// SQL string literal quoting (standard_conforming_strings is on by default).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
