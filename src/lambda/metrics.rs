//! CloudWatch metrics for every run, as Embedded Metric Format lines: CloudWatch turns a JSON
//! log line with an `_aws` block into metrics, so the function needs no PutMetricData call (nor
//! the permission). The handler emits each document as a `tracing` event on [`METRICS`]; the
//! binary's [`EmfLines`] layer prints it as the bare JSON line EMF requires.

use std::io::Write;

use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::engine::outcome::BackfillProgress;
use crate::engine::Action;
use crate::error::ErrorType;
use crate::report::Report;

pub const METRICS: &str = "wishlist_migrator::metrics";
pub const NAMESPACE: &str = "WishlistMigrator";
/// The `Action` of an invocation whose request could not be read.
pub const UNKNOWN_ACTION: &str = "unknown";

/// Who asked for the run: a busy lock is waited out and retried by the release workflow (a
/// direct invocation), but fails a CloudFormation deployment, which nothing retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invoker {
    Direct,
    CloudFormation,
}

/// (`MigrationFailures`, `LockBusy`): a failure is a run that could change the schema and stopped
/// with an error, except a busy lock the caller retries by design, counted as `LockBusy` instead.
fn failed(action: Option<Action>, error_type: Option<&str>, invoker: Invoker) -> (bool, bool) {
    let busy = error_type == Some(ErrorType::MigrationLockBusy.as_str()) && invoker == Invoker::Direct;
    let changes_schema = matches!(action, Some(Action::Migrate | Action::Rollback | Action::CheckRollback));
    (error_type.is_some() && changes_schema && !busy, busy)
}

/// One invocation's run document, zero for what it did not get to measure.
fn run_document(environment: &str, action: Option<Action>, error_type: Option<&str>, invoker: Invoker, timestamp_ms: u64) -> Value {
    let (failed, busy) = failed(action, error_type, invoker);
    let mut run = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Environment"], ["Environment", "Action"]],
                "Metrics": [
                    {"Name": "MigrationsApplied", "Unit": "Count"},
                    {"Name": "RunDurationMs", "Unit": "Milliseconds"},
                    {"Name": "LockWaitMs", "Unit": "Milliseconds"},
                    {"Name": "MigrationFailures", "Unit": "Count"},
                    {"Name": "LockBusy", "Unit": "Count"},
                    {"Name": "DriftDetected", "Unit": "Count"},
                ],
            }],
        },
        "Environment": environment,
        // An invocation refused before its action was known still counts, under its own name.
        "Action": action.map_or(UNKNOWN_ACTION, Action::name),
        "MigrationsApplied": 0,
        "RunDurationMs": 0,
        "LockWaitMs": 0,
        "MigrationFailures": u8::from(failed),
        "LockBusy": u8::from(busy),
        "DriftDetected": 0,
    });
    if let Some(error_type) = error_type {
        run["ErrorType"] = json!(error_type);
    }
    run
}

/// The documents for one run: one for the run, one per migration it applied.
pub fn documents(report: &Report, invoker: Invoker, timestamp_ms: u64) -> Vec<Value> {
    let drifted = matches!(report.action, Action::Drift | Action::Verify) && report.differences.as_ref().is_some_and(|d| !d.is_empty());
    let error_type = report.error.as_ref().map(|e| e.error_type.as_str());
    let mut run = run_document(&report.environment, Some(report.action), error_type, invoker, timestamp_ms);
    run["MigrationsApplied"] = json!(report.applied.len());
    run["RunDurationMs"] = json!(report.duration_ms);
    run["LockWaitMs"] = json!(report.lock_wait_ms);
    run["DriftDetected"] = json!(u8::from(drifted));
    // Properties, not metrics: searchable in Logs Insights next to the numbers.
    run["RunId"] = json!(report.run_id);
    run["Status"] = serde_json::to_value(report.status).unwrap_or(Value::Null);
    let mut out = vec![run];
    out.extend(report.applied.iter().map(|a| {
        json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Environment"], ["Environment", "Migration"]],
                    "Metrics": [{"Name": "MigrationDurationMs", "Unit": "Milliseconds"}],
                }],
            },
            "Environment": report.environment,
            "Migration": a.tag,
            "MigrationDurationMs": a.duration_ms,
            "RunId": report.run_id,
        })
    }));
    out.extend(report.backfills.iter().map(|b| backfill_document(report, b, timestamp_ms)));
    out
}

