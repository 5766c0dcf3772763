//! `check`, the pull request's gate (issue 25, docs/ci.md): each drizzle-kit team-workflow trap
//! found, named and explained on real drizzle-kit output (tests/fixtures/check/: two branches
//! generated from one base with the pinned drizzle-kits, merged as git merges them), `--base` as
//! a folder and as a git ref, GitHub annotations, and the real histories checking clean.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::*;

const FIXTURES: &str = "tests/fixtures/check";

fn check(folder: impl AsRef<Path>, extra: &[&str]) -> Run {
    run(cli()
        .arg("--migrations")
        .arg(repo_path("").join(folder.as_ref()))
        .arg("check")
        .args(extra))
}

/// `check --format json` of `<layout>/<name>` against `<layout>/main` (main after branch A).
fn against_main(layout: &str, name: &str) -> Value {
    let base = repo_path(FIXTURES).join(layout).join("main");
    let report = check(
        format!("{FIXTURES}/{layout}/{name}"),
        &["--base", base.to_str().unwrap(), "--format", "json"],
    )
    .expect(3)
    .report();
    assert_eq!(report["status"], "checkFailed");
    assert_eq!(error_type(&report), "CheckFailed");
    report
}

/// (trap, level, migration) of each trap found.
fn traps(report: &Value) -> Vec<(String, String, String)> {
    report["traps"]
        .as_array()
        .unwrap_or_else(|| panic!("no traps: {report}"))
        .iter()
        .map(|t| {
            (
                t["trap"].as_str().unwrap().to_string(),
                t["level"].as_str().unwrap().to_string(),
                t["migration"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn trap<'a>(report: &'a Value, name: &str, migration: &str) -> &'a Value {
    report["traps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["trap"] == name && t["migration"] == migration)
        .unwrap_or_else(|| panic!("no {name} on {migration}: {report}"))
}

fn lint_rules(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|f| {
                    (
                        f["rule"].as_str().unwrap().to_string(),
                        f["migration"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn s(a: &str, b: &str, c: &str) -> (String, String, String) {
    (a.into(), b.into(), c.into())
}

#[test]
fn two_branches_merged_with_both_journal_entries_collide_go_backwards_and_break_the_snapshot_chain() {
    let report = against_main("v0", "merged");
    assert_eq!(
        traps(&report),
        [
            s("duplicatePrefix", "error", "0001_add_nickname"),
            s("whenNotIncreasing", "error", "0001_add_nickname"),
            s("whenNotIncreasing", "error", "0002_add_bio"),
            s("snapshotBreak", "error", "0002_add_bio"),
        ]
    );
    // The branch merged last is the one to regenerate, with the command that does it.
    let collision = trap(&report, "duplicatePrefix", "0001_add_nickname");
    assert!(collision["message"].as_str().unwrap().contains("0001_add_lists"), "{collision}");
    let fix = collision["fix"].as_str().unwrap();
    assert!(
        fix.starts_with("regenerate 0001_add_nickname on its branch") && fix.contains("npx drizzle-kit generate"),
        "{fix}"
    );
    let skipped = trap(&report, "whenNotIncreasing", "0001_add_nickname")["message"].as_str().unwrap();
    assert!(skipped.contains("skips 0001_add_nickname forever"), "{skipped}");
    // Only what the branch adds is linted: its NOT NULL column, not main's new table.
    assert_eq!(report["newMigrations"], serde_json::json!(["0001_add_nickname", "0002_add_bio"]));
    assert_eq!(
        lint_rules(&report),
        [("not-null-column-without-default".to_string(), "0001_add_nickname".to_string())]
    );
}

#[test]
fn a_journal_conflict_resolved_with_one_side_leaves_files_no_entry_names() {
    let report = against_main("v0", "orphan");
    assert_eq!(
        traps(&report),
        [
            s("fileWithoutEntry", "error", "0001_add_nickname"),
            s("fileWithoutEntry", "error", "0002_add_bio")
        ]
    );
    assert!(trap(&report, "fileWithoutEntry", "0001_add_nickname")["message"]
        .as_str()
        .unwrap()
        .contains("never runs it"));
}

#[test]
fn a_merge_that_lost_a_file_leaves_an_entry_without_it() {
    let report = against_main("v0", "lost-file");
    let entry = trap(&report, "entryWithoutFile", "0001_add_nickname");
    assert_eq!(entry["file"], "0001_add_nickname.sql");
    assert!(entry["fix"].as_str().unwrap().contains("restore 0001_add_nickname.sql"), "{entry}");
}

#[test]
fn a_collision_fixed_by_renaming_instead_of_regenerating_forks_the_snapshot_chain() {
    let report = against_main("v0", "renamed");
    assert_eq!(traps(&report), [s("snapshotFork", "error", "0002_add_nickname")]);
    let fork = trap(&report, "snapshotFork", "0002_add_nickname");
    assert_eq!(fork["file"], "meta/0002_snapshot.json");
    assert!(fork["message"].as_str().unwrap().contains("0001_add_lists"), "{fork}");
}

#[test]
fn a_released_migration_edited_by_hand_is_found_at_the_changed_line() {
    let report = against_main("v0", "edited");
    assert_eq!(traps(&report), [s("releasedMigrationChanged", "error", "0000_init")]);
    let changed = trap(&report, "releasedMigrationChanged", "0000_init");
    assert_eq!(changed["file"], "0000_init.sql");
    assert!(changed["line"].as_u64().unwrap() > 1, "{changed}");
}

#[test]
fn drizzle_kit_1_0_branches_merged_sort_new_folders_before_a_released_one_and_fork() {
    let report = against_main("v1", "merged");
    let found: Vec<(String, String, String)> = traps(&report)
        .into_iter()
        .map(|(t, l, m)| (t, l, m[15..].to_string())) // without the folder's time
        .collect();
    assert_eq!(
        found,
        [
            s("whenNotIncreasing", "error", "add_nickname"),
            s("whenNotIncreasing", "error", "add_bio"),
            // drizzle-kit 1.0 combines unmerged branches itself: a warning, on the branch's folder.
            s("snapshotFork", "warning", "add_nickname"),
        ]
    );
    let rules = lint_rules(&report);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0].0, "not-null-column-without-default");
}

#[test]
fn drizzle_kit_1_0_a_migration_cherry_picked_without_its_parent_breaks_the_chain() {
    let report = against_main("v1", "cherry-picked");
    let broken = report["traps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["trap"] == "snapshotBreak")
        .unwrap_or_else(|| panic!("no snapshotBreak: {report}"));
    assert_eq!(broken["level"], "error");
    assert!(broken["file"].as_str().unwrap().ends_with("_add_bio/snapshot.json"), "{broken}");
    assert!(
        broken["message"].as_str().unwrap().contains("which no snapshot of the folder has"),
        "{broken}"
    );
}

#[test]
fn main_after_one_branch_checks_clean_against_its_base_in_both_layouts() {
    for layout in ["v0", "v1"] {
        let base = repo_path(FIXTURES).join(layout).join("base");
        let report = check(
            format!("{FIXTURES}/{layout}/main"),
            &["--base", base.to_str().unwrap(), "--format", "json"],
        )
        .expect(0)
        .report();
        assert_eq!(report["status"], "clean");
        assert_eq!(report["traps"], serde_json::json!([]));
        assert_eq!(report["newMigrations"].as_array().unwrap().len(), 1, "{report}");
    }
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=check",
            "-c",
            "user.email=check@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn base_as_a_git_ref_and_github_annotations_on_the_pull_request_lines() {
    let repo = tempfile::Builder::new().prefix("wm-check-").tempdir().unwrap();
    let folder = repo.path().join("drizzle");
    git(repo.path(), &["init", "-q", "-b", "main"]);
    copy_dir_into(&repo_path(FIXTURES).join("v0/main"), &folder);
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-q", "-m", "main"]);
    // The pull request's checkout: B merged into main, not committed (CI sees the merge commit).
    std::fs::remove_dir_all(&folder).unwrap();
    copy_dir_into(&repo_path(FIXTURES).join("v0/merged"), &folder);
    let annotated = run(cli()
        .current_dir(repo.path())
        .args(["--migrations", "drizzle", "check", "--base", "main", "--format", "github"]))
    .expect(3);
    let lines: Vec<&str> = annotated.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l
                .starts_with("::error file=drizzle/0001_add_nickname.sql,title=duplicatePrefix::0001_add_nickname shares the prefix 0001")),
        "{}",
        annotated.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("::error file=drizzle/0001_add_nickname.sql,line=1,col=32,title=not-null-column-without-default::")),
        "{}",
        annotated.stdout
    );
    assert!(lines.last().unwrap().starts_with("check refused"), "{}", annotated.stdout);
    // A ref the checkout lacks says how to fetch it.
    let missing = run(cli()
        .current_dir(repo.path())
        .args(["--json", "--migrations", "drizzle", "check", "--base", "origin/main"]))
    .expect(2);
    assert!(
        missing.report()["error"]["message"].as_str().unwrap().contains("fetch-depth: 0"),
        "{}",
        missing.stdout
    );
}

fn copy_dir_into(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir_into(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

#[test]
fn every_real_history_checks_clean_its_leftover_files_only_warned() {
    let mut folders = Vec::new();
    for root in ["tests/fixtures/real-world", "tests/fixtures/real-world-long"] {
        for entry in std::fs::read_dir(repo_path(root)).unwrap() {
            let path = entry.unwrap().path();
            if path.join("meta/_journal.json").exists() {
                folders.push(path);
            }
        }
    }
    assert!(folders.len() >= 10, "{folders:?}");
    for folder in folders {
        // Against itself as released too: nothing new, nothing changed.
        for extra in [&[][..], &["--base", folder.to_str().unwrap()][..]] {
            let report = check(&folder, &[&["--format", "json"][..], extra].concat()).expect(0).report();
            for t in report["traps"].as_array().unwrap() {
                assert_eq!(
                    (&t["trap"], &t["level"]),
                    (&Value::from("fileWithoutEntry"), &Value::from("warning")),
                    "{}: {t}",
                    folder.display()
                );
            }
        }
    }
}
