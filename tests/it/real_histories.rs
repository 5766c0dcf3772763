//! Real drizzle-kit histories (tests/fixtures/real-world/, each with its SOURCE.md) against the
//! real drizzle-orm `migrate()`: applied version by version, ours writes the ledger rows drizzle
//! writes; half by one and half by the other, in either order, leaves nothing pending for
//! either. Also the journal variations drizzle-orm accepts: dialect "pg" (drizzle-kit before
//! 2024, version 5) and every tag prefix drizzle-kit writes.

use std::path::Path;

use serde_json::Value;

use crate::harness::*;

const REAL_WORLD: &str = "tests/fixtures/real-world";

/// The catalog minus our own history table, which drizzle-orm does not create.
async fn shape(db: &TestDb) -> Vec<String> {
    catalog(db)
        .await
        .into_iter()
        .filter(|l| !l.contains("wishlist_migrator_history"))
        .collect()
}

fn journal_json(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("meta/_journal.json")).expect("read journal");
    serde_json::from_str(&text).expect("journal is JSON")
}

/// Keeps the first `keep` entries of a copied folder's journal, every other field as it was
/// (dialect and versions included).
fn truncate_journal(dir: &Path, keep: usize) {
    let mut journal = journal_json(dir);
    journal["entries"].as_array_mut().expect("entries").truncate(keep);
    std::fs::write(dir.join("meta/_journal.json"), serde_json::to_string_pretty(&journal).unwrap()).unwrap();
}

fn tags_of(dir: &Path) -> Vec<String> {
    journal(dir).into_iter().map(|(tag, _)| tag).collect()
}

/// `migrate --to <tag>` for each tag in turn: each run applies exactly that migration and the
/// ledger grows by drizzle's row for it; then drizzle-orm on a fresh database writes the same
/// rows and builds the same schema.
/// A real team's history drops and renames columns along the way: applied here a version at a
/// time with the lint gate off (`LINT_GATE=false`), as when an environment is rebuilt from an
/// old history. The policy itself is tested in lint.rs, on these histories too.
fn ungated(url: &str, rel: impl AsRef<Path>, args: &[&str]) -> std::process::Command {
    let mut cmd = wm(url, rel, args);
    cmd.env("LINT_GATE", "false");
    cmd
}

async fn version_by_version_matches_drizzle(rel: &str) {
    let dir = repo_path(rel);
    let expected = expected_ledger(&dir);
    let journal_tags = tags_of(&dir);
    assert!(!journal_tags.is_empty(), "{rel}: empty journal");

    let ours = pg().fresh_db().await;
    for (i, tag) in journal_tags.iter().enumerate() {
        let report = run(&mut ungated(&ours.url, rel, &["migrate", "--to", tag])).expect(0).report();
        assert_eq!(
            tags(&report["applied"]),
            std::slice::from_ref(tag),
            "{rel}: migrate --to {tag}: {report}"
        );
        assert_eq!(ledger(&ours).await, expected[..=i], "{rel}: ledger after {tag}");
    }
    let status = run(&mut wm(&ours.url, rel, &["status"])).expect(0).report();
    assert_eq!(status["status"], "upToDate", "{rel}: {status}");

    let theirs = pg().fresh_db().await;
    let peer = drizzle_peer(&theirs.url, rel, &[]);
    assert_eq!(peer.code, 0, "{rel}: drizzle-orm failed:\n{}", peer.stderr);
    assert_eq!(ledger(&theirs).await, ledger(&ours).await, "{rel}: drizzle-orm's ledger rows");
    assert_eq!(shape(&ours).await, shape(&theirs).await, "{rel}: schema");
}

