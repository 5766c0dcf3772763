//! The chain rebuilt from hand-made snapshots: each delta kind, renames that carry what refers
//! to the renamed entity, merges, and every way a chain can be broken.

use serde_json::json;

use super::*;

fn row(v: serde_json::Value) -> Row {
    v.as_object().unwrap().clone()
}

fn table(name: &str) -> Row {
    row(json!({"entityType": "tables", "schema": "public", "name": name, "isRlsEnabled": false}))
}

fn column(table: &str, name: &str) -> Row {
    row(
        json!({"entityType": "columns", "schema": "public", "table": table, "name": name, "type": "text",
               "typeSchema": null, "notNull": false, "dimensions": 0, "default": null, "generated": null, "identity": null}),
    )
}

fn key(ty: &str, parts: &[&str]) -> String {
    format!("{ty}\0{}", serde_json::to_string(parts).unwrap())
}

fn base(folder: &str, id: &str, rows: Vec<Row>) -> Node {
    Node {
        folder: folder.into(),
        version: "9".into(),
        id: id.into(),
        prev_ids: vec![ORIGIN.into()],
        body: Body::Whole(rows),
    }
}

fn diff(folder: &str, id: &str, prev_ids: &[&str], deltas: Vec<Delta>) -> Node {
    Node {
        folder: folder.into(),
        version: "9".into(),
        id: id.into(),
        prev_ids: prev_ids.iter().map(|p| p.to_string()).collect(),
        body: Body::Diff(deltas),
    }
}

