//! The restore test of docs/backup-restore.md: a migrated database holding wishlist rows is
//! dumped with pg_dump and restored into a fresh database with pg_restore; the restored one is at
//! the same version, drift finds nothing (its recorded baseline came along and still belongs to
//! its ledger), and the rows are intact.

use std::process::Command;

use crate::harness::*;

async fn rows(db: &TestDb) -> Vec<(String, String, String)> {
    db.client()
        .await
        .query(
            "SELECT title, store::text, currency::text FROM wishlist_items ORDER BY sort_order",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn a_dump_restored_into_a_fresh_database_is_at_the_same_version_without_drift() {
    let source = pg().fresh_db().await;
    run(&mut wm(&source.url, "migrations", &["migrate"])).expect(0);
    source
        .client()
        .await
        .batch_execute(
            "INSERT INTO wishlist_items (user_id, title, store, currency, sort_order)
             VALUES ('u1', 'Millennium Falcon', 'LEGO', 'EUR', 1), ('u2', 'Castle', 'Cata', 'GBP', 2)",
        )
        .await
        .unwrap();

    let dump = tempfile::Builder::new().prefix("wm-dump-").tempdir().unwrap();
    let file = dump.path().join("wishlist.dump");
    let out = Command::new(pg_tool("pg_dump"))
        .args(["--format=custom", "--file"])
        .arg(&file)
        .arg(&source.url)
        .output()
        .expect("run pg_dump");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));

    let restored = pg().fresh_db().await;
    let out = Command::new(pg_tool("pg_restore"))
        .args(["--exit-on-error", "--no-owner", "--dbname"])
        .arg(&restored.url)
        .arg(&file)
        .output()
        .expect("run pg_restore");
    assert!(out.status.success(), "pg_restore: {}", String::from_utf8_lossy(&out.stderr));

    let status = run(&mut wm(&restored.url, "migrations", &["status"])).expect(0).report();
    assert_eq!(status["status"], "upToDate", "{status}");
    assert_eq!(status["current"], TAG_0001);
    assert_eq!(ledger(&restored).await, ledger(&source).await, "the ledger came along");
    let drift = run(&mut wm(&restored.url, "migrations", &["drift"])).expect(0).report();
    assert_eq!(drift["status"], "ok", "{drift}");
    assert_eq!(
        drift["baseline"], "recorded",
        "the recorded baseline still belongs to the restored ledger: {drift}"
    );
    assert_eq!(rows(&restored).await, rows(&source).await);
    assert_eq!(rows(&restored).await.len(), 2);
    // And a later release applies on the restored database as on the original.
    let again = run(&mut wm(&restored.url, "migrations", &["migrate"])).expect(0).report();
    assert_eq!(again["status"], "upToDate");
}
