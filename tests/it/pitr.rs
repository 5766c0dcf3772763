//! The point-in-time recovery drill of docs/backup-restore.md, against real PostgreSQL: a
//! cluster archiving its WAL, a base backup, rows written, a migration applied, more rows; then
//! recovery into a new cluster to where the tool recorded the migration began. Afterwards the
//! ledger, `status`, `drift` and the rows must tell the truth, and `migrate` applies the
//! migration again. And the targets an operator could pick by mistake (the client's clock, the
//! run's end) must be shown to recover the wrong state, or the drill would prove nothing.

use std::time::Duration;

use serde_json::Value;

use crate::harness::pitr::{Archiving, Target};
use crate::harness::*;

async fn titles(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query("SELECT title FROM wishlist_items ORDER BY sort_order", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn write(db: &TestDb, sql: &str) {
    db.client().await.batch_execute(sql).await.unwrap();
}

/// The newest `history --json` row for `migration` with `action`.
fn history_row(db: &TestDb, migrations: impl AsRef<std::path::Path>, action: &str, migration: &str) -> Value {
    let report = run(&mut wm(&db.url, migrations, &["history"])).expect(0).report();
    report["history"]
        .as_array()
        .unwrap_or_else(|| panic!("no history: {report}"))
        .iter()
        .find(|r| r["action"] == action && r["migration"] == migration)
        .cloned()
        .unwrap_or_else(|| panic!("no {action} row of {migration}: {report}"))
}

/// As `recovery_target_time` takes it: no `Z` (a zone abbreviation, which it refuses).
fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
        .replace('Z', "+00:00")
}

fn parse(t: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
}

/// How far ahead the client's clock runs in the wrong-clock recovery, at least: more than the
/// migration takes here, less than clocks of paused VMs or badly synced laptops have been seen
/// to drift. On a loaded machine the run can take longer; the skew then grows with it.
const CLIENT_SKEW: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread")]
async fn recovery_to_the_recorded_start_of_0001_brings_back_the_database_just_before_it() {
    let primary = Archiving::start();
    let db = primary.server.fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate", "--to", TAG_0000])).expect(0);
    write(
        &db,
        "INSERT INTO wishlist_items (user_id, title, store, currency, sort_order)
         VALUES ('u1', 'Millennium Falcon', 'LEGO', 'EUR', 1), ('u2', 'Castle', 'Cata', 'GBP', 2)",
    )
    .await;
    // Last night's backup; what follows is only in the archived WAL.
    primary.base_backup();
    write(
        &db,
        "INSERT INTO wishlist_items (user_id, title, store, sort_order) VALUES ('u1', 'Written before 0001', 'BrickLink', 3)",
    )
    .await;

    let client_clock_at_start = time::OffsetDateTime::now_utc();
    let migrated = run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0).report();
    assert_eq!(tags(&migrated["applied"]), [TAG_0001], "{migrated}");
    let run_end = db
        .client()
        .await
        .query_one("select clock_timestamp()::text", &[])
        .await
        .unwrap()
        .get::<_, String>(0);
    let applied = history_row(&db, "migrations", "apply", TAG_0001);
    let (started_at, start_lsn) = (applied["startedAt"].as_str().unwrap(), applied["startLsn"].as_str().unwrap());
    // What the runbook reads: the run's own report (and the SSM state) carry the same point.
    assert_eq!(migrated["recoveryPoint"]["startedAt"], started_at, "{migrated}");
    assert_eq!(migrated["recoveryPoint"]["startLsn"], start_lsn, "{migrated}");
    let committed_at = parse(applied["committedAt"].as_str().unwrap());
    assert!(parse(started_at) <= committed_at, "{applied}");
    // A client clock fast by more than the run took to commit.
    let skew = CLIENT_SKEW.max((committed_at - client_clock_at_start).unsigned_abs() + Duration::from_millis(300));
    let skewed = rfc3339(client_clock_at_start + skew);

    // Users keep writing after the migration (with its new column), past the skewed clock's
    // reading so the recovery finds a commit after each target.
    while time::OffsetDateTime::now_utc() < client_clock_at_start + skew + Duration::from_millis(50) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    write(
        &db,
        "INSERT INTO wishlist_items (user_id, title, store, sort_order, created_by) VALUES ('u3', 'Written after 0001', 'LEGO', 4, 'app')",
    )
    .await;
    primary.archive_now().await;

    let before = ["Millennium Falcon", "Castle", "Written before 0001"];
    for target in [Target::Time(started_at), Target::Lsn(start_lsn)] {
        let recovered = primary.recover(target).await;
        let rdb = recovered.server.db(&db.name);
        assert_eq!(
            ledger(&rdb).await,
            expected_ledger(&repo_path("migrations"))[..1],
            "0001 is not in the ledger"
        );
        assert_eq!(titles(&rdb).await, before, "the rows written before 0001, and none after");
        let status = run(&mut wm(&rdb.url, "migrations", &["status"])).expect(0).report();
        assert_eq!(status["status"], "pending", "{status}");
        assert_eq!(tags(&status["pending"]), [TAG_0001], "{status}");
        let drift = run(&mut wm(&rdb.url, "migrations", &["drift"])).expect(0).report();
        assert_eq!(drift["status"], "ok", "{drift}");
        assert_eq!(
            drift["baseline"], "recorded",
            "the baseline recorded for 0000 came back with it: {drift}"
        );
        let again = run(&mut wm(&rdb.url, "migrations", &["migrate"])).expect(0).report();
        assert_eq!(tags(&again["applied"]), [TAG_0001], "{again}");
        assert_eq!(titles(&rdb).await, before, "0001 converted the rows it found");
    }

    // The wrong clock: the client's reading at the start, a second or so fast. The wrong moment:
    // the run's end. Both recover a database that still has 0001, the state the operator wanted
    // gone.
    for wrong in [skewed.as_str(), run_end.as_str()] {
        let recovered = primary.recover(Target::Time(wrong)).await;
        let rdb = recovered.server.db(&db.name);
        assert_eq!(
            ledger(&rdb).await,
            expected_ledger(&repo_path("migrations")),
            "a target of {wrong} (the migration started at {started_at}) still has 0001"
        );
    }
}

