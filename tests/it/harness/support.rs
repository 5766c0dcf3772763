//! What the engine tests share on top of `common`: running the CLI (and drizzle-orm's own
//! `migrate()`) the way an operator would, and reading back what they left in the database.
//!
//! Part of the shared harness: `use harness::support;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{self, pg, TestDb};

pub const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The project's two real migrations, in journal order.
pub const TAG_0000: &str = "0000_create_wishlist_items";
pub const TAG_0001: &str = "0001_wish_2007_enums_audit";

/// A folder of the repository, e.g. "migrations" or "tests/fixtures/engine/failing".
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(MANIFEST_DIR).join(rel)
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
        assert!(
            !text.contains(&secret),
            "a password appeared in the {what} of a run:\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------
// Running the CLI

/// `wishlist-migrate --json <args>` against `db_url` (via DATABASE_URL, as deployments pass it)
/// with migrations read from `migrations` (relative to the repo, or absolute).
pub fn wm(db_url: &str, migrations: impl AsRef<Path>, args: &[&str]) -> Command {
    let mut cmd = harness::cli();
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

// ---------------------------------------------------------------------------
// Reading the database back

/// A migration folder's journal: (tag, when) in journal order.
pub fn journal(dir: &Path) -> Vec<(String, i64)> {
    let text = std::fs::read_to_string(dir.join("meta/_journal.json")).expect("read journal");
    let json: Value = serde_json::from_str(&text).expect("journal is JSON");
    json["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (e["tag"].as_str().unwrap().to_string(), e["when"].as_i64().unwrap()))
        .collect()
}

/// Lowercase hex SHA-256 of a file, as `sha256sum` prints it.
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The ledger rows drizzle-orm would write for `dir`: (hash, created_at) per journal entry.
pub fn expected_ledger(dir: &Path) -> Vec<(String, i64)> {
    journal(dir)
        .into_iter()
        .map(|(tag, when)| (sha256_file(&dir.join(format!("{tag}.sql"))), when))
        .collect()
}

/// Rows of drizzle's ledger in id order as (hash, created_at); empty when it does not exist.
pub async fn ledger_in(db: &TestDb, schema: &str, table: &str) -> Vec<(String, i64)> {
    let qualified = format!("{}.{}", harness::ident(schema), harness::ident(table));
    if !db.table_exists(&qualified).await {
        return Vec::new();
    }
    db.client()
        .await
        .query(&format!("select hash, created_at from {qualified} order by id"), &[])
        .await
        .expect("read ledger")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

pub async fn ledger(db: &TestDb) -> Vec<(String, i64)> {
    ledger_in(db, "drizzle", "__drizzle_migrations").await
}

/// Everything a migration could have created outside the system schemas, as sorted lines:
/// schemas, relations (tables, indexes, sequences), columns with type and default, enum
/// types with their labels, and constraints. Equal before and after = nothing changed.
pub async fn catalog(db: &TestDb) -> Vec<String> {
    const USER: &str = "n.nspname not like 'pg\\_%' and n.nspname <> 'information_schema'";
    let sql = format!(
        "select 'schema ' || n.nspname from pg_namespace n where {USER}
         union all
         select 'rel ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text
           from pg_class c join pg_namespace n on n.oid = c.relnamespace where {USER}
         union all
         select 'col ' || n.nspname || '.' || c.relname || '.' || a.attname || ' '
                || format_type(a.atttypid, a.atttypmod) || ' default ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
           from pg_attribute a
           join pg_class c on c.oid = a.attrelid
           join pg_namespace n on n.oid = c.relnamespace
           left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
          where {USER} and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
         union all
         select 'enum ' || n.nspname || '.' || t.typname || ' '
                || coalesce((select string_agg(e.enumlabel, ',' order by e.enumsortorder) from pg_enum e where e.enumtypid = t.oid), '')
           from pg_type t join pg_namespace n on n.oid = t.typnamespace where {USER} and t.typtype = 'e'
         union all
         select 'constraint ' || n.nspname || '.' || c.conname || ' ' || pg_get_constraintdef(c.oid)
           from pg_constraint c join pg_namespace n on n.oid = c.connamespace where {USER}"
    );
    let mut lines: Vec<String> = db
        .client()
        .await
        .query(&sql, &[])
        .await
        .expect("read catalog")
        .iter()
        .map(|r| r.get(0))
        .collect();
    lines.sort();
    lines
}

pub async fn schema_exists(db: &TestDb, schema: &str) -> bool {
    db.client()
        .await
        .query_one("select to_regnamespace($1) is not null", &[&harness::ident(schema)])
        .await
        .expect("to_regnamespace")
        .get(0)
}

/// Whether `table.column` exists in public.
pub async fn column_exists(db: &TestDb, table: &str, column: &str) -> bool {
    db.client()
        .await
        .query_one(
            "select count(*) > 0 from information_schema.columns
              where table_schema = 'public' and table_name = $1 and column_name = $2",
            &[&table, &column],
        )
        .await
        .expect("information_schema.columns")
        .get(0)
}

/// Rows of our history table: (tag, action, succeeded, run_id, error_sqlstate), in order.
pub async fn history(db: &TestDb) -> Vec<(String, String, bool, String, Option<String>)> {
    if !db.table_exists("drizzle.wishlist_migrator_history").await {
        return Vec::new();
    }
    db.client()
        .await
        .query(
            "select tag, action, succeeded, run_id, error_sqlstate
               from drizzle.wishlist_migrator_history order by id",
            &[],
        )
        .await
        .expect("read history")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

/// Backends of this database that belong to wishlist-migrator runs.
pub async fn migrator_sessions(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one(
            "select count(*) from pg_stat_activity
              where datname = $1 and application_name = 'wishlist-migrator'",
            &[&db.name],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

/// Waits (bounded) for a condition the server reaches asynchronously, e.g. a closed client's
/// backend exiting. Returns whether it became true.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes `meta/_journal.json` of a copied folder with only the given entries (by tag), each
/// with the `when` given, in the order given.
pub fn rewrite_journal(dir: &Path, entries: &[(&str, i64)]) {
    let entries: Vec<Value> = entries
        .iter()
        .enumerate()
        .map(|(idx, (tag, when))| {
            serde_json::json!({ "idx": idx, "version": "7", "when": when, "tag": tag, "breakpoints": true })
        })
        .collect();
    let journal = serde_json::json!({ "version": "7", "dialect": "postgresql", "entries": entries });
    std::fs::write(
        dir.join("meta/_journal.json"),
        serde_json::to_string_pretty(&journal).unwrap(),
    )
    .expect("write journal");
}
