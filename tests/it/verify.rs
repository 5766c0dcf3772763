//! `wishlist-migrate verify` against a real PostgreSQL: the project's migrations pass; a dropped
//! index, an invalid index and an unexpected enum value each fail by name; the query catalogue
//! follows the database's version; `--analyze` reports timings.

use serde_json::Value;

use crate::harness::*;

fn checks(report: &Value) -> Vec<Value> {
    report["checks"].as_array().unwrap_or_else(|| panic!("no checks: {report}")).clone()
}

fn failed(report: &Value) -> Vec<(String, String, String)> {
    checks(report)
        .iter()
        .filter(|c| c["status"] == "failed")
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["object"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn query_plans(report: &Value) -> Vec<(String, String)> {
    checks(report)
        .iter()
        .filter(|c| c["kind"] == "queryPlan")
        .map(|c| (c["object"].as_str().unwrap().to_string(), c["status"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn verify_passes_on_the_projects_migrations() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    let report = run(&mut wm(&db.url, "migrations", &["verify"])).expect(0).report();
    assert_eq!(report["action"], "verify");
    assert_eq!(report["status"], "verified");
    assert_eq!(failed(&report), []);
    assert_eq!(report["differences"], serde_json::json!([]));
    let all = checks(&report);
    let count = |kind: &str| all.iter().filter(|c| c["kind"] == kind && c["status"] == "passed").count();
    assert_eq!(count("schema"), 1);
    assert_eq!(count("enumValues"), 2);
    // Five hot-query indexes and the primary key's.
    assert_eq!(count("indexValid"), 6);
    assert_eq!(
        query_plans(&report),
        [
            ("list a user's items in their order".to_string(), "passed".to_string()),
            ("filter by store: a user's stores with their item counts".into(), "passed".into()),
            ("a user's items by priority, highest first".into(), "passed".into()),
            ("filter a user's items by store and priority".into(), "passed".into()),
            ("count a user's items".into(), "passed".into()),
        ]
    );
    let sort = all.iter().find(|c| c["object"] == "list a user's items in their order").unwrap();
    assert_eq!(sort["detail"], "uses idx_wishlist_user_sort");
    assert!(sort["timing"].is_null(), "timings only with --analyze");
    // Nothing was left behind by the EXPLAINs.
    assert_eq!(db.advisory_locks().await, 0);
}

#[tokio::test]
async fn a_dropped_index_fails_verification_naming_it() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    db.client().await.batch_execute("DROP INDEX idx_wishlist_user_sort").await.unwrap();
    let report = run(&mut wm(&db.url, "migrations", &["verify"])).expect(3).report();
    assert_eq!(report["status"], "verificationFailed");
    assert_eq!(error_type(&report), "VerificationFailed");
    let failures = failed(&report);
    let plan = failures
        .iter()
        .find(|(kind, object, _)| kind == "queryPlan" && object == "list a user's items in their order")
        .unwrap_or_else(|| panic!("{failures:?}"));
    assert!(plan.2.contains("idx_wishlist_user_sort"), "{plan:?}");
    assert!(failures.iter().any(|(kind, _, _)| kind == "schema"), "{failures:?}");
    assert_eq!(report["differences"][0]["kind"], "missingIndex");
    assert_eq!(report["differences"][0]["object"], "public.wishlist_items.idx_wishlist_user_sort");
    // The other queries still pass: only what broke is named.
    assert_eq!(
        failures.iter().filter(|(kind, _, _)| kind == "queryPlan").count(),
        1,
        "{failures:?}"
    );
    let human = run(cli().env("DATABASE_URL", &db.url).args(["--migrations", "migrations", "verify"])).expect(3);
    assert!(
        human.stdout.contains("✗ queryPlan list a user's items in their order"),
        "{}",
        human.stdout
    );
    assert!(human.stderr.contains("error[VerificationFailed]"), "{}", human.stderr);
}

#[tokio::test]
async fn an_index_left_invalid_by_a_failed_concurrent_build_fails_verification() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    let client = db.client().await;
    client
        .batch_execute(
            "INSERT INTO wishlist_items (user_id, title, store, sort_order) VALUES ('u1', 'a', 'LEGO', 1), ('u1', 'b', 'LEGO', 2)",
        )
        .await
        .unwrap();
    let err = client
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY idx_one_item_per_user ON wishlist_items (user_id)")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "23505");
    let report = run(&mut wm(&db.url, "migrations", &["verify"])).expect(3).report();
    let failures = failed(&report);
    let invalid = failures
        .iter()
        .find(|(kind, _, _)| kind == "indexValid")
        .unwrap_or_else(|| panic!("{failures:?}"));
    assert_eq!(invalid.1, "public.wishlist_items.idx_one_item_per_user");
    assert!(invalid.2.contains("INVALID"), "{invalid:?}");
    assert!(report["differences"].to_string().contains("idx_one_item_per_user"));
}

#[tokio::test]
async fn enum_values_are_verified() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    db.client()
        .await
        .batch_execute("ALTER TYPE wishlist_store ADD VALUE 'Mega' BEFORE 'LEGO'")
        .await
        .unwrap();
    let report = run(&mut wm(&db.url, "migrations", &["verify"])).expect(3).report();
    let failures = failed(&report);
    let enum_check = failures
        .iter()
        .find(|(kind, _, _)| kind == "enumValues")
        .unwrap_or_else(|| panic!("{failures:?}"));
    assert_eq!(enum_check.1, "public.wishlist_store");
    assert!(enum_check.2.contains("Mega, LEGO"), "{enum_check:?}");
    assert!(!failures.iter().any(|(_, object, _)| object == "public.wishlist_currency"));
}

#[tokio::test]
async fn queries_of_later_migrations_are_skipped_on_older_databases() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate", "--to", TAG_0000])).expect(0);
    let report = run(&mut wm(&db.url, "migrations", &["verify"])).expect(0).report();
    assert_eq!(report["current"], TAG_0000);
    let plans = query_plans(&report);
    assert!(
        plans.contains(&("filter a user's items by store and priority".to_string(), "skipped".to_string())),
        "{plans:?}"
    );
    let store = checks(&report)
        .into_iter()
        .find(|c| c["object"] == "filter by store: a user's stores with their item counts")
        .unwrap();
    assert_eq!(
        store["detail"], "uses idx_wishlist_user_store",
        "before 0001 no longer index can stand in for it"
    );
    assert_eq!(
        checks(&report).iter().filter(|c| c["kind"] == "enumValues").count(),
        0,
        "0000 has no enums"
    );
}

#[tokio::test]
async fn analyze_reports_timings() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    let report = run(&mut wm(&db.url, "migrations", &["verify", "--analyze"])).expect(0).report();
    let plans: Vec<Value> = checks(&report).into_iter().filter(|c| c["kind"] == "queryPlan").collect();
    assert_eq!(plans.len(), 5);
    for plan in plans {
        let timing = &plan["timing"];
        assert!(timing["executionUs"].is_u64() && timing["planningUs"].is_u64(), "{plan}");
        assert!(timing["indexes"].is_array(), "{plan}");
    }
}

#[tokio::test]
async fn a_broken_query_catalogue_is_named() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    let dir = copy_fixture("migrations");
    let catalogue = dir.path().join("verify/queries.sql");
    std::fs::write(&catalogue, "-- query: orphan\nSELECT 1;\n").unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["verify"])).expect(3).report();
    assert_eq!(error_type(&report), "InvalidMigrations");
    assert!(
        report["error"]["message"].as_str().unwrap().contains("queries.sql line 1"),
        "{report}"
    );
    // A query that no longer runs (a renamed column) fails its check with Postgres's error.
    std::fs::write(
        &catalogue,
        "-- query: renamed\n-- index: idx_wishlist_user_id\nSELECT 1 FROM wishlist_items WHERE owner = 'x';\n",
    )
    .unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["verify"])).expect(3).report();
    let failures = failed(&report);
    assert!(
        failures
            .iter()
            .any(|(k, o, d)| k == "queryPlan" && o == "renamed" && d.contains("owner")),
        "{failures:?}"
    );
    // Without a catalogue the plans are not checked, and the report says so.
    std::fs::remove_file(&catalogue).unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["verify"])).expect(0).report();
    assert!(report["warnings"].to_string().contains("no query catalogue"), "{report}");
}
