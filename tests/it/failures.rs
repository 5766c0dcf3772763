//! Runs that fail (exit 1) must say what failed, where and why (migration tag, statement,
//! SQLSTATE) and leave nothing behind: no partial schema, no ledger row, no advisory lock.

use serde_json::Value;

use crate::harness::*;

const FAILING: &str = "tests/fixtures/engine/failing";
const BROKEN_TAG: &str = "0001_add_audit_log_broken";

/// The catalog without drizzle's schema: the ledger and history tables are created before the
/// first migration runs, like drizzle-orm does, and stay (empty) after a failure.
async fn schema_outside_ledger(db: &TestDb) -> Vec<String> {
    catalog(db)
        .await
        .into_iter()
        .filter(|l| l != "schema drizzle" && !l.split(' ').nth(1).is_some_and(|o| o.starts_with("drizzle.")))
        .collect()
}

fn error(report: &Value) -> &Value {
    assert_eq!(report["status"], "failed", "{report}");
    &report["error"]
}

#[tokio::test]
async fn a_failing_migration_leaves_no_partial_schema_no_ledger_row_and_no_lock() {
    let db = pg().fresh_db().await;
    let watcher = db.client().await;
    let out = run(&mut wm(&db.url, FAILING, &["migrate"])).expect(1);
    let report = out.report();
    let e = error(&report);
    assert_eq!(e["type"], "MigrationFailed");
    assert_eq!(e["migration"], BROKEN_TAG);
    assert_eq!(e["sqlstate"], "42601");
    assert!(
        e["statement"]
            .as_str()
            .unwrap_or("")
            .starts_with("ALTER TABLE \"wishlist_items\" ADD COLUMNN"),
        "the failing statement must be quoted: {report}"
    );
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains(BROKEN_TAG) && message.contains("statement 3 (line 9)"),
        "{message}"
    );
    assert_eq!(report["applied"], serde_json::json!([]));
    assert!(report["current"].is_null());
    assert_eq!(report["segments"][0]["status"], "rolledBack", "{report}");

    // 0000 and 0001 shared the transaction, so 0000's table went with it.
    assert!(!db.table_exists("public.audit_log").await);
    assert!(!db.table_exists("public.wishlist_items").await);
    assert!(!column_exists(&db, "wishlist_items", "archived").await);
    assert_eq!(schema_outside_ledger(&db).await, ["schema public"], "an empty database again");
    assert_eq!(ledger(&db).await, Vec::new());

    // Checked from a connection that was open throughout, and from a new one.
    let locks: i64 = watcher
        .query_one(
            "select count(*) from pg_locks where locktype = 'advisory'
               and database = (select oid from pg_database where datname = current_database())",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(locks, 0, "the advisory lock must be released on the failure path");
    assert_eq!(db.advisory_locks().await, 0);

    // The failure is on record even though everything else was rolled back.
    let run_id = report["runId"].as_str().unwrap().to_string();
    assert_eq!(
        history(&db).await,
        [(
            BROKEN_TAG.to_string(),
            "apply".to_string(),
            false,
            run_id,
            Some("42601".to_string())
        )]
    );

    // A person at a terminal gets the error and the statement on stderr.
    let mut human = cli();
    human
        .env("DATABASE_URL", &db.url)
        .env("MIGRATIONS_DIR", repo_path(FAILING))
        .arg("migrate");
    let out = run(&mut human).expect(1);
    assert!(
        out.stderr.contains("error[MigrationFailed]") && out.stderr.contains(BROKEN_TAG),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("ADD COLUMNN"), "{}", out.stderr);
    assert_eq!(ledger(&db).await, Vec::new());
}

#[tokio::test]
async fn a_conflicting_existing_table_fails_and_keeps_nothing() {
    let db = pg().fresh_db().await;
    db.client()
        .await
        .batch_execute("CREATE TABLE wishlist_items (id integer PRIMARY KEY, name text)")
        .await
        .unwrap();
    let before = schema_outside_ledger(&db).await;

    let report = run(&mut wm(&db.url, "migrations", &["migrate"])).expect(1).report();
    let e = error(&report);
    assert_eq!(e["type"], "MigrationFailed");
    assert_eq!(e["sqlstate"], "42P07");
    assert_eq!(e["migration"], TAG_0000);
    assert!(
        e["statement"].as_str().unwrap().starts_with("CREATE TABLE \"wishlist_items\""),
        "{report}"
    );
    assert!(e["message"].as_str().unwrap().contains("already exists"), "{report}");

    // The existing table is untouched and none of the enums or indexes were kept.
    assert_eq!(schema_outside_ledger(&db).await, before);
    assert_eq!(ledger(&db).await, Vec::new());
    assert_eq!(db.advisory_locks().await, 0);
}

#[tokio::test]
async fn a_read_only_session_is_refused_before_anything_is_created() {
    let db = pg().fresh_db().await;
    let url = db
        .create_role(
            "ro",
            &secret_password(),
            &[
                "GRANT CREATE ON DATABASE {db} TO {role}",
                "GRANT CREATE ON SCHEMA public TO {role}",
                "ALTER ROLE {role} SET default_transaction_read_only = on",
            ],
        )
        .await;
    let before = catalog(&db).await;

    let report = run(&mut wm(&url, "migrations", &["migrate"])).expect(1).report();
    let e = error(&report);
    assert_eq!(e["type"], "ReadOnlyDatabase");
    assert!(e["message"].as_str().unwrap().contains("read-only"), "{report}");
    assert_eq!(catalog(&db).await, before);
    assert_eq!(db.advisory_locks().await, 0);

    // Looking is fine on a read-only session (a replica, say).
    let status = run(&mut wm(&url, "migrations", &["status"])).expect(0).report();
    assert_eq!(status["status"], "pending");
}

