//! `wishlist-migrate rollback` and `check-rollback` against a real PostgreSQL: the project's own
//! down files (across the enum conversion), refusals that change nothing, dry runs, the ledger
//! drizzle-orm reads afterwards, and the round trip of every migration.

use serde_json::Value;

use crate::harness::*;

fn rolled_back_tags(report: &Value) -> Vec<String> {
    tags(&report["rollback"]["migrations"])
}

async fn seed(db: &TestDb, created_by: Option<&str>) {
    db.client()
        .await
        .execute(
            "INSERT INTO wishlist_items (user_id, title, store, currency, sort_order, created_by)
             VALUES ('u1', 'Millennium Falcon', 'LEGO', 'EUR', 1, $1), ('u1', 'Castle', 'Cata', 'GBP', 2, NULL)",
            &[&created_by],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn rollback_across_the_enum_conversion_restores_0000s_schema() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    seed(&db, None).await;
    let ledger_before = ledger(&db).await;

    let report = run(&mut wm(&db.url, "migrations", &["rollback", "--to", TAG_0000]))
        .expect(0)
        .report();
    assert_eq!(report["action"], "rollback");
    assert_eq!(report["status"], "rolledBack");
    assert_eq!(report["current"], TAG_0000);
    assert_eq!(tags(&report["pending"]), [TAG_0001]);
    assert_eq!(rolled_back_tags(&report), [TAG_0001]);
    assert!(report["rollback"]["migrations"][0]["durationMs"].is_u64(), "{report}");
    assert_eq!(report["differences"], serde_json::json!([]), "the schema is 0000's snapshot again");

    // The journal cleanup: only 0000's row is left, exactly as drizzle-orm wrote it.
    assert_eq!(ledger(&db).await, ledger_before[..1]);
    let history = history(&db).await;
    let last = history.last().unwrap();
    assert_eq!((last.0.as_str(), last.1.as_str(), last.2), (TAG_0001, "rollback", true));
    assert_eq!(last.3, report["runId"].as_str().unwrap());

    // The enums are gone, the data is kept as text.
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT store, currency, pg_typeof(store)::text FROM wishlist_items ORDER BY sort_order",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, String)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(got[0], ("LEGO".into(), "EUR".into(), "text".into()));
    assert!(!column_exists(&db, "wishlist_items", "created_by").await);
    assert_eq!(db.advisory_locks().await, 0);

    // drift agrees: the database is 0000 exactly.
    let drift = run(&mut wm(&db.url, "migrations", &["drift"])).expect(0).report();
    assert_eq!(drift["status"], "ok");
    assert_eq!(drift["current"], TAG_0000);
}

#[tokio::test]
async fn drizzle_orm_migrate_after_a_rollback_reapplies_exactly_what_was_rolled_back() {
    let db = pg().fresh_db().await;
    let out = drizzle_peer(&db.url, "migrations", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ledger_before = ledger(&db).await;
    assert_eq!(ledger_before, expected_ledger(&repo_path("migrations")));

    run(&mut wm(&db.url, "migrations", &["rollback", "--to", TAG_0000])).expect(0);
    assert_eq!(ledger(&db).await, ledger_before[..1]);
    let out = drizzle_peer(&db.url, "migrations", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(ledger(&db).await, ledger_before, "drizzle-orm re-applied 0001 and only 0001");
    run(&mut wm(&db.url, "migrations", &["drift"])).expect(0);

    // All the way back, and forward again.
    let report = run(&mut wm(&db.url, "migrations", &["rollback", "--to", "none"]))
        .expect(0)
        .report();
    assert_eq!(rolled_back_tags(&report), [TAG_0001, TAG_0000]);
    assert!(report["current"].is_null());
    assert!(ledger(&db).await.is_empty());
    assert!(!db.table_exists("public.wishlist_items").await);
    let out = drizzle_peer(&db.url, "migrations", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(ledger(&db).await, ledger_before);
}

#[tokio::test]
async fn data_loss_is_refused_without_the_flag_and_nothing_changes() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    seed(&db, Some("alice")).await;
    let catalog_before = catalog(&db).await;
    let ledger_before = ledger(&db).await;
    let history_before = history(&db).await;

    for args in [vec!["rollback", "--to", TAG_0000], vec!["rollback", "--to", TAG_0000, "--dry-run"]] {
        let report = run(&mut wm(&db.url, "migrations", &args)).expect(3).report();
        assert_eq!(error_type(&report), "RollbackRefused", "{args:?}");
        let message = report["error"]["message"].as_str().unwrap();
        assert!(message.contains("\"wishlist_items\".\"created_by\""), "{message}");
        assert!(message.contains("--allow-data-loss"), "{message}");
        assert!(!message.contains("updated_by"), "updated_by holds only NULLs: {message}");
        assert_eq!(report["error"]["migration"], TAG_0001);
        assert_eq!(catalog(&db).await, catalog_before);
        assert_eq!(ledger(&db).await, ledger_before);
        assert_eq!(db.advisory_locks().await, 0);
    }
    assert_eq!(history(&db).await, history_before, "a refusal records nothing");

    // Rolling back everything would drop the table and its rows.
    let report = run(&mut wm(&db.url, "migrations", &["rollback", "--to", "none"]))
        .expect(3)
        .report();
    assert!(
        report["error"]["message"].as_str().unwrap().contains("table \"wishlist_items\""),
        "{report}"
    );
    assert_eq!(catalog(&db).await, catalog_before);

    let report = run(&mut wm(&db.url, "migrations", &["rollback", "--to", TAG_0000, "--allow-data-loss"]))
        .expect(0)
        .report();
    assert_eq!(report["status"], "rolledBack");
    assert_eq!(
        report["rollback"]["dataAtRisk"][0]["object"],
        "column \"wishlist_items\".\"created_by\""
    );
    assert!(report["warnings"].to_string().contains("created_by"), "{report}");
    assert!(!column_exists(&db, "wishlist_items", "created_by").await);
}

#[tokio::test]
async fn a_missing_down_file_is_refused() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    std::fs::remove_file(dir.path().join(format!("{TAG_0001}.down.sql"))).unwrap();
    run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0);
    let catalog_before = catalog(&db).await;
    let report = run(&mut wm(&db.url, dir.path(), &["rollback", "--to", TAG_0000]))
        .expect(3)
        .report();
    assert_eq!(error_type(&report), "RollbackRefused");
    assert_eq!(report["error"]["migration"], TAG_0001);
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{TAG_0001}.down.sql")),
        "{report}"
    );
    assert_eq!(catalog(&db).await, catalog_before);
    assert_eq!(ledger(&db).await.len(), 2);
    assert_eq!(db.advisory_locks().await, 0);
}

