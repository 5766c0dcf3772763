//! The report never contradicts the database (issue 21, part 2): a migration file's own
//! `COMMIT` ends a flight and what follows runs in a new transaction with its bounds; a file's
//! own `ROLLBACK` is refused before anything runs; a flight that reaches the server after the
//! client gave up on it commits nothing.

use std::time::{Duration, Instant};

use crate::harness::proxy::Proxy;
use crate::harness::*;

/// A folder of one or more migrations, each given as its drizzle-kit pieces.
fn folder(migrations: &[(&str, &[&str])]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("wm-truthful-").tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("meta")).unwrap();
    let mut entries = Vec::new();
    for (i, (tag, pieces)) in migrations.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{tag}.sql")), pieces.join("\n--> statement-breakpoint\n")).unwrap();
        entries.push((*tag, 1_795_520_100_854 + i as i64 * 1000));
    }
    rewrite_journal(dir.path(), &entries);
    dir
}

fn statuses(report: &serde_json::Value) -> Vec<String> {
    report["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_failure_after_a_files_own_commit_is_never_recorded_as_applied() {
    // The reproduction, word for word.
    let db = pg().fresh_db().await;
    let dir = folder(&[(
        "0000_c",
        &["CREATE TABLE \"t\" (\"id\" integer);", "COMMIT;", "INSERT INTO \"t\" VALUES (1/0);"],
    )]);
    let report = run(&mut wm(&db.url, dir.path(), &["--no-lint-gate", "migrate"])).expect(1).report();
    assert_eq!(report["error"]["sqlstate"], "22012", "{report}");
    assert!(report["error"]["message"].as_str().unwrap().contains("statement 3"), "{report}");
    assert_eq!(statuses(&report), ["partiallyApplied"], "{report}");
    assert_eq!(report["applied"], serde_json::json!([]), "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("COMMIT (statement 2, line 3)") && message.contains("no ledger row"),
        "{message}"
    );
    assert_eq!(ledger(&db).await, Vec::new(), "the failed migration must not be in the ledger");
    // What the COMMIT kept is there, and the report said so.
    assert!(db.table_exists("public.t").await);
    let status = run(&mut wm(&db.url, dir.path(), &["status"])).expect(0).report();
    assert_eq!(status["status"], "pending", "{status}");
    assert_eq!(status["current"], serde_json::Value::Null, "{status}");
}

#[tokio::test]
async fn what_follows_a_files_commit_keeps_the_lock_timeout() {
    // After the COMMIT, DDL that waits for a lock must still give way at lock_timeout instead of
    // queueing ahead of the traffic without limit.
    let db = pg().fresh_db().await;
    db.client()
        .await
        .batch_execute("CREATE TABLE \"busy\" (\"id\" integer)")
        .await
        .unwrap();
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE \"busy\" IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let dir = folder(&[(
        "0000_c",
        &[
            "CREATE TABLE \"t\" (\"id\" integer);",
            "COMMIT;",
            "ALTER TABLE \"busy\" ADD COLUMN \"c\" integer;",
        ],
    )]);
    let mut migrate = wm(&db.url, dir.path(), &["--no-lint-gate", "migrate"]);
    migrate.env("PG_LOCK_TIMEOUT_MS", "300").env("LOCK_TIMEOUT_RETRIES", "0");
    let out = exit_within(
        spawn(&mut migrate),
        Duration::from_secs(20),
        "it queued behind the lock without limit",
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = out.report();
    assert_eq!(report["error"]["sqlstate"], "55P03", "{report}");
    assert_eq!(statuses(&report), ["partiallyApplied"], "{report}");
    assert_eq!(ledger(&db).await, Vec::new());
    holder.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn what_follows_a_files_commit_stops_at_the_deadline() {
    let db = pg().fresh_db().await;
    let dir = folder(&[(
        "0000_c",
        &["CREATE TABLE \"t\" (\"id\" integer);", "COMMIT;", "SELECT pg_sleep(20);"],
    )]);
    let started = Instant::now();
    let report = run(&mut wm(&db.url, dir.path(), &["--no-lint-gate", "migrate", "--timeout", "3"]))
        .expect(1)
        .report();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "ran past its deadline: {:?}",
        started.elapsed()
    );
    assert_eq!(error_type(&report), "DeadlineExceeded", "{report}");
    assert_eq!(statuses(&report), ["partiallyApplied"], "{report}");
    assert_eq!(ledger(&db).await, Vec::new());
    assert_eq!(db.advisory_locks().await, 0);
}

