//! drizzle 1.0 (drizzle-kit and drizzle-orm 1.0.0-rc.5, tests/peer/drizzle1): its folder layout
//! and its ledger with names, against the real drizzle-orm 1.0 `migrate()` in both orders.

use std::path::Path;

use wishlist_migrator::migrations::folders::folder_millis;

use crate::harness::*;

pub(crate) const WISHLIST: &str = "tests/fixtures/drizzle1/wishlist/migrations";
/// Renames (a schema, a table, columns in keys, an index), drops and alters, in format 9 deltas.
pub(crate) const RENAMES: &str = "tests/fixtures/drizzle1/renames/migrations";

/// The migration folders of a drizzle-kit 1.0 folder, sorted (the fixture's names are digits,
/// lowercase and `_`, where byte order and drizzle-orm 1.0's localeCompare agree).
pub(crate) fn folders(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().join("migration.sql").is_file())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// What drizzle-orm 1.0 inserts for each folder: (sha256 of migration.sql, the name's timestamp
/// in ms, the name).
pub(crate) fn expected_rows(dir: &Path) -> Vec<(String, i64, Option<String>)> {
    folders(dir)
        .into_iter()
        .map(|name| {
            let hash = sha256_file(&dir.join(&name).join("migration.sql"));
            (hash, folder_millis(&name).unwrap(), Some(name))
        })
        .collect()
}