const NO_TX_TAG: &str = "0001_create_index_concurrently";

/// The no-transaction fixture with a three-statement 0001 whose second statement is `second`.
fn write_no_tx_0001(dir: &std::path::Path, second: &str) {
    let sql = format!(
        "-- wishlist-migrator: allow non-transactional-mixed -- this test needs a statement that commits before a later one fails\nCREATE INDEX CONCURRENTLY \"idx_wishlist_title_concurrent\" ON \"wishlist_items\" USING btree (\"title\");--> statement-breakpoint\n\
         {second}--> statement-breakpoint\n\
         ANALYZE \"wishlist_items\";"
    );
    std::fs::write(dir.join(format!("{NO_TX_TAG}.sql")), sql).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn recovery_into_an_interrupted_non_transactional_migration_resumes_only_after_what_it_kept() {
    let primary = Archiving::start();
    let db = primary.server.fresh_db().await;
    primary.base_backup();
    let dir = copy_fixture("tests/fixtures/engine/no_transaction");
    write_no_tx_0001(
        dir.path(),
        "CREATE INDEX CONCURRENTLY \"idx_second\" ON \"wishlist_items\" USING btree (\"no_such_column\");",
    );
    let interrupted = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(1).report();
    assert_eq!(interrupted["segments"][1]["status"], "partiallyApplied", "{interrupted}");
    let first_statement = history_row(&db, dir.path(), "statement", NO_TX_TAG);
    assert_eq!(first_statement["statementIndex"], 1, "{first_statement}");
    assert!(
        interrupted["recoveryPoint"]["startedAt"].as_str().unwrap() < first_statement["startedAt"].as_str().unwrap(),
        "the run began with 0000, before 0001's first statement: {interrupted}"
    );

    // The operator fixes statement 2; the next run resumes there and completes 0001.
    write_no_tx_0001(
        dir.path(),
        "CREATE INDEX CONCURRENTLY \"idx_second\" ON \"wishlist_items\" USING btree (\"store\");",
    );
    let resumed = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0).report();
    assert_eq!(tags(&resumed["applied"]), [NO_TX_TAG], "{resumed}");
    let resumed_at = resumed["recoveryPoint"]["startedAt"].as_str().unwrap().to_string();
    write(
        &db,
        "INSERT INTO wishlist_items (user_id, title, store, sort_order) VALUES ('u1', 'Later', 'LEGO', 1)",
    )
    .await;
    primary.archive_now().await;

    // Back to before the resumed run: statement 1 and its row are there, 2 and 3 are not, and
    // `migrate` resumes at statement 2 again.
    {
        let recovered = primary.recover(Target::Time(&resumed_at)).await;
        let rdb = recovered.server.db(&db.name);
        assert_eq!(ledger(&rdb).await, expected_ledger(dir.path())[..1]);
        assert!(rdb.table_exists("public.idx_wishlist_title_concurrent").await);
        assert!(!rdb.table_exists("public.idx_second").await);
        let again = run(&mut wm(&rdb.url, dir.path(), &["migrate"])).expect(0).report();
        assert!(again["warnings"].to_string().contains("resumed at statement 2 of 3"), "{again}");
        assert!(rdb.table_exists("public.idx_second").await);
        assert_eq!(ledger(&rdb).await, expected_ledger(dir.path()));
    }
    // Back to before statement 1 of the interrupted run (by its LSN): no index, no statement
    // row, so nothing is claimed done and `migrate` runs 0001 from its first statement.
    let recovered = primary.recover(Target::Lsn(first_statement["startLsn"].as_str().unwrap())).await;
    let rdb = recovered.server.db(&db.name);
    assert_eq!(ledger(&rdb).await, expected_ledger(dir.path())[..1]);
    assert!(!rdb.table_exists("public.idx_wishlist_title_concurrent").await);
    let again = run(&mut wm(&rdb.url, dir.path(), &["migrate"])).expect(0).report();
    assert!(!again["warnings"].to_string().contains("resumed"), "{again}");
    assert!(rdb.table_exists("public.idx_wishlist_title_concurrent").await);
    assert!(rdb.table_exists("public.idx_second").await);
    assert_eq!(ledger(&rdb).await, expected_ledger(dir.path()));
}