/// The state as `type schema.table.name` lines, sorted.
fn names(state: &State) -> Vec<String> {
    let mut out: Vec<String> = state
        .rows()
        .map(|r| {
            let f = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let parts: Vec<String> = [f("schema"), f("table"), f("name")].into_iter().filter(|p| !p.is_empty()).collect();
            format!("{} {}", f("entityType"), parts.join("."))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_diff_creates_drops_and_alters_on_top_of_its_parent() {
    let nodes = vec![
        base("1_a", "a", vec![table("t"), column("t", "x"), column("t", "gone")]),
        diff(
            "2_b",
            "b",
            &["a"],
            vec![
                Delta::Create { row: column("t", "y") },
                Delta::Drop {
                    key: key("columns", &["public", "t", "gone"]),
                },
                Delta::Alter {
                    key: key("columns", &["public", "t", "x"]),
                    set: row(json!({"notNull": true, "default": "'a'"})),
                },
            ],
        ),
    ];
    let state = state_of(&nodes).unwrap();
    assert_eq!(names(&state), ["columns public.t.x", "columns public.t.y", "tables public.t"]);
    let x = state.rows().find(|r| r["name"] == "x").unwrap();
    assert_eq!(x["notNull"], true);
    assert_eq!(x["default"], "'a'");
    // The state of the first folder alone is its base.
    assert_eq!(
        names(&state_of(&nodes[..1]).unwrap()),
        ["columns public.t.gone", "columns public.t.x", "tables public.t"]
    );
}

#[test]
fn an_alter_sets_a_field_the_base_left_out() {
    // drizzle-kit writes every field, null when unset; a row without one takes it all the same.
    let mut bare = column("t", "x");
    bare.remove("default");
    let nodes = vec![
        base("1_a", "a", vec![table("t"), bare]),
        diff(
            "2_b",
            "b",
            &["a"],
            vec![Delta::Alter {
                key: key("columns", &["public", "t", "x"]),
                set: row(json!({"default": "0"})),
            }],
        ),
    ];
    assert_eq!(state_of(&nodes).unwrap().rows().find(|r| r["name"] == "x").unwrap()["default"], "0");
}

#[test]
fn a_renamed_table_takes_its_columns_indexes_and_the_foreign_keys_pointing_at_it() {
    let index = row(json!({"entityType": "indexes", "schema": "public", "table": "t", "name": "t_x_idx",
        "columns": [{"value": "x", "isExpression": false, "asc": true, "nullsFirst": false, "opclass": null},
                    {"value": "lower(x)", "isExpression": true, "asc": true, "nullsFirst": false, "opclass": null}]}));
    let fk = row(json!({"entityType": "fks", "schema": "public", "table": "u", "name": "u_t_fk",
        "columns": ["t_x"], "schemaTo": "public", "tableTo": "t", "columnsTo": ["x"]}));
    let nodes = vec![
        base(
            "1_a",
            "a",
            vec![table("t"), column("t", "x"), table("u"), column("u", "t_x"), index, fk],
        ),
        diff(
            "2_b",
            "b",
            &["a"],
            vec![
                Delta::Rename {
                    key: key("tables", &["public", "t"]),
                    set: row(json!({"name": "items"})),
                },
                Delta::Rename {
                    key: key("columns", &["public", "items", "x"]),
                    set: row(json!({"name": "title"})),
                },
            ],
        ),
    ];
    let state = state_of(&nodes).unwrap();
    assert_eq!(
        names(&state),
        [
            "columns public.items.title",
            "columns public.u.t_x",
            "fks public.u.u_t_fk",
            "indexes public.items.t_x_idx",
            "tables public.items",
            "tables public.u"
        ]
    );
    let index = state.rows().find(|r| r["entityType"] == "indexes").unwrap();
    assert_eq!(index["columns"][0]["value"], "title", "the column's rename reaches the index");
    assert_eq!(index["columns"][1]["value"], "lower(x)", "an expression is left as written");
    let fk = state.rows().find(|r| r["entityType"] == "fks").unwrap();
    assert_eq!(fk["tableTo"], "items");
    assert_eq!(fk["columnsTo"], json!(["title"]));
}

#[test]
fn a_renamed_enum_moves_its_columns_type() {
    let mut col = column("t", "state");
    col.insert("type".into(), json!("status"));
    col.insert("typeSchema".into(), json!("public"));
    let e = row(json!({"entityType": "enums", "schema": "public", "name": "status", "values": ["a"]}));
    let nodes = vec![
        base("1_a", "a", vec![table("t"), col, e]),
        diff(
            "2_b",
            "b",
            &["a"],
            vec![Delta::Rename {
                key: key("enums", &["public", "status"]),
                set: row(json!({"name": "state"})),
            }],
        ),
    ];
    let state = state_of(&nodes).unwrap();
    assert_eq!(state.rows().find(|r| r["entityType"] == "columns").unwrap()["type"], "state");
}

#[test]
fn a_merge_applies_the_other_branch_once() {
    // a <- b (adds x) and a <- c (adds y); d merges c into b.
    let nodes = vec![
        base("1_a", "a", vec![table("t")]),
        diff("2_b", "b", &["a"], vec![Delta::Create { row: column("t", "x") }]),
        diff("3_c", "c", &["a"], vec![Delta::Create { row: column("t", "y") }]),
        diff("4_d", "d", &["b", "c"], vec![Delta::Create { row: column("t", "z") }]),
    ];
    assert_eq!(
        names(&state_of(&nodes).unwrap()),
        ["columns public.t.x", "columns public.t.y", "columns public.t.z", "tables public.t"]
    );
    // Before the merge both branches are leaves: applied in folder order, both are there.
    assert_eq!(
        names(&state_of(&nodes[..3]).unwrap()),
        ["columns public.t.x", "columns public.t.y", "tables public.t"]
    );
}

#[test]
fn a_missing_parent_names_the_folder_and_the_id() {
    let nodes = vec![
        base("1_a", "a", vec![table("t")]),
        diff("3_c", "c", &["b"], vec![Delta::Create { row: column("t", "y") }]),
    ];
    let err = state_of(&nodes).unwrap_err();
    assert_eq!(
        err,
        ChainError::MissingParent {
            folder: "3_c".into(),
            parent: "b".into()
        }
    );
    assert!(err.to_string().contains("snapshot b"), "{err}");
}

#[test]
fn a_chain_without_a_base_is_refused() {
    let nodes = vec![diff("1_a", "a", &[ORIGIN], vec![])];
    assert_eq!(state_of(&nodes).unwrap_err(), ChainError::NoBase { folder: "1_a".into() });
    let nodes = vec![diff("1_a", "a", &[], vec![])];
    assert_eq!(state_of(&nodes).unwrap_err(), ChainError::NoBase { folder: "1_a".into() });
    // Two snapshots naming each other: a cycle, never a base.
    let nodes = vec![diff("1_a", "a", &["b"], vec![]), diff("2_b", "b", &["a"], vec![])];
    assert!(matches!(state_of(&nodes).unwrap_err(), ChainError::NoBase { .. }));
}

#[test]
fn a_copied_snapshot_id_is_refused() {
    let nodes = vec![base("1_a", "a", vec![]), diff("2_b", "a", &["a"], vec![])];
    assert_eq!(
        state_of(&nodes).unwrap_err(),
        ChainError::DuplicateId {
            folder: "2_b".into(),
            other: "1_a".into(),
            id: "a".into()
        }
    );
}

#[test]
fn deltas_that_do_not_fit_the_state_are_refused_naming_their_folder() {
    let cases = [
        (
            Delta::Drop {
                key: key("columns", &["public", "t", "nope"]),
            },
            "columns public.t.nope",
        ),
        (
            Delta::Alter {
                key: key("tables", &["public", "nope"]),
                set: row(json!({"isRlsEnabled": true})),
            },
            "tables public.nope",
        ),
        (
            Delta::Create {
                row: {
                    let mut c = column("t", "x");
                    c.insert("notNull".into(), json!(true));
                    c
                },
            },
            "columns public.t.x",
        ),
        (
            Delta::Rename {
                key: key("columns", &["public", "t", "x"]),
                set: row(json!({"name": "y"})),
            },
            "columns public.t.y",
        ),
        (
            Delta::Drop {
                key: "no separator".into(),
            },
            "no separator",
        ),
        (
            Delta::Drop {
                key: key("triggers", &["public", "t"]),
            },
            "triggers",
        ),
    ];
    for (delta, named) in cases {
        let nodes = vec![
            base("1_a", "a", vec![table("t"), column("t", "x"), column("t", "y")]),
            diff("2_b", "b", &["a"], vec![delta.clone()]),
        ];
        match state_of(&nodes) {
            Err(ChainError::Inconsistent { folder, reason }) => {
                assert_eq!(folder, "2_b", "{delta:?}");
                assert!(reason.contains(named), "{delta:?}: {reason}");
            }
            other => panic!("{delta:?}: {other:?}"),
        }
    }
    // Creating what is there with the same values is what drizzle-kit accepts too.
    let nodes = vec![
        base("1_a", "a", vec![table("t"), column("t", "x")]),
        diff("2_b", "b", &["a"], vec![Delta::Create { row: column("t", "x") }]),
    ];
    assert_eq!(names(&state_of(&nodes).unwrap()), ["columns public.t.x", "tables public.t"]);
}

#[test]
fn a_base_listing_an_entity_twice_is_refused() {
    let nodes = vec![base("1_a", "a", vec![table("t"), table("t")])];
    assert!(matches!(state_of(&nodes).unwrap_err(), ChainError::Inconsistent { folder, .. } if folder == "1_a"));
}

#[test]
fn no_folders_is_the_empty_schema() {
    assert_eq!(state_of(&[]).unwrap(), State::default());
}
