//! `migrate --online` on drizzle-kit's `.defaultRandom()` and other volatile defaults
//! (`ADD COLUMN "token" uuid DEFAULT gen_random_uuid() NOT NULL`), which Postgres runs by
//! writing every row under ACCESS EXCLUSIVE: added bare, defaulted, backfilled in batches while
//! writers keep writing, ending where the file as written ends; a run killed mid-backfill
//! continues and writes each row once.
//!
//! "Large" is `--large-table-rows 1000` over 3000 rows: the recipe is the same at any size.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;

const CREATE: &str = "CREATE TABLE \"items\" (\n\t\"id\" serial PRIMARY KEY NOT NULL,\n\t\"qty\" integer DEFAULT 1\n);\n";

/// drizzle-kit's output for `.defaultRandom().notNull()`, a `random()` and a `clock_timestamp()`.
const VOLATILE: &str = "ALTER TABLE \"items\" ADD COLUMN \"token\" uuid DEFAULT gen_random_uuid() NOT NULL;--> statement-breakpoint\n\
ALTER TABLE \"items\" ADD COLUMN \"score\" double precision DEFAULT random();--> statement-breakpoint\n\
ALTER TABLE \"items\" ADD COLUMN \"seen_at\" timestamp with time zone DEFAULT clock_timestamp();";

const TAG_0: &str = "0000_items";
const TAG_1: &str = "0001_volatile";
const LARGE: [&str; 2] = ["--large-table-rows", "1000"];

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("meta")).unwrap();
    std::fs::write(dir.path().join(format!("{TAG_0}.sql")), CREATE).unwrap();
    std::fs::write(dir.path().join(format!("{TAG_1}.sql")), VOLATILE).unwrap();
    rewrite_journal(dir.path(), &[(TAG_0, 1_764_547_200_000), (TAG_1, 1_764_547_260_000)]);
    dir
}

/// 0000 applied and 3000 rows, analyzed (the gate reads the planner's estimate).
async fn live_items(dir: &std::path::Path) -> TestDb {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, dir, &["migrate", "--to", TAG_0])).expect(0);
    db.client()
        .await
        .batch_execute("insert into items (qty) select g % 7 from generate_series(1, 3000) g; analyze items;")
        .await
        .unwrap();
    db
}

/// Writers on three connections insert and update rows until stopped, none of them naming the
/// new columns (the running API does not know them yet): the longest write and the number of
/// writes. Any error fails the test.
fn writers(db: &TestDb, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<(Duration, u64)>> {
    (0..3)
        .map(|w| {
            let (url, stop) = (db.url.clone(), stop.clone());
            tokio::spawn(async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                let (mut worst, mut n) = (Duration::ZERO, 0i32);
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let started = Instant::now();
                    client
                        .execute("insert into items (qty) values ($1)", &[&(w * 1000 + n)])
                        .await
                        .expect("the migration never fails a write");
                    client
                        .execute("update items set qty = qty + 1 where id = $1", &[&(1 + (w * 997 + n * 7) % 3000)])
                        .await
                        .expect("the migration never fails a write");
                    worst = worst.max(started.elapsed());
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                (worst, n as u64 * 2)
            })
        })
        .collect()
}

