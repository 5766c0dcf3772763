//! The schema a snapshot describes, as the DDL drizzle-kit would generate for it from nothing
//! (its `CREATE TABLE`, `CREATE INDEX`, `ADD CONSTRAINT … FOREIGN KEY` convertors, 0.31 and
//! 1.0), with every schema of the snapshot renamed under a prefix so that Postgres can build it
//! beside the live schema, in a transaction that is rolled back. Postgres then reads, resolves
//! and prints every default, check, index expression and policy itself: drift compares
//! catalogs Postgres built, never two spellings of SQL. Pure.
//!
//! Views are not built: drizzle's snapshot does not hold a definition Postgres would print as the
//! migration's does, so drift compares a view's existence and kind only (`views`).

use std::collections::BTreeSet;

use crate::schema::snapshot::{schema_or_public, Column, Index, IndexColumn, Policy, Snapshot, Table};
use crate::sql::rename::rename_schemas;

/// Where the model is built: `<MODEL_PREFIX><schema>` for each schema of the snapshot. Long and
/// odd enough that no application names a schema so, and removed again from every name and
/// every printed expression once Postgres has read the model back.
pub const MODEL_PREFIX: &str = "wm_model__";

/// The model's DDL: what drizzle-kit would generate for `s`, in the order it would run.
pub struct ModelDdl {
    /// The snapshot's schemas, as they are named in the application (`public` always).
    pub schemas: BTreeSet<String>,
    pub statements: Vec<String>,
}

/// The snapshot's views that drizzle manages: (schema, name, materialized).
pub fn views(s: &Snapshot) -> Vec<(String, String, bool)> {
    s.views
        .values()
        .filter(|v| !v.is_existing)
        .map(|v| (schema_or_public(&v.schema).to_string(), v.name.clone(), v.materialized))
        .collect()
}

/// `name` quoted as drizzle-kit quotes every identifier (with an embedded quote doubled).
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The model's name of `schema` (empty for `public`, as 0.x snapshots write it).
fn mapped(schema: &str) -> String {
    quoted(&format!("{MODEL_PREFIX}{}", schema_or_public(schema)))
}

fn relation(schema: &str, name: &str) -> String {
    format!("{}.{}", mapped(schema), quoted(name))
}

pub fn render(s: &Snapshot) -> ModelDdl {
    let mut schemas: BTreeSet<String> = BTreeSet::from(["public".to_string()]);
    schemas.extend(s.schemas.values().map(|n| schema_or_public(n).to_string()));
    schemas.extend(s.tables.values().map(|t| t.schema_name().to_string()));
    schemas.extend(s.enums.values().map(|e| schema_or_public(&e.schema).to_string()));
    schemas.extend(s.sequences.values().map(|q| schema_or_public(&q.schema).to_string()));
    let mut out: Vec<String> = schemas.iter().map(|n| format!("CREATE SCHEMA {}", mapped(n))).collect();
    // The snapshot's expressions name its schemas; in the model they are the prefixed ones.
    let rename = |schema: &str| schemas.contains(schema).then(|| format!("{MODEL_PREFIX}{schema}"));
    let x = |e: &str| rename_schemas(e, &rename).unwrap_or_else(|| e.to_string());
    let x: Sql<'_> = &x;
    for e in s.enums.values() {
        let values: Vec<String> = e.values.iter().map(|v| literal(v)).collect();
        out.push(format!(
            "CREATE TYPE {} AS ENUM({})",
            relation(&e.schema, &e.name),
            values.join(", ")
        ));
    }
    for q in s.sequences.values() {
        let options = sequence_options(&q.increment, &q.min_value, &q.max_value, &q.start_with, &q.cache, q.cycle);
        out.push(format!("CREATE SEQUENCE {}{options}", relation(&q.schema, &q.name)));
    }
    for t in s.tables.values() {
        out.push(create_table(t, x));
        if t.is_rls_enabled || !t.policies.is_empty() {
            out.push(format!("ALTER TABLE {} ENABLE ROW LEVEL SECURITY", relation(&t.schema, &t.name)));
        }
    }
    let tables: BTreeSet<(&str, &str)> = s.tables.values().map(|t| (t.schema_name(), t.name.as_str())).collect();
    for t in s.tables.values() {
        for fk in t.foreign_keys.values() {
            let to_schema = fk.schema_to.as_deref().map(schema_or_public).unwrap_or("public");
            // A table the snapshot does not define (`auth.users`) is the live one.
            let to = if tables.contains(&(to_schema, fk.table_to.as_str())) {
                relation(to_schema, &fk.table_to)
            } else {
                format!("{}.{}", quoted(to_schema), quoted(&fk.table_to))
            };
            out.push(format!(
                "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {to}({}){}{}",
                relation(&t.schema, &t.name),
                quoted(&fk.name),
                column_list(&fk.columns_from),
                column_list(&fk.columns_to),
                fk.on_delete.as_ref().map(|a| format!(" ON DELETE {a}")).unwrap_or_default(),
                fk.on_update.as_ref().map(|a| format!(" ON UPDATE {a}")).unwrap_or_default(),
            ));
        }
        for i in t.indexes.values() {
            out.push(create_index(t, i, x));
        }
        for p in t.policies.values() {
            out.push(create_policy(&relation(&t.schema, &t.name), p, x));
        }
    }
    // Policies linked to a table of the snapshot from outside it (`pgPolicy(..).link(table)`).
    for p in s.policies.values() {
        let Some(on) = &p.on else { continue };
        let parts: Vec<String> = on.split('.').map(unquote).collect();
        let (schema, table) = match parts.as_slice() {
            [schema, table] => (schema.clone(), table.clone()),
            [table] => (p.schema.clone().unwrap_or_else(|| "public".into()), table.clone()),
            _ => continue,
        };
        if tables.contains(&(schema.as_str(), table.as_str())) {
            let target = relation(&schema, &table);
            out.push(format!("ALTER TABLE {target} ENABLE ROW LEVEL SECURITY"));
            out.push(create_policy(&target, p, x));
        }
    }
    ModelDdl { schemas, statements: out }
}

