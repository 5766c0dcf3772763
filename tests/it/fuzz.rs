//! Hostile input to every parser the tool feeds from outside: drizzle journals and snapshots,
//! migration SQL, SQL expressions of snapshots, and Lambda events. Whatever the bytes, the
//! answer is a value or a typed error, never a panic. The case count is small in `make test`;
//! `PROPTEST_CASES=100000 cargo test --test it fuzz::` runs a longer search.

use proptest::prelude::*;
use serde_json::{json, Value};
use wishlist_migrator::lambda::request;
use wishlist_migrator::migrations::journal::Journal;
use wishlist_migrator::migrations::source::MigrationSource;
use wishlist_migrator::migrations::statement;
use wishlist_migrator::schema::model_ddl;
use wishlist_migrator::schema::snapshot::Snapshot;
use wishlist_migrator::sql::destroys::destroys;

use crate::harness::copy_fixture;

/// Arbitrary JSON, a few levels deep, with the keys drizzle and CloudFormation use mixed in so
/// the parsers get past their first checks.
fn json_value() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("version".to_string()),
        Just("dialect".to_string()),
        Just("entries".to_string()),
        Just("tag".to_string()),
        Just("when".to_string()),
        Just("idx".to_string()),
        Just("breakpoints".to_string()),
        Just("tables".to_string()),
        Just("enums".to_string()),
        Just("columns".to_string()),
        Just("default".to_string()),
        Just("action".to_string()),
        Just("to".to_string()),
        Just("dryRun".to_string()),
        Just("RequestType".to_string()),
        Just("ResponseURL".to_string()),
        "[a-zA-Z]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            Just("7".to_string()),
            Just("postgresql".to_string()),
            Just("migrate".to_string()),
            ".{0,20}"
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// SQL-ish text: the splitter's and tokenizer's special characters, much more often than chance.
fn sql_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("--> statement-breakpoint".to_string()),
            Just("$$".to_string()),
            Just("$tag$".to_string()),
            Just("'".to_string()),
            Just("\"".to_string()),
            Just("E'\\\\'".to_string()),
            Just("U&'\\0041'".to_string()),
            Just("/*".to_string()),
            Just("*/".to_string()),
            Just("--".to_string()),
            Just("\n".to_string()),
            Just("\r\n".to_string()),
            Just(";".to_string()),
            Just("::".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just("é".to_string()),
            Just("\u{feff}".to_string()),
            Just("1e400".to_string()),
            Just("99999999999999999999999999".to_string()),
            "[a-zA-Z_ ]{0,6}",
            any::<char>().prop_map(String::from),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// A well-formed drizzle-kit snapshot whose one column has `default` as its default.
fn snapshot_with_default(default: &str) -> Value {
    json!({
        "id": "x", "prevId": "y", "version": "7", "dialect": "postgresql",
        "tables": {"public.t": {"name": "t", "schema": "", "columns": {"c": {
            "name": "c", "type": "text", "primaryKey": false, "notNull": false, "default": default
        }}, "indexes": {}, "foreignKeys": {}, "compositePrimaryKeys": {}, "uniqueConstraints": {},
        "policies": {}, "checkConstraints": {}, "isRLSEnabled": false}},
        "enums": {}, "schemas": {}, "sequences": {}, "roles": {}, "policies": {}, "views": {},
        "_meta": {"columns": {}, "schemas": {}, "tables": {}}
    })
}

#[test]
fn the_crafted_snapshot_reaches_the_comparison() {
    // Otherwise the default fuzzing below would stop at the parser and prove nothing.
    let snapshot = Snapshot::parse(
        snapshot_with_default("'x'").to_string().as_bytes(),
        "0000_t",
        "meta/0000_snapshot.json",
    )
    .expect("the template is a valid snapshot");
    let ddl = model_ddl::render(&snapshot);
    assert!(
        ddl.statements.iter().any(|s| s.contains("DEFAULT 'x'")),
        "the default reaches the model's DDL: {:?}",
        ddl.statements
    );
}

/// drizzle-kit 1.0 snapshots whose diffs rename, drop and alter (tests/fixtures/drizzle1).
const RENAMES: &str = "tests/fixtures/drizzle1/renames/migrations";

/// Every JSON pointer of `value`, parents before children.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| pointers(v, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out)),
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| pointers(v, format!("{at}/{i}"), out)),
        _ => {}
    }
}

