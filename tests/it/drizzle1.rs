//! drizzle 1.0 (drizzle-kit and drizzle-orm 1.0.0-rc.5, tests/peer/drizzle1): its folder layout
//! and its ledger with names, against the real drizzle-orm 1.0 `migrate()` in both orders.

use std::path::Path;

use wishlist_migrator::migrations::folders::folder_millis;

use crate::harness::*;

const WISHLIST: &str = "tests/fixtures/drizzle1/wishlist/migrations";
/// Renames (a schema, a table, columns in keys, an index), drops and alters, in format 9 deltas.
const RENAMES: &str = "tests/fixtures/drizzle1/renames/migrations";

/// The migration folders of a drizzle-kit 1.0 folder, sorted (the fixture's names are digits,
/// lowercase and `_`, where byte order and drizzle-orm 1.0's localeCompare agree).
fn folders(dir: &Path) -> Vec<String> {
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
fn expected_rows(dir: &Path) -> Vec<(String, i64, Option<String>)> {
    folders(dir)
        .into_iter()
        .map(|name| {
            let hash = sha256_file(&dir.join(&name).join("migration.sql"));
            (hash, folder_millis(&name).unwrap(), Some(name))
        })
        .collect()
}

/// drizzle-orm 1.0's ledger rows in id order: (hash, created_at, name).
async fn ledger1(db: &TestDb) -> Vec<(String, i64, Option<String>)> {
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
async fn wishlist_applied() -> (TestDb, tempfile::TempDir) {
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

/// drift's report, asserting its exit code.
fn drift(url: &str, migrations: impl AsRef<Path>, args: &[&str], code: i32) -> serde_json::Value {
    let mut all = vec!["drift"];
    all.extend_from_slice(args);
    run(&mut wm(url, migrations, &all)).expect(code).report()
}

/// No manual change, no model mismatch, the snapshot read (no warning about it), against the
/// baseline named.
fn assert_clean(report: &serde_json::Value, baseline: &str, context: &str) {
    assert_eq!(report["status"], "ok", "{context}: {report:#}");
    assert_eq!(report["baseline"], baseline, "{context}: {report}");
    assert_eq!(report["differences"], serde_json::json!([]), "{context}");
    assert_eq!(report["modelMismatches"], serde_json::json!([]), "{context}: {report}");
    let warnings = report["warnings"].to_string();
    assert!(!warnings.contains("snapshot"), "{context}: {warnings}");
}

/// Forgets the recorded baseline, so that drift replays the migrations.
async fn forget_baseline(db: &TestDb) {
    db.client()
        .await
        .batch_execute("UPDATE drizzle.wishlist_migrator_history SET catalog = NULL")
        .await
        .expect("clear the recorded catalog");
}

/// drift at every version of a 1.0 folder against the schema rebuilt from the chain of
/// snapshots: with the recorded baseline, and with a replayed one (at every version when
/// `replay_each`, else at the last: a replay costs a scratch database).
async fn assert_clean_at_every_version(dir: &Path, replay_each: bool) {
    let db = pg().fresh_db().await;
    let names = folders(dir);
    assert!(!names.is_empty(), "{}", dir.display());
    for (i, name) in names.iter().enumerate() {
        // The fixtures rename and drop as they go, a version at a time: the gate is lint.rs's.
        run(wm(&db.url, dir, &["migrate", "--to", name]).env("LINT_GATE", "false")).expect(0);
        let context = format!("{} at {name}", dir.display());
        assert_clean(&drift(&db.url, dir, &["--strict"], 0), "recorded", &context);
        if replay_each || i + 1 == names.len() {
            forget_baseline(&db).await;
            assert_clean(&drift(&db.url, dir, &["--strict"], 0), "replayed", &context);
        }
    }
}

#[tokio::test]
async fn drift_is_clean_on_the_1_0_snapshots_at_every_version() {
    for history in [WISHLIST, RENAMES] {
        assert_clean_at_every_version(&repo_path(history), true).await;
        // What drizzle-orm 1.0 itself applied, replayed (no baseline of ours).
        let db = pg().fresh_db().await;
        let peer = drizzle1_peer(&db.url, history, &[]);
        assert_eq!(peer.code, 0, "{history}: {}", peer.stderr);
        assert_clean(&drift(&db.url, history, &["--strict"], 0), "replayed", history);
    }
}

/// The snapshots `drizzle-kit up` writes when it converts a 0.x folder (format 9 diffs made from
/// 0.x's whole snapshots, renames and alters included) read as the 0.x ones do: the project's
/// migrations and every drizzle-kit fixture history, clean at every version.
#[tokio::test]
async fn drift_is_clean_on_every_0_x_history_converted_by_drizzle_kit_up() {
    let root = repo_path("tests/fixtures/histories");
    let mut histories = vec!["migrations".to_string()];
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("migrations/meta/_journal.json").exists())
        .map(|e| format!("tests/fixtures/histories/{}/migrations", e.file_name().to_string_lossy()))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    histories.extend(names);
    for history in histories {
        let dir = copy_fixture(&history);
        let up = drizzle1_kit_up(dir.path());
        assert_eq!(up.code, 0, "{history}: drizzle-kit up:\n{}\n{}", up.stdout, up.stderr);
        assert!(!dir.path().join("meta").exists(), "{history}");
        assert_clean_at_every_version(dir.path(), false).await;
    }
}

fn mismatches(report: &serde_json::Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = report["modelMismatches"]
        .as_array()
        .unwrap_or_else(|| panic!("no modelMismatches: {report}"))
        .iter()
        .map(|d| (d["kind"].as_str().unwrap().to_string(), d["object"].as_str().unwrap().to_string()))
        .collect();
    found.sort();
    found
}

/// The real histories (tests/fixtures/real-world) that `drizzle-kit up` converts: at every
/// version, drift on the converted folder finds no manual change and exactly the model
/// mismatches it finds on the 0.x folder at that version (the ones their files explain, see
/// tests/it/drift_baseline.rs). drizzle-kit up refuses a folder where a migration has no
/// snapshot ("No snapshot was found"): those histories are skipped, for that reason only.
#[tokio::test]
async fn real_histories_converted_by_drizzle_kit_up_compare_as_their_0_x_snapshots_do() {
    let root = repo_path("tests/fixtures/real-world");
    let mut histories: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("meta/_journal.json").exists())
        .map(|e| format!("tests/fixtures/real-world/{}", e.file_name().to_string_lossy()))
        .collect();
    histories.sort();
    let (mut converted, mut order_only_seen) = (0, 0);
    for history in histories {
        let tags = journal(&repo_path(&history));
        let dir = copy_fixture(&history);
        let up = drizzle1_kit_up(dir.path());
        if up.code != 0 {
            let without_snapshot = tags.iter().any(|(tag, _)| {
                let prefix = tag.split('_').next().unwrap();
                !repo_path(&history).join(format!("meta/{prefix}_snapshot.json")).exists()
            });
            assert!(
                without_snapshot && format!("{}{}", up.stdout, up.stderr).contains("No snapshot was found"),
                "{history}: drizzle-kit up failed:\n{}\n{}",
                up.stdout,
                up.stderr
            );
            continue;
        }
        converted += 1;
        let names = folders(dir.path());
        assert_eq!(names.len(), tags.len(), "{history}");
        let (old, new) = (pg().fresh_db().await, pg().fresh_db().await);
        for ((tag, _), name) in tags.iter().zip(&names) {
            // Histories that rename and drop as they go, a version at a time: the gate is lint.rs's.
            run(wm(&old.url, &history, &["migrate", "--to", tag]).env("LINT_GATE", "false")).expect(0);
            run(wm(&new.url, dir.path(), &["migrate", "--to", name]).env("LINT_GATE", "false")).expect(0);
            let want = drift(&old.url, &history, &[], 0);
            let got = drift(&new.url, dir.path(), &[], 0);
            assert_eq!(got["differences"], serde_json::json!([]), "{history} at {name}: {got:#}");
            // drizzle-kit 0.x wrote an index column's operator class in place of its order, so
            // the order its snapshot recorded was never built; drizzle-kit up carries it into
            // format 9, where it means what it says (README: drizzle 1.0). Only those differ.
            let (order_only, rest): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) =
                got["modelMismatches"].as_array().unwrap().iter().partition(|m| {
                    let unordered = ["\" DESC", "\" NULLS FIRST", "\" NULLS LAST"]
                        .iter()
                        .fold(m["snapshot"].as_str().unwrap_or("").to_string(), |s, order| s.replace(order, "\""));
                    m["kind"] == "indexDefinition" && m["database"].as_str() == Some(unordered.as_str())
                });
            let rest: Vec<(String, String)> = rest
                .iter()
                .map(|d| (d["kind"].as_str().unwrap().to_string(), d["object"].as_str().unwrap().to_string()))
                .collect();
            assert_eq!(rest, mismatches(&want), "{history} at {name}: {got:#}");
            order_only_seen += order_only.len();
        }
    }
    assert!(converted >= 4, "only {converted} real histories converted");
    assert!(order_only_seen > 0, "dittofeed's operator-class indexes with NULLS FIRST");
}