/// A name as `DRIFT_IGNORE` and drizzle's policy targets write it: `\"quoted\"` keeps its case.
pub fn unquote(part: &str) -> String {
    let part = part.trim();
    match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => part.to_string(),
    }
}

fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn column_list(columns: &[String]) -> String {
    columns.iter().map(|c| quoted(c)).collect::<Vec<_>>().join(",")
}

fn sequence_options(
    increment: &Option<String>,
    min: &Option<String>,
    max: &Option<String>,
    start: &Option<String>,
    cache: &Option<String>,
    cycle: Option<bool>,
) -> String {
    let mut s = String::new();
    for (word, value) in [
        ("INCREMENT BY", increment),
        ("MINVALUE", min),
        ("MAXVALUE", max),
        ("START WITH", start),
        ("CACHE", cache),
    ] {
        if let Some(v) = value {
            s.push_str(&format!(" {word} {v}"));
        }
    }
    if cycle == Some(true) {
        s.push_str(" CYCLE");
    }
    s
}

/// drizzle-kit's `parseType`: its native types as written, anything else (an enum) quoted, in
/// its schema, with the array dimensions after the quotes.
fn column_type(c: &Column) -> String {
    const NATIVE: [&str; 26] = [
        "uuid",
        "smallint",
        "integer",
        "bigint",
        "boolean",
        "text",
        "varchar",
        "serial",
        "bigserial",
        "smallserial",
        "decimal",
        "numeric",
        "real",
        "json",
        "jsonb",
        "time",
        "timestamp",
        "date",
        "interval",
        "double precision",
        "char",
        "vector",
        "geometry",
        "halfvec",
        "sparsevec",
        "bit",
    ];
    let ty = c.sql_type.as_str();
    match &c.type_schema {
        Some(schema) if !NATIVE.iter().any(|n| ty.starts_with(n)) => {
            let (base, dimensions) = ty.split_at(ty.find('[').unwrap_or(ty.len()));
            format!("{}.{}{dimensions}", mapped(schema), quoted(base))
        }
        // A native type, or one outside the snapshot (an extension's `citext`): the live one.
        _ => ty.to_string(),
    }
}