/// drizzle-orm 1.0's ledger rows in id order: (hash, created_at, name).
pub(crate) async fn ledger1(db: &TestDb) -> Vec<(String, i64, Option<String>)> {
    db.client()
        .await
        .query("select hash, created_at, name from drizzle.__drizzle_migrations order by id", &[])
        .await
        .expect("read 1.0 ledger")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// The ledger table's columns as `name type default`, in order.
async fn ledger_columns(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query(
            "select a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
               from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
              where a.attrelid = 'drizzle.__drizzle_migrations'::regclass and a.attnum > 0 and not a.attisdropped
              order by a.attnum",
            &[],
        )
        .await
        .expect("read ledger columns")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

const LEDGER_1_0: [&str; 5] = [
    "id integer nextval('drizzle.__drizzle_migrations_id_seq'::regclass)",
    "hash text -",
    "created_at bigint -",
    "name text -",
    "applied_at timestamp with time zone now()",
];

/// The catalog minus our own history table, which drizzle-orm does not create.
async fn schema_and_ledger_shape(db: &TestDb) -> Vec<String> {
    catalog(db)
        .await
        .into_iter()
        .filter(|l| !l.contains("wishlist_migrator_history"))
        .collect()
}

/// A copy of the wishlist fixture holding only its first `n` folders.
fn first_folders(n: usize) -> tempfile::TempDir {
    let dir = copy_fixture(WISHLIST);
    for name in folders(dir.path()).into_iter().skip(n) {
        std::fs::remove_dir_all(dir.path().join(name)).unwrap();
    }
    dir
}

#[test]
fn the_fixture_is_drizzle_kit_1_0_output() {
    let dir = repo_path(WISHLIST);
    assert!(!dir.join("meta").exists(), "a 1.0 folder has no journal");
    let names = folders(&dir);
    assert_eq!(names.len(), 3, "{names:?}");
    for name in &names {
        assert!(folder_millis(name).is_some(), "{name}");
        assert!(dir.join(name).join("snapshot.json").is_file(), "{name}");
    }
}

#[tokio::test]
async fn ours_then_drizzle_orm_1_0_is_a_noop() {
    let dir = repo_path(WISHLIST);
    let expected = expected_rows(&dir);
    let db = pg().fresh_db().await;
    let report = run(&mut wm(&db.url, WISHLIST, &["migrate"])).expect(0).report();
    assert_eq!(tags(&report["applied"]), folders(&dir));
    assert_eq!(ledger_columns(&db).await, LEDGER_1_0, "a 1.0 folder gets drizzle-orm 1.0's ledger");
    assert_eq!(ledger1(&db).await, expected, "our rows are drizzle-orm 1.0's, names included");

    let before = catalog(&db).await;
    let peer = drizzle1_peer(&db.url, WISHLIST, &[]);
    assert_eq!(peer.code, 0, "drizzle-orm 1.0 after us:\n{}", peer.stderr);
    assert_eq!(ledger1(&db).await, expected, "drizzle-orm 1.0 must not re-apply");
    assert_eq!(catalog(&db).await, before);
}

#[tokio::test]
async fn drizzle_orm_1_0_then_ours_finds_nothing_to_do() {
    let dir = repo_path(WISHLIST);
    let expected = expected_rows(&dir);
    let theirs = pg().fresh_db().await;
    let peer = drizzle1_peer(&theirs.url, WISHLIST, &[]);
    assert_eq!(peer.code, 0, "drizzle-orm 1.0 failed:\n{}", peer.stderr);
    assert_eq!(ledger_columns(&theirs).await, LEDGER_1_0, "drizzle-orm 1.0's own ledger");
    assert_eq!(ledger1(&theirs).await, expected, "drizzle-orm 1.0's own rows");

    let report = run(&mut wm(&theirs.url, WISHLIST, &["migrate"])).expect(0).report();
    assert_eq!(report["status"], "upToDate", "{report}");
    assert_eq!(ledger1(&theirs).await, expected);

    // The same schema and ledger as ours builds.
    let ours = pg().fresh_db().await;
    run(&mut wm(&ours.url, WISHLIST, &["migrate"])).expect(0);
    assert_eq!(schema_and_ledger_shape(&ours).await, schema_and_ledger_shape(&theirs).await);
}

/// One folder more each time, applied alternately by ours and by drizzle-orm 1.0 on the same
/// database; after each step the other finds nothing to do.
#[tokio::test]
async fn version_by_version_in_both_orders() {
    let expected = expected_rows(&repo_path(WISHLIST));
    for ours_first in [true, false] {
        let db = pg().fresh_db().await;
        for n in 1..=expected.len() {
            let dir = first_folders(n);
            let ours_now = (n % 2 == 1) == ours_first;
            if ours_now {
                let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0).report();
                assert_eq!(tags(&report["applied"]).len(), 1, "step {n}: only the new folder: {report}");
            } else {
                let peer = drizzle1_peer(&db.url, dir.path(), &[]);
                assert_eq!(peer.code, 0, "step {n}: drizzle-orm 1.0:\n{}", peer.stderr);
            }
            assert_eq!(ledger1(&db).await, expected[..n], "step {n} (ours first: {ours_first})");
            let before = catalog(&db).await;
            if ours_now {
                let peer = drizzle1_peer(&db.url, dir.path(), &[]);
                assert_eq!(peer.code, 0, "step {n}: drizzle-orm 1.0 after us:\n{}", peer.stderr);
            } else {
                let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0).report();
                assert_eq!(report["status"], "upToDate", "step {n}: {report}");
            }
            assert_eq!(ledger1(&db).await, expected[..n], "step {n}: the second tool changed nothing");
            assert_eq!(catalog(&db).await, before);
        }
    }
}

#[tokio::test]
async fn a_0_x_folder_keeps_the_0_x_ledger_without_a_name_column() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    assert_eq!(
        ledger_columns(&db).await,
        [
            "id integer nextval('drizzle.__drizzle_migrations_id_seq'::regclass)",
            "hash text -",
            "created_at bigint -",
        ]
    );
}

/// The project's 0.x migrations applied by ours, then converted with `drizzle-kit up`: the
/// converted folder (a temp copy) and the database.
async fn migrated_in_0_x_then_up() -> (TestDb, tempfile::TempDir) {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0);
    let up = drizzle1_kit_up(dir.path());
    assert_eq!(up.code, 0, "drizzle-kit up:\n{}\n{}", up.stdout, up.stderr);
    assert!(!dir.path().join("meta").exists(), "drizzle-kit up removes the journal");
    (db, dir)
}

/// What the upgrade leaves: the 0.x rows (hash, created_at in ms) kept, each named after its
/// converted folder.
fn upgraded_rows(before: &[(String, i64)], dir: &Path) -> Vec<(String, i64, Option<String>)> {
    before
        .iter()
        .zip(folders(dir))
        .map(|((hash, created_at), name)| (hash.clone(), *created_at, Some(name)))
        .collect()
}