/// An online backfill's progress: the rows it walked of the table's estimate (a run cut by its
/// deadline part-way shows how far it got; the next one how far it went on), those it wrote,
/// and its speed.
fn backfill_document(report: &Report, b: &BackfillProgress, timestamp_ms: u64) -> Value {
    // Whole rows per second; a backfill too short to time counts as its rows in a millisecond.
    let per_second = b.rows.max(0) as u64 * 1000 / b.duration_ms.max(1);
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Environment"], ["Environment", "Table"]],
                "Metrics": [
                    {"Name": "BackfillRowsDone", "Unit": "Count"},
                    {"Name": "BackfillRowsEstimated", "Unit": "Count"},
                    {"Name": "BackfillRowsWritten", "Unit": "Count"},
                    {"Name": "BackfillRowsPerSecond", "Unit": "Count/Second"},
                    {"Name": "BackfillDurationMs", "Unit": "Milliseconds"},
                ],
            }],
        },
        "Environment": report.environment,
        "Table": b.table,
        "Column": b.column,
        "Migration": b.migration,
        "RunId": report.run_id,
        "BackfillRowsDone": b.rows,
        // The planner's estimate lags the writers: never fewer than the rows walked.
        "BackfillRowsEstimated": b.estimated_rows.max(b.rows),
        "BackfillRowsWritten": b.written,
        "BackfillRowsPerSecond": per_second,
        "BackfillDurationMs": b.duration_ms,
    })
}

