//! Postgres's own rewrites of a schema, which are never differences (names cut to 63 bytes, a
//! UNIQUE folded into the primary key), and the questions drift leaves to Postgres: snapshot
//! and catalog in, differences and questions out.

use serde_json::json;

use super::comparison::{compare, compare_with_questions, settle, Question};
use super::difference::DifferenceKind;
use super::options::DriftOptions;
use super::test_support::*;
use crate::db::catalog::{Constraint, ConstraintKind, Reference};

fn constraint(name: &str, kind: ConstraintKind, columns: &[&str], definition: &str) -> Constraint {
    Constraint {
        name: name.into(),
        kind,
        columns: columns.iter().map(|c| c.to_string()).collect(),
        definition: definition.into(),
        check: None,
        references: None,
        nulls_not_distinct: false,
    }
}

#[test]
fn a_foreign_key_name_over_63_bytes_is_compared_as_postgres_cuts_it() {
    let name = "custom_widget_secret_definition_id_custom_widget_definition_id_fk";
    let s = snapshot(json!({"tables": {
        "public.parent": table("parent", json!({"id": {"name": "id", "type": "text", "primaryKey": true, "notNull": true}}), json!({})),
        "public.child": table("child", json!({"definition_id": col("definition_id", "text", true, None)}), json!({"foreignKeys": {name: {
            "name": name, "tableFrom": "child", "tableTo": "parent", "columnsFrom": ["definition_id"], "columnsTo": ["id"],
            "onDelete": "cascade", "onUpdate": "no action"}}})),
    }}));
    let mut parent = live_table("parent", vec![live_col("id", "text", true, None)]);
    parent
        .constraints
        .push(constraint("parent_pkey", ConstraintKind::PrimaryKey, &["id"], "PRIMARY KEY (id)"));
    let mut child = live_table("child", vec![live_col("definition_id", "text", true, None)]);
    let mut fk = constraint(
        &name[..63],
        ConstraintKind::ForeignKey,
        &["definition_id"],
        "FOREIGN KEY (definition_id) REFERENCES parent(id) ON DELETE CASCADE",
    );
    fk.references = Some(Reference {
        schema: "public".into(),
        table: "parent".into(),
        columns: vec!["id".into()],
        on_update: "no action".into(),
        on_delete: "cascade".into(),
    });
    child.constraints.push(fk);
    let catalog = live(vec![parent.clone(), child.clone()]);
    assert_eq!(compare(&s, &catalog, &DriftOptions::default()), vec![]);

    // A name cut anywhere else is still a difference.
    child.constraints[0].name = name[..60].to_string();
    let differences = compare(&s, &live(vec![parent, child]), &DriftOptions::default());
    assert_eq!(differences.len(), 2, "{differences:?}");
}

#[test]
fn a_unique_folded_into_the_primary_key_is_not_missing() {
    let s = snapshot(json!({"tables": {"public.setting": table("setting", json!({
        "setting_key": {"name": "setting_key", "type": "varchar(64)", "primaryKey": true, "notNull": true,
                        "isUnique": true, "uniqueName": "setting_key_unique"}}), json!({}))}}));
    let mut t = live_table("setting", vec![live_col("setting_key", "character varying(64)", true, None)]);
    // What Postgres keeps of `PRIMARY KEY` plus `CONSTRAINT setting_key_unique UNIQUE(setting_key)`.
    t.constraints.push(constraint(
        "setting_key_unique",
        ConstraintKind::PrimaryKey,
        &["setting_key"],
        "PRIMARY KEY (setting_key)",
    ));
    assert_eq!(compare(&s, &live(vec![t.clone()]), &DriftOptions::default()), vec![]);

    // A primary key named otherwise did not absorb it: the unique constraint is missing.
    t.constraints[0].name = "setting_pkey".into();
    let differences = compare(&s, &live(vec![t]), &DriftOptions::default());
    assert_eq!(
        differences.iter().map(|d| (d.kind, d.object.as_str())).collect::<Vec<_>>(),
        [(DifferenceKind::MissingConstraint, "public.setting.setting_key_unique")]
    );
}

#[test]
fn a_policy_the_normaliser_cannot_read_becomes_a_question_for_postgres() {
    let using = "exists (select 1 from \"chats\" where \"chats\".\"id\" = \"chat_id\")";
    let s = snapshot(
        json!({"tables": {"public.messages": table("messages", json!({"chat_id": col("chat_id", "text", false, None)}),
        json!({"isRLSEnabled": true, "policies": {"own": {"name": "own", "as": "PERMISSIVE", "for": "ALL", "to": ["public"], "using": using}}}))}}),
    );
    let mut t = live_table("messages", vec![live_col("chat_id", "text", false, None)]);
    t.rls_enabled = true;
    let printed = "(EXISTS ( SELECT 1 FROM chats WHERE chats.id = messages.chat_id))";
    t.policies.push(crate::db::catalog::Policy {
        name: "own".into(),
        permissive: true,
        command: "ALL".into(),
        roles: vec!["public".into()],
        using: Some(printed.into()),
        with_check: None,
    });
    let (differences, questions) = compare_with_questions(&s, &live(vec![t.clone()]), &DriftOptions::default());
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert_eq!(
        questions,
        [Question {
            difference: 0,
            schema: "public".into(),
            table: "messages".into(),
            pairs: vec![(using.to_string(), printed.to_string())],
        }]
    );
    assert_eq!(settle(differences.clone(), &questions, &[true]), vec![]);
    assert_eq!(settle(differences.clone(), &questions, &[false]), differences);

    // A policy that differs in more than its expressions is no question: it differs.
    t.policies[0].command = "SELECT".into();
    let (differences, questions) = compare_with_questions(&s, &live(vec![t]), &DriftOptions::default());
    assert_eq!((differences.len(), questions.len()), (1, 0));
}
