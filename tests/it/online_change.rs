//! `migrate --online` on WISH-2007's own `0001` (`store` and `currency` text → enums, with a
//! `SET DEFAULT 'USD'::enum` before the type change): expand, backfill, swap under writers on
//! several connections, ending where the file as written ends; values the new type refuses stop
//! the run with the column untouched.
//!
//! "Large" is `--large-table-rows 1000` over 3000 rows: the recipe is the same at any size.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::harness::*;

const LARGE: [&str; 2] = ["--large-table-rows", "1000"];
const BEFORE: &str = "0000_create_wishlist_items";

/// 0000 applied and 3000 rows with valid stores and currencies, analyzed.
async fn wishlist(dir: &std::path::Path) -> TestDb {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, dir, &["migrate", "--to", BEFORE])).expect(0);
    db.client()
        .await
        .batch_execute(
            "insert into wishlist_items (user_id, title, store, currency, sort_order)
             select 'u' || g % 50, 'set ' || g, (array['LEGO','Barweer','Cata','BrickLink','Other'])[1 + g % 5],
                    (array['USD','EUR','GBP','CAD','AUD'])[1 + g % 5], g
               from generate_series(1, 3000) g;
             analyze wishlist_items;",
        )
        .await
        .unwrap();
    db
}

/// Writers on three connections insert and update rows (with valid values) until stopped; the
/// number of writes. Any error fails the test: the migration must never fail a writer.
fn writers(db: &TestDb, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..3)
        .map(|w| {
            let (url, stop) = (db.url.clone(), stop.clone());
            tokio::spawn(async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                let mut n = 0i32;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    client
                        .execute(
                            "insert into wishlist_items (user_id, title, store, currency, sort_order) values ('w', 'new', 'Cata', 'EUR', $1)",
                            &[&(w * 100_000 + n)],
                        )
                        .await
                        .expect("the migration never fails a write");
                    client
                        .execute(
                            "update wishlist_items set store = 'BrickLink', title = 'changed' where sort_order = $1",
                            &[&(1 + (w * 997 + n * 7) % 3000)],
                        )
                        .await
                        .expect("the migration never fails a write");
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                n as u64 * 2
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_type_change_runs_expand_backfill_swap_under_writers_and_ends_where_the_file_ends() {
    let dir = copy_fixture("migrations");
    let db = wishlist(dir.path()).await;
    let twin = wishlist(dir.path()).await;
    run(&mut wm(&twin.url, dir.path(), &["migrate"])).expect(0);

    let plan = run(&mut wm(&db.url, dir.path(), &["plan", "--online", LARGE[0], LARGE[1]]))
        .expect(0)
        .report();
    // store's and currency's changes are one recipe, carried by currency's statement (5); the
    // SET DEFAULT between them runs as written before it.
    let statements = &plan["online"][0]["statements"];
    assert_eq!(
        (&statements[2]["decision"], &statements[2]["into"]),
        (&serde_json::json!("merged"), &serde_json::json!(5)),
        "{plan}"
    );
    assert_eq!(statements[3]["decision"], "asWritten", "{plan}");
    assert_eq!(statements[4]["recipe"], "expandBackfillSwap", "{plan}");
    assert!(statements[4]["estimatedMs"].is_u64(), "{plan}");

    let stop = Arc::new(AtomicBool::new(false));
    let writing = writers(&db, stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (url, path) = (db.url.clone(), dir.path().to_path_buf());
    let migrated = tokio::task::spawn_blocking(move || run(&mut wm(&url, &path, &["migrate", "--online", LARGE[0], LARGE[1]])))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut writes = 0;
    for w in writing {
        writes += w.await.expect("no writer failed");
    }
    let migrated = migrated.expect(0);
    let report = migrated.report();
    assert_eq!(report["status"], "applied", "{report}");
    assert!(writes > 20, "the writers kept writing ({writes})");
    assert!(migrated.stderr.contains("backfill"), "progress on stderr: {}", migrated.stderr);
    let backfills = report["backfills"].as_array().unwrap();
    assert_eq!(backfills.len(), 1, "one backfill pass for both columns: {report}");
    assert_eq!(backfills[0]["column"], "store, currency", "{report}");

    // Every row converted, none lost, the old columns gone.
    assert_eq!(
        db.one(
            "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'wishlist_items'::regclass and attname = 'store'"
        )
        .await,
        "wishlist_store"
    );
    let counts = db
        .client()
        .await
        .query_one(
            "select count(*), count(*) filter (where store is null), count(*) filter (where currency is null) from wishlist_items",
            &[],
        )
        .await
        .unwrap();
    assert!(counts.get::<_, i64>(0) >= 3000);
    assert_eq!((counts.get::<_, i64>(1), counts.get::<_, i64>(2)), (0, 0), "every value converted");
    assert_eq!(
        db.one("select count(*)::text from pg_attribute where attrelid = 'wishlist_items'::regclass and attname like '%wm%'")
            .await,
        "0"
    );

    // What drizzle's own file builds, up to column order; the same ledger rows.
    assert_eq!(db.schema_lines(), twin.schema_lines());
    assert_eq!(ledger(&db).await, ledger(&twin).await);
    let status = run(&mut wm(&db.url, dir.path(), &["status"])).expect(0).report();
    assert_eq!(status["status"], "upToDate", "{status}");
    // drizzle-orm's own migrate() finds nothing pending: it applies nothing and fails on nothing.
    let peer = drizzle_peer(&db.url, dir.path(), &[]);
    assert_eq!(peer.code, 0, "{}", peer.stderr);
    assert_eq!(ledger(&db).await, ledger(&twin).await);
    assert_eq!(db.schema_lines(), twin.schema_lines());

    let drift = run(&mut wm(&db.url, dir.path(), &["drift"])).expect(0).report();
    assert_eq!(drift["status"], "ok", "{drift}");

    // The hand-written down file still works.
    run(&mut wm(&db.url, dir.path(), &["rollback", "--to", BEFORE, "--allow-data-loss"])).expect(0);
    assert_eq!(
        db.one(
            "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'wishlist_items'::regclass and attname = 'store'"
        )
        .await,
        "text"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn values_the_new_type_refuses_stop_the_run_with_the_column_untouched() {
    let dir = copy_fixture("migrations");
    let db = wishlist(dir.path()).await;
    db.client()
        .await
        .batch_execute(
            "update wishlist_items set store = 'Nope' where sort_order in (17, 2024);
             update wishlist_items set currency = 'XYZ' where sort_order = 99",
        )
        .await
        .unwrap();

    let failed = run(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]])).expect(3);
    let report = failed.report();
    assert_eq!(report["error"]["type"], "ValuesRefused", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    // One recipe changes both columns: the error names each column with its own count.
    assert!(
        message.contains("wishlist_items.store in 2 row(s)")
            && message.contains("wishlist_items.currency in 1 row(s)")
            && message.contains("SELECT"),
        "{message}"
    );
    assert!(
        !message.contains("XYZ") && !failed.stderr.contains("XYZ"),
        "no row value shown: {message}"
    );
    assert!(
        !message.contains("Nope") && !failed.stderr.contains("Nope"),
        "no row value shown: {message}"
    );

    // The column is untouched, the recipe's objects gone, nothing lost.
    assert_eq!(
        db.one(
            "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'wishlist_items'::regclass and attname = 'store'"
        )
        .await,
        "text"
    );
    assert_eq!(
        db.one("select count(*)::text from pg_attribute where attrelid = 'wishlist_items'::regclass and attname like '%wm%' and not attisdropped").await,
        "0"
    );
    assert_eq!(
        db.one("select count(*)::text from pg_trigger where tgrelid = 'wishlist_items'::regclass")
            .await,
        "0"
    );
    assert_eq!(db.one("select count(*)::text from wishlist_items where store = 'Nope'").await, "2");
    assert_eq!(
        db.one("select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'wishlist_items'::regclass and attname = 'currency'"
        )
        .await,
        "text",
        "currency untouched too"
    );
    assert_eq!(ledger(&db).await.len(), 1);

    // Fixed, the next run starts the recipe again and finishes.
    db.client()
        .await
        .batch_execute("update wishlist_items set store = 'Other' where store = 'Nope'; update wishlist_items set currency = 'USD' where currency = 'XYZ'")
        .await
        .unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]))
        .expect(0)
        .report();
    assert_eq!(report["status"], "applied", "{report}");
    assert_eq!(
        db.one("select count(*)::text from wishlist_items where store = 'Other'").await,
        "601",
        "600 + the 2 fixed - the Other among them"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_cut_by_its_deadline_continues_on_the_next_run_converting_each_row_once() {
    let dir = copy_fixture("migrations");
    let db = wishlist(dir.path()).await;
    let holding = hold_a_row_once_the_trigger_exists(&db).await;
    let (url, path) = (db.url.clone(), dir.path().to_path_buf());
    let args = ["migrate", "--online", LARGE[0], LARGE[1], "--timeout", "5"];
    let cut = tokio::task::spawn_blocking(move || run(&mut wm(&url, &path, &args))).await.unwrap();
    let blocker = holding.await.unwrap();
    let report = cut.expect(1).report();
    assert_eq!(report["error"]["type"], "DeadlineExceeded", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("continues the backfill"), "says it resumes: {message}");
    let converted: i64 = db
        .client()
        .await
        .query_one("select count(*) from wishlist_items where store__wm_new is not null", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        (1000..3000).contains(&converted),
        "cut mid-backfill: {converted} rows converted: {report}"
    );
    blocker.batch_execute("rollback").await.unwrap();

    let report = run(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]))
        .expect(0)
        .report();
    assert_eq!(report["status"], "applied", "{report}");
    let store = report["backfills"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["column"] == "store, currency")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(store["rows"], 3000, "{report}");
    assert_eq!(
        store["written"],
        3000 - converted,
        "only the rows the first run had not converted: {report}"
    );
    assert_eq!(db.one("select count(*)::text from wishlist_items where store is null").await, "0");
    assert_eq!(ledger(&db).await.len(), 2);
}

/// From the moment the recipe's trigger exists, a transaction holds one row near the end of
/// the key order: the backfill converts what comes before it, then waits on it. The client
/// holding it, to release it.
async fn hold_a_row_once_the_trigger_exists(db: &TestDb) -> tokio::task::JoinHandle<tokio_postgres::Client> {
    let (watcher, blocker) = (db.client().await, db.client().await);
    tokio::spawn(async move {
        while watcher
            .query_one("select count(*) from pg_trigger where tgrelid = 'wishlist_items'::regclass", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
            == 0
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        blocker
            .batch_execute(
                "begin; select 1 from wishlist_items where id = (select id from wishlist_items order by id offset 2900 limit 1) for update",
            )
            .await
            .unwrap();
        blocker
    })
}

async fn converted(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one("select count(*) from wishlist_items where store__wm_new is not null", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_mid_backfill_continues_where_it_stopped_keeping_the_rows_written_since() {
    let dir = copy_fixture("migrations");
    let db = wishlist(dir.path()).await;
    let holding = hold_a_row_once_the_trigger_exists(&db).await;
    let mut child = spawn(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]));
    let blocker = holding.await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = converted(&db).await;
    assert!((1000..3000).contains(&done), "killed mid-backfill: {done} rows converted");
    blocker.batch_execute("rollback").await.unwrap();
    // The killed run's backend finishes the batch it was waiting in (the server learns of the
    // kill only when it answers): that batch commits once, and the next run does not redo it.
    // Its end frees the migration lock.
    while db.one("select count(*)::text from pg_locks where locktype = 'advisory'").await != "0" {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A writer between the runs: the trigger converts its row, and it is kept.
    db.client()
        .await
        .batch_execute(
            "insert into wishlist_items (user_id, title, store, currency, sort_order) values ('w', 'between', 'Barweer', 'CAD', 9999)",
        )
        .await
        .unwrap();
    let before = converted(&db).await;
    let report = run(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]))
        .expect(0)
        .report();
    let store = report["backfills"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["column"] == "store, currency")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(store["rows"], 3001, "{report}");
    assert_eq!(store["written"], 3001 - before, "each row converted once: {report}");
    assert_eq!(
        db.one("select store::text from wishlist_items where title = 'between'").await,
        "Barweer"
    );
    assert_eq!(db.one("select count(*)::text from wishlist_items where store is null").await, "0");
    assert_eq!(ledger(&db).await.len(), 2);
}

/// The table's updated-row counter, once the server has counted every finished backend's
/// updates (a backend reports its counts when it ends, the CLI's included).
async fn updated_rows(db: &TestDb, at_least: i64) -> i64 {
    let client = db.client().await;
    let mut n = 0;
    for _ in 0..100 {
        client.batch_execute("select pg_stat_clear_snapshot()").await.unwrap();
        n = client
            .query_one("select n_tup_upd from pg_stat_user_tables where relname = 'wishlist_items'", &[])
            .await
            .unwrap()
            .get(0);
        if n >= at_least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn two_type_changes_of_one_table_write_each_row_once_in_one_backfill_pass() {
    let dir = copy_fixture("migrations");
    let db = wishlist(dir.path()).await;
    let before = updated_rows(&db, 0).await;
    // `plan --online` as a person reads it: store's change is in currency's recipe, whose steps
    // are printed once.
    let mut human = cli();
    human
        .env("DATABASE_URL", &db.url)
        .arg("--migrations")
        .arg(dir.path())
        .args(["plan", "--online", LARGE[0], LARGE[1]]);
    let plan = run(&mut human).expect(0).stdout;
    assert!(
        plan.contains("statement 3 (line 3) in statement 5's recipe (one backfill pass, one swap)"),
        "{plan}"
    );
    assert_eq!(plan.matches("-- wishlist-migrator: online backfill").count(), 1, "{plan}");
    let report = run(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]))
        .expect(0)
        .report();
    assert_eq!(report["status"], "applied", "{report}");
    let backfills = report["backfills"].as_array().unwrap();
    assert_eq!(backfills.len(), 1, "{report}");
    assert_eq!(
        (&backfills[0]["rows"], &backfills[0]["written"]),
        (&serde_json::json!(3000), &serde_json::json!(3000)),
        "{report}"
    );
    // The server's own count: 3000 rows updated in all, not 3000 per changed column.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(updated_rows(&db, before + 3000).await - before, 3000);
    assert_eq!(
        db.one("select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'wishlist_items'::regclass and attname = 'currency'").await,
        "wishlist_currency"
    );
    assert_eq!(
        db.one("select pg_get_expr(adbin, adrelid) from pg_attrdef d join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum where a.attrelid = 'wishlist_items'::regclass and a.attname = 'currency'").await,
        "'USD'::wishlist_currency"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_view_on_a_column_merged_into_a_later_recipe_refuses_the_run_naming_it() {
    let dir = copy_fixture("migrations");
    let db = wishlist(dir.path()).await;
    // store's change runs in currency's recipe; the view reads store alone.
    db.client()
        .await
        .batch_execute("create view item_stores as select id, store from wishlist_items")
        .await
        .unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]))
        .expect(3)
        .report();
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("statement 3") && message.contains("the view item_stores") && message.contains("wishlist_items.store"),
        "names the statement and what stands in the way: {message}"
    );
    assert_eq!(
        db.one("select count(*)::text from pg_attribute where attrelid = 'wishlist_items'::regclass and attname like '%wm%'")
            .await,
        "0",
        "nothing ran"
    );
    assert_eq!(ledger(&db).await.len(), 1);
}
