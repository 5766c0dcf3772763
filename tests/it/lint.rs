//! The lint gate (docs/schema-evolution.md): every rule on its fixture and its safe alternative,
//! waivers, the live-table escalation on a real table with rows, `plan` and `migrate` refusing
//! before they apply anything, `commit-after` segments, the real histories, and squawk on the
//! same files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::harness::*;

const FLAGGED: &str = "tests/fixtures/lint/flagged";
const SAFE: &str = "tests/fixtures/lint/safe";

/// `lint` without a database: a CLI with no database settings at all.
fn lint_offline(folder: impl AsRef<Path>, extra: &[&str]) -> Run {
    run(cli()
        .arg("--json")
        .arg("--migrations")
        .arg(repo_path("").join(folder.as_ref()))
        .arg("lint")
        .args(extra))
}

fn findings(report: &Value) -> Vec<Value> {
    report["findings"].as_array().cloned().unwrap_or_default()
}

/// migration tag -> the rule ids found in it.
fn rules_by_migration(report: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in findings(report) {
        by.entry(f["migration"].as_str().unwrap().into())
            .or_default()
            .insert(f["rule"].as_str().unwrap().into());
    }
    by
}

#[test]
fn every_rule_flags_its_fixture_and_names_the_place() {
    let report = lint_offline(FLAGGED, &[]).expect(3).report();
    assert_eq!(report["status"], "lintFailed");
    assert_eq!(error_type(&report), "LintFailed");
    let by = rules_by_migration(&report);
    for (tag, _) in journal(&repo_path(FLAGGED)).into_iter().skip(1) {
        // 0005_not_null_column_without_default -> not-null-column-without-default
        let named = tag[5..].replace('_', "-");
        let expected = if named == "check-without-not-valid" {
            "constraint-without-not-valid".to_string()
        } else {
            named
        };
        let found = by.get(&tag).cloned().unwrap_or_default();
        let mut want = BTreeSet::from([expected.clone()]);
        if tag == "0006_enum_value_removed" {
            // drizzle-kit's removal casts the column to text and back: two rewrites, rightly.
            want.insert("column-type-rewrite".into());
        }
        assert_eq!(found, want, "{tag}");
    }
    assert!(!by.contains_key("0000_tables"), "a new table's own statements are clean: {by:?}");
    let drop = findings(&report).into_iter().find(|f| f["rule"] == "drop-column").unwrap();
    assert_eq!(drop["file"], "0002_drop_column.sql");
    assert_eq!((drop["line"].as_u64(), drop["column"].as_u64()), (Some(1), Some(13)));
    assert_eq!(drop["level"], "error");
    assert!(
        drop["excerpt"]
            .as_str()
            .unwrap()
            .starts_with("ALTER TABLE \"wishlist_items\" DROP COLUMN \"note\""),
        "{drop}"
    );
    assert!(drop["alternative"].as_str().unwrap().contains("expand/contract"), "{drop}");
}

#[test]
fn the_safe_alternatives_lint_clean() {
    let report = lint_offline(SAFE, &[]).expect(0).report();
    assert_eq!(report["status"], "clean");
    assert_eq!(findings(&report), Vec::<Value>::new());
    assert_eq!(report["linted"].as_array().unwrap().len(), journal(&repo_path(SAFE)).len());
}

#[test]
fn the_projects_own_migrations_have_no_blocking_finding() {
    let report = lint_offline("migrations", &[]).expect(0).report();
    assert_eq!(report["status"], "clean");
    // WISH-2007 as written rewrites wishlist_items (BENCHMARKS.md part 5): warnings here, an
    // error against a large live table.
    let rules: BTreeSet<String> = findings(&report).iter().map(|f| f["rule"].as_str().unwrap().to_string()).collect();
    assert!(rules.contains("column-type-rewrite"), "{rules:?}");
    assert!(findings(&report)
        .iter()
        .all(|f| f["level"] == "warning" && f["migration"] == TAG_0001));
}

#[test]
fn since_lints_only_the_later_migrations_and_an_unknown_tag_is_named() {
    let report = lint_offline(FLAGGED, &["--since", "0010_non_transactional_mixed"])
        .expect(0)
        .report();
    let linted = report["linted"].as_array().unwrap();
    assert_eq!(linted[0], "0011_index_without_concurrently");
    assert!(findings(&report).iter().all(|f| f["level"] == "warning"), "{report}");
    let unknown = lint_offline(FLAGGED, &["--since", "0099_nope"]).expect(2).report();
    assert_eq!(error_type(&unknown), "InvalidRequest");
    assert!(unknown["error"]["message"].as_str().unwrap().contains("0099_nope"));
}