fn backfill<'r>(report: &'r serde_json::Value, column: &str) -> &'r serde_json::Value {
    report["backfills"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["column"] == column))
        .unwrap_or_else(|| panic!("no backfill of {column}: {report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn volatile_defaults_are_added_then_backfilled_under_writers_and_end_where_the_file_ends() {
    let dir = folder();
    let db = live_items(dir.path()).await;
    let twin = live_items(dir.path()).await;
    run(&mut wm(&twin.url, dir.path(), &["migrate"])).expect(0);

    // As written, the gate refuses it on a large table, and says --online has a recipe.
    let refused = run(&mut wm(&db.url, dir.path(), &["migrate", LARGE[0], LARGE[1]]))
        .expect(3)
        .report();
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("volatile") && message.contains("`--online`"), "{message}");

    let plan = run(&mut wm(&db.url, dir.path(), &["plan", "--online", LARGE[0], LARGE[1]]))
        .expect(0)
        .report();
    let token = &plan["online"][0]["statements"][0];
    assert_eq!(token["recipe"], "addThenBackfillDefault", "{plan}");
    let steps: Vec<&str> = token["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(steps[0], "ALTER TABLE items ADD COLUMN token uuid", "{plan}");
    assert_eq!(
        steps[1], "ALTER TABLE items ALTER COLUMN token SET DEFAULT gen_random_uuid()",
        "{plan}"
    );
    assert_eq!(steps.len(), 7, "add, default, backfill, then NOT NULL by a validated check: {plan}");
    assert_eq!(plan["online"][0]["statements"][2]["recipe"], "addThenBackfillDefault", "{plan}");
    let human = run(cli()
        .env("DATABASE_URL", &db.url)
        .arg("--migrations")
        .arg(dir.path())
        .args(["plan", "--online", LARGE[0], LARGE[1]]))
    .expect(0);
    assert!(
        human.stdout.contains("SET DEFAULT gen_random_uuid()"),
        "plan --online prints the steps: {}",
        human.stdout
    );

    let stop = Arc::new(AtomicBool::new(false));
    let writing = writers(&db, stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (url, path) = (db.url.clone(), dir.path().to_path_buf());
    let migrated = tokio::task::spawn_blocking(move || run(&mut wm(&url, &path, &["migrate", "--online", LARGE[0], LARGE[1]])))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut worst, mut writes) = (Duration::ZERO, 0);
    for w in writing {
        let (longest, n) = w.await.expect("no writer failed");
        worst = worst.max(longest);
        writes += n;
    }
    let migrated = migrated.expect(0);
    let report = migrated.report();
    assert_eq!(report["status"], "applied", "{report}");
    assert!(writes > 20, "the writers kept writing ({writes})");
    assert!(worst < Duration::from_secs(2), "no writer waited long: {worst:?}");
    assert!(migrated.stderr.contains("backfill"), "progress on stderr: {}", migrated.stderr);
    // The rows there before the default was set (3000, and what the writers inserted until
    // then); the rows inserted since had it already and were only walked.
    let token = backfill(&report, "token");
    let (walked, written) = (token["rows"].as_i64().unwrap(), token["written"].as_i64().unwrap());
    assert!(written >= 3000 && walked >= written, "{report}");

    // Every row has its own value, the rows there before as the new ones; NOT NULL where the
    // file says so, with no check left over.
    let row = db
        .client()
        .await
        .query_one(
            "select count(*), count(distinct token), count(score), count(distinct score), count(seen_at) from items",
            &[],
        )
        .await
        .unwrap();
    let rows: i64 = row.get(0);
    assert!(rows > walked, "the writers' rows too: {rows}");
    assert_eq!(
        (row.get::<_, i64>(1), row.get::<_, i64>(2), row.get::<_, i64>(4)),
        (rows, rows, rows)
    );
    assert!(row.get::<_, i64>(3) > rows - 5, "random() per row, not once for the table");
    assert_eq!(
        db.one("select string_agg(attname || ':' || attnotnull, ',' order by attnum) from pg_attribute where attrelid = 'items'::regclass and attnum > 0").await,
        "id:true,qty:false,token:true,score:false,seen_at:false"
    );

    // What drizzle's own file builds, column order included; the same ledger; nothing pending.
    assert_eq!(db.schema_lines(), twin.schema_lines());
    assert_eq!(ledger(&db).await, ledger(&twin).await);
    let peer = drizzle_peer(&db.url, dir.path(), &[]);
    assert_eq!(peer.code, 0, "{}", peer.stderr);
    assert_eq!(ledger(&db).await, ledger(&twin).await);
    let drift = run(&mut wm(&db.url, dir.path(), &["drift"])).expect(0).report();
    assert_eq!(drift["status"], "ok", "{drift}");
}

/// Once the token's default is set, a transaction holds one row near the end of the key order:
/// the backfill fills what comes before it, then waits on it. The client holding it.
async fn hold_a_row_once_the_default_is_set(db: &TestDb) -> tokio::task::JoinHandle<tokio_postgres::Client> {
    let (watcher, blocker) = (db.client().await, db.client().await);
    tokio::spawn(async move {
        while watcher
            .query_one(
                "select count(*) from pg_attribute where attrelid = 'items'::regclass and attname = 'token' and atthasdef",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
            == 0
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        blocker
            .batch_execute("begin; select 1 from items where id = 2900 for update")
            .await
            .unwrap();
        blocker
    })
}

async fn filled(db: &TestDb) -> Vec<(i32, String)> {
    db.client()
        .await
        .query("select id, token::text from items where token is not null order by id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_mid_backfill_continues_writing_each_row_once() {
    let dir = folder();
    let db = live_items(dir.path()).await;
    let holding = hold_a_row_once_the_default_is_set(&db).await;
    let mut child = spawn(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]));
    let blocker = holding.await.unwrap();
    // While the backfill waits on the held row, a writer inserts and updates other rows
    // without waiting for it: the table is not locked for the backfill's length.
    let writer = db.client().await;
    let started = Instant::now();
    for n in 0..20 {
        writer.execute("insert into items (qty) values ($1)", &[&n]).await.unwrap();
        writer
            .execute("update items set qty = qty + 1 where id = $1", &[&(100 + n)])
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "writes passed the backfill: {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = filled(&db).await;
    let before: Vec<_> = done.iter().filter(|(id, _)| *id <= 3000).collect();
    assert!(
        (1000..3000).contains(&before.len()),
        "killed mid-backfill: {} rows filled",
        before.len()
    );
    assert_eq!(done.len() - before.len(), 20, "the rows written since the default was set have it");
    blocker.batch_execute("rollback").await.unwrap();
    // The killed run's backend finishes the batch it was waiting in (the server learns of the
    // kill only when it answers); its end frees the migration lock.
    while db.one("select count(*)::text from pg_locks where locktype = 'advisory'").await != "0" {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kept = filled(&db).await;

    let report = run(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]))
        .expect(0)
        .report();
    assert_eq!(report["status"], "applied", "{report}");
    let token = backfill(&report, "token");
    assert_eq!(token["rows"], 3020, "{report}");
    assert_eq!(token["written"], 3020 - kept.len(), "only the rows still empty: {report}");
    let after = filled(&db).await;
    assert_eq!(after.len(), 3020);
    for (id, value) in &kept {
        assert!(after.contains(&(*id, value.clone())), "row {id} was written once: its value kept");
    }
    assert_eq!(db.one("select count(distinct token)::text from items").await, "3020");
    assert_eq!(ledger(&db).await.len(), 2);
    assert_eq!(
        db.one("select count(*)::text from pg_constraint where conrelid = 'items'::regclass and conname like '%online%'")
            .await,
        "0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_cut_by_its_deadline_says_so_and_the_next_run_finishes_it() {
    let dir = folder();
    let db = live_items(dir.path()).await;
    let holding = hold_a_row_once_the_default_is_set(&db).await;
    let (url, path) = (db.url.clone(), dir.path().to_path_buf());
    let args = ["migrate", "--online", LARGE[0], LARGE[1], "--timeout", "4"];
    let cut = tokio::task::spawn_blocking(move || run(&mut wm(&url, &path, &args))).await.unwrap();
    let blocker = holding.await.unwrap();
    let report = cut.expect(1).report();
    assert_eq!(report["error"]["type"], "DeadlineExceeded", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("continues the backfill"), "says it resumes: {message}");
    let token = backfill(&report, "token");
    let done = filled(&db).await.len() as i64;
    assert!((1000..3000).contains(&done), "cut mid-backfill: {done} rows filled: {report}");
    assert_eq!(token["written"], done, "the report says how far it got: {report}");
    assert_eq!(ledger(&db).await.len(), 1);
    blocker.batch_execute("rollback").await.unwrap();

    let report = run(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]))
        .expect(0)
        .report();
    assert_eq!(report["status"], "applied", "{report}");
    assert_eq!(backfill(&report, "token")["written"], 3000 - done, "{report}");
    assert_eq!(db.one("select count(distinct token)::text from items").await, "3000");
    assert_eq!(ledger(&db).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_teams_own_volatile_function_is_found_volatile_by_postgres_and_runs_online() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("meta")).unwrap();
    std::fs::write(dir.path().join(format!("{TAG_0}.sql")), CREATE).unwrap();
    std::fs::write(
        dir.path().join(format!("{TAG_1}.sql")),
        "ALTER TABLE \"items\" ADD COLUMN \"code\" text DEFAULT app_code() NOT NULL;",
    )
    .unwrap();
    rewrite_journal(dir.path(), &[(TAG_0, 1_764_547_200_000), (TAG_1, 1_764_547_260_000)]);
    let db = live_items(dir.path()).await;
    // Declared volatile, as Postgres's own gen_random_uuid() is: known to no list of names.
    db.client()
        .await
        .batch_execute("create function app_code() returns text language sql volatile as $$ select md5(random()::text) $$")
        .await
        .unwrap();

    let refused = run(&mut wm(&db.url, dir.path(), &["migrate", LARGE[0], LARGE[1]]))
        .expect(3)
        .report();
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("volatile default app_code()"), "{message}");
    let report = run(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]))
        .expect(0)
        .report();
    assert_eq!(report["online"][0]["statements"][0]["recipe"], "addThenBackfillDefault", "{report}");
    assert_eq!(db.one("select count(distinct code)::text from items").await, "3000");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_without_a_primary_key_is_refused_before_anything_runs() {
    let dir = folder();
    let db = live_items(dir.path()).await;
    db.client()
        .await
        .batch_execute("alter table items drop constraint items_pkey")
        .await
        .unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]))
        .expect(3)
        .report();
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("items has no primary key"), "{message}");
    assert!(!column_exists(&db, "items", "token").await, "nothing ran");
    assert_eq!(ledger(&db).await.len(), 1);
}

