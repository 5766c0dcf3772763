use super::*;
use crate::report::{Action, AppliedEntry, ErrorReport, ProblemReport};

fn report(action: Action, status: Status) -> Report {
    let mut r = Report::new(action, "dev", "run-1");
    r.status = status;
    r
}

fn applied(tags: &[&str]) -> Report {
    let mut r = report(Action::Migrate, Status::Applied);
    r.current = tags.last().map(|t| t.to_string());
    r.applied = tags
        .iter()
        .map(|t| AppliedEntry {
            tag: t.to_string(),
            hash: "h".into(),
            duration_ms: 1,
        })
        .collect();
    r
}

#[test]
fn a_target_line_is_made_from_its_report() {
    let t = TargetResult::from_report("a", &applied(&["0000_x", "0001_y"]), None);
    assert_eq!(t.status, TargetStatus::Applied);
    assert_eq!(t.current.as_deref(), Some("0001_y"));
    assert_eq!(t.applied, ["0000_x", "0001_y"]);
    assert_eq!(t.error, None);
    let mut up = report(Action::Migrate, Status::UpToDate);
    up.current = Some("0001_y".into());
    assert_eq!(TargetResult::from_report("a", &up, None).status, TargetStatus::UpToDate);
    assert_eq!(
        TargetResult::from_report("a", &report(Action::Status, Status::Pending), None).status,
        TargetStatus::Pending
    );
    assert_eq!(
        TargetResult::from_report("a", &report(Action::Plan, Status::Planned), None).status,
        TargetStatus::Planned
    );
}

#[test]
fn a_failed_run_carries_its_typed_error_without_the_detail() {
    let error = crate::config::ConfigError::NoDatabase;
    let r = Report::refused(Action::Migrate, "dev", &error);
    let t = TargetResult::from_report("a", &r, Some(&error));
    assert_eq!(t.status, TargetStatus::Failed);
    let e = t.error.unwrap();
    assert_eq!(e.error_type, ErrorType::ConfigError);
    assert_eq!(e.message, error.to_string());

    // A refusal that kept its status (a lint failure) is still a failure; the detail, which
    // can quote row values, stays out.
    let mut r = report(Action::Migrate, Status::LintFailed);
    r.error = Some(ErrorReport {
        error_type: ErrorType::MigrationFailed,
        message: "insert failed; detail: Key (email)=(alice@example.com)".into(),
        migration: None,
        sqlstate: None,
        statement: None,
        detail: Some("Key (email)=(alice@example.com)".into()),
        hint: None,
        holder_pid: None,
    });
    let t = TargetResult::from_report("a", &r, None);
    assert_eq!(t.status, TargetStatus::Failed);
    let e = t.error.unwrap();
    assert_eq!(e.error_type, ErrorType::MigrationFailed);
    assert!(!e.message.contains("alice"), "{}", e.message);
}

#[test]
fn status_at_odds_with_the_files_is_the_error_migrate_would_stop_with() {
    for (kind, expected) in [
        ("checksumMismatch", ErrorType::ChecksumMismatch),
        ("outOfOrder", ErrorType::OutOfOrderMigration),
        ("unknownLedgerRow", ErrorType::UnknownMigrations),
        ("renamedMigration", ErrorType::UnknownMigrations),
    ] {
        let mut r = report(Action::Status, Status::Invalid);
        r.problems.push(ProblemReport {
            kind: kind.into(),
            migration: Some("0001_y".into()),
            message: "0001_y: changed".into(),
        });
        let t = TargetResult::from_report("a", &r, None);
        assert_eq!(t.status, TargetStatus::Failed, "{kind}");
        assert_eq!(t.error.unwrap().error_type, expected, "{kind}");
    }
}

