//! Where migrations come from (embedded at build time or a folder) and loading them into
//! validated, hashed [`Migration`]s exactly as drizzle-orm reads them.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Classified, ErrorType};
use crate::migrations::folders::{self, MIGRATION_FILE};
use crate::migrations::journal::Journal;
use crate::migrations::statement::{self, Statement};

pub const JOURNAL_PATH: &str = "meta/_journal.json";

/// Where the migration files are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationSource {
    /// The folder compiled into the binary: a deployed artifact's migration set is fixed per build.
    Embedded,
    Dir(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: no drizzle journal found, and no migration folders; point --migrations / MIGRATIONS_DIR at a drizzle-kit output folder (0.x: it holds meta/_journal.json; 1.0: one folder per migration, each holding migration.sql)")]
    JournalMissing { path: String },
    #[error("{path} is in both drizzle-kit layouts: it has the 0.x journal and 1.0 migration folders ({folder} first). drizzle-orm 1.0 refuses such a folder too; finish the upgrade with drizzle-kit up, or remove what it left behind")]
    MixedLayouts { path: String, folder: String },
    #[error("migration folder {name:?} does not start with 14 digits (YYYYMMDDHHMMSS), which drizzle-orm 1.0 reads as its created_at (it would get NaN and fail); rename it as drizzle-kit 1.0 names folders, before anyone applies it")]
    BadFolderName { name: String },
    #[error("{path}: not a valid drizzle journal: {source}")]
    JournalInvalid { path: String, source: serde_json::Error },
    #[error("{path}: journal dialect is {dialect:?}; this tool applies PostgreSQL migrations only (dialect \"postgresql\", or \"pg\" as drizzle-kit wrote it before 2024)")]
    WrongDialect { path: String, dialect: String },
    #[error("journal entry {tag} has no migration file {path}; restore the file or remove the entry with drizzle-kit drop")]
    MissingFile { tag: String, path: String },
    #[error("{path}: cannot read: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: not valid UTF-8 at line {line} (byte {offset}); drizzle-orm reads migration files as UTF-8 text and would replace the bytes it cannot read. Save the file as UTF-8")]
    NotUtf8 { path: String, line: usize, offset: usize },
    #[error("{path}: starts with a UTF-8 byte-order mark, which drizzle-orm would send to PostgreSQL as part of the first statement (a syntax error there). Save the file as UTF-8 without a BOM")]
    ByteOrderMark { path: String },
    #[error("journal entry {tag} has when={when}, not newer than {previous_tag} (when={previous_when}); drizzle-orm would skip it forever. Give it a later `when` before anyone applies it")]
    WhenNotIncreasing {
        tag: String,
        when: i64,
        previous_tag: String,
        previous_when: i64,
    },
    #[error("journal lists tag {tag} twice; each migration must appear once")]
    DuplicateTag { tag: String },
    #[error("journal entry {index} has tag {tag:?}, which {reason}: a tag names a file inside the migrations folder. Fix the journal (drizzle-kit writes tags like 0003_add_index)")]
    UnsafeTag { index: usize, tag: String, reason: &'static str },
}

/// Why a journal tag cannot name a file inside the migrations folder, if it cannot: the tag
/// becomes `<tag>.sql`, `<tag>.down.sql` and `meta/<idx>_snapshot.json`'s neighbours, so a
/// separator, `..`, an absolute path or a NUL would reach outside the folder.
pub fn unsafe_tag(tag: &str) -> Option<&'static str> {
    if tag.is_empty() {
        Some("is empty")
    } else if tag.contains('\0') {
        Some("contains a NUL byte")
    } else if tag.contains('/') || tag.contains('\\') {
        Some("contains a path separator")
    } else if tag == "." || tag == ".." {
        Some("names a directory")
    } else {
        None
    }
}

impl SourceError {
    /// The migration the error is about, when there is one.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Self::MissingFile { tag, .. } | Self::WhenNotIncreasing { tag, .. } | Self::DuplicateTag { tag } => Some(tag),
            Self::BadFolderName { name } => Some(name),
            _ => None,
        }
    }
}

/// How the runner must execute a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionMode {
    Transaction,
    /// Runs alone, each statement committing on its own.
    Autocommit {
        reason: String,
    },
}