#[tokio::test]
async fn a_files_own_rollback_is_refused_before_anything_runs() {
    let db = pg().fresh_db().await;
    let dir = folder(&[
        ("0000_a", &["CREATE TABLE \"a\" (\"id\" integer);"]),
        ("0001_b", &["CREATE TABLE \"b\" (\"id\" integer);", "-- undo\nROLLBACK;"]),
    ]);
    let report = run(&mut wm(&db.url, dir.path(), &["--no-lint-gate", "migrate"])).expect(3).report();
    assert_eq!(error_type(&report), "InvalidMigrations", "{report}");
    assert_eq!(report["error"]["migration"], "0001_b", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("0001_b.sql, line 4: ROLLBACK"), "{message}");
    assert!(!db.table_exists("public.a").await, "nothing ran, not even the migration before it");
    assert_eq!(ledger(&db).await, Vec::new());
    let plan = run(&mut wm(&db.url, dir.path(), &["plan"])).expect(3).report();
    assert_eq!(error_type(&plan), "InvalidMigrations", "plan says so too: {plan}");
}

#[tokio::test]
async fn a_begin_atomic_body_is_not_a_commit_and_a_row_without_columns_is_fine() {
    let db = pg().fresh_db().await;
    let dir = folder(&[
        (
            "0000_f",
            &[
                "CREATE FUNCTION \"one\"() RETURNS integer LANGUAGE sql BEGIN ATOMIC SELECT 1; END;",
                "SELECT;",
                "CREATE TABLE \"after\" (\"id\" integer);",
            ],
        ),
        ("0001_g", &["CREATE TABLE \"g\" (\"id\" integer);"]),
    ]);
    let plan = run(&mut wm(&db.url, dir.path(), &["--no-lint-gate", "plan"])).expect(0).report();
    assert_eq!(plan["segments"].as_array().unwrap().len(), 1, "one transaction: {plan}");
    let report = run(&mut wm(&db.url, dir.path(), &["--no-lint-gate", "migrate"])).expect(0).report();
    assert_eq!(tags(&report["applied"]), ["0000_f", "0001_g"], "{report}");
    assert_eq!(ledger(&db).await.len(), 2);
}

#[tokio::test]
async fn a_flight_that_reaches_the_server_after_the_client_gave_up_commits_nothing() {
    // The link holds every byte of the segment's flight; the client gives up at its deadline and
    // leaves; then the link comes back and the server receives the whole flight, COMMIT
    // included. The deadline is an instant on the server's clock, so the flight finds it passed.
    let db = pg().fresh_db().await;
    let dir = folder(&[
        ("0000_a", &["CREATE TABLE \"a\" (\"id\" integer);"]),
        ("0001_b", &["CREATE TABLE \"b\" (\"id\" integer);"]),
        ("0002_c", &["CREATE TABLE \"c\" (\"id\" integer);"]),
    ]);
    let proxy = Proxy::start(pg().port());
    // The segment's BEGIN (the ledger tables' creation before it has a BEGIN of its own).
    proxy.hold_at("BEGIN; SET LOCAL lock_timeout");
    let child = spawn(&mut wm(
        &proxy.url_for(&db),
        dir.path(),
        &["--no-lint-gate", "migrate", "--timeout", "2"],
    ));
    let out = exit_within(child, Duration::from_secs(40), "the CLI hangs").await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = out.report();
    assert_eq!(error_type(&report), "DeadlineExceeded", "{report}");
    assert!(report["applied"].as_array().is_none_or(Vec::is_empty), "{report}");
    // The whole flight had left the client, COMMIT included.
    let sent = proxy.statements();
    let begin = sent
        .iter()
        .position(|s| s.starts_with("BEGIN; SET LOCAL lock_timeout"))
        .expect("the flight's BEGIN");
    assert!(sent[begin..].iter().any(|s| s == "COMMIT"), "{sent:#?}");

    proxy.release();
    // The server reads the flight and the close that followed it, and its backend exits.
    assert!(
        eventually(|| async { migrator_sessions(&db).await == 0 }).await,
        "the run's backend never finished"
    );
    assert_eq!(ledger(&db).await, Vec::new(), "a late flight committed");
    for table in ["a", "b", "c"] {
        assert!(!db.table_exists(&format!("public.{table}")).await, "{table} was committed late");
    }
}

#[tokio::test]
async fn a_connection_lost_after_the_commit_was_sent_is_settled_by_reading_the_ledger_back() {
    // The server receives the whole flight, COMMIT included, and commits; the client's
    // connection closes before any answer arrives. The report must not say "rolled back".
    let db = pg().fresh_db().await;
    let dir = folder(&[
        ("0000_a", &["CREATE TABLE \"a\" (\"id\" integer);"]),
        ("0001_b", &["CREATE TABLE \"b\" (\"id\" integer);"]),
    ]);
    let proxy = Proxy::start(pg().port());
    proxy.cut_after("COMMIT");
    let report = run(&mut wm(&proxy.url_for(&db), dir.path(), &["--no-lint-gate", "migrate"]))
        .expect(1)
        .report();
    assert_eq!(error_type(&report), "ConnectionFailed", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("after the segment's COMMIT was sent") && message.contains("read back"),
        "{message}"
    );
    assert_eq!(statuses(&report), ["committed"], "{report}");
    assert_eq!(
        tags(&report["applied"]),
        ["0000_a", "0001_b"],
        "the report says what the ledger says: {report}"
    );
    assert_eq!(ledger(&db).await.len(), 2);
    assert!(db.table_exists("public.b").await);
    assert_eq!(db.advisory_locks().await, 0);
}

