//! Running the CLI (and drizzle-orm's own `migrate()`) the way an operator would, and reading
//! what it printed: the exit code, the `--json` report, and never a password.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use serde_json::Value;

use super::{pg, repo_path, MANIFEST_DIR};

/// The CLI binary, with no database/migration settings inherited from the
/// developer's shell, so each test states exactly what it passes.
pub fn cli() -> Command {
    const SCRUBBED_PREFIXES: &[&str] = &["PG", "DATABASE_", "MIGRATIONS_", "MIGRATOR_", "WISHLIST_", "AWS_", "RUST_LOG"];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wishlist-migrate"));
    for (key, _) in std::env::vars_os() {
        if let Some(k) = key.to_str() {
            if SCRUBBED_PREFIXES.iter().any(|p| k.starts_with(p)) {
                cmd.env_remove(&key);
            }
        }
    }
    // Output assertions shouldn't depend on whether colour was detected.
    cmd.env("NO_COLOR", "1");
    cmd.current_dir(MANIFEST_DIR);
    cmd
}

// ---------------------------------------------------------------------------
// Secrets: every run's output is checked for all of them.

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A fresh random password that no CLI output may ever contain.
pub fn secret_password() -> String {
    let pw: String = std::iter::repeat_with(fastrand::alphanumeric).take(20).collect();
    let pw = format!("pw{pw}");
    SECRETS.lock().unwrap().push(pw.clone());
    pw
}

fn assert_no_secret(what: &str, text: &str) {
    let admin = pg().admin_password().to_string();
    let mut secrets = SECRETS.lock().unwrap().clone();
    secrets.push(admin);
    for secret in secrets {
        assert!(!text.contains(&secret), "a password appeared in the {what} of a run:\n{text}");
    }
}

// ---------------------------------------------------------------------------
// Running the CLI

/// `wishlist-migrate --json <args>` against `db_url` (via DATABASE_URL, as deployments pass it)
/// with migrations read from `migrations` (relative to the repo, or absolute).
pub fn wm(db_url: &str, migrations: impl AsRef<Path>, args: &[&str]) -> Command {
    let mut cmd = cli();
    cmd.env("DATABASE_URL", db_url)
        .arg("--json")
        .arg("--migrations")
        .arg(repo_path("").join(migrations.as_ref()))
        .args(args);
    cmd
}

/// A finished CLI run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(out: Output) -> Self {
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_no_secret("stdout", &run.stdout);
        assert_no_secret("stderr", &run.stderr);
        run
    }

    /// The `--json` report: exactly one JSON object on stdout, nothing else.
    pub fn report(&self) -> Value {
        let value: Value = serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not exactly one JSON object ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        });
        assert!(value.is_object(), "the report is not an object: {value}");
        value
    }

    /// Asserts the exit code, showing everything the run printed when it differs.
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

pub fn run(cmd: &mut Command) -> Run {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", cmd.get_program()));
    Run::from_output(out)
}

/// Starts a run without waiting for it (concurrency tests).
pub fn spawn(cmd: &mut Command) -> std::process::Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wishlist-migrate")
}

/// Waits for the child to exit, at most `bound` (a liveness bound, not a performance one): past
/// it the child is killed and the test fails, saying what hangs.
pub async fn exit_within(mut child: std::process::Child, bound: std::time::Duration, hang: &str) -> Run {
    let started = std::time::Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if started.elapsed() > bound {
            let _ = child.kill();
            let out = wait(child);
            panic!("still running after {bound:?}: {hang}\nstderr:\n{}", out.stderr);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    wait(child)
}

pub fn wait(child: std::process::Child) -> Run {
    Run::from_output(child.wait_with_output().expect("wait for wishlist-migrate"))
}

/// Tags of a report list such as `applied` or `pending`.
pub fn tags(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|e| e["tag"].as_str().expect("tag").to_string())
        .collect()
}

/// (kind, object) of each entry of a report list such as drift's `differences`, sorted.
pub fn kinds_of(report: &Value, field: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = report[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field}: {report}"))
        .iter()
        .map(|d| (d["kind"].as_str().unwrap().to_string(), d["object"].as_str().unwrap().to_string()))
        .collect();
    found.sort();
    found
}

/// The error type of a failed report.
pub fn error_type(report: &Value) -> &str {
    report["error"]["type"]
        .as_str()
        .unwrap_or_else(|| panic!("report has no error.type: {report}"))
}

// ---------------------------------------------------------------------------
// drizzle-orm's own migrate() (tests/peer/drizzle-migrate.mjs)

pub fn drizzle_peer(db_url: &str, migrations: impl AsRef<Path>, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new("node");
    cmd.arg(repo_path("tests/peer/drizzle-migrate.mjs"))
        .current_dir(MANIFEST_DIR)
        .env_remove("MIGRATIONS_SCHEMA")
        .env_remove("MIGRATIONS_TABLE")
        .env("DATABASE_URL", db_url)
        .env("MIGRATIONS_DIR", repo_path("").join(migrations.as_ref()));
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

/// drizzle-kit 1.0's `up` on a drizzle-kit 0.x folder: converts it in place to the 1.0 layout.
pub fn drizzle1_kit_up(dir: &Path) -> Run {
    let config = dir.with_extension("drizzle.config.ts");
    std::fs::write(
        &config,
        format!(
            "export default {{ dialect: 'postgresql', schema: './unused.ts', out: {:?} }};\n",
            dir.display().to_string()
        ),
    )
    .expect("write drizzle-kit config");
    let mut cmd = Command::new("npx");
    cmd.args(["--no-install", "drizzle-kit", "up", "--config"])
        .arg(&config)
        .current_dir(repo_path("tests/peer/drizzle1"));
    let up = run(&mut cmd);
    let _ = std::fs::remove_file(&config);
    up
}

/// drizzle-orm 1.0's `migrate()` (tests/peer/drizzle1/migrate.mjs, its own node_modules) on a
/// drizzle-kit 1.0 folder.
pub fn drizzle1_peer(db_url: &str, migrations: impl AsRef<Path>, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new("node");
    cmd.arg(repo_path("tests/peer/drizzle1/migrate.mjs"))
        .current_dir(repo_path("tests/peer/drizzle1"))
        .env_remove("MIGRATIONS_SCHEMA")
        .env_remove("MIGRATIONS_TABLE")
        .env("DATABASE_URL", db_url)
        .env("MIGRATIONS_DIR", repo_path("").join(migrations.as_ref()));
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}
