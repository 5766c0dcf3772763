//! The model question's left side: the catalog Postgres built from the snapshot's DDL
//! (`schema::model_ddl`), read back under its prefixed schemas, turned into the schema the
//! snapshot describes, so that `compare_catalogs` compares it with a catalog the migrations built
//! exactly as it compares two of those. Pure.

use crate::db::catalog::{Catalog, ConstraintKind, View};
use crate::schema::model_ddl::MODEL_PREFIX;

/// The model catalog `built` (read from the prefixed schemas) as the application names it, with
/// the snapshot's `views` (schema, name, materialized), beside `against`, the catalog it is to
/// be compared with.
pub fn model_catalog(built: Catalog, views: &[(String, String, bool)], against: &Catalog) -> Catalog {
    let mut model = unprefixed(built);
    for (schema, name, materialized) in views {
        // A view's definition is compared between catalogs Postgres printed (manual changes);
        // drizzle's snapshot holds the query builder's SQL, so here only existence and kind count.
        let definition = against
            .views
            .iter()
            .find(|v| v.schema == *schema && v.name == *name)
            .map(|v| v.definition.clone())
            .unwrap_or_default();
        model.views.push(View {
            schema: schema.clone(),
            name: name.clone(),
            materialized: *materialized,
            definition,
        });
    }
    chosen_names_as(&mut model, against);
    model
}

/// Every name and printed expression of `built` without the model's schema prefix. Postgres
/// printed the model's own objects qualified by their prefixed schema wherever it would qualify
/// the application's: removing the prefix everywhere gives the application's spelling. Done on
/// the serialised catalog so that no field can be missed.
fn unprefixed(built: Catalog) -> Catalog {
    let text = serde_json::to_string(&built).expect("a catalog serialises");
    let text = text.replace(MODEL_PREFIX, "");
    serde_json::from_str(&text).expect("the catalog's own serialisation reads back")
}

/// Names Postgres chose rather than drizzle, taken from `against` where they name the same
/// thing: the primary key of a table renamed since it was created keeps its first name
/// (`<old table>_pkey`), and so does a serial column's sequence, named in its default.
fn chosen_names_as(model: &mut Catalog, against: &Catalog) {
    for table in &mut model.tables {
        let Some(other) = against.tables.iter().find(|t| t.schema == table.schema && t.name == table.name) else {
            continue;
        };
        let other_pk = other.constraints.iter().find(|c| c.kind == ConstraintKind::PrimaryKey);
        if let (Some(pk), Some(other_pk)) = (
            table
                .constraints
                .iter_mut()
                .find(|c| c.kind == ConstraintKind::PrimaryKey && c.name.ends_with("_pkey")),
            other_pk,
        ) {
            if pk.columns == other_pk.columns {
                pk.name = other_pk.name.clone();
            }
        }
        for column in &mut table.columns {
            let Some(other_column) = other.columns.iter().find(|c| c.name == column.name) else {
                continue;
            };
            let serial = |c: &crate::db::catalog::Column| {
                c.owned_sequence.is_some() && c.default.as_deref().is_some_and(|d| d.starts_with("nextval("))
            };
            if serial(column) && serial(other_column) {
                column.default = other_column.default.clone();
                column.owned_sequence = other_column.owned_sequence.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog::{Column, Constraint, Table};

    fn table(name: &str, pk: &str, sequence: &str) -> Table {
        Table {
            schema: "public".into(),
            name: name.into(),
            columns: vec![Column {
                name: "id".into(),
                type_display: "integer".into(),
                default: Some(format!("nextval('{sequence}'::regclass)")),
                owned_sequence: Some(sequence.into()),
                ..Column::default()
            }],
            constraints: vec![Constraint {
                name: pk.into(),
                kind: ConstraintKind::PrimaryKey,
                columns: vec!["id".into()],
                definition: "PRIMARY KEY (id)".into(),
                check: None,
                references: None,
                nulls_not_distinct: false,
            }],
            ..Table::default()
        }
    }

    #[test]
    fn the_prefix_goes_from_names_and_printed_expressions() {
        let mut t = table("items", "items_pkey", "wm_model__public.items_id_seq");
        t.schema = "wm_model__public".into();
        t.columns[0].type_display = "wm_model__audit.level".into();
        let built = Catalog {
            schemas: vec!["wm_model__audit".into(), "wm_model__public".into()],
            tables: vec![t],
            ..Catalog::default()
        };
        let model = model_catalog(built, &[("public".into(), "open_items".into(), false)], &Catalog::default());
        assert_eq!(model.schemas, ["audit", "public"]);
        assert_eq!(model.tables[0].schema, "public");
        assert_eq!(model.tables[0].columns[0].type_display, "audit.level");
        assert_eq!(
            model.tables[0].columns[0].default.as_deref(),
            Some("nextval('public.items_id_seq'::regclass)")
        );
        assert_eq!(model.views[0].name, "open_items");
    }

    #[test]
    fn names_postgres_chose_follow_a_renamed_table() {
        let built = Catalog {
            tables: vec![table("wishes", "wishes_pkey", "wishes_id_seq")],
            ..Catalog::default()
        };
        // Created as `items`, renamed to `wishes` by a later migration.
        let against = Catalog {
            tables: vec![table("wishes", "items_pkey", "items_id_seq")],
            ..Catalog::default()
        };
        let model = model_catalog(built, &[], &against);
        assert_eq!(model, against);
    }
}