#[tokio::test]
async fn after_drizzle_kit_up_ours_sees_everything_applied_and_upgrades_the_ledger() {
    let (db, dir) = migrated_in_0_x_then_up().await;
    let before = ledger(&db).await;
    let schema = catalog(&db).await;
    // Read-only: everything applied, the ledger not touched.
    let status = run(&mut wm(&db.url, dir.path(), &["status"])).expect(0).report();
    assert_eq!(status["status"], "upToDate", "{status}");
    assert_eq!(catalog(&db).await, schema, "status changes nothing");

    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0).report();
    assert_eq!(report["status"], "upToDate", "{report}");
    let upgraded = upgraded_rows(&before, dir.path());
    assert_eq!(ledger1(&db).await, upgraded, "the 0.x rows, named");
    assert_eq!(ledger_columns(&db).await, LEDGER_1_0);

    // drizzle-orm 1.0 then finds an upgraded ledger with everything applied.
    let after = catalog(&db).await;
    let peer = drizzle1_peer(&db.url, dir.path(), &[]);
    assert_eq!(peer.code, 0, "drizzle-orm 1.0 after our upgrade:\n{}", peer.stderr);
    assert_eq!(ledger1(&db).await, upgraded, "drizzle-orm 1.0 re-ran nothing");
    assert_eq!(catalog(&db).await, after);
}

#[tokio::test]
async fn after_drizzle_kit_up_drizzle_orm_1_0_upgrades_and_ours_then_sees_everything_applied() {
    let (db, dir) = migrated_in_0_x_then_up().await;
    let before = ledger(&db).await;
    let schema = catalog(&db).await;
    let peer = drizzle1_peer(&db.url, dir.path(), &[]);
    assert_eq!(peer.code, 0, "drizzle-orm 1.0's upgrade:\n{}", peer.stderr);
    let upgraded = upgraded_rows(&before, dir.path());
    assert_eq!(ledger1(&db).await, upgraded, "drizzle-orm 1.0 named the rows and re-ran nothing");

    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0).report();
    assert_eq!(report["status"], "upToDate", "{report}");
    assert_eq!(ledger1(&db).await, upgraded);
    let without_ledger = |c: Vec<String>| -> Vec<String> { c.into_iter().filter(|l| !l.contains("__drizzle_migrations")).collect() };
    assert_eq!(without_ledger(catalog(&db).await), without_ledger(schema));
}

#[tokio::test]
async fn an_upgrade_with_rows_matching_no_folder_is_refused_as_drizzle_orm_1_0_refuses_it() {
    let (db, dir) = migrated_in_0_x_then_up().await;
    let last = folders(dir.path()).pop().unwrap();
    std::fs::remove_dir_all(dir.path().join(&last)).unwrap();
    let before = catalog(&db).await;
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(3).report();
    assert_eq!(error_type(&report), "UnknownMigrations", "{report}");
    let message = report["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("(ids: 2)"), "{message}");
    assert_eq!(catalog(&db).await, before, "nothing changed, no name column added");

    let peer = drizzle1_peer(&db.url, dir.path(), &[]);
    assert_ne!(peer.code, 0, "drizzle-orm 1.0 refuses too");
    assert!(peer.stderr.contains("ids: 2"), "{}", peer.stderr);
    assert_eq!(catalog(&db).await, before);
}

// ---------------------------------------------------------------------------
// Where drizzle-orm 1.0 goes on silently (or fails late), and this tool refuses first.

/// The wishlist fixture applied by ours, in a copy the test may change.
pub(crate) async fn wishlist_applied() -> (TestDb, tempfile::TempDir) {
    let db = pg().fresh_db().await;
    let dir = copy_fixture(WISHLIST);
    run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0);
    (db, dir)
}

