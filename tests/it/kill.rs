//! The CLI killed with SIGKILL in the middle of a migration: the schema stays at a version the
//! ledger records, no advisory lock outlives the killed process, and the next run finishes.

use std::path::Path;
use std::process::Child;

use crate::harness::*;

/// Waits until a migrator backend of `db` runs a statement containing `marker`.
async fn running(db: &TestDb, marker: &str) -> bool {
    let client = db.client().await;
    let pattern = format!("%{marker}%");
    eventually(|| async {
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = $1 AND application_name = 'wishlist-migrator' AND state = 'active' AND query LIKE $2",
                &[&db.name, &pattern],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0) > 0
    })
    .await
}

fn kill(mut child: Child) {
    child.kill().expect("SIGKILL the CLI");
    child.wait().expect("reap the CLI");
}

/// After the kill the backend finds its client gone once the running statement ends; until
/// then it holds the lock, so wait for it (bounded) as a real operator's retry would.
async fn settles(db: &TestDb) {
    assert!(
        eventually(|| async { migrator_sessions(db).await == 0 }).await,
        "the killed run's backend never exited"
    );
    assert_eq!(db.advisory_locks().await, 0, "no advisory lock outlives the killed run");
}

fn with_sleep_before(dir: &Path, tag: &str) {
    let file = dir.join(format!("{tag}.sql"));
    let sql = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        format!("SELECT pg_sleep(4) /* kill-point */;--> statement-breakpoint\n{sql}"),
    )
    .unwrap();
}

#[tokio::test]
async fn killed_inside_the_transaction_nothing_of_it_is_kept() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    with_sleep_before(dir.path(), TAG_0001);
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", TAG_0000])).expect(0);
    let catalog_before = catalog(&db).await;
    let child = spawn(&mut wm(&db.url, dir.path(), &["migrate"]));
    assert!(running(&db, "kill-point").await, "the run never reached the kill point");
    kill(child);
    settles(&db).await;
    assert_eq!(ledger(&db).await.len(), 1, "the ledger still says 0000");
    assert_eq!(catalog(&db).await, catalog_before, "the schema is still 0000's");
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0).report();
    assert_eq!(tags(&report["applied"]), [TAG_0001]);
    assert_eq!(ledger(&db).await, expected_ledger(dir.path()));
}

#[tokio::test]
async fn killed_between_committed_statements_the_next_run_resumes() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("tests/fixtures/engine/no_transaction");
    let tag = "0001_create_index_concurrently";
    std::fs::write(
        dir.path().join(format!("{tag}.sql")),
        "-- wishlist-migrator: allow non-transactional-mixed -- this test needs a statement that commits before a later one fails\nCREATE INDEX CONCURRENTLY \"idx_wishlist_title_concurrent\" ON \"wishlist_items\" USING btree (\"title\");--> statement-breakpoint\n\
         SELECT pg_sleep(4) /* kill-point */;--> statement-breakpoint\n\
         ANALYZE \"wishlist_items\";",
    )
    .unwrap();
    let child = spawn(&mut wm(&db.url, dir.path(), &["migrate"]));
    assert!(running(&db, "kill-point").await, "the run never reached the kill point");
    kill(child);
    settles(&db).await;
    // 0000's segment committed; of 0001 only statement 1 stands, and the ledger says so.
    assert_eq!(ledger(&db).await.len(), 1);
    assert!(db.table_exists("public.idx_wishlist_title_concurrent").await);
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0).report();
    assert_eq!(tags(&report["applied"]), [tag]);
    assert!(report["warnings"].to_string().contains("resumed at statement 2 of 3"), "{report}");
    assert_eq!(ledger(&db).await, expected_ledger(dir.path()));
}

#[tokio::test]
async fn a_terminated_backend_fails_the_run_cleanly_and_the_next_one_applies() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    with_sleep_before(dir.path(), TAG_0001);
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", TAG_0000])).expect(0);
    let child = spawn(&mut wm(&db.url, dir.path(), &["migrate"]));
    assert!(running(&db, "kill-point").await, "the run never reached the kill point");
    let terminated: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'wishlist-migrator'",
            &[&db.name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(terminated >= 1);
    let report = wait(child).expect(1).report();
    assert_eq!(report["status"], "failed", "{report}");
    assert_eq!(report["error"]["migration"], TAG_0001, "{report}");
    assert_eq!(report["error"]["sqlstate"], "57P01", "the error names the termination: {report}");
    settles(&db).await;
    assert_eq!(ledger(&db).await.len(), 1);
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0).report();
    assert_eq!(tags(&report["applied"]), [TAG_0001]);
}

#[tokio::test]
async fn a_server_restarted_mid_migration_fails_the_run_cleanly_and_the_next_one_applies() {
    // A cluster of this test's own: restarting the shared one would fail every other test.
    let server = private_pg();
    let db = server.fresh_db().await;
    let dir = copy_fixture("migrations");
    with_sleep_before(dir.path(), TAG_0001);
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", TAG_0000])).expect(0);
    let child = spawn(&mut wm(&db.url, dir.path(), &["migrate"]));
    assert!(running(&db, "kill-point").await, "the run never reached the kill point");
    server.restart_fast();
    let out = wait(child).expect(1);
    let report = out.report();
    assert_eq!(report["status"], "failed", "{report}");
    assert_eq!(report["error"]["migration"], TAG_0001, "names the migration it was in: {report}");
    assert_eq!(report["error"]["sqlstate"], "57P01", "the error names the shutdown: {report}");
    // The restart rolled the transaction back: 0000 only, in the ledger and in the schema.
    assert_eq!(ledger(&db).await.len(), 1);
    assert_eq!(db.advisory_locks().await, 0);
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0).report();
    assert_eq!(tags(&report["applied"]), [TAG_0001]);
    assert_eq!(ledger(&db).await, expected_ledger(dir.path()));
}
