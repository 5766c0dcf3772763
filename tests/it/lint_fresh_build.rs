//! The lint gate's promise to a new environment: a database built from the whole history is
//! never refused, by any rule (what the run itself creates is empty and unused while it runs).
//! Each way it was broken, on a folder of two or three migrations; then every real history,
//! built from empty with the gate on.

use std::path::Path;

use crate::harness::*;

/// A migrations folder of these files (tag, SQL), in this order.
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("meta")).unwrap();
    let mut entries = Vec::new();
    for (i, (tag, sql)) in files.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{tag}.sql")), sql).unwrap();
        entries.push((*tag, 1_764_547_200_000 + i as i64 * 60_000));
    }
    rewrite_journal(dir.path(), &entries);
    dir
}

/// The database settings a history was written for: latitude-llm's database role is named
/// `latitude`, so `"$user"` in the default search_path finds its schema and its files name
/// some of its types unqualified (see its SOURCE.md).
const SEARCH_PATHS: [(&str, &str); 1] = [("latitude-llm", "latitude, public")];

/// `migrate` on an empty database with the gate on (the default): applies every migration.
async fn builds_from_empty(dir: &Path, what: &str) {
    let path = SEARCH_PATHS.iter().find(|(name, _)| dir.ends_with(name)).map(|(_, path)| *path);
    builds_from_empty_with(dir, what, path).await;
}

/// The same on a database whose sessions have this search_path.
async fn builds_from_empty_with(dir: &Path, what: &str, search_path: Option<&str>) {
    let db = pg().fresh_db().await;
    if let Some(path) = search_path {
        let sql = format!("ALTER DATABASE \"{}\" SET search_path TO {path}", db.name);
        db.client().await.batch_execute(&sql).await.unwrap();
    }
    let report = run(&mut wm(&db.url, dir, &["migrate"])).report();
    assert_eq!(report["status"], "applied", "{what}: {report}");
    assert_eq!(
        tags(&report["applied"]),
        journal(dir).into_iter().map(|(t, _)| t).collect::<Vec<_>>(),
        "{what}"
    );
}

#[tokio::test]
async fn a_column_dropped_from_a_table_the_run_created_is_not_refused_without_any_index() {
    // Only a breaking finding, none that asks for live sizes: the gate still grades it against
    // the database.
    let dir = folder(&[
        ("0000_t", "CREATE TABLE \"t\" (\"id\" integer PRIMARY KEY, \"x\" text);"),
        ("0001_drop_x", "ALTER TABLE \"t\" DROP COLUMN \"x\";"),
    ]);
    builds_from_empty(dir.path(), "drop column").await;
    // Against a database where the table already is, it is refused as before.
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", "0000_t"])).expect(0);
    let refused = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(3).report();
    assert_eq!(error_type(&refused), "LintFailed", "{refused}");
}

#[tokio::test]
async fn a_type_created_unqualified_and_dropped_qualified_is_the_run_s_own() {
    let dir = folder(&[
        (
            "0000_kind",
            "CREATE TYPE \"kind\" AS ENUM('a', 'b');--> statement-breakpoint\nCREATE TABLE \"t\" (\"id\" integer, \"k\" \"kind\");",
        ),
        (
            "0001_drop",
            "DROP TABLE \"public\".\"t\";--> statement-breakpoint\nDROP TYPE \"public\".\"kind\";",
        ),
    ]);
    builds_from_empty(dir.path(), "qualified drop").await;
    // Where the session's search_path puts it in a schema of the team's: created unqualified
    // (so in "app"), dropped as "app"."kind". The index asks for the live sizes, so only the
    // type's name could refuse this.
    let dir = folder(&[
        (
            "0000_kind",
            "CREATE SCHEMA \"app\";--> statement-breakpoint\nCREATE TYPE \"kind\" AS ENUM('a', 'b');--> statement-breakpoint\nCREATE TABLE \"app\".\"t\" (\"id\" integer, \"k\" \"kind\");",
        ),
        (
            "0001_drop",
            "CREATE INDEX \"t_id\" ON \"app\".\"t\" (\"id\");--> statement-breakpoint\nALTER TABLE \"app\".\"t\" DROP COLUMN \"k\";--> statement-breakpoint\nDROP TYPE \"app\".\"kind\";",
        ),
    ]);
    builds_from_empty_with(dir.path(), "qualified drop in the search_path's schema", Some("app, public")).await;
}

#[tokio::test]
async fn an_enum_created_in_older_drizzle_kit_s_do_block_is_the_run_s_own() {
    let dir = folder(&[
        (
            "0000_kind",
            "DO $$ BEGIN\n CREATE TYPE \"public\".\"kind\" AS ENUM('a', 'b');\nEXCEPTION\n WHEN duplicate_object THEN null;\nEND $$;\n--> statement-breakpoint\nCREATE TABLE \"t\" (\"id\" integer, \"k\" \"kind\");",
        ),
        // The index asks for the live sizes, so only the unknown type could refuse this.
        (
            "0001_gone",
            "CREATE INDEX \"t_id\" ON \"t\" (\"id\");--> statement-breakpoint\nALTER TABLE \"t\" DROP COLUMN \"k\";--> statement-breakpoint\nDROP TYPE \"kind\";",
        ),
    ]);
    builds_from_empty(dir.path(), "DO block").await;
}

#[tokio::test]
async fn a_table_renamed_earlier_in_the_run_is_the_run_s_own() {
    let dir = folder(&[
        ("0000_t", "CREATE TABLE \"t\" (\"id\" integer PRIMARY KEY, \"x\" text);"),
        ("0001_rename", "ALTER TABLE \"t\" RENAME TO \"items\";"),
        // The index asks for the live sizes, so only the renamed table could refuse this.
        (
            "0002_drop_x",
            "CREATE INDEX \"items_id\" ON \"items\" (\"id\");--> statement-breakpoint\nALTER TABLE \"items\" DROP COLUMN \"x\";",
        ),
    ]);
    builds_from_empty(dir.path(), "rename").await;
}