#[test]
fn waivers_need_a_reason_and_allow_only_their_statement() {
    let dir = copy_fixture(FLAGGED);
    std::fs::write(
        dir.path().join("0002_drop_column.sql"),
        "-- wishlist-migrator: allow drop-column -- note unused since release 41 (WISH-2100)\nALTER TABLE \"wishlist_items\" DROP COLUMN \"note\";\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("0001_drop_table.sql"),
        "-- wishlist-migrator: allow drop-table\nDROP TABLE \"legacy_notes\";\n",
    )
    .unwrap();
    let report = lint_offline(dir.path(), &[]).expect(3).report();
    let all = findings(&report);
    let waived = all.iter().find(|f| f["migration"] == "0002_drop_column").unwrap();
    assert_eq!(waived["waived"], "note unused since release 41 (WISH-2100)");
    let in_0001: BTreeSet<&str> = all
        .iter()
        .filter(|f| f["migration"] == "0001_drop_table")
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(in_0001, BTreeSet::from(["drop-table", "waiver-without-reason"]));
    assert!(all
        .iter()
        .filter(|f| f["migration"] == "0001_drop_table")
        .all(|f| f["waived"].is_null()));
}

#[tokio::test]
async fn on_a_fresh_database_nothing_about_tables_the_run_creates_is_reported() {
    // The whole history is pending: its tables and enums are new, so nothing runs against them
    // and they are empty; only what is wrong whatever the data remains.
    let db = pg().fresh_db().await;
    let plan = run(&mut wm(&db.url, FLAGGED, &["plan"])).expect(0).report();
    let rules: BTreeSet<String> = findings(&plan).iter().map(|f| f["rule"].as_str().unwrap().to_string()).collect();
    assert_eq!(
        rules,
        BTreeSet::from(["non-transactional-mixed".to_string(), "lock-timeout-overridden".into()])
    );
}

#[tokio::test]
async fn migrate_refuses_before_it_applies_anything_and_plan_lists_the_findings() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, FLAGGED, &["migrate", "--to", "0000_tables"])).expect(0);
    let before = catalog(&db).await;
    let plan = run(&mut wm(&db.url, FLAGGED, &["plan"])).expect(0).report();
    assert_eq!(plan["status"], "planned");
    let rules: BTreeSet<String> = findings(&plan).iter().map(|f| f["rule"].as_str().unwrap().to_string()).collect();
    assert!(rules.contains("drop-table") && rules.contains("enum-value-renamed"), "{rules:?}");
    // Scans and rewrites of the (empty) live tables stay warnings, with their estimate.
    let index = findings(&plan)
        .into_iter()
        .find(|f| f["rule"] == "index-without-concurrently")
        .unwrap();
    assert_eq!(index["level"], "warning");
    assert_eq!(index["estimatedRows"], 0);
    assert!(plan["warnings"].to_string().contains("migrate would refuse"), "{plan}");
    let refused = run(&mut wm(&db.url, FLAGGED, &["migrate"])).expect(3).report();
    assert_eq!(refused["status"], "lintFailed");
    assert_eq!(error_type(&refused), "LintFailed");
    assert_eq!(refused["error"]["migration"], "0001_drop_table");
    assert_eq!(refused["applied"], serde_json::json!([]));
    assert_eq!(ledger(&db).await.len(), 1, "only 0000, applied before");
    assert_eq!(catalog(&db).await, before, "nothing of the pending migrations was applied");
}

#[tokio::test]
async fn commit_after_ends_a_segment_and_the_safe_folder_migrates() {
    let db = pg().fresh_db().await;
    let report = run(&mut wm(&db.url, SAFE, &["migrate"])).expect(0).report();
    assert_eq!(report["status"], "applied");
    let segments: Vec<Vec<String>> = report["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["migrations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    let reasons = report["segments"].to_string();
    assert!(
        reasons.contains("commits after 0009_foreign_key_not_valid, as its commit-after marker asks"),
        "{reasons}"
    );
    let t = |tags: &[&str]| tags.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        segments,
        [
            // An enum value addition commits before anything can use it.
            t(&[
                "0000_tables",
                "0001_expand_new_column",
                "0002_nullable_column",
                "0003_column_with_constant_default",
                "0004_enum_value_added"
            ]),
            t(&["0005_enum_value_used_later"]),
            t(&["0006_index_concurrently"]),
            t(&["0007_unique_index_concurrently"]),
            // commit-after: the NOT VALID constraint commits before it is validated.
            t(&["0008_unique_using_index", "0009_foreign_key_not_valid"]),
            t(&["0010_foreign_key_validate", "0011_store_check_not_valid"]),
            t(&[
                "0012_store_check_validate",
                "0013_name_widened",
                "0014_timestamp_now_default",
                "0015_set_default"
            ]),
        ]
    );
}

