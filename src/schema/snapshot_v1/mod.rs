//! drizzle-kit 1.0's snapshots: `<folder>/snapshot.json` beside each `migration.sql`, format
//! version `"9"` as drizzle-kit 1.0.0-rc.5 writes it (`type: "base"` with the whole schema in
//! `ddl` for the first folder, `type: "diff"` with `deltas` against the parent for every later
//! one; both with `id`, `prevIds` and `footprints`), or `"8"` as earlier 1.0 betas wrote it
//! (the whole schema in every folder). The schema after a migration is rebuilt from the chain
//! (`chain`) and read into the 0.x model (`ddl`), so every comparison reads both lines alike.
//!
//! Also where a migration's snapshot is found for either layout: [`Snapshot::load`], [`Snapshot::at`].

pub mod chain;
mod ddl;

use serde::Deserialize;
use serde_json::Value;

use crate::migrations::source::{Layout, Migration, MigrationSource};
use crate::schema::snapshot::{Snapshot, SnapshotError};

use chain::{Body, Delta, Node, Row, ORIGIN};

/// The file drizzle-kit 1.0 writes beside `migration.sql`.
pub const SNAPSHOT_FILE: &str = "snapshot.json";

const SUPPORTED: &str = "\"9\" as drizzle-kit 1.0.0-rc.5 writes it, or \"8\" as its betas did";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct File {
    /// `base` or `diff` (format 9); absent in format 8, where every snapshot is whole.
    #[serde(default, rename = "type")]
    kind: Option<String>,
    version: String,
    #[allow(dead_code)]
    dialect: String,
    id: String,
    prev_ids: Vec<String>,
    #[serde(default)]
    ddl: Option<Vec<Row>>,
    #[serde(default)]
    deltas: Option<Vec<Delta>>,
    /// Which statements touch what (drizzle-kit's commutativity check); not schema.
    #[serde(default)]
    #[allow(dead_code)]
    footprints: Option<Value>,
    /// Format 8's renames, hints for drizzle-kit up's diff; not schema.
    #[serde(default)]
    #[allow(dead_code)]
    renames: Option<Value>,
}

/// Reads one folder's `snapshot.json` into its place in the chain; `tag` and `path` name it in
/// errors.
pub fn parse(bytes: &[u8], folder: &str, tag: &str, path: &str) -> Result<Node, SnapshotError> {
    let invalid = |reason: String| SnapshotError::InvalidFolder {
        tag: tag.to_string(),
        path: path.to_string(),
        reason,
    };
    let head: Value = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let version = match head.get("version") {
        Some(Value::String(v)) => v.clone(),
        Some(other) => other.to_string(),
        None => "none".into(),
    };
    if version != "9" && version != "8" {
        return Err(SnapshotError::UnsupportedVersion {
            tag: tag.to_string(),
            path: path.to_string(),
            version,
            supported: SUPPORTED,
        });
    }
    let dialect = head.get("dialect").and_then(Value::as_str).unwrap_or("");
    if dialect != "postgres" {
        return Err(SnapshotError::WrongDialect {
            tag: tag.to_string(),
            path: path.to_string(),
            dialect: dialect.to_string(),
        });
    }
    let file: File = serde_json::from_value(head).map_err(|e| invalid(e.to_string()))?;
    let body = match (file.version.as_str(), file.kind.as_deref(), file.ddl, file.deltas) {
        ("9", Some("base"), Some(ddl), None) | ("8", None, Some(ddl), None) => Body::Whole(ddl),
        ("9", Some("diff"), None, Some(deltas)) => Body::Diff(deltas),
        (_, kind, ddl, deltas) => {
            return Err(invalid(format!(
                "type {kind:?} with {} and {}: a base holds ddl, a diff holds deltas",
                if ddl.is_some() { "ddl" } else { "no ddl" },
                if deltas.is_some() { "deltas" } else { "no deltas" },
            )))
        }
    };
    Ok(Node {
        folder: folder.to_string(),
        version: file.version,
        id: file.id,
        prev_ids: file.prev_ids,
        body,
    })
}

/// The schema once `migration` (a 1.0 folder) has run, rebuilt from the snapshots of it and of
/// the folders sorting before it. A folder without a snapshot (a hand-written migration) is no
/// link of the chain, as drizzle-kit 1.0 sees it; `migration`'s own must exist.
fn load_folder(source: &MigrationSource, migration: &Migration) -> Result<Snapshot, SnapshotError> {
    let path_of = |folder: &str| source.display_path(&format!("{folder}/{SNAPSHOT_FILE}"));
    let missing = || SnapshotError::Missing {
        tag: migration.tag.clone(),
        path: path_of(&migration.tag),
    };
    let folders = source.migration_folders()?;
    // The folder may have gone since the set was loaded.
    let upto = folders.iter().position(|f| *f == migration.tag).ok_or_else(missing)? + 1;
    let mut nodes = Vec::with_capacity(upto);
    for folder in &folders[..upto] {
        match source.read(&format!("{folder}/{SNAPSHOT_FILE}"))? {
            Some(bytes) => nodes.push(parse(&bytes, folder, &migration.tag, &path_of(folder))?),
            None if *folder == migration.tag => return Err(missing()),
            None => {}
        }
    }
    let state = chain::state_of(&nodes).map_err(|source| SnapshotError::Chain {
        tag: migration.tag.clone(),
        path: path_of(source.folder()),
        source,
    })?;
    let own = nodes.last().expect("the migration's own snapshot was read");
    let prev = own.prev_ids.first().map_or(ORIGIN, String::as_str);
    ddl::to_snapshot(state.rows().cloned(), &own.id, prev, &own.version).map_err(|reason| SnapshotError::InvalidFolder {
        tag: migration.tag.clone(),
        path: path_of(&own.folder),
        reason: format!("the schema rebuilt from the snapshots up to it: {reason}"),
    })
}

impl Snapshot {
    /// The snapshot drizzle-kit wrote for `migration`: 0.x's `meta/<tag prefix>_snapshot.json`,
    /// or 1.0's chain up to `<folder>/snapshot.json`.
    pub fn load(source: &MigrationSource, migration: &Migration) -> Result<Self, SnapshotError> {
        match migration.layout() {
            Layout::Journal => Self::load_journal(source, migration),
            Layout::Folders => load_folder(source, migration),
        }
    }

    /// The expected schema once `migration` is applied, or before any when `None`.
    pub fn at(source: &MigrationSource, migration: Option<&Migration>) -> Result<Self, SnapshotError> {
        match migration {
            Some(m) => Self::load(source, m),
            None => Ok(Self::empty()),
        }
    }
}

#[cfg(test)]
mod tests;
