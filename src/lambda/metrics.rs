//! CloudWatch metrics for every run, as Embedded Metric Format lines: CloudWatch turns a JSON
//! log line with an `_aws` block into metrics, so the function needs no PutMetricData call (nor
//! the permission). The handler emits each document as a `tracing` event on [`METRICS`]; the
//! binary's [`EmfLines`] layer prints it as the bare JSON line EMF requires.

use std::io::Write;

use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::engine::Action;
use crate::report::Report;

pub const METRICS: &str = "wishlist_migrator::metrics";
pub const NAMESPACE: &str = "WishlistMigrator";

/// The documents for one run: one for the run, one per migration it applied.
pub fn documents(report: &Report, timestamp_ms: u64) -> Vec<Value> {
    let failed = report.error.is_some() && matches!(report.action, Action::Migrate | Action::Rollback | Action::CheckRollback);
    let drifted = matches!(report.action, Action::Drift | Action::Verify) && report.differences.as_ref().is_some_and(|d| !d.is_empty());
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
                    {"Name": "DriftDetected", "Unit": "Count"},
                ],
            }],
        },
        "Environment": report.environment,
        "Action": report.action.name(),
        "MigrationsApplied": report.applied.len(),
        "RunDurationMs": report.duration_ms,
        "LockWaitMs": report.lock_wait_ms,
        "MigrationFailures": u8::from(failed),
        "DriftDetected": u8::from(drifted),
        // Properties, not metrics: searchable in Logs Insights next to the numbers.
        "RunId": report.run_id,
        "Status": serde_json::to_value(report.status).unwrap_or(Value::Null),
    });
    if let Some(error) = &report.error {
        run["ErrorType"] = json!(error.error_type.as_str());
    }
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
    out
}

/// Emits the run's documents as events on [`METRICS`].
pub fn emit(report: &Report) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    for document in documents(report, now_ms) {
        tracing::info!(target: METRICS, emf = %document);
    }
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
        let docs = documents(&r, 1_700_000_000_000);
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
    fn failures_and_drift_are_counted() {
        let mut failed = report(Action::Migrate);
        failed.error = Some(crate::report::ErrorReport::of(&crate::engine::Error::Deadline { during: "x" }));
        let docs = documents(&failed, 0);
        assert_eq!(docs[0]["MigrationFailures"], 1);
        assert_eq!(docs[0]["ErrorType"], "DeadlineExceeded");
        let mut drift = report(Action::Drift);
        drift.differences = Some(vec![crate::schema::drift::Difference {
            kind: crate::schema::drift::DifferenceKind::ExtraColumn,
            object: "public.t.c".into(),
            expected: None,
            actual: Some("text".into()),
        }]);
        assert_eq!(documents(&drift, 0)[0]["DriftDetected"], 1);
        assert_eq!(documents(&drift, 0)[0]["MigrationFailures"], 0);
    }
}