#[tokio::test]
async fn a_renamed_applied_folder_is_refused_where_drizzle_orm_1_0_runs_it_again() {
    let (db, dir) = wishlist_applied().await;
    let first = folders(dir.path()).remove(0);
    let renamed = format!("{}_renamed", &first[..14]);
    std::fs::rename(dir.path().join(&first), dir.path().join(&renamed)).unwrap();
    let before = catalog(&db).await;
    for args in [&["migrate"][..], &["migrate", "--allow-unknown-migrations", "--allow-out-of-order"]] {
        let report = run(&mut wm(&db.url, dir.path(), args)).expect(3).report();
        assert_eq!(error_type(&report), "UnknownMigrations", "{args:?}: {report}");
        let message = report["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("applied as {first}")), "{message}");
    }
    assert_eq!(catalog(&db).await, before);
    // drizzle-orm 1.0 runs it again (and here fails on the type that exists: 42710).
    let peer = drizzle1_peer(&db.url, dir.path(), &[]);
    assert_ne!(peer.code, 0, "{}", peer.stdout);
    assert!(peer.stderr.contains("42710"), "{}", peer.stderr);
}

#[tokio::test]
async fn a_pending_folder_older_than_applied_ones_is_refused_unless_allowed() {
    let (db, dir) = wishlist_applied().await;
    let late = "20200101000000_late";
    std::fs::create_dir(dir.path().join(late)).unwrap();
    std::fs::write(
        dir.path().join(late).join("migration.sql"),
        "CREATE TABLE \"late\" (\"id\" integer);",
    )
    .unwrap();
    let before = catalog(&db).await;
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(3).report();
    assert_eq!(error_type(&report), "OutOfOrderMigration", "{report}");
    assert_eq!(report["error"]["migration"], late, "{report}");
    assert_eq!(catalog(&db).await, before);

    // drizzle-orm 1.0 applies it without a word; ours does so only when told.
    let theirs = pg().fresh_db().await;
    run(&mut wm(&theirs.url, WISHLIST, &["migrate"])).expect(0);
    let peer = drizzle1_peer(&theirs.url, dir.path(), &[]);
    assert_eq!(peer.code, 0, "{}", peer.stderr);
    assert!(theirs.table_exists("public.late").await);

    let report = run(&mut wm(&db.url, dir.path(), &["migrate", "--allow-out-of-order"]))
        .expect(0)
        .report();
    assert_eq!(tags(&report["applied"]), [late], "{report}");
    assert!(db.table_exists("public.late").await);
    assert_eq!(ledger1(&db).await, ledger1(&theirs).await, "the same rows as drizzle-orm 1.0's");
}

#[tokio::test]
async fn an_edited_applied_file_is_refused_where_drizzle_orm_1_0_does_not_look() {
    let (db, dir) = wishlist_applied().await;
    let first = folders(dir.path()).remove(0);
    let file = dir.path().join(&first).join("migration.sql");
    let mut sql = std::fs::read_to_string(&file).unwrap();
    sql.push_str("\n-- edited after it was applied\n");
    std::fs::write(&file, sql).unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(3).report();
    assert_eq!(error_type(&report), "ChecksumMismatch", "{report}");
    assert_eq!(report["error"]["migration"], first.as_str(), "{report}");
    let peer = drizzle1_peer(&db.url, dir.path(), &[]);
    assert_eq!(peer.code, 0, "drizzle-orm 1.0 does not check hashes:\n{}", peer.stderr);
}

#[tokio::test]
async fn a_folder_name_without_its_timestamp_is_refused_naming_it() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture(WISHLIST);
    std::fs::create_dir(dir.path().join("add_notes")).unwrap();
    std::fs::write(dir.path().join("add_notes").join("migration.sql"), "SELECT 1;").unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(3).report();
    assert_eq!(error_type(&report), "InvalidMigrations", "{report}");
    assert_eq!(report["error"]["migration"], "add_notes", "{report}");
    assert!(
        !db.table_exists("drizzle.__drizzle_migrations").await,
        "refused before touching the database"
    );
    // drizzle-orm 1.0 gets NaN for its created_at and fails inserting it, rolling back.
    let peer = drizzle1_peer(&db.url, dir.path(), &[]);
    assert_ne!(peer.code, 0, "{}", peer.stdout);
    assert!(peer.stderr.contains("NaN"), "{}", peer.stderr);
    assert!(ledger1(&db).await.is_empty(), "drizzle-orm 1.0's one transaction rolled back");
}

// ---------------------------------------------------------------------------
// The 1.0 snapshots (format 9: a base, then diffs) in drift, verify and rollback.