#[tokio::test]
async fn drift_finds_a_manual_change_on_a_1_0_folder() {
    let (db, dir) = wishlist_applied().await;
    assert_clean(&drift(&db.url, dir.path(), &[], 0), "recorded", "as migrated");
    db.client()
        .await
        .batch_execute("ALTER TABLE wishlist_items ADD COLUMN sneaky text; ALTER TABLE lists ALTER COLUMN name DROP NOT NULL")
        .await
        .unwrap();
    let report = drift(&db.url, dir.path(), &[], 3);
    assert_eq!(report["status"], "driftDetected", "{report}");
    let objects: Vec<&str> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["object"].as_str().unwrap())
        .collect();
    assert_eq!(objects, ["public.lists.name", "public.wishlist_items.sneaky"], "{report}");
    assert_eq!(
        report["modelMismatches"],
        serde_json::json!([]),
        "the snapshot still agrees with the migrations"
    );
}

/// A copy of the wishlist fixture whose second folder's snapshot says `price` is numeric(12,2)
/// where its migration.sql makes it numeric(10,2).
fn wishlist_with_a_wrong_snapshot() -> tempfile::TempDir {
    let dir = copy_fixture(WISHLIST);
    let second = folders(dir.path()).remove(1);
    let file = dir.path().join(&second).join("snapshot.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"numeric(10,2)\""));
    std::fs::write(&file, text.replace("\"numeric(10,2)\"", "\"numeric(12,2)\"")).unwrap();
    dir
}

