//! `migrate --online` (issue 22): drizzle-kit's blocking statements on a large live table run by
//! lock-safe recipes while a writer keeps writing, end where the file as written ends, and a run
//! killed between steps resumes after the last step that committed.
//!
//! "Large" is `--large-table-rows 1000` over a few thousand rows: the recipes are the same at
//! any size, and the test stays fast.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::stack::{response, Stack};
use crate::harness::*;

const CREATE: &str = "CREATE TABLE \"lists\" (\n\t\"id\" serial PRIMARY KEY NOT NULL,\n\t\"owner_id\" integer\n);\n--> statement-breakpoint\n\
CREATE TABLE \"items\" (\n\t\"id\" serial PRIMARY KEY NOT NULL,\n\t\"list_id\" integer,\n\t\"user_id\" integer,\n\t\"qty\" integer DEFAULT 1\n);\n";

/// drizzle-kit's output for the blocking changes a recipe answers.
const ONLINE: &str = "ALTER TABLE \"items\" ADD CONSTRAINT \"items_qty_check\" CHECK (\"items\".\"qty\" > 0);--> statement-breakpoint\n\
ALTER TABLE \"items\" ADD CONSTRAINT \"items_list_id_lists_id_fk\" FOREIGN KEY (\"list_id\") REFERENCES \"public\".\"lists\"(\"id\") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint\n\
ALTER TABLE \"items\" ALTER COLUMN \"list_id\" SET NOT NULL;--> statement-breakpoint\n\
CREATE UNIQUE INDEX \"items_user_idx\" ON \"items\" USING btree (\"user_id\");--> statement-breakpoint\n\
ALTER TABLE \"items\" ADD CONSTRAINT \"items_id_qty_unique\" UNIQUE(\"id\",\"qty\");";

const TAG_1: &str = "0001_online";
const LARGE: [&str; 2] = ["--large-table-rows", "1000"];

fn folder(second: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("meta")).unwrap();
    std::fs::write(dir.path().join("0000_tables.sql"), CREATE).unwrap();
    std::fs::write(dir.path().join(format!("{TAG_1}.sql")), second).unwrap();
    rewrite_journal(dir.path(), &[("0000_tables", 1_764_547_200_000), (TAG_1, 1_764_547_260_000)]);
    dir
}

/// 0000 applied, 3000 lists and 3000 items, analyzed (the gate reads the planner's estimate).
async fn live_tables(dir: &std::path::Path) -> TestDb {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, dir, &["migrate", "--to", "0000_tables"])).expect(0);
    db.client()
        .await
        .batch_execute(
            "insert into lists (owner_id) select g from generate_series(1, 3000) g;
             insert into items (list_id, user_id, qty) select g, g, 1 + g % 5 from generate_series(1, 3000) g;
             analyze lists; analyze items;",
        )
        .await
        .unwrap();
    db
}

