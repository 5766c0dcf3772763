use super::*;

const J: &str = r#"{"version":"7","dialect":"postgresql","entries":[ENTRIES]}"#;

fn journal(entries: &[(&str, i64)]) -> Vec<u8> {
    let entries: Vec<String> = entries
        .iter()
        .enumerate()
        .map(|(i, (tag, when))| format!(r#"{{"idx":{i},"version":"7","when":{when},"tag":"{tag}","breakpoints":true}}"#))
        .collect();
    J.replace("ENTRIES", &entries.join(",")).into_bytes()
}

fn snapshot(id: &str, prev: &str) -> Vec<u8> {
    format!(r#"{{"id":"{id}","prevId":"{prev}","version":"7","dialect":"postgresql","tables":{{}}}}"#).into_bytes()
}

fn tree(files: &[(&str, Vec<u8>)]) -> Tree {
    Tree {
        files: files.iter().map(|(p, b)| (p.to_string(), b.clone())).collect(),
    }
}

fn kinds(e: &Examined) -> Vec<(Trap, Severity, Option<String>)> {
    e.traps.iter().map(|t| (t.trap, t.level, t.migration.clone())).collect()
}

fn history(entries: &[(&str, i64)], snapshots: &[(&str, &str, &str)]) -> Tree {
    let mut files = vec![("meta/_journal.json", journal(entries))];
    for (tag, _) in entries {
        files.push((
            Box::leak(format!("{tag}.sql").into_boxed_str()),
            format!("-- {tag}\nSELECT 1;\n").into_bytes(),
        ));
    }
    for (prefix, id, prev) in snapshots {
        files.push((
            Box::leak(format!("meta/{prefix}_snapshot.json").into_boxed_str()),
            snapshot(id, prev),
        ));
    }
    tree(&files)
}

#[test]
fn a_clean_history_has_no_traps_and_every_migration_is_new_without_a_base() {
    let t = history(&[("0000_a", 1), ("0001_b", 2)], &[("0000", "s0", ORIGIN), ("0001", "s1", "s0")]);
    let e = examine(&t, None);
    assert!(e.traps.is_empty(), "{:?}", e.traps);
    assert_eq!(e.new, ["0000_a", "0001_b"]);
}

#[test]
fn the_duplicate_prefix_to_regenerate_is_the_one_the_base_lacks() {
    let base = history(&[("0000_a", 1), ("0001_main", 3)], &[]);
    let head = history(&[("0000_a", 1), ("0001_main", 3), ("0001_branch", 4)], &[]);
    let e = examine(&head, Some(&base));
    assert_eq!(kinds(&e), [(Trap::DuplicatePrefix, Severity::Error, Some("0001_branch".into()))]);
    assert!(e.traps[0].fix.contains("regenerate 0001_branch"), "{}", e.traps[0].fix);
    assert!(e.traps[0].fix.contains("npx drizzle-kit generate"));
    assert_eq!(e.new, ["0001_branch"]);
}

#[test]
fn tags_without_a_prefix_share_none() {
    // drizzle-kit with `migrations.prefix: "none"`.
    let head = history(&[("_init", 1), ("_add_lists", 2)], &[]);
    assert!(examine(&head, None).traps.is_empty());
}

#[test]
fn a_when_not_newer_than_any_earlier_entry_is_found() {
    let head = history(
        &[("0000_a", 10), ("0001_b", 30), ("0002_c", 20), ("0003_d", 25), ("0004_e", 31)],
        &[],
    );
    let e = examine(&head, None);
    let found: Vec<_> = kinds(&e).into_iter().map(|(t, _, m)| (t, m.unwrap())).collect();
    assert_eq!(
        found,
        [
            (Trap::WhenNotIncreasing, "0002_c".to_string()),
            (Trap::WhenNotIncreasing, "0003_d".to_string())
        ]
    );
    assert!(e.traps[0].message.contains("skips 0002_c forever"));
}

#[test]
fn files_without_entries_are_errors_when_added_and_warnings_when_old() {
    let mut base = history(&[("0000_a", 1)], &[]);
    base.files.insert("0000_leftover.sql".into(), b"SELECT 1;".to_vec());
    let mut head = base.clone();
    head.files.insert("0001_added.sql".into(), b"SELECT 1;".to_vec());
    head.files.insert("0000_a.down.sql".into(), b"SELECT 1;".to_vec());
    let e = examine(&head, Some(&base));
    assert_eq!(
        kinds(&e),
        [
            (Trap::FileWithoutEntry, Severity::Warning, Some("0000_leftover".into())),
            (Trap::FileWithoutEntry, Severity::Error, Some("0001_added".into())),
        ]
    );
    // Without a base nothing is known to be added.
    assert!(examine(&head, None).traps.iter().all(|t| t.level == Severity::Warning));
}

#[test]
fn an_entry_without_its_file_is_an_error() {
    let mut head = history(&[("0000_a", 1), ("0001_b", 2)], &[]);
    head.files.remove("0001_b.sql");
    assert_eq!(
        kinds(&examine(&head, None)),
        [(Trap::EntryWithoutFile, Severity::Error, Some("0001_b".into()))]
    );
}

#[test]
fn snapshots_that_fork_or_break_are_found_and_pruned_ones_are_not_breaks() {
    let fork = history(
        &[("0000_a", 1), ("0001_b", 2), ("0002_c", 3)],
        &[("0000", "s0", ORIGIN), ("0001", "s1", "s0"), ("0002", "s2", "s0")],
    );
    assert_eq!(
        kinds(&examine(&fork, None)),
        [(Trap::SnapshotFork, Severity::Error, Some("0002_c".into()))]
    );
    let broken = history(
        &[("0000_a", 1), ("0001_b", 2), ("0002_c", 3)],
        &[("0000", "s0", ORIGIN), ("0001", "s1", "s0"), ("0002", "s2", "lost")],
    );
    assert_eq!(
        kinds(&examine(&broken, None)),
        [(Trap::SnapshotBreak, Severity::Error, Some("0002_c".into()))]
    );
    // 0000 and 0001 pruned: 0002's parent is not here, and that is no break.
    let pruned = history(
        &[("0000_a", 1), ("0001_b", 2), ("0002_c", 3), ("0003_d", 4)],
        &[("0002", "s2", "s1"), ("0003", "s3", "s2")],
    );
    assert!(examine(&pruned, None).traps.is_empty());
}

#[test]
fn a_released_migration_that_changed_is_found_at_its_first_changed_line() {
    let base = history(&[("0000_a", 1)], &[]);
    let mut head = history(&[("0000_a", 1), ("0001_b", 2)], &[]);
    head.files.insert("0000_a.sql".into(), b"-- 0000_a\nSELECT 2;\n".to_vec());
    let e = examine(&head, Some(&base));
    assert_eq!(
        kinds(&e),
        [(Trap::ReleasedMigrationChanged, Severity::Error, Some("0000_a".into()))]
    );
    assert_eq!(e.traps[0].line, Some(2));
    head.files.remove("0000_a.sql");
    let gone = examine(&head, Some(&base));
    assert!(gone
        .traps
        .iter()
        .any(|t| t.trap == Trap::ReleasedMigrationChanged && t.message.contains("gone")));
}

fn folder(name: &str, id: &str, prev: &[&str]) -> Vec<(String, Vec<u8>)> {
    let prev: Vec<String> = prev.iter().map(|p| format!("\"{p}\"")).collect();
    vec![
        (format!("{name}/migration.sql"), b"SELECT 1;".to_vec()),
        (
            format!("{name}/snapshot.json"),
            format!(
                r#"{{"version":"9","dialect":"postgres","id":"{id}","prevIds":[{}],"type":"diff","deltas":[]}}"#,
                prev.join(",")
            )
            .into_bytes(),
        ),
    ]
}

fn folders(list: &[Vec<(String, Vec<u8>)>]) -> Tree {
    Tree {
        files: list.iter().flatten().cloned().collect(),
    }
}

#[test]
fn a_1_0_fork_is_a_warning_until_a_snapshot_merges_it_and_a_new_folder_before_a_released_one_an_error() {
    let base = folders(&[
        folder("20240101000000_a", "s0", &[ORIGIN]),
        folder("20240103000000_main", "s1", &["s0"]),
    ]);
    let head = folders(&[
        folder("20240101000000_a", "s0", &[ORIGIN]),
        folder("20240102000000_branch", "s2", &["s0"]),
        folder("20240103000000_main", "s1", &["s0"]),
    ]);
    let e = examine(&head, Some(&base));
    assert_eq!(
        kinds(&e),
        [
            (Trap::WhenNotIncreasing, Severity::Error, Some("20240102000000_branch".into())),
            (Trap::SnapshotFork, Severity::Warning, Some("20240102000000_branch".into())),
        ]
    );
    let mut merged = head.clone();
    merged.files.extend(folder("20240104000000_merge", "s3", &["s1", "s2"]));
    assert!(examine(&merged, None).traps.is_empty());
}

#[test]
fn a_1_0_folder_with_its_snapshot_but_no_migration_sql_is_an_entry_without_its_file() {
    let mut head = folders(&[
        folder("20240101000000_a", "s0", &[ORIGIN]),
        folder("20240102000000_b", "s1", &["s0"]),
    ]);
    head.files.remove("20240102000000_b/migration.sql");
    let e = examine(&head, None);
    assert_eq!(
        kinds(&e),
        [(Trap::EntryWithoutFile, Severity::Error, Some("20240102000000_b".into()))]
    );
    assert!(e.traps[0].fix.contains("delete the folder"), "{}", e.traps[0].fix);
}

#[test]
fn a_released_entry_whose_when_moved_is_a_released_change() {
    let base = history(&[("0000_a", 1), ("0001_b", 2)], &[]);
    let head = history(&[("0000_a", 1), ("0001_b", 5)], &[]);
    let e = examine(&head, Some(&base));
    assert_eq!(
        kinds(&e),
        [(Trap::ReleasedMigrationChanged, Severity::Error, Some("0001_b".into()))]
    );
    assert_eq!(e.traps[0].file, "meta/_journal.json");
}