fn default_sql(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An expression of the snapshot as the model must read it.
type Sql<'a> = &'a dyn Fn(&str) -> String;

fn create_table(t: &Table, x: Sql<'_>) -> String {
    let mut lines: Vec<String> = Vec::new();
    for c in t.columns.values() {
        let mut line = format!("\t{} {}", quoted(&c.name), column_type(c));
        if c.primary_key {
            line.push_str(" PRIMARY KEY");
        }
        if let Some(d) = &c.default {
            line.push_str(&format!(" DEFAULT {}", x(&default_sql(d))));
        }
        if let Some(g) = &c.generated {
            line.push_str(&format!(" GENERATED ALWAYS AS ({}) STORED", x(&g.expression)));
        }
        if c.not_null && c.identity.is_none() {
            line.push_str(" NOT NULL");
        }
        if c.is_unique() {
            let name = c.unique_name.clone().unwrap_or_else(|| format!("{}_{}_unique", t.name, c.name));
            let nulls = if c.nulls_not_distinct == Some(true) {
                " NULLS NOT DISTINCT"
            } else {
                ""
            };
            line.push_str(&format!(" CONSTRAINT {} UNIQUE{nulls}", quoted(&name)));
        }
        if let Some(i) = &c.identity {
            let how = if i.kind == "always" { "ALWAYS" } else { "BY DEFAULT" };
            let options = sequence_options(&i.increment, &i.min_value, &i.max_value, &i.start_with, &i.cache, i.cycle);
            let schema = if i.schema.is_empty() { &t.schema } else { &i.schema };
            line.push_str(&format!(
                " GENERATED {how} AS IDENTITY (sequence name {}{options})",
                relation(schema, &i.name)
            ));
        }
        lines.push(line);
    }
    if let Some(pk) = t.composite_primary_keys.values().next() {
        lines.push(format!(
            "\tCONSTRAINT {} PRIMARY KEY({})",
            quoted(&pk.name),
            column_list(&pk.columns)
        ));
    }
    for u in t.unique_constraints.values() {
        let nulls = if u.nulls_not_distinct { " NULLS NOT DISTINCT" } else { "" };
        lines.push(format!(
            "\tCONSTRAINT {} UNIQUE{nulls}({})",
            quoted(&u.name),
            column_list(&u.columns)
        ));
    }
    for ck in t.check_constraints.values() {
        lines.push(format!("\tCONSTRAINT {} CHECK ({})", quoted(&ck.name), x(&ck.value)));
    }
    format!("CREATE TABLE {} (\n{}\n)", relation(&t.schema, &t.name), lines.join(",\n"))
}

/// One index column as drizzle-kit writes it: 0.x writes an operator class in place of the order
/// (and no NULLS after one), 1.0 writes both; NULLS only where it is not the order's default.
/// An expression is written as it is, so a `DESC` inside it is Postgres's to read.
fn index_column(c: &IndexColumn) -> String {
    let mut s = if c.is_expression {
        c.expression.clone()
    } else {
        quoted(&c.expression)
    };
    let nulls_first = c.nulls.as_deref() == Some("first");
    if c.order_beside_opclass {
        if let Some(o) = &c.opclass {
            s.push_str(&format!(" {o}"));
        }
        if !c.asc {
            s.push_str(" DESC");
        }
        if c.asc == nulls_first {
            s.push_str(if nulls_first { " NULLS FIRST" } else { " NULLS LAST" });
        }
        return s;
    }
    match &c.opclass {
        Some(o) => s.push_str(&format!(" {o}")),
        None => {
            if !c.asc {
                s.push_str(" DESC");
            }
            if !(c.asc && c.nulls.as_deref() == Some("last")) {
                if let Some(n) = &c.nulls {
                    s.push_str(&format!(" NULLS {}", n.to_uppercase()));
                }
            }
        }
    }
    s
}

fn create_index(t: &Table, i: &Index, x: Sql<'_>) -> String {
    let columns: Vec<String> = i.columns.iter().map(index_column).collect();
    let mut s = format!(
        "CREATE {}INDEX {} ON {} USING {} ({})",
        if i.is_unique { "UNIQUE " } else { "" },
        quoted(&i.name),
        relation(&t.schema, &t.name),
        i.method,
        columns.join(",")
    );
    if let Some(with) = i.with.as_ref().filter(|w| !w.is_empty()) {
        let options: Vec<String> = with.iter().map(|(k, v)| format!("{k}={}", default_sql(v))).collect();
        s.push_str(&format!(" WITH ({})", options.join(",")));
    }
    if let Some(p) = &i.predicate {
        s.push_str(&format!(" WHERE {}", x(p)));
    }
    s
}

fn create_policy(target: &str, p: &Policy, x: Sql<'_>) -> String {
    let roles: Vec<String> =
        p.to.clone()
            .unwrap_or_else(|| vec!["public".into()])
            .iter()
            .map(|r| match r.as_str() {
                "current_user" | "current_role" | "session_user" | "public" => r.clone(),
                _ => quoted(r),
            })
            .collect();
    let mut s = format!(
        "CREATE POLICY {} ON {target} AS {} FOR {} TO {}",
        quoted(&p.name),
        p.kind.as_deref().unwrap_or("PERMISSIVE").to_uppercase(),
        p.command.as_deref().unwrap_or("ALL").to_uppercase(),
        roles.join(", ")
    );
    if let Some(u) = &p.using {
        s.push_str(&format!(" USING ({})", x(u)));
    }
    if let Some(w) = &p.with_check {
        s.push_str(&format!(" WITH CHECK ({})", x(w)));
    }
    s
}

#[cfg(test)]
#[path = "model_ddl_tests.rs"]
mod tests;