/// A migration as read from the source; what the database has applied is a [`crate::db::ledger::LedgerRow`].
#[derive(Debug, Clone)]
pub struct Migration {
    /// Position in the journal (1.0: in drizzle-orm 1.0's sort order of the folders).
    pub idx: usize,
    /// The journal tag (1.0: the folder name).
    pub tag: String,
    /// The journal entry's `when` (1.0: the folder name's timestamp, whole seconds), stored by
    /// drizzle-orm as the ledger row's `created_at`.
    pub created_at: i64,
    /// 1.0 only: the folder name, which drizzle-orm 1.0 stores in the ledger's `name` column and
    /// matches applied migrations by. `None` for a 0.x journal entry.
    pub name: Option<String>,
    /// Lowercase hex SHA-256 of the file's bytes, as drizzle-orm computes it.
    pub hash: String,
    pub statements: Vec<Statement>,
    pub mode: TransactionMode,
    pub adds_enum_value: bool,
    /// The file's first line is the `no-transaction` marker: the author chose to run it
    /// statement by statement.
    pub marked_no_transaction: bool,
    /// The file carries the `commit-after` marker: its segment commits after it.
    pub commit_after: bool,
    pub down: Option<DownScript>,
}

/// The hand-written `<tag>.down.sql` that undoes a migration.
#[derive(Debug, Clone)]
pub struct DownScript {
    pub statements: Vec<Statement>,
}

/// Which drizzle-kit wrote the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// drizzle-kit 0.x: `meta/_journal.json` and `<tag>.sql` files.
    Journal,
    /// drizzle-kit 1.0: a folder `<YYYYMMDDHHMMSS>_<name>/migration.sql` per migration.
    Folders,
}

/// A loaded, validated migration folder.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    pub source: MigrationSource,
    pub layout: Layout,
    pub migrations: Vec<Migration>,
}

impl fmt::Display for MigrationSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Embedded => f.write_str("embedded migrations"),
            Self::Dir(dir) => write!(f, "{}", dir.display()),
        }
    }
}

impl MigrationSource {
    /// A file of the folder by its path relative to the folder root; `None` when absent.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, SourceError> {
        match self {
            Self::Embedded => Ok(crate::migrations::embedded::FILES
                .iter()
                .find(|(path, _)| *path == rel)
                .map(|(_, bytes)| bytes.to_vec())),
            Self::Dir(dir) => match std::fs::read(dir.join(rel)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(SourceError::Io {
                    path: self.display_path(rel),
                    source,
                }),
            },
        }
    }

    pub fn display_path(&self, rel: &str) -> String {
        match self {
            Self::Embedded => format!("embedded:{rel}"),
            Self::Dir(dir) => dir.join(rel).display().to_string(),
        }
    }

    /// Loads the folder in whichever layout it is: a journal is 0.x, subfolders holding
    /// `migration.sql` are 1.0, both is refused (as drizzle-orm 1.0 refuses a journal).
    pub fn load(&self) -> Result<MigrationSet, SourceError> {
        let journal = self.read(JOURNAL_PATH)?;
        let folders = self.migration_folders()?;
        match (journal, folders.first()) {
            (Some(_), Some(first)) => Err(SourceError::MixedLayouts {
                path: self.to_string(),
                folder: first.clone(),
            }),
            (Some(bytes), None) => self.load_journal(bytes),
            (None, Some(_)) => self.load_folders(folders),
            (None, None) => Err(SourceError::JournalMissing {
                path: self.display_path(JOURNAL_PATH),
            }),
        }
    }

    /// The names of the entries that hold `migration.sql`, as drizzle-orm 1.0 lists them, in its
    /// order ([`folders::sort`]).
    fn migration_folders(&self) -> Result<Vec<String>, SourceError> {
        let mut names: Vec<String> = match self {
            Self::Embedded => crate::migrations::embedded::FILES
                .iter()
                .filter_map(|(path, _)| path.split_once('/'))
                .filter(|(_, rest)| *rest == MIGRATION_FILE)
                .map(|(name, _)| name.to_string())
                .collect(),
            Self::Dir(dir) => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(source) => {
                        return Err(SourceError::Io {
                            path: dir.display().to_string(),
                            source,
                        })
                    }
                };
                let mut names = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(|source| SourceError::Io {
                        path: dir.display().to_string(),
                        source,
                    })?;
                    if entry.path().join(MIGRATION_FILE).exists() {
                        names.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
                names
            }
        };
        folders::sort(&mut names);
        Ok(names)
    }

    fn load_folders(&self, names: Vec<String>) -> Result<MigrationSet, SourceError> {
        let mut migrations = Vec::with_capacity(names.len());
        for (idx, name) in names.into_iter().enumerate() {
            let created_at = folders::folder_millis(&name).ok_or_else(|| SourceError::BadFolderName { name: name.clone() })?;
            let rel = format!("{name}/{MIGRATION_FILE}");
            let bytes = self.read(&rel)?.ok_or_else(|| SourceError::MissingFile {
                tag: name.clone(),
                path: self.display_path(&rel),
            })?;
            let hash = hex::encode(Sha256::digest(&bytes));
            let sql = self.utf8(&rel, bytes)?;
            let mut migration = Migration::new(idx, name.clone(), created_at, hash, &sql, None);
            migration.name = Some(name);
            migrations.push(migration);
        }
        Ok(MigrationSet {
            source: self.clone(),
            layout: Layout::Folders,
            migrations,
        })
    }

    fn load_journal(&self, bytes: Vec<u8>) -> Result<MigrationSet, SourceError> {
        let journal_path = self.display_path(JOURNAL_PATH);
        let journal = Journal::parse(&bytes).map_err(|source| SourceError::JournalInvalid {
            path: journal_path.clone(),
            source,
        })?;
        if !journal.is_postgres() {
            return Err(SourceError::WrongDialect {
                path: journal_path,
                dialect: journal.dialect,
            });
        }
        let mut migrations: Vec<Migration> = Vec::with_capacity(journal.entries.len());
        for (idx, entry) in journal.entries.iter().enumerate() {
            if let Some(reason) = unsafe_tag(&entry.tag) {
                return Err(SourceError::UnsafeTag {
                    index: idx,
                    tag: entry.tag.clone(),
                    reason,
                });
            }
            if migrations.iter().any(|m| m.tag == entry.tag) {
                return Err(SourceError::DuplicateTag { tag: entry.tag.clone() });
            }
            if let Some(previous) = migrations.last() {
                if entry.when <= previous.created_at {
                    return Err(SourceError::WhenNotIncreasing {
                        tag: entry.tag.clone(),
                        when: entry.when,
                        previous_tag: previous.tag.clone(),
                        previous_when: previous.created_at,
                    });
                }
            }
            let rel = format!("{}.sql", entry.tag);
            let bytes = self.read(&rel)?.ok_or_else(|| SourceError::MissingFile {
                tag: entry.tag.clone(),
                path: self.display_path(&rel),
            })?;
            let down_rel = format!("{}.down.sql", entry.tag);
            let down = match self.read(&down_rel)? {
                Some(down_bytes) => Some(DownScript {
                    statements: statement::split(&self.utf8(&down_rel, down_bytes)?),
                }),
                None => None,
            };
            let hash = hex::encode(Sha256::digest(&bytes));
            let sql = self.utf8(&rel, bytes)?;
            migrations.push(Migration::new(idx, entry.tag.clone(), entry.when, hash, &sql, down));
        }
        Ok(MigrationSet {
            source: self.clone(),
            layout: Layout::Journal,
            migrations,
        })
    }

    fn utf8(&self, rel: &str, bytes: Vec<u8>) -> Result<String, SourceError> {
        if bytes.starts_with(b"\xef\xbb\xbf") {
            return Err(SourceError::ByteOrderMark {
                path: self.display_path(rel),
            });
        }
        String::from_utf8(bytes).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            SourceError::NotUtf8 {
                path: self.display_path(rel),
                line: 1 + e.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count(),
                offset,
            }
        })
    }
}

