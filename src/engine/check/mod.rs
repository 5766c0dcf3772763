//! `check`: drizzle-kit's team-workflow traps in a migrations folder, found without a database
//! for a pull request's CI (docs/ci.md). `traps` decides (pure), `tree` reads the folder and the
//! `--base` it is compared with (the disk or git).

pub mod traps;
pub mod tree;

use serde::{Deserialize, Serialize};

use crate::error::{Classified, ErrorType};

/// Which trap a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Trap {
    /// Two migrations share an index prefix (two `0005_` from parallel branches).
    DuplicatePrefix,
    /// A journal `when` not newer than an earlier entry's (1.0: a new folder that sorts before a
    /// released one).
    WhenNotIncreasing,
    /// A journal entry whose `.sql` file is missing.
    EntryWithoutFile,
    /// A `.sql` file that no journal entry names.
    FileWithoutEntry,
    /// Two snapshots with the same parent.
    SnapshotFork,
    /// A snapshot whose parent is not the snapshot before it.
    SnapshotBreak,
    /// A migration present in the base whose file changed or went away.
    ReleasedMigrationChanged,
    /// The folder cannot be read as drizzle-kit wrote it (journal, folder name).
    Unreadable,
}

impl Trap {
    pub fn name(self) -> &'static str {
        match self {
            Self::DuplicatePrefix => "duplicatePrefix",
            Self::WhenNotIncreasing => "whenNotIncreasing",
            Self::EntryWithoutFile => "entryWithoutFile",
            Self::FileWithoutEntry => "fileWithoutEntry",
            Self::SnapshotFork => "snapshotFork",
            Self::SnapshotBreak => "snapshotBreak",
            Self::ReleasedMigrationChanged => "releasedMigrationChanged",
            Self::Unreadable => "unreadable",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    Error,
    Warning,
}

/// One trap found: where, what it does, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrapFinding {
    pub trap: Trap,
    pub level: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<String>,
    /// Relative to the migrations folder.
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
    pub fix: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{what}: cannot read: {reason}")]
    Read { what: String, reason: String },
    #[error("--base {base}: {reason}. Pass a git ref the checkout has (fetch it first: actions/checkout with fetch-depth: 0) or a folder")]
    Base { base: String, reason: String },
    #[error("check needs a migrations folder (--migrations DIR or MIGRATIONS_DIR): it reads the files a pull request changes, not the ones built into this binary")]
    NoFolder,
    #[error("{errors} error(s) in the migrations folder; first: {first}")]
    Failed {
        errors: usize,
        first: String,
        migration: Option<String>,
    },
}

impl Classified for CheckError {
    fn error_type(&self) -> ErrorType {
        match self {
            Self::Read { .. } | Self::Base { .. } | Self::NoFolder => ErrorType::ConfigError,
            Self::Failed { .. } => ErrorType::CheckFailed,
        }
    }

    fn migration(&self) -> Option<&str> {
        match self {
            Self::Failed { migration, .. } => migration.as_deref(),
            _ => None,
        }
    }
}