/// The EMF documents of `lambda`'s backfills once `n` are there (or 10 s have passed): the
/// harness reads the function's output on a thread of its own, which may lag the response.
fn backfill_documents(lambda: &crate::harness::lambda_process::LambdaProcess, n: usize) -> Vec<serde_json::Value> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let docs: Vec<serde_json::Value> = lambda
            .logs()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("_aws").is_some() && v.get("BackfillRowsDone").is_some())
            .collect();
        if docs.len() >= n || Instant::now() > until {
            return docs;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lambdas_metrics_carry_each_backfills_rows_done_of_the_estimate_and_its_speed() {
    use crate::harness::stack::{response, Stack};
    let stack = Stack::new().await;
    let dir = folder();
    let lambda = stack.start(&[
        ("MIGRATIONS_DIR", dir.path().to_str().unwrap()),
        ("ONLINE_MIGRATIONS", "true"),
        ("LINT_LARGE_TABLE_ROWS", "1000"),
    ]);
    response(lambda.invoke(serde_json::json!({"action": "migrate", "to": TAG_0})), "0000");
    stack
        .db
        .client()
        .await
        .batch_execute("insert into items (qty) select g % 7 from generate_series(1, 3000) g; analyze items;")
        .await
        .unwrap();
    let done = response(lambda.invoke(serde_json::json!({"action": "migrate"})), "migrate --online");
    assert_eq!(done["status"], "applied", "{done}");
    let docs = backfill_documents(&lambda, 3);
    let columns: Vec<&str> = docs.iter().map(|d| d["Column"].as_str().unwrap()).collect();
    assert_eq!(columns, ["token", "score", "seen_at"], "one per backfill: {docs:?}");
    for d in &docs {
        assert_eq!(
            (&d["Table"], &d["Migration"]),
            (&serde_json::json!("items"), &serde_json::json!(TAG_1)),
            "{d}"
        );
        assert_eq!(d["_aws"]["CloudWatchMetrics"][0]["Namespace"], "WishlistMigrator", "{d}");
        assert_eq!(
            (d["BackfillRowsDone"].as_i64(), d["BackfillRowsWritten"].as_i64()),
            (Some(3000), Some(3000)),
            "{d}"
        );
        assert_eq!(d["BackfillRowsEstimated"], 3000, "the planner's estimate: {d}");
        assert!(d["BackfillRowsPerSecond"].as_u64().is_some_and(|r| r > 0), "{d}");
        assert!(d["RunId"].is_string() && d["RunId"] == done["runId"], "{d}");
    }
}

/// WISH-2007's `0001` (`currency`, nullable, text → enum) with 3000 valid rows, analyzed.
async fn wishlist(dir: &std::path::Path) -> TestDb {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, dir, &["migrate", "--to", "0000_create_wishlist_items"])).expect(0);
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