/// `wishlist_items` at `0000_tables` holding `rows` rows, analyzed.
async fn items_with_rows(rows: u32) -> (TestDb, tempfile::TempDir) {
    let db = pg().fresh_db().await;
    let dir = copy_fixture(FLAGGED);
    rewrite_journal(
        dir.path(),
        &[
            ("0000_tables", 1_764_547_200_000),
            ("0011_index_without_concurrently", 1_764_547_260_000),
        ],
    );
    run(&mut wm(&db.url, dir.path(), &["migrate", "--to", "0000_tables"])).expect(0);
    let client = db.client().await;
    client
        .batch_execute(&format!(
            "INSERT INTO users (email) VALUES ('a@example.com');
             INSERT INTO wishlist_items (user_id, name, store) SELECT 1, 'item ' || g, 'LEGO' FROM generate_series(1, {rows}) g;
             ANALYZE wishlist_items;"
        ))
        .await
        .unwrap();
    (db, dir)
}

#[tokio::test]
async fn a_large_live_table_makes_a_plain_index_build_an_error_with_its_estimate() {
    let (db, dir) = items_with_rows(150_000).await;
    let report = run(&mut wm(&db.url, dir.path(), &["lint"])).expect(3).report();
    assert_eq!(
        report["linted"],
        serde_json::json!(["0011_index_without_concurrently"]),
        "only the pending one"
    );
    let f = &findings(&report)[0];
    assert_eq!(f["rule"], "index-without-concurrently");
    assert_eq!(f["level"], "error");
    let rows = f["estimatedRows"].as_u64().unwrap();
    assert!((120_000..=180_000).contains(&rows), "the planner's estimate: {f}");
    assert!(f["tableBytes"].as_u64().unwrap() > 1 << 20, "{f}");
    assert!(f["blocksWritesMs"].is_u64(), "{f}");

    let refused = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(3).report();
    assert_eq!(error_type(&refused), "LintFailed");
    assert_eq!(ledger(&db).await.len(), 1, "nothing applied");
    // A higher threshold, or an allowance for this run, lets it through.
    run(&mut wm(&db.url, dir.path(), &["lint", "--large-table-rows", "1000000"])).expect(0);
    let allowed = run(&mut wm(
        &db.url,
        dir.path(),
        &[
            "migrate",
            "--allow-finding",
            "0011_index_without_concurrently:index-without-concurrently",
        ],
    ))
    .expect(0)
    .report();
    assert_eq!(allowed["status"], "applied");
    assert!(findings(&allowed)[0]["waived"].as_str().unwrap().contains("allowed for this run"));
}

#[tokio::test]
async fn a_small_live_table_keeps_the_index_build_a_warning() {
    let (db, dir) = items_with_rows(2_000).await;
    let report = run(&mut wm(&db.url, dir.path(), &["lint"])).expect(0).report();
    let f = &findings(&report)[0];
    assert_eq!(f["level"], "warning");
    assert!(f["estimatedRows"].as_u64().unwrap() < 100_000, "{f}");
    let human = run(cli().env("DATABASE_URL", &db.url).arg("--migrations").arg(dir.path()).arg("lint")).expect(0);
    assert!(human.stdout.contains("warning[index-without-concurrently]"), "{}", human.stdout);
    assert!(human.stdout.contains("live table: ~"), "{}", human.stdout);
    run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0);
}

#[test]
fn lint_reads_every_real_history_without_a_parse_error() {
    let root = repo_path("tests/fixtures/real-world");
    let long = repo_path("tests/fixtures/real-world-long");
    let mut seen = 0;
    let entries = std::fs::read_dir(&root).unwrap().chain(std::fs::read_dir(&long).unwrap());
    for entry in entries {
        let history = entry.unwrap().path();
        let Some(folder) = migrations_folder(&history) else { continue };
        seen += 1;
        let run = lint_offline(&folder, &[]);
        assert!(run.code == 0 || run.code == 3, "{}: {}", folder.display(), run.stderr);
        let report = run.report();
        for f in findings(&report) {
            assert_ne!(f["rule"], "unparsable-statement", "{}: {f}", folder.display());
            let file = std::fs::read_to_string(folder.join(f["file"].as_str().unwrap())).unwrap();
            assert!(f["line"].as_u64().unwrap() as usize <= file.lines().count(), "{f}");
        }
    }
    assert!(seen >= 10, "{seen} histories");
    // Sensible on files nobody here wrote: homarr's 0003_remove_salt drops apiKey.salt.
    let homarr = migrations_folder(&root.join("homarr")).unwrap();
    let report = lint_offline(&homarr, &[]).report();
    assert!(
        findings(&report).iter().any(|f| f["rule"] == "drop-column"
            && f["migration"] == "0003_remove_salt"
            && f["message"].as_str().unwrap().contains("\"salt\"")),
        "{report}"
    );
}