/// drizzle-orm applies the first half, ours the rest, and drizzle-orm then finds nothing to do;
/// and the other way round: ours the first half, drizzle-orm the rest, ours nothing.
async fn half_and_half_in_both_orders(rel: &str) {
    let dir = repo_path(rel);
    let expected = expected_ledger(&dir);
    let journal_tags = tags_of(&dir);
    let half = (journal_tags.len() / 2).max(1);
    assert!(half < journal_tags.len(), "{rel}: needs at least two migrations");

    // drizzle-orm first.
    let db = pg().fresh_db().await;
    let first_half = copy_fixture(rel);
    truncate_journal(first_half.path(), half);
    let peer = drizzle_peer(&db.url, first_half.path(), &[]);
    assert_eq!(peer.code, 0, "{rel}: drizzle-orm, first half:\n{}", peer.stderr);
    assert_eq!(ledger(&db).await, expected[..half], "{rel}");
    let status = run(&mut wm(&db.url, rel, &["status"])).expect(0).report();
    assert_eq!(status["current"], journal_tags[half - 1], "{rel}: {status}");
    assert_eq!(tags(&status["pending"]), journal_tags[half..], "{rel}: {status}");
    let report = run(&mut ungated(&db.url, rel, &["migrate"])).expect(0).report();
    assert_eq!(tags(&report["applied"]), journal_tags[half..], "{rel}: {report}");
    assert_eq!(ledger(&db).await, expected, "{rel}");
    let before = catalog(&db).await;
    let peer = drizzle_peer(&db.url, rel, &[]);
    assert_eq!(peer.code, 0, "{rel}: drizzle-orm after us:\n{}", peer.stderr);
    assert_eq!(ledger(&db).await, expected, "{rel}: drizzle-orm must not re-apply");
    assert_eq!(catalog(&db).await, before, "{rel}");

    // Ours first.
    let db = pg().fresh_db().await;
    let report = run(&mut ungated(&db.url, rel, &["migrate", "--to", &journal_tags[half - 1]]))
        .expect(0)
        .report();
    assert_eq!(tags(&report["applied"]), journal_tags[..half], "{rel}: {report}");
    let peer = drizzle_peer(&db.url, rel, &[]);
    assert_eq!(peer.code, 0, "{rel}: drizzle-orm, second half:\n{}", peer.stderr);
    assert_eq!(ledger(&db).await, expected, "{rel}: drizzle-orm applied the rest");
    let status = run(&mut wm(&db.url, rel, &["status"])).expect(0).report();
    assert_eq!(status["status"], "upToDate", "{rel}: {status}");
    let report = run(&mut ungated(&db.url, rel, &["migrate"])).expect(0).report();
    assert_eq!(report["status"], "upToDate", "{rel}: {report}");
    assert_eq!(ledger(&db).await, expected, "{rel}");
}

macro_rules! real_history {
    ($name:ident, $folder:literal) => {
        mod $name {
            #[tokio::test]
            async fn version_by_version_matches_drizzle() {
                super::version_by_version_matches_drizzle(concat!("tests/fixtures/real-world/", $folder)).await;
            }

            #[tokio::test]
            async fn half_and_half_in_both_orders() {
                super::half_and_half_in_both_orders(concat!("tests/fixtures/real-world/", $folder)).await;
            }
        }
    };
}

real_history!(ai_chatbot, "ai-chatbot");
real_history!(better_chatbot, "better-chatbot");
real_history!(dittofeed, "dittofeed");
real_history!(drizzle_orm_pg_v5, "drizzle-orm-pg-v5");
real_history!(homarr, "homarr");
real_history!(morphic, "morphic");
real_history!(zero, "zero");

#[test]
fn every_real_world_history_is_covered_above_and_has_its_source() {
    let covered = [
        "ai-chatbot",
        "better-chatbot",
        "dittofeed",
        "drizzle-orm-pg-v5",
        "homarr",
        "morphic",
        "zero",
    ];
    assert_eq!(
        folders_with_journal(REAL_WORLD, ""),
        covered,
        "a new history in {REAL_WORLD} needs its real_history! line"
    );
    for name in covered {
        let source = std::fs::read_to_string(repo_path(REAL_WORLD).join(name).join("SOURCE.md"))
            .unwrap_or_else(|e| panic!("{name}: SOURCE.md: {e}"));
        assert!(source.contains("commit") && source.contains("migrations"), "{name}: {source}");
    }
}

/// The old history really is an old journal, so the tests above cover dialect "pg"; and
/// status and plan (which never read snapshots) work on it with its version 5 snapshot.
#[tokio::test]
async fn a_pg_dialect_version_5_journal_is_read_by_status_plan_and_migrate() {
    let rel = "tests/fixtures/real-world/drizzle-orm-pg-v5";
    let dir = repo_path(rel);
    let journal = journal_json(&dir);
    assert_eq!(journal["dialect"], "pg");
    assert_eq!(journal["version"], "5");
    let snapshot: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("meta/0000_snapshot.json")).unwrap()).unwrap();
    assert_eq!(snapshot["version"], "5");

    let db = pg().fresh_db().await;
    let status = run(&mut wm(&db.url, rel, &["status"])).expect(0).report();
    assert_eq!(tags(&status["pending"]), tags_of(&dir), "{status}");
    let plan = run(&mut wm(&db.url, rel, &["plan"])).expect(0).report();
    assert_eq!(plan["status"], "planned", "{plan}");
    let report = run(&mut ungated(&db.url, rel, &["migrate"])).expect(0).report();
    assert_eq!(tags(&report["applied"]), tags_of(&dir), "{report}");
    assert_eq!(ledger(&db).await, expected_ledger(&dir));
}

