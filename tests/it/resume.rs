//! A migration that runs outside a transaction and fails part-way: its committed statements
//! stay, and the next run resumes after them instead of failing on them forever.

use crate::harness::*;

const TAG: &str = "0001_create_index_concurrently";

/// The no-transaction fixture with a three-statement 0001 whose second statement is `second`.
/// A folder whose 0001 builds a unique index concurrently, on a database at 0000 whose rows
/// make that build fail (duplicates); and a client of that database.
async fn a_unique_build_that_fails_on_duplicates(db: &TestDb) -> (tempfile::TempDir, tokio_postgres::Client) {
    let dir = folder_with("CREATE UNIQUE INDEX CONCURRENTLY \"idx_one_per_user\" ON \"wishlist_items\" USING btree (\"user_id\");");
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", "0000_create_wishlist_items"])).expect(0);
    let client = db.client().await;
    client
        .batch_execute(
            "INSERT INTO wishlist_items (user_id, title, store, sort_order) VALUES ('u1', 'a', 'LEGO', 1), ('u1', 'b', 'LEGO', 2)",
        )
        .await
        .unwrap();
    (dir, client)
}

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
    let (dir, client) = a_unique_build_that_fails_on_duplicates(&db).await;
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

/// Whether the index exists and is valid (`None`: it does not exist).
async fn index_valid(db: &TestDb, name: &str) -> Option<bool> {
    db.client()
        .await
        .query_opt("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)", &[&name])
        .await
        .unwrap()
        .map(|r| r.get(0))
}

/// Waits until a migrator backend of `db` waits on a lock (`wait_event_type = 'Lock'`).
async fn migrator_waits_on_a_lock(db: &TestDb) -> bool {
    eventually(|| async {
        db.client()
            .await
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'wishlist-migrator' AND wait_event_type = 'Lock'",
                &[&db.name],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
            > 0
    })
    .await
}

#[tokio::test]
async fn a_concurrent_build_waits_out_an_older_transaction_longer_than_lock_timeout() {
    let db = pg().fresh_db().await;
    let dir = folder_with("ANALYZE \"wishlist_items\";");
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", "0000_create_wishlist_items"])).expect(0);
    // Any transaction with a snapshot, on any table: the build waits for it to end before it
    // finishes, and that wait used to be cut off by lock_timeout (55P03).
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
        .await
        .unwrap();
    let child = spawn(wm(&db.url, dir.path(), &["migrate"]).env("PG_LOCK_TIMEOUT_MS", "200"));
    assert!(migrator_waits_on_a_lock(&db).await, "the build waits for the open transaction");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    holder.batch_execute("COMMIT").await.unwrap();
    let report = wait(child).expect(0).report();
    assert_eq!(report["status"], "applied", "{report}");
    assert_eq!(index_valid(&db, "public.idx_wishlist_title_concurrent").await, Some(true));
    assert_eq!(ledger(&db).await, expected_ledger(dir.path()));
}

#[tokio::test]
async fn a_failed_build_is_cleaned_up_past_lock_timeout_and_a_leftover_does_not_block_later_runs() {
    let db = pg().fresh_db().await;
    let (dir, client) = a_unique_build_that_fails_on_duplicates(&db).await;
    // A reader of the table: the build does not wait for it, the DROP INDEX CONCURRENTLY that
    // cleans up after the failed build does.
    let reader = db.client().await;
    reader.batch_execute("BEGIN; SELECT count(*) FROM wishlist_items").await.unwrap();
    let child = spawn(wm(&db.url, dir.path(), &["migrate"]).env("PG_LOCK_TIMEOUT_MS", "200"));
    assert!(migrator_waits_on_a_lock(&db).await, "the cleanup waits for the reader");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    reader.batch_execute("COMMIT").await.unwrap();
    let report = wait(child).expect(1).report();
    assert_eq!(report["error"]["sqlstate"], "23505", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"idx_one_per_user\" INVALID; it was dropped"), "{message}");
    assert_eq!(index_valid(&db, "public.idx_one_per_user").await, None, "no INVALID index is left");

    // A leftover INVALID index of the same name (a build killed, or cleaned up by nobody) is
    // dropped by the next run before it builds the index again.
    client
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY \"idx_one_per_user\" ON \"wishlist_items\" (\"user_id\")")
        .await
        .unwrap_err();
    assert_eq!(index_valid(&db, "public.idx_one_per_user").await, Some(false));
    client.batch_execute("DELETE FROM wishlist_items WHERE title = 'b'").await.unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0).report();
    assert_eq!(report["status"], "applied", "{report}");
    assert_eq!(index_valid(&db, "public.idx_one_per_user").await, Some(true));
}

#[tokio::test]
async fn a_stop_between_a_statement_and_its_history_row_resumes_exactly_once() {
    let db = pg().fresh_db().await;
    let dir = folder_with("CREATE TABLE \"resume_probe\" (\"id\" integer);");
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", "0000_create_wishlist_items"])).expect(0);
    // The history row of statement N fails after the statement itself has committed (or would
    // commit): what a crash or a lost connection at that moment leaves.
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE TABLE public.fail_rows (statement_index integer);
             CREATE FUNCTION public.fail_row() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.statement_index IN (SELECT statement_index FROM public.fail_rows) THEN
                 RAISE EXCEPTION 'history row refused';
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER fail_row BEFORE INSERT ON drizzle.wishlist_migrator_history
               FOR EACH ROW EXECUTE FUNCTION public.fail_row();
             INSERT INTO public.fail_rows VALUES (1);",
        )
        .await
        .unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(1).report();
    assert!(
        report["error"]["message"].as_str().unwrap().contains("recording statement 1"),
        "{report}"
    );
    assert_eq!(
        index_valid(&db, "public.idx_wishlist_title_concurrent").await,
        Some(true),
        "the concurrent build committed on its own"
    );

    // The next run finds the build done instead of failing on it forever ("already exists");
    // the CREATE TABLE commits with its row or not at all.
    client
        .batch_execute("UPDATE public.fail_rows SET statement_index = 2")
        .await
        .unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(1).report();
    assert!(
        report["error"]["message"].as_str().unwrap().contains("recording statement 2"),
        "{report}"
    );
    assert!(!db.table_exists("public.resume_probe").await, "rolled back with its history row");

    client.batch_execute("DELETE FROM public.fail_rows").await.unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0).report();
    assert_eq!(report["status"], "applied", "{report}");
    assert!(db.table_exists("public.resume_probe").await);
    assert_eq!(ledger(&db).await, expected_ledger(dir.path()));
    let statements: Vec<_> = history(&db)
        .await
        .into_iter()
        .filter(|h| h.0 == TAG && h.1 == "statement" && h.2)
        .collect();
    assert_eq!(statements.len(), 3, "each statement recorded once: {statements:?}");
}
