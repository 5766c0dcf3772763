//! What a run sends over the wire (issue 14): a no-op deploy one statement after connecting
//! and the unlock,
//! `status` and `plan` one each, and a transaction segment in one flight that still says which
//! statement failed and still stops at the deadline.

use std::time::Duration;

use crate::harness::proxy::Proxy;
use crate::harness::*;

const FAILING: &str = "tests/fixtures/engine/failing";
const BROKEN_TAG: &str = "0001_add_audit_log_broken";

#[tokio::test]
async fn a_no_op_deploy_sends_one_statement_after_connecting_and_the_unlock() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    let proxy = Proxy::start(pg().port());
    let url = proxy.url_for(&db);

    let report = run(&mut wm(&url, "migrations", &["migrate"])).expect(0).report();
    assert_eq!(report["status"], "upToDate", "{report}");
    let sent = proxy.statements();
    assert_eq!(sent.len(), 2, "one statement after connecting, then the unlock: {sent:#?}");
    assert!(
        sent[0].contains("pg_try_advisory_lock") && sent[0].contains("__drizzle_migrations") && sent[0].contains("pg_is_in_recovery"),
        "the session check, the try-lock and the ledger read: {}",
        sent[0]
    );
    // The lock is given back, not left to the close: behind a pooler the close frees nothing.
    assert!(sent[1].contains("pg_advisory_unlock"), "{}", sent[1]);
    assert_eq!(db.advisory_locks().await, 0, "the lock outlived the run");

    for command in ["status", "plan"] {
        proxy.forget_statements();
        let report = run(&mut wm(&url, "migrations", &[command])).expect(0).report();
        assert_eq!(report["action"], command, "{report}");
        let sent = proxy.statements();
        assert_eq!(sent.len(), 1, "{command}: {sent:#?}");
        assert!(!sent[0].contains("advisory"), "{command} takes no lock: {}", sent[0]);
    }
}

#[tokio::test]
async fn a_failure_in_a_pipelined_segment_is_blamed_on_its_statement_with_a_deadline_too() {
    // With a deadline, each statement is preceded in the flight by its own timeout: the error
    // must still be counted to the statement that failed, not to the requests around it.
    let db = pg().fresh_db().await;
    let proxy = Proxy::start(pg().port());
    let report = run(&mut wm(&proxy.url_for(&db), FAILING, &["migrate", "--timeout", "60"]))
        .expect(1)
        .report();
    assert_eq!(report["error"]["type"], "MigrationFailed", "{report}");
    assert_eq!(report["error"]["migration"], BROKEN_TAG);
    assert_eq!(report["error"]["sqlstate"], "42601");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("statement 3 (line 9)"), "{message}");
    assert!(
        report["error"]["statement"]
            .as_str()
            .unwrap()
            .starts_with("ALTER TABLE \"wishlist_items\" ADD COLUMNN"),
        "{report}"
    );
    assert_eq!(report["segments"][0]["status"], "rolledBack", "{report}");
    assert!(!db.table_exists("public.wishlist_items").await, "nothing of the segment kept");
    assert_eq!(ledger(&db).await, Vec::new());
    // The whole segment went out before the error came back: its COMMIT was sent too.
    assert!(proxy.statements().iter().any(|s| s == "COMMIT"), "{:#?}", proxy.statements());
}

/// A history of one migration `0000_m` with these pieces.
fn one_migration(pieces: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("wm-flights-").tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("meta")).unwrap();
    std::fs::write(dir.path().join("0000_m.sql"), pieces.join("\n--> statement-breakpoint\n")).unwrap();
    rewrite_journal(dir.path(), &[("0000_m", 1_795_520_100_854)]);
    dir
}

#[tokio::test]
async fn a_migration_sent_as_one_request_blames_the_statement_that_failed_after_others_ran() {
    // A division by zero has no position in the text: the completions before it place it.
    let db = pg().fresh_db().await;
    let proxy = Proxy::start(pg().port());
    let dir = one_migration(&[
        "CREATE TABLE \"t\" (\"a\" integer);",
        "INSERT INTO \"t\" VALUES (1);",
        "-- the third piece\nINSERT INTO \"t\" VALUES (1 / 0);",
        "INSERT INTO \"t\" VALUES (3);",
    ]);
    let report = run(&mut wm(&proxy.url_for(&db), dir.path(), &["migrate"])).expect(1).report();
    assert_eq!(report["error"]["sqlstate"], "22012", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("statement 3 (line 5)"), "{message}");
    assert_eq!(report["error"]["statement"], "INSERT INTO \"t\" VALUES (1 / 0);", "{report}");
    assert!(!db.table_exists("public.t").await, "nothing kept");
    // The four pieces went out as one request.
    let sent = proxy.statements();
    assert!(
        sent.iter().any(|s| s.starts_with("CREATE TABLE") && s.contains("VALUES (3)")),
        "{sent:#?}"
    );
}

