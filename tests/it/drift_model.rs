//! Drift's model question on catalogs Postgres built: the snapshot's DDL, as drizzle-kit renders
//! it, built in a rolled-back transaction and compared with what the migrations built. The two
//! false drifts a spelling comparison reported on real histories, and column order.

use serde_json::Value;

use crate::harness::*;

fn drift(url: &str, migrations: &std::path::Path, code: i32) -> Value {
    run(&mut wm(url, migrations, &["drift"])).expect(code).report()
}

/// The repo's history with its last migration and snapshot edited by `edit`.
fn edited(sql: &str, edit: impl Fn(&mut Value)) -> tempfile::TempDir {
    let dir = copy_fixture("migrations");
    let sql_path = dir.path().join(format!("{TAG_0001}.sql"));
    let mut text = std::fs::read_to_string(&sql_path).unwrap();
    text.push_str(sql);
    std::fs::write(&sql_path, text).unwrap();
    let snapshot_path = dir.path().join("meta/0001_snapshot.json");
    let mut snapshot: Value = serde_json::from_str(&std::fs::read_to_string(&snapshot_path).unwrap()).unwrap();
    edit(&mut snapshot["tables"]["public.wishlist_items"]);
    std::fs::write(&snapshot_path, serde_json::to_string_pretty(&snapshot).unwrap()).unwrap();
    dir
}

#[tokio::test]
async fn a_null_default_and_an_expression_index_ordered_inside_its_sql_are_no_mismatch() {
    let dir = edited(
        // What drizzle-kit generates for `index().on(sql`${t.createdAt} desc`)`.
        "--> statement-breakpoint\nCREATE INDEX \"idx_wishlist_newest\" ON \"wishlist_items\" USING btree (\"created_at\" desc);\n",
        |table| {
            // `.default(null)`: Postgres stores no default for it.
            table["columns"]["notes"]["default"] = "null".into();
            // drizzle-kit records an SQL index column as ascending, nulls last, whatever its
            // SQL says.
            table["indexes"]["idx_wishlist_newest"] = serde_json::json!({
                "name": "idx_wishlist_newest",
                "columns": [{"expression": "\"created_at\" desc", "isExpression": true, "asc": true, "nulls": "last"}],
                "isUnique": false, "concurrently": false, "method": "btree", "with": {}
            });
        },
    );
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, dir.path(), &["migrate"])).expect(0);
    let report = drift(&db.url, dir.path(), 0);
    assert_eq!(report["status"], "ok", "{report}");
    assert_eq!(report["baseline"], "recorded");
    assert_eq!(report["modelMismatches"], serde_json::json!([]), "{report}");

    // The same snapshot against a migration that built something else is still a mismatch.
    let db = pg().fresh_db().await;
    let other = edited(
        "--> statement-breakpoint\nCREATE INDEX \"idx_wishlist_newest\" ON \"wishlist_items\" USING btree (\"created_at\" DESC NULLS LAST);\n--> statement-breakpoint\nALTER TABLE \"wishlist_items\" ALTER COLUMN \"notes\" SET DEFAULT '';\n",
        |table| {
            table["columns"]["notes"]["default"] = "null".into();
            table["indexes"]["idx_wishlist_newest"] = serde_json::json!({
                "name": "idx_wishlist_newest",
                "columns": [{"expression": "\"created_at\" desc", "isExpression": true, "asc": true, "nulls": "last"}],
                "isUnique": false, "concurrently": false, "method": "btree", "with": {}
            });
        },
    );
    run(&mut wm(&db.url, other.path(), &["migrate"])).expect(0);
    let report = drift(&db.url, other.path(), 0);
    assert_eq!(report["status"], "modelMismatch", "{report}");
    assert_eq!(
        kinds_of(&report, "modelMismatches"),
        [
            ("columnDefault".to_string(), "public.wishlist_items.notes".to_string()),
            (
                "indexDefinition".to_string(),
                "public.wishlist_items.idx_wishlist_newest".to_string()
            ),
        ]
    );
}

#[tokio::test]
async fn a_column_moved_to_the_end_of_its_table_is_no_change() {
    // What an online type change's swap leaves: the same column, last in the table.
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    db.client()
        .await
        .batch_execute(
            "ALTER TABLE wishlist_items ADD COLUMN notes_new text;
             UPDATE wishlist_items SET notes_new = notes;
             ALTER TABLE wishlist_items DROP COLUMN notes;
             ALTER TABLE wishlist_items RENAME COLUMN notes_new TO notes;",
        )
        .await
        .unwrap();
    let position: i16 = db
        .client()
        .await
        .query_one(
            "select attnum from pg_attribute where attrelid = 'wishlist_items'::regclass and attname = 'notes'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(position > 19, "notes moved to the end ({position})");
    let report = run(&mut wm(&db.url, "migrations", &["drift"])).expect(0).report();
    assert_eq!(report["status"], "ok", "{report}");
    assert_eq!(report["differences"], serde_json::json!([]));
    assert_eq!(report["modelMismatches"], serde_json::json!([]));
}
