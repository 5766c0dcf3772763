//! End-to-end tests of the comparison: snapshot and catalog in, differences out.

use super::super::test_support::*;
use super::*;
use crate::db::catalog::{self, Column, Constraint, ConstraintKind, Index, IndexColumn};
use crate::db::ledger::HISTORY_TABLE;
use crate::schema::drift::options::IgnoreRule;

fn kinds(d: &[Difference]) -> Vec<(DifferenceKind, String)> {
    d.iter().map(|d| (d.kind, d.object.clone())).collect()
}

/// A one-column table whose only column has the given drizzle and Postgres spellings.
fn column_diff(drizzle_type: &str, drizzle_default: Option<serde_json::Value>, pg_type: &str, pg_default: Option<&str>) -> Vec<Difference> {
    let s = snapshot(
        serde_json::json!({"tables": {"public.t": table("t", serde_json::json!({"c": col("c", drizzle_type, false, drizzle_default)}), serde_json::json!({}))}}),
    );
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
    for (drizzle, pg) in [
        ("numeric(10, 2)", "numeric(12,2)"),
        ("varchar(64)", "character varying(255)"),
        ("timestamp", "timestamp with time zone"),
        ("text", "text[]"),
        ("integer", "bigint"),
    ] {
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
        (
            "varchar(64)",
            json!("'login'"),
            "character varying(64)",
            "'login'::character varying",
        ),
        ("jsonb", json!("'[]'::jsonb"), "jsonb", "'[]'::jsonb"),
        (
            "jsonb",
            json!("'{\"source\":\"web\"}'::jsonb"),
            "jsonb",
            "'{\"source\": \"web\"}'::jsonb",
        ),
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
        (
            "timestamp with time zone",
            json!("'2024-01-02T03:04:05.000Z'"),
            "timestamp with time zone",
            "'2024-01-02 04:04:05+01'::timestamp with time zone",
        ),
        (
            "timestamp",
            json!("'2024-01-02 03:04:05.000'"),
            "timestamp without time zone",
            "'2024-01-02 03:04:05'::timestamp without time zone",
        ),
        ("date", json!("'2024-01-02'"), "date", "'2024-01-02'::date"),
        (
            "timestamp with time zone",
            json!("CURRENT_TIMESTAMP"),
            "timestamp with time zone",
            "CURRENT_TIMESTAMP",
        ),
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
        (
            "timestamp with time zone",
            json!("now()"),
            "timestamp with time zone",
            "'2024-01-01 00:00:00+00'::timestamp with time zone",
        ),
        (
            "timestamp with time zone",
            json!("'2024-01-02T03:04:05.000Z'"),
            "timestamp with time zone",
            "'2024-01-02 03:04:05+01'::timestamp with time zone",
        ),
    ];
    for (ty, d, pg_ty, pg_d) in differ {
        let diff = column_diff(ty, Some(d.clone()), pg_ty, Some(pg_d));
        assert_eq!(
            kinds(&diff),
            [(DifferenceKind::ColumnDefault, "public.t.c".into())],
            "{ty} {d} vs {pg_d}"
        );
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
        catalog::Enum {
            schema: "public".into(),
            name: "wishlist_currency".into(),
            values: vec!["USD".into(), "EUR".into()],
        },
        catalog::Enum {
            schema: "public".into(),
            name: "channel".into(),
            values: vec!["web".into(), "store".into()],
        },
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
        c.enums = vec![catalog::Enum {
            schema: "public".into(),
            name: "s".into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }];
        compare(&s, &c, &DriftOptions::default())
    };
    assert!(with(&["a", "b", "c"]).is_empty());
    let d = with(&["a", "b", "c", "x"]);
    assert_eq!((d[0].kind, d[0].actual.as_deref()), (DifferenceKind::ExtraEnumValue, Some("x")));
    let d = with(&["a", "c"]);
    assert_eq!((d[0].kind, d[0].expected.as_deref()), (DifferenceKind::MissingEnumValue, Some("b")));
    let d = with(&["b", "a", "c"]);
    assert_eq!(kinds(&d), [(DifferenceKind::EnumValueOrder, "public.s".into())]);
    assert_eq!(
        kinds(&compare(&s, &live(vec![]), &DriftOptions::default())),
        [(DifferenceKind::MissingEnum, "public.s".into())]
    );
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
    assert_eq!(
        kinds(&compare(&s, &c, &DriftOptions::default())),
        [(DifferenceKind::ColumnDefault, "public.t.id".into())]
    );
    c.tables[0].constraints.clear();
    c.tables[0].columns[0].owned_sequence = Some("t_id_seq".into());
    assert_eq!(
        kinds(&compare(&s, &c, &DriftOptions::default())),
        [(DifferenceKind::MissingPrimaryKey, "public.t".into())]
    );
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
    let mut t = live_table(
        "m",
        vec![live_col("a", "integer", true, None), live_col("b", "integer", true, None)],
    );
    t.constraints.push(pk("m_a_b_pk"));
    let mut c = live(vec![t]);
    assert_eq!(compare(&s, &c, &DriftOptions::default()), []);
    c.tables[0].constraints[0] = pk("m_pkey");
    assert_eq!(
        kinds(&compare(&s, &c, &DriftOptions::default())),
        [(DifferenceKind::PrimaryKeyDefinition, "public.m".into())]
    );
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
    let s = snapshot(
        serde_json::json!({"tables": {"public.t": table("t", serde_json::json!({}), serde_json::json!({"indexes": {name: drizzle}}))}}),
    );
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
        idx(
            "i",
            vec![icol("owner_id", false, true, "last"), icol("created_at", false, false, "last")],
            "btree",
            false,
            None,
        ),
        index(
            "i",
            "btree",
            &[
                ("owner_id", "text_ops", true, false, false),
                ("created_at", "timestamptz_ops", true, true, false),
            ],
            None,
        ),
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
        idx(
            "p",
            vec![icol("price_cents", false, false, "last"), icol("id", false, true, "last")],
            "btree",
            false,
            Some("\"listings\".\"deleted_at\" IS NULL AND \"listings\".\"price_cents\" > 0"),
        ),
        index(
            "p",
            "btree",
            &[
                ("price_cents", "int4_ops", true, true, false),
                ("id", "uuid_ops", true, false, false),
            ],
            Some("deleted_at IS NULL AND price_cents > 0"),
        ),
    );
    assert_eq!(d, []);
    let d = index_diff(
        idx(
            "p",
            vec![icol("slug", false, true, "last")],
            "btree",
            false,
            Some("\"t\".\"deleted_at\" IS NULL"),
        ),
        index(
            "p",
            "btree",
            &[("slug", "text_ops", true, false, false)],
            Some("deleted_at IS NOT NULL"),
        ),
    );
    assert_eq!(kinds(&d), [(DifferenceKind::IndexDefinition, "public.t.p".into())]);
    // gin with an operator class written inside the expression.
    let d = index_diff(
        idx(
            "g",
            vec![json!({"expression": "\"attrs\" jsonb_path_ops", "isExpression": true, "asc": true, "nulls": "last"})],
            "gin",
            false,
            None,
        ),
        index("g", "gin", &[("attrs", "jsonb_path_ops", false, false, false)], None),
    );
    assert_eq!(d, []);
    let d = index_diff(
        idx(
            "g",
            vec![json!({"expression": "\"attrs\" jsonb_path_ops", "isExpression": true, "asc": true, "nulls": "last"})],
            "gin",
            false,
            None,
        ),
        index("g", "gin", &[("attrs", "jsonb_ops", true, false, false)], None),
    );
    assert_eq!(kinds(&d), [(DifferenceKind::IndexDefinition, "public.t.g".into())]);
    // Expression columns.
    let d = index_diff(
        idx(
            "e",
            vec![
                icol("org_id", false, true, "last"),
                json!({"expression": "lower(\"last_name\" || ' ' || \"first_name\")", "isExpression": true, "asc": true, "nulls": "last"}),
            ],
            "btree",
            false,
            None,
        ),
        index(
            "e",
            "btree",
            &[
                ("org_id", "int4_ops", true, false, false),
                ("lower((last_name || ' '::text) || first_name)", "text_ops", true, false, false),
            ],
            None,
        ),
    );
    assert_eq!(d, []);
    // Column order, method and uniqueness all count.
    let d = index_diff(
        idx(
            "o",
            vec![icol("a", false, true, "last"), icol("b", false, true, "last")],
            "btree",
            false,
            None,
        ),
        index(
            "o",
            "btree",
            &[("b", "int4_ops", true, false, false), ("a", "int4_ops", true, false, false)],
            None,
        ),
    );
    assert_eq!(d.len(), 1);
    let d = index_diff(
        idx("h", vec![icol("a", false, true, "last")], "hash", false, None),
        index("h", "btree", &[("a", "int4_ops", true, false, false)], None),
    );
    assert_eq!(d.len(), 1);
    let mut unique = index("u", "btree", &[("a", "int4_ops", true, false, false)], None);
    unique.unique = true;
    assert_eq!(
        index_diff(idx("u", vec![icol("a", false, true, "last")], "btree", false, None), unique.clone()).len(),
        1
    );
    assert_eq!(
        index_diff(idx("u", vec![icol("a", false, true, "last")], "btree", true, None), unique),
        []
    );
    // The explicit default opclass is the default opclass.
    let mut explicit = icol("email", false, true, "last");
    explicit["opclass"] = "text_ops".into();
    assert_eq!(
        index_diff(
            idx("x", vec![explicit], "btree", false, None),
            index("x", "btree", &[("email", "text_ops", true, false, false)], None)
        ),
        []
    );
}