#[tokio::test]
async fn a_1_0_snapshot_that_disagrees_with_its_migration_is_a_model_mismatch() {
    let dir = wishlist_with_a_wrong_snapshot();
    let db = pg().fresh_db().await;
    let names = folders(dir.path());
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", &names[0]])).expect(0);
    assert_clean(&drift(&db.url, dir.path(), &[], 0), "recorded", "before the wrong snapshot");
    // From the second folder on, every later snapshot builds on the wrong one.
    for name in &names[1..] {
        run(&mut wm(&db.url, dir.path(), &["migrate", "--to", name])).expect(0);
        let report = drift(&db.url, dir.path(), &[], 0);
        assert_eq!(report["status"], "modelMismatch", "{name}: {report}");
        assert_eq!(report["differences"], serde_json::json!([]), "nobody changed the database");
        let mismatches = report["modelMismatches"].as_array().unwrap();
        assert_eq!(mismatches.len(), 1, "{report}");
        assert_eq!(mismatches[0]["object"], "public.wishlist_items.price", "{report}");
        let report = drift(&db.url, dir.path(), &["--strict"], 3);
        assert_eq!(error_type(&report), "ModelMismatch", "{report}");
    }
}

#[tokio::test]
async fn a_broken_chain_of_1_0_snapshots_is_an_error_naming_the_folder() {
    let (db, dir) = wishlist_applied().await;
    let names = folders(dir.path());
    std::fs::remove_file(dir.path().join(&names[1]).join("snapshot.json")).unwrap();
    let report = drift(&db.url, dir.path(), &["--strict"], 3);
    assert_eq!(error_type(&report), "InvalidSnapshot", "{report}");
    assert_eq!(report["error"]["migration"], names[2].as_str(), "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("{}/snapshot.json", names[2])), "{message}");
    // Without --strict the manual-change question is still answered, the other one warned about.
    let report = drift(&db.url, dir.path(), &[], 0);
    assert_eq!(report["status"], "ok", "{report}");
    assert!(report["warnings"].to_string().contains("were not compared"), "{report}");
}

#[tokio::test]
async fn verify_passes_on_a_1_0_folder() {
    let (db, dir) = wishlist_applied().await;
    let report = run(&mut wm(&db.url, dir.path(), &["verify"])).expect(0).report();
    assert_eq!(report["status"], "verified", "{report:#}");
    let checks = report["checks"].as_array().unwrap();
    assert!(
        checks.iter().any(|c| c["kind"] == "enumValues" && c["status"] == "passed"),
        "the enum values are checked against the snapshot: {report}"
    );
    let dir = wishlist_with_a_wrong_snapshot();
    let report = run(&mut wm(&db.url, dir.path(), &["verify"])).expect(0).report();
    assert_eq!(report["modelMismatches"][0]["object"], "public.wishlist_items.price", "{report}");
}

/// The project's 0.x migrations converted by `drizzle-kit up`, each `<tag>.down.sql` (which up
/// leaves at the top) moved into its migration's folder as `down.sql`.
fn project_converted_with_down_files() -> tempfile::TempDir {
    let dir = copy_fixture("migrations");
    let up = drizzle1_kit_up(dir.path());
    assert_eq!(up.code, 0, "drizzle-kit up:\n{}\n{}", up.stdout, up.stderr);
    for (tag, folder) in [TAG_0000, TAG_0001].iter().zip(folders(dir.path())) {
        let down = dir.path().join(format!("{tag}.down.sql"));
        assert!(down.is_file(), "drizzle-kit up leaves {tag}.down.sql where it was");
        assert!(folder.ends_with(&tag[4..]), "{folder} is {tag}");
        std::fs::rename(&down, dir.path().join(&folder).join("down.sql")).unwrap();
    }
    dir
}

#[tokio::test]
async fn check_rollback_passes_on_a_1_0_folder_with_down_files() {
    let dir = project_converted_with_down_files();
    let db = pg().fresh_db().await;
    let report = run(&mut wm(&db.url, dir.path(), &["check-rollback"])).expect(0).report();
    assert_eq!(report["status"], "verified", "{report:#}");
    let names = folders(dir.path());
    let checks: Vec<(&str, &str)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["object"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(checks, [(names[0].as_str(), "passed"), (names[1].as_str(), "passed")], "{report}");
    // drizzle-orm 1.0 ignores the down files: it applies the folder as it would without them.
    let theirs = pg().fresh_db().await;
    let peer = drizzle1_peer(&theirs.url, dir.path(), &[]);
    assert_eq!(peer.code, 0, "{}", peer.stderr);
    assert_eq!(ledger1(&theirs).await, expected_rows(dir.path()));
}

#[tokio::test]
async fn rollback_on_a_1_0_folder_runs_its_down_files_and_drizzle_orm_1_0_re_applies_them() {
    let dir = project_converted_with_down_files();
    let names = folders(dir.path());
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", &names[0]])).expect(0);
    let at_first = catalog(&db).await;
    run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0);
    let all = expected_rows(dir.path());

    let report = run(&mut wm(&db.url, dir.path(), &["rollback", "--to", &names[0], "--dry-run"]))
        .expect(0)
        .report();
    assert_eq!(tags(&report["rollback"]["migrations"]), [names[1].as_str()], "{report}");
    let report = run(&mut wm(&db.url, dir.path(), &["rollback", "--to", &names[0], "--allow-data-loss"]))
        .expect(0)
        .report();
    assert_eq!(report["status"], "rolledBack", "{report:#}");
    assert_eq!(
        report["differences"],
        serde_json::json!([]),
        "the schema is the first folder's snapshot again"
    );
    assert_eq!(ledger1(&db).await, all[..1], "the rolled-back folder's row is gone");
    let without_history = |c: Vec<String>| -> Vec<String> { c.into_iter().filter(|l| !l.contains("wishlist_migrator_history")).collect() };
    assert_eq!(without_history(catalog(&db).await), without_history(at_first));
    assert_clean(&drift(&db.url, dir.path(), &[], 0), "recorded", "after the rollback");

    // drizzle-orm 1.0 finds exactly the rolled-back folder pending.
    let peer = drizzle1_peer(&db.url, dir.path(), &[]);
    assert_eq!(peer.code, 0, "{}", peer.stderr);
    assert_eq!(ledger1(&db).await, all);
    assert_clean(&drift(&db.url, dir.path(), &[], 0), "replayed", "re-applied by drizzle-orm 1.0");
}

#[tokio::test]
async fn rollback_without_the_down_file_in_its_folder_names_where_it_belongs() {
    let dir = copy_fixture("migrations");
    let up = drizzle1_kit_up(dir.path());
    assert_eq!(up.code, 0, "{}", up.stderr);
    let names = folders(dir.path());
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0);
    let before = catalog(&db).await;
    let report = run(&mut wm(&db.url, dir.path(), &["rollback", "--to", &names[0]]))
        .expect(3)
        .report();
    assert_eq!(error_type(&report), "RollbackRefused", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("{}/down.sql", names[1])), "{message}");
    assert!(message.contains("drizzle-kit up leaves"), "{message}");
    assert_eq!(catalog(&db).await, before);
}

