//! `history`: what the history table recorded, newest first, from the CLI and the Lambda.

use serde_json::{json, Value};

use crate::harness::stack::{response, Stack};
use crate::harness::*;

fn rows(report: &Value) -> Vec<Value> {
    report["history"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no history: {report}"))
}

#[tokio::test]
async fn history_lists_applies_rollbacks_and_failures_newest_first() {
    let db = pg().fresh_db().await;
    let empty = run(&mut wm(&db.url, "migrations", &["history"])).expect(0).report();
    assert_eq!(empty["status"], "listed");
    assert_eq!(rows(&empty), Vec::<Value>::new(), "nothing recorded yet, and no error");

    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    run(&mut wm(&db.url, "migrations", &["rollback", "--to", TAG_0000])).expect(0);
    let report = run(&mut wm(&db.url, "migrations", &["history"])).expect(0).report();
    let listed: Vec<(String, String, bool)> = rows(&report)
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().into(),
                r["migration"].as_str().unwrap().into(),
                r["succeeded"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("rollback".to_string(), TAG_0001.to_string(), true),
            ("apply".to_string(), TAG_0001.to_string(), true),
            ("apply".to_string(), TAG_0000.to_string(), true),
        ]
    );
    let newest = &rows(&report)[0];
    assert!(newest["invoker"].as_str().unwrap().starts_with("cli:"), "{newest}");
    assert_eq!(newest["dbUser"], "postgres");
    assert_eq!(newest["toolVersion"], env!("CARGO_PKG_VERSION"));
    assert!(newest["finishedAt"].as_str().unwrap().ends_with('Z'), "{newest}");
    assert!(newest["durationMs"].as_i64().unwrap() >= 0);
    // The two applies were one run.
    assert_eq!(rows(&report)[1]["runId"], rows(&report)[2]["runId"]);
    assert_ne!(rows(&report)[0]["runId"], rows(&report)[1]["runId"]);

    let limited = run(&mut wm(&db.url, "migrations", &["history", "--limit", "1"])).expect(0).report();
    assert_eq!(rows(&limited).len(), 1);
    assert_eq!(rows(&limited)[0]["action"], "rollback");
}

#[tokio::test]
async fn a_failed_migration_is_listed_with_its_error() {
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "tests/fixtures/engine/failing", &["migrate"])).expect(1);
    let report = run(&mut wm(&db.url, "tests/fixtures/engine/failing", &["history"]))
        .expect(0)
        .report();
    let failed = rows(&report)
        .into_iter()
        .find(|r| r["succeeded"] == false)
        .unwrap_or_else(|| panic!("{report}"));
    assert!(failed["errorSqlstate"].is_string(), "{failed}");
    assert!(failed["errorMessage"].is_string(), "{failed}");
    let human = run(cli()
        .env("DATABASE_URL", &db.url)
        .args(["--migrations", "tests/fixtures/engine/failing", "history"]))
    .expect(0);
    assert!(human.stdout.contains("FAILED"), "{}", human.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lambda_history_action_names_the_function_that_ran() {
    let stack = Stack::new().await;
    let lambda = stack.start(&[]);
    response(lambda.invoke(json!({"action": "migrate"})), "migrate");
    let report = response(lambda.invoke(json!({"action": "history", "limit": 1})), "history");
    let listed = rows(&report);
    assert_eq!(listed.len(), 1);
    assert!(listed[0]["invoker"].as_str().unwrap().starts_with("lambda:"), "{report}");
    let (error_type, _) = lambda.invoke(json!({"action": "history", "limit": 0})).expect_error("limit 0");
    assert_eq!(error_type, "InvalidRequest");
}