#[tokio::test]
async fn a_role_that_cannot_create_anything_gets_permission_denied() {
    let db = pg().fresh_db().await;
    // Since PostgreSQL 15 neither the database nor the public schema grants CREATE to PUBLIC.
    let url = db.create_role("nocreate", &secret_password(), &[]).await;
    let before = catalog(&db).await;

    let report = run(&mut wm(&url, "migrations", &["migrate"])).expect(1).report();
    let e = error(&report);
    assert_eq!(e["type"], "PermissionDenied");
    assert_eq!(e["sqlstate"], "42501");
    assert_eq!(catalog(&db).await, before, "not even drizzle's schema");
    assert_eq!(db.advisory_locks().await, 0);
}

#[tokio::test]
async fn a_missing_privilege_in_a_migration_names_it_and_keeps_nothing() {
    let db = pg().fresh_db().await;
    // May create drizzle's schema, but not the wishlist table in public.
    let url = db
        .create_role("nopublic", &secret_password(), &["GRANT CREATE ON DATABASE {db} TO {role}"])
        .await;
    let before = schema_outside_ledger(&db).await;

    let report = run(&mut wm(&url, "migrations", &["migrate"])).expect(1).report();
    let e = error(&report);
    assert_eq!(e["type"], "PermissionDenied");
    assert_eq!(e["sqlstate"], "42501");
    assert_eq!(e["migration"], TAG_0000);
    assert_eq!(ledger(&db).await, Vec::new());
    assert_eq!(schema_outside_ledger(&db).await, before);
    assert_eq!(db.advisory_locks().await, 0);
}

#[tokio::test]
async fn lock_timeout_is_retried_then_gives_up_keeping_nothing() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate", "--to", TAG_0000])).expect(0);
    let before = (ledger(&db).await, catalog(&db).await);

    // Application traffic: a long transaction holding the table 0001 alters.
    let blocker = db.client().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE wishlist_items IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut cmd = wm(&db.url, "migrations", &["migrate"]);
    cmd.env("PG_LOCK_TIMEOUT_MS", "200").env("LOCK_TIMEOUT_RETRIES", "1");
    let report = run(&mut cmd).expect(1).report();
    let e = error(&report);
    assert_eq!(e["sqlstate"], "55P03", "{report}");
    assert_eq!(e["migration"], TAG_0001);
    assert_eq!(report["segments"][0]["attempts"], 2, "one retry: {report}");
    assert_eq!(report["segments"][0]["status"], "rolledBack");
    let warnings: Vec<&str> = report["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(TAG_0001) && w.contains("lock_timeout") && w.contains("retried")),
        "the retry must be reported: {warnings:?}"
    );
    blocker.batch_execute("COMMIT").await.unwrap();
    assert_eq!((ledger(&db).await, catalog(&db).await), before, "nothing of 0001 was kept");
    assert_eq!(db.advisory_locks().await, 0);

    let mut cmd = wm(&db.url, "migrations", &["migrate"]);
    cmd.env("PG_LOCK_TIMEOUT_MS", "200").env("LOCK_TIMEOUT_RETRIES", "1");
    let report = run(&mut cmd).expect(0).report();
    assert_eq!(tags(&report["applied"]), [TAG_0001]);
    assert_eq!(ledger(&db).await, expected_ledger(&repo_path("migrations")));
}

#[tokio::test]
async fn a_migration_waiting_behind_a_reader_never_holds_other_readers_up_for_longer_than_its_lock_timeout() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate", "--to", TAG_0000])).expect(0);
    // A long read: ACCESS SHARE on the table 0001 alters, held for the whole run.
    let reader = db.client().await;
    reader.batch_execute("BEGIN; SELECT count(*) FROM wishlist_items").await.unwrap();

    let mut cmd = wm(&db.url, "migrations", &["migrate"]);
    cmd.env("PG_LOCK_TIMEOUT_MS", "300").env("LOCK_TIMEOUT_RETRIES", "2");
    let child = spawn(&mut cmd);
    // Other readers arrive all the while. Each queues behind the migration's ACCESS EXCLUSIVE
    // request while it waits, so each would fail with its own lock_timeout (2 s, well above
    // the migration's 300 ms) if the migration made them wait longer.
    let others = db.client().await;
    others.batch_execute("SET lock_timeout = '2s'").await.unwrap();
    let mut reads = 0;
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        others
            .query_one("SELECT count(*) FROM wishlist_items", &[])
            .await
            .expect("a reader was held up behind the waiting migration for longer than 2 s");
        reads += 1;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let report = wait(child).expect(1).report();
    assert_eq!(error(&report)["sqlstate"], "55P03", "{report}");
    assert_eq!(report["segments"][0]["attempts"], 3, "two retries: {report}");
    assert!(reads > 5, "readers ran during the migration's attempts: {reads}");
    reader.batch_execute("COMMIT").await.unwrap();
    assert_eq!(ledger(&db).await.len(), 1, "nothing of 0001 was kept");
    assert_eq!(db.advisory_locks().await, 0);
}