/// The renames history with one value of one folder's snapshot replaced, read at every version
/// and compared with an empty catalog: `Ok` or a typed error, never a panic. Returns how many
/// versions read.
fn read_1_0_chain_with(folder: usize, at: usize, replacement: &Value) -> usize {
    let dir = copy_fixture(RENAMES);
    let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    let file = names[folder % names.len()].join("snapshot.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let mut all = Vec::new();
    pointers(&doc, String::new(), &mut all);
    let pointer = &all[at % all.len()];
    if pointer.is_empty() {
        doc = replacement.clone();
    } else if let Some(slot) = doc.pointer_mut(pointer) {
        *slot = replacement.clone();
    }
    std::fs::write(&file, doc.to_string()).unwrap();
    let source = MigrationSource::Dir(dir.path().to_path_buf());
    let set = source.load().expect("only a snapshot changed");
    let mut read = 0;
    for m in &set.migrations {
        if let Ok(snapshot) = Snapshot::load(&source, m) {
            read += 1;
            let _ = model_ddl::render(&snapshot);
        }
    }
    read
}

#[test]
fn the_1_0_chain_reaches_the_comparison() {
    // Otherwise the fuzzing below would stop at the parser and prove nothing: a value replaced
    // by itself leaves every version readable, the base replaced by null leaves none.
    let dir = copy_fixture(RENAMES);
    let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    let base: Value = serde_json::from_str(&std::fs::read_to_string(names[0].join("snapshot.json")).unwrap()).unwrap();
    let mut all = Vec::new();
    pointers(&base, String::new(), &mut all);
    let id = all.iter().position(|p| p == "/id").unwrap();
    assert_eq!(read_1_0_chain_with(0, id, &base["id"]), 3);
    assert_eq!(read_1_0_chain_with(0, 0, &Value::Null), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn journals_never_panic(value in json_value(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = Journal::parse(value.to_string().as_bytes());
        let _ = Journal::parse(&bytes);
    }

    #[test]
    fn snapshots_never_panic(value in json_value(), default in sql_text()) {
        let _ = Snapshot::parse(value.to_string().as_bytes(), "0000_t", "meta/0000_snapshot.json");
        let crafted = snapshot_with_default(&default);
        if let Ok(snapshot) = Snapshot::parse(crafted.to_string().as_bytes(), "0000_t", "meta/0000_snapshot.json") {
            // Rendered into the model's DDL as drizzle-kit would write it; Postgres reads it.
            let _ = model_ddl::render(&snapshot);
        }
    }

    #[test]
    fn the_statement_splitter_never_panics_and_keeps_lines_in_the_file(sql in sql_text()) {
        let lines = sql.lines().count().max(1);
        for s in statement::split(&sql) {
            prop_assert!(s.line >= 1 && s.line <= lines + 1, "line {} of {}", s.line, lines);
            let _ = s.summary();
            let _ = s.autocommit_reason();
        }
    }

    #[test]
    fn reading_what_a_statement_destroys_never_panics(sql in sql_text()) {
        let _ = destroys(&sql);
    }

    #[test]
    fn lambda_events_get_a_request_or_a_typed_error(event in json_value()) {
        let _ = request::parse(&event);
        let _ = request::parse(&json!({"action": event}));
    }

    #[test]
    fn drizzle_1_0_snapshot_chains_never_panic(folder in 0usize..3, at in any::<usize>(), replacement in json_value()) {
        let _ = read_1_0_chain_with(folder, at, &replacement);
    }
}