/// A team's convention for concurrent builds (latitude-llm's history): the file ends drizzle's
/// transaction with its own `COMMIT`, groups what belongs together in `BEGIN … COMMIT`, and
/// builds its indexes outside any transaction.
#[tokio::test]
async fn a_file_that_ends_the_transaction_before_its_concurrent_build_is_not_mixed() {
    let convention = "COMMIT;--> statement-breakpoint\nBEGIN;--> statement-breakpoint\nALTER TABLE \"t\" ADD COLUMN \"y\" text;--> statement-breakpoint\nALTER TABLE \"t\" ADD COLUMN \"z\" text;--> statement-breakpoint\nCOMMIT;--> statement-breakpoint\nCREATE INDEX CONCURRENTLY \"t_y\" ON \"t\" USING btree (\"y\");";
    let dir = folder(&[
        ("0000_t", "CREATE TABLE \"t\" (\"id\" integer PRIMARY KEY, \"x\" text);"),
        (
            "0001_commit_then_index",
            "COMMIT;\n--> statement-breakpoint\nCREATE INDEX CONCURRENTLY \"t_x\" ON \"t\" USING btree (\"x\");",
        ),
        ("0002_grouped", convention),
    ]);
    builds_from_empty(dir.path(), "COMMIT then CREATE INDEX CONCURRENTLY").await;
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", "0000_t"])).expect(0);
    let plan = run(&mut wm(&db.url, dir.path(), &["plan"])).expect(0).report();
    let findings = plan["findings"].as_array().cloned().unwrap_or_default();
    let rules: Vec<&str> = findings.iter().filter_map(|f| f["rule"].as_str()).collect();
    assert!(!rules.contains(&"non-transactional-mixed"), "{plan}");

    // Genuinely mixed: the concurrent build inside the transaction the statements before it
    // run in (drizzle's, or the file's own BEGIN) is refused, fresh database or not.
    for (what, sql) in [
        ("no COMMIT", "ALTER TABLE \"t\" ADD COLUMN \"y\" text;--> statement-breakpoint\nCREATE INDEX CONCURRENTLY \"t_y\" ON \"t\" (\"y\");"),
        ("inside BEGIN", "COMMIT;--> statement-breakpoint\nBEGIN;--> statement-breakpoint\nALTER TABLE \"t\" ADD COLUMN \"y\" text;--> statement-breakpoint\nCREATE INDEX CONCURRENTLY \"t_y\" ON \"t\" (\"y\");--> statement-breakpoint\nCOMMIT;"),
    ] {
        let dir = folder(&[
            ("0000_t", "CREATE TABLE \"t\" (\"id\" integer PRIMARY KEY, \"x\" text);"),
            ("0001_mixed", sql),
        ]);
        let db = pg().fresh_db().await;
        let refused = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(3).report();
        assert_eq!(error_type(&refused), "LintFailed", "{what}: {refused}");
        assert!(
            refused["error"]["message"].as_str().unwrap().contains("non-transactional-mixed"),
            "{what}: {refused}"
        );
        assert_eq!(refused["applied"], serde_json::json!([]), "{what}");
    }
}

/// Histories that create an extension the test cluster may lack (sim: pgvector, which Debian
/// 12 does not package for PostgreSQL 15): where it is missing, the gate's own judgement
/// (`lint` against the empty database, the analysis `migrate` runs before it applies anything)
/// stands in for the build.
const EXTENSIONS: [(&str, &str); 1] = [("sim", "vector")];

/// Every real team's history (tests/fixtures/real-world and the long ones of
/// tests/fixtures/real-world-long), built from empty with the gate on: never refused.
#[tokio::test]
async fn every_real_history_builds_from_empty_with_the_gate_on() {
    let long = folders_with_journal("tests/fixtures/real-world-long", "");
    assert!(long.len() >= 3, "{long:?}");
    for name in &long {
        let source = std::fs::read_to_string(repo_path("tests/fixtures/real-world-long").join(name).join("SOURCE.md")).unwrap();
        assert!(source.contains("Licence:"), "{name}: SOURCE.md names the licence");
    }
    let histories = real_world_histories()
        .into_iter()
        .chain(long.iter().map(|n| format!("tests/fixtures/real-world-long/{n}")));
    for history in histories {
        let dir = repo_path(&history);
        let source = std::fs::read_to_string(dir.join("SOURCE.md")).unwrap_or_default();
        assert!(source.contains("commit"), "{history}: SOURCE.md names where it came from");

        let db = pg().fresh_db().await;
        let lint = run(&mut wm(&db.url, &dir, &["lint"])).report();
        assert_eq!(lint["status"], "clean", "{history}: the gate would refuse: {lint}");
        assert_eq!(lint["linted"].as_array().map(Vec::len), Some(journal(&dir).len()), "{history}");

        let needs = EXTENSIONS.iter().find(|(name, _)| dir.ends_with(name)).map(|(_, ext)| *ext);
        if let Some(extension) = needs {
            let available: i64 = db
                .client()
                .await
                .query_one("select count(*) from pg_available_extensions where name = $1", &[&extension])
                .await
                .unwrap()
                .get(0);
            if available == 0 {
                eprintln!("{history}: built by the gate's judgement only, extension {extension} is not installed");
                continue;
            }
        }
        builds_from_empty(&dir, &history).await;
    }
}
