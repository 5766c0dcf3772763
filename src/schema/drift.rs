//! Drift: the live schema ([`Catalog`]) against the schema drizzle-kit expects ([`Snapshot`]),
//! as a list of differences `{kind, object, expected, actual}`. Pure: both sides are first
//! normalised into one model (Postgres and drizzle spell the same schema differently:
//! `timestamptz` / `timestamp with time zone`, `'USD'` / `'USD'::wishlist_currency`, `serial` /
//! `integer DEFAULT nextval(..)`, `"t"."c" IN (..)` / `c = ANY (ARRAY[..])`), then compared.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::db::catalog::{self, Catalog, ConstraintKind};
use crate::schema::expression::{self, canonical_number, Literal};
use crate::db::ledger::{LedgerTable, HISTORY_TABLE};
use crate::schema::snapshot::{self, schema_or_public, Snapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DifferenceKind {
    MissingSchema,
    ExtraSchema,
    MissingTable,
    ExtraTable,
    MissingColumn,
    ExtraColumn,
    ColumnType,
    ColumnNullability,
    ColumnDefault,
    ColumnIdentity,
    ColumnGenerated,
    MissingIndex,
    ExtraIndex,
    IndexDefinition,
    MissingPrimaryKey,
    ExtraPrimaryKey,
    PrimaryKeyDefinition,
    MissingConstraint,
    ExtraConstraint,
    ConstraintDefinition,
    MissingEnum,
    ExtraEnum,
    MissingEnumValue,
    ExtraEnumValue,
    EnumValueOrder,
    MissingSequence,
    ExtraSequence,
    SequenceDefinition,
    MissingView,
    ExtraView,
    ViewDefinition,
    RowLevelSecurity,
    MissingPolicy,
    ExtraPolicy,
    PolicyDefinition,
}

impl DifferenceKind {
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// One way the live schema differs from the expected one. `object` is schema-qualified
/// (`public.wishlist_items.idx_wishlist_user_sort`); `expected`/`actual` are absent for objects
/// missing on that side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    pub kind: DifferenceKind,
    pub object: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.object)?;
        match (&self.expected, &self.actual) {
            (Some(e), Some(a)) => write!(f, ": expected {e}, actual {a}"),
            (Some(e), None) => write!(f, ": expected {e}"),
            (None, Some(a)) => write!(f, ": actual {a}"),
            (None, None) => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("{count} difference(s) between the live schema and the snapshot of {version}; first: {first}")]
    Detected { version: String, count: usize, first: String },
    #[error("rolled back to {version}, but the schema differs from its snapshot in {count} place(s); first: {first}. The down files do not restore what drizzle-kit expects: fix them, and the schema by hand")]
    AfterRollback { version: String, count: usize, first: String },
}

impl DriftError {
    pub fn detected(version: &str, differences: &[Difference]) -> Self {
        Self::Detected {
            version: version.to_string(),
            count: differences.len(),
            first: differences.first().map(ToString::to_string).unwrap_or_default(),
        }
    }

    pub fn after_rollback(version: &str, differences: &[Difference]) -> Self {
        Self::AfterRollback {
            version: version.to_string(),
            count: differences.len(),
            first: differences.first().map(ToString::to_string).unwrap_or_default(),
        }
    }
}

/// A `DRIFT_IGNORE` entry: `table` (in `public`), `schema.table`, or `schema.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreRule {
    pub schema: String,
    /// `None` ignores the whole schema.
    pub name: Option<String>,
}

impl IgnoreRule {
    /// Parses a comma-separated list; blanks are skipped, `"quoted"` parts keep their case.
    pub fn parse_list(text: &str) -> Vec<Self> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|entry| {
                let parts: Vec<String> = entry.split('.').map(unquote).collect();
                match parts.as_slice() {
                    [schema, name] if name == "*" => Self {
                        schema: schema.clone(),
                        name: None,
                    },
                    [schema, name] => Self {
                        schema: schema.clone(),
                        name: Some(name.clone()),
                    },
                    _ => Self {
                        schema: "public".into(),
                        name: Some(unquote(entry)),
                    },
                }
            })
            .collect()
    }

    fn matches(&self, schema: &str, name: &str) -> bool {
        self.schema == schema && self.name.as_deref().is_none_or(|n| n == name)
    }
}

fn unquote(part: &str) -> String {
    let part = part.trim();
    match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => part.to_string(),
    }
}

#[derive(Debug, Clone, Default)]
pub struct DriftOptions {
    /// drizzle's ledger and this tool's history live here; never drift.
    pub ledger: LedgerTable,
    pub ignore: Vec<IgnoreRule>,
}

impl DriftOptions {
    /// Whether a relation is outside drift: listed in `DRIFT_IGNORE`, or the ledger itself.
    pub fn ignored(&self, schema: &str, name: &str) -> bool {
        self.ignore.iter().any(|r| r.matches(schema, name))
            || (schema == self.ledger.schema && (name == self.ledger.table || name == HISTORY_TABLE))
    }
}

/// Every difference between what `expected` describes and what `actual` holds.
pub fn compare(expected: &Snapshot, actual: &Catalog, options: &DriftOptions) -> Vec<Difference> {
    let want = Model::expected(expected, actual, options);
    let have = Model::actual(actual, &want, options);
    let mut out = Vec::new();
    diff_sets(&want.schemas, &have.schemas, DifferenceKind::MissingSchema, DifferenceKind::ExtraSchema, &mut out);
    diff_enums(&want.enums, &have.enums, &mut out);
    for (key, table) in &want.tables {
        match have.tables.get(key) {
            None => out.push(missing(DifferenceKind::MissingTable, qualified(key), "table")),
            Some(live) => diff_table(&qualified(key), table, live, &mut out),
        }
    }
    for key in have.tables.keys().filter(|k| !want.tables.contains_key(*k)) {
        out.push(extra(DifferenceKind::ExtraTable, qualified(key), "table"));
    }
    diff_shown(
        &keyed(&want.sequences),
        &keyed(&have.sequences),
        [DifferenceKind::MissingSequence, DifferenceKind::ExtraSequence, DifferenceKind::SequenceDefinition],
        &mut out,
    );
    diff_shown(
        &keyed(&want.views),
        &keyed(&have.views),
        [DifferenceKind::MissingView, DifferenceKind::ExtraView, DifferenceKind::ViewDefinition],
        &mut out,
    );
    out
}

type Key = (String, String);

fn qualified((schema, name): &Key) -> String {
    format!("{schema}.{name}")
}

fn keyed(map: &BTreeMap<Key, Shown>) -> BTreeMap<String, Shown> {
    map.iter().map(|(k, v)| (qualified(k), v.clone())).collect()
}

/// A normalised value: compared by `key`, reported by `display`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown {
    key: String,
    display: String,
}

impl Shown {
    fn same(text: String) -> Self {
        Self {
            key: text.clone(),
            display: text,
        }
    }
}

#[derive(Debug, Default)]
struct Model {
    schemas: BTreeSet<String>,
    tables: BTreeMap<Key, TableModel>,
    enums: BTreeMap<Key, Vec<String>>,
    sequences: BTreeMap<Key, Shown>,
    views: BTreeMap<Key, Shown>,
}

