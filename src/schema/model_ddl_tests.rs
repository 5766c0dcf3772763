use serde_json::json;

use super::*;

fn snapshot(tables: serde_json::Value, enums: serde_json::Value) -> Snapshot {
    let s = json!({
        "id": "x", "prevId": "y", "version": "7", "dialect": "postgresql",
        "tables": tables, "enums": enums, "schemas": {}, "sequences": {}, "roles": {}, "policies": {}, "views": {},
        "_meta": {"columns": {}, "schemas": {}, "tables": {}}
    });
    Snapshot::parse(s.to_string().as_bytes(), "t", "p").unwrap()
}

fn table(columns: serde_json::Value, indexes: serde_json::Value) -> serde_json::Value {
    json!({"public.items": {
        "name": "items", "schema": "", "columns": columns, "indexes": indexes, "foreignKeys": {},
        "compositePrimaryKeys": {}, "uniqueConstraints": {}, "policies": {}, "checkConstraints": {}, "isRLSEnabled": false
    }})
}

#[test]
fn a_table_is_created_in_its_prefixed_schema_with_enum_types_there_too() {
    let s = snapshot(
        table(
            json!({
                "id": {"name": "id", "type": "serial", "primaryKey": true, "notNull": true},
                "state": {"name": "state", "type": "state", "typeSchema": "public", "primaryKey": false, "notNull": true, "default": "'open'"},
                "tags": {"name": "tags", "type": "state[]", "typeSchema": "public", "primaryKey": false, "notNull": false},
                "note": {"name": "note", "type": "varchar(20)", "primaryKey": false, "notNull": false, "default": "null"}
            }),
            json!({}),
        ),
        json!({"public.state": {"name": "state", "schema": "public", "values": ["open", "it's done"]}}),
    );
    let ddl = render(&s);
    assert_eq!(ddl.schemas, BTreeSet::from(["public".to_string()]));
    assert_eq!(
        ddl.statements,
        [
            "CREATE SCHEMA \"wm_model__public\"",
            "CREATE TYPE \"wm_model__public\".\"state\" AS ENUM('open', 'it''s done')",
            "CREATE TABLE \"wm_model__public\".\"items\" (\n\t\"id\" serial PRIMARY KEY NOT NULL,\n\t\"note\" varchar(20) DEFAULT null,\n\t\"state\" \"wm_model__public\".\"state\" DEFAULT 'open' NOT NULL,\n\t\"tags\" \"wm_model__public\".\"state\"[]\n)",
        ]
    );
}

#[test]
fn index_columns_are_written_as_drizzle_kit_writes_them() {
    let s = snapshot(
        table(
            json!({"at": {"name": "at", "type": "timestamp", "primaryKey": false, "notNull": false}}),
            json!({"items_at": {"name": "items_at", "isUnique": false, "method": "btree", "columns": [
                // `.desc()`: drizzle's default for it is nulls first, written as plain DESC.
                {"expression": "at", "isExpression": false, "asc": false, "nulls": "first"},
                // `.desc().nullsLast()`: written out.
                {"expression": "at", "isExpression": false, "asc": false, "nulls": "last"},
                // sql`... desc`: drizzle-kit records it ascending, nulls last, and writes the
                // expression alone, so the index is DESC with Postgres's NULLS FIRST.
                {"expression": "\"at\" desc", "isExpression": true, "asc": true, "nulls": "last"},
                // 0.x: an operator class in place of the order.
                {"expression": "at", "isExpression": false, "asc": false, "nulls": "first", "opclass": "timestamp_ops"}
            ], "where": "\"items\".\"at\" IS NOT NULL"}}),
        ),
        json!({}),
    );
    let ddl = render(&s);
    assert_eq!(
        ddl.statements.last().unwrap(),
        "CREATE INDEX \"items_at\" ON \"wm_model__public\".\"items\" USING btree (\"at\" DESC NULLS FIRST,\"at\" DESC NULLS LAST,\"at\" desc,\"at\" timestamp_ops) WHERE \"items\".\"at\" IS NOT NULL"
    );
}

#[test]
fn drizzle_kit_1_writes_the_order_beside_the_operator_class() {
    let c = |asc: bool, nulls: &str| IndexColumn {
        expression: "embedding".into(),
        is_expression: false,
        asc,
        nulls: Some(nulls.into()),
        opclass: Some("vector_cosine_ops".into()),
        order_beside_opclass: true,
    };
    assert_eq!(index_column(&c(true, "last")), "\"embedding\" vector_cosine_ops");
    assert_eq!(index_column(&c(false, "first")), "\"embedding\" vector_cosine_ops DESC");
    assert_eq!(index_column(&c(false, "last")), "\"embedding\" vector_cosine_ops DESC NULLS LAST");
}
