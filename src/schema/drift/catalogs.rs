//! Manual changes: the live catalog against a baseline catalog (recorded at the end of the last
//! run, or built by replaying the applied migrations), both read from `pg_catalog` by the same
//! code. Postgres printed both sides, so every difference is a real change made outside the
//! migrations: nothing here normalises, and nothing can differ only in spelling.

use std::collections::BTreeMap;

use crate::db::catalog::{Catalog, Column, Constraint, ConstraintKind, Index, Policy, SequenceOptions, Table};

use super::difference::{changed, diff_enum_values, extra, missing, Difference, DifferenceKind as K};
use super::options::DriftOptions;

/// Every way `live` differs from `baseline`; `expected` is the baseline's side.
pub fn compare_catalogs(baseline: &Catalog, live: &Catalog, options: &DriftOptions) -> Vec<Difference> {
    let mut out = Vec::new();
    // The ledger's schema exists once anything was applied, by this tool or drizzle-orm: it is
    // theirs, not the application's (the tables in it are still compared, but for the ledger's).
    let schemas = |c: &Catalog| {
        c.schemas
            .iter()
            .filter(|s| **s != options.ledger.schema && !options.ignored_schema(s))
            .map(|s| (s.clone(), "schema".to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    diff_named(
        &schemas(baseline),
        &schemas(live),
        [K::MissingSchema, K::ExtraSchema, K::MissingSchema],
        &mut out,
    );

    let enums = |c: &Catalog| {
        c.enums
            .iter()
            .filter(|e| !options.ignored_schema(&e.schema))
            .map(|e| (format!("{}.{}", e.schema, e.name), e.values.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let (want, have) = (enums(baseline), enums(live));
    for (name, values) in &want {
        match have.get(name) {
            None => out.push(missing(K::MissingEnum, name.clone(), &values.join(", "))),
            Some(live_values) => diff_enum_values(name, values, live_values, &mut out),
        }
    }
    for (name, values) in have.iter().filter(|(n, _)| !want.contains_key(*n)) {
        out.push(extra(K::ExtraEnum, name.clone(), &values.join(", ")));
    }

    let (want, have) = (tables(baseline, options), tables(live, options));
    for (name, table) in &want {
        match have.get(name) {
            None => out.push(missing(K::MissingTable, name.clone(), "table")),
            Some(live_table) => diff_table(name, table, live_table, &mut out),
        }
    }
    for name in have.keys().filter(|n| !want.contains_key(*n)) {
        out.push(extra(K::ExtraTable, name.clone(), "table"));
    }

    let sequences = |c: &Catalog| {
        c.sequences
            .iter()
            .filter(|q| !options.ignored(&q.schema, &q.name))
            .map(|q| (format!("{}.{}", q.schema, q.name), sequence_display(&q.options)))
            .collect::<BTreeMap<_, _>>()
    };
    diff_named(
        &sequences(baseline),
        &sequences(live),
        [K::MissingSequence, K::ExtraSequence, K::SequenceDefinition],
        &mut out,
    );
    let views = |c: &Catalog| {
        c.views
            .iter()
            .filter(|v| !options.ignored(&v.schema, &v.name))
            .map(|v| {
                let kind = if v.materialized { "materialized view" } else { "view" };
                (format!("{}.{}", v.schema, v.name), format!("{kind} AS {}", v.definition.trim()))
            })
            .collect::<BTreeMap<_, _>>()
    };
    diff_named(
        &views(baseline),
        &views(live),
        [K::MissingView, K::ExtraView, K::ViewDefinition],
        &mut out,
    );
    out
}

/// Objects by name: missing, extra, or shown differently.
fn diff_named(want: &BTreeMap<String, String>, have: &BTreeMap<String, String>, kinds: [K; 3], out: &mut Vec<Difference>) {
    let [missing_kind, extra_kind, changed_kind] = kinds;
    for (name, w) in want {
        match have.get(name) {
            None => out.push(missing(missing_kind, name.clone(), w)),
            Some(h) if h != w => out.push(changed(changed_kind, name.clone(), w, h)),
            Some(_) => {}
        }
    }
    for (name, h) in have.iter().filter(|(n, _)| !want.contains_key(*n)) {
        out.push(extra(extra_kind, name.clone(), h));
    }
}

fn diff_table(object: &str, want: &Table, have: &Table, out: &mut Vec<Difference>) {
    if want.rls_enabled != have.rls_enabled {
        let shown = |on: bool| if on { "enabled" } else { "disabled" };
        out.push(changed(
            K::RowLevelSecurity,
            object.to_string(),
            shown(want.rls_enabled),
            shown(have.rls_enabled),
        ));
    }
    let (want_columns, have_columns) = (columns(want), columns(have));
    for (name, w) in &want_columns {
        let column = format!("{object}.{name}");
        let Some(h) = have_columns.get(name) else {
            out.push(missing(K::MissingColumn, column, &w.type_display));
            continue;
        };
        let pairs: [(K, String, String); 5] = [
            (K::ColumnType, w.type_display.clone(), h.type_display.clone()),
            (K::ColumnNullability, not_null(w.not_null), not_null(h.not_null)),
            (K::ColumnDefault, optional(&w.default), optional(&h.default)),
            (
                K::ColumnIdentity,
                optional(&w.identity.as_ref().map(|i| format!("{} {}", i.kind, sequence_display(&i.sequence)))),
                optional(&h.identity.as_ref().map(|i| format!("{} {}", i.kind, sequence_display(&i.sequence)))),
            ),
            (K::ColumnGenerated, optional(&w.generated), optional(&h.generated)),
        ];
        for (kind, expected, actual) in pairs {
            if expected != actual {
                out.push(changed(kind, column.clone(), &expected, &actual));
            }
        }
    }
    for (name, h) in have_columns.iter().filter(|(n, _)| !want_columns.contains_key(*n)) {
        out.push(extra(K::ExtraColumn, format!("{object}.{name}"), &h.type_display));
    }

    let (want_pk, have_pk) = (primary_key(want), primary_key(have));
    match (want_pk, have_pk) {
        (Some(w), None) => out.push(missing(K::MissingPrimaryKey, format!("{object}.{}", w.name), &w.definition)),
        (None, Some(h)) => out.push(extra(K::ExtraPrimaryKey, format!("{object}.{}", h.name), &h.definition)),
        (Some(w), Some(h)) if (&w.name, &w.definition) != (&h.name, &h.definition) => out.push(changed(
            K::PrimaryKeyDefinition,
            object.to_string(),
            &format!("{} {}", w.name, w.definition),
            &format!("{} {}", h.name, h.definition),
        )),
        _ => {}
    }
    let constraints = |t: &Table| {
        t.constraints
            .iter()
            .filter(|c| c.kind != ConstraintKind::PrimaryKey)
            .map(|c| (format!("{object}.{}", c.name), c.definition.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    diff_named(
        &constraints(want),
        &constraints(have),
        [K::MissingConstraint, K::ExtraConstraint, K::ConstraintDefinition],
        out,
    );
    // Indexes behind a primary key or unique constraint are compared as the constraint.
    let indexes = |t: &Table| {
        t.indexes
            .iter()
            .filter(|i| i.constraint.is_none())
            .map(|i| (format!("{object}.{}", i.name), index_display(i)))
            .collect::<BTreeMap<_, _>>()
    };
    diff_named(
        &indexes(want),
        &indexes(have),
        [K::MissingIndex, K::ExtraIndex, K::IndexDefinition],
        out,
    );
    let policies = |t: &Table| {
        t.policies
            .iter()
            .map(|p| (format!("{object}.{}", p.name), policy_display(p)))
            .collect::<BTreeMap<_, _>>()
    };
    diff_named(
        &policies(want),
        &policies(have),
        [K::MissingPolicy, K::ExtraPolicy, K::PolicyDefinition],
        out,
    );
}

fn tables<'c>(c: &'c Catalog, options: &DriftOptions) -> BTreeMap<String, &'c Table> {
    c.tables
        .iter()
        .filter(|t| !options.ignored(&t.schema, &t.name))
        .map(|t| (format!("{}.{}", t.schema, t.name), t))
        .collect()
}

fn columns(t: &Table) -> BTreeMap<String, &Column> {
    t.columns.iter().map(|c| (c.name.clone(), c)).collect()
}

fn primary_key(t: &Table) -> Option<&Constraint> {
    t.constraints.iter().find(|c| c.kind == ConstraintKind::PrimaryKey)
}

fn not_null(yes: bool) -> String {
    if yes { "not null" } else { "nullable" }.to_string()
}

fn optional(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "none".to_string())
}

/// An index as one line, every part Postgres printed kept as it printed it.
fn index_display(i: &Index) -> String {
    let columns: Vec<String> = i
        .columns
        .iter()
        .map(|c| {
            let mut s = c.expression.clone();
            if !c.opclass_default && !c.opclass.is_empty() {
                s.push(' ');
                s.push_str(&c.opclass);
            }
            if i.orderable {
                s.push_str(if c.descending { " DESC" } else { "" });
                // Postgres's defaults: NULLS LAST ascending, NULLS FIRST descending.
                if c.nulls_first != c.descending {
                    s.push_str(if c.nulls_first { " NULLS FIRST" } else { " NULLS LAST" });
                }
            }
            s
        })
        .collect();
    let mut s = format!(
        "{}USING {} ({})",
        if i.unique { "UNIQUE " } else { "" },
        i.method,
        columns.join(", ")
    );
    if !i.included.is_empty() {
        s.push_str(&format!(" INCLUDE ({})", i.included.join(", ")));
    }
    if i.nulls_not_distinct {
        s.push_str(" NULLS NOT DISTINCT");
    }
    if !i.options.is_empty() {
        s.push_str(&format!(" WITH ({})", i.options.join(", ")));
    }
    if let Some(predicate) = &i.predicate {
        s.push_str(&format!(" WHERE {predicate}"));
    }
    if !i.valid {
        s.push_str(" (INVALID)");
    }
    s
}

fn sequence_display(o: &SequenceOptions) -> String {
    format!(
        "increment {} minvalue {} maxvalue {} start {} cache {} cycle {}",
        o.increment, o.min, o.max, o.start, o.cache, o.cycle
    )
}

fn policy_display(p: &Policy) -> String {
    let mut s = format!(
        "AS {} FOR {} TO {}",
        if p.permissive { "PERMISSIVE" } else { "RESTRICTIVE" },
        p.command,
        p.roles.join(", ")
    );
    if let Some(using) = &p.using {
        s.push_str(&format!(" USING ({using})"));
    }
    if let Some(check) = &p.with_check {
        s.push_str(&format!(" WITH CHECK ({check})"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog::{Enum, IndexColumn, Sequence, SequenceOptions, View};

    fn column(name: &str, ty: &str) -> Column {
        Column {
            name: name.into(),
            type_display: ty.into(),
            ..Column::default()
        }
    }

    fn baseline() -> Catalog {
        Catalog {
            server_version: 150_000,
            schemas: vec!["drizzle".into(), "public".into()],
            tables: vec![Table {
                schema: "public".into(),
                name: "wishlist_items".into(),
                rls_enabled: false,
                columns: vec![column("id", "uuid"), column("title", "text")],
                indexes: vec![Index {
                    name: "idx_title".into(),
                    method: "btree".into(),
                    valid: true,
                    orderable: true,
                    columns: vec![IndexColumn {
                        expression: "title".into(),
                        opclass: "text_ops".into(),
                        opclass_default: true,
                        ..IndexColumn::default()
                    }],
                    ..Index::default()
                }],
                constraints: vec![Constraint {
                    name: "wishlist_items_pkey".into(),
                    kind: ConstraintKind::PrimaryKey,
                    columns: vec!["id".into()],
                    definition: "PRIMARY KEY (id)".into(),
                    check: None,
                    references: None,
                    nulls_not_distinct: false,
                }],
                policies: vec![],
            }],
            views: vec![View {
                schema: "public".into(),
                name: "open_items".into(),
                materialized: false,
                definition: " SELECT id FROM wishlist_items;".into(),
            }],
            enums: vec![Enum {
                schema: "public".into(),
                name: "status".into(),
                values: vec!["open".into(), "done".into()],
            }],
            sequences: vec![Sequence {
                schema: "public".into(),
                name: "ticket".into(),
                options: SequenceOptions {
                    increment: 1,
                    ..SequenceOptions::default()
                },
            }],
        }
    }

    fn kinds(out: &[Difference]) -> Vec<(K, &str)> {
        out.iter().map(|d| (d.kind, d.object.as_str())).collect()
    }

    #[test]
    fn a_catalog_has_no_differences_from_itself() {
        assert_eq!(compare_catalogs(&baseline(), &baseline(), &DriftOptions::default()), vec![]);
    }

    #[test]
    fn every_manual_change_is_named() {
        let mut live = baseline();
        let table = &mut live.tables[0];
        table.columns[1].not_null = true;
        table.columns[1].default = Some("'x'::text".into());
        table.columns.push(column("note", "text"));
        table.indexes[0].predicate = Some("(title IS NOT NULL)".into());
        table.constraints.push(Constraint {
            name: "title_short".into(),
            kind: ConstraintKind::Check,
            columns: vec!["title".into()],
            definition: "CHECK (length(title) < 100)".into(),
            check: Some("length(title) < 100".into()),
            references: None,
            nulls_not_distinct: false,
        });
        table.rls_enabled = true;
        live.enums[0].values.push("archived".into());
        live.sequences[0].options.increment = 5;
        live.views[0].definition = " SELECT id, title FROM wishlist_items;".into();
        let out = compare_catalogs(&baseline(), &live, &DriftOptions::default());
        assert_eq!(
            kinds(&out),
            vec![
                (K::ExtraEnumValue, "public.status"),
                (K::RowLevelSecurity, "public.wishlist_items"),
                (K::ColumnNullability, "public.wishlist_items.title"),
                (K::ColumnDefault, "public.wishlist_items.title"),
                (K::ExtraColumn, "public.wishlist_items.note"),
                (K::ExtraConstraint, "public.wishlist_items.title_short"),
                (K::IndexDefinition, "public.wishlist_items.idx_title"),
                (K::SequenceDefinition, "public.ticket"),
                (K::ViewDefinition, "public.open_items"),
            ]
        );
        assert_eq!(out[3].expected.as_deref(), Some("none"));
        assert_eq!(out[3].actual.as_deref(), Some("'x'::text"));
    }

    #[test]
    fn column_order_is_no_change() {
        // An online type change's swap leaves the column last in its table.
        let mut live = baseline();
        live.tables[0].columns.reverse();
        assert_eq!(compare_catalogs(&baseline(), &live, &DriftOptions::default()), vec![]);
    }

    #[test]
    fn dropped_objects_are_missing_and_reordered_enum_values_are_named() {
        let mut live = baseline();
        live.tables[0].indexes.clear();
        live.tables[0].constraints.clear();
        live.enums[0].values.reverse();
        live.views.clear();
        let out = compare_catalogs(&baseline(), &live, &DriftOptions::default());
        assert_eq!(
            kinds(&out),
            vec![
                (K::EnumValueOrder, "public.status"),
                (K::MissingPrimaryKey, "public.wishlist_items.wishlist_items_pkey"),
                (K::MissingIndex, "public.wishlist_items.idx_title"),
                (K::MissingView, "public.open_items"),
            ]
        );
    }

    #[test]
    fn ignored_tables_and_the_ledger_are_left_out() {
        let mut live = baseline();
        live.tables.push(Table {
            schema: "drizzle".into(),
            name: crate::db::ledger::HISTORY_TABLE.into(),
            columns: vec![column("catalog", "jsonb")],
            ..Table::default()
        });
        live.tables.push(Table {
            schema: "public".into(),
            name: "sessions".into(),
            ..Table::default()
        });
        let options = DriftOptions {
            ignore: super::super::options::IgnoreRule::parse_list("sessions"),
            ..DriftOptions::default()
        };
        assert_eq!(compare_catalogs(&baseline(), &live, &options), vec![]);
    }
}
