//! The Lambda's `inProgress` (issue 22): an online run that reaches the invocation's deadline
//! part-way through a recipe answers `"status": "inProgress"` with what is left instead of an
//! error; a custom resource, which cannot be invoked again, fails saying how to finish; and the
//! next invocation resumes after the last committed step and finishes.

use std::time::Duration;

use serde_json::json;

use crate::harness::response_url::ResponseServer;
use crate::harness::stack::{cfn_answer, cfn_event, response, Stack};
use crate::harness::*;

const CREATE: &str =
    "CREATE TABLE \"lists\" (\n\t\"id\" serial PRIMARY KEY NOT NULL,\n\t\"owner_id\" integer\n);\n--> statement-breakpoint\n\
CREATE TABLE \"items\" (\n\t\"id\" serial PRIMARY KEY NOT NULL,\n\t\"list_id\" integer,\n\t\"user_id\" integer\n);\n";

/// Two blocking statements on live tables: SET NOT NULL (a four-step recipe) and an index (built
/// concurrently, the fifth step).
const ONLINE: &str = "ALTER TABLE \"lists\" ALTER COLUMN \"owner_id\" SET NOT NULL;--> statement-breakpoint\n\
CREATE INDEX \"items_user_idx\" ON \"items\" USING btree (\"user_id\");";

pub(crate) const TAG_1: &str = "0001_online";

pub(crate) fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("meta")).unwrap();
    std::fs::write(dir.path().join("0000_tables.sql"), CREATE).unwrap();
    std::fs::write(dir.path().join(format!("{TAG_1}.sql")), ONLINE).unwrap();
    rewrite_journal(dir.path(), &[("0000_tables", 1_764_547_200_000), (TAG_1, 1_764_547_260_000)]);
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn an_online_run_past_its_deadline_answers_in_progress_and_the_next_invocation_finishes_it() {
    let stack = Stack::new().await;
    let dir = folder();
    let lambda = stack.start(&[
        ("MIGRATIONS_DIR", dir.path().to_str().unwrap()),
        ("ONLINE_MIGRATIONS", "true"),
        ("LINT_LARGE_TABLE_ROWS", "1000"),
        ("DEADLINE_MARGIN_MS", "1000"),
    ]);
    response(lambda.invoke(json!({"action": "migrate", "to": "0000_tables"})), "0000");
    let admin = stack.db.client().await;
    admin
        .batch_execute(
            "insert into lists (owner_id) select g from generate_series(1, 3000) g;
             insert into items (list_id, user_id) select g, g from generate_series(1, 3000) g;
             analyze lists; analyze items;",
        )
        .await
        .unwrap();
    // A long report's snapshot, touching neither table: a concurrent index build waits for every
    // older snapshot to end, so the recipe's last step cannot finish while it stays open.
    let mut holder = stack.db.client().await;
    let report = holder
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await
        .unwrap();
    report.query("select 1", &[]).await.unwrap();

    let first = response(
        lambda.invoke_with_deadline(json!({"action": "migrate"}), Duration::from_secs(8)),
        "migrate against the deadline",
    );
    // Answered before the deadline: the Runtime API emulator, like the service, turns a late
    // answer into Sandbox.Timedout.
    assert_eq!(first["status"], "inProgress", "{first}");
    assert!(first.get("error").is_none(), "not an error: {first}");
    let left = &first["inProgress"];
    assert_eq!(left["remaining"], json!([TAG_1]), "{first}");
    assert_eq!(left["migration"], TAG_1);
    assert_eq!((left["step"].as_u64(), left["steps"].as_u64()), (Some(5), Some(5)), "{first}");
    assert!(left["statement"].as_str().unwrap().contains("items_user_idx"), "{first}");
    assert!(left["reason"].as_str().unwrap().contains("deadline"), "{first}");
    assert_eq!(
        stack.db.statements_done(TAG_1).await,
        [1, 2, 3, 4],
        "the SET NOT NULL recipe committed and stays"
    );
    assert_eq!(ledger(&stack.db).await.len(), 1, "no ledger row before the last step");
    let state = stack.state().await.expect("recorded");
    assert_eq!(state["status"], "inProgress", "{state}");

    // A custom resource cannot be called again: it fails, saying how to finish.
    let server = ResponseServer::start();
    let create = cfn_event("Create", "req-in-progress", &server.url("/in-progress"), json!({}));
    let returned = response(lambda.invoke_with_deadline(create, Duration::from_secs(8)), "Create");
    assert_eq!(returned["Status"], "FAILED");
    let reason = cfn_answer(&server, "/in-progress")["Reason"].as_str().unwrap().to_string();
    assert!(reason.starts_with("DeadlineExceeded: the online migration reached"), "{reason}");
    assert!(
        reason.contains("0001_online is part-way (next: step 5 of 5)") && reason.contains("release workflow"),
        "{reason}"
    );
    assert_eq!(stack.db.statements_done(TAG_1).await, [1, 2, 3, 4], "nothing ran twice");

    // The report ends: the next round resumes at the index and finishes, each step once.
    report.rollback().await.unwrap();
    let last = response(lambda.invoke(json!({"action": "migrate"})), "the next round");
    assert_eq!(last["status"], "applied", "{last}");
    assert_eq!(tags(&last["applied"]), [TAG_1]);
    assert!(last.get("inProgress").is_none(), "{last}");
    assert_eq!(stack.db.statements_done(TAG_1).await, [1, 2, 3, 4, 5]);
    assert_eq!(ledger(&stack.db).await, expected_ledger(dir.path()));
    let valid = admin
        .query_one("select indisvalid from pg_index where indexrelid = 'items_user_idx'::regclass", &[])
        .await
        .unwrap();
    assert!(valid.get::<_, bool>(0));
    stack.assert_no_password(&lambda);
}
