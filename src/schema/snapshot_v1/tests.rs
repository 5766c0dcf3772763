//! The 1.0 reader on drizzle-kit 1.0.0-rc.5's own output (tests/fixtures/drizzle1) and on
//! copies of it broken on purpose.

use std::path::{Path, PathBuf};

use super::*;
use crate::error::{Classified, ErrorType};

const WISHLIST: &str = "tests/fixtures/drizzle1/wishlist/migrations";
const RENAMES: &str = "tests/fixtures/drizzle1/renames/migrations";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(WISHLIST)
}

/// A copy of the wishlist fixture the test may break.
fn copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture()).unwrap().flatten() {
        let to = dir.path().join(entry.file_name());
        std::fs::create_dir(&to).unwrap();
        for file in std::fs::read_dir(entry.path()).unwrap().flatten() {
            std::fs::copy(file.path(), to.join(file.file_name())).unwrap();
        }
    }
    dir
}

fn snapshots(dir: &Path) -> Vec<Result<Snapshot, SnapshotError>> {
    let source = MigrationSource::Dir(dir.to_path_buf());
    let set = source.load().unwrap();
    set.migrations.iter().map(|m| Snapshot::load(&source, m)).collect()
}

#[test]
fn every_folder_of_the_fixture_reads_into_the_0_x_model() {
    let all: Vec<Snapshot> = snapshots(&fixture()).into_iter().map(Result::unwrap).collect();
    assert_eq!(all.len(), 3);
    // The first folder is a base: what it creates is there.
    let first = &all[0];
    let items = &first.tables["public.wishlist_items"];
    assert_eq!(first.enums["public.wishlist_store"].values[0], "LEGO");
    assert!(items.columns["id"].primary_key, "a primary key Postgres names is the column's");
    assert_eq!(items.columns["store"].type_schema.as_deref(), Some("public"));
    assert_eq!(items.columns["created_at"].default, Some(serde_json::json!("now()")));
    assert_eq!(
        items.foreign_keys["wishlist_items_user_id_users_id_fkey"].on_delete.as_deref(),
        Some("CASCADE")
    );
    assert!(first.tables["public.users"].unique_constraints.contains_key("users_email_key"));
    assert!(!items.columns.contains_key("price"), "not yet");
    // Each later one is a diff: what its migration adds is there, on top of the first.
    let second = &all[1];
    let items = &second.tables["public.wishlist_items"];
    assert_eq!(items.columns["price"].sql_type, "numeric(10,2)");
    assert_eq!(items.columns["currency"].default, Some(serde_json::json!("'USD'")));
    assert_eq!(items.indexes["idx_wishlist_user_store_priority"].columns.len(), 3);
    assert!(items.columns.contains_key("title"), "kept from the base");
    assert!(!second.tables.contains_key("public.lists"));
    let third = &all[2];
    assert!(third.tables["public.lists"].columns["id"].primary_key);
    assert!(third.tables["public.wishlist_items"]
        .check_constraints
        .contains_key("priority_range_check"));
    assert_eq!(third.enums.len(), 2);
    // The model carries the chain's ids.
    assert_eq!(third.prev_id, second.id);
}

/// drizzle-kit 1.0 writes a rename as one delta on the renamed entity; what refers to it moves
/// with it (tests/fixtures/drizzle1/renames: each step's TypeScript and hints say what changed).
#[test]
fn renames_drops_and_alters_carry_through_the_chain() {
    let all: Vec<Snapshot> = snapshots(&Path::new(env!("CARGO_MANIFEST_DIR")).join(RENAMES))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let [first, second, third] = &all[..] else {
        panic!("{}", all.len())
    };
    let items = &first.tables["shop.items"];
    assert!(items.columns["id"].identity.is_some());
    assert_eq!(items.columns["tags"].sql_type, "text[]");
    assert_eq!(items.columns["total"].generated.as_ref().unwrap().expression, "price * qty");
    let created = &items.indexes["items_created_idx"];
    assert_eq!(created.predicate.as_deref(), Some("\"state\" = 'live'"));
    assert_eq!(created.with.as_ref().unwrap()["fillfactor"], "70");
    assert!(!created.columns[0].asc);
    assert_eq!(
        items.indexes["items_title_idx"].columns[0].opclass.as_deref(),
        Some("text_pattern_ops")
    );
    assert_eq!(
        first.tables["public.item_tags"].composite_primary_keys["item_tags_pkey"].columns,
        ["item_id", "tag"]
    );
    assert!(first.views.contains_key("public.live_items"));

    // 0001: the table and a column renamed, one index renamed and one dropped, a column dropped,
    // a default, the enum and the sequence altered, a policy added.
    let items = &second.tables["shop.items"];
    assert!(!second.tables.contains_key("public.item_tags"));
    let labels = &second.tables["public.item_labels"];
    assert_eq!(labels.unique_constraints["item_tags_tag_note_unique"].columns, ["tag", "comment"]);
    assert_eq!(labels.foreign_keys["item_tags_item_fk"].table_from, "item_labels");
    assert_eq!(
        items.indexes.keys().collect::<Vec<_>>(),
        ["items_title_pattern_idx"],
        "renamed, and the other dropped"
    );
    assert!(!items.columns.contains_key("legacy_code"));
    assert_eq!(items.columns["qty"].default, Some(serde_json::json!("2")));
    assert_eq!(second.enums["shop.item_state"].values, ["draft", "live", "archived"]);
    assert_eq!(second.sequences["public.invoice_numbers"].increment.as_deref(), Some("10"));
    assert_eq!(items.policies.len(), 2);

    // 0002: the schema renamed: its table, its enum and the enum's columns, and the foreign key
    // pointing into it follow; a column in the primary key and the unique renamed.
    assert!(!third.tables.contains_key("shop.items"));
    let items = &third.tables["store.items"];
    assert_eq!(items.columns["state"].type_schema.as_deref(), Some("store"));
    assert!(third.enums.contains_key("store.item_state"));
    assert_eq!(items.policies.keys().collect::<Vec<_>>(), ["items_write"]);
    let labels = &third.tables["public.item_labels"];
    assert_eq!(labels.composite_primary_keys["item_tags_pkey"].columns, ["item_id", "label"]);
    assert_eq!(labels.unique_constraints["item_tags_tag_note_unique"].columns, ["label", "comment"]);
    assert_eq!(labels.foreign_keys["item_tags_item_fk"].schema_to.as_deref(), Some("store"));
    assert!(third.views.is_empty());
}

