//! Issue 22: a recipe step that keeps giving way to locks (not granted within its 500 ms
//! `lock_timeout`, tried again after jittered pauses) until the run's deadline is a run cut by
//! its deadline, not a failed migration: the CLI reports it as a `--timeout` cut mid-recipe, the
//! Lambda answers `"status": "inProgress"`, and the next run, the lock released, finishes,
//! each step once.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::stack::{response, Stack};
use crate::harness::*;

const CREATE: &str =
    "CREATE TABLE \"lists\" (\n\t\"id\" serial PRIMARY KEY NOT NULL,\n\t\"owner_id\" integer\n);\n--> statement-breakpoint\n\
CREATE TABLE \"items\" (\n\t\"id\" serial PRIMARY KEY NOT NULL,\n\t\"list_id\" integer,\n\t\"user_id\" integer\n);\n";

/// SET NOT NULL on a live table: a four-step recipe whose first step (`ADD CONSTRAINT … NOT
/// VALID`) needs a short ACCESS EXCLUSIVE lock; then an index, built concurrently.
const ONLINE: &str = "ALTER TABLE \"lists\" ALTER COLUMN \"owner_id\" SET NOT NULL;--> statement-breakpoint\n\
CREATE INDEX \"items_user_idx\" ON \"items\" USING btree (\"user_id\");";

const TAG_1: &str = "0001_online";
const LARGE: [&str; 2] = ["--large-table-rows", "1000"];

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("meta")).unwrap();
    std::fs::write(dir.path().join("0000_tables.sql"), CREATE).unwrap();
    std::fs::write(dir.path().join(format!("{TAG_1}.sql")), ONLINE).unwrap();
    rewrite_journal(dir.path(), &[("0000_tables", 1_764_547_200_000), (TAG_1, 1_764_547_260_000)]);
    dir
}

const ROWS: &str = "insert into lists (owner_id) select g from generate_series(1, 3000) g;
     insert into items (list_id, user_id) select g, g from generate_series(1, 3000) g;
     analyze lists; analyze items;";

/// Another session reading `lists` in a transaction it keeps open: its ACCESS SHARE lock is
/// never granted to the recipe's first step, so every try of it gives way. Rolled back to release.
async fn hold_lists(db: &TestDb) -> tokio_postgres::Client {
    let holder = db.client().await;
    holder.batch_execute("begin; select count(*) from lists").await.unwrap();
    holder
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_giving_way_to_locks_until_the_timeout_is_cut_like_a_timeout_and_the_next_run_finishes_it() {
    let dir = folder();
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", "0000_tables"])).expect(0);
    db.client().await.batch_execute(ROWS).await.unwrap();
    let holder = hold_lists(&db).await;

    let started = Instant::now();
    let cut = run(&mut wm(
        &db.url,
        dir.path(),
        &["migrate", "--online", LARGE[0], LARGE[1], "--timeout", "4"],
    ))
    .expect(1)
    .report();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped at its timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(cut["error"]["type"], "DeadlineExceeded", "not MigrationFailed: {cut}");
    assert_eq!(cut["status"], "inProgress", "{cut}");
    // The last try ends by its lock_timeout with no time for another, or by the statement
    // timeout armed with what was left: the deadline either way.
    let message = cut["error"]["message"].as_str().unwrap();
    assert!(message.contains("deadline"), "{message}");
    assert_eq!(cut["inProgress"]["migration"], TAG_1, "{cut}");
    assert_eq!(cut["inProgress"]["step"], 1, "{cut}");
    assert!(db.statements_done(TAG_1).await.is_empty(), "no step committed");
    assert_eq!(ledger(&db).await.len(), 1);

    holder.batch_execute("rollback").await.unwrap();
    let done = run(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]))
        .expect(0)
        .report();
    assert_eq!(done["status"], "applied", "{done}");
    assert_eq!(db.statements_done(TAG_1).await, [1, 2, 3, 4, 5], "each step once");
    assert_eq!(ledger(&db).await, expected_ledger(dir.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn in_the_lambda_a_step_giving_way_to_locks_until_the_deadline_answers_in_progress_and_the_next_invocation_finishes() {
    let stack = Stack::new().await;
    let dir = folder();
    let lambda = stack.start(&[
        ("MIGRATIONS_DIR", dir.path().to_str().unwrap()),
        ("ONLINE_MIGRATIONS", "true"),
        ("LINT_LARGE_TABLE_ROWS", "1000"),
        ("DEADLINE_MARGIN_MS", "1000"),
    ]);
    response(lambda.invoke(json!({"action": "migrate", "to": "0000_tables"})), "0000");
    stack.db.client().await.batch_execute(ROWS).await.unwrap();
    let holder = hold_lists(&stack.db).await;

    let first = response(
        lambda.invoke_with_deadline(json!({"action": "migrate"}), Duration::from_secs(5)),
        "migrate against the deadline",
    );
    // Answered before the deadline: the Runtime API emulator, like the service, turns a late
    // answer into Sandbox.Timedout.
    assert_eq!(first["status"], "inProgress", "not MigrationFailed: {first}");
    assert!(first.get("error").is_none(), "not an error: {first}");
    let left = &first["inProgress"];
    assert_eq!(left["remaining"], json!([TAG_1]), "{first}");
    assert_eq!(
        (left["migration"].as_str(), left["step"].as_u64()),
        (Some(TAG_1), Some(1)),
        "{first}"
    );
    assert!(left["reason"].as_str().unwrap().contains("deadline"), "{first}");
    assert!(stack.db.statements_done(TAG_1).await.is_empty(), "no step committed");

    holder.batch_execute("rollback").await.unwrap();
    let last = response(lambda.invoke(json!({"action": "migrate"})), "the next round");
    assert_eq!(last["status"], "applied", "{last}");
    assert_eq!(tags(&last["applied"]), [TAG_1]);
    assert_eq!(stack.db.statements_done(TAG_1).await, [1, 2, 3, 4, 5], "each step once");
    assert_eq!(ledger(&stack.db).await, expected_ledger(dir.path()));
}