#[derive(Debug, Default)]
struct TableModel {
    columns: BTreeMap<String, ColumnModel>,
    indexes: BTreeMap<String, Shown>,
    primary_key: Option<PrimaryKeyModel>,
    constraints: BTreeMap<String, Shown>,
    rls: bool,
    policies: BTreeMap<String, Shown>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PrimaryKeyModel {
    /// Only a composite primary key has a name drizzle chose; a column's `primaryKey` lets
    /// Postgres name it.
    name: Option<String>,
    columns: Vec<String>,
}

#[derive(Debug)]
struct ColumnModel {
    ty: TypeInfo,
    not_null: bool,
    default: Option<Shown>,
    identity: Option<Shown>,
    generated: Option<Shown>,
}

impl Model {
    fn expected(s: &Snapshot, live: &Catalog, options: &DriftOptions) -> Self {
        let mut m = Model::default();
        m.schemas.insert("public".into());
        m.schemas.extend(s.schemas.values().cloned());
        for t in s.tables.values() {
            let schema = t.schema_name().to_string();
            m.schemas.insert(schema.clone());
            if options.ignored(&schema, &t.name) {
                continue;
            }
            let live_table = live.table(&schema, &t.name);
            let mut table = TableModel {
                rls: t.is_rls_enabled || !t.policies.is_empty(),
                ..TableModel::default()
            };
            let mut pk_columns: BTreeSet<&str> = t.columns.values().filter(|c| c.primary_key).map(|c| c.name.as_str()).collect();
            for pk in t.composite_primary_keys.values() {
                pk_columns.extend(pk.columns.iter().map(String::as_str));
            }
            for c in t.columns.values() {
                let ty = TypeInfo::from_drizzle(&c.sql_type, c.type_schema.as_deref());
                let serial = serial_type(&c.sql_type);
                let default = if serial {
                    Some(Shown {
                        key: SERIAL_DEFAULT.into(),
                        display: "nextval(<its own sequence>)".into(),
                    })
                } else {
                    c.default.as_ref().map(|v| default_from_json(v, &ty))
                };
                table.columns.insert(
                    c.name.clone(),
                    ColumnModel {
                        not_null: c.not_null || pk_columns.contains(c.name.as_str()) || c.identity.is_some(),
                        default,
                        identity: c.identity.as_ref().map(expected_identity),
                        generated: c.generated.as_ref().map(|g| Shown {
                            key: expression::canonical(&g.expression),
                            display: g.expression.clone(),
                        }),
                        ty,
                    },
                );
                if c.is_unique() {
                    let name = c.unique_name.clone().unwrap_or_else(|| format!("{}_{}_unique", t.name, c.name));
                    table
                        .constraints
                        .insert(name, unique_shown(std::slice::from_ref(&c.name), c.nulls_not_distinct.unwrap_or(false)));
                }
            }
            let inline: Vec<String> = t.columns.values().filter(|c| c.primary_key).map(|c| c.name.clone()).collect();
            table.primary_key = match t.composite_primary_keys.values().next() {
                Some(pk) => Some(PrimaryKeyModel {
                    name: Some(pk.name.clone()),
                    columns: pk.columns.clone(),
                }),
                None if !inline.is_empty() => Some(PrimaryKeyModel {
                    name: None,
                    columns: inline,
                }),
                None => None,
            };
            for i in t.indexes.values() {
                let live_index = live_table.and_then(|lt| lt.indexes.iter().find(|x| x.name == i.name));
                table.indexes.insert(i.name.clone(), expected_index(i, live_index));
            }
            for u in t.unique_constraints.values() {
                table.constraints.insert(u.name.clone(), unique_shown(&u.columns, u.nulls_not_distinct));
            }
            for fk in t.foreign_keys.values() {
                let to_schema = fk.schema_to.as_deref().map(schema_or_public).unwrap_or("public");
                table.constraints.insert(
                    fk.name.clone(),
                    foreign_key_shown(
                        &fk.columns_from,
                        to_schema,
                        &fk.table_to,
                        &fk.columns_to,
                        fk.on_update.as_deref().unwrap_or("no action"),
                        fk.on_delete.as_deref().unwrap_or("no action"),
                    ),
                );
            }
            for ck in t.check_constraints.values() {
                table.constraints.insert(ck.name.clone(), check_shown(&ck.value));
            }
            for p in t.policies.values() {
                table.policies.insert(p.name.clone(), expected_policy(p));
            }
            m.tables.insert((schema, t.name.clone()), table);
        }
        // Policies linked to tables drizzle does not define (`pgPolicy(..).link(table)`).
        for p in s.policies.values() {
            let Some(on) = &p.on else { continue };
            let parts: Vec<String> = on.split('.').map(unquote).collect();
            let key = match parts.as_slice() {
                [schema, table] => (schema.clone(), table.clone()),
                [table] => (p.schema.clone().unwrap_or_else(|| "public".into()), table.clone()),
                _ => continue,
            };
            if let Some(t) = m.tables.get_mut(&key) {
                t.policies.insert(p.name.clone(), expected_policy(p));
                t.rls = true;
            }
        }
        for e in s.enums.values() {
            m.schemas.insert(e.schema.clone());
            m.enums.insert((e.schema.clone(), e.name.clone()), e.values.clone());
        }
        for q in s.sequences.values() {
            m.schemas.insert(q.schema.clone());
            if options.ignored(&q.schema, &q.name) {
                continue;
            }
            m.sequences.insert((q.schema.clone(), q.name.clone()), expected_sequence(q));
        }
        for v in s.views.values().filter(|v| !v.is_existing) {
            let schema = schema_or_public(&v.schema).to_string();
            m.schemas.insert(schema.clone());
            if options.ignored(&schema, &v.name) {
                continue;
            }
            m.views.insert((schema, v.name.clone()), view_shown(v.materialized));
        }
        m
    }

