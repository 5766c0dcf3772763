//! Builders for the drift tests: a snapshot from a few JSON fields, and live catalog pieces.

use crate::db::catalog::{Catalog, Column, Table};
use crate::schema::snapshot::Snapshot;

pub(super) fn snapshot(json: serde_json::Value) -> Snapshot {
    let mut base = serde_json::json!({
        "id": "x", "prevId": "y", "version": "7", "dialect": "postgresql",
        "tables": {}, "enums": {}, "schemas": {}, "sequences": {}, "roles": {}, "policies": {}, "views": {},
        "_meta": {"columns": {}, "schemas": {}, "tables": {}}
    });
    for (k, v) in json.as_object().unwrap() {
        base[k] = v.clone();
    }
    Snapshot::parse(base.to_string().as_bytes(), "t", "p").unwrap()
}

pub(super) fn table(name: &str, columns: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    let mut t = serde_json::json!({
        "name": name, "schema": "", "columns": columns, "indexes": {}, "foreignKeys": {},
        "compositePrimaryKeys": {}, "uniqueConstraints": {}, "policies": {}, "checkConstraints": {}, "isRLSEnabled": false
    });
    for (k, v) in extra.as_object().unwrap() {
        t[k] = v.clone();
    }
    t
}

pub(super) fn col(name: &str, ty: &str, not_null: bool, default: Option<serde_json::Value>) -> serde_json::Value {
    let mut c = serde_json::json!({"name": name, "type": ty, "primaryKey": false, "notNull": not_null});
    if let Some(d) = default {
        c["default"] = d;
    }
    c
}

pub(super) fn live_col(name: &str, ty: &str, not_null: bool, default: Option<&str>) -> Column {
    Column {
        name: name.into(),
        type_display: ty.into(),
        type_schema: "pg_catalog".into(),
        type_name: ty.into(),
        type_kind: "b".into(),
        is_array: ty.ends_with("[]"),
        not_null,
        default: default.map(str::to_string),
        ..Column::default()
    }
}

pub(super) fn live(tables: Vec<Table>) -> Catalog {
    Catalog {
        server_version: 150_000,
        schemas: vec!["public".into()],
        tables,
        ..Catalog::default()
    }
}

pub(super) fn live_table(name: &str, columns: Vec<Column>) -> Table {
    Table {
        schema: "public".into(),
        name: name.into(),
        columns,
        ..Table::default()
    }
}
