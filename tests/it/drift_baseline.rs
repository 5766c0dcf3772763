//! The two questions drift answers, on histories nobody here wrote: changes made outside the
//! migrations (against the baseline this tool recorded, or one replayed into a scratch database
//! when nothing was recorded, e.g. after drizzle-orm applied the migrations) and disagreements
//! between drizzle's snapshot and what the migrations build.

use std::path::Path;

use serde_json::Value;

use crate::harness::*;

/// Drift's report, asserting the run ended with `code`.
fn drift(url: &str, migrations: impl AsRef<Path>, args: &[&str], code: i32) -> Value {
    let mut all = vec!["drift"];
    all.extend_from_slice(args);
    run(&mut wm(url, migrations, &all)).expect(code).report()
}

fn assert_clean(report: &Value, baseline: &str, context: &str) {
    assert_eq!(
        report["status"],
        "ok",
        "{context}: {}",
        serde_json::to_string_pretty(report).unwrap()
    );
    assert_eq!(report["baseline"], baseline, "{context}: {report}");
    assert_eq!(report["differences"], serde_json::json!([]), "{context}");
    assert_eq!(report["modelMismatches"], serde_json::json!([]), "{context}");
}

/// Forgets the recorded baseline, as if the last run had been drizzle-orm's.
async fn forget_baseline(db: &TestDb) {
    db.client()
        .await
        .batch_execute("UPDATE drizzle.wishlist_migrator_history SET catalog = NULL")
        .await
        .expect("clear the recorded catalog");
}

/// The model mismatches drift must report on a real history after its migration number `idx`
/// (journal position) was applied, as (kind, object), sorted; none where not listed. Each was
/// read from the history's files.
fn expected_model_mismatches(history: &str, idx: usize) -> Vec<(String, String)> {
    let mut real: Vec<(&str, &str)> = Vec::new();
    match history.rsplit('/').next().unwrap() {
        // REAL: 0013_graceful_leo.sql was edited by hand (`ADD COLUMN IF NOT EXISTS "role" text
        // DEFAULT 'editor' NOT NULL`), while 0013_snapshot.json (and every later one) says
        // default 'user'.
        "better-chatbot" if idx >= 13 => real.push(("columnDefault", "public.user.role")),
        // Migrations 0012-0015 are raw SQL without snapshots: nothing to compare there. Not
        // mismatches: the EXISTS-subquery policies of 0006/0007, which the migration SQL spells
        // as the snapshot does and Postgres prints back differently (`(EXISTS (SELECT 1 FROM
        // chats WHERE chats.id::text = messages.chat_id::text ...))`, INNER JOIN as JOIN,
        // 'public'::text). Postgres builds the snapshot too (src/engine/model.rs), so it prints both alike.
        "morphic" if idx >= 16 => {
            // REAL: 0016_wrap_rls_current_setting.sql is hand-written ALTER POLICY wrapping
            // current_setting(...) in (select ...); 0016_snapshot.json keeps the unwrapped
            // `user_id = current_setting('app.current_user_id', true)`.
            real.push(("policyDefinition", "public.chats.users_manage_own_chats"));
            real.push(("policyDefinition", "public.feedback.users_anonymize_own_feedback"));
            // REAL: 0012/0013 create the notes and files tables and 0014 adds parts.file_key
            // and rewrites the file_fields_required check in raw SQL; 0016_snapshot.json
            // (as its migration's comment says) has none of them.
            real.push(("extraTable", "public.files"));
            real.push(("extraTable", "public.notes"));
            real.push(("extraColumn", "public.parts.file_key"));
            real.push(("constraintDefinition", "public.parts.file_fields_required"));
        }
        _ => {}
    }
    let mut all: Vec<(String, String)> = real.into_iter().map(|(k, o)| (k.to_string(), o.to_string())).collect();
    all.sort();
    all
}

/// No manual change, and exactly the `expected` model mismatches.
fn assert_only(report: &Value, baseline: &str, context: &str, expected: &[(String, String)]) {
    if expected.is_empty() {
        return assert_clean(report, baseline, context);
    }
    let pretty = serde_json::to_string_pretty(report).unwrap();
    assert_eq!(report["status"], "modelMismatch", "{context}: {pretty}");
    assert_eq!(report["baseline"], baseline, "{context}: {report}");
    assert_eq!(report["differences"], serde_json::json!([]), "{context}: manual changes: {pretty}");
    assert_eq!(kinds_of(report, "modelMismatches"), expected, "{context}: {pretty}");
}