/// Each column's NOT NULL, which `catalog` does not show.
async fn not_nulls(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query(
            "select c.relname || '.' || a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid
              where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' and a.attnum > 0 and a.attnotnull order by 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// `args` run while a writer inserts and updates `items` and, from just before the run, a
/// reader holds `items` for 3 s (a report, a long query): the report, the writer's longest
/// wait and its number of writes.
async fn under_load(db: &TestDb, dir: &std::path::Path, args: &[&str]) -> (serde_json::Value, Duration, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let writes = writer(db, stop.clone());
    let reader = db.client().await;
    let reading = tokio::spawn(async move {
        reader
            .batch_execute("begin; lock table items in access share mode; select pg_sleep(3); commit")
            .await
            .unwrap();
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (url, path) = (db.url.clone(), dir.to_path_buf());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let report = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&mut wm(&url, &path, &args)).expect(0).report()
    })
    .await
    .unwrap();
    reading.await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let (worst, count) = writes.await.unwrap();
    (report, worst, count)
}

/// Inserts and updates `items` until stopped; the longest any one of them took.
fn writer(db: &TestDb, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(Duration, u64)> {
    let url = db.url.clone();
    tokio::spawn(async move {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let (mut worst, mut writes, mut n) = (Duration::ZERO, 0u64, 0i32);
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let started = Instant::now();
            client
                .execute(
                    "insert into items (list_id, user_id, qty) values (1 + $1 % 3000, 100000 + $1, 2)",
                    &[&n],
                )
                .await
                .expect("the migration never fails a write");
            client
                .execute("update items set qty = qty + 1 where id = 1 + $1 % 3000", &[&n])
                .await
                .expect("the migration never fails a write");
            worst = worst.max(started.elapsed());
            writes += 2;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (worst, writes)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn online_recipes_keep_a_writer_moving_and_end_where_the_file_ends() {
    let dir = folder(ONLINE);
    let db = live_tables(dir.path()).await;

    // As written, the gate refuses, and says --online has a recipe for each statement.
    let report = run(&mut wm(&db.url, dir.path(), &["migrate", LARGE[0], LARGE[1]]))
        .expect(3)
        .report();
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains("`--online`") && message.contains("plan --online"), "{message}");

    let plan = run(&mut wm(&db.url, dir.path(), &["plan", "--online", LARGE[0], LARGE[1]]))
        .expect(0)
        .report();
    let recipes: Vec<&str> = plan["online"][0]["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["recipe"].as_str().unwrap_or("asWritten"))
        .collect();
    assert_eq!(
        recipes,
        [
            "addNotValidThenValidate",
            "addNotValidThenValidate",
            "setNotNullThroughCheck",
            "createIndexConcurrently",
            "buildUniqueIndexThenAttach"
        ],
        "{plan}"
    );
    let human = run(cli().env("DATABASE_URL", &db.url).args([
        "--migrations",
        dir.path().to_str().unwrap(),
        "plan",
        "--online",
        LARGE[0],
        LARGE[1],
    ]))
    .expect(0);
    assert!(
        human.stdout.contains("statement 3 (line 3) by setNotNullThroughCheck")
            && human.stdout.contains("1. CREATE UNIQUE INDEX CONCURRENTLY items_user_idx ON items"),
        "{}",
        human.stdout
    );
    assert_eq!(ledger(&db).await.len(), 1, "plan changes nothing");

    let (migrated, worst, count) = under_load(&db, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]).await;
    assert_eq!(migrated["status"], "applied", "{migrated}");
    assert_eq!(migrated["segments"][0]["mode"], "autocommit", "{migrated}");
    assert_eq!(
        db.statements_done(TAG_1).await,
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        "each step of the five recipes committed once"
    );
    assert!(count > 20, "the writer wrote throughout: {count}");

    // The same file as written, under the same load, on a database like the first: its
    // transaction queues behind the reader for ACCESS EXCLUSIVE, and the writer behind it.
    let fresh = live_tables(dir.path()).await;
    let (blocking, blocked, _) = under_load(&fresh, dir.path(), &["migrate", "--no-lint-gate", LARGE[0], LARGE[1]]).await;
    assert_eq!(blocking["status"], "applied", "{blocking}");
    assert!(blocked > Duration::from_millis(2_000), "as written, the writer waited {blocked:?}");
    // Each online step waits at most 500 ms for its lock and then lets the queue through, so the
    // writer waits about that plus the step's own instant (these tables take milliseconds); 1 s
    // leaves this shared machine its slack, against the reader's 3 s the blocking run held. The
    // first step (the check, ACCESS EXCLUSIVE) meets the reader: it gives way again and again.
    assert!(
        worst < Duration::from_secs(1),
        "online, a writer waited {worst:?} (as written: {blocked:?})"
    );

    // The end state is what the file as written builds.
    assert_eq!(catalog(&db).await, catalog(&fresh).await);
    assert_eq!(not_nulls(&db).await, not_nulls(&fresh).await);
    assert!(not_nulls(&db).await.contains(&"items.list_id".to_string()));
    let leftovers = db
        .client()
        .await
        .query_one(
            "select count(*) from pg_constraint where not convalidated or conname like '%online%'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(leftovers.get::<_, i64>(0), 0, "every constraint validated, no temporary check left");
    assert_eq!(ledger(&db).await, expected_ledger(dir.path()));
    assert_eq!(ledger(&db).await, ledger(&fresh).await);

    let drift = run(&mut wm(&db.url, dir.path(), &["drift"])).expect(0).report();
    assert_eq!(drift["status"], "ok", "{drift}");
    // drizzle-orm's own migrate() finds nothing to apply.
    drizzle_peer(&db.url, dir.path(), &[]).expect(0);
    assert_eq!(ledger(&db).await, expected_ledger(dir.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_between_steps_resumes_after_the_last_committed_step() {
    let dir = folder(
        "CREATE INDEX \"items_user_idx\" ON \"items\" USING btree (\"user_id\");--> statement-breakpoint\n\
         ALTER TABLE \"lists\" ALTER COLUMN \"owner_id\" SET NOT NULL;",
    );
    let db = live_tables(dir.path()).await;
    // A reader of lists that stays: the recipe's first step on lists gives way to it, again and again.
    let mut holder = db.client().await;
    let tx = holder.transaction().await.unwrap();
    tx.batch_execute("lock table lists in access share mode").await.unwrap();

    let mut child = spawn(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]));
    let checker = db.client().await;
    let steps_done = || async {
        checker
            .query_one(
                "select count(*) from drizzle.wishlist_migrator_history where tag = $1 and action = 'statement'",
                &[&TAG_1],
            )
            .await
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while steps_done().await < 1 {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the index step never committed: {:?}", wait(child));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past the index, retrying the check on lists: kill it there.
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(steps_done().await, 1, "only the index step committed");
    assert_eq!(ledger(&db).await.len(), 1, "no ledger row before the last step");
    assert!(db.table_exists("public.items_user_idx").await);

    // The tables now count as small (as if their estimate had dropped below the threshold):
    // the run still goes on by the recipes whose steps committed, not the file as written.
    let report = run(&mut wm(&db.url, dir.path(), &["migrate", "--online"])).expect(0).report();
    assert!(report["warnings"].to_string().contains("resumed at statement 2"), "{report}");
    assert_eq!(db.statements_done(TAG_1).await, [1, 2, 3, 4, 5], "each step committed exactly once");
    assert_eq!(ledger(&db).await, expected_ledger(dir.path()));
    let fresh = pg().fresh_db().await;
    run(&mut wm(&fresh.url, dir.path(), &["migrate"])).expect(0);
    assert_eq!(catalog(&db).await, catalog(&fresh).await);
    assert_eq!(not_nulls(&db).await, not_nulls(&fresh).await);
}

#[tokio::test]
async fn a_blocking_statement_without_a_recipe_refuses_the_run_before_anything_changes() {
    let dir = folder(
        "CREATE INDEX \"items_user_idx\" ON \"items\" USING btree (\"user_id\");--> statement-breakpoint\n\
         ALTER TABLE \"items\" ALTER COLUMN \"qty\" SET DATA TYPE bigint;",
    );
    let db = live_tables(dir.path()).await;
    // The type change has a recipe, but not while a view reads the column: the new column
    // could not replace it.
    db.client()
        .await
        .batch_execute("create view item_qty as select id, qty from items")
        .await
        .unwrap();
    let before = catalog(&db).await;
    let report = run(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]]))
        .expect(3)
        .report();
    assert_eq!(error_type(&report), "LintFailed", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no recipe for 0001_online statement 2 (line 2, column-type-rewrite)") && message.contains("the view item_qty"),
        "names the statement and what stands in the way: {message}"
    );
    assert_eq!(catalog(&db).await, before, "not even the index that has a recipe was built");
    assert!(db.statements_done(TAG_1).await.is_empty());
    assert_eq!(ledger(&db).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lambda_takes_online_from_the_request() {
    let stack = Stack::new().await;
    // Every live table counts as large: WISH-2007's 0001 then has a recipe for each of its
    // blocking statements (two type changes, an index and a check).
    let lambda = stack.start(&[("LINT_LARGE_TABLE_ROWS", "0")]);
    response(lambda.invoke(json!({"action": "migrate", "to": TAG_0000})), "0000");
    let plain = response(lambda.invoke(json!({"action": "plan"})), "plan");
    // Without it, the refusal says --online has a recipe for each blocking statement.
    assert!(
        plain["warnings"]
            .to_string()
            .contains("has a lock-safe recipe for each blocking statement"),
        "{plain}"
    );
    assert!(plain["online"].is_null(), "{plain}");
    let online = response(lambda.invoke(json!({"action": "plan", "online": true})), "plan online");
    // store's type change runs in currency's recipe (statement 5): one backfill pass for both.
    assert_eq!(online["online"][0]["statements"][2]["decision"], "merged", "{online}");
    assert_eq!(online["online"][0]["statements"][4]["recipe"], "expandBackfillSwap", "{online}");
    assert!(!online["warnings"].to_string().contains("no recipe"), "{online}");
    let (error_type, message) = lambda
        .invoke(json!({"action": "status", "online": true}))
        .expect_error("online on status");
    assert_eq!(error_type, "InvalidRequest", "{message}");
    stack.assert_no_password(&lambda);
}

#[tokio::test]
async fn an_invalid_index_a_failed_build_left_is_dropped_and_built_again_under_its_name() {
    let dir = folder("CREATE UNIQUE INDEX \"items_user_idx\" ON \"items\" USING btree (\"user_id\");");
    let db = live_tables(dir.path()).await;
    let client = db.client().await;
    // A concurrent build of the same name that failed (a duplicate) and left its index INVALID,
    // as a run killed mid-build would.
    client.batch_execute("update items set user_id = 1 where id = 2").await.unwrap();
    let failed = client
        .batch_execute("create unique index concurrently items_user_idx on items (user_id)")
        .await;
    assert!(failed.is_err());
    client.batch_execute("update items set user_id = 2 where id = 2").await.unwrap();
    let valid = "select indisvalid from pg_index where indexrelid = 'items_user_idx'::regclass";
    assert!(!client.query_one(valid, &[]).await.unwrap().get::<_, bool>(0));

    run(&mut wm(&db.url, dir.path(), &["migrate", "--online", LARGE[0], LARGE[1]])).expect(0);
    assert!(client.query_one(valid, &[]).await.unwrap().get::<_, bool>(0));
    assert_eq!(ledger(&db).await, expected_ledger(dir.path()));
}