#[tokio::test]
async fn a_target_without_its_snapshot_is_refused_before_anything_runs() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0);
    std::fs::remove_file(dir.path().join("meta/0000_snapshot.json")).unwrap();
    let catalog_before = catalog(&db).await;
    let report = run(&mut wm(&db.url, dir.path(), &["rollback", "--to", TAG_0000]))
        .expect(3)
        .report();
    assert_eq!(error_type(&report), "InvalidSnapshot");
    assert_eq!(report["status"], "failed");
    assert_eq!(catalog(&db).await, catalog_before);
    assert_eq!(ledger(&db).await.len(), 2);
}

#[tokio::test]
async fn dry_run_shows_the_statements_and_changes_nothing() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    let catalog_before = catalog(&db).await;
    let ledger_before = ledger(&db).await;
    let history_before = history(&db).await;
    let report = run(&mut wm(&db.url, "migrations", &["rollback", "--to", "none", "--dry-run"]))
        .expect(0)
        .report();
    assert_eq!(report["status"], "planned");
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["target"], "none");
    assert_eq!(rolled_back_tags(&report), [TAG_0001, TAG_0000]);
    let first: Vec<&str> = report["rollback"]["migrations"][0]["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(first.len(), 10);
    assert!(
        first.iter().any(|s| s.contains("DROP TYPE \"public\".\"wishlist_store\"")),
        "{first:?}"
    );
    assert!(report["rollback"]["migrations"][0]["durationMs"].is_null());
    assert_eq!(catalog(&db).await, catalog_before);
    assert_eq!(ledger(&db).await, ledger_before);
    assert_eq!(history(&db).await, history_before);

    let human = run(cli()
        .env("DATABASE_URL", &db.url)
        .args(["--migrations", "migrations", "rollback", "--to", TAG_0000, "--dry-run"]))
    .expect(0);
    assert!(
        human.stdout.contains("DROP INDEX \"idx_wishlist_user_store_priority\""),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("would roll back 1 migration(s)"), "{}", human.stdout);
}