#[tokio::test]
async fn real_histories_show_no_manual_change_and_only_the_listed_model_mismatches_at_any_version() {
    for history in real_world_histories() {
        let db = pg().fresh_db().await;
        let tags = journal(&repo_path(&history));
        for (idx, (tag, _)) in tags.iter().enumerate() {
            // A real team's history drops columns along the way; the gate is lint.rs's subject.
            run(wm(&db.url, &history, &["migrate", "--to", tag]).env("LINT_GATE", "false")).expect(0);
            let context = format!("{history} at {tag}");
            let expected = expected_model_mismatches(&history, idx);
            assert_only(&drift(&db.url, &history, &[], 0), "recorded", &context, &expected);
            forget_baseline(&db).await;
            assert_only(&drift(&db.url, &history, &[], 0), "replayed", &context, &expected);
        }
        let verify = run(&mut wm(&db.url, &history, &["verify"])).expect(0).report();
        assert_eq!(verify["status"], "verified", "{history}: verify passes where drift does: {verify}");

        // Applied by drizzle-orm itself: nothing recorded, so drift replays.
        let theirs = pg().fresh_db().await;
        let peer = drizzle_peer(&theirs.url, &history, &[]);
        assert_eq!(peer.code, 0, "{history}: drizzle-orm failed:\n{}", peer.stderr);
        let report = drift(&theirs.url, &history, &[], 0);
        let expected = expected_model_mismatches(&history, tags.len() - 1);
        assert_only(&report, "replayed", &format!("{history} by drizzle-orm"), &expected);
        assert!(
            !scratch_left_by(&theirs, &report).await,
            "{history}: the scratch database was dropped"
        );
    }
}

/// Whether the scratch database of the run that made `report` is still there.
async fn scratch_left_by(db: &TestDb, report: &Value) -> bool {
    let name = wishlist_migrator::engine::replay::scratch_name(report["runId"].as_str().unwrap());
    db.client()
        .await
        .query_one("select count(*) from pg_database where datname = $1", &[&name])
        .await
        .unwrap()
        .get::<_, i64>(0)
        > 0
}

const MANUAL_CHANGES: &str = "ALTER TABLE wishlist_items ADD COLUMN gift_note text;
     DROP INDEX idx_wishlist_user_sort;
     ALTER TYPE wishlist_store ADD VALUE 'Mega';
     ALTER TABLE wishlist_items ALTER COLUMN priority SET DEFAULT 1;
     ALTER TABLE wishlist_items DROP CONSTRAINT priority_range_check;";

fn kinds(report: &Value) -> Vec<(String, String)> {
    kinds_of(report, "differences")
}

#[tokio::test]
async fn manual_changes_are_named_against_a_replayed_baseline_after_drizzle_orm_applied() {
    let db = pg().fresh_db().await;
    let peer = drizzle_peer(&db.url, "migrations", &[]);
    assert_eq!(peer.code, 0, "{}", peer.stderr);
    assert_clean(&drift(&db.url, "migrations", &[], 0), "replayed", "untouched");
    db.client().await.batch_execute(MANUAL_CHANGES).await.unwrap();
    let report = drift(&db.url, "migrations", &[], 3);
    assert_eq!(error_type(&report), "DriftDetected");
    assert_eq!(report["baseline"], "replayed");
    let expected: Vec<(String, String)> = [
        ("columnDefault", "public.wishlist_items.priority"),
        ("extraColumn", "public.wishlist_items.gift_note"),
        ("extraEnumValue", "public.wishlist_store"),
        ("missingConstraint", "public.wishlist_items.priority_range_check"),
        ("missingIndex", "public.wishlist_items.idx_wishlist_user_sort"),
    ]
    .iter()
    .map(|(k, o)| (k.to_string(), o.to_string()))
    .collect();
    assert_eq!(kinds(&report), expected, "{report}");
    assert!(!scratch_left_by(&db, &report).await, "the scratch database was dropped");
}

#[tokio::test]
async fn a_baseline_of_another_ledger_is_not_trusted_and_drift_replays() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate", "--to", TAG_0000])).expect(0);
    // drizzle-orm applies the rest: the recorded baseline now belongs to an older ledger.
    let peer = drizzle_peer(&db.url, "migrations", &[]);
    assert_eq!(peer.code, 0, "{}", peer.stderr);
    let report = drift(&db.url, "migrations", &[], 0);
    assert_clean(&report, "replayed", "after drizzle-orm applied 0001");
    assert!(report["warnings"].to_string().contains("another ledger"), "{report}");
    db.client()
        .await
        .batch_execute("ALTER TABLE wishlist_items ADD COLUMN gift_note text")
        .await
        .unwrap();
    let report = drift(&db.url, "migrations", &[], 3);
    assert_eq!(
        kinds(&report),
        [("extraColumn".to_string(), "public.wishlist_items.gift_note".to_string())]
    );
}