#[tokio::test]
async fn the_statement_timeout_bounds_each_statement_of_a_shared_request_not_their_sum() {
    // PostgreSQL 13 on: each statement of a multi-statement request gets the whole timeout.
    let db = pg().fresh_db().await;
    let dir = one_migration(&["SELECT pg_sleep(0.6);", "SELECT pg_sleep(0.6);", "CREATE TABLE \"done\" ();"]);
    let mut ok = wm(&db.url, dir.path(), &["migrate"]);
    ok.env("STATEMENT_TIMEOUT_MS", "1000");
    run(&mut ok).expect(0);
    assert!(db.table_exists("public.done").await);

    let db = pg().fresh_db().await;
    let dir = one_migration(&["SELECT pg_sleep(0.1);", "SELECT pg_sleep(1.5);", "CREATE TABLE \"done\" ();"]);
    let mut slow = wm(&db.url, dir.path(), &["migrate"]);
    slow.env("STATEMENT_TIMEOUT_MS", "1000");
    let report = run(&mut slow).expect(1).report();
    assert_eq!(report["error"]["sqlstate"], "57014", "{report}");
    assert!(report["error"]["message"].as_str().unwrap().contains("statement 2 "), "{report}");
    assert!(!db.table_exists("public.done").await);
}

#[tokio::test]
async fn the_deadline_stops_a_segment_whose_statements_each_fit_in_it() {
    // Each sleep is shorter than the whole timeout, together they are longer: the flight is
    // sent at once, and the server must still stop at the deadline, leaving nothing.
    let db = pg().fresh_db().await;
    let dir = tempfile::Builder::new().prefix("wm-flights-").tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("meta")).unwrap();
    let sql = "CREATE TABLE \"slow\" (\"id\" integer);\n--> statement-breakpoint\nSELECT pg_sleep(1.2);\n--> statement-breakpoint\nSELECT pg_sleep(1.2);\n--> statement-breakpoint\nSELECT pg_sleep(1.2);\n";
    std::fs::write(dir.path().join("0000_slow.sql"), sql).unwrap();
    rewrite_journal(dir.path(), &[("0000_slow", 1_795_520_100_854)]);
    let started = std::time::Instant::now();
    let report = run(&mut wm(&db.url, dir.path(), &["migrate", "--timeout", "2"])).expect(1).report();
    assert!(started.elapsed() < Duration::from_secs(30), "a liveness bound");
    assert_eq!(error_type(&report), "DeadlineExceeded", "{report}");
    assert_eq!(report["error"]["migration"], "0000_slow", "{report}");
    assert!(!db.table_exists("public.slow").await, "nothing kept");
    assert_eq!(ledger(&db).await, Vec::new());
    assert_eq!(db.advisory_locks().await, 0);
}

#[tokio::test]
async fn a_successful_run_is_flushed_by_its_baseline_write_after_its_last_commit() {
    // Every segment's COMMIT is deferred; the baseline's write after the last is a synchronous
    // commit, which flushes the WAL of all of them before the run reports.
    let db = pg().fresh_db().await;
    let proxy = Proxy::start(pg().port());
    let dir = copy_fixture("tests/fixtures/real-world/dittofeed");
    let mut migrate = wm(&proxy.url_for(&db), dir.path(), &["migrate"]);
    let report = run(migrate.env("LINT_GATE", "false")).expect(0).report();
    assert!(report["segments"].as_array().unwrap().len() > 1, "{report}");
    let sent = proxy.statements();
    let last_commit = sent.iter().rposition(|s| s == "COMMIT").expect("a COMMIT");
    let begins = sent.iter().filter(|s| s.starts_with("BEGIN; SET LOCAL lock_timeout"));
    assert!(
        begins.clone().count() > 1 && begins.clone().all(|s| s.contains("synchronous_commit = off")),
        "{sent:#?}"
    );
    let baseline = sent
        .iter()
        .rposition(|s| s.contains("set catalog = $1::text::jsonb"))
        .expect("the baseline written");
    assert!(baseline > last_commit, "{sent:#?}");
    assert!(
        !sent.contains(&"select txid_current()".to_string()),
        "no flush of its own needed: {sent:#?}"
    );
    assert_eq!(ledger(&db).await, expected_ledger(dir.path()));
}