#[test]
fn the_json_has_exactly_the_contract_fields() {
    let targets = vec![
        TargetResult::from_report("a", &applied(&["0000_x"]), None),
        TargetResult::from_report("b", &report(Action::Migrate, Status::UpToDate), None),
        TargetResult::from_report(
            "c",
            &Report::refused(Action::Migrate, "dev", &crate::config::ConfigError::NoDatabase),
            Some(&crate::config::ConfigError::NoDatabase),
        ),
        TargetResult::not_run("d"),
    ];
    let fleet = FleetReport::new(targets, Some(Stop::ToleranceExceeded { failed: 1, allowed: 0 }));
    let v: serde_json::Value = serde_json::from_str(&fleet.to_json()).unwrap();
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&v), ["summary", "targets"]);
    for target in v["targets"].as_array().unwrap() {
        let mut k = keys(target);
        k.sort();
        assert_eq!(k, ["applied", "current", "error", "name", "status"]);
    }
    assert_eq!(
        v["summary"],
        serde_json::json!({"targets": 4, "applied": 1, "upToDate": 1, "failed": 1, "notRun": 1})
    );
    assert_eq!(v["targets"][0]["applied"], serde_json::json!(["0000_x"]));
    assert_eq!(v["targets"][2]["status"], "failed");
    assert_eq!(v["targets"][2]["error"]["errorType"], "ConfigError");
    assert!(v["targets"][2]["error"]["message"].is_string());
    assert_eq!(v["targets"][3]["status"], "notRun");
    assert!(v["targets"][3]["error"].is_null());
    assert_eq!(fleet.exit_code(), 3);
}

#[test]
fn the_exit_code_is_0_only_when_nothing_failed() {
    let ok = FleetReport::new(vec![TargetResult::from_report("a", &applied(&["0000_x"]), None)], None);
    assert_eq!(ok.exit_code(), 0);
    let failed = TargetResult::from_report(
        "b",
        &Report::refused(Action::Migrate, "dev", &crate::config::ConfigError::NoDatabase),
        None,
    );
    let some = FleetReport::new(vec![TargetResult::from_report("a", &applied(&["0000_x"]), None), failed], None);
    assert_eq!(some.exit_code(), 1);
}

#[test]
fn the_table_lists_failed_targets_first_and_says_why_it_stopped() {
    let locked = TargetResult {
        name: "tenant-b".into(),
        status: TargetStatus::Failed,
        current: None,
        applied: Vec::new(),
        error: Some(TargetError {
            error_type: ErrorType::MigrationLockBusy,
            message: "another run holds the lock\nsecond line".into(),
        }),
        duration_ms: 3,
    };
    let fleet = FleetReport::new(
        vec![
            TargetResult::from_report("tenant-a", &applied(&["0000_x", "0001_y"]), None),
            locked,
            TargetResult::not_run("tenant-c"),
        ],
        Some(Stop::CanaryFailed { target: 1 }),
    );
    let text = fleet.render_text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("TARGET"), "{text}");
    assert!(
        lines[1].starts_with("tenant-b  failed") && lines[1].ends_with("MigrationLockBusy: another run holds the lock"),
        "{text}"
    );
    assert!(lines[2].starts_with("tenant-c  notRun"), "{text}");
    assert!(lines[3].starts_with("tenant-a  applied") && lines[3].contains("0001_y"), "{text}");
    assert_eq!(lines[4], "3 targets: 1 applied, 0 up to date, 1 failed, 1 not run");
    assert!(lines[5].starts_with("stopped: the canary tenant-b failed"), "{text}");

    // Past the tolerance with nothing left to start: no "stopped", the exit code says it.
    let last = TargetResult::from_report(
        "tenant-a",
        &Report::refused(Action::Migrate, "dev", &crate::config::ConfigError::NoDatabase),
        Some(&crate::config::ConfigError::NoDatabase),
    );
    let fleet = FleetReport::new(vec![last], Some(Stop::ToleranceExceeded { failed: 1, allowed: 0 }));
    let text = fleet.render_text();
    assert!(text.ends_with("1 failed, more than --max-failures allows (0)\n"), "{text}");
    assert_eq!(fleet.exit_code(), 3);
}
