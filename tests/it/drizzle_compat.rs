//! Compatibility with the real drizzle-orm `migrate()` (the pinned package, through
//! tests/peer/drizzle-migrate.mjs) on real drizzle-kit output: the same ledger rows, usable in
//! either order, and the cases where drizzle-orm gets it wrong and this tool does not.

use std::path::Path;

use crate::harness::*;

/// The catalog minus our own history table, which drizzle-orm does not create.
async fn schema_and_ledger_shape(db: &TestDb) -> Vec<String> {
    catalog(db)
        .await
        .into_iter()
        .filter(|l| !l.contains("wishlist_migrator_history"))
        .collect()
}

/// Ours and drizzle-orm's migrate() on two empty databases end in the same schema and the same
/// ledger, which holds (sha256 of each file, journal `when`) in journal order; and drizzle
/// run after ours finds nothing to do.
async fn same_result_as_drizzle(rel: &str) {
    let dir = repo_path(rel);
    let expected = expected_ledger(&dir);
    assert!(!expected.is_empty(), "{rel}: empty journal");

    let ours = pg().fresh_db().await;
    let report = run(&mut wm(&ours.url, rel, &["migrate"])).expect(0).report();
    let journal_tags: Vec<String> = journal(&dir).into_iter().map(|(tag, _)| tag).collect();
    assert_eq!(tags(&report["applied"]), journal_tags, "{rel}");
    assert_eq!(ledger(&ours).await, expected, "{rel}: ledger rows after our migrate");

    let theirs = pg().fresh_db().await;
    let peer = drizzle_peer(&theirs.url, rel, &[]);
    assert_eq!(peer.code, 0, "{rel}: drizzle-orm failed:\n{}", peer.stderr);
    assert_eq!(ledger(&theirs).await, expected, "{rel}: drizzle-orm's own ledger rows");
    assert_eq!(
        schema_and_ledger_shape(&ours).await,
        schema_and_ledger_shape(&theirs).await,
        "{rel}"
    );

    // Ours, then drizzle-orm: a no-op.
    let before = catalog(&ours).await;
    let peer = drizzle_peer(&ours.url, rel, &[]);
    assert_eq!(peer.code, 0, "{rel}: drizzle-orm after us:\n{}", peer.stderr);
    assert_eq!(ledger(&ours).await, expected, "{rel}: drizzle-orm must not re-apply");
    assert_eq!(catalog(&ours).await, before);

    // Drizzle-orm, then ours: nothing to do either.
    let report = run(&mut wm(&theirs.url, rel, &["migrate"])).expect(0).report();
    assert_eq!(report["status"], "upToDate", "{rel}: {report}");
    assert_eq!(ledger(&theirs).await, expected);
}

#[tokio::test]
async fn project_migrations_match_drizzle() {
    same_result_as_drizzle("migrations").await;
}

#[tokio::test]
async fn history_enum_defaults_matches_drizzle() {
    same_result_as_drizzle("tests/fixtures/histories/enum_defaults/migrations").await;
}

#[tokio::test]
async fn history_partial_indexes_matches_drizzle() {
    same_result_as_drizzle("tests/fixtures/histories/partial_indexes/migrations").await;
}

#[tokio::test]
async fn history_jsonb_defaults_matches_drizzle() {
    same_result_as_drizzle("tests/fixtures/histories/jsonb_defaults/migrations").await;
}

#[tokio::test]
async fn history_check_constraints_matches_drizzle() {
    same_result_as_drizzle("tests/fixtures/histories/check_constraints/migrations").await;
}

#[tokio::test]
async fn history_composite_indexes_matches_drizzle() {
    same_result_as_drizzle("tests/fixtures/histories/composite_indexes/migrations").await;
}

#[tokio::test]
async fn history_every_kind_matches_drizzle() {
    same_result_as_drizzle("tests/fixtures/histories/every_kind/migrations").await;
}

#[test]
fn every_fixture_history_is_covered_above() {
    // A new history added to the fixtures must get its own test here (or in the enum test).
    let covered = [
        "check_constraints",
        "composite_indexes",
        "enum_defaults",
        "enum_value_added_later",
        "every_kind",
        "jsonb_defaults",
        "partial_indexes",
    ];
    assert_eq!(folders_with_journal("tests/fixtures/histories", "migrations/"), covered);
}

#[tokio::test]
async fn after_drizzle_applied_the_first_migration_ours_applies_only_the_rest() {
    let db = pg().fresh_db().await;
    let first_only = copy_fixture("migrations");
    let entries = journal(first_only.path());
    rewrite_journal(first_only.path(), &[(TAG_0000, entries[0].1)]);
    let peer = drizzle_peer(&db.url, first_only.path(), &[]);
    assert_eq!(peer.code, 0, "{}", peer.stderr);
    let expected = expected_ledger(&repo_path("migrations"));
    assert_eq!(ledger(&db).await, expected[..1]);

    let status = run(&mut wm(&db.url, "migrations", &["status"])).expect(0).report();
    assert_eq!(status["current"], TAG_0000);
    assert_eq!(tags(&status["pending"]), [TAG_0001]);

    let report = run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0).report();
    assert_eq!(tags(&report["applied"]), [TAG_0001]);
    assert_eq!(ledger(&db).await, expected);
    let status = run(&mut wm(&db.url, "migrations", &["status"])).expect(0).report();
    assert_eq!(status["status"], "upToDate");
}