/// A copy of `rel` whose journal says `dialect`/`version` and whose tags (and .sql files) carry
/// the prefix `prefix(idx, when)` instead of their own, as drizzle-kit's `migrations.prefix`
/// modes name them; the files' bytes, and so drizzle's hashes, are unchanged.
fn rewritten(rel: &str, dialect: &str, version: &str, prefix: impl Fn(usize, i64) -> String) -> tempfile::TempDir {
    let copy = copy_fixture(rel);
    let dir = copy.path();
    let mut journal = journal_json(dir);
    journal["dialect"] = dialect.into();
    journal["version"] = version.into();
    for (idx, entry) in journal["entries"].as_array_mut().unwrap().iter_mut().enumerate() {
        let tag = entry["tag"].as_str().unwrap().to_string();
        let name = tag.split_once('_').map(|(_, name)| name).unwrap_or(&tag);
        let new_tag = format!("{}_{name}", prefix(idx, entry["when"].as_i64().unwrap()));
        std::fs::rename(dir.join(format!("{tag}.sql")), dir.join(format!("{new_tag}.sql"))).unwrap();
        entry["tag"] = new_tag.into();
        entry["version"] = version.into();
    }
    std::fs::write(dir.join("meta/_journal.json"), serde_json::to_string_pretty(&journal).unwrap()).unwrap();
    copy
}

/// UTC `YYYYMMDDhhmmss` of epoch milliseconds, as drizzle-kit's `timestamp` prefix prints it.
fn timestamp_prefix(when_ms: i64) -> String {
    let secs = when_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// homarr's real history under every journal variation drizzle-orm accepts: ours applies it,
/// writes drizzle's ledger rows, and drizzle-orm run afterwards finds nothing to do (and on a
/// fresh database builds the same schema).
#[tokio::test]
async fn every_dialect_spelling_and_tag_prefix_applies_and_drizzle_agrees() {
    let rel = "tests/fixtures/real-world/homarr";
    let reference = expected_ledger(&repo_path(rel));
    assert_eq!(timestamp_prefix(1_704_110_400_000), "20240101120000");
    let variants: Vec<(&str, tempfile::TempDir)> = vec![
        ("pg, version 5, index", rewritten(rel, "pg", "5", |i, _| format!("{i:04}"))),
        ("pg, version 6, index", rewritten(rel, "pg", "6", |i, _| format!("{i:04}"))),
        ("timestamp", rewritten(rel, "postgresql", "7", |_, w| timestamp_prefix(w))),
        ("unix", rewritten(rel, "postgresql", "7", |_, w| (w / 1000).to_string())),
        ("none", rewritten(rel, "postgresql", "7", |_, _| String::new())),
    ];
    for (what, copy) in &variants {
        let dir = copy.path();
        let expected = expected_ledger(dir);
        assert_eq!(expected, reference, "{what}: same files, same rows");
        let journal_tags = tags_of(dir);

        let ours = pg().fresh_db().await;
        let report = run(&mut wm(&ours.url, dir, &["migrate"])).expect(0).report();
        assert_eq!(tags(&report["applied"]), journal_tags, "{what}: {report}");
        assert_eq!(ledger(&ours).await, expected, "{what}");
        let before = catalog(&ours).await;
        let peer = drizzle_peer(&ours.url, dir, &[]);
        assert_eq!(peer.code, 0, "{what}: drizzle-orm after us:\n{}", peer.stderr);
        assert_eq!(ledger(&ours).await, expected, "{what}: drizzle-orm must not re-apply");
        assert_eq!(catalog(&ours).await, before, "{what}");

        let theirs = pg().fresh_db().await;
        let peer = drizzle_peer(&theirs.url, dir, &[]);
        assert_eq!(peer.code, 0, "{what}: drizzle-orm:\n{}", peer.stderr);
        assert_eq!(ledger(&theirs).await, expected, "{what}");
        assert_eq!(shape(&theirs).await, shape(&ours).await, "{what}");
        let status = run(&mut wm(&theirs.url, dir, &["status"])).expect(0).report();
        assert_eq!(status["status"], "upToDate", "{what}: {status}");
    }
}