/// The document of an invocation that ended without a report (a panic, an abandoned run, a
/// request or deadline refused before the run): failures must reach the alarm too.
pub fn failure_document(environment: &str, action: Option<Action>, error_type: &str, timestamp_ms: u64) -> Value {
    // Never a busy lock: that error comes with a report.
    let mut run = run_document(environment, action, Some(error_type), Invoker::CloudFormation, timestamp_ms);
    run["Status"] = json!("failed");
    run
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Emits the run's documents as events on [`METRICS`].
pub fn emit(report: &Report, invoker: Invoker) {
    for document in documents(report, invoker, now_ms()) {
        tracing::info!(target: METRICS, emf = %document);
    }
}

/// Emits [`failure_document`] as an event on [`METRICS`].
pub fn emit_failure(environment: &str, action: Option<Action>, error_type: &str) {
    let document = failure_document(environment, action, error_type, now_ms());
    tracing::info!(target: METRICS, emf = %document);
}

/// A `tracing` layer printing [`METRICS`] events as bare JSON lines on stdout.
pub struct EmfLines;

struct Document(Option<String>);

impl Visit for Document {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "emf" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S: Subscriber> Layer<S> for EmfLines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != METRICS {
            return;
        }
        let mut document = Document(None);
        event.record(&mut document);
        if let Some(line) = document.0 {
            let _ = writeln!(std::io::stdout(), "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{AppliedEntry, Status};

    fn report(action: Action) -> Report {
        let mut r = Report::new(action, "prod", "run-1");
        r.duration_ms = 120;
        r.lock_wait_ms = 7;
        r
    }

    #[test]
    fn a_migrate_run_has_its_totals_and_one_document_per_migration() {
        let mut r = report(Action::Migrate);
        r.status = Status::Applied;
        r.applied = vec![
            AppliedEntry {
                tag: "0000_a".into(),
                hash: "h".into(),
                duration_ms: 40,
            },
            AppliedEntry {
                tag: "0001_b".into(),
                hash: "h".into(),
                duration_ms: 70,
            },
        ];
        let docs = documents(&r, Invoker::Direct, 1_700_000_000_000);
        assert_eq!(docs.len(), 3);
        let run = &docs[0];
        assert_eq!(run["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(run["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(run["Environment"], "prod");
        assert_eq!(run["MigrationsApplied"], 2);
        assert_eq!(run["RunDurationMs"], 120);
        assert_eq!(run["LockWaitMs"], 7);
        assert_eq!(run["MigrationFailures"], 0);
        // Every metric a document declares is a number in it, as EMF requires.
        for doc in &docs {
            for metric in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap() {
                assert!(doc[metric["Name"].as_str().unwrap()].is_number(), "{doc}");
            }
            for dimension in doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|set| set.as_array().unwrap())
            {
                assert!(doc[dimension.as_str().unwrap()].is_string(), "{doc}");
            }
        }
        assert_eq!(docs[2]["Migration"], "0001_b");
        assert_eq!(docs[2]["MigrationDurationMs"], 70);
    }

    #[test]
    fn an_online_backfill_has_its_rows_done_of_the_estimate_and_its_speed() {
        let mut r = report(Action::Migrate);
        r.backfills = vec![BackfillProgress {
            migration: "0001_b".into(),
            table: "items".into(),
            column: "token".into(),
            rows: 4_000,
            written: 3_900,
            estimated_rows: 10_000,
            batches: 4,
            duration_ms: 2_000,
        }];
        let docs = documents(&r, Invoker::Direct, 9);
        assert_eq!(docs.len(), 2, "the run's and the backfill's");
        let b = &docs[1];
        assert_eq!(b["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(
            (&b["Environment"], &b["Table"], &b["Column"], &b["Migration"]),
            (&json!("prod"), &json!("items"), &json!("token"), &json!("0001_b"))
        );
        assert_eq!(
            (&b["BackfillRowsDone"], &b["BackfillRowsEstimated"]),
            (&json!(4_000), &json!(10_000))
        );
        assert_eq!(b["BackfillRowsWritten"], 3_900);
        assert_eq!(b["BackfillRowsPerSecond"], 2_000);
        assert_eq!(b["BackfillDurationMs"], 2_000);
        for metric in b["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap() {
            assert!(b[metric["Name"].as_str().unwrap()].is_number(), "{b}");
        }
        for dimension in b["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|d| d.as_array().unwrap())
        {
            assert!(b[dimension.as_str().unwrap()].is_string(), "{b}");
        }

        // An estimate behind the writers never reads as more than done; a run without a
        // backfill has no such document.
        r.backfills[0].estimated_rows = 100;
        assert_eq!(documents(&r, Invoker::Direct, 9)[1]["BackfillRowsEstimated"], 4_000);
        assert_eq!(documents(&report(Action::Migrate), Invoker::Direct, 9).len(), 1);
    }

    #[test]
    fn failures_and_drift_are_counted() {
        let mut failed = report(Action::Migrate);
        failed.error = Some(crate::report::ErrorReport::of(&crate::engine::Error::Deadline { during: "x" }));
        let docs = documents(&failed, Invoker::Direct, 0);
        assert_eq!(docs[0]["MigrationFailures"], 1);
        assert_eq!(docs[0]["ErrorType"], "DeadlineExceeded");
        let mut drift = report(Action::Drift);
        drift.differences = Some(vec![crate::schema::drift::Difference {
            kind: crate::schema::drift::DifferenceKind::ExtraColumn,
            object: "public.t.c".into(),
            expected: None,
            actual: Some("text".into()),
        }]);
        assert_eq!(documents(&drift, Invoker::Direct, 0)[0]["DriftDetected"], 1);
        assert_eq!(documents(&drift, Invoker::Direct, 0)[0]["MigrationFailures"], 0);
    }

    #[test]
    fn a_busy_lock_is_its_own_metric_not_a_failure() {
        let mut busy = report(Action::Migrate);
        let mut error = crate::report::ErrorReport::of(&crate::engine::Error::Deadline { during: "x" });
        error.error_type = ErrorType::MigrationLockBusy;
        busy.error = Some(error);
        let run = &documents(&busy, Invoker::Direct, 0)[0];
        assert_eq!(run["ErrorType"], "MigrationLockBusy");
        assert_eq!(run["MigrationFailures"], 0, "the workflow retries a busy lock: {run}");
        assert_eq!(run["LockBusy"], 1);
        assert_eq!(documents(&report(Action::Migrate), Invoker::Direct, 0)[0]["LockBusy"], 0);
        // Nothing retries a CloudFormation deployment that found the lock busy.
        let deploy = &documents(&busy, Invoker::CloudFormation, 0)[0];
        assert_eq!(deploy["MigrationFailures"], 1, "{deploy}");
        assert_eq!(deploy["LockBusy"], 0);
    }

    #[test]
    fn an_invocation_without_a_report_still_has_its_document() {
        let panicked = failure_document("prod", Some(Action::Migrate), "InternalError", 5);
        assert_eq!(panicked["MigrationFailures"], 1);
        assert_eq!(panicked["ErrorType"], "InternalError");
        assert_eq!(panicked["Action"], "migrate");
        assert_eq!(panicked["Status"], "failed");
        let refused = failure_document("prod", None, "InvalidRequest", 5);
        assert_eq!(refused["Action"], UNKNOWN_ACTION);
        assert_eq!(refused["MigrationFailures"], 0);
        for doc in [&panicked, &refused] {
            for metric in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap() {
                assert!(doc[metric["Name"].as_str().unwrap()].is_number(), "{doc}");
            }
        }
    }
}