impl Migration {
    pub(crate) fn new(idx: usize, tag: String, created_at: i64, hash: String, sql: &str, down: Option<DownScript>) -> Self {
        let statements = statement::split(sql);
        let marked_no_transaction = statement::has_no_transaction_marker(sql);
        let mode = if marked_no_transaction {
            TransactionMode::Autocommit {
                reason: "marked no-transaction".into(),
            }
        } else if let Some(reason) = statements.iter().find_map(Statement::autocommit_reason) {
            TransactionMode::Autocommit {
                reason: format!("{reason} cannot run in a transaction"),
            }
        } else {
            TransactionMode::Transaction
        };
        let adds_enum_value = statements.iter().any(Statement::adds_enum_value);
        Self {
            idx,
            tag,
            created_at,
            name: None,
            hash,
            statements,
            mode,
            adds_enum_value,
            marked_no_transaction,
            commit_after: statement::has_commit_after_marker(sql),
            down,
        }
    }
}

impl Migration {
    /// The layout of the folder the migration was read from.
    pub fn layout(&self) -> Layout {
        if self.name.is_some() {
            Layout::Folders
        } else {
            Layout::Journal
        }
    }
}

impl MigrationSet {
    pub fn find(&self, tag: &str) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.tag == tag)
    }
}

impl From<Option<&Path>> for MigrationSource {
    /// The configured folder, or the embedded set when none is configured.
    fn from(dir: Option<&Path>) -> Self {
        match dir {
            Some(dir) => Self::Dir(dir.to_path_buf()),
            None => Self::Embedded,
        }
    }
}

impl Classified for SourceError {
    fn error_type(&self) -> ErrorType {
        ErrorType::InvalidMigrations
    }

    fn migration(&self) -> Option<&str> {
        self.tag()
    }
}

#[cfg(test)]
mod tests {
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
        assert!(matches!(set.migrations[0].mode, TransactionMode::Autocommit { .. }));
        assert!(matches!(set.migrations[1].mode, TransactionMode::Autocommit { .. }));
        assert_eq!(set.migrations[2].mode, TransactionMode::Transaction);
        assert!(set.migrations[2].adds_enum_value);
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
}
