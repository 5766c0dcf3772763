//! Loading both layouts: the journal's and the folders' refusals, hashes and down files.

use super::*;

struct Folder(tempfile::TempDir);

impl Folder {
    fn new(journal: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        std::fs::write(dir.path().join(JOURNAL_PATH), journal).unwrap();
        Folder(dir)
    }
    fn file(self, name: &str, body: &str) -> Self {
        std::fs::write(self.0.path().join(name), body).unwrap();
        self
    }
    fn load(&self) -> Result<MigrationSet, SourceError> {
        MigrationSource::Dir(self.0.path().to_path_buf()).load()
    }
}

fn journal(entries: &[(&str, i64)]) -> String {
    let entries: Vec<String> = entries
        .iter()
        .enumerate()
        .map(|(i, (tag, when))| format!(r#"{{"idx":{i},"version":"7","when":{when},"tag":"{tag}","breakpoints":true}}"#))
        .collect();
    format!(r#"{{"version":"7","dialect":"postgresql","entries":[{}]}}"#, entries.join(","))
}

#[test]
fn tags_that_reach_outside_the_folder_are_refused() {
    for tag in [
        "../x",
        "a/../../x",
        "/etc/passwd",
        "..\\x",
        "C:\\x",
        "x\0",
        "..",
        ".",
        "",
        "sub/0000_a",
    ] {
        assert!(unsafe_tag(tag).is_some(), "{tag:?}");
    }
    for tag in ["0000_a", "0001_wish_2007_enums_audit", "0002_a.b", "0003_..x"] {
        assert_eq!(unsafe_tag(tag), None, "{tag:?}");
    }
    let outside = Folder::new(&journal(&[("0000_a", 10)])).file("0000_a.sql", "SELECT 1;");
    let name = outside.0.path().file_name().unwrap().to_str().unwrap().to_string();
    for tag in [
        format!("../{name}/0000_a"),
        outside.0.path().join("0000_a").display().to_string(),
        "..\\\\x".into(),
        "x\\u0000".into(),
    ] {
        let folder = Folder::new(&journal(&[("0000_a", 10), (&tag, 20)])).file("0000_a.sql", "SELECT 1;");
        let err = folder.load().unwrap_err();
        assert!(matches!(&err, SourceError::UnsafeTag { index: 1, .. }), "{tag:?}: {err}");
        assert_eq!(err.error_type(), ErrorType::InvalidMigrations);
        assert!(err.to_string().starts_with("journal entry 1 has tag"), "{err}");
    }
}

#[test]
fn loads_in_journal_order_with_drizzle_hashes() {
    let set = Folder::new(&journal(&[("0000_a", 10), ("0001_b", 20)]))
        .file("0000_a.sql", "CREATE TABLE a (id int);")
        .file(
            "0001_b.sql",
            "CREATE TABLE b (id int);\n--> statement-breakpoint\nCREATE INDEX bi ON b (id);",
        )
        .file("0001_b.down.sql", "DROP TABLE b;")
        .load()
        .unwrap();
    let tags: Vec<_> = set.migrations.iter().map(|m| m.tag.as_str()).collect();
    assert_eq!(tags, ["0000_a", "0001_b"]);
    // sha256("CREATE TABLE a (id int);"), as `printf %s ... | sha256sum` prints it.
    assert_eq!(set.migrations[0].hash, hex::encode(Sha256::digest(b"CREATE TABLE a (id int);")));
    assert_eq!(set.migrations[0].hash.len(), 64);
    assert_eq!(set.migrations[1].statements.len(), 2);
    assert_eq!(set.migrations[1].created_at, 20);
    assert!(set.migrations[0].down.is_none());
    assert_eq!(set.migrations[1].down.as_ref().unwrap().statements.len(), 1);
}

#[test]
fn refuses_a_journal_whose_when_does_not_increase() {
    let err = Folder::new(&journal(&[("0000_a", 20), ("0001_b", 20)]))
        .file("0000_a.sql", "SELECT 1;")
        .file("0001_b.sql", "SELECT 1;")
        .load()
        .unwrap_err();
    assert!(
        matches!(&err, SourceError::WhenNotIncreasing { tag, previous_tag, .. } if tag == "0001_b" && previous_tag == "0000_a"),
        "{err}"
    );
}

#[test]
fn refuses_an_entry_without_its_file() {
    let err = Folder::new(&journal(&[("0000_a", 10)])).load().unwrap_err();
    assert!(matches!(&err, SourceError::MissingFile { tag, .. } if tag == "0000_a"));
    assert!(err.to_string().contains("0000_a.sql"));
}

#[test]
fn refuses_duplicate_tags_other_dialects_and_broken_json() {
    let dup = Folder::new(&journal(&[("0000_a", 10), ("0000_a", 20)]))
        .file("0000_a.sql", "SELECT 1;")
        .load()
        .unwrap_err();
    assert!(matches!(dup, SourceError::DuplicateTag { .. }));
    let mysql = Folder::new(r#"{"dialect":"mysql","entries":[]}"#).load().unwrap_err();
    assert!(matches!(mysql, SourceError::WrongDialect { .. }));
    let broken = Folder::new("{not json").load().unwrap_err();
    assert!(matches!(broken, SourceError::JournalInvalid { .. }));
}

/// A journal as a given drizzle-kit wrote it: its dialect, and the version of it and its entries.
fn journal_as(dialect: &str, version: &str, entries: &[(&str, i64)]) -> String {
    let entries: Vec<String> = entries
        .iter()
        .enumerate()
        .map(|(i, (tag, when))| format!(r#"{{"idx":{i},"version":"{version}","when":{when},"tag":"{tag}","breakpoints":true}}"#))
        .collect();
    format!(
        r#"{{"version":"{version}","dialect":"{dialect}","entries":[{}]}}"#,
        entries.join(",")
    )
}

#[test]
fn loads_every_postgres_journal_drizzle_kit_wrote() {
    for (dialect, version) in [("pg", "5"), ("pg", "6"), ("postgresql", "6"), ("postgresql", "7")] {
        let set = Folder::new(&journal_as(dialect, version, &[("0000_a", 10), ("0001_b", 20)]))
            .file("0000_a.sql", "CREATE TABLE a (id int);")
            .file("0001_b.sql", "CREATE TABLE b (id int);")
            .load()
            .unwrap_or_else(|e| panic!("{dialect} {version}: {e}"));
        let tags: Vec<_> = set.migrations.iter().map(|m| m.tag.as_str()).collect();
        assert_eq!(tags, ["0000_a", "0001_b"], "{dialect} {version}");
        assert_eq!(set.migrations[1].created_at, 20);
    }
}

#[test]
fn every_tag_prefix_drizzle_kit_writes_loads_in_journal_order() {
    // drizzle-kit's prepareMigrationMetadata: `${prefix}_${name}`, the prefix by mode.
    for (mode, tags) in [
        ("index", ["0000_init", "0001_add-users"]),
        ("timestamp", ["20240101120000_init", "20240102093000_add_users"]),
        ("supabase", ["20240101120000_init", "20240102093000_add_users"]),
        ("unix", ["1704110400_init", "1704187800_add_users"]),
        ("none", ["_init", "_add_users"]),
    ] {
        let set = Folder::new(&journal_as("postgresql", "7", &[(tags[0], 10), (tags[1], 20)]))
            .file(&format!("{}.sql", tags[0]), "CREATE TABLE a (id int);")
            .file(&format!("{}.sql", tags[1]), "CREATE TABLE b (id int);")
            .load()
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let loaded: Vec<_> = set.migrations.iter().map(|m| m.tag.as_str()).collect();
        assert_eq!(loaded, tags, "{mode}");
        assert_eq!(set.find(tags[1]).map(|m| m.idx), Some(1), "{mode}");
    }
    // Journal order is the order, not the tags' sort order.
    let set = Folder::new(&journal_as("postgresql", "7", &[("_zebra", 10), ("_apple", 20)]))
        .file("_zebra.sql", "SELECT 1;")
        .file("_apple.sql", "SELECT 2;")
        .load()
        .unwrap();
    assert_eq!(set.migrations[0].tag, "_zebra");
}

#[test]
fn other_dialects_are_still_refused() {
    for dialect in ["mysql", "sqlite", "turso", "singlestore", "gel", "postgres", "PG"] {
        let err = Folder::new(&journal_as(dialect, "5", &[("0000_a", 10)]))
            .file("0000_a.sql", "SELECT 1;")
            .load()
            .unwrap_err();
        assert!(
            matches!(&err, SourceError::WrongDialect { dialect: d, .. } if d == dialect),
            "{dialect}: {err}"
        );
        assert_eq!(err.error_type(), ErrorType::InvalidMigrations);
    }
}

#[test]
fn a_folder_without_journal_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let err = MigrationSource::Dir(dir.path().to_path_buf()).load().unwrap_err();
    assert!(matches!(err, SourceError::JournalMissing { .. }));
    assert!(err.to_string().contains("_journal.json"));
}

#[test]
fn classifies_transaction_needs() {
    let set = Folder::new(&journal(&[("0000_a", 10), ("0001_b", 20), ("0002_c", 30)]))
        .file("0000_a.sql", "CREATE INDEX CONCURRENTLY i ON t (a);")
        .file("0001_b.sql", "-- wishlist-migrator: no-transaction\nANALYZE t;")
        .file("0002_c.sql", "ALTER TYPE s ADD VALUE 'x';")
        .load()
        .unwrap();
    assert!(matches!(set.migrations[0].mode(), TransactionMode::Autocommit { .. }));
    assert!(matches!(set.migrations[1].mode(), TransactionMode::Autocommit { .. }));
    assert_eq!(*set.migrations[2].mode(), TransactionMode::Transaction);
    assert!(set.migrations[2].adds_enum_value());
}

#[test]
fn loading_a_history_parses_none_of_its_statements() {
    // A run asks what a migration needs only of those it plans or applies: a long history's
    // applied ones must cost no parse on every run.
    let set = Folder::new(&journal(&[("0000_a", 10)]))
        .file(
            "0000_a.sql",
            "CREATE TABLE a (id int);\n--> statement-breakpoint\nCREATE INDEX CONCURRENTLY i ON a (id);",
        )
        .load()
        .unwrap();
    assert!(set.migrations[0].needs.get().is_none());
    assert!(matches!(set.migrations[0].mode(), TransactionMode::Autocommit { .. }));
    assert!(set.migrations[0].needs.get().is_some());
}

#[test]
fn invalid_utf8_is_named() {
    let folder = Folder::new(&journal(&[("0000_a", 10)]));
    std::fs::write(folder.0.path().join("0000_a.sql"), [0xff, 0xfe]).unwrap();
    let err = folder.load().unwrap_err();
    assert!(
        matches!(&err, SourceError::NotUtf8 { path, line: 1, .. } if path.ends_with("0000_a.sql")),
        "{err}"
    );
}

#[test]
fn a_byte_order_mark_is_refused_naming_the_file() {
    let folder = Folder::new(&journal(&[("0000_a", 1)]));
    std::fs::write(folder.0.path().join("0000_a.sql"), b"\xef\xbb\xbfCREATE TABLE a (id int);").unwrap();
    let err = folder.load().unwrap_err();
    assert!(
        matches!(&err, SourceError::ByteOrderMark { path } if path.ends_with("0000_a.sql")),
        "{err}"
    );
}

/// A drizzle-kit 1.0 folder: one subfolder per migration.
struct Folders(tempfile::TempDir);

impl Folders {
    fn new() -> Self {
        Folders(tempfile::tempdir().unwrap())
    }
    fn migration(self, name: &str, sql: &str) -> Self {
        std::fs::create_dir_all(self.0.path().join(name)).unwrap();
        std::fs::write(self.0.path().join(name).join(MIGRATION_FILE), sql).unwrap();
        std::fs::write(self.0.path().join(name).join("snapshot.json"), "{}").unwrap();
        self
    }
    fn load(&self) -> Result<MigrationSet, SourceError> {
        MigrationSource::Dir(self.0.path().to_path_buf()).load()
    }
}

#[test]
fn a_1_0_folder_loads_in_drizzle_1_0_order_with_names_and_second_timestamps() {
    let sql = "CREATE TABLE b (id int);\n--> statement-breakpoint\nCREATE INDEX bi ON b (id);";
    let folders = Folders::new()
        .migration("20250101120000_Zebra", "SELECT 3;")
        .migration("20250101120000_apple", sql)
        .migration("20241231235959_first", "CREATE TABLE a (id int);");
    // Neither a folder without migration.sql nor a plain file is a migration (drizzle-orm
    // 1.0 lists only entries holding migration.sql).
    std::fs::create_dir_all(folders.0.path().join("20250101120000_empty")).unwrap();
    std::fs::write(folders.0.path().join("README.md"), "notes").unwrap();
    let set = folders.load().unwrap();
    assert_eq!(set.layout, Layout::Folders);
    let tags: Vec<_> = set.migrations.iter().map(|m| m.tag.as_str()).collect();
    assert_eq!(tags, ["20241231235959_first", "20250101120000_apple", "20250101120000_Zebra"]);
    let names: Vec<_> = set.migrations.iter().map(|m| m.name.as_deref()).collect();
    assert_eq!(
        names,
        [
            Some("20241231235959_first"),
            Some("20250101120000_apple"),
            Some("20250101120000_Zebra")
        ]
    );
    let idx: Vec<_> = set.migrations.iter().map(|m| m.idx).collect();
    assert_eq!(idx, [0, 1, 2]);
    // Both of one second share created_at, as drizzle-orm 1.0 stores it.
    assert_eq!(set.migrations[1].created_at, 1_735_732_800_000);
    assert_eq!(set.migrations[2].created_at, 1_735_732_800_000);
    assert_eq!(set.migrations[1].hash, hex::encode(Sha256::digest(sql.as_bytes())));
    assert_eq!(set.migrations[1].statements.len(), 2);
    assert!(set.migrations.iter().all(|m| m.down.is_none()));
}

#[test]
fn a_0_x_journal_keeps_its_layout_and_no_names() {
    let set = Folder::new(&journal(&[("0000_a", 10)]))
        .file("0000_a.sql", "SELECT 1;")
        .load()
        .unwrap();
    assert_eq!(set.layout, Layout::Journal);
    assert_eq!(set.migrations[0].name, None);
}

#[test]
fn a_folder_in_both_layouts_is_refused() {
    let folder = Folder::new(&journal(&[("0000_a", 10)])).file("0000_a.sql", "SELECT 1;");
    std::fs::create_dir_all(folder.0.path().join("20250101120000_a")).unwrap();
    std::fs::write(folder.0.path().join("20250101120000_a").join(MIGRATION_FILE), "SELECT 1;").unwrap();
    let err = folder.load().unwrap_err();
    assert!(
        matches!(&err, SourceError::MixedLayouts { folder, .. } if folder == "20250101120000_a"),
        "{err}"
    );
    assert_eq!(err.error_type(), ErrorType::InvalidMigrations);
    assert!(err.to_string().contains("drizzle-kit up"), "{err}");
}

#[test]
fn a_folder_name_without_14_digits_is_refused_naming_it() {
    for name in ["0000_init", "2025010112000_x", "init"] {
        let err = Folders::new()
            .migration("20250101120000_ok", "SELECT 1;")
            .migration(name, "SELECT 2;")
            .load()
            .unwrap_err();
        assert!(matches!(&err, SourceError::BadFolderName { name: n } if n == name), "{err}");
        assert_eq!(err.migration(), Some(name));
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn a_1_0_migration_file_is_read_as_strictly_as_a_0_x_one() {
    let folders = Folders::new().migration("20250101120000_a", "SELECT 1;");
    std::fs::write(
        folders.0.path().join("20250101120000_a").join(MIGRATION_FILE),
        b"\xef\xbb\xbfSELECT 1;",
    )
    .unwrap();
    let err = folders.load().unwrap_err();
    assert!(
        matches!(&err, SourceError::ByteOrderMark { path } if path.ends_with("20250101120000_a/migration.sql")),
        "{err}"
    );
}

#[test]
fn an_empty_folder_names_both_layouts() {
    let err = Folders::new().load().unwrap_err();
    assert!(matches!(err, SourceError::JournalMissing { .. }));
    assert!(err.to_string().contains("migration.sql"), "{err}");
}

#[test]
fn a_1_0_folder_reads_its_down_file_beside_migration_sql() {
    let dir = tempfile::tempdir().unwrap();
    for (name, down) in [("20250101000000_a", Some(&b"DROP TABLE a;"[..])), ("20250101000001_b", None)] {
        std::fs::create_dir(dir.path().join(name)).unwrap();
        std::fs::write(dir.path().join(name).join(MIGRATION_FILE), "CREATE TABLE a (id int);").unwrap();
        if let Some(down) = down {
            std::fs::write(dir.path().join(name).join(FOLDER_DOWN_FILE), down).unwrap();
        }
    }
    // 0.x's name for it, at the top, is not a 1.0 folder's down file.
    std::fs::write(dir.path().join("20250101000001_b.down.sql"), "DROP TABLE b;").unwrap();
    let source = MigrationSource::Dir(dir.path().to_path_buf());
    let set = source.load().unwrap();
    assert_eq!(set.layout, Layout::Folders);
    let [a, b] = &set.migrations[..] else {
        panic!("{:?}", set.migrations)
    };
    assert_eq!(a.down.as_ref().unwrap().statements[0].sql.trim(), "DROP TABLE a;");
    assert_eq!(a.down_file(), "20250101000000_a/down.sql");
    assert!(b.down.is_none());
    assert_eq!(b.down_file(), "20250101000001_b/down.sql");

    std::fs::write(dir.path().join("20250101000000_a").join(FOLDER_DOWN_FILE), b"DROP \xff;").unwrap();
    let err = source.load().unwrap_err();
    assert!(
        matches!(&err, SourceError::NotUtf8 { path, .. } if path.ends_with("20250101000000_a/down.sql")),
        "{err}"
    );
}
