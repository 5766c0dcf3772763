//! Where migrations come from (embedded at build time or a folder) and loading them into
//! validated, hashed [`Migration`]s exactly as drizzle-orm reads them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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
    /// The file's first line is the `no-transaction` marker: the author chose to run it
    /// statement by statement.
    pub marked_no_transaction: bool,
    /// The file carries the `commit-after` marker: its segment commits after it.
    pub commit_after: bool,
    pub down: Option<DownScript>,
    /// What its statements ask of the runner, read from them when first asked ([`Needs`]).
    pub needs: OnceLock<Needs>,
}

/// What a migration's statements ask of the runner, as Postgres's grammar reads them. Read when
/// first asked ([`Migration::needs`]): a run parses only the migrations it plans, applies, lints
/// or rolls back, not every one a long history has applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    pub mode: TransactionMode,
    pub adds_enum_value: bool,
    /// A statement of the file ends the transaction it runs in (its own `COMMIT`): it runs in a
    /// segment of its own, and what follows that `COMMIT` in a new transaction.
    pub ends_transaction: bool,
}

impl Needs {
    /// A migration that runs in a transaction and asks nothing special of it.
    pub const PLAIN: Needs = Needs {
        mode: TransactionMode::Transaction,
        adds_enum_value: false,
        ends_transaction: false,
    };

    fn of(statements: &[Statement], marked_no_transaction: bool) -> Self {
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
        Self {
            mode,
            adds_enum_value: statements.iter().any(Statement::adds_enum_value),
            ends_transaction: statements.iter().any(Statement::ends_transaction),
        }
    }
}

/// The down file of a 1.0 migration folder, beside its `migration.sql` (drizzle ignores it).
pub const FOLDER_DOWN_FILE: &str = "down.sql";

/// The hand-written file that undoes a migration: `<tag>.down.sql` beside a 0.x migration,
/// `<folder>/down.sql` in a 1.0 folder ([`Migration::down_file`]).
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
    pub fn migration_folders(&self) -> Result<Vec<String>, SourceError> {
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
            let down = self.down_script(&format!("{name}/{FOLDER_DOWN_FILE}"))?;
            let mut migration = Migration::new(idx, name.clone(), created_at, hash, &sql, down);
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
            let down = self.down_script(&format!("{}.down.sql", entry.tag))?;
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

    /// The hand-written down file at `rel`, if there is one; read as strictly as a migration.
    fn down_script(&self, rel: &str) -> Result<Option<DownScript>, SourceError> {
        match self.read(rel)? {
            Some(bytes) => Ok(Some(DownScript {
                statements: statement::split(&self.utf8(rel, bytes)?),
            })),
            None => Ok(None),
        }
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
        Self {
            idx,
            tag,
            created_at,
            name: None,
            hash,
            statements: statement::split(sql),
            marked_no_transaction: statement::has_no_transaction_marker(sql),
            commit_after: statement::has_commit_after_marker(sql),
            down,
            needs: OnceLock::new(),
        }
    }

    pub fn needs(&self) -> &Needs {
        self.needs.get_or_init(|| Needs::of(&self.statements, self.marked_no_transaction))
    }

    pub fn mode(&self) -> &TransactionMode {
        &self.needs().mode
    }

    pub fn adds_enum_value(&self) -> bool {
        self.needs().adds_enum_value
    }

    pub fn ends_transaction(&self) -> bool {
        self.needs().ends_transaction
    }
}

impl Migration {
    /// The migration's SQL file, relative to the migrations folder.
    pub fn file(&self) -> String {
        match self.layout() {
            Layout::Journal => format!("{}.sql", self.tag),
            Layout::Folders => format!("{}/migration.sql", self.tag),
        }
    }

    /// Where the migration's down file is (or would be), relative to the migrations folder.
    pub fn down_file(&self) -> String {
        match self.layout() {
            Layout::Journal => format!("{}.down.sql", self.tag),
            Layout::Folders => format!("{}/{FOLDER_DOWN_FILE}", self.tag),
        }
    }

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
#[path = "source_tests.rs"]
mod tests;
