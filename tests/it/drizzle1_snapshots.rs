//! drizzle 1.0's snapshots (format 9: a base and diffs, tests/fixtures/drizzle1): drift, verify,
//! rollback and check-rollback on 1.0 folders, and histories converted by `drizzle-kit up`.

use std::path::Path;

use crate::drizzle1::{expected_rows, folders, ledger1, wishlist_applied, RENAMES, WISHLIST};
use crate::harness::*;

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
    for history in fixture_histories() {
        let dir = copy_fixture(&history);
        let up = drizzle1_kit_up(dir.path());
        assert_eq!(up.code, 0, "{history}: drizzle-kit up:\n{}\n{}", up.stdout, up.stderr);
        assert!(!dir.path().join("meta").exists(), "{history}");
        assert_clean_at_every_version(dir.path(), false).await;
    }
}

fn mismatches(report: &serde_json::Value) -> Vec<(String, String)> {
    kinds_of(report, "modelMismatches")
}

/// The real histories (tests/fixtures/real-world) that `drizzle-kit up` converts: at every
/// version, drift on the converted folder finds no manual change and exactly the model
/// mismatches it finds on the 0.x folder at that version (the ones their files explain, see
/// tests/it/drift_baseline.rs). drizzle-kit up refuses a folder where a migration has no
/// snapshot ("No snapshot was found"): those histories are skipped, for that reason only.
#[tokio::test]
async fn real_histories_converted_by_drizzle_kit_up_compare_as_their_0_x_snapshots_do() {
    let histories = real_world_histories();
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
            // format 9, where it means what it says (docs/comparison.md: drizzle 1.0). Only those differ.
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
