//! Where drizzle-orm silently does the wrong thing, `wishlist-migrate` refuses with exit 3 and
//! changes nothing: same ledger rows, same tables. Each case starts from a database where part
//! of the history is applied, so "nothing changed" means the pending migration did not run.

use std::path::Path;

use crate::harness::*;

/// The ledger and the catalog: what a refusal must leave exactly as it was.
async fn state(db: &TestDb) -> (Vec<(String, i64)>, Vec<String>) {
    (ledger(db).await, catalog(db).await)
}

fn project_whens(dir: &Path) -> (i64, i64) {
    let j = journal(dir);
    assert_eq!(j.len(), 2, "{j:?}");
    (j[0].1, j[1].1)
}

fn message(report: &serde_json::Value) -> &str {
    report["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.message: {report}"))
}

#[tokio::test]
async fn an_applied_migration_whose_file_changed_is_refused() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", TAG_0000])).expect(0);
    let applied_hash = ledger(&db).await[0].0.clone();

    // A "harmless" edit after release still changes what the file means to every database.
    let file = dir.path().join(format!("{TAG_0000}.sql"));
    let mut sql = std::fs::read_to_string(&file).unwrap();
    sql.push_str("\n-- reviewed\n");
    std::fs::write(&file, sql).unwrap();
    let edited_hash = sha256_file(&file);
    let before = state(&db).await;

    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(3).report();
    assert_eq!(report["status"], "failed");
    assert_eq!(error_type(&report), "ChecksumMismatch");
    assert_eq!(report["error"]["migration"], TAG_0000);
    let msg = message(&report);
    assert!(
        msg.contains(TAG_0000) && msg.contains(&applied_hash) && msg.contains(&edited_hash),
        "{msg}"
    );
    assert_eq!(state(&db).await, before, "0001 must not run after a refusal");

    let status = run(&mut wm(&db.url, dir.path(), &["status"])).expect(3).report();
    assert_eq!(status["status"], "invalid");
    assert_eq!(status["problems"][0]["kind"], "checksumMismatch");
    assert_eq!(status["problems"][0]["migration"], TAG_0000);
    run(&mut wm(&db.url, dir.path(), &["plan"])).expect(3);
    assert_eq!(state(&db).await, before);
}

#[tokio::test]
async fn a_pending_migration_older_than_the_newest_applied_is_refused() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0);
    let (w0, w1) = project_whens(dir.path());

    // A branch merged late: its migration was generated before 0001 was applied here, so
    // drizzle-orm (which applies only entries newer than its newest row) would never run it.
    let branch = "0001_branch_feature";
    let renamed = "0002_wish_2007_enums_audit";
    std::fs::rename(
        dir.path().join(format!("{TAG_0001}.sql")),
        dir.path().join(format!("{renamed}.sql")),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(format!("{branch}.sql")),
        "CREATE TABLE \"branch_only\" (\"id\" integer);",
    )
    .unwrap();
    rewrite_journal(dir.path(), &[(TAG_0000, w0), (branch, w0 + 1), (renamed, w1)]);
    let before = state(&db).await;

    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(3).report();
    assert_eq!(error_type(&report), "OutOfOrderMigration");
    assert_eq!(report["error"]["migration"], branch);
    assert!(message(&report).contains(branch), "{report}");
    assert!(!db.table_exists("public.branch_only").await);
    assert_eq!(state(&db).await, before);

    let status = run(&mut wm(&db.url, dir.path(), &["status"])).expect(3).report();
    let kinds: Vec<(&str, &str)> = status["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["kind"].as_str().unwrap(), p["migration"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(kinds, [("outOfOrder", branch)], "{status}");
}

#[tokio::test]
async fn a_journal_whose_when_does_not_increase_is_refused() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", TAG_0000])).expect(0);
    let (w0, _) = project_whens(dir.path());
    let before = state(&db).await;

    for when in [w0, w0 - 1] {
        rewrite_journal(dir.path(), &[(TAG_0000, w0), (TAG_0001, when)]);
        for command in ["migrate", "status", "plan"] {
            let report = run(&mut wm(&db.url, dir.path(), &[command])).expect(3).report();
            assert_eq!(error_type(&report), "InvalidMigrations", "{command}: {report}");
            assert_eq!(report["error"]["migration"], TAG_0001, "{command}: {report}");
            assert!(message(&report).contains(TAG_0001), "{report}");
        }
        assert_eq!(state(&db).await, before);
    }
}

#[tokio::test]
async fn a_journal_entry_without_its_file_is_refused() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", TAG_0000])).expect(0);
    std::fs::remove_file(dir.path().join(format!("{TAG_0001}.sql"))).unwrap();
    let before = state(&db).await;

    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(3).report();
    assert_eq!(error_type(&report), "InvalidMigrations");
    assert_eq!(report["error"]["migration"], TAG_0001);
    assert!(message(&report).contains(&format!("{TAG_0001}.sql")), "{report}");
    assert_eq!(state(&db).await, before);
}

#[tokio::test]
async fn ledger_rows_matching_no_journal_entry_are_refused_unless_allowed() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0);
    let (w0, w1) = project_whens(dir.path());
    let removed_hash = ledger(&db).await[1].0.clone();

    // 0001 deleted from the folder (a reverted branch), and a new migration after it.
    std::fs::remove_file(dir.path().join(format!("{TAG_0001}.sql"))).unwrap();
    let next = "0002_title_index";
    std::fs::write(
        dir.path().join(format!("{next}.sql")),
        "CREATE INDEX \"idx_wishlist_title\" ON \"wishlist_items\" USING btree (\"title\");",
    )
    .unwrap();
    rewrite_journal(dir.path(), &[(TAG_0000, w0), (next, w1 + 1)]);
    let before = state(&db).await;

    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(3).report();
    assert_eq!(error_type(&report), "UnknownMigrations");
    let msg = message(&report);
    assert!(msg.contains(&removed_hash), "the unknown row must be identified: {msg}");
    assert!(msg.contains("--allow-unknown-migrations"), "{msg}");
    assert_eq!(state(&db).await, before);

    let status = run(&mut wm(&db.url, dir.path(), &["status"])).expect(3).report();
    let problems = status["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{status}");
    assert_eq!(problems[0]["kind"], "unknownLedgerRow");
    assert!(problems[0]["message"].as_str().unwrap().contains(&removed_hash));
    assert_eq!(tags(&status["pending"]), [next]);

    let mut dry = wm(&db.url, dir.path(), &["migrate", "--dry-run"]);
    dry.env("ALLOW_UNKNOWN_MIGRATIONS", "true");
    assert_eq!(run(&mut dry).expect(0).report()["status"], "planned");
    assert_eq!(state(&db).await, before);

    let report = run(&mut wm(&db.url, dir.path(), &["--allow-unknown-migrations", "migrate"]))
        .expect(0)
        .report();
    assert_eq!(report["status"], "applied");
    assert_eq!(tags(&report["applied"]), [next]);
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w.as_str().unwrap().contains("match no journal entry")),
        "the ignored rows must be called out: {report}"
    );
    assert!(db
        .client()
        .await
        .query_opt("select 1 from pg_class where relname = 'idx_wishlist_title'", &[])
        .await
        .unwrap()
        .is_some());
    let mut expected = before.0.clone();
    expected.push((sha256_file(&dir.path().join(format!("{next}.sql"))), w1 + 1));
    assert_eq!(ledger(&db).await, expected, "the unknown row stays; the new one is appended");
}
