//! Both sides in one model: the snapshot and the catalog each become the same maps of tables,
//! columns, constraints and other objects in normal form, so comparing them is comparing maps.

use std::collections::{BTreeMap, BTreeSet};

use crate::db::catalog::{self, Catalog, ConstraintKind};
use crate::schema::expression;
use crate::schema::snapshot::{schema_or_public, Snapshot};

use super::column_type::TypeInfo;
use super::constraints::{check_shown, foreign_key_shown, unique_shown};
use super::defaults::{default_from_json, default_from_sql};
use super::ident::{pg_name, unquote};
use super::indexes::{actual_index, expected_index};
use super::options::DriftOptions;
use super::policies::{actual_policy, actual_policy_probe, expected_policy, expected_policy_probe};
use super::sequences::{actual_identity, expected_identity, expected_sequence, sequence_display, sequence_matches};
use super::shown::{Probe, Shown};

pub(super) type Key = (String, String);

pub(super) fn qualified((schema, name): &Key) -> String {
    format!("{schema}.{name}")
}

#[derive(Debug, Default)]
pub(super) struct Model {
    pub(super) schemas: BTreeSet<String>,
    pub(super) tables: BTreeMap<Key, TableModel>,
    pub(super) enums: BTreeMap<Key, Vec<String>>,
    pub(super) sequences: BTreeMap<Key, Shown>,
    pub(super) views: BTreeMap<Key, Shown>,
}

