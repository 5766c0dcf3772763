//! The happy paths of `wishlist-migrate` as an operator sees them: `status`, `plan`,
//! `migrate` (also `--dry-run` and `--to`), the JSON report, the resulting catalog and ledger,
//! and migrations that must run outside a transaction.

use crate::harness::*;

/// Statements in a drizzle-kit file: drizzle-kit never ends a file with a breakpoint.
fn statement_count(file: &str) -> u64 {
    let sql = std::fs::read_to_string(repo_path(file)).unwrap();
    sql.matches("--> statement-breakpoint").count() as u64 + 1
}

#[tokio::test]
async fn migrate_applies_the_project_migrations_in_one_transaction() {
    let db = pg().fresh_db().await;
    let out = run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    let report = out.report();
    assert_eq!(report["action"], "migrate");
    assert_eq!(report["status"], "applied");
    assert_eq!(report["environment"], "dev");
    assert_eq!(report["current"], TAG_0001);
    assert_eq!(tags(&report["applied"]), [TAG_0000, TAG_0001]);
    assert_eq!(tags(&report["pending"]), Vec::<String>::new());
    assert!(report["error"].is_null(), "{report}");
    assert!(report["durationMs"].is_u64() && report["lockWaitMs"].is_u64(), "{report}");
    let run_id = report["runId"].as_str().expect("runId");
    assert!(!run_id.is_empty());
    assert_eq!(report["warnings"], serde_json::json!([]));
    for applied in report["applied"].as_array().unwrap() {
        assert!(applied["durationMs"].is_u64(), "{applied}");
    }

    // All or nothing by default: both migrations in one committed segment.
    let segments = report["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 1, "{report}");
    assert_eq!(segments[0]["mode"], "transaction");
    assert_eq!(segments[0]["status"], "committed");
    assert_eq!(segments[0]["attempts"], 1);
    assert_eq!(segments[0]["migrations"], serde_json::json!([TAG_0000, TAG_0001]));

    // The ledger is drizzle's: file hash and journal `when`, and the report's hashes agree.
    let dir = repo_path("migrations");
    let expected = expected_ledger(&dir);
    assert_eq!(ledger(&db).await, expected);
    let reported: Vec<&str> = report["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["hash"].as_str().unwrap())
        .collect();
    assert_eq!(reported, [expected[0].0.as_str(), expected[1].0.as_str()]);

    // The WISH-2007 schema is in place.
    let catalog = catalog(&db).await;
    let has = |line: &str| catalog.iter().any(|l| l == line);
    assert_eq!(
        catalog.iter().filter(|l| l.starts_with("col public.wishlist_items.")).count(),
        19,
        "{catalog:#?}"
    );
    assert!(has("enum public.wishlist_store LEGO,Barweer,Cata,BrickLink,Other"), "{catalog:#?}");
    assert!(has("enum public.wishlist_currency USD,EUR,GBP,CAD,AUD"), "{catalog:#?}");
    assert!(has("col public.wishlist_items.store wishlist_store default -"), "{catalog:#?}");
    assert!(
        has("col public.wishlist_items.currency wishlist_currency default 'USD'::wishlist_currency"),
        "{catalog:#?}"
    );
    for index in [
        "idx_wishlist_user_id",
        "idx_wishlist_user_sort",
        "idx_wishlist_user_store",
        "idx_wishlist_user_priority",
        "idx_wishlist_user_store_priority",
    ] {
        assert!(has(&format!("rel public.{index} i")), "missing {index}: {catalog:#?}");
    }
    assert!(
        catalog
            .iter()
            .any(|l| l.starts_with("constraint public.priority_range_check CHECK")),
        "{catalog:#?}"
    );

    // Our own history says who applied what, in the same run; drizzle's table stays 3 columns.
    let history = history(&db).await;
    let applied: Vec<(&str, &str, bool, &str)> = history
        .iter()
        .map(|(t, a, ok, r, _)| (t.as_str(), a.as_str(), *ok, r.as_str()))
        .collect();
    assert_eq!(applied, [(TAG_0000, "apply", true, run_id), (TAG_0001, "apply", true, run_id)]);
    let ledger_columns: Vec<&String> = catalog
        .iter()
        .filter(|l| l.starts_with("col drizzle.__drizzle_migrations."))
        .collect();
    assert_eq!(ledger_columns.len(), 3, "{ledger_columns:?}");

    // The lock is given back and the dedicated connection closed.
    assert_eq!(db.advisory_locks().await, 0);
    let d = &db;
    assert!(
        eventually(move || async move { migrator_sessions(d).await == 0 }).await,
        "a wishlist-migrator session outlived its run"
    );

    // Nothing left to do: exit 0, upToDate, ledger untouched.
    let again = run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0).report();
    assert_eq!(again["status"], "upToDate");
    assert_eq!(again["applied"], serde_json::json!([]));
    assert_eq!(again["current"], TAG_0001);
    assert_eq!(ledger(&db).await, expected);

    let status = run(&mut wm(&db.url, "migrations", &["status"])).expect(0).report();
    assert_eq!(status["action"], "status");
    assert_eq!(status["status"], "upToDate");
    assert_eq!(status["problems"], serde_json::json!([]));
}

#[tokio::test]
async fn status_plan_and_dry_run_change_nothing() {
    let db = pg().fresh_db().await;
    let before = catalog(&db).await;

    let status = run(&mut wm(&db.url, "migrations", &["status"])).expect(0).report();
    assert_eq!(status["status"], "pending");
    assert!(status["current"].is_null(), "{status}");
    assert_eq!(tags(&status["pending"]), [TAG_0000, TAG_0001]);

    let plan = run(&mut wm(&db.url, "migrations", &["plan"])).expect(0).report();
    assert_eq!(plan["action"], "plan");
    assert_eq!(plan["status"], "planned");
    let pending = plan["pending"].as_array().unwrap();
    assert_eq!(
        pending[0]["statements"],
        statement_count("migrations/0000_create_wishlist_items.sql")
    );
    assert_eq!(
        pending[1]["statements"],
        statement_count("migrations/0001_wish_2007_enums_audit.sql")
    );
    let expected = expected_ledger(&repo_path("migrations"));
    assert_eq!(pending[0]["hash"], expected[0].0.as_str());
    let segments = plan["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 1, "{plan}");
    assert_eq!(segments[0]["mode"], "transaction");
    assert_eq!(segments[0]["status"], "planned");
    assert_eq!(segments[0]["migrations"], serde_json::json!([TAG_0000, TAG_0001]));

    let dry = run(&mut wm(&db.url, "migrations", &["migrate", "--dry-run"])).expect(0).report();
    assert_eq!(dry["action"], "migrate");
    assert_eq!(dry["status"], "planned");
    assert_eq!(dry["dryRun"], true);
    assert_eq!(dry["applied"], serde_json::json!([]));
    assert_eq!(tags(&dry["pending"]), [TAG_0000, TAG_0001]);
    assert_eq!(dry["segments"], plan["segments"]);

    // Not even drizzle's schema: a plan must be safe to run against production at any time.
    assert!(!schema_exists(&db, "drizzle").await);
    assert_eq!(catalog(&db).await, before);
}

#[tokio::test]
async fn migrate_to_stops_at_the_tag_and_the_rest_stays_pending() {
    let db = pg().fresh_db().await;
    let plan = run(&mut wm(&db.url, "migrations", &["plan", "--to", TAG_0000])).expect(0).report();
    assert_eq!(plan["segments"][0]["migrations"], serde_json::json!([TAG_0000]));
    assert_eq!(plan["target"], TAG_0000);

    let first = run(&mut wm(&db.url, "migrations", &["migrate", "--to", TAG_0000]))
        .expect(0)
        .report();
    assert_eq!(first["status"], "applied");
    assert_eq!(tags(&first["applied"]), [TAG_0000]);
    assert_eq!(tags(&first["pending"]), [TAG_0001]);
    assert_eq!(first["current"], TAG_0000);
    let expected = expected_ledger(&repo_path("migrations"));
    assert_eq!(ledger(&db).await, expected[..1]);
    assert!(db.table_exists("public.wishlist_items").await);
    assert!(!column_exists(&db, "wishlist_items", "created_by").await, "0001 must not have run");

    let status = run(&mut wm(&db.url, "migrations", &["status"])).expect(0).report();
    assert_eq!(status["status"], "pending");
    assert_eq!(status["current"], TAG_0000);
    assert_eq!(tags(&status["pending"]), [TAG_0001]);

    // --to an applied tag has nothing to do.
    let noop = run(&mut wm(&db.url, "migrations", &["migrate", "--to", TAG_0000]))
        .expect(0)
        .report();
    assert_eq!(noop["status"], "upToDate");
    assert_eq!(ledger(&db).await, expected[..1]);

    let rest = run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0).report();
    assert_eq!(tags(&rest["applied"]), [TAG_0001]);
    assert_eq!(ledger(&db).await, expected);
}

#[tokio::test]
async fn an_unknown_to_tag_is_a_usage_error_and_changes_nothing() {
    let db = pg().fresh_db().await;
    let before = catalog(&db).await;
    for command in ["migrate", "plan"] {
        let out = run(&mut wm(&db.url, "migrations", &[command, "--to", "0007_no_such_migration"])).expect(2);
        let report = out.report();
        assert_eq!(report["status"], "failed");
        assert_eq!(error_type(&report), "InvalidRequest");
        assert!(
            report["error"]["message"].as_str().unwrap().contains("0007_no_such_migration"),
            "{report}"
        );
    }
    assert_eq!(catalog(&db).await, before);
    assert_eq!(db.advisory_locks().await, 0);
}

#[tokio::test]
async fn without_a_folder_the_embedded_migrations_are_applied() {
    let db = pg().fresh_db().await;
    let out = run(cli().env("DATABASE_URL", &db.url).args(["--json", "--env", "staging", "migrate"])).expect(0);
    let report = out.report();
    assert_eq!(report["environment"], "staging");
    assert_eq!(tags(&report["applied"]), [TAG_0000, TAG_0001]);
    // Built from migrations/: the same bytes, so the same ledger as the folder would give.
    assert_eq!(ledger(&db).await, expected_ledger(&repo_path("migrations")));
    let recorded: Vec<String> = db
        .client()
        .await
        .query("select distinct environment from drizzle.wishlist_migrator_history", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(recorded, ["staging"]);
}

#[tokio::test]
async fn human_output_has_a_line_per_migration_and_a_summary() {
    let db = pg().fresh_db().await;
    let mut cmd = cli();
    cmd.env("DATABASE_URL", &db.url).env("APP_ENV", "qa").args(["migrate"]);
    let out = run(&mut cmd).expect(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    for tag in [TAG_0000, TAG_0001] {
        assert!(
            lines.iter().any(|l| l.contains(tag) && l.trim_end().ends_with("ms")),
            "no line with {tag} and its duration:\n{}",
            out.stdout
        );
    }
    let summary = lines.last().expect("a summary line");
    assert!(
        summary.contains("applied 2 migration(s)") && summary.contains(TAG_0001),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("env qa"), "{}", out.stdout);

    // A failure goes to stderr with its type; stdout still ends with the summary.
    let mut bad = cli();
    bad.env("DATABASE_URL", &db.url).args(["migrate", "--to", "nope"]);
    let failed = run(&mut bad).expect(2);
    assert!(failed.stderr.contains("error[InvalidRequest]"), "{}", failed.stderr);
    assert!(
        failed.stdout.lines().last().unwrap_or("").starts_with("failed"),
        "{}",
        failed.stdout
    );
}

#[tokio::test]
async fn create_index_concurrently_runs_alone_outside_a_transaction() {
    let db = pg().fresh_db().await;
    let dir = "tests/fixtures/engine/no_transaction";
    let plan = run(&mut wm(&db.url, dir, &["plan"])).expect(0).report();
    let modes: Vec<&str> = plan["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["transaction", "autocommit"], "{plan}");

    let report = run(&mut wm(&db.url, dir, &["migrate"])).expect(0).report();
    let segments = report["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2, "{report}");
    assert_eq!(segments[0]["migrations"], serde_json::json!(["0000_create_wishlist_items"]));
    assert_eq!(segments[1]["mode"], "autocommit");
    assert_eq!(segments[1]["migrations"], serde_json::json!(["0001_create_index_concurrently"]));
    assert!(segments.iter().all(|s| s["status"] == "committed"), "{report}");
    assert!(segments[1]["reason"].as_str().unwrap_or("").contains("CONCURRENTLY"), "{report}");
    assert_eq!(ledger(&db).await, expected_ledger(&repo_path(dir)));

    // A concurrent build that failed half-way would leave an INVALID index behind.
    let valid: Option<bool> = db
        .client()
        .await
        .query_opt(
            "select i.indisvalid from pg_index i where i.indexrelid = to_regclass('public.idx_wishlist_title_concurrent')",
            &[],
        )
        .await
        .unwrap()
        .map(|r| r.get(0));
    assert_eq!(valid, Some(true), "the concurrent index must exist and be valid");
}

#[tokio::test]
async fn a_migration_marked_no_transaction_runs_outside_one() {
    let db = pg().fresh_db().await;
    let dir = "tests/fixtures/engine/no_transaction_marked";
    let report = run(&mut wm(&db.url, dir, &["migrate"])).expect(0).report();
    let segments = report["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2, "{report}");
    assert_eq!(segments[1]["mode"], "autocommit");
    assert_eq!(segments[1]["status"], "committed");
    assert_eq!(segments[1]["migrations"], serde_json::json!(["0001_vacuum_wishlist_items"]));
    assert_eq!(segments[1]["reason"], "marked no-transaction");
    assert_eq!(ledger(&db).await, expected_ledger(&repo_path(dir)));
    // Since PostgreSQL 14 reltuples is -1 until the table is first vacuumed or analyzed: the
    // VACUUM (ANALYZE) really ran.
    let reltuples: f32 = db
        .client()
        .await
        .query_one("select reltuples from pg_class where oid = 'public.wishlist_items'::regclass", &[])
        .await
        .unwrap()
        .get(0);
    assert!(reltuples >= 0.0, "VACUUM (ANALYZE) did not run: reltuples = {reltuples}");
}

#[tokio::test]
async fn the_cli_shows_each_migration_on_stderr_as_it_applies_unless_quiet() {
    let db = pg().fresh_db().await;
    let out = run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    // --json: stdout is the report alone (report() insists on exactly one JSON object).
    assert_eq!(out.report()["status"], "applied");
    let lines: Vec<&str> = out.stderr.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} on stderr:\n{}", out.stderr))
    };
    let started = at(&format!("applying {TAG_0000}"));
    let applied = at(&format!("applied {TAG_0000} in"));
    let second = at(&format!("applying {TAG_0001}"));
    let committed = at("committed");
    assert!(
        started < applied && applied < second && second < committed,
        "in the order they happen:\n{}",
        out.stderr
    );

    let db = pg().fresh_db().await;
    let quiet = run(&mut wm(&db.url, "migrations", &["--quiet", "migrate"])).expect(0);
    assert!(!quiet.stderr.contains("applying"), "--quiet: {}", quiet.stderr);
    assert_eq!(tags(&quiet.report()["applied"]), [TAG_0000, TAG_0001]);
}