#[tokio::test]
async fn a_custom_ledger_schema_and_table_are_honoured_by_both() {
    let custom = [("MIGRATIONS_SCHEMA", "ops"), ("MIGRATIONS_TABLE", "applied_migrations")];
    let with_custom = |url: &str, args: &[&str]| {
        let mut cmd = wm(url, "migrations", args);
        cmd.envs(custom);
        cmd
    };
    let expected = expected_ledger(&repo_path("migrations"));

    // Ours first, then drizzle-orm with the same settings: a no-op.
    let db = pg().fresh_db().await;
    run(&mut with_custom(&db.url, &["migrate"])).expect(0);
    assert_eq!(ledger_in(&db, "ops", "applied_migrations").await, expected);
    assert!(
        db.table_exists("ops.wishlist_migrator_history").await,
        "our history lives beside the ledger"
    );
    assert!(!schema_exists(&db, "drizzle").await, "nothing in the default schema");
    let peer = drizzle_peer(&db.url, "migrations", &custom);
    assert_eq!(peer.code, 0, "{}", peer.stderr);
    assert_eq!(ledger_in(&db, "ops", "applied_migrations").await, expected);
    assert!(!schema_exists(&db, "drizzle").await);
    // The setting is what makes it up to date: the default ledger is empty.
    assert_eq!(run(&mut with_custom(&db.url, &["status"])).expect(0).report()["status"], "upToDate");
    assert_eq!(
        run(&mut wm(&db.url, "migrations", &["status"])).expect(0).report()["status"],
        "pending"
    );

    // drizzle-orm first (0000 only), then ours applies only 0001 into the same custom ledger.
    let db = pg().fresh_db().await;
    let first_only = copy_fixture("migrations");
    rewrite_journal(first_only.path(), &[(TAG_0000, expected[0].1)]);
    let peer = drizzle_peer(&db.url, first_only.path(), &custom);
    assert_eq!(peer.code, 0, "{}", peer.stderr);
    let report = run(&mut with_custom(&db.url, &["migrate"])).expect(0).report();
    assert_eq!(tags(&report["applied"]), [TAG_0001]);
    assert_eq!(ledger_in(&db, "ops", "applied_migrations").await, expected);
}

#[tokio::test]
async fn an_added_enum_value_is_committed_before_use_where_drizzle_fails() {
    let rel = "tests/fixtures/histories/enum_value_added_later/migrations";
    let dir = repo_path(rel);
    let tags_in_journal: Vec<String> = journal(&dir).into_iter().map(|(tag, _)| tag).collect();

    let ours = pg().fresh_db().await;
    let report = run(&mut wm(&ours.url, rel, &["migrate"])).expect(0).report();
    let segments = report["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2, "{report}");
    assert_eq!(segments[0]["migrations"], serde_json::json!(tags_in_journal[..2]));
    assert_eq!(segments[1]["migrations"], serde_json::json!(tags_in_journal[2..]));
    assert!(
        segments.iter().all(|s| s["mode"] == "transaction" && s["status"] == "committed"),
        "{report}"
    );
    assert!(
        segments[0]["reason"].as_str().unwrap_or("").contains(&tags_in_journal[1]),
        "the report says why it committed there: {report}"
    );
    assert_eq!(ledger(&ours).await, expected_ledger(&dir));
    let catalog = catalog(&ours).await;
    assert!(
        catalog.iter().any(|l| l == "enum public.item_status active,archived,hidden"),
        "{catalog:#?}"
    );
    assert!(
        catalog
            .iter()
            .any(|l| l == "col public.catalog_items.status item_status default 'hidden'::item_status"),
        "{catalog:#?}"
    );
    assert!(
        catalog.iter().any(|l| l == "rel public.catalog_items_visible_idx i"),
        "{catalog:#?}"
    );

    let theirs = pg().fresh_db().await;
    let peer = drizzle_peer(&theirs.url, rel, &[]);
    assert_eq!(
        peer.code, 1,
        "drizzle-orm was expected to fail here:\n{}{}",
        peer.stdout, peer.stderr
    );
    assert!(peer.stderr.contains("55P04"), "{}", peer.stderr);
    assert_eq!(ledger(&theirs).await, Vec::new());
    assert!(!theirs.table_exists("public.catalog_items").await);
}

#[tokio::test]
async fn drizzle_silently_skips_an_out_of_order_migration_that_ours_refuses() {
    let applied = copy_fixture("migrations");
    let (w0, w1) = {
        let j = journal(applied.path());
        (j[0].1, j[1].1)
    };
    let late = |dir: &Path| {
        std::fs::write(
            dir.join("0001_branch_feature.sql"),
            "CREATE TABLE \"branch_only\" (\"id\" integer);",
        )
        .unwrap();
        std::fs::rename(dir.join(format!("{TAG_0001}.sql")), dir.join("0002_wish_2007_enums_audit.sql")).unwrap();
        rewrite_journal(
            dir,
            &[(TAG_0000, w0), ("0001_branch_feature", w0 + 1), ("0002_wish_2007_enums_audit", w1)],
        );
    };

    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, applied.path(), &["migrate"])).expect(0);
    late(applied.path());
    let peer = drizzle_peer(&db.url, applied.path(), &[]);
    assert_eq!(peer.code, 0, "{}", peer.stderr);
    assert!(
        !db.table_exists("public.branch_only").await,
        "drizzle-orm reports success and skips it"
    );

    let report = run(&mut wm(&db.url, applied.path(), &["migrate"])).expect(3).report();
    assert_eq!(error_type(&report), "OutOfOrderMigration");
    assert_eq!(report["error"]["migration"], "0001_branch_feature");
}