#[tokio::test]
async fn a_hand_edited_migration_is_a_model_mismatch_not_a_manual_change() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    // A statement added to the SQL by hand after drizzle-kit generate: the snapshot never knew.
    let sql = dir.path().join(format!("{TAG_0001}.sql"));
    let mut text = std::fs::read_to_string(&sql).unwrap();
    text.push_str("\n--> statement-breakpoint\nCREATE INDEX \"idx_by_hand\" ON \"wishlist_items\" (\"created_at\");\n");
    std::fs::write(&sql, text).unwrap();
    run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0);

    let report = drift(&db.url, dir.path(), &[], 0);
    assert_eq!(report["status"], "modelMismatch", "{report}");
    assert_eq!(report["differences"], serde_json::json!([]), "nobody changed the database");
    let mismatches = report["modelMismatches"].as_array().unwrap();
    assert_eq!(mismatches.len(), 1, "{report}");
    assert_eq!(mismatches[0]["kind"], "extraIndex");
    assert_eq!(mismatches[0]["object"], "public.wishlist_items.idx_by_hand");
    assert!(mismatches[0]["snapshot"].is_null());
    assert!(mismatches[0]["cause"].as_str().unwrap().contains("added to a migration by hand"));

    let strict = drift(&db.url, dir.path(), &["--strict"], 3);
    assert_eq!(error_type(&strict), "ModelMismatch", "{strict}");
    assert_eq!(strict["status"], "modelMismatch");
    // Still tells a real manual change apart, and that one wins the status.
    db.client().await.batch_execute("DROP INDEX idx_by_hand").await.unwrap();
    let report = drift(&db.url, dir.path(), &[], 3);
    assert_eq!(error_type(&report), "DriftDetected");
    assert_eq!(
        kinds(&report),
        [("missingIndex".to_string(), "public.wishlist_items.idx_by_hand".to_string())]
    );
}

#[tokio::test]
async fn without_a_way_to_replay_drift_compares_with_the_snapshot_and_says_so() {
    let db = pg().fresh_db().await;
    let peer = drizzle_peer(&db.url, "migrations", &[]);
    assert_eq!(peer.code, 0, "{}", peer.stderr);
    // A read-only inspector: it may not create databases.
    let password = secret_password();
    let inspector = db
        .create_role(
            "inspector",
            &password,
            &[
                "GRANT USAGE ON SCHEMA drizzle TO {role}",
                "GRANT SELECT ON ALL TABLES IN SCHEMA drizzle TO {role}",
            ],
        )
        .await;
    let report = drift(&inspector, "migrations", &[], 0);
    assert_eq!(report["baseline"], "snapshot", "{report}");
    assert_eq!(report["status"], "ok");
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("CREATEDB") && warnings.contains("SHADOW_DATABASE_URL"),
        "{warnings}"
    );

    // SHADOW_DATABASE_URL: a server of its own to replay on.
    let shadow = private_pg();
    let report = run(wm(&inspector, "migrations", &["drift"]).env("SHADOW_DATABASE_URL", shadow.admin_url("postgres")))
        .expect(0)
        .report();
    assert_clean(&report, "replayed", "replayed on the shadow server");
}

#[tokio::test]
async fn a_replay_cut_short_by_the_deadline_drops_its_scratch_database() {
    // A history with a slow migration, applied by drizzle-orm (so nothing is recorded and drift
    // must replay), then drift with less time than the replay needs.
    let dir = copy_fixture("migrations");
    std::fs::write(dir.path().join("0002_slow.sql"), "SELECT pg_sleep(4);\n").unwrap();
    // It changes no schema: its snapshot is the previous one.
    std::fs::copy(
        dir.path().join("meta/0001_snapshot.json"),
        dir.path().join("meta/0002_snapshot.json"),
    )
    .unwrap();
    let mut entries = journal(dir.path());
    entries.push(("0002_slow".into(), entries.last().unwrap().1 + 1));
    let refs: Vec<(&str, i64)> = entries.iter().map(|(t, w)| (t.as_str(), *w)).collect();
    rewrite_journal(dir.path(), &refs);
    let db = pg().fresh_db().await;
    let peer = drizzle_peer(&db.url, dir.path(), &[]);
    assert_eq!(peer.code, 0, "{}", peer.stderr);

    let report = run(&mut wm(&db.url, dir.path(), &["drift", "--timeout", "1"])).expect(0).report();
    assert_eq!(report["baseline"], "snapshot", "{report}");
    assert!(report["warnings"].to_string().contains("deadline"), "{report}");
    assert!(!scratch_left_by(&db, &report).await, "the scratch database was dropped");
}

#[tokio::test]
async fn a_replayed_baseline_leaves_no_scratch_database_without_drizzle_orm() {
    // Applied by this tool, then its recorded baseline erased: drift must replay.
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    db.client()
        .await
        .batch_execute("UPDATE drizzle.wishlist_migrator_history SET catalog = NULL")
        .await
        .unwrap();
    let report = run(&mut wm(&db.url, "migrations", &["drift"])).expect(0).report();
    assert_eq!(report["baseline"], "replayed", "{report}");
    assert!(!scratch_left_by(&db, &report).await, "the scratch database was dropped");
}