#[tokio::test]
async fn a_history_table_of_an_earlier_version_gains_the_columns_and_its_old_rows_claim_no_moment() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate", "--to", TAG_0000])).expect(0);
    // The table as versions before these columns created it.
    write(
        &db,
        "ALTER TABLE drizzle.wishlist_migrator_history DROP COLUMN started_at, DROP COLUMN start_lsn, DROP COLUMN committed_at, DROP COLUMN commit_lsn",
    )
    .await;
    let migrated = run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0).report();
    let new = history_row(&db, "migrations", "apply", TAG_0001);
    let old = history_row(&db, "migrations", "apply", TAG_0000);
    assert_eq!(migrated["recoveryPoint"]["startedAt"], new["startedAt"], "{migrated}");
    for field in ["startedAt", "startLsn", "committedAt", "commitLsn"] {
        assert!(new[field].is_string(), "{new}");
        assert!(old.get(field).is_none(), "{old}");
    }
    let human = run(cli().env("DATABASE_URL", &db.url).args(["--migrations", "migrations", "history"])).expect(0);
    let began = format!(
        "began {} at WAL {}",
        new["startedAt"].as_str().unwrap(),
        new["startLsn"].as_str().unwrap()
    );
    assert!(human.stdout.contains(&began), "{}", human.stdout);
}