fn migrations_folder(history: &Path) -> Option<std::path::PathBuf> {
    walk(history)
        .into_iter()
        .find(|p| p.ends_with("meta/_journal.json"))
        .map(|p| p.parent().unwrap().parent().unwrap().to_path_buf())
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Our rule -> squawk's, for the rules both tools have.
const SHARED_RULES: [(&str, &str); 13] = [
    ("drop-table", "ban-drop-table"),
    ("drop-column", "ban-drop-column"),
    ("rename-table", "renaming-table"),
    ("rename-column", "renaming-column"),
    ("not-null-column-without-default", "adding-required-field"),
    ("enum-type-dropped", "ban-drop-type"),
    ("enum-value-removed", "ban-drop-type"),
    ("index-without-concurrently", "require-concurrent-index-creation"),
    ("constraint-builds-index", "disallowed-unique-constraint"),
    ("constraint-without-not-valid", "constraint-missing-not-valid"),
    ("set-not-null", "adding-not-nullable-field"),
    ("column-type-rewrite", "changing-column-type"),
    ("volatile-default", "adding-field-with-default"),
];

/// Where the two disagree on these fixtures, and why (docs/schema-evolution.md): (file, squawk
/// rule, which side flags it).
const KNOWN_DIFFERENCES: [(&str, &str, &str); 2] = [
    // Postgres cannot add a UNIQUE constraint NOT VALID; squawk asks for it anyway.
    ("0012_constraint_builds_index.sql", "constraint-missing-not-valid", "squawk"),
    // varchar(200) to varchar(500) keeps every row as it is: no rewrite, no lock held long.
    ("0013_name_widened.sql", "changing-column-type", "squawk"),
];

#[test]
fn squawk_flags_the_same_statements_for_every_rule_both_have() {
    let squawk = which("squawk").expect("squawk on PATH (make bootstrap installs squawk-cli into .venv)");
    let mut differences = BTreeSet::new();
    for folder in [FLAGGED, SAFE] {
        let ours = rules_by_migration(&lint_offline(folder, &[]).report());
        for (tag, _) in journal(&repo_path(folder)) {
            let file = format!("{tag}.sql");
            let out = std::process::Command::new(&squawk)
                .args(["--reporter", "json"])
                .arg(repo_path(folder).join(&file))
                .output()
                .expect("run squawk");
            let theirs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("squawk on {file}: {e}"));
            let theirs: BTreeSet<&str> = theirs.iter().filter_map(|v| v["rule_name"].as_str()).collect();
            let mine = ours.get(&tag).cloned().unwrap_or_default();
            for squawk_rule in SHARED_RULES.iter().map(|(_, s)| *s).collect::<BTreeSet<_>>() {
                let ours_flags = SHARED_RULES.iter().any(|(o, s)| *s == squawk_rule && mine.contains(*o));
                let squawk_flags = theirs.contains(squawk_rule);
                if ours_flags != squawk_flags {
                    let side = if squawk_flags { "squawk" } else { "ours" };
                    differences.insert((file.clone(), squawk_rule.to_string(), side.to_string()));
                }
            }
        }
    }
    let known: BTreeSet<(String, String, String)> = KNOWN_DIFFERENCES
        .iter()
        .map(|(f, r, s)| (f.to_string(), r.to_string(), s.to_string()))
        .collect();
    assert_eq!(differences, known, "squawk and this lint disagree somewhere new");
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(tool))
        .chain(std::iter::once(repo_path(".venv/bin").join(tool)))
        .find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lambda_lints_its_pending_migrations_against_its_database() {
    use crate::harness::stack::{response, Stack};
    let stack = Stack::new().await;
    let lambda = stack.start(&[]);
    let report = response(lambda.invoke(serde_json::json!({"action": "lint"})), "lint");
    assert_eq!(report["status"], "clean");
    // Both embedded migrations are pending; 0001's rewrite is of a table 0000 creates in the same
    // run (empty), so nothing is reported.
    assert_eq!(report["linted"], serde_json::json!([TAG_0000, TAG_0001]));
    assert_eq!(findings(&report), Vec::<Value>::new());
    response(lambda.invoke(serde_json::json!({"action": "migrate"})), "migrate");
    let after = response(lambda.invoke(serde_json::json!({"action": "lint"})), "lint");
    assert_eq!(after["linted"], serde_json::json!([]));
}