    fn actual(c: &Catalog, want: &Model, options: &DriftOptions) -> Self {
        // The ledger's schema is this tool's and drizzle-orm's, not the application's.
        let managed = |schema: &str| schema != options.ledger.schema || want.schemas.contains(schema);
        let ignored_schema = |schema: &str| options.ignore.iter().any(|r| r.schema == schema && r.name.is_none());
        let mut m = Model {
            schemas: c.schemas.iter().filter(|s| managed(s) && !ignored_schema(s)).cloned().collect(),
            ..Model::default()
        };
        for t in c.tables.iter().filter(|t| managed(&t.schema) && !options.ignored(&t.schema, &t.name)) {
            let mut table = TableModel {
                rls: t.rls_enabled,
                ..TableModel::default()
            };
            for col in &t.columns {
                let ty = TypeInfo::from_catalog(col);
                let default = match (&col.owned_sequence, &col.default) {
                    (Some(_), Some(d)) if d.trim_start().starts_with("nextval(") => Some(Shown {
                        key: SERIAL_DEFAULT.into(),
                        display: d.clone(),
                    }),
                    (_, Some(d)) => Some(default_from_sql(d, &ty)),
                    (_, None) => None,
                };
                table.columns.insert(
                    col.name.clone(),
                    ColumnModel {
                        not_null: col.not_null,
                        default,
                        identity: col.identity.as_ref().map(actual_identity),
                        generated: col.generated.as_ref().map(|g| Shown {
                            key: expression::canonical(g),
                            display: g.clone(),
                        }),
                        ty,
                    },
                );
            }
            for i in t.indexes.iter().filter(|i| i.constraint.is_none()) {
                table.indexes.insert(i.name.clone(), actual_index(i));
            }
            for con in &t.constraints {
                match con.kind {
                    ConstraintKind::PrimaryKey => {
                        table.primary_key = Some(PrimaryKeyModel {
                            name: Some(con.name.clone()),
                            columns: con.columns.clone(),
                        })
                    }
                    ConstraintKind::Unique => {
                        table.constraints.insert(con.name.clone(), unique_shown(&con.columns, con.nulls_not_distinct));
                    }
                    ConstraintKind::ForeignKey => {
                        let r = con.references.clone().unwrap_or_else(|| catalog::Reference {
                            schema: String::new(),
                            table: String::new(),
                            columns: Vec::new(),
                            on_update: "no action".into(),
                            on_delete: "no action".into(),
                        });
                        table.constraints.insert(
                            con.name.clone(),
                            foreign_key_shown(&con.columns, &r.schema, &r.table, &r.columns, &r.on_update, &r.on_delete),
                        );
                    }
                    ConstraintKind::Check => {
                        let mut shown = check_shown(con.check.as_deref().unwrap_or(&con.definition));
                        shown.display = con.definition.clone();
                        table.constraints.insert(con.name.clone(), shown);
                    }
                }
            }
            for p in &t.policies {
                table.policies.insert(p.name.clone(), actual_policy(p));
            }
            m.tables.insert((t.schema.clone(), t.name.clone()), table);
        }
        for e in c.enums.iter().filter(|e| managed(&e.schema)) {
            m.enums.insert((e.schema.clone(), e.name.clone()), e.values.clone());
        }
        for q in c.sequences.iter().filter(|q| managed(&q.schema) && !options.ignored(&q.schema, &q.name)) {
            let key = (q.schema.clone(), q.name.clone());
            let display = sequence_display(&q.options);
            // Compared on the options the snapshot names; an extra sequence shows them all.
            let shown = match want.sequences.get(&key) {
                Some(expected) if sequence_matches(expected, &q.options) => Shown {
                    key: expected.key.clone(),
                    display,
                },
                _ => Shown::same(display),
            };
            m.sequences.insert(key, shown);
        }
        for v in c.views.iter().filter(|v| managed(&v.schema) && !options.ignored(&v.schema, &v.name)) {
            m.views.insert((v.schema.clone(), v.name.clone()), view_shown(v.materialized));
        }
        m
    }
}

const SERIAL_DEFAULT: &str = "serial";

fn serial_type(sql_type: &str) -> bool {
    matches!(
        sql_type.trim().to_ascii_lowercase().as_str(),
        "serial" | "bigserial" | "smallserial" | "serial4" | "serial8" | "serial2"
    )
}

fn missing(kind: DifferenceKind, object: String, expected: &str) -> Difference {
    Difference {
        kind,
        object,
        expected: Some(expected.to_string()),
        actual: None,
    }
}

fn extra(kind: DifferenceKind, object: String, actual: &str) -> Difference {
    Difference {
        kind,
        object,
        expected: None,
        actual: Some(actual.to_string()),
    }
}

fn changed(kind: DifferenceKind, object: String, expected: &str, actual: &str) -> Difference {
    Difference {
        kind,
        object,
        expected: Some(expected.to_string()),
        actual: Some(actual.to_string()),
    }
}

fn diff_sets(want: &BTreeSet<String>, have: &BTreeSet<String>, missing_kind: DifferenceKind, extra_kind: DifferenceKind, out: &mut Vec<Difference>) {
    for s in want.difference(have) {
        out.push(missing(missing_kind, s.clone(), "schema"));
    }
    for s in have.difference(want) {
        out.push(extra(extra_kind, s.clone(), "schema"));
    }
}

fn diff_shown(want: &BTreeMap<String, Shown>, have: &BTreeMap<String, Shown>, kinds: [DifferenceKind; 3], out: &mut Vec<Difference>) {
    let [missing_kind, extra_kind, changed_kind] = kinds;
    for (name, w) in want {
        match have.get(name) {
            None => out.push(missing(missing_kind, name.clone(), &w.display)),
            Some(h) if h.key != w.key => out.push(changed(changed_kind, name.clone(), &w.display, &h.display)),
            Some(_) => {}
        }
    }
    for (name, h) in have {
        if !want.contains_key(name) {
            out.push(extra(extra_kind, name.clone(), &h.display));
        }
    }
}

fn diff_enums(want: &BTreeMap<Key, Vec<String>>, have: &BTreeMap<Key, Vec<String>>, out: &mut Vec<Difference>) {
    for (key, values) in want {
        let object = qualified(key);
        let Some(live) = have.get(key) else {
            out.push(missing(DifferenceKind::MissingEnum, object, &values.join(", ")));
            continue;
        };
        for v in values.iter().filter(|v| !live.contains(v)) {
            out.push(missing(DifferenceKind::MissingEnumValue, object.clone(), v));
        }
        for v in live.iter().filter(|v| !values.contains(v)) {
            out.push(extra(DifferenceKind::ExtraEnumValue, object.clone(), v));
        }
        // Order matters: it is how Postgres compares and sorts enum values.
        let common_want: Vec<&String> = values.iter().filter(|v| live.contains(v)).collect();
        let common_have: Vec<&String> = live.iter().filter(|v| values.contains(v)).collect();
        if common_want != common_have {
            out.push(changed(DifferenceKind::EnumValueOrder, object, &values.join(", "), &live.join(", ")));
        }
    }
    for (key, values) in have {
        if !want.contains_key(key) {
            out.push(extra(DifferenceKind::ExtraEnum, qualified(key), &values.join(", ")));
        }
    }
}

fn diff_table(object: &str, want: &TableModel, have: &TableModel, out: &mut Vec<Difference>) {
    use DifferenceKind as K;
    for (name, w) in &want.columns {
        let column = format!("{object}.{name}");
        let Some(h) = have.columns.get(name) else {
            out.push(missing(K::MissingColumn, column, &w.ty.display));
            continue;
        };
        if w.ty.key != h.ty.key {
            out.push(changed(K::ColumnType, column.clone(), &w.ty.display, &h.ty.display));
        }
        if w.not_null != h.not_null {
            let word = |n: bool| if n { "not null" } else { "nullable" };
            out.push(changed(K::ColumnNullability, column.clone(), word(w.not_null), word(h.not_null)));
        }
        diff_optional(K::ColumnDefault, &column, &w.default, &h.default, out);
        diff_optional(K::ColumnIdentity, &column, &w.identity, &h.identity, out);
        diff_optional(K::ColumnGenerated, &column, &w.generated, &h.generated, out);
    }
    for (name, h) in &have.columns {
        if !want.columns.contains_key(name) {
            out.push(extra(K::ExtraColumn, format!("{object}.{name}"), &h.ty.display));
        }
    }
    let prefixed = |m: &BTreeMap<String, Shown>| -> BTreeMap<String, Shown> { m.iter().map(|(k, v)| (format!("{object}.{k}"), v.clone())).collect() };
    diff_shown(&prefixed(&want.indexes), &prefixed(&have.indexes), [K::MissingIndex, K::ExtraIndex, K::IndexDefinition], out);
    match (&want.primary_key, &have.primary_key) {
        (Some(w), None) => out.push(missing(K::MissingPrimaryKey, object.to_string(), &pk_display(w))),
        (None, Some(h)) => out.push(extra(K::ExtraPrimaryKey, format!("{object}.{}", h.name.as_deref().unwrap_or("")), &pk_display(h))),
        (Some(w), Some(h)) => {
            let name_differs = w.name.is_some() && w.name != h.name;
            if w.columns != h.columns || name_differs {
                out.push(changed(K::PrimaryKeyDefinition, object.to_string(), &pk_display(w), &pk_display(h)));
            }
        }
        (None, None) => {}
    }
    diff_shown(
        &prefixed(&want.constraints),
        &prefixed(&have.constraints),
        [K::MissingConstraint, K::ExtraConstraint, K::ConstraintDefinition],
        out,
    );
    if want.rls != have.rls {
        let word = |on: bool| if on { "enabled" } else { "disabled" };
        out.push(changed(K::RowLevelSecurity, object.to_string(), word(want.rls), word(have.rls)));
    }
    diff_shown(&prefixed(&want.policies), &prefixed(&have.policies), [K::MissingPolicy, K::ExtraPolicy, K::PolicyDefinition], out);
}

fn diff_optional(kind: DifferenceKind, object: &str, want: &Option<Shown>, have: &Option<Shown>, out: &mut Vec<Difference>) {
    match (want, have) {
        (Some(w), Some(h)) if w.key != h.key => out.push(changed(kind, object.to_string(), &w.display, &h.display)),
        (Some(w), None) => out.push(changed(kind, object.to_string(), &w.display, "none")),
        (None, Some(h)) => out.push(changed(kind, object.to_string(), "none", &h.display)),
        _ => {}
    }
}

fn pk_display(pk: &PrimaryKeyModel) -> String {
    let columns = pk.columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
    match &pk.name {
        Some(name) => format!("{} PRIMARY KEY ({columns})", quote_ident(name)),
        None => format!("PRIMARY KEY ({columns})"),
    }
}

/// Quotes an identifier only when Postgres would need it.
fn quote_ident(name: &str) -> String {
    expression::Expr::Name(name.to_string()).canonical()
}

fn column_list(columns: &[String]) -> String {
    columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ")
}

fn unique_shown(columns: &[String], nulls_not_distinct: bool) -> Shown {
    let nnd = if nulls_not_distinct { " NULLS NOT DISTINCT" } else { "" };
    Shown::same(format!("UNIQUE{nnd} ({})", column_list(columns)))
}

fn foreign_key_shown(from: &[String], schema: &str, table: &str, to: &[String], on_update: &str, on_delete: &str) -> Shown {
    Shown::same(format!(
        "FOREIGN KEY ({}) REFERENCES {}.{} ({}) ON UPDATE {} ON DELETE {}",
        column_list(from),
        quote_ident(schema),
        quote_ident(table),
        column_list(to),
        on_update.to_ascii_uppercase(),
        on_delete.to_ascii_uppercase()
    ))
}

fn check_shown(expression: &str) -> Shown {
    Shown {
        key: format!("CHECK {}", expression::canonical(expression)),
        display: format!("CHECK ({expression})"),
    }
}

fn view_shown(materialized: bool) -> Shown {
    Shown::same(if materialized { "materialized view" } else { "view" }.into())
}

// --- types ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Json,
    Numeric,
    Bool,
    Timestamp { tz: bool },
    Date,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct TypeInfo {
    key: String,
    display: String,
    category: Category,
    array: bool,
}

impl TypeInfo {
    fn from_drizzle(sql_type: &str, type_schema: Option<&str>) -> Self {
        let (base, array) = strip_array(sql_type);
        match type_schema {
            Some(schema) => Self::user_defined(schema, base, array),
            None => Self::builtin(&canonical_type(base), array),
        }
    }

    fn from_catalog(c: &catalog::Column) -> Self {
        if c.type_kind == "e" {
            return Self::user_defined(&c.type_schema, &c.type_name, c.is_array);
        }
        let (base, _) = strip_array(&c.type_display);
        Self::builtin(&canonical_type(base), c.is_array)
    }

    fn user_defined(schema: &str, name: &str, array: bool) -> Self {
        let suffix = if array { "[]" } else { "" };
        let shown = if schema == "public" {
            quote_ident(name)
        } else {
            format!("{}.{}", quote_ident(schema), quote_ident(name))
        };
        Self {
            key: format!("udt:{schema}.{name}{suffix}"),
            display: format!("{shown}{suffix}"),
            category: Category::Other,
            array,
        }
    }

    fn builtin(canonical: &str, array: bool) -> Self {
        let suffix = if array { "[]" } else { "" };
        let category = match canonical {
            "json" | "jsonb" => Category::Json,
            "boolean" => Category::Bool,
            "date" => Category::Date,
            "integer" | "bigint" | "smallint" | "real" | "double precision" => Category::Numeric,
            t if t.starts_with("numeric") => Category::Numeric,
            t if t.starts_with("timestamp") => Category::Timestamp {
                tz: t.ends_with("with time zone"),
            },
            _ => Category::Other,
        };
        Self {
            key: format!("{canonical}{suffix}"),
            display: format!("{canonical}{suffix}"),
            category,
            array,
        }
    }