#[test]
fn a_folder_removed_from_the_middle_breaks_the_chain_naming_the_folder() {
    let dir = copy();
    let mut folders: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    folders.sort();
    std::fs::remove_dir_all(dir.path().join(&folders[1])).unwrap();
    let results = snapshots(dir.path());
    assert!(results[0].is_ok(), "the base alone still reads");
    let err = results[1].as_ref().unwrap_err();
    assert!(
        matches!(
            err,
            SnapshotError::Chain {
                source: chain::ChainError::MissingParent { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.error_type(), ErrorType::InvalidSnapshot);
    assert_eq!(err.migration(), Some(folders[2].as_str()));
    let message = err.to_string();
    assert!(message.contains(&format!("{}/snapshot.json", folders[2])), "{message}");
}

#[test]
fn a_missing_snapshot_is_refused_only_for_the_version_asked() {
    let dir = copy();
    let mut folders: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    folders.sort();
    // A hand-written migration without a snapshot: no link of the chain.
    let manual = dir.path().join("20991231000000_manual");
    std::fs::create_dir(&manual).unwrap();
    std::fs::write(manual.join("migration.sql"), "SELECT 1;").unwrap();
    let results = snapshots(dir.path());
    assert!(results[..3].iter().all(Result::is_ok));
    assert!(matches!(&results[3], Err(SnapshotError::Missing { tag, .. }) if tag == "20991231000000_manual"));
}

#[test]
fn other_versions_dialects_and_unknown_fields_are_refused() {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(fixture()).unwrap().map(|e| e.unwrap().path()).collect();
    folders.sort();
    let bytes = std::fs::read(folders[0].join(SNAPSHOT_FILE)).unwrap();
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = value.clone();
        f(&mut v);
        parse(v.to_string().as_bytes(), "f", "t", "p")
    };
    assert!(with(&|_| {}).is_ok());
    assert!(matches!(
        with(&|v| v["version"] = "7".into()),
        Err(SnapshotError::UnsupportedVersion { version, .. }) if version == "7"
    ));
    assert!(matches!(
        with(&|v| v["dialect"] = "postgresql".into()),
        Err(SnapshotError::WrongDialect { .. })
    ));
    let node = with(&|v| v["ddl"][0]["collation"] = "C".into()).unwrap();
    // Unknown entity fields are found when the state is typed, naming the entity.
    let rows = match node.body {
        Body::Whole(rows) => rows,
        Body::Diff(_) => unreachable!(),
    };
    let e = ddl::to_snapshot(rows.into_iter(), "i", "p", "9").unwrap_err();
    assert!(e.contains("collation") && e.contains("tables public."), "{e}");
    assert!(matches!(
        with(&|v| v["type"] = "diff".into()),
        Err(SnapshotError::InvalidFolder { .. })
    ));
    assert!(matches!(
        with(&|v| v["extra"] = 1.into()),
        Err(SnapshotError::InvalidFolder { reason, .. }) if reason.contains("extra")
    ));
}

#[test]
fn format_8_holds_the_whole_schema_in_every_folder() {
    let v8 = serde_json::json!({
        "version": "8", "dialect": "postgres", "id": "b", "prevIds": ["a"], "renames": [],
        "ddl": [
            {"entityType": "tables", "schema": "public", "name": "t", "isRlsEnabled": false},
            {"entityType": "columns", "schema": "public", "table": "t", "name": "tags", "type": "text",
             "typeSchema": null, "notNull": false, "dimensions": 1, "default": null, "generated": null, "identity": null},
            {"entityType": "pks", "schema": "public", "table": "t", "name": "t_pk", "columns": ["tags"], "nameExplicit": true}
        ]
    });
    let node = parse(v8.to_string().as_bytes(), "2_b", "2_b", "p").unwrap();
    // Its parent need not be there: a whole snapshot ends the chain.
    let state = chain::state_of(&[node]).unwrap();
    let s = ddl::to_snapshot(state.rows().cloned(), "b", "a", "8").unwrap();
    let t = &s.tables["public.t"];
    assert_eq!(t.columns["tags"].sql_type, "text[]", "dimensions become the 0.x suffix");
    assert_eq!(t.composite_primary_keys["t_pk"].columns, ["tags"], "an explicit name is compared");

    // A dimension count no PostgreSQL type has is refused before it makes a huge type name.
    let mut huge = v8.clone();
    huge["ddl"][1]["dimensions"] = 4_000_000_000u32.into();
    let node = parse(huge.to_string().as_bytes(), "2_b", "2_b", "p").unwrap();
    let state = chain::state_of(&[node]).unwrap();
    let err = ddl::to_snapshot(state.rows().cloned(), "b", "a", "8").unwrap_err();
    assert!(err.contains("array dimensions"), "{err}");
}
