//! Faults of the network and of the migration folder: a connection that stops answering
//! mid-run, journal tags that point outside the folder, sessions that go idle in a transaction.

use std::time::Duration;

use crate::harness::proxy::Proxy;
use crate::harness::*;

const SLEEPY_TAG: &str = "0000_sleepy";

/// A one-migration folder whose migration takes `sql`.
fn folder(tag: &str, sql: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("wm-faults-").tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("meta")).unwrap();
    std::fs::write(dir.path().join(format!("{tag}.sql")), sql).unwrap();
    rewrite_journal(dir.path(), &[(tag, 1_795_520_100_854)]);
    dir
}

/// The test database's URL, through the proxy.
fn via(db: &TestDb, proxy: &Proxy) -> String {
    let direct = format!("127.0.0.1:{}/", pg().port());
    assert!(db.url.contains(&direct), "{}", db.url);
    db.url.replace(&direct, &format!("127.0.0.1:{}/", proxy.port()))
}

async fn migrator_running(db: &TestDb, fragment: &str) -> bool {
    let client = db.client().await;
    let n: i64 = client
        .query_one(
            "select count(*) from pg_stat_activity
              where datname = $1 and application_name = 'wishlist-migrator' and state = 'active'
                and query like '%' || $2 || '%'",
            &[&db.name, &fragment],
        )
        .await
        .unwrap()
        .get(0);
    n > 0
}

#[tokio::test]
async fn a_connection_that_stops_answering_mid_migration_ends_the_run_at_its_timeout() {
    let db = pg().fresh_db().await;
    let dir = folder(
        SLEEPY_TAG,
        "CREATE TABLE \"sleepy\" (\"id\" integer);\n--> statement-breakpoint\nSELECT pg_sleep(3);\n",
    );
    let proxy = Proxy::start(pg().port());
    let timeout = 3;
    let child = spawn(&mut wm(
        &via(&db, &proxy),
        dir.path(),
        &["migrate", "--timeout", &timeout.to_string()],
    ));

    // Mid-statement, the network goes half-open: nothing arrives, nothing is closed.
    assert!(
        eventually(|| migrator_running(&db, "pg_sleep")).await,
        "the migration never started"
    );
    proxy.stall();

    let out = exit_within(child, Duration::from_secs(timeout + 20), "the CLI hangs")
        .await
        .expect(1);
    let report = out.report();
    assert_eq!(error_type(&report), "DeadlineExceeded", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("migrate") && message.contains("stopped answering"), "{message}");
    assert!(
        message.contains(&format!("while it was applying {SLEEPY_TAG}")),
        "names the migration: {message}"
    );
    assert_eq!(report["error"]["migration"], SLEEPY_TAG, "{report}");

    // The network finally drops the connection; the server rolls back and frees the lock.
    proxy.cut();
    assert!(
        eventually(|| async { db.advisory_locks().await == 0 }).await,
        "the lock outlived the session"
    );
    assert_eq!(ledger(&db).await, Vec::new(), "the stalled migration must not be recorded");
    assert!(!db.table_exists("public.sleepy").await, "nothing half-applied");

    let again = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0);
    assert_eq!(tags(&again.report()["applied"]), [SLEEPY_TAG]);
    assert_eq!(ledger(&db).await.len(), 1);
}

#[tokio::test]
async fn a_zero_timeout_is_refused_as_configuration() {
    let db = pg().fresh_db().await;
    let dir = folder(SLEEPY_TAG, "SELECT 1;\n");
    let out = run(wm(&db.url, dir.path(), &["migrate"]).env("RUN_TIMEOUT_SECONDS", "0")).expect(2);
    assert_eq!(error_type(&out.report()), "ConfigError");
    assert_eq!(ledger(&db).await, Vec::new());
}

#[tokio::test]
async fn the_migration_session_cannot_stay_idle_in_a_transaction() {
    let db = pg().fresh_db().await;
    let dir = folder(
        "0000_probe",
        "CREATE TABLE \"probe\" AS SELECT current_setting('idle_in_transaction_session_timeout') AS \"value\";\n",
    );
    run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0);
    let value: String = db.client().await.query_one("select value from probe", &[]).await.unwrap().get(0);
    assert_eq!(value, "1min", "the tool's own backend has the timeout set");
}

fn traversal_folder(tag: &str) -> tempfile::TempDir {
    let dir = copy_fixture("migrations");
    let mut entries: Vec<(String, i64)> = journal(dir.path());
    entries.push((tag.to_string(), entries.last().unwrap().1 + 1));
    let refs: Vec<(&str, i64)> = entries.iter().map(|(t, w)| (t.as_str(), *w)).collect();
    rewrite_journal(dir.path(), &refs);
    dir
}

#[tokio::test]
async fn a_journal_tag_reaching_outside_the_folder_is_refused_and_nothing_is_applied() {
    let db = pg().fresh_db().await;
    // A file the tags reach: it must never be read, let alone applied.
    let outside = tempfile::Builder::new().prefix("wm-outside-").tempdir().unwrap();
    std::fs::write(outside.path().join("evil.sql"), "CREATE TABLE \"evil\" (\"id\" integer);\n").unwrap();
    let name = outside.path().file_name().unwrap().to_str().unwrap().to_string();
    let absolute = outside.path().join("evil").to_str().unwrap().to_string();
    let tags = [
        format!("../{name}/evil"),
        format!("sub/../../{name}/evil"),
        absolute,
        format!("..\\{name}\\evil"),
        "0000_create_wishlist_items\0".to_string(),
    ];
    for tag in &tags {
        let dir = traversal_folder(tag);
        let out = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(3);
        let report = out.report();
        assert_eq!(error_type(&report), "InvalidMigrations", "{tag:?}: {report}");
        let message = report["error"]["message"].as_str().unwrap();
        assert!(message.contains("entry 2"), "names the entry: {message}");
        assert_eq!(ledger(&db).await, Vec::new(), "{tag:?}: nothing applied");
        assert!(!db.table_exists("public.evil").await);
        assert!(!db.table_exists("public.wishlist_items").await);
    }
}