#[test]
fn missing_and_extra_objects_are_named_exactly() {
    let s = snapshot(
        serde_json::json!({"tables": {"public.t": table("t", serde_json::json!({"a": col("a", "text", false, None)}), serde_json::json!({
            "indexes": {"idx_a": {"name": "idx_a", "columns": [icol("a", false, true, "last")], "isUnique": false, "concurrently": false, "method": "btree", "with": {}}},
            "checkConstraints": {"a_check": {"name": "a_check", "value": "length(\"t\".\"a\") > 0"}}
        }))}}),
    );
    let mut t = live_table("t", vec![live_col("a", "text", false, None), live_col("b", "text", false, None)]);
    t.indexes
        .push(index("idx_b", "btree", &[("b", "text_ops", true, false, false)], None));
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
    assert_eq!(
        kinds(&d),
        [
            (DifferenceKind::ExtraSchema, "reporting".into()),
            (DifferenceKind::ExtraTable, "reporting.daily".into())
        ]
    );
    let options = DriftOptions {
        ignore: IgnoreRule::parse_list(" reporting.* , "),
        ..DriftOptions::default()
    };
    assert_eq!(compare(&s, &c, &options), [], "schema.* ignores the schema and all in it");
}

#[test]
fn foreign_keys_uniques_and_checks() {
    let s = snapshot(
        serde_json::json!({"tables": {"public.m": table("m", serde_json::json!({"a": col("a", "integer", false, None), "role": col("role", "text", true, None)}), serde_json::json!({
            "foreignKeys": {"m_a_fk": {"name": "m_a_fk", "tableFrom": "m", "tableTo": "accounts", "columnsFrom": ["a"], "columnsTo": ["id"], "onDelete": "set null", "onUpdate": "cascade"}},
            "uniqueConstraints": {"m_a_uq": {"name": "m_a_uq", "nullsNotDistinct": true, "columns": ["a"]}},
            "checkConstraints": {"m_role_check": {"name": "m_role_check", "value": "\"m\".\"role\" IN ('member', 'admin')"}}
        }))}}),
    );
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
        let mut t = live_table(
            "m",
            vec![live_col("a", "integer", false, None), live_col("role", "text", true, None)],
        );
        t.constraints = vec![
            con("m_a_fk", ConstraintKind::ForeignKey, None, Some(reference(on_delete)), false),
            con("m_a_uq", ConstraintKind::Unique, None, None, nnd),
            con("m_role_check", ConstraintKind::Check, Some(check), None, false),
        ];
        live(vec![t])
    };
    let good = "role = ANY (ARRAY['member'::text, 'admin'::text])";
    assert_eq!(compare(&s, &build("set null", true, good), &DriftOptions::default()), []);
    let d = compare(
        &s,
        &build("cascade", false, "role = ANY (ARRAY['member'::text])"),
        &DriftOptions::default(),
    );
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
    let s = snapshot(
        serde_json::json!({"tables": {"public.t": table("t", serde_json::json!({"c": col("c", "text", true, None)}), serde_json::json!({}))}}),
    );
    let d = compare(
        &s,
        &live(vec![live_table("t", vec![live_col("c", "text", false, None)])]),
        &DriftOptions::default(),
    );
    assert_eq!(
        (d[0].kind, d[0].expected.as_deref(), d[0].actual.as_deref()),
        (DifferenceKind::ColumnNullability, Some("not null"), Some("nullable"))
    );
    let d = compare(&s, &live(vec![live_table("t", vec![])]), &DriftOptions::default());
    assert_eq!(kinds(&d), [(DifferenceKind::MissingColumn, "public.t.c".into())]);
    let d = compare(&s, &live(vec![]), &DriftOptions::default());
    assert_eq!(kinds(&d), [(DifferenceKind::MissingTable, "public.t".into())]);
}