#[derive(Debug, Default)]
pub(super) struct TableModel {
    pub(super) columns: BTreeMap<String, ColumnModel>,
    pub(super) indexes: BTreeMap<String, Shown>,
    pub(super) primary_key: Option<PrimaryKeyModel>,
    pub(super) constraints: BTreeMap<String, Shown>,
    pub(super) rls: bool,
    pub(super) policies: BTreeMap<String, Shown>,
    /// The expressions of policies, check constraints and generated columns, by what they belong to.
    pub(super) probes: BTreeMap<(ProbeOf, String), Probe>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum ProbeOf {
    Policy,
    Constraint,
    Generated,
}

fn single(frame: &str, expression: &str) -> Probe {
    Probe {
        frame: frame.to_string(),
        expressions: vec![expression.to_string()],
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PrimaryKeyModel {
    /// Only a composite primary key has a name drizzle chose; a column's `primaryKey` lets
    /// Postgres name it.
    pub(super) name: Option<String>,
    pub(super) columns: Vec<String>,
}

#[derive(Debug)]
pub(super) struct ColumnModel {
    pub(super) ty: TypeInfo,
    pub(super) not_null: bool,
    pub(super) default: Option<Shown>,
    pub(super) identity: Option<Shown>,
    pub(super) generated: Option<Shown>,
}

impl Model {
    pub(super) fn expected(s: &Snapshot, live: &Catalog, options: &DriftOptions) -> Self {
        let mut m = Model::default();
        m.schemas.insert("public".into());
        m.schemas.extend(s.schemas.values().cloned());
        for t in s.tables.values() {
            let schema = t.schema_name().to_string();
            m.schemas.insert(schema.clone());
            if options.ignored(&schema, &t.name) {
                continue;
            }
            let live_table = live.table(&schema, &pg_name(&t.name));
            // Postgres folds a UNIQUE on exactly the primary key's columns, written in the same
            // CREATE TABLE, into the primary key, which then carries the unique constraint's name.
            let live_pk = live_table.and_then(|lt| lt.constraints.iter().find(|c| c.kind == ConstraintKind::PrimaryKey));
            let folded_into_pk =
                |name: &str, columns: &[String]| live_pk.is_some_and(|pk| pk.name == pg_name(name) && pk.columns == columns);
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
                    pg_name(&c.name),
                    ColumnModel {
                        not_null: c.not_null || pk_columns.contains(c.name.as_str()) || c.identity.is_some(),
                        default,
                        identity: c.identity.as_ref().map(expected_identity),
                        generated: c.generated.as_ref().map(|g| {
                            table
                                .probes
                                .insert((ProbeOf::Generated, pg_name(&c.name)), single("GENERATED ?", &g.expression));
                            Shown {
                                key: expression::canonical(&g.expression),
                                display: g.expression.clone(),
                            }
                        }),
                        ty,
                    },
                );
                let unique_name = c.unique_name.clone().unwrap_or_else(|| format!("{}_{}_unique", t.name, c.name));
                if c.is_unique() && !folded_into_pk(&unique_name, std::slice::from_ref(&c.name)) {
                    let name = unique_name;
                    table.constraints.insert(
                        pg_name(&name),
                        unique_shown(std::slice::from_ref(&c.name), c.nulls_not_distinct.unwrap_or(false)),
                    );
                }
            }
            let inline: Vec<String> = t.columns.values().filter(|c| c.primary_key).map(|c| c.name.clone()).collect();
            table.primary_key = match t.composite_primary_keys.values().next() {
                Some(pk) => Some(PrimaryKeyModel {
                    name: Some(pg_name(&pk.name)),
                    columns: pk.columns.clone(),
                }),
                None if !inline.is_empty() => Some(PrimaryKeyModel {
                    name: None,
                    columns: inline,
                }),
                None => None,
            };
            for i in t.indexes.values() {
                let live_index = live_table.and_then(|lt| lt.indexes.iter().find(|x| x.name == pg_name(&i.name)));
                table.indexes.insert(pg_name(&i.name), expected_index(i, live_index));
            }
            for u in t.unique_constraints.values().filter(|u| !folded_into_pk(&u.name, &u.columns)) {
                table
                    .constraints
                    .insert(pg_name(&u.name), unique_shown(&u.columns, u.nulls_not_distinct));
            }
            for fk in t.foreign_keys.values() {
                let to_schema = fk.schema_to.as_deref().map(schema_or_public).unwrap_or("public");
                table.constraints.insert(
                    pg_name(&fk.name),
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
                table.constraints.insert(pg_name(&ck.name), check_shown(&ck.value));
                table
                    .probes
                    .insert((ProbeOf::Constraint, pg_name(&ck.name)), single("CHECK ?", &ck.value));
            }
            for p in t.policies.values() {
                table.policies.insert(pg_name(&p.name), expected_policy(p));
                table.probes.insert((ProbeOf::Policy, pg_name(&p.name)), expected_policy_probe(p));
            }
            m.tables.insert((schema, pg_name(&t.name)), table);
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
                t.probes.insert((ProbeOf::Policy, p.name.clone()), expected_policy_probe(p));
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

    pub(super) fn actual(c: &Catalog, want: &Model, options: &DriftOptions) -> Self {
        // The ledger's schema is this tool's and drizzle-orm's, not the application's.
        let managed = |schema: &str| schema != options.ledger.schema || want.schemas.contains(schema);
        let ignored_schema = |schema: &str| options.ignore.iter().any(|r| r.schema == schema && r.name.is_none());
        let mut m = Model {
            schemas: c.schemas.iter().filter(|s| managed(s) && !ignored_schema(s)).cloned().collect(),
            ..Model::default()
        };
        for t in c
            .tables
            .iter()
            .filter(|t| managed(&t.schema) && !options.ignored(&t.schema, &t.name))
        {
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
                        generated: col.generated.as_ref().map(|g| {
                            table
                                .probes
                                .insert((ProbeOf::Generated, col.name.clone()), single("GENERATED ?", g));
                            Shown {
                                key: expression::canonical(g),
                                display: g.clone(),
                            }
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
                        table
                            .constraints
                            .insert(con.name.clone(), unique_shown(&con.columns, con.nulls_not_distinct));
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
                        if let Some(check) = &con.check {
                            table
                                .probes
                                .insert((ProbeOf::Constraint, con.name.clone()), single("CHECK ?", check));
                        }
                    }
                }
            }
            for p in &t.policies {
                table.policies.insert(p.name.clone(), actual_policy(p));
                table.probes.insert((ProbeOf::Policy, p.name.clone()), actual_policy_probe(p));
            }
            m.tables.insert((t.schema.clone(), t.name.clone()), table);
        }
        for e in c.enums.iter().filter(|e| managed(&e.schema)) {
            m.enums.insert((e.schema.clone(), e.name.clone()), e.values.clone());
        }
        for q in c
            .sequences
            .iter()
            .filter(|q| managed(&q.schema) && !options.ignored(&q.schema, &q.name))
        {
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
        for v in c
            .views
            .iter()
            .filter(|v| managed(&v.schema) && !options.ignored(&v.schema, &v.name))
        {
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

fn view_shown(materialized: bool) -> Shown {
    Shown::same(if materialized { "materialized view" } else { "view" }.into())
}
