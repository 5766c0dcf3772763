//! The function under Runtime APIs other than AWS's: cargo-lambda's own emulator, as
//! docs/deploy.md tells a new user to run it (`cargo lambda watch` / `cargo lambda invoke`), and
//! deadlines no Runtime API should send (missing, already past).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::harness::lambda_process::{copy_lines, function_command, LambdaProcess};
use crate::harness::response_url::ResponseServer;
use crate::harness::stack::{cfn_event, response};
use crate::harness::{ledger, pg, pick_port, TAG_0001};

/// cargo-lambda from the repo's .venv (scripts/bootstrap.sh installs the pinned version).
fn cargo_lambda() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/cargo-lambda");
    assert!(path.exists(), "cargo-lambda is not installed in .venv: run scripts/bootstrap.sh");
    path
}

/// A child process killed (and reaped) on drop, whatever the test's outcome.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cargo lambda invoke` against the local emulator, as the docs show it.
fn invoke(port: u16, args: &[&str]) -> Output {
    Command::new(cargo_lambda())
        .args(["lambda", "invoke", "--invoke-address", "127.0.0.1", "--invoke-port"])
        .arg(port.to_string())
        .args(["--output-format", "json"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo lambda invoke")
}

/// cargo-lambda 1.9.2 sends `Lambda-Runtime-Deadline-Ms: 600000`, its timeout as a duration, where
/// AWS sends epoch milliseconds: read as AWS's, every migrate stopped at once with
/// DeadlineExceeded. Only cargo-lambda's Runtime API is started (`--only-lambda-apis`); the
/// function is the binary this test run already built.
#[tokio::test(flavor = "multi_thread")]
async fn cargo_lambda_watch_and_invoke_run_a_migrate() {
    let db = pg().fresh_db().await;
    let port = pick_port();
    let mut watch = Command::new(cargo_lambda());
    watch
        .args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
        ])
        .arg(port.to_string())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _watch = Killed(watch.spawn().expect("start cargo lambda watch"));
    let until = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "cargo lambda watch did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let runtime_api = format!("http://127.0.0.1:{port}/.rt");
    let mut function = function_command(
        env!("CARGO_BIN_EXE_wishlist-migrator-lambda"),
        &runtime_api,
        &[
            ("APP_ENV", "test"),
            ("DATABASE_URL", &db.url),
            ("DB_SSLMODE", "disable"),
            ("DB_ALLOW_PLAINTEXT", "true"),
        ],
    );
    let mut child = function.spawn().expect("start the function");
    let logs = Arc::new(Mutex::new(Vec::new()));
    for pipe in [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let logs = logs.clone();
        std::thread::spawn(move || copy_lines(pipe, &logs));
    }
    let _function = Killed(child);
    let logs = || String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();

    let status = invoke(port, &["--data-file", "events/status.json"]);
    assert!(
        status.status.success(),
        "status: {}\n{}",
        String::from_utf8_lossy(&status.stderr),
        logs()
    );
    let migrate = invoke(port, &["--data-file", "events/migrate.json"]);
    let stdout = String::from_utf8_lossy(&migrate.stdout);
    assert!(
        migrate.status.success(),
        "migrate under cargo-lambda failed: {stdout}{}\n--- function logs ---\n{}",
        String::from_utf8_lossy(&migrate.stderr),
        logs()
    );
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(report["status"], "applied", "{report}");
    assert_eq!(report["current"], TAG_0001);
    assert_eq!(ledger(&db).await.len(), 2);
    // The function says which convention it read, so a surprising deadline is explained.
    assert!(
        logs().contains("a duration, not epoch milliseconds"),
        "no warning about the emulator's deadline:\n{}",
        logs()
    );
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_past_deadline_is_refused_before_anything_runs() {
    let db = pg().fresh_db().await;
    let lambda = LambdaProcess::start(&[
        ("APP_ENV", "test"),
        ("DATABASE_URL", &db.url),
        ("DB_SSLMODE", "disable"),
        ("DB_ALLOW_PLAINTEXT", "true"),
    ]);
    let past = (now_ms() - 5_000).to_string();
    for header in ["0", past.as_str()] {
        let (error_type, message) = lambda
            .invoke_with_deadline_header(json!({"action": "migrate"}), header)
            .expect_error(&lambda.logs_tail(50));
        assert_eq!(error_type, "InvalidDeadline", "{header}: {message}");
        assert!(message.contains("nothing ran"), "{message}");
        if header != "0" {
            assert!(message.contains("ms before the function received the event"), "{message}");
        }
    }
    assert!(ledger(&db).await.is_empty(), "nothing ran");

    // CloudFormation is still answered, rather than left waiting for an hour.
    let server = ResponseServer::start();
    let create = cfn_event("Create", "req-past", &server.url("/past"), json!({}));
    let returned = response(lambda.invoke_with_deadline_header(create, &past), "Create");
    assert_eq!(returned["Status"], "FAILED", "{returned}");
    let answer = server.wait_for_requests(1, Duration::from_secs(30))[0].body_json();
    assert_eq!(answer["Status"], "FAILED");
    assert!(answer["Reason"].as_str().unwrap().starts_with("InvalidDeadline: "), "{answer}");
    assert!(ledger(&db).await.is_empty(), "nothing ran");
    // A Delete runs nothing either way: it still succeeds, or the stack could never be deleted.
    let delete = cfn_event("Delete", "req-past-delete", &server.url("/past-delete"), json!({}));
    let returned = response(lambda.invoke_with_deadline_header(delete, "0"), "Delete");
    assert_eq!(returned["Status"], "SUCCESS", "{returned}");

    // The same function still works with a deadline as AWS sends it.
    let migrated = response(lambda.invoke(json!({"action": "migrate"})), "migrate");
    assert_eq!(migrated["status"], "applied", "{migrated}");
}
