//! `require`, the deploy gate a frontend pipeline runs before it ships code that needs a
//! migration (WISH-2001 needs WISH-2007): from the CLI and as the Lambda's `require` action.

use serde_json::json;

use crate::harness::stack::{response, Stack};
use crate::harness::*;

fn missing(report: &serde_json::Value) -> Vec<String> {
    report["missing"]
        .as_array()
        .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn require_passes_only_when_the_version_and_everything_before_it_are_applied() {
    let db = pg().fresh_db().await;
    let report = run(&mut wm(&db.url, "migrations", &["require", "--version", TAG_0001]))
        .expect(3)
        .report();
    assert_eq!(report["status"], "schemaBehind", "{report}");
    assert_eq!(error_type(&report), "SchemaBehind");
    assert_eq!(missing(&report), [TAG_0000, TAG_0001]);
    assert!(
        report["error"]["message"].as_str().unwrap().contains(TAG_0000),
        "names what is missing: {report}"
    );

    run(&mut wm(&db.url, "migrations", &["migrate", "--to", TAG_0000])).expect(0);
    let report = run(&mut wm(&db.url, "migrations", &["require", "--version", TAG_0000]))
        .expect(0)
        .report();
    assert_eq!(
        report["status"], "satisfied",
        "0001 pending does not matter to a deploy needing 0000: {report}"
    );
    let report = run(&mut wm(&db.url, "migrations", &["require", "--version", TAG_0001]))
        .expect(3)
        .report();
    assert_eq!(missing(&report), [TAG_0001]);

    run(&mut wm(&db.url, "migrations", &["migrate"])).expect(0);
    let human = run(cli()
        .env("DATABASE_URL", &db.url)
        .args(["--migrations", "migrations", "require", "--version", TAG_0001]))
    .expect(0);
    assert!(human.stdout.contains("and everything before it are applied"), "{}", human.stdout);
    let ledger_before = ledger(&db).await;

    let report = run(&mut wm(&db.url, "migrations", &["require", "--version", "0099_not_here"]))
        .expect(2)
        .report();
    assert_eq!(error_type(&report), "InvalidRequest", "{report}");
    assert_eq!(ledger(&db).await, ledger_before, "the gate changes nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lambda_require_action_fails_with_schema_behind_until_the_release_migrated() {
    let stack = Stack::new().await;
    let lambda = stack.start(&[]);
    let (error_type, message) = lambda
        .invoke(json!({"action": "require", "version": TAG_0001}))
        .expect_error("require before migrate");
    assert_eq!(error_type, "SchemaBehind", "{message}");
    assert!(message.contains(TAG_0000) && message.contains(TAG_0001), "{message}");

    response(lambda.invoke(json!({"action": "migrate"})), "migrate");
    let report = response(
        lambda.invoke(json!({"action": "require", "version": TAG_0001})),
        "require after migrate",
    );
    assert_eq!(report["status"], "satisfied", "{report}");

    let (error_type, message) = lambda
        .invoke(json!({"action": "require"}))
        .expect_error("require without a version");
    assert_eq!(error_type, "InvalidRequest");
    assert!(message.contains("version"), "{message}");
    stack.assert_no_password(&lambda);
}
