//! The entities of a drizzle-kit 1.0 snapshot (`ddl` rows tagged with `entityType`, as
//! `createDDL` in drizzle-kit 1.0.0-rc.5 defines them), typed strictly, and turned into the model
//! the 0.x snapshot reader produces, so drift, verify and rollback compare both alike.
//!
//! Where the two formats say the same thing differently, the 0.x form is what the comparison
//! expects: array dimensions become `[]` suffixes, primary keys Postgres named become a column's
//! `primaryKey`, foreign key actions and index options keep their meaning. Grants
//! (`privileges`, new in 1.0) are read but not compared: the catalog side does not read grants.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::schema::snapshot::{
    CheckConstraint, Column, Enum, ForeignKey, Generated, Identity, Index, IndexColumn, Policy, PrimaryKey, Role, Sequence, Snapshot,
    Table, UniqueConstraint, View,
};

use super::chain::Row;

#[derive(Debug, Deserialize)]
#[serde(tag = "entityType", rename_all = "lowercase")]
enum Entity {
    Schemas(SchemaRow),
    Tables(TableRow),
    Enums(EnumRow),
    Columns(ColumnRow),
    Indexes(IndexRow),
    Fks(FkRow),
    Pks(PkRow),
    Uniques(UniqueRow),
    Checks(CheckRow),
    Sequences(SequenceRow),
    Roles(RoleRow),
    /// Parsed to refuse a malformed grant, not compared.
    #[allow(dead_code)]
    Privileges(PrivilegeRow),
    Policies(PolicyRow),
    Views(ViewRow),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaRow {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TableRow {
    schema: String,
    name: String,
    is_rls_enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnumRow {
    schema: String,
    name: String,
    values: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ColumnRow {
    schema: String,
    table: String,
    name: String,
    #[serde(rename = "type")]
    sql_type: String,
    #[serde(default)]
    type_schema: Option<String>,
    not_null: bool,
    dimensions: u32,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    generated: Option<GeneratedRow>,
    #[serde(default)]
    identity: Option<IdentityRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GeneratedRow {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "as")]
    expression: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IdentityRow {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    increment: Option<String>,
    #[serde(default)]
    min_value: Option<String>,
    #[serde(default)]
    max_value: Option<String>,
    #[serde(default)]
    start_with: Option<String>,
    #[serde(default)]
    cache: Option<serde_json::Number>,
    #[serde(default)]
    cycle: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IndexRow {
    schema: String,
    table: String,
    name: String,
    #[allow(dead_code)]
    name_explicit: bool,
    columns: Vec<IndexColumnRow>,
    is_unique: bool,
    #[serde(default, rename = "where")]
    predicate: Option<String>,
    /// Storage parameters as drizzle-kit writes them: `fillfactor=70,deduplicate_items=off`.
    with: String,
    method: String,
    concurrently: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IndexColumnRow {
    value: String,
    is_expression: bool,
    asc: bool,
    nulls_first: bool,
    #[serde(default)]
    opclass: Option<OpclassRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpclassRow {
    name: String,
    /// The type's default class: drizzle-kit does not write it into the SQL.
    default: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FkRow {
    schema: String,
    table: String,
    name: String,
    #[allow(dead_code)]
    name_explicit: bool,
    columns: Vec<String>,
    schema_to: String,
    table_to: String,
    columns_to: Vec<String>,
    #[serde(default)]
    on_update: Option<String>,
    #[serde(default)]
    on_delete: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PkRow {
    schema: String,
    table: String,
    name: String,
    columns: Vec<String>,
    name_explicit: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UniqueRow {
    schema: String,
    table: String,
    name: String,
    #[allow(dead_code)]
    name_explicit: bool,
    columns: Vec<String>,
    nulls_not_distinct: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckRow {
    schema: String,
    table: String,
    name: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SequenceRow {
    schema: String,
    name: String,
    #[serde(default)]
    increment_by: Option<String>,
    #[serde(default)]
    min_value: Option<String>,
    #[serde(default)]
    max_value: Option<String>,
    #[serde(default)]
    start_with: Option<String>,
    #[serde(default)]
    cache_size: Option<serde_json::Number>,
    #[serde(default)]
    cycle: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct RoleRow {
    name: String,
    #[serde(default)]
    superuser: Option<bool>,
    #[serde(default)]
    create_db: Option<bool>,
    #[serde(default)]
    create_role: Option<bool>,
    #[serde(default)]
    inherit: Option<bool>,
    #[serde(default)]
    can_login: Option<bool>,
    #[serde(default)]
    replication: Option<bool>,
    #[serde(default)]
    bypass_rls: Option<bool>,
    #[serde(default)]
    conn_limit: Option<serde_json::Number>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    valid_until: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct PrivilegeRow {
    grantor: String,
    grantee: String,
    schema: String,
    table: String,
    #[serde(rename = "type")]
    kind: String,
    is_grantable: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PolicyRow {
    schema: String,
    table: String,
    name: String,
    #[serde(rename = "as")]
    kind: String,
    #[serde(rename = "for")]
    command: String,
    roles: Vec<String>,
    #[serde(default)]
    using: Option<String>,
    #[serde(default)]
    with_check: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ViewRow {
    schema: String,
    name: String,
    #[serde(default)]
    definition: Option<String>,
    #[serde(default)]
    with: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    with_no_data: Option<bool>,
    #[serde(default)]
    using: Option<String>,
    #[serde(default)]
    tablespace: Option<String>,
    materialized: bool,
}

/// PostgreSQL's MAXDIM: more is no column type, and would only make a huge type name.
const MAX_DIMENSIONS: u32 = 6;

fn qualified(schema: &str, name: &str) -> String {
    format!("{schema}.{name}")
}

fn number(n: serde_json::Number) -> String {
    n.to_string()
}

/// `fillfactor=70,deduplicate_items=off` as the 0.x map of storage parameters.
fn storage_parameters(with: &str) -> Option<BTreeMap<String, Value>> {
    let params: BTreeMap<String, Value> = with
        .split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), Value::String(v.trim().to_string())))
        .collect();
    (!params.is_empty()).then_some(params)
}

fn table_of<'a>(tables: &'a mut BTreeMap<String, Table>, schema: &str, table: &str, what: &str) -> Result<&'a mut Table, String> {
    tables
        .get_mut(&qualified(schema, table))
        .ok_or_else(|| format!("{what} belongs to table {schema}.{table}, which the snapshot does not have"))
}

/// The schema the rows describe, in the 0.x model. `id` and `prev_id` name the snapshot it is
/// the state of; an entity of a table the rows do not hold is an error (a broken chain).
pub fn to_snapshot(rows: impl Iterator<Item = Row>, id: &str, prev_id: &str, version: &str) -> Result<Snapshot, String> {
    let mut entities = Vec::new();
    for row in rows {
        let shown = describe(&row);
        let entity: Entity = serde_json::from_value(Value::Object(row)).map_err(|e| format!("{shown}: {e}"))?;
        entities.push(entity);
    }
    let mut s = Snapshot {
        id: id.to_string(),
        prev_id: prev_id.to_string(),
        version: version.to_string(),
        dialect: "postgres".into(),
        ..Snapshot::default()
    };
    // Tables first, then columns: everything else hangs off one of them.
    entities.sort_by_key(|e| match e {
        Entity::Tables(_) => 0,
        Entity::Columns(_) => 1,
        _ => 2,
    });
    for e in entities {
        match e {
            Entity::Tables(t) => {
                s.tables.insert(
                    qualified(&t.schema, &t.name),
                    Table {
                        name: t.name,
                        schema: t.schema,
                        columns: BTreeMap::new(),
                        indexes: BTreeMap::new(),
                        foreign_keys: BTreeMap::new(),
                        composite_primary_keys: BTreeMap::new(),
                        unique_constraints: BTreeMap::new(),
                        policies: BTreeMap::new(),
                        check_constraints: BTreeMap::new(),
                        is_rls_enabled: t.is_rls_enabled,
                    },
                );
            }
            Entity::Schemas(x) => {
                s.schemas.insert(x.name.clone(), x.name);
            }
            Entity::Enums(x) => {
                s.enums.insert(
                    qualified(&x.schema, &x.name),
                    Enum {
                        name: x.name,
                        schema: x.schema,
                        values: x.values,
                    },
                );
            }
            Entity::Columns(c) => {
                if c.dimensions > MAX_DIMENSIONS {
                    return Err(format!(
                        "column {}.{}.{} has {} array dimensions; PostgreSQL allows {MAX_DIMENSIONS}",
                        c.schema, c.table, c.name, c.dimensions
                    ));
                }
                let t = table_of(&mut s.tables, &c.schema, &c.table, &format!("column {}", c.name))?;
                let column = Column {
                    name: c.name.clone(),
                    // 1.0 keeps the dimensions apart; 0.x wrote them into the type.
                    sql_type: format!("{}{}", c.sql_type, "[]".repeat(c.dimensions as usize)),
                    type_schema: c.type_schema.filter(|ts| !ts.is_empty() && ts != "pg_catalog"),
                    primary_key: false,
                    not_null: c.not_null,
                    default: c.default.map(Value::String),
                    is_unique: None,
                    unique_name: None,
                    nulls_not_distinct: None,
                    generated: c.generated.map(|g| Generated {
                        kind: g.kind,
                        expression: g.expression,
                    }),
                    identity: c.identity.map(|i| Identity {
                        kind: i.kind,
                        name: i.name,
                        schema: c.schema.clone(),
                        increment: i.increment,
                        min_value: i.min_value,
                        max_value: i.max_value,
                        start_with: i.start_with,
                        cache: i.cache.map(number),
                        cycle: i.cycle,
                    }),
                };
                t.columns.insert(c.name, column);
            }
            Entity::Pks(pk) => {
                let t = table_of(&mut s.tables, &pk.schema, &pk.table, &format!("primary key {}", pk.name))?;
                // A name drizzle-kit derived (`<table>_pkey`, or 0.x's `<table>_<columns>_pk` kept
                // by drizzle-kit up) is whatever Postgres or 0.x's SQL named it: compared on its
                // columns, as 0.x's column-level primaryKey is.
                match pk.columns.as_slice() {
                    [only] if !pk.name_explicit => {
                        let column = t.columns.get_mut(only).ok_or_else(|| {
                            format!(
                                "primary key {} names column {only}, which table {} does not have",
                                pk.name, pk.table
                            )
                        })?;
                        column.primary_key = true;
                    }
                    _ => {
                        t.composite_primary_keys.insert(
                            pk.name.clone(),
                            PrimaryKey {
                                name: pk.name,
                                columns: pk.columns,
                            },
                        );
                    }
                }
            }
            Entity::Uniques(u) => {
                let t = table_of(&mut s.tables, &u.schema, &u.table, &format!("unique constraint {}", u.name))?;
                t.unique_constraints.insert(
                    u.name.clone(),
                    UniqueConstraint {
                        name: u.name,
                        columns: u.columns,
                        nulls_not_distinct: u.nulls_not_distinct,
                    },
                );
            }
            Entity::Fks(fk) => {
                let t = table_of(&mut s.tables, &fk.schema, &fk.table, &format!("foreign key {}", fk.name))?;
                t.foreign_keys.insert(
                    fk.name.clone(),
                    ForeignKey {
                        name: fk.name,
                        table_from: fk.table,
                        columns_from: fk.columns,
                        table_to: fk.table_to,
                        schema_to: Some(fk.schema_to),
                        columns_to: fk.columns_to,
                        on_update: fk.on_update,
                        on_delete: fk.on_delete,
                    },
                );
            }
            Entity::Checks(ck) => {
                let t = table_of(&mut s.tables, &ck.schema, &ck.table, &format!("check {}", ck.name))?;
                t.check_constraints.insert(
                    ck.name.clone(),
                    CheckConstraint {
                        name: ck.name,
                        value: ck.value,
                    },
                );
            }
            Entity::Indexes(i) => {
                let t = table_of(&mut s.tables, &i.schema, &i.table, &format!("index {}", i.name))?;
                let columns = i
                    .columns
                    .into_iter()
                    .map(|c| IndexColumn {
                        expression: c.value,
                        is_expression: c.is_expression,
                        asc: c.asc,
                        nulls: Some(if c.nulls_first { "first" } else { "last" }.into()),
                        opclass: c.opclass.filter(|o| !o.default).map(|o| o.name),
                        order_beside_opclass: true,
                    })
                    .collect();
                t.indexes.insert(
                    i.name.clone(),
                    Index {
                        name: i.name,
                        columns,
                        is_unique: i.is_unique,
                        with: storage_parameters(&i.with),
                        method: i.method,
                        predicate: i.predicate,
                        concurrently: i.concurrently,
                    },
                );
            }
            Entity::Policies(p) => {
                let policy = Policy {
                    name: p.name.clone(),
                    kind: Some(p.kind),
                    command: Some(p.command),
                    to: (!p.roles.is_empty()).then_some(p.roles),
                    using: p.using,
                    with_check: p.with_check,
                    on: None,
                    schema: None,
                };
                match s.tables.get_mut(&qualified(&p.schema, &p.table)) {
                    Some(t) => {
                        t.policies.insert(p.name, policy);
                    }
                    // Linked to a table drizzle does not manage, as 0.x lists such policies.
                    None => {
                        s.policies.insert(
                            qualified(&p.schema, &p.name),
                            Policy {
                                on: Some(format!("\"{}\".\"{}\"", p.schema, p.table)),
                                schema: Some(p.schema),
                                ..policy
                            },
                        );
                    }
                }
            }
            Entity::Sequences(q) => {
                s.sequences.insert(
                    qualified(&q.schema, &q.name),
                    Sequence {
                        name: q.name,
                        schema: q.schema,
                        increment: q.increment_by,
                        min_value: q.min_value,
                        max_value: q.max_value,
                        start_with: q.start_with,
                        cache: q.cache_size.map(number),
                        cycle: q.cycle,
                    },
                );
            }
            Entity::Roles(r) => {
                s.roles.insert(
                    r.name.clone(),
                    Role {
                        name: r.name,
                        create_db: r.create_db,
                        create_role: r.create_role,
                        inherit: r.inherit,
                    },
                );
            }
            Entity::Privileges(_) => {}
            Entity::Views(v) => {
                let with = v
                    .with
                    .map(|w| w.into_iter().filter(|(_, value)| !value.is_null()).collect::<BTreeMap<_, _>>())
                    .filter(|w| !w.is_empty());
                s.views.insert(
                    qualified(&v.schema, &v.name),
                    View {
                        name: v.name,
                        schema: v.schema,
                        columns: BTreeMap::new(),
                        definition: v.definition,
                        materialized: v.materialized,
                        with,
                        is_existing: false,
                        with_no_data: v.with_no_data,
                        using: v.using,
                        tablespace: v.tablespace,
                    },
                );
            }
        }
    }
    Ok(s)
}

fn describe(row: &Row) -> String {
    let field = |f: &str| row.get(f).and_then(Value::as_str).unwrap_or("");
    let parts: Vec<&str> = [field("schema"), field("table"), field("name")]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    format!("{} {}", field("entityType"), parts.join("."))
}