/// The enum `ADD VALUE` boundary in the 1.0 layout: drizzle-orm 1.0 still runs every pending
/// migration in one transaction and fails with 55P04; ours commits after the `ADD VALUE`.
#[tokio::test]
async fn an_added_enum_value_used_later_applies_here_and_fails_in_drizzle_orm_1_0() {
    let dir = tempfile::tempdir().unwrap();
    for (name, sql) in [
        ("20250101120000_status", "CREATE TYPE \"item_status\" AS ENUM('active', 'archived');--> statement-breakpoint\nCREATE TABLE \"items\" (\"status\" \"item_status\" DEFAULT 'active' NOT NULL);"),
        ("20250101120001_hidden", "ALTER TYPE \"item_status\" ADD VALUE 'hidden';"),
        ("20250101120002_use_hidden", "ALTER TABLE \"items\" ALTER COLUMN \"status\" SET DEFAULT 'hidden';"),
    ] {
        std::fs::create_dir(dir.path().join(name)).unwrap();
        std::fs::write(dir.path().join(name).join("migration.sql"), sql).unwrap();
    }
    let theirs = pg().fresh_db().await;
    let peer = drizzle1_peer(&theirs.url, dir.path(), &[]);
    assert_ne!(peer.code, 0, "{}", peer.stdout);
    assert!(peer.stderr.contains("55P04"), "{}", peer.stderr);
    assert!(ledger1(&theirs).await.is_empty());

    let ours = pg().fresh_db().await;
    let report = run(&mut wm(&ours.url, dir.path(), &["migrate"])).expect(0).report();
    assert_eq!(tags(&report["applied"]).len(), 3, "{report}");
    assert_eq!(ledger1(&ours).await, expected_rows(dir.path()));
    let peer = drizzle1_peer(&ours.url, dir.path(), &[]);
    assert_eq!(peer.code, 0, "drizzle-orm 1.0 after us:\n{}", peer.stderr);
    assert_eq!(ledger1(&ours).await, expected_rows(dir.path()));
}