#[tokio::test]
async fn a_lost_commit_that_cannot_be_read_back_is_reported_as_unknown() {
    let db = pg().fresh_db().await;
    let dir = folder(&[("0000_a", &["CREATE TABLE \"a\" (\"id\" integer);"])]);
    let proxy = Proxy::start(pg().port());
    proxy.cut_after_for_good("COMMIT");
    let report = run(&mut wm(
        &proxy.url_for(&db),
        dir.path(),
        &["--no-lint-gate", "migrate", "--timeout", "5"],
    ))
    .expect(1)
    .report();
    assert_eq!(error_type(&report), "ConnectionFailed", "{report}");
    assert_eq!(statuses(&report), ["unknown"], "neither committed nor rolled back: {report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("whether it committed is unknown") && message.contains("status"),
        "{message}"
    );
    assert!(report["applied"].as_array().is_none_or(Vec::is_empty), "{report}");
    // What the server did meanwhile: it committed, and `status` on a working link says so.
    assert!(eventually(|| async { ledger(&db).await.len() == 1 }).await);
    let status = run(&mut wm(&db.url, dir.path(), &["status"])).expect(0).report();
    assert_eq!(status["current"], "0000_a", "{status}");
}

#[tokio::test]
async fn a_connection_lost_during_a_concurrent_build_is_unknown_and_the_next_run_finds_it_done() {
    // The build's request reaches the server, which finishes and commits it; the client's
    // connection ends first. The report must not say the statement was rolled back.
    let db = pg().fresh_db().await;
    let dir = folder(&[(
        "0000_n",
        &[
            "-- wishlist-migrator: no-transaction\nCREATE TABLE \"t\" (\"id\" integer);",
            "CREATE INDEX CONCURRENTLY \"t_id_idx\" ON \"t\" (\"id\");",
            "CREATE TABLE \"after\" (\"id\" integer);",
        ],
    )]);
    let proxy = Proxy::start(pg().port());
    proxy.cut_after_containing("CREATE INDEX CONCURRENTLY");
    let report = run(&mut wm(&proxy.url_for(&db), dir.path(), &["--no-lint-gate", "migrate"]))
        .expect(1)
        .report();
    assert_eq!(statuses(&report), ["unknown"], "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("whether it committed is unknown"), "{message}");
    assert_eq!(ledger(&db).await, Vec::new());

    assert!(eventually(|| async { migrator_sessions(&db).await == 0 }).await);
    let again = run(&mut wm(&db.url, dir.path(), &["--no-lint-gate", "migrate"])).expect(0).report();
    assert_eq!(tags(&again["applied"]), ["0000_n"], "{again}");
    assert!(db.table_exists("public.after").await);
    // The build ran once: found done in the catalog, not built again.
    let builds = history(&db)
        .await
        .iter()
        .filter(|(tag, action, ok, _, _)| tag == "0000_n" && action == "statement" && *ok)
        .count();
    assert_eq!(builds, 3, "each statement recorded once");
}

#[tokio::test]
async fn a_no_transaction_body_that_commits_as_it_goes_runs_alone() {
    // A batched backfill: a DO block that commits each batch cannot run inside the transaction
    // that would record it with its history row; the server says so, and it runs alone.
    let db = pg().fresh_db().await;
    let dir = folder(&[
        ("0000_t", &["CREATE TABLE \"t\" (\"id\" integer, \"done\" boolean);", "INSERT INTO \"t\" SELECT g, false FROM generate_series(1, 30) g;"]),
        (
            "0001_backfill",
            &["-- wishlist-migrator: no-transaction\nDO $$\nDECLARE last integer := 0;\nBEGIN\n  LOOP\n    UPDATE \"t\" SET \"done\" = true WHERE \"id\" > last AND \"id\" <= last + 10;\n    COMMIT;\n    last := last + 10;\n    EXIT WHEN last >= 30;\n  END LOOP;\nEND\n$$;"],
        ),
    ]);
    let report = run(&mut wm(&db.url, dir.path(), &["--no-lint-gate", "migrate"])).expect(0).report();
    assert_eq!(tags(&report["applied"]), ["0000_t", "0001_backfill"], "{report}");
    let left: i64 = db
        .client()
        .await
        .query_one("select count(*) from t where not done", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}