    fn element(&self) -> Self {
        Self {
            array: false,
            ..self.clone()
        }
    }
}

/// `text[]`, `integer[][]`, `int[3]` → (`text`, true): Postgres does not enforce dimensions.
fn strip_array(sql_type: &str) -> (&str, bool) {
    let mut base = sql_type.trim();
    let mut array = false;
    while base.ends_with(']') {
        match base.rfind('[') {
            Some(open) => {
                base = base[..open].trim_end();
                array = true;
            }
            None => break,
        }
    }
    (base, array)
}

/// One spelling per built-in type, the one `format_type` prints: `int4`/`serial` → `integer`,
/// `varchar(255)` → `character varying(255)`, `timestamp (3) with time zone` and
/// `timestamptz(3)` → `timestamp(3) with time zone`, `numeric(10, 2)` → `numeric(10,2)`.
fn canonical_type(text: &str) -> String {
    let lower = expression::normalised_text(text);
    // normalised_text separates tokens with spaces; rebuild name, modifiers and trailing words.
    let (name, args, after) = match lower.find('(') {
        Some(open) => {
            let close = lower[open..].find(')').map_or(lower.len(), |c| open + c);
            let args: String = lower[open + 1..close].chars().filter(|c| !c.is_whitespace()).collect();
            (lower[..open].trim().to_string(), Some(args), lower.get(close + 1..).unwrap_or("").trim().to_string())
        }
        None => (lower.trim().to_string(), None, String::new()),
    };
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let after = after.split_whitespace().collect::<Vec<_>>().join(" ");
    let with_args = |base: &str| match &args {
        Some(a) => format!("{base}({a})"),
        None => base.to_string(),
    };
    let zoned = |base: &str, tz: bool| format!("{} {}", with_args(base), if tz { "with time zone" } else { "without time zone" });
    match (name.as_str(), after.as_str()) {
        ("int" | "int4" | "integer" | "serial" | "serial4", "") => "integer".into(),
        ("int8" | "bigint" | "bigserial" | "serial8", "") => "bigint".into(),
        ("int2" | "smallint" | "smallserial" | "serial2", "") => "smallint".into(),
        ("bool" | "boolean", "") => "boolean".into(),
        ("float8" | "double precision", "") => "double precision".into(),
        ("float4" | "real", "") => "real".into(),
        ("float", "") => match args.as_deref().and_then(|a| a.parse::<u32>().ok()) {
            Some(p) if p <= 24 => "real".into(),
            _ => "double precision".into(),
        },
        ("decimal" | "numeric", "") => with_args("numeric"),
        ("varchar" | "character varying", "") => with_args("character varying"),
        ("char" | "character" | "bpchar", "") if args.is_none() && name != "bpchar" => "character(1)".into(),
        ("char" | "character", "") => with_args("character"),
        ("varbit" | "bit varying", "") => with_args("bit varying"),
        ("bit", "") if args.is_none() => "bit(1)".into(),
        ("timestamp", "" | "without time zone") | ("timestamp without time zone", "") => zoned("timestamp", false),
        ("timestamptz", "") | ("timestamp", "with time zone") | ("timestamp with time zone", "") => zoned("timestamp", true),
        ("time", "" | "without time zone") | ("time without time zone", "") => zoned("time", false),
        ("timetz", "") | ("time", "with time zone") | ("time with time zone", "") => zoned("time", true),
        _ => {
            let mut s = with_args(&name);
            if !after.is_empty() {
                s.push(' ');
                s.push_str(&after);
            }
            s
        }
    }
}

// --- defaults ------------------------------------------------------------------------------

/// A snapshot default: SQL text, or a JSON number or boolean.
fn default_from_json(value: &serde_json::Value, ty: &TypeInfo) -> Shown {
    match value {
        serde_json::Value::String(sql) => default_from_sql(sql, ty),
        serde_json::Value::Bool(b) => Shown {
            key: literal_key(Literal::Bool(*b), ty),
            display: b.to_string(),
        },
        serde_json::Value::Number(n) => Shown {
            key: literal_key(Literal::Num(n.to_string()), ty),
            display: n.to_string(),
        },
        other => Shown::same(other.to_string()),
    }
}

fn default_from_sql(sql: &str, ty: &TypeInfo) -> Shown {
    let key = match expression::parse(sql) {
        Ok(e) => match e.literal() {
            Some(literal) => literal_key(literal, ty),
            None => format!("expr:{}", e.canonical()),
        },
        Err(_) => format!("text:{}", expression::normalised_text(sql)),
    };
    Shown {
        key,
        display: sql.trim().to_string(),
    }
}

fn literal_key(literal: Literal, ty: &TypeInfo) -> String {
    match literal {
        Literal::Null => "null".into(),
        Literal::Bool(b) => format!("bool:{b}"),
        Literal::Num(n) | Literal::Str(n) => value_key(&n, ty),
    }
}

/// A literal's value in the column's terms: jsonb by its JSON value, numbers by their digits,
/// arrays element by element, timestamps by the instant they name.
fn value_key(text: &str, ty: &TypeInfo) -> String {
    if ty.array {
        return match parse_array_literal(text) {
            Some(items) => format!("array:{}", array_key(&items, &ty.element())),
            None => format!("str:{text}"),
        };
    }
    match ty.category {
        Category::Json => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => format!("json:{}", canonical_json(&v)),
            Err(_) => format!("str:{text}"),
        },
        // By value: the column's own type decides the scale the default is stored with.
        Category::Numeric => match canonical_number(text) {
            Some(n) if n.contains('.') && !n.contains('e') => {
                let trimmed = n.trim_end_matches('0').trim_end_matches('.');
                format!("num:{}", if trimmed == "-0" { "0" } else { trimmed })
            }
            Some(n) => format!("num:{n}"),
            None => format!("str:{text}"),
        },
        Category::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "on" | "1" => "bool:true".into(),
            "f" | "false" | "n" | "no" | "off" | "0" => "bool:false".into(),
            _ => format!("str:{text}"),
        },
        Category::Timestamp { tz } => match parse_timestamp(text) {
            Some((micros, Some(offset))) if tz => format!("ts:{}", micros - i64::from(offset) * 1_000_000),
            Some((micros, None)) if !tz => format!("ts:{micros}"),
            // A zone on a zoneless timestamp is ignored by Postgres.
            Some((micros, Some(_))) if !tz => format!("ts:{micros}"),
            _ => format!("str:{text}"),
        },
        Category::Date => match parse_timestamp(text) {
            Some((micros, _)) => format!("date:{}", micros.div_euclid(86_400_000_000)),
            None => format!("str:{text}"),
        },
        Category::Other => format!("str:{text}"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ArrayItem {
    Null,
    Value(String),
    Nested(Vec<ArrayItem>),
}

fn array_key(items: &[ArrayItem], element: &TypeInfo) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|i| match i {
            ArrayItem::Null => "NULL".to_string(),
            ArrayItem::Value(v) => value_key(v, element),
            ArrayItem::Nested(inner) => array_key(inner, element),
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// Postgres's array literal syntax: `{a,"b c",NULL,{1,2}}`.
fn parse_array_literal(text: &str) -> Option<Vec<ArrayItem>> {
    let chars: Vec<char> = text.trim().chars().collect();
    let mut pos = 0;
    let items = parse_array_level(&chars, &mut pos)?;
    (pos == chars.len()).then_some(items)
}

fn parse_array_level(chars: &[char], pos: &mut usize) -> Option<Vec<ArrayItem>> {
    if chars.get(*pos) != Some(&'{') {
        return None;
    }
    *pos += 1;
    let mut items = Vec::new();
    loop {
        while chars.get(*pos).is_some_and(|c| c.is_whitespace()) {
            *pos += 1;
        }
        match chars.get(*pos)? {
            '}' if items.is_empty() => {
                *pos += 1;
                return Some(items);
            }
            '{' => items.push(ArrayItem::Nested(parse_array_level(chars, pos)?)),
            '"' => {
                *pos += 1;
                let mut s = String::new();
                loop {
                    match chars.get(*pos)? {
                        '\\' => {
                            s.push(*chars.get(*pos + 1)?);
                            *pos += 2;
                        }
                        '"' => {
                            *pos += 1;
                            break;
                        }
                        c => {
                            s.push(*c);
                            *pos += 1;
                        }
                    }
                }
                items.push(ArrayItem::Value(s));
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.get(*pos) {
                    if c == ',' || c == '}' {
                        break;
                    }
                    if c == '\\' {
                        s.push(*chars.get(*pos + 1)?);
                        *pos += 2;
                        continue;
                    }
                    s.push(c);
                    *pos += 1;
                }
                let s = s.trim().to_string();
                items.push(if s.eq_ignore_ascii_case("null") { ArrayItem::Null } else { ArrayItem::Value(s) });
            }
        }
        while chars.get(*pos).is_some_and(|c| c.is_whitespace()) {
            *pos += 1;
        }
        match chars.get(*pos)? {
            ',' => *pos += 1,
            '}' => {
                *pos += 1;
                return Some(items);
            }
            _ => return None,
        }
    }
}

/// JSON with object keys sorted: jsonb reorders keys, `JSON.stringify` does not.
fn canonical_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", serde_json::Value::String((*k).clone()), canonical_json(v)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        serde_json::Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// `2024-01-02T03:04:05.678Z`, `2024-01-02 03:04:05+00`, `2024-01-02`: microseconds since
/// 1970-01-01 of the local date-time, and the UTC offset in seconds when one is given.
fn parse_timestamp(text: &str) -> Option<(i64, Option<i32>)> {
    let t = text.trim();
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let (date, rest) = t.split_at(t.find(['T', 't', ' ']).unwrap_or(t.len()));
    let mut d = date.split('-');
    let (y, mo, da) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() || !digits(y) || !digits(mo) || !digits(da) {
        return None;
    }
    let days = days_from_civil(y.parse().ok()?, mo.parse().ok()?, da.parse().ok()?)?;
    let rest = rest.trim_start_matches(['T', 't', ' ']);
    let (time, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(at) => (&rest[..at], Some(&rest[at..])),
        None => (rest, None),
    };
    let mut micros = days * 86_400_000_000;
    if !time.trim().is_empty() {
        let mut parts = time.trim().split(':');
        let h: i64 = parts.next()?.parse().ok()?;
        let m: i64 = parts.next()?.parse().ok()?;
        let (s, frac) = match parts.next() {
            Some(sec) => match sec.split_once('.') {
                Some((s, f)) => (s.parse::<i64>().ok()?, f),
                None => (sec.parse::<i64>().ok()?, ""),
            },
            None => (0, ""),
        };
        if !frac.is_empty() && !digits(frac) {
            return None;
        }
        let frac_micros: i64 = format!("{frac:0<6}")[..6].parse().ok()?;
        micros += ((h * 60 + m) * 60 + s) * 1_000_000 + frac_micros;
    }
    let offset = match zone.map(str::trim) {
        None | Some("") => None,
        Some("Z" | "z") => Some(0),
        Some(z) => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let body = &z[1..];
            let mut p = body.split(':');
            let first = p.next()?;
            let (h, m) = if first.len() == 4 && p.clone().next().is_none() {
                (first[..2].parse::<i32>().ok()?, first[2..].parse::<i32>().ok()?)
            } else {
                (first.parse::<i32>().ok()?, p.next().map_or(Some(0), |m| m.parse::<i32>().ok())?)
            };
            Some(sign * (h * 3600 + m * 60))
        }
    };
    Some((micros, offset))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

// --- identity, sequences, indexes, policies --------------------------------------------------

fn identity_display(kind: &str, options: &[(&str, String)]) -> String {
    let how = if kind == "always" { "ALWAYS" } else { "BY DEFAULT" };
    let opts: Vec<String> = options.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!("GENERATED {how} AS IDENTITY ({})", opts.join(" "))
}

fn expected_identity(i: &snapshot::Identity) -> Shown {
    let options = sequence_fields(&i.increment, &i.min_value, &i.max_value, &i.start_with, &i.cache, i.cycle);
    Shown {
        key: identity_display(&i.kind, &options),
        display: identity_display(&i.kind, &options),
    }
}

fn actual_identity(i: &catalog::Identity) -> Shown {
    // Keyed on the same fields drizzle writes (it always writes them all).
    let s = &i.sequence;
    let options = sequence_fields(
        &Some(s.increment.to_string()),
        &Some(s.min.to_string()),
        &Some(s.max.to_string()),
        &Some(s.start.to_string()),
        &Some(s.cache.to_string()),
        Some(s.cycle),
    );
    Shown::same(identity_display(&i.kind, &options))
}

fn sequence_fields(
    increment: &Option<String>,
    min: &Option<String>,
    max: &Option<String>,
    start: &Option<String>,
    cache: &Option<String>,
    cycle: Option<bool>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (name, value) in [("increment", increment), ("minvalue", min), ("maxvalue", max), ("start", start), ("cache", cache)] {
        if let Some(v) = value {
            out.push((name, canonical_number(v).unwrap_or_else(|| v.clone())));
        }
    }
    if let Some(c) = cycle {
        out.push(("cycle", c.to_string()));
    }
    out
}

fn expected_sequence(q: &snapshot::Sequence) -> Shown {
    let fields = sequence_fields(&q.increment, &q.min_value, &q.max_value, &q.start_with, &q.cache, q.cycle);
    let text = fields.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(" ");
    Shown::same(text)
}

fn sequence_display(o: &catalog::SequenceOptions) -> String {
    format!(
        "increment {} minvalue {} maxvalue {} start {} cache {} cycle {}",
        o.increment, o.min, o.max, o.start, o.cache, o.cycle
    )
}

/// Whether the live options agree with every option the snapshot names.
fn sequence_matches(expected: &Shown, o: &catalog::SequenceOptions) -> bool {
    let words: Vec<&str> = expected.key.split_whitespace().collect();
    words.chunks(2).all(|pair| match pair {
        [name, value] => {
            let live = match *name {
                "increment" => o.increment.to_string(),
                "minvalue" => o.min.to_string(),
                "maxvalue" => o.max.to_string(),
                "start" => o.start.to_string(),
                "cache" => o.cache.to_string(),
                "cycle" => o.cycle.to_string(),
                _ => return false,
            };
            live == *value
        }
        _ => false,
    })
}

/// One index column in canonical form: expression, non-default operator class, then order
/// only where it differs from the default (ASC, and NULLS LAST for ASC / FIRST for DESC).
fn index_column_key(expr: &str, opclass: Option<&str>, descending: bool, nulls_first: bool, orderable: bool) -> String {
    let mut s = expr.to_string();
    if let Some(o) = opclass {
        s.push(' ');
        s.push_str(o);
    }
    if orderable {
        if descending {
            s.push_str(" DESC");
        }
        if nulls_first != descending {
            s.push_str(if nulls_first { " NULLS FIRST" } else { " NULLS LAST" });
        }
    }
    s
}

fn index_key(unique: bool, method: &str, columns: &[String], extra: &[String], predicate: Option<&str>) -> String {
    let mut s = String::new();
    if unique {
        s.push_str("UNIQUE ");
    }
    s.push_str(&format!("USING {method} ({})", columns.join(", ")));
    for e in extra {
        s.push(' ');
        s.push_str(e);
    }
    if let Some(p) = predicate {
        s.push_str(" WHERE ");
        s.push_str(&expression::canonical(p));
    }
    s
}

fn expected_index(i: &snapshot::Index, live: Option<&catalog::Index>) -> Shown {
    let method = i.method.to_ascii_lowercase();
    let orderable = method == "btree";
    let columns: Vec<String> = i
        .columns
        .iter()
        .enumerate()
        .map(|(n, c)| {
            let (expr, mut opclass, written_desc, written_nulls) = if c.is_expression {
                match expression::parse_index_element(&c.expression) {
                    Ok(e) => (e.expr.canonical(), e.opclass.or_else(|| c.opclass.clone()), e.descending, e.nulls_first),
                    Err(_) => (expression::normalised_text(&c.expression), c.opclass.clone(), None, None),
                }
            } else {
                (quote_ident(&c.expression), c.opclass.clone(), None, None)
            };
            // drizzle-kit emits the operator class instead of ASC/DESC and NULLS when one is
            // given, so the index Postgres built is ascending with nulls last.
            let (descending, nulls_first) = if opclass.is_some() {
                (written_desc.unwrap_or(false), written_nulls.unwrap_or(false))
            } else {
                let desc = written_desc.unwrap_or(!c.asc);
                let nulls_first = written_nulls.unwrap_or(match c.nulls.as_deref() {
                    Some("first") => true,
                    Some("last") => false,
                    _ => desc,
                });
                (desc, nulls_first)
            };
            // Naming the type's default operator class is the same as naming none.
            if let (Some(o), Some(lc)) = (&opclass, live.and_then(|l| l.columns.get(n))) {
                if lc.opclass_default && lc.opclass == *o {
                    opclass = None;
                }
            }
            index_column_key(&expr, opclass.as_deref(), descending, nulls_first, orderable)
        })
        .collect();
    let mut extra = Vec::new();
    if let Some(with) = &i.with {
        if !with.is_empty() {
            let mut params: Vec<String> = with
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{}={s}", k.to_ascii_lowercase()),
                    other => format!("{}={other}", k.to_ascii_lowercase()),
                })
                .collect();
            params.sort();
            extra.push(format!("WITH ({})", params.join(", ")));
        }
    }
    Shown::same(index_key(i.is_unique, &method, &columns, &extra, i.predicate.as_deref()))
}

fn actual_index(i: &catalog::Index) -> Shown {
    let columns: Vec<String> = i
        .columns
        .iter()
        .map(|c| {
            let expr = expression::canonical(&c.expression);
            let opclass = (!c.opclass_default && !c.opclass.is_empty()).then_some(c.opclass.as_str());
            index_column_key(&expr, opclass, c.descending, c.nulls_first, i.orderable)
        })
        .collect();
    let mut extra = Vec::new();
    if !i.included.is_empty() {
        let included: Vec<String> = i.included.iter().map(|c| expression::canonical(c)).collect();
        extra.push(format!("INCLUDE ({})", included.join(", ")));
    }
    if i.nulls_not_distinct {
        extra.push("NULLS NOT DISTINCT".into());
    }
    if !i.options.is_empty() {
        let mut params: Vec<String> = i.options.iter().map(|o| o.to_ascii_lowercase()).collect();
        params.sort();
        extra.push(format!("WITH ({})", params.join(", ")));
    }
    Shown::same(index_key(i.unique, &i.method, &columns, &extra, i.predicate.as_deref()))
}

fn policy_key(permissive: bool, command: &str, roles: &[String], using: Option<&str>, with_check: Option<&str>) -> String {
    let mut s = format!(
        "AS {} FOR {} TO {}",
        if permissive { "PERMISSIVE" } else { "RESTRICTIVE" },
        command.to_ascii_uppercase(),
        roles.join(", ")
    );
    if let Some(u) = using {
        s.push_str(&format!(" USING {}", expression::canonical(u)));
    }
    if let Some(w) = with_check {
        s.push_str(&format!(" WITH CHECK {}", expression::canonical(w)));
    }
    s
}

fn expected_policy(p: &snapshot::Policy) -> Shown {
    let mut roles: Vec<String> = p.to.clone().unwrap_or_else(|| vec!["public".into()]).iter().map(|r| unquote(r)).collect();
    roles.sort();
    let permissive = p.kind.as_deref().is_none_or(|k| k.eq_ignore_ascii_case("permissive"));
    Shown::same(policy_key(permissive, p.command.as_deref().unwrap_or("ALL"), &roles, p.using.as_deref(), p.with_check.as_deref()))
}

fn actual_policy(p: &catalog::Policy) -> Shown {
    let mut roles = p.roles.clone();
    roles.sort();
    Shown::same(policy_key(p.permissive, &p.command, &roles, p.using.as_deref(), p.with_check.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog::{Column, Constraint, Index, IndexColumn, Table};

    fn snapshot(json: serde_json::Value) -> Snapshot {
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

    fn table(name: &str, columns: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
        let mut t = serde_json::json!({
            "name": name, "schema": "", "columns": columns, "indexes": {}, "foreignKeys": {},
            "compositePrimaryKeys": {}, "uniqueConstraints": {}, "policies": {}, "checkConstraints": {}, "isRLSEnabled": false
        });
        for (k, v) in extra.as_object().unwrap() {
            t[k] = v.clone();
        }
        t
    }

    fn col(name: &str, ty: &str, not_null: bool, default: Option<serde_json::Value>) -> serde_json::Value {
        let mut c = serde_json::json!({"name": name, "type": ty, "primaryKey": false, "notNull": not_null});
        if let Some(d) = default {
            c["default"] = d;
        }
        c
    }

    fn live_col(name: &str, ty: &str, not_null: bool, default: Option<&str>) -> Column {
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

    fn live(tables: Vec<Table>) -> Catalog {
        Catalog {
            server_version: 150_000,
            schemas: vec!["public".into()],
            tables,
            ..Catalog::default()
        }
    }

    fn live_table(name: &str, columns: Vec<Column>) -> Table {
        Table {
            schema: "public".into(),
            name: name.into(),
            columns,
            ..Table::default()
        }
    }

    fn kinds(d: &[Difference]) -> Vec<(DifferenceKind, String)> {
        d.iter().map(|d| (d.kind, d.object.clone())).collect()
    }

    /// A one-column table whose only column has the given drizzle and Postgres spellings.
    fn column_diff(drizzle_type: &str, drizzle_default: Option<serde_json::Value>, pg_type: &str, pg_default: Option<&str>) -> Vec<Difference> {
        let s = snapshot(serde_json::json!({"tables": {"public.t": table("t", serde_json::json!({"c": col("c", drizzle_type, false, drizzle_default)}), serde_json::json!({}))}}));
        let c = live(vec![live_table("t", vec![live_col("c", pg_type, false, pg_default)])]);
        compare(&s, &c, &DriftOptions::default())
    }

    #[test]
    fn type_spellings_are_one_type() {
        let pairs = [
            ("timestamp with time zone", "timestamp with time zone"),
            ("timestamptz", "timestamp with time zone"),
            ("timestamp (3) with time zone", "timestamp(3) with time zone"),
            ("timestamp (3)", "timestamp(3) without time zone"),
            ("timestamp", "timestamp without time zone"),
            ("time", "time without time zone"),
            ("numeric(10, 2)", "numeric(10,2)"),
            ("decimal(12,4)", "numeric(12,4)"),
            ("varchar(255)", "character varying(255)"),
            ("varchar", "character varying"),
            ("char(2)", "character(2)"),
            ("char", "character(1)"),
            ("int", "integer"),
            ("int4", "integer"),
            ("bigint", "bigint"),
            ("int2", "smallint"),
            ("bool", "boolean"),
            ("double precision", "double precision"),
            ("float8", "double precision"),
            ("real", "real"),
            ("text[]", "text[]"),
            ("integer[][]", "integer[]"),
            ("uuid", "uuid"),
            ("jsonb", "jsonb"),
        ];
        for (drizzle, pg) in pairs {
            let d = column_diff(drizzle, None, pg, None);
            assert!(d.is_empty(), "{drizzle} vs {pg}: {d:?}");
        }
        for (drizzle, pg) in [("numeric(10, 2)", "numeric(12,2)"), ("varchar(64)", "character varying(255)"), ("timestamp", "timestamp with time zone"), ("text", "text[]"), ("integer", "bigint")] {
            let d = column_diff(drizzle, None, pg, None);
            assert_eq!(kinds(&d), [(DifferenceKind::ColumnType, "public.t.c".into())], "{drizzle} vs {pg}");
        }
    }

    #[test]
    fn default_spellings_are_one_default() {
        use serde_json::json;
        let same = [
            ("text", json!("'USD'"), "text", "'USD'::text"),
            ("text", json!("'it''s for you'"), "text", "'it''s for you'::text"),
            ("varchar(64)", json!("'login'"), "character varying(64)", "'login'::character varying"),
            ("jsonb", json!("'[]'::jsonb"), "jsonb", "'[]'::jsonb"),
            ("jsonb", json!("'{\"source\":\"web\"}'::jsonb"), "jsonb", "'{\"source\": \"web\"}'::jsonb"),
            (
                "jsonb",
                json!("'{\"theme\":\"dark\",\"density\":2,\"notifications\":{\"email\":true,\"push\":false},\"pinned\":[]}'::jsonb"),
                "jsonb",
                "'{\"theme\": \"dark\", \"pinned\": [], \"density\": 2, \"notifications\": {\"push\": false, \"email\": true}}'::jsonb",
            ),
            ("integer", json!(0), "integer", "0"),
            ("integer", json!(-1), "integer", "'-1'::integer"),
            ("numeric(12, 2)", json!("'0'"), "numeric(12,2)", "'0'::numeric"),
            ("numeric(12, 4)", json!("'12.5000'"), "numeric(12,4)", "12.5000"),
            ("numeric(12, 4)", json!("'12.5000'"), "numeric(12,4)", "12.5"),
            ("numeric(12, 4)", json!("'-0.0'"), "numeric(12,4)", "0"),
            ("boolean", json!(true), "boolean", "true"),
            ("boolean", json!(false), "boolean", "false"),
            ("timestamp with time zone", json!("now()"), "timestamp with time zone", "now()"),
            ("uuid", json!("gen_random_uuid()"), "uuid", "gen_random_uuid()"),
            ("text[]", json!("'{\"web\"}'"), "text[]", "'{web}'::text[]"),
            ("text[]", json!("'{}'"), "text[]", "'{}'::text[]"),
            ("timestamp with time zone", json!("'2024-01-02T03:04:05.000Z'"), "timestamp with time zone", "'2024-01-02 04:04:05+01'::timestamp with time zone"),
            ("timestamp", json!("'2024-01-02 03:04:05.000'"), "timestamp without time zone", "'2024-01-02 03:04:05'::timestamp without time zone"),
            ("date", json!("'2024-01-02'"), "date", "'2024-01-02'::date"),
            ("timestamp with time zone", json!("CURRENT_TIMESTAMP"), "timestamp with time zone", "CURRENT_TIMESTAMP"),
        ];
        for (ty, d, pg_ty, pg_d) in same {
            let diff = column_diff(ty, Some(d.clone()), pg_ty, Some(pg_d));
            assert!(diff.is_empty(), "{ty} {d} vs {pg_d}: {diff:?}");
        }
        let differ = [
            ("text", json!("'USD'"), "text", "'EUR'::text"),
            ("jsonb", json!("'[]'::jsonb"), "jsonb", "'{}'::jsonb"),
            ("integer", json!(0), "integer", "1"),
            ("numeric(12, 4)", json!("'12.5000'"), "numeric(12,4)", "12.05"),
            ("numeric(12, 4)", json!("'10'"), "numeric(12,4)", "1.0"),
            ("boolean", json!(true), "boolean", "false"),
            ("text[]", json!("'{\"web\"}'"), "text[]", "'{web,store}'::text[]"),
            ("timestamp with time zone", json!("now()"), "timestamp with time zone", "'2024-01-01 00:00:00+00'::timestamp with time zone"),
            ("timestamp with time zone", json!("'2024-01-02T03:04:05.000Z'"), "timestamp with time zone", "'2024-01-02 03:04:05+01'::timestamp with time zone"),
        ];
        for (ty, d, pg_ty, pg_d) in differ {
            let diff = column_diff(ty, Some(d.clone()), pg_ty, Some(pg_d));
            assert_eq!(kinds(&diff), [(DifferenceKind::ColumnDefault, "public.t.c".into())], "{ty} {d} vs {pg_d}");
        }
        let gone = column_diff("text", Some(json!("'USD'")), "text", None);
        assert_eq!(gone[0].expected.as_deref(), Some("'USD'"));
        assert_eq!(gone[0].actual.as_deref(), Some("none"));
        let added = column_diff("text", None, "text", Some("'x'::text"));
        assert_eq!(kinds(&added), [(DifferenceKind::ColumnDefault, "public.t.c".into())]);
    }

    #[test]
    fn enum_columns_and_their_defaults() {
        let s = snapshot(serde_json::json!({
            "tables": {"public.t": table("t", serde_json::json!({
                "currency": {"name": "currency", "type": "wishlist_currency", "typeSchema": "public", "primaryKey": false, "notNull": false, "default": "'USD'"},
                "seen": {"name": "seen", "type": "channel[]", "typeSchema": "public", "primaryKey": false, "notNull": true, "default": "'{\"web\"}'"}
            }), serde_json::json!({}))},
            "enums": {
                "public.wishlist_currency": {"name": "wishlist_currency", "schema": "public", "values": ["USD", "EUR"]},
                "public.channel": {"name": "channel", "schema": "public", "values": ["web", "store"]}
            }
        }));
        let enum_col = |name: &str, ty: &str, array: bool, not_null: bool, default: &str| Column {
            name: name.into(),
            type_display: if array { format!("{ty}[]") } else { ty.into() },
            type_schema: "public".into(),
            type_name: ty.into(),
            type_kind: "e".into(),
            is_array: array,
            not_null,
            default: Some(default.into()),
            ..Column::default()
        };
        let mut c = live(vec![live_table(
            "t",
            vec![
                enum_col("currency", "wishlist_currency", false, false, "'USD'::wishlist_currency"),
                enum_col("seen", "channel", true, true, "'{web}'::channel[]"),
            ],
        )]);
        c.enums = vec![
            catalog::Enum { schema: "public".into(), name: "wishlist_currency".into(), values: vec!["USD".into(), "EUR".into()] },
            catalog::Enum { schema: "public".into(), name: "channel".into(), values: vec!["web".into(), "store".into()] },
        ];
        assert_eq!(compare(&s, &c, &DriftOptions::default()), []);
        // The same column as text is a type change, not a pass.
        c.tables[0].columns[0].type_kind = "b".into();
        c.tables[0].columns[0].type_schema = "pg_catalog".into();
        c.tables[0].columns[0].type_display = "text".into();
        let d = compare(&s, &c, &DriftOptions::default());
        assert_eq!(kinds(&d), [(DifferenceKind::ColumnType, "public.t.currency".into())]);
    }

    #[test]
    fn enum_values_missing_extra_and_reordered() {
        let s = snapshot(serde_json::json!({"enums": {"public.s": {"name": "s", "schema": "public", "values": ["a", "b", "c"]}}}));
        let with = |values: &[&str]| {
            let mut c = live(vec![]);
            c.enums = vec![catalog::Enum { schema: "public".into(), name: "s".into(), values: values.iter().map(|v| v.to_string()).collect() }];
            compare(&s, &c, &DriftOptions::default())
        };
        assert!(with(&["a", "b", "c"]).is_empty());
        let d = with(&["a", "b", "c", "x"]);
        assert_eq!((d[0].kind, d[0].actual.as_deref()), (DifferenceKind::ExtraEnumValue, Some("x")));
        let d = with(&["a", "c"]);
        assert_eq!((d[0].kind, d[0].expected.as_deref()), (DifferenceKind::MissingEnumValue, Some("b")));
        let d = with(&["b", "a", "c"]);
        assert_eq!(kinds(&d), [(DifferenceKind::EnumValueOrder, "public.s".into())]);
        assert_eq!(kinds(&compare(&s, &live(vec![]), &DriftOptions::default())), [(DifferenceKind::MissingEnum, "public.s".into())]);
    }

    #[test]
    fn serial_is_an_integer_with_its_own_sequence() {
        let s = snapshot(serde_json::json!({"tables": {"public.t": table("t", serde_json::json!({
            "id": {"name": "id", "type": "serial", "primaryKey": true, "notNull": true}
        }), serde_json::json!({}))}}));
        let mut id = live_col("id", "integer", true, Some("nextval('t_id_seq'::regclass)"));
        id.owned_sequence = Some("t_id_seq".into());
        let mut t = live_table("t", vec![id]);
        t.constraints.push(Constraint {
            name: "t_pkey".into(),
            kind: ConstraintKind::PrimaryKey,
            columns: vec!["id".into()],
            definition: "PRIMARY KEY (id)".into(),
            check: None,
            references: None,
            nulls_not_distinct: false,
        });
        let mut c = live(vec![t]);
        assert_eq!(compare(&s, &c, &DriftOptions::default()), []);
        // A nextval on a sequence the column does not own is not what serial means.
        c.tables[0].columns[0].owned_sequence = None;
        assert_eq!(kinds(&compare(&s, &c, &DriftOptions::default())), [(DifferenceKind::ColumnDefault, "public.t.id".into())]);
        c.tables[0].constraints.clear();
        c.tables[0].columns[0].owned_sequence = Some("t_id_seq".into());
        assert_eq!(kinds(&compare(&s, &c, &DriftOptions::default())), [(DifferenceKind::MissingPrimaryKey, "public.t".into())]);
    }

    #[test]
    fn composite_primary_key_columns_are_not_null_and_named() {
        let s = snapshot(serde_json::json!({"tables": {"public.m": table("m", serde_json::json!({
            "a": col("a", "integer", false, None), "b": col("b", "integer", false, None)
        }), serde_json::json!({"compositePrimaryKeys": {"m_a_b_pk": {"name": "m_a_b_pk", "columns": ["a", "b"]}}}))}}));
        let pk = |name: &str| Constraint {
            name: name.into(),
            kind: ConstraintKind::PrimaryKey,
            columns: vec!["a".into(), "b".into()],
            definition: String::new(),
            check: None,
            references: None,
            nulls_not_distinct: false,
        };
        let mut t = live_table("m", vec![live_col("a", "integer", true, None), live_col("b", "integer", true, None)]);
        t.constraints.push(pk("m_a_b_pk"));
        let mut c = live(vec![t]);
        assert_eq!(compare(&s, &c, &DriftOptions::default()), []);
        c.tables[0].constraints[0] = pk("m_pkey");
        assert_eq!(kinds(&compare(&s, &c, &DriftOptions::default())), [(DifferenceKind::PrimaryKeyDefinition, "public.m".into())]);
    }

    fn index(name: &str, method: &str, columns: &[(&str, &str, bool, bool, bool)], predicate: Option<&str>) -> Index {
        Index {
            name: name.into(),
            method: method.into(),
            unique: false,
            valid: true,
            orderable: method == "btree",
            columns: columns
                .iter()
                .map(|(e, opclass, default, desc, nulls_first)| IndexColumn {
                    expression: e.to_string(),
                    opclass: opclass.to_string(),
                    opclass_default: *default,
                    descending: *desc,
                    nulls_first: *nulls_first,
                })
                .collect(),
            predicate: predicate.map(str::to_string),
            ..Index::default()
        }
    }

    fn index_diff(drizzle: serde_json::Value, pg: Index) -> Vec<Difference> {
        let name = drizzle["name"].as_str().unwrap().to_string();
        let s = snapshot(serde_json::json!({"tables": {"public.t": table("t", serde_json::json!({}), serde_json::json!({"indexes": {name: drizzle}}))}}));
        let mut t = live_table("t", vec![]);
        t.indexes.push(pg);
        compare(&s, &live(vec![t]), &DriftOptions::default())
    }

    fn icol(expression: &str, is_expression: bool, asc: bool, nulls: &str) -> serde_json::Value {
        serde_json::json!({"expression": expression, "isExpression": is_expression, "asc": asc, "nulls": nulls})
    }

    #[test]
    fn indexes_as_drizzle_kit_writes_them() {
        use serde_json::json;
        let idx = |name: &str, cols: Vec<serde_json::Value>, method: &str, unique: bool, predicate: Option<&str>| {
            let mut v = json!({"name": name, "columns": cols, "isUnique": unique, "concurrently": false, "method": method, "with": {}});
            if let Some(p) = predicate {
                v["where"] = p.into();
            }
            v
        };
        // DESC NULLS LAST on the second column, as listings_owner_recent_idx.
        let d = index_diff(
            idx("i", vec![icol("owner_id", false, true, "last"), icol("created_at", false, false, "last")], "btree", false, None),
            index("i", "btree", &[("owner_id", "text_ops", true, false, false), ("created_at", "timestamptz_ops", true, true, false)], None),
        );
        assert_eq!(d, []);
        // The same index built DESC NULLS FIRST is different.
        let d = index_diff(
            idx("i", vec![icol("created_at", false, false, "last")], "btree", false, None),
            index("i", "btree", &[("created_at", "timestamptz_ops", true, true, true)], None),
        );
        assert_eq!(kinds(&d), [(DifferenceKind::IndexDefinition, "public.t.i".into())]);
        // Partial index predicate as pg_get_expr prints it.
        let d = index_diff(
            idx("p", vec![icol("price_cents", false, false, "last"), icol("id", false, true, "last")], "btree", false, Some("\"listings\".\"deleted_at\" IS NULL AND \"listings\".\"price_cents\" > 0")),
            index("p", "btree", &[("price_cents", "int4_ops", true, true, false), ("id", "uuid_ops", true, false, false)], Some("deleted_at IS NULL AND price_cents > 0")),
        );
        assert_eq!(d, []);
        let d = index_diff(
            idx("p", vec![icol("slug", false, true, "last")], "btree", false, Some("\"t\".\"deleted_at\" IS NULL")),
            index("p", "btree", &[("slug", "text_ops", true, false, false)], Some("deleted_at IS NOT NULL")),
        );
        assert_eq!(kinds(&d), [(DifferenceKind::IndexDefinition, "public.t.p".into())]);
        // gin with an operator class written inside the expression.
        let d = index_diff(
            idx("g", vec![json!({"expression": "\"attrs\" jsonb_path_ops", "isExpression": true, "asc": true, "nulls": "last"})], "gin", false, None),
            index("g", "gin", &[("attrs", "jsonb_path_ops", false, false, false)], None),
        );
        assert_eq!(d, []);
        let d = index_diff(
            idx("g", vec![json!({"expression": "\"attrs\" jsonb_path_ops", "isExpression": true, "asc": true, "nulls": "last"})], "gin", false, None),
            index("g", "gin", &[("attrs", "jsonb_ops", true, false, false)], None),
        );
        assert_eq!(kinds(&d), [(DifferenceKind::IndexDefinition, "public.t.g".into())]);
        // Expression columns.
        let d = index_diff(
            idx("e", vec![icol("org_id", false, true, "last"), json!({"expression": "lower(\"last_name\" || ' ' || \"first_name\")", "isExpression": true, "asc": true, "nulls": "last"})], "btree", false, None),
            index("e", "btree", &[("org_id", "int4_ops", true, false, false), ("lower((last_name || ' '::text) || first_name)", "text_ops", true, false, false)], None),
        );
        assert_eq!(d, []);
        // Column order, method and uniqueness all count.
        let d = index_diff(
            idx("o", vec![icol("a", false, true, "last"), icol("b", false, true, "last")], "btree", false, None),
            index("o", "btree", &[("b", "int4_ops", true, false, false), ("a", "int4_ops", true, false, false)], None),
        );
        assert_eq!(d.len(), 1);
        let d = index_diff(idx("h", vec![icol("a", false, true, "last")], "hash", false, None), index("h", "btree", &[("a", "int4_ops", true, false, false)], None));
        assert_eq!(d.len(), 1);
        let mut unique = index("u", "btree", &[("a", "int4_ops", true, false, false)], None);
        unique.unique = true;
        assert_eq!(index_diff(idx("u", vec![icol("a", false, true, "last")], "btree", false, None), unique.clone()).len(), 1);
        assert_eq!(index_diff(idx("u", vec![icol("a", false, true, "last")], "btree", true, None), unique), []);
        // The explicit default opclass is the default opclass.
        let mut explicit = icol("email", false, true, "last");
        explicit["opclass"] = "text_ops".into();
        assert_eq!(index_diff(idx("x", vec![explicit], "btree", false, None), index("x", "btree", &[("email", "text_ops", true, false, false)], None)), []);
    }

    #[test]
    fn missing_and_extra_objects_are_named_exactly() {
        let s = snapshot(serde_json::json!({"tables": {"public.t": table("t", serde_json::json!({"a": col("a", "text", false, None)}), serde_json::json!({
            "indexes": {"idx_a": {"name": "idx_a", "columns": [icol("a", false, true, "last")], "isUnique": false, "concurrently": false, "method": "btree", "with": {}}},
            "checkConstraints": {"a_check": {"name": "a_check", "value": "length(\"t\".\"a\") > 0"}}
        }))}}));
        let mut t = live_table("t", vec![live_col("a", "text", false, None), live_col("b", "text", false, None)]);
        t.indexes.push(index("idx_b", "btree", &[("b", "text_ops", true, false, false)], None));
        t.constraints.push(Constraint {
            name: "a_check".into(),
            kind: ConstraintKind::Check,
            columns: vec!["a".into()],
            definition: "CHECK (length(a) > 1)".into(),
            check: Some("length(a) > 1".into()),
            references: None,
            nulls_not_distinct: false,
        });
        let mut other = live_table("audit_log", vec![]);
        other.schema = "public".into();
        let c = live(vec![t, other]);
        let d = compare(&s, &c, &DriftOptions::default());
        assert_eq!(
            kinds(&d),
            [
                (DifferenceKind::ExtraColumn, "public.t.b".into()),
                (DifferenceKind::MissingIndex, "public.t.idx_a".into()),
                (DifferenceKind::ExtraIndex, "public.t.idx_b".into()),
                (DifferenceKind::ConstraintDefinition, "public.t.a_check".into()),
                (DifferenceKind::ExtraTable, "public.audit_log".into()),
            ]
        );
        // DRIFT_IGNORE and the ledger are never drift.
        let options = DriftOptions {
            ignore: IgnoreRule::parse_list("audit_log"),
            ..DriftOptions::default()
        };
        assert!(!kinds(&compare(&s, &c, &options)).iter().any(|(_, o)| o.contains("audit_log")));
    }

    #[test]
    fn the_ledger_schema_is_not_drift_but_other_schemas_are() {
        let s = snapshot(serde_json::json!({}));
        let mut c = live(vec![]);
        c.schemas = vec!["drizzle".into(), "public".into(), "reporting".into()];
        let mut ledger = live_table("__drizzle_migrations", vec![]);
        ledger.schema = "drizzle".into();
        let mut history = live_table(HISTORY_TABLE, vec![]);
        history.schema = "drizzle".into();
        let mut report = live_table("daily", vec![]);
        report.schema = "reporting".into();
        c.tables = vec![ledger, history, report];
        let d = compare(&s, &c, &DriftOptions::default());
        assert_eq!(kinds(&d), [(DifferenceKind::ExtraSchema, "reporting".into()), (DifferenceKind::ExtraTable, "reporting.daily".into())]);
        let options = DriftOptions {
            ignore: IgnoreRule::parse_list(" reporting.* , "),
            ..DriftOptions::default()
        };
        assert_eq!(compare(&s, &c, &options), [], "schema.* ignores the schema and all in it");
    }

    #[test]
    fn ignore_rules_parse() {
        assert_eq!(
            IgnoreRule::parse_list("a, audit.events,\"Mixed\".\"Case\",x.*"),
            [
                IgnoreRule { schema: "public".into(), name: Some("a".into()) },
                IgnoreRule { schema: "audit".into(), name: Some("events".into()) },
                IgnoreRule { schema: "Mixed".into(), name: Some("Case".into()) },
                IgnoreRule { schema: "x".into(), name: None },
            ]
        );
        assert!(IgnoreRule::parse_list(" , ").is_empty());
    }

    #[test]
    fn foreign_keys_uniques_and_checks() {
        let s = snapshot(serde_json::json!({"tables": {"public.m": table("m", serde_json::json!({"a": col("a", "integer", false, None), "role": col("role", "text", true, None)}), serde_json::json!({
            "foreignKeys": {"m_a_fk": {"name": "m_a_fk", "tableFrom": "m", "tableTo": "accounts", "columnsFrom": ["a"], "columnsTo": ["id"], "onDelete": "set null", "onUpdate": "cascade"}},
            "uniqueConstraints": {"m_a_uq": {"name": "m_a_uq", "nullsNotDistinct": true, "columns": ["a"]}},
            "checkConstraints": {"m_role_check": {"name": "m_role_check", "value": "\"m\".\"role\" IN ('member', 'admin')"}}
        }))}}));
        let con = |name: &str, kind, check: Option<&str>, references: Option<catalog::Reference>, nnd| Constraint {
            name: name.into(),
            kind,
            columns: vec![if check.is_some() { "role" } else { "a" }.into()],
            definition: String::new(),
            check: check.map(str::to_string),
            references,
            nulls_not_distinct: nnd,
        };
        let reference = |on_delete: &str| catalog::Reference {
            schema: "public".into(),
            table: "accounts".into(),
            columns: vec!["id".into()],
            on_update: "cascade".into(),
            on_delete: on_delete.into(),
        };
        let build = |on_delete: &str, nnd: bool, check: &str| {
            let mut t = live_table("m", vec![live_col("a", "integer", false, None), live_col("role", "text", true, None)]);
            t.constraints = vec![
                con("m_a_fk", ConstraintKind::ForeignKey, None, Some(reference(on_delete)), false),
                con("m_a_uq", ConstraintKind::Unique, None, None, nnd),
                con("m_role_check", ConstraintKind::Check, Some(check), None, false),
            ];
            live(vec![t])
        };
        let good = "role = ANY (ARRAY['member'::text, 'admin'::text])";
        assert_eq!(compare(&s, &build("set null", true, good), &DriftOptions::default()), []);
        let d = compare(&s, &build("cascade", false, "role = ANY (ARRAY['member'::text])"), &DriftOptions::default());
        assert_eq!(
            kinds(&d),
            [
                (DifferenceKind::ConstraintDefinition, "public.m.m_a_fk".into()),
                (DifferenceKind::ConstraintDefinition, "public.m.m_a_uq".into()),
                (DifferenceKind::ConstraintDefinition, "public.m.m_role_check".into()),
            ]
        );
    }

    #[test]
    fn nullability_and_missing_columns() {
        let d = column_diff("text", None, "text", None);
        assert!(d.is_empty());
        let s = snapshot(serde_json::json!({"tables": {"public.t": table("t", serde_json::json!({"c": col("c", "text", true, None)}), serde_json::json!({}))}}));
        let d = compare(&s, &live(vec![live_table("t", vec![live_col("c", "text", false, None)])]), &DriftOptions::default());
        assert_eq!((d[0].kind, d[0].expected.as_deref(), d[0].actual.as_deref()), (DifferenceKind::ColumnNullability, Some("not null"), Some("nullable")));
        let d = compare(&s, &live(vec![live_table("t", vec![])]), &DriftOptions::default());
        assert_eq!(kinds(&d), [(DifferenceKind::MissingColumn, "public.t.c".into())]);
        let d = compare(&s, &live(vec![]), &DriftOptions::default());
        assert_eq!(kinds(&d), [(DifferenceKind::MissingTable, "public.t".into())]);
    }

    #[test]
    fn timestamps_parse_to_instants() {
        assert_eq!(parse_timestamp("1970-01-01"), Some((0, None)));
        assert_eq!(parse_timestamp("1970-01-01T00:00:01.5Z"), Some((1_500_000, Some(0))));
        assert_eq!(parse_timestamp("1970-01-02 00:00:00+01"), Some((86_400_000_000, Some(3600))));
        assert_eq!(parse_timestamp("2000-03-01 00:00:00-05:30").map(|(_, o)| o), Some(Some(-19_800)));
        assert_eq!(parse_timestamp("now"), None);
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
    }

    #[test]
    fn array_literals() {
        assert_eq!(parse_array_literal("{}"), Some(vec![]));
        assert_eq!(
            parse_array_literal(r#"{a,"b c",NULL,{1,2}}"#),
            Some(vec![
                ArrayItem::Value("a".into()),
                ArrayItem::Value("b c".into()),
                ArrayItem::Null,
                ArrayItem::Nested(vec![ArrayItem::Value("1".into()), ArrayItem::Value("2".into())])
            ])
        );
        assert_eq!(parse_array_literal(r#"{"a\"b"}"#), Some(vec![ArrayItem::Value("a\"b".into())]));
        assert_eq!(parse_array_literal("{a"), None);
        assert_eq!(parse_array_literal("x"), None);
    }
}