#[tokio::test]
async fn targets_that_cannot_be_rolled_back_to() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate", "--to", TAG_0000])).expect(0);
    let report = run(&mut wm(&db.url, "migrations", &["rollback", "--to", "0009_nope"]))
        .expect(2)
        .report();
    assert_eq!(error_type(&report), "InvalidRequest");
    let report = run(&mut wm(&db.url, "migrations", &["rollback", "--to", TAG_0001]))
        .expect(3)
        .report();
    assert_eq!(error_type(&report), "RollbackRefused");
    assert!(report["error"]["message"].as_str().unwrap().contains("not applied"), "{report}");
    let report = run(&mut wm(&db.url, "migrations", &["rollback", "--to", TAG_0000]))
        .expect(0)
        .report();
    assert_eq!(report["status"], "upToDate");
    assert_eq!(rolled_back_tags(&report), Vec::<String>::new());
    // clap requires --to: rolling back is never a default.
    run(cli().env("DATABASE_URL", &db.url).args(["rollback"])).expect(2);
}

#[tokio::test]
async fn a_failing_down_statement_rolls_the_whole_rollback_back() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    let down = dir.path().join(format!("{TAG_0001}.down.sql"));
    let text = std::fs::read_to_string(&down).unwrap().replace(
        "DROP TYPE \"public\".\"wishlist_currency\";",
        "DROP TYPE \"public\".\"no_such_type\";",
    );
    std::fs::write(&down, text).unwrap();
    run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0);
    let catalog_before = catalog(&db).await;
    let ledger_before = ledger(&db).await;
    let report = run(&mut wm(&db.url, dir.path(), &["rollback", "--to", TAG_0000]))
        .expect(1)
        .report();
    assert_eq!(error_type(&report), "MigrationFailed");
    assert_eq!(report["error"]["sqlstate"], "42704");
    assert!(
        report["error"]["message"].as_str().unwrap().contains("down statement 10"),
        "{report}"
    );
    assert_eq!(catalog(&db).await, catalog_before, "the earlier down statements were undone");
    assert_eq!(ledger(&db).await, ledger_before);
    let last = history(&db).await.last().cloned().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1.as_str(), last.2, last.4.as_deref()),
        (TAG_0001, "rollback", false, Some("42704"))
    );
    assert_eq!(db.advisory_locks().await, 0);
}

#[tokio::test]
async fn check_rollback_passes_on_the_projects_migrations() {
    let db = pg().fresh_db().await;
    // The embedded set, as `make test` and a release pipeline run it.
    let out = run(cli().env("DATABASE_URL", &db.url).args(["--json", "check-rollback"])).expect(0);
    let report = out.report();
    assert_eq!(report["action"], "checkRollback");
    assert_eq!(report["status"], "verified");
    let checks = report["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["object"].as_str().unwrap()).collect();
    assert_eq!(names, [TAG_0000, TAG_0001]);
    assert!(
        checks.iter().all(|c| c["status"] == "passed" && c["kind"] == "rollbackRoundTrip"),
        "{report}"
    );
    assert_eq!(report["current"], TAG_0001);
    assert_eq!(ledger(&db).await, expected_ledger(&repo_path("migrations")));
    assert_eq!(db.advisory_locks().await, 0);
    // Each migration went up, down and up again.
    let actions: Vec<(String, String)> = history(&db).await.into_iter().map(|h| (h.0, h.1)).collect();
    let expected: Vec<(String, String)> = [
        (TAG_0000, "apply"),
        (TAG_0000, "rollback"),
        (TAG_0000, "apply"),
        (TAG_0001, "apply"),
        (TAG_0001, "rollback"),
        (TAG_0001, "apply"),
    ]
    .iter()
    .map(|(t, a)| (t.to_string(), a.to_string()))
    .collect();
    assert_eq!(actions, expected);

    // A database with migrations applied is not a scratch database.
    let report = run(cli().env("DATABASE_URL", &db.url).args(["--json", "check-rollback"]))
        .expect(3)
        .report();
    assert_eq!(error_type(&report), "RollbackRefused");
    assert!(report["error"]["message"].as_str().unwrap().contains("scratch"), "{report}");
}

#[tokio::test]
async fn check_rollback_names_a_down_file_that_does_not_restore_the_schema() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    let down = dir.path().join(format!("{TAG_0001}.down.sql"));
    let text = std::fs::read_to_string(&down).unwrap().replace(
        "ALTER TABLE \"wishlist_items\" ALTER COLUMN \"currency\" SET DEFAULT 'USD';--> statement-breakpoint\n",
        "",
    );
    std::fs::write(&down, text).unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["check-rollback"])).expect(3).report();
    assert_eq!(report["status"], "verificationFailed");
    assert_eq!(error_type(&report), "VerificationFailed");
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks[0]["status"], "passed");
    assert_eq!(checks[1]["status"], "failed");
    assert_eq!(checks[1]["object"], TAG_0001);
    let difference = &checks[1]["differences"][0];
    assert_eq!(difference["kind"], "columnDefault");
    assert_eq!(difference["object"], "public.wishlist_items.currency");
    assert_eq!(difference["actual"], "none");
    assert!(report["error"]["message"].as_str().unwrap().contains(TAG_0001), "{report}");

    // A migration without a down file fails its round trip by name.
    let db = pg().fresh_db().await;
    std::fs::remove_file(dir.path().join(format!("{TAG_0000}.down.sql"))).unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["check-rollback"])).expect(3).report();
    assert!(report["checks"][0]["detail"].as_str().unwrap().contains("no down file"), "{report}");
}

