//! Several deploys racing on one database: the advisory lock lets exactly one apply, the others
//! find nothing to do or give up with exit 4 naming who holds the lock.

use serde_json::Value;

use crate::harness::*;

/// The documented default key: the ASCII bytes `wishlist` read as a big-endian i64.
const DEFAULT_LOCK_KEY: i64 = 8_604_535_455_400_686_452;
/// As many runners as a busy deploy day could start against one database.
const RUNNERS: usize = 32;

fn race(db: &TestDb, env: &[(&str, &str)]) -> Vec<Run> {
    let children: Vec<_> = (0..RUNNERS)
        .map(|_| {
            let mut cmd = wm(&db.url, "migrations", &["migrate"]);
            for (k, v) in env {
                cmd.env(k, v);
            }
            spawn(&mut cmd)
        })
        .collect();
    children.into_iter().map(wait).collect()
}

/// Every migration was applied by exactly one runner, and recorded exactly once.
async fn assert_applied_exactly_once(db: &TestDb, reports: &[Value]) {
    let expected = expected_ledger(&repo_path("migrations"));
    assert_eq!(ledger(db).await, expected, "one ledger row per migration, no duplicates");
    let mut applied: Vec<String> = reports.iter().flat_map(|r| tags(&r["applied"])).collect();
    applied.sort();
    assert_eq!(applied, [TAG_0000, TAG_0001], "applied by the runners together");
    let successes = history(db).await.iter().filter(|h| h.2).count();
    assert_eq!(successes, 2, "history: one successful apply per migration");
    assert!(db.table_exists("public.wishlist_items").await);
    assert_eq!(db.advisory_locks().await, 0, "every runner gave the lock back");
}

#[tokio::test]
async fn many_runners_at_once_apply_each_migration_once() {
    let db = pg().fresh_db().await;
    let runs = race(&db, &[]);
    let mut reports = Vec::new();
    for run in runs {
        // 30 s is plenty for the others to finish: everyone gets the lock in the end.
        let run = run.expect(0);
        let report = run.report();
        assert!(matches!(report["status"].as_str(), Some("applied" | "upToDate")), "{report}");
        assert_eq!(report["current"], TAG_0001);
        reports.push(report);
    }
    assert_applied_exactly_once(&db, &reports).await;
}

#[tokio::test]
async fn many_runners_on_an_up_to_date_database_change_nothing() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    let ledger_before = ledger(&db).await;
    let history_before = history(&db).await;
    for run in race(&db, &[("LOCK_WAIT_SECONDS", "0")]) {
        let code = run.code;
        let report = run.report();
        match code {
            0 => assert_eq!(report["status"], "upToDate", "{report}"),
            4 => assert_eq!(error_type(&report), "MigrationLockBusy"),
            other => panic!("exit {other}: only 0 or 4 are acceptable here\n{report}"),
        }
        assert_eq!(report["applied"], serde_json::json!([]));
    }
    assert_eq!(ledger(&db).await, ledger_before);
    assert_eq!(history(&db).await, history_before, "a no-op records nothing");
    assert_eq!(db.advisory_locks().await, 0);
    assert!(
        eventually(|| async { migrator_sessions(&db).await == 0 }).await,
        "every session closed"
    );
}

#[tokio::test]
async fn runners_that_cannot_wait_give_up_with_exit_4() {
    let db = pg().fresh_db().await;
    let runs = race(&db, &[("LOCK_WAIT_SECONDS", "0")]);
    let mut reports = Vec::new();
    let mut busy = 0;
    for run in runs {
        let code = run.code;
        let report = run.report();
        match code {
            0 => reports.push(report),
            4 => {
                busy += 1;
                assert_eq!(report["status"], "failed");
                assert_eq!(error_type(&report), "MigrationLockBusy");
                let holder = report["error"]["holderPid"].as_i64();
                assert!(holder.is_some_and(|pid| pid > 0), "the lock holder must be named: {report}");
                assert_eq!(report["applied"], serde_json::json!([]));
            }
            other => panic!("exit {other}: only 0 or 4 are acceptable here\n{report}"),
        }
    }
    eprintln!("{busy} of {RUNNERS} runners gave up on the lock");
    assert!(busy < RUNNERS, "someone must have got the lock");
    assert_applied_exactly_once(&db, &reports).await;
}

#[tokio::test]
async fn a_session_holding_the_lock_is_named_and_blocks_only_until_released() {
    let db = pg().fresh_db().await;
    let holder = db.client().await;
    let holder_pid: i32 = holder.query_one("select pg_backend_pid()", &[]).await.unwrap().get(0);
    holder.execute("select pg_advisory_lock($1)", &[&DEFAULT_LOCK_KEY]).await.unwrap();
    let before = catalog(&db).await;

    let mut cmd = wm(&db.url, "migrations", &["migrate"]);
    cmd.env("LOCK_WAIT_SECONDS", "1");
    let report = run(&mut cmd).expect(4).report();
    assert_eq!(error_type(&report), "MigrationLockBusy");
    assert_eq!(report["error"]["holderPid"], holder_pid);
    assert!(
        report["error"]["message"].as_str().unwrap().contains(&holder_pid.to_string()),
        "{report}"
    );
    // It waited out LOCK_WAIT_SECONDS before giving up, and says so.
    assert!(report["lockWaitMs"].as_u64().unwrap() >= 1000, "{report}");
    assert_eq!(catalog(&db).await, before, "nothing happens without the lock");
    assert_eq!(db.advisory_locks().await, 1, "only the holder's lock remains");

    // Reading never takes the lock: status and plan work while a deploy is in progress.
    run(&mut wm(&db.url, "migrations", &["status"])).expect(0);
    run(&mut wm(&db.url, "migrations", &["plan"])).expect(0);

    holder.execute("select pg_advisory_unlock($1)", &[&DEFAULT_LOCK_KEY]).await.unwrap();
    let mut cmd = wm(&db.url, "migrations", &["migrate"]);
    cmd.env("LOCK_WAIT_SECONDS", "1");
    assert_eq!(run(&mut cmd).expect(0).report()["status"], "applied");
}

#[tokio::test]
async fn the_lock_key_is_configurable() {
    let db = pg().fresh_db().await;
    let holder = db.client().await;
    holder.execute("select pg_advisory_lock($1)", &[&42i64]).await.unwrap();

    let mut on_42 = wm(&db.url, "migrations", &["--lock-wait", "0", "migrate"]);
    on_42.env("MIGRATION_LOCK_KEY", "42");
    assert_eq!(error_type(&run(&mut on_42).expect(4).report()), "MigrationLockBusy");
    assert!(!db.table_exists("public.wishlist_items").await);

    // Another key is another lock: the default one is free.
    let report = run(&mut wm(&db.url, "migrations", &["--lock-wait", "0", "migrate"]))
        .expect(0)
        .report();
    assert_eq!(report["status"], "applied");
}
