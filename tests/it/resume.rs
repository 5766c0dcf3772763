//! A migration that runs outside a transaction and fails part-way: its committed statements
//! stay, and the next run resumes after them instead of failing on them forever.

use crate::harness::*;

const TAG: &str = "0001_create_index_concurrently";

/// The no-transaction fixture with a three-statement 0001 whose second statement is `second`.
fn folder_with(second: &str) -> tempfile::TempDir {
    let dir = copy_fixture("tests/fixtures/engine/no_transaction");
    write_0001(dir.path(), second);
    dir
}

fn write_0001(dir: &std::path::Path, second: &str) {
    // Mixed on purpose (the tool then runs it statement by statement): the lint gate is told.
    let sql = format!(
        "-- wishlist-migrator: allow non-transactional-mixed -- this test needs a statement that commits before a later one fails\nCREATE INDEX CONCURRENTLY \"idx_wishlist_title_concurrent\" ON \"wishlist_items\" USING btree (\"title\");--> statement-breakpoint\n\
         {second}--> statement-breakpoint\n\
         ANALYZE \"wishlist_items\";"
    );
    std::fs::write(dir.join(format!("{TAG}.sql")), sql).unwrap();
}

#[tokio::test]
async fn an_interrupted_no_transaction_migration_resumes_at_the_failed_statement() {
    let db = pg().fresh_db().await;
    let dir = folder_with("CREATE INDEX CONCURRENTLY \"idx_second\" ON \"wishlist_items\" USING btree (\"no_such_column\");");
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(1).report();
    assert_eq!(report["error"]["migration"], TAG, "{report}");
    assert_eq!(report["segments"][1]["status"], "partiallyApplied", "{report}");
    assert!(
        report["error"]["message"].as_str().unwrap().contains("resumes at statement 2"),
        "{report}"
    );
    assert_eq!(ledger(&db).await.len(), 1, "no ledger row for the failed migration");
    assert!(
        db.table_exists("public.idx_wishlist_title_concurrent").await,
        "statement 1 committed and stays"
    );

    // The operator fixes the failed statement; the run picks up at it, not at statement 1.
    write_0001(
        dir.path(),
        "CREATE INDEX CONCURRENTLY \"idx_second\" ON \"wishlist_items\" USING btree (\"store\");",
    );
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0).report();
    assert_eq!(report["status"], "applied", "{report}");
    assert_eq!(tags(&report["applied"]), [TAG]);
    assert!(report["warnings"].to_string().contains("resumed at statement 2 of 3"), "{report}");
    assert!(db.table_exists("public.idx_second").await);
    assert_eq!(ledger(&db).await, expected_ledger(dir.path()));
    assert_eq!(report["current"], TAG);

    let history = history(&db).await;
    assert!(history.iter().any(|h| h.0 == TAG && h.1 == "statement"), "{history:?}");
    assert_eq!(db.advisory_locks().await, 0);
}

#[tokio::test]
async fn a_completed_statement_that_changed_since_is_refused_before_anything_runs() {
    let db = pg().fresh_db().await;
    let dir = folder_with("CREATE INDEX CONCURRENTLY \"idx_second\" ON \"wishlist_items\" USING btree (\"no_such_column\");");
    run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(1);
    // Statement 1 committed as it was; now its text says something else.
    let sql = std::fs::read_to_string(dir.path().join(format!("{TAG}.sql")))
        .unwrap()
        .replace("(\"title\")", "(\"title\", \"store\")");
    std::fs::write(dir.path().join(format!("{TAG}.sql")), sql).unwrap();
    let history_before = history(&db).await;
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(3).report();
    assert_eq!(error_type(&report), "ChecksumMismatch", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("statement 1 committed in run"), "{message}");
    assert_eq!(history(&db).await.len(), history_before.len(), "nothing ran");
    assert_eq!(ledger(&db).await.len(), 1);
}

#[tokio::test]
async fn a_failed_concurrent_build_leaves_no_invalid_index_behind() {
    let db = pg().fresh_db().await;
    let dir = folder_with("CREATE UNIQUE INDEX CONCURRENTLY \"idx_one_per_user\" ON \"wishlist_items\" USING btree (\"user_id\");");
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", "0000_create_wishlist_items"])).expect(0);
    let client = db.client().await;
    client
        .batch_execute(
            "INSERT INTO wishlist_items (user_id, title, store, sort_order) VALUES ('u1', 'a', 'LEGO', 1), ('u1', 'b', 'LEGO', 2)",
        )
        .await
        .unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(1).report();
    assert_eq!(report["error"]["sqlstate"], "23505", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"idx_one_per_user\" INVALID; it was dropped"), "{message}");
    assert!(!db.table_exists("public.idx_one_per_user").await, "the INVALID index is gone");

    // The duplicate removed, the next run builds the index where the last one failed.
    client.batch_execute("DELETE FROM wishlist_items WHERE title = 'b'").await.unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0).report();
    assert_eq!(report["status"], "applied", "{report}");
    let valid: bool = client
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('public.idx_one_per_user')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(valid);
}