#[tokio::test]
async fn check_rollback_keeps_the_warnings_of_every_step() {
    // A migration that seeds a row: rolling it back drops a table holding data, which a
    // scratch run allows and reports as a warning of its rollback step.
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    let up = dir.path().join(format!("{TAG_0000}.sql"));
    let mut text = std::fs::read_to_string(&up).unwrap();
    text.push_str(
        "\n--> statement-breakpoint\nINSERT INTO \"wishlist_items\" (user_id, title, store, currency, sort_order) VALUES ('u1', 'Seeded', 'LEGO', 'EUR', 1);\n",
    );
    std::fs::write(&up, text).unwrap();
    let report = run(&mut wm(&db.url, dir.path(), &["check-rollback"])).expect(0).report();
    assert_eq!(report["status"], "verified", "{report}");
    let warnings: Vec<&str> = report["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("dropped data (--allow-data-loss)") && w.contains("wishlist_items")),
        "the rollback step's warning is in the report: {warnings:?}"
    );
    assert_eq!(db.advisory_locks().await, 0);
}

#[tokio::test]
async fn a_row_committed_while_the_rollback_waits_is_not_dropped_unseen() {
    // The table is empty when the rollback starts; another session's insert commits while the
    // rollback waits for the table. The check must see the row, not drop it.
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate", "--to", TAG_0000])).expect(0);
    let writer = db.client().await;
    writer.batch_execute("BEGIN").await.unwrap();
    writer
        .batch_execute("INSERT INTO wishlist_items (user_id, title, store, currency, sort_order) VALUES ('u1', 'late', 'LEGO', 'EUR', 1)")
        .await
        .unwrap();
    let mut cmd = wm(&db.url, "migrations", &["rollback", "--to", "none"]);
    cmd.env("PG_LOCK_TIMEOUT_MS", "20000").env("LOCK_TIMEOUT_RETRIES", "0");
    let child = spawn(&mut cmd);
    let observer = db.client().await;
    let waiting = eventually(|| async {
        let row = observer
            .query_one(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                 WHERE NOT l.granted AND a.application_name = 'wishlist-migrator'",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0) > 0
    })
    .await;
    writer.batch_execute("COMMIT").await.unwrap();
    assert!(waiting, "the rollback never waited for the writer's lock");
    let report = tokio::task::spawn_blocking(move || wait(child)).await.unwrap().expect(3).report();
    assert_eq!(error_type(&report), "RollbackRefused", "{report}");
    assert!(
        report["error"]["message"].as_str().unwrap().contains("table \"wishlist_items\""),
        "{report}"
    );
    let rows: i64 = observer.query_one("SELECT count(*) FROM wishlist_items", &[]).await.unwrap().get(0);
    assert_eq!(rows, 1, "the committed row is still there");
    assert_eq!(db.advisory_locks().await, 0);
}

#[tokio::test]
async fn a_down_statement_the_check_cannot_read_needs_allow_data_loss() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    let down = dir.path().join(format!("{TAG_0000}.down.sql"));
    std::fs::write(
        &down,
        "DELETE FROM \"wishlist_items\" WHERE store = 'LEGO';--> statement-breakpoint\nDROP TABLE \"wishlist_items\";\n",
    )
    .unwrap();
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", TAG_0000])).expect(0);
    // An empty table: only the unreadable DELETE stands in the way.
    let report = run(&mut wm(&db.url, dir.path(), &["rollback", "--to", "none", "--dry-run"]))
        .expect(3)
        .report();
    assert_eq!(error_type(&report), "RollbackRefused", "{report}");
    let risk = report["rollback"]["dataAtRisk"].to_string();
    assert!(risk.contains("down statement 1") && risk.contains("DELETE FROM"), "{report}");
    run(&mut wm(&db.url, dir.path(), &["rollback", "--to", "none"])).expect(3);
    assert!(db.table_exists("public.wishlist_items").await, "refused: nothing changed");
    let report = run(&mut wm(&db.url, dir.path(), &["rollback", "--to", "none", "--allow-data-loss"]))
        .expect(0)
        .report();
    assert_eq!(report["status"], "rolledBack");
    assert!(!db.table_exists("public.wishlist_items").await);
}
