//! A table of malformed migration folders, each with the error a user gets (or, where drizzle-orm
//! accepts the input, proof that ours applies it with the same ledger rows): the journal broken in
//! every way seen in the wild, SQL files that are not UTF-8, carry a byte-order mark, use CRLF, are
//! empty or weigh 50 MB.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::*;

fn write_journal(dir: &Path, journal: &Value) {
    std::fs::write(dir.join("meta/_journal.json"), journal.to_string()).unwrap();
}

/// The project's journal as JSON, for a case to break.
fn journal_json(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("meta/_journal.json")).unwrap()).unwrap()
}

struct Refused {
    case: &'static str,
    /// Breaks a copy of the project's migrations.
    breaks: fn(&Path),
    /// What the error message must name.
    names: &'static [&'static str],
}

const REFUSED: &[Refused] = &[
    Refused {
        case: "journal not JSON",
        breaks: |d| std::fs::write(d.join("meta/_journal.json"), "{\"entries\": [").unwrap(),
        names: &["_journal.json", "EOF"],
    },
    Refused {
        case: "journal without entries",
        breaks: |d| write_journal(d, &json!({"version": "7", "dialect": "postgresql"})),
        names: &["_journal.json", "missing field `entries`"],
    },
    Refused {
        case: "entry without a tag",
        breaks: |d| {
            let mut j = journal_json(d);
            j["entries"][1].as_object_mut().unwrap().remove("tag");
            write_journal(d, &j);
        },
        names: &["_journal.json", "missing field `tag`"],
    },
    Refused {
        case: "when as a string",
        breaks: |d| {
            let mut j = journal_json(d);
            j["entries"][1]["when"] = json!("1732000000000");
            write_journal(d, &j);
        },
        names: &["_journal.json", "invalid type: string"],
    },
    Refused {
        case: "when 1e300",
        breaks: |d| {
            let mut j = journal_json(d);
            j["entries"][1]["when"] = json!(1e300);
            write_journal(d, &j);
        },
        names: &["_journal.json", "invalid type: floating point"],
    },
    Refused {
        case: "duplicate tags",
        breaks: |d| {
            let mut j = journal_json(d);
            j["entries"][1]["tag"] = j["entries"][0]["tag"].clone();
            j["entries"][1]["when"] = json!(j["entries"][0]["when"].as_i64().unwrap() + 1);
            write_journal(d, &j);
        },
        names: &[TAG_0000, "twice"],
    },
    Refused {
        case: "empty tag",
        breaks: |d| {
            let mut j = journal_json(d);
            j["entries"][1]["tag"] = json!("");
            write_journal(d, &j);
        },
        names: &["entry 1", "is empty"],
    },
    Refused {
        case: "SQL that is not UTF-8",
        breaks: |d| {
            let path = d.join(format!("{TAG_0001}.sql"));
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend_from_slice(b"\n-- caf\xe9 (Latin-1)\n");
            std::fs::write(path, bytes).unwrap();
        },
        names: &[TAG_0001, "not valid UTF-8 at line"],
    },
    Refused {
        case: "SQL starting with a byte-order mark",
        breaks: |d| {
            let path = d.join(format!("{TAG_0001}.sql"));
            let mut bytes = b"\xef\xbb\xbf".to_vec();
            bytes.extend(std::fs::read(&path).unwrap());
            std::fs::write(path, bytes).unwrap();
        },
        names: &[TAG_0001, "byte-order mark"],
    },
];

#[tokio::test]
async fn each_malformed_folder_is_refused_naming_what_is_wrong_and_nothing_is_applied() {
    let db = pg().fresh_db().await;
    for case in REFUSED {
        let dir = copy_fixture("migrations");
        (case.breaks)(dir.path());
        for command in ["status", "migrate"] {
            let out = run(&mut wm(&db.url, dir.path(), &[command])).expect(3);
            let report = out.report();
            assert_eq!(error_type(&report), "InvalidMigrations", "{}: {report}", case.case);
            let message = report["error"]["message"].as_str().unwrap();
            for name in case.names {
                assert!(message.contains(name), "{}: the message should name {name:?}: {message}", case.case);
            }
        }
        assert!(ledger(&db).await.is_empty(), "{}: nothing applied", case.case);
        assert!(!db.table_exists("public.wishlist_items").await, "{}", case.case);
    }
}

/// Ours applies `dir`, drizzle-orm applies it to another database, and both ledgers hold
/// sha256 of the files exactly as they are on disk.
async fn applied_like_drizzle(dir: &Path) {
    let ours = pg().fresh_db().await;
    run(&mut wm(&ours.url, dir, &["migrate"])).expect(0);
    let theirs = pg().fresh_db().await;
    let peer = drizzle_peer(&theirs.url, dir, &[]);
    assert_eq!(peer.code, 0, "drizzle-orm failed:\n{}", peer.stderr);
    assert_eq!(ledger(&ours).await, ledger(&theirs).await, "the same ledger rows as drizzle-orm");
    assert_eq!(ledger(&ours).await, expected_ledger(dir), "sha256 of the bytes on disk");
}

#[tokio::test]
async fn crlf_files_apply_with_the_hash_drizzle_computes() {
    let dir = copy_fixture("migrations");
    for (tag, _) in journal(dir.path()) {
        let path = dir.path().join(format!("{tag}.sql"));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\r\n", "\n").replace('\n', "\r\n")).unwrap();
    }
    applied_like_drizzle(dir.path()).await;
}

#[tokio::test]
async fn an_empty_migration_file_applies_and_is_recorded_like_drizzle() {
    let dir = copy_fixture("migrations");
    let mut entries = journal(dir.path());
    entries.push(("0002_empty".into(), entries.last().unwrap().1 + 1));
    std::fs::write(dir.path().join("0002_empty.sql"), "").unwrap();
    let refs: Vec<(&str, i64)> = entries.iter().map(|(t, w)| (t.as_str(), *w)).collect();
    rewrite_journal(dir.path(), &refs);
    applied_like_drizzle(dir.path()).await;
}

#[tokio::test]
async fn a_fifty_megabyte_migration_is_read_split_hashed_and_applied() {
    let db = pg().fresh_db().await;
    let dir = copy_fixture("migrations");
    let mut entries = journal(dir.path());
    entries.push(("0002_large".into(), entries.last().unwrap().1 + 1));
    // A generated seed file's size: one statement, 50 MB of comment, a second statement.
    let mut sql = String::from("CREATE TABLE \"large_before\" (\"id\" integer);\n--> statement-breakpoint\n/* ");
    sql.push_str(&"0123456789abcdef".repeat(50 * 1024 * 1024 / 16));
    sql.push_str(" */\nCREATE TABLE \"large_after\" (\"id\" integer);\n");
    std::fs::write(dir.path().join("0002_large.sql"), &sql).unwrap();
    let refs: Vec<(&str, i64)> = entries.iter().map(|(t, w)| (t.as_str(), *w)).collect();
    rewrite_journal(dir.path(), &refs);

    let started = Instant::now();
    let out = run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0);
    // A liveness bound (a quadratic splitter would take minutes), not a performance figure.
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    assert_eq!(tags(&out.report()["applied"]).last().unwrap(), "0002_large");
    assert!(db.table_exists("public.large_before").await && db.table_exists("public.large_after").await);
    assert_eq!(ledger(&db).await, expected_ledger(dir.path()));
}
