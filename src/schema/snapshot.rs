//! drizzle-kit's schema snapshots (`meta/<prefix>_snapshot.json`, format version 7): the expected
//! schema after each migration, parsed fully into typed structs. Any other version, or a field
//! this version does not have, is an error rather than a silently partial comparison.
//!
//! This model is the one every comparison reads. drizzle-kit 1.0's snapshots (format 9, a chain
//! of diffs) are rebuilt into it by `schema/snapshot_v1/`, which also holds
//! [`Snapshot::load`] and [`Snapshot::at`] for both layouts.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Classified, ErrorType};
use crate::migrations::source::{Migration, MigrationSource};

/// The only snapshot format this tool reads (drizzle-kit 0.23 to at least 0.31 write it).
pub const SUPPORTED_VERSION: &str = "7";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{tag}: no snapshot {path}; drizzle-kit writes one with each migration; commit it with the migration")]
    Missing { tag: String, path: String },
    #[error("{path}: snapshot format version {version:?} is not supported (only {supported}); comparing it would not be trustworthy")]
    UnsupportedVersion {
        tag: String,
        path: String,
        version: String,
        supported: &'static str,
    },
    #[error("{path}: snapshot dialect is {dialect:?}; only PostgreSQL is supported")]
    WrongDialect { tag: String, path: String, dialect: String },
    #[error("{path}: not a valid drizzle-kit version 7 snapshot: {source}")]
    Invalid {
        tag: String,
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: not a valid drizzle-kit 1.0 snapshot (format 9, or 8): {reason}")]
    InvalidFolder { tag: String, path: String, reason: String },
    /// The schema of `tag` cannot be rebuilt from the chain of 1.0 snapshots; `path` is the
    /// snapshot at fault.
    #[error("{path}: {source}")]
    Chain {
        tag: String,
        path: String,
        source: crate::schema::snapshot_v1::chain::ChainError,
    },
    #[error(transparent)]
    Source(#[from] crate::migrations::source::SourceError),
}

impl SnapshotError {
    pub fn tag(&self) -> Option<&str> {
        match self {
            Self::Missing { tag, .. }
            | Self::UnsupportedVersion { tag, .. }
            | Self::WrongDialect { tag, .. }
            | Self::Invalid { tag, .. }
            | Self::InvalidFolder { tag, .. }
            | Self::Chain { tag, .. } => Some(tag),
            Self::Source(e) => e.tag(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Snapshot {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub prev_id: String,
    pub version: String,
    pub dialect: String,
    pub tables: BTreeMap<String, Table>,
    pub enums: BTreeMap<String, Enum>,
    pub schemas: BTreeMap<String, String>,
    #[serde(default)]
    pub views: BTreeMap<String, View>,
    #[serde(default)]
    pub sequences: BTreeMap<String, Sequence>,
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
    #[serde(default)]
    pub policies: BTreeMap<String, Policy>,
    #[serde(rename = "_meta")]
    pub meta: Meta,
    /// drizzle-kit's own bookkeeping (array dimensions, raw types); not part of the schema.
    #[serde(default)]
    pub internal: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub schemas: BTreeMap<String, String>,
    pub tables: BTreeMap<String, String>,
    pub columns: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Table {
    pub name: String,
    /// Empty for the default schema (`public`).
    pub schema: String,
    pub columns: BTreeMap<String, Column>,
    pub indexes: BTreeMap<String, Index>,
    pub foreign_keys: BTreeMap<String, ForeignKey>,
    pub composite_primary_keys: BTreeMap<String, PrimaryKey>,
    #[serde(default)]
    pub unique_constraints: BTreeMap<String, UniqueConstraint>,
    #[serde(default)]
    pub policies: BTreeMap<String, Policy>,
    #[serde(default)]
    pub check_constraints: BTreeMap<String, CheckConstraint>,
    #[serde(default, rename = "isRLSEnabled")]
    pub is_rls_enabled: bool,
}

impl Table {
    pub fn schema_name(&self) -> &str {
        schema_or_public(&self.schema)
    }
}

pub fn schema_or_public(schema: &str) -> &str {
    if schema.is_empty() {
        "public"
    } else {
        schema
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Column {
    pub name: String,
    /// drizzle's SQL type: `integer`, `varchar(255)`, `timestamp (3) with time zone`, `serial`,
    /// an enum's name (with `type_schema`), `text[]`, ...
    #[serde(rename = "type")]
    pub sql_type: String,
    /// Set for enum columns (and arrays of enums).
    pub type_schema: Option<String>,
    pub primary_key: bool,
    pub not_null: bool,
    /// SQL text (`'USD'`, `now()`, `'[]'::jsonb`) or a JSON number or boolean.
    pub default: Option<serde_json::Value>,
    pub is_unique: Option<serde_json::Value>,
    pub unique_name: Option<String>,
    pub nulls_not_distinct: Option<bool>,
    pub generated: Option<Generated>,
    pub identity: Option<Identity>,
}

impl Column {
    pub fn is_unique(&self) -> bool {
        matches!(self.is_unique, Some(serde_json::Value::Bool(true)))
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generated {
    /// Always `stored`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "as")]
    pub expression: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Identity {
    /// `always` or `byDefault`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub schema: String,
    pub increment: Option<String>,
    pub min_value: Option<String>,
    pub max_value: Option<String>,
    pub start_with: Option<String>,
    pub cache: Option<String>,
    pub cycle: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Index {
    pub name: String,
    pub columns: Vec<IndexColumn>,
    pub is_unique: bool,
    #[serde(default)]
    pub with: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default = "btree")]
    pub method: String,
    /// The partial index predicate, as drizzle wrote it (`"t"."deleted_at" IS NULL`).
    #[serde(rename = "where")]
    pub predicate: Option<String>,
    #[serde(default)]
    pub concurrently: bool,
}

fn btree() -> String {
    "btree".into()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IndexColumn {
    /// A column name, or SQL when `is_expression` (which may end in an operator class).
    pub expression: String,
    pub is_expression: bool,
    pub asc: bool,
    /// `first` or `last`.
    pub nulls: Option<String>,
    pub opclass: Option<String>,
    /// drizzle-kit 1.0 writes the order beside an operator class; 0.x wrote the class in its
    /// place (then the index is ascending, nulls last).
    #[serde(skip)]
    pub order_beside_opclass: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForeignKey {
    pub name: String,
    pub table_from: String,
    pub columns_from: Vec<String>,
    pub table_to: String,
    pub schema_to: Option<String>,
    pub columns_to: Vec<String>,
    pub on_update: Option<String>,
    pub on_delete: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrimaryKey {
    pub name: String,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UniqueConstraint {
    pub name: String,
    pub columns: Vec<String>,
    pub nulls_not_distinct: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConstraint {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policy {
    pub name: String,
    /// `PERMISSIVE` (the default) or `RESTRICTIVE`.
    #[serde(rename = "as")]
    pub kind: Option<String>,
    /// `ALL` (the default), `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
    #[serde(rename = "for")]
    pub command: Option<String>,
    pub to: Option<Vec<String>>,
    pub using: Option<String>,
    pub with_check: Option<String>,
    /// For a policy linked to a table outside the schema: `"schema"."table"`.
    pub on: Option<String>,
    pub schema: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enum {
    pub name: String,
    pub schema: String,
    /// In their declared order, which is the order Postgres sorts them in.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Sequence {
    pub name: String,
    pub schema: String,
    pub increment: Option<String>,
    pub min_value: Option<String>,
    pub max_value: Option<String>,
    pub start_with: Option<String>,
    pub cache: Option<String>,
    pub cycle: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Role {
    pub name: String,
    pub create_db: Option<bool>,
    pub create_role: Option<bool>,
    pub inherit: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct View {
    pub name: String,
    pub schema: String,
    pub columns: BTreeMap<String, Column>,
    pub definition: Option<String>,
    pub materialized: bool,
    pub with: Option<BTreeMap<String, serde_json::Value>>,
    /// Declared with `.existing()`: drizzle does not manage it.
    pub is_existing: bool,
    pub with_no_data: Option<bool>,
    pub using: Option<String>,
    pub tablespace: Option<String>,
}

impl Snapshot {
    /// The schema before the first migration: nothing.
    pub fn empty() -> Self {
        Self {
            version: SUPPORTED_VERSION.into(),
            dialect: "postgresql".into(),
            ..Self::default()
        }
    }

    /// Parses a snapshot file; `tag` and `path` only name it in errors.
    pub fn parse(bytes: &[u8], tag: &str, path: &str) -> Result<Self, SnapshotError> {
        let invalid = |source| SnapshotError::Invalid {
            tag: tag.to_string(),
            path: path.to_string(),
            source,
        };
        // The version decides how the rest reads, so look at it before the strict parse.
        let head: serde_json::Value = serde_json::from_slice(bytes).map_err(invalid)?;
        let version = match head.get("version") {
            Some(serde_json::Value::String(v)) => v.clone(),
            Some(other) => other.to_string(),
            None => "none".into(),
        };
        if version != SUPPORTED_VERSION {
            return Err(SnapshotError::UnsupportedVersion {
                tag: tag.to_string(),
                path: path.to_string(),
                version,
                supported: "version 7, as drizzle-kit 0.31 writes it",
            });
        }
        let dialect = head.get("dialect").and_then(|d| d.as_str()).unwrap_or("");
        if dialect != "postgresql" {
            return Err(SnapshotError::WrongDialect {
                tag: tag.to_string(),
                path: path.to_string(),
                dialect: dialect.to_string(),
            });
        }
        serde_json::from_value(head).map_err(invalid)
    }

    /// The snapshot drizzle-kit 0.x wrote for `migration`: `meta/<tag prefix>_snapshot.json`.
    pub(crate) fn load_journal(source: &MigrationSource, migration: &Migration) -> Result<Self, SnapshotError> {
        let rel = checked_snapshot_path(migration.idx, &migration.tag)?;
        let path = source.display_path(&rel);
        let bytes = source.read(&rel)?.ok_or_else(|| SnapshotError::Missing {
            tag: migration.tag.clone(),
            path: path.clone(),
        })?;
        Self::parse(&bytes, &migration.tag, &path)
    }
}

/// drizzle-kit names a snapshot after the part of the tag before the first `_`.
pub fn snapshot_path(tag: &str) -> String {
    let prefix = tag.split('_').next().unwrap_or(tag);
    format!("meta/{prefix}_snapshot.json")
}

/// [`snapshot_path`], refusing a tag whose prefix would reach outside `meta/`.
pub fn checked_snapshot_path(index: usize, tag: &str) -> Result<String, SnapshotError> {
    let prefix = tag.split('_').next().unwrap_or(tag);
    match crate::migrations::source::unsafe_tag(tag).or_else(|| crate::migrations::source::unsafe_tag(prefix)) {
        Some(reason) => Err(SnapshotError::Source(crate::migrations::source::SourceError::UnsafeTag {
            index,
            tag: tag.to_string(),
            reason,
        })),
        None => Ok(snapshot_path(tag)),
    }
}

impl Classified for SnapshotError {
    fn error_type(&self) -> ErrorType {
        match self {
            Self::Source(e) => e.error_type(),
            _ => ErrorType::InvalidSnapshot,
        }
    }

    fn migration(&self) -> Option<&str> {
        self.tag()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT_0001: &[u8] = include_bytes!("../../migrations/meta/0001_snapshot.json");

    #[test]
    fn parses_the_projects_snapshot_fully() {
        let s = Snapshot::parse(PROJECT_0001, "0001_wish_2007_enums_audit", "0001_snapshot.json").unwrap();
        let t = &s.tables["public.wishlist_items"];
        assert_eq!(t.schema_name(), "public");
        assert_eq!(t.columns.len(), 19);
        assert_eq!(t.columns["store"].type_schema.as_deref(), Some("public"));
        assert_eq!(t.columns["priority"].default, Some(serde_json::json!(0)));
        assert_eq!(t.indexes["idx_wishlist_user_store_priority"].columns.len(), 3);
        assert!(t.check_constraints.contains_key("priority_range_check"));
        assert_eq!(
            s.enums["public.wishlist_store"].values,
            ["LEGO", "Barweer", "Cata", "BrickLink", "Other"]
        );
    }

    #[test]
    fn every_fixture_snapshot_parses() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/histories");
        let mut count = 0;
        for history in std::fs::read_dir(&root).unwrap().flatten().filter(|e| e.path().is_dir()) {
            let meta = history.path().join("migrations/meta");
            for file in std::fs::read_dir(&meta).unwrap().flatten() {
                let name = file.file_name().to_string_lossy().to_string();
                if name.ends_with("_snapshot.json") {
                    let bytes = std::fs::read(file.path()).unwrap();
                    Snapshot::parse(&bytes, &name, &name).unwrap_or_else(|e| panic!("{e}"));
                    count += 1;
                }
            }
        }
        assert!(count >= 13, "found {count} snapshots");
    }

    #[test]
    fn other_versions_and_dialects_are_refused() {
        let v6 = br#"{"version":"6","dialect":"postgresql","tables":{},"enums":{},"schemas":{}}"#;
        assert!(matches!(Snapshot::parse(v6, "t", "p"), Err(SnapshotError::UnsupportedVersion { version, .. }) if version == "6"));
        let none = br#"{"dialect":"postgresql"}"#;
        assert!(matches!(
            Snapshot::parse(none, "t", "p"),
            Err(SnapshotError::UnsupportedVersion { .. })
        ));
        let mysql = br#"{"version":"7","dialect":"mysql"}"#;
        assert!(matches!(Snapshot::parse(mysql, "t", "p"), Err(SnapshotError::WrongDialect { .. })));
    }

    #[test]
    fn an_unknown_field_is_an_error_not_a_silent_pass() {
        let mut value: serde_json::Value = serde_json::from_slice(PROJECT_0001).unwrap();
        value["tables"]["public.wishlist_items"]["columns"]["id"]["collation"] = "C".into();
        let err = Snapshot::parse(value.to_string().as_bytes(), "t", "p").unwrap_err();
        assert!(err.to_string().contains("collation"), "{err}");
    }

    #[test]
    fn snapshot_file_follows_the_tag_prefix() {
        assert_eq!(snapshot_path("0001_wish_2007_enums_audit"), "meta/0001_snapshot.json");
        assert_eq!(snapshot_path("20240101120000_init"), "meta/20240101120000_snapshot.json");
        assert_eq!(checked_snapshot_path(1, "0001_x").unwrap(), "meta/0001_snapshot.json");
    }

    #[test]
    fn a_snapshot_path_cannot_reach_outside_meta() {
        for tag in ["../../etc/passwd", "..\\x_y", "/abs_y", "x\0_y", "_y", ".._y"] {
            let err = checked_snapshot_path(3, tag).unwrap_err();
            assert_eq!(err.error_type(), ErrorType::InvalidMigrations, "{tag:?}");
            assert!(err.to_string().starts_with("journal entry 3"), "{err}");
        }
    }
}