/// The seam: from the moment the recipe's trigger exists, the test holds the table in
/// ROW EXCLUSIVE (as any writer's open transaction does). The backfill's batches pass it; the
/// steps after the backfill, which need the table to themselves, wait. Once one waits (the
/// backfill is over), the test writes a value the enum refuses into the nullable column and
/// commits: a write after the backfill and before the swap. The client that wrote.
async fn write_a_refused_value_after_the_backfill(db: &TestDb) -> tokio::task::JoinHandle<tokio_postgres::Client> {
    let (watcher, writer) = (db.client().await, db.client().await);
    tokio::spawn(async move {
        let count = |sql: &'static str| {
            let watcher = &watcher;
            async move { watcher.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
        };
        // 0001's two type changes run as one recipe: its one trigger is named after the first
        // column (store), and it converts currency too.
        while count("select count(*) from pg_trigger where tgrelid = 'wishlist_items'::regclass and tgname like '%\\_\\_wm\\_sync'").await
            == 0
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        writer
            .batch_execute("begin; lock table wishlist_items in row exclusive mode")
            .await
            .unwrap();
        while count("select count(*) from pg_locks where relation = 'wishlist_items'::regclass and not granted").await == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        writer
            .batch_execute("update wishlist_items set currency = 'XYZ' where sort_order = 17; commit")
            .await
            .unwrap();
        writer
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_value_written_after_the_backfill_into_a_nullable_column_stops_the_run_before_the_swap() {
    let dir = copy_fixture("migrations");
    let db = wishlist(dir.path()).await;
    let writing = write_a_refused_value_after_the_backfill(&db).await;
    let (url, path) = (db.url.clone(), dir.path().to_path_buf());
    let migrated = tokio::task::spawn_blocking(move || run(&mut wm(&url, &path, &["migrate", "--online", LARGE[0], LARGE[1]])))
        .await
        .unwrap();
    writing.await.expect("the refused value was written in the window");
    let report = migrated.report();
    assert_eq!(migrated.code, 3, "{report}");
    assert_ne!(report["status"], "applied", "{report}");
    // Written after the backfill looked, the value fails the validation of the recipe's check
    // that old and new are NULL together; it is named as the backfill names one.
    assert_eq!(report["error"]["type"], "ValuesRefused", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("XYZ") && !migrated.stderr.contains("XYZ"),
        "no row value shown: {message}"
    );
    assert!(
        message.contains("wishlist_items.currency in 1 row(s)"),
        "names the column and the count: {message}"
    );

    // Nothing was lost and no NULL was written: the column is still text, with the value.
    assert_eq!(
        db.one("select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'wishlist_items'::regclass and attname = 'currency'").await,
        "text"
    );
    assert_eq!(db.one("select currency from wishlist_items where sort_order = 17").await, "XYZ");
    assert_eq!(
        db.one("select count(*)::text from wishlist_items where currency is null").await,
        "0"
    );
    assert_eq!(ledger(&db).await.len(), 1, "no ledger row");

    // The value fixed (the recipe's trigger converts it), the next run finishes.
    db.client()
        .await
        .batch_execute("update wishlist_items set currency = 'EUR' where sort_order = 17")
        .await
        .unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]))
        .expect(0)
        .report();
    assert_eq!(report["status"], "applied", "{report}");
    assert_eq!(
        db.one("select currency::text from wishlist_items where sort_order = 17").await,
        "EUR"
    );
    assert_eq!(
        db.one("select count(*)::text from wishlist_items where currency is null").await,
        "0"
    );
    assert_eq!(ledger(&db).await.len(), 2);
}