#[tokio::test]
async fn a_migration_that_commits_itself_runs_alone_with_its_rows_committed_by_its_commit() {
    // dittofeed's 0002 ends with its own `COMMIT;`. It runs in a segment of its own, and its
    // rows are written right before that COMMIT, so they commit with the work they record: a
    // later failure rolls back only what came after, and leaves a ledger that says what was kept.
    let dir = copy_fixture("tests/fixtures/real-world/dittofeed");
    let mut entries = journal(dir.path());
    let last_when = entries.last().unwrap().1;
    std::fs::write(
        dir.path().join("9999_broken.sql"),
        "CREATE TABLE \"after_commit\" (\"id\" integer);--> statement-breakpoint\nSELECT 1/0;",
    )
    .unwrap();
    entries.push(("9999_broken".into(), last_when + 1000));
    let refs: Vec<(&str, i64)> = entries.iter().map(|(t, w)| (t.as_str(), *w)).collect();
    rewrite_journal(dir.path(), &refs);
    let db = pg().fresh_db().await;

    let mut plan = wm(&db.url, dir.path(), &["plan"]);
    let plan = run(plan.env("LINT_GATE", "false")).expect(0).report();
    assert_eq!(
        plan["segments"][1]["migrations"],
        serde_json::json!(["0002_spicy_inertia"]),
        "{plan}"
    );
    assert!(plan["segments"][1]["reason"].as_str().unwrap().contains("own COMMIT"), "{plan}");

    let proxy = Proxy::start(pg().port());
    let mut migrate = wm(&proxy.url_for(&db), dir.path(), &["migrate"]);
    let report = run(migrate.env("LINT_GATE", "false")).expect(1).report();
    assert_eq!(report["error"]["migration"], "9999_broken", "{report}");
    // Segments commit without waiting for the WAL flush, and after the failure one synchronous
    // commit flushes the two that committed.
    let sent = proxy.statements();
    let begins: Vec<bool> = sent
        .iter()
        .filter(|s| s.starts_with("BEGIN; SET LOCAL lock_timeout"))
        .map(|s| s.contains("synchronous_commit = off"))
        .collect();
    assert_eq!(begins, [true, true, true, true], "{sent:#?}");
    // 0002's rows go right before its own COMMIT, and no COMMIT of ours follows it.
    let own_commit = sent.iter().position(|s| s.trim() == "COMMIT;").expect("0002's COMMIT");
    assert!(sent[own_commit - 1].contains("__drizzle_migrations"), "{sent:#?}");
    assert!(sent[own_commit + 1].starts_with("BEGIN; SET LOCAL"), "{sent:#?}");
    let flush = sent
        .iter()
        .position(|s| s == "select txid_current()")
        .expect("a flush after the failure");
    assert!(flush > sent.iter().rposition(|s| s.starts_with("BEGIN; SET LOCAL")).unwrap());
    // 0003 adds an enum value: a segment of its own, committed.
    let statuses: Vec<&str> = report["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["committed", "committed", "committed", "rolledBack"], "{report}");
    let kept = &expected_ledger(dir.path())[..4];
    assert_eq!(ledger(&db).await, kept, "the ledger names what the COMMIT kept");
    assert!(
        !db.table_exists("public.after_commit").await,
        "the second segment ran in a transaction"
    );
    let applied: Vec<(String, i64)> = db
        .client()
        .await
        .query(
            "select tag, duration_ms from drizzle.wishlist_migrator_history where action = 'apply' and succeeded order by id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let applied_tags: Vec<&str> = applied.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        applied_tags,
        [
            "0000_lethal_trish_tilby",
            "0001_brave_randall",
            "0002_spicy_inertia",
            "0003_hesitant_lionheart"
        ]
    );
    assert!(applied.iter().any(|(_, ms)| *ms > 0), "server-measured durations: {applied:?}");
}
