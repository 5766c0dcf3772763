//! The Lambda's CloudWatch metrics: Embedded Metric Format lines in its logs, one per run and
//! one per migration applied, read back the way CloudWatch reads them (a JSON line with `_aws`).

use serde_json::{json, Value};

use crate::harness::lambda_process::LambdaProcess;
use crate::harness::stack::{aws, response, secret_json, Stack};
use crate::harness::*;

/// Every EMF document the function printed so far.
fn documents(lambda: &LambdaProcess) -> Vec<Value> {
    lambda
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect()
}

fn runs(docs: &[Value], action: &str) -> Vec<Value> {
    docs.iter().filter(|d| d["Action"] == action).cloned().collect()
}

/// The EMF documents once `done` holds for them (or 10 s have passed): the harness reads the
/// function's output on a thread of its own, which may not have got to the last line yet when
/// the invocation's response is back (a race seen under load).
fn documents_until(lambda: &LambdaProcess, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let docs = documents(lambda);
        if done(&docs) || std::time::Instant::now() > until {
            return docs;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_run_emits_its_metrics_as_emf_lines() {
    let stack = Stack::new().await;
    let lambda = stack.start(&[]);
    let report = response(lambda.invoke(json!({"action": "migrate"})), "migrate");
    // The run's document, then one per migration applied.
    let docs = documents_until(&lambda, |d| d.iter().filter(|x| x.get("Migration").is_some()).count() >= 2);
    let migrate = runs(&docs, "migrate");
    assert_eq!(migrate.len(), 1, "{docs:#?}");
    let run = &migrate[0];
    assert_eq!(run["_aws"]["CloudWatchMetrics"][0]["Namespace"], "WishlistMigrator");
    assert_eq!(run["Environment"], "test");
    assert_eq!(run["MigrationsApplied"], 2);
    assert_eq!(run["MigrationFailures"], 0);
    assert_eq!(run["RunId"], report["runId"]);
    assert_eq!(run["RunDurationMs"], report["durationMs"]);
    let per_migration: Vec<&Value> = docs.iter().filter(|d| d.get("Migration").is_some()).collect();
    let tags: Vec<&str> = per_migration.iter().map(|d| d["Migration"].as_str().unwrap()).collect();
    assert_eq!(tags, [TAG_0000, TAG_0001]);
    for d in &per_migration {
        assert!(d["MigrationDurationMs"].is_number(), "{d}");
    }
    // The metrics are bare lines, not inside the function's JSON log records.
    assert!(
        !lambda.logs().lines().any(|l| l.contains("\"emf\"")),
        "an EMF document was logged as a field"
    );

    // A manual change: drift counts it.
    stack
        .db
        .client()
        .await
        .batch_execute("ALTER TABLE wishlist_items ADD COLUMN by_hand text")
        .await
        .unwrap();
    response(lambda.invoke(json!({"action": "drift"})), "drift");
    let drift = runs(&documents_until(&lambda, |d| !runs(d, "drift").is_empty()), "drift");
    assert_eq!(drift.last().unwrap()["DriftDetected"], 1, "{drift:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_migration_counts_as_a_failure_with_its_error_type() {
    let stack = Stack::new().await;
    let dir = repo_path("tests/fixtures/engine/failing");
    let lambda = stack.start(&[("MIGRATIONS_DIR", dir.to_str().unwrap())]);
    let (error_type, _) = lambda.invoke(json!({"action": "migrate"})).expect_error("failing migrate");
    let run = runs(&documents_until(&lambda, |d| !runs(d, "migrate").is_empty()), "migrate")
        .pop()
        .expect("a document for the failed run");
    assert_eq!(run["MigrationFailures"], 1);
    assert_eq!(run["ErrorType"], error_type.as_str());
    assert_eq!(run["Status"], "failed");
}

/// The release workflow waits out a busy lock and retries: not a failure for the alarm, but a
/// metric of its own. The run never read the ledger, so the published version stays.
#[tokio::test(flavor = "multi_thread")]
async fn a_busy_lock_is_counted_apart_and_keeps_the_published_version() {
    let stack = Stack::new().await;
    let lambda = stack.start(&[("LOCK_WAIT_SECONDS", "1")]);
    response(lambda.invoke(json!({"action": "migrate"})), "migrate");
    assert_eq!(stack.state().await.unwrap()["current"], TAG_0001);

    let holder = stack.db.client().await;
    holder
        .execute("select pg_advisory_lock($1)", &[&wishlist_migrator::config::DEFAULT_LOCK_KEY])
        .await
        .unwrap();
    let (error_type, _) = lambda.invoke(json!({"action": "migrate"})).expect_error("busy migrate");
    assert_eq!(error_type, "MigrationLockBusy");
    let busy = runs(&documents_until(&lambda, |d| runs(d, "migrate").len() >= 2), "migrate")
        .pop()
        .expect("a document for the busy run");
    assert_eq!(busy["ErrorType"], "MigrationLockBusy");
    assert_eq!(busy["MigrationFailures"], 0, "{busy}");
    assert_eq!(busy["LockBusy"], 1, "{busy}");

    let state = stack.state().await.unwrap();
    assert_eq!(state["status"], "failed");
    assert_eq!(state["error"]["type"], "MigrationLockBusy");
    assert_eq!(state["current"], TAG_0001, "the last known version, not null: {state}");
}

/// A password rotated under a warm container fails the first attempt and succeeds on the
/// retry: one invocation, one document, no failure.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_that_succeeds_on_retry_is_one_run_without_failure() {
    let stack = Stack::new().await;
    let lambda = stack.start(&[]);
    response(lambda.invoke(json!({"action": "status"})), "status caches the secret");
    let rotated = secret_password();
    stack
        .db
        .client()
        .await
        .batch_execute(&format!("ALTER ROLE {} PASSWORD {}", ident(&stack.role), literal(&rotated)))
        .await
        .unwrap();
    aws_sdk_secretsmanager::Client::new(&aws().await)
        .put_secret_value()
        .secret_id(&stack.secret_id)
        .secret_string(secret_json(&stack.role, &rotated, &stack.db))
        .send()
        .await
        .unwrap();
    let migrated = response(lambda.invoke(json!({"action": "migrate"})), "migrate after rotation");
    assert_eq!(migrated["status"], "applied");
    let docs = documents_until(&lambda, |d| d.iter().filter(|x| x.get("Migration").is_some()).count() >= 2);
    let migrate = runs(&docs, "migrate");
    assert_eq!(migrate.len(), 1, "one document per invocation: {migrate:#?}");
    assert_eq!(migrate[0]["MigrationFailures"], 0);
    assert_eq!(migrate[0]["RunId"], migrated["runId"]);
}

/// An invocation refused before its action is known has no report, and still its document.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_request_still_emits_its_document() {
    let stack = Stack::new().await;
    let lambda = stack.start(&[]);
    let (error_type, _) = lambda.invoke(json!({"action": "explode"})).expect_error("invalid");
    assert_eq!(error_type, "InvalidRequest");
    let docs = documents_until(&lambda, |d| !runs(d, "unknown").is_empty());
    let refused = runs(&docs, "unknown");
    assert_eq!(refused.len(), 1, "{docs:#?}");
    assert_eq!(refused[0]["ErrorType"], "InvalidRequest");
    assert_eq!(refused[0]["MigrationFailures"], 0);
}

/// What no EMF line can report (a timeout, a crash) reaches an alarm through Lambda's own
/// `Errors`, less the busy locks the release workflow retries by design.
#[test]
fn the_template_alarms_on_the_functions_errors_but_not_a_busy_lock() {
    let template = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    let alarm: String = template
        .lines()
        .skip_while(|l| *l != "  FunctionErrorsAlarm:")
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!alarm.is_empty(), "no FunctionErrorsAlarm in template.yaml");
    for needle in [
        "Type: AWS::CloudWatch::Alarm",
        "Namespace: AWS/Lambda",
        "MetricName: Errors",
        "MetricName: LockBusy",
        "errors, 0) - FILL(busy",
    ] {
        assert!(alarm.contains(needle), "{needle} missing from:\n{alarm}");
    }
}
