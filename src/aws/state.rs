//! Each environment's migration state in SSM Parameter Store (`${SSM_PREFIX}/state`): what the
//! last migrate did, readable from any account tool or dashboard. The database ledger stays the
//! source of truth; this is its published summary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::db::history::RecoveryPoint;
use crate::error::without_detail;
use crate::report::{Report, Status};

/// SSM's limit for a standard String parameter.
pub const MAX_STATE_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentState {
    pub environment: String,
    pub current: Option<String>,
    pub status: Status,
    pub last_action: String,
    /// When the run finished, RFC 3339.
    pub applied_at: String,
    pub duration_ms: u64,
    /// Tags applied by that run (cut short, with `appliedCount` exact, if too long for SSM).
    pub applied: Vec<String>,
    pub applied_count: usize,
    pub run_id: String,
    pub pending: usize,
    pub function_version: String,
    /// How long each migration of `applied` took, in ms: what other environments compare with
    /// before they run it (`envs::duration_warnings`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub durations: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StateError>,
    /// Where the run's committed work began on the database server's clock and in its WAL: the
    /// point-in-time recovery target that undoes it (docs/backup-restore.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_point: Option<RecoveryPoint>,
    /// The CloudFormation request this run answered, so a redelivery gets the same answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cfn_request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateError {
    #[serde(rename = "type")]
    pub error_type: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StateStoreError {
    #[error("SSM {operation} {name} failed: {reason}")]
    Ssm {
        operation: &'static str,
        name: String,
        reason: String,
    },
    #[error("SSM parameter {name} does not hold a migration state: {reason}")]
    Corrupt { name: String, reason: String },
}

impl EnvironmentState {
    pub fn from_report(report: &Report, function_version: &str, finished_at: time::OffsetDateTime) -> Self {
        Self {
            environment: report.environment.clone(),
            current: report.current.clone(),
            status: report.status,
            last_action: serde_json::to_value(report.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            applied_at: finished_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            duration_ms: report.duration_ms,
            applied: report.applied.iter().map(|a| a.tag.clone()).collect(),
            applied_count: report.applied.len(),
            run_id: report.run_id.clone(),
            pending: report.pending.len(),
            function_version: function_version.to_string(),
            durations: report.applied.iter().map(|a| (a.tag.clone(), a.duration_ms)).collect(),
            error: report.error.as_ref().map(|e| StateError {
                error_type: e.error_type.as_str().to_string(),
                // The detail can quote row values: it stays in the report, out of SSM.
                message: without_detail(&e.message, e.detail.as_deref()),
            }),
            recovery_point: report.recovery_point.clone(),
            cfn_request_id: None,
        }
    }

    /// A run that failed before it read the ledger (lock busy, connection, secret) knows no
    /// version, but the database still has one: the one the previous state published, kept
    /// instead of `null`. A run that read the ledger always lists what is applied or pending
    /// (unless the migration set is empty, and then there is no version to lose).
    pub fn keep_known_version(&mut self, previous: Option<&EnvironmentState>) {
        if self.ledger_unread() {
            self.current = previous.and_then(|p| p.current.clone());
        }
    }

    fn ledger_unread(&self) -> bool {
        self.error.is_some() && self.current.is_none() && self.applied_count == 0 && self.pending == 0
    }

    /// Compact JSON within SSM's 4 KB: long lists and messages are cut, counts stay exact.
    ///
    /// Shrinks in a fixed order, each step finite, and stops at the first that fits: the error
    /// message to 256 bytes; the applied tags halved (oldest dropped) until none are left; then
    /// every string cut to 256, 64 and finally 0 bytes. The last step leaves a document of fixed
    /// shape and bounded size (no tags, every string at most "…"), well under the limit, so the
    /// result always fits and still parses as a state with status, counts and the error's type.
    pub fn encode(&self) -> String {
        let fits = |state: &EnvironmentState| {
            let json = serde_json::to_string(state).expect("state serializes");
            (json.len() <= MAX_STATE_BYTES).then_some(json)
        };
        let mut state = self.clone();
        if let Some(json) = fits(&state) {
            return json;
        }
        if let Some(error) = state.error.as_mut() {
            error.message = cut(&error.message, 256);
        }
        if let Some(json) = fits(&state) {
            return json;
        }
        // The slowest migrations are the ones worth warning about elsewhere: keep those.
        if state.durations.len() > 8 {
            let mut slowest: Vec<(String, u64)> = state.durations.clone().into_iter().collect();
            slowest.sort_by_key(|(_, ms)| std::cmp::Reverse(*ms));
            state.durations = slowest.into_iter().take(8).collect();
            if let Some(json) = fits(&state) {
                return json;
            }
        }
        state.durations.clear();
        if let Some(json) = fits(&state) {
            return json;
        }
        // Keep the newest tags: the oldest are the least interesting after a long first run.
        while !state.applied.is_empty() {
            let keep = state.applied.len() / 2;
            state.applied.drain(..state.applied.len() - keep);
            if let Some(json) = fits(&state) {
                return json;
            }
        }
        for budget in [256, 64] {
            let small = state.shortened(budget);
            if let Some(json) = fits(&small) {
                return json;
            }
        }
        serde_json::to_string(&state.shortened(0)).expect("state serializes")
    }

    /// Every string cut to `budget` bytes; the error's type is kept whole when it is a stable
    /// name (it always is: `ErrorType::as_str`).
    fn shortened(&self, budget: usize) -> Self {
        let short = |s: &str| cut(s, budget);
        Self {
            environment: short(&self.environment),
            current: self.current.as_deref().map(short),
            status: self.status,
            last_action: short(&self.last_action),
            applied_at: short(&self.applied_at),
            duration_ms: self.duration_ms,
            applied: Vec::new(),
            applied_count: self.applied_count,
            run_id: short(&self.run_id),
            pending: self.pending,
            function_version: short(&self.function_version),
            durations: BTreeMap::new(),
            error: self.error.as_ref().map(|e| StateError {
                error_type: cut(&e.error_type, 64),
                message: short(&e.message),
            }),
            // Kept whole: about 50 bytes, and a recovery target cut short is a wrong one.
            recovery_point: self.recovery_point.clone(),
            cfn_request_id: self.cfn_request_id.as_deref().map(short),
        }
    }
}

/// `text` if it has at most `max_bytes`, else its longest prefix that, with "…" appended, has
/// at most `max_bytes` (empty when even "…" does not fit): never longer than `max_bytes`.
pub fn cut(text: &str, max_bytes: usize) -> String {
    const ELLIPSIS: &str = "…";
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let Some(room) = max_bytes.checked_sub(ELLIPSIS.len()) else {
        return String::new();
    };
    let mut end = room;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", &text[..end])
}

/// The SSM parameter of one environment.
pub struct StateStore {
    client: aws_sdk_ssm::Client,
    pub name: String,
}

impl StateStore {
    pub fn new(client: aws_sdk_ssm::Client, prefix: &str) -> Self {
        Self {
            client,
            name: format!("{}/state", prefix.trim_end_matches('/')),
        }
    }

    pub fn client(&self) -> &aws_sdk_ssm::Client {
        &self.client
    }

    /// Writes `state`, with the previous state's version when this run did not read the ledger
    /// (`keep_known_version`); when that read fails, the state is written without a version.
    pub async fn record(&self, mut state: EnvironmentState) -> Result<(), StateStoreError> {
        if state.ledger_unread() {
            match self.read().await {
                Ok(previous) => state.keep_known_version(previous.as_ref()),
                Err(e) => tracing::warn!(error = %e, "previous migration state unreadable; recording the failure without a version"),
            }
        }
        self.write(&state).await
    }

    pub async fn write(&self, state: &EnvironmentState) -> Result<(), StateStoreError> {
        self.client
            .put_parameter()
            .name(&self.name)
            .value(state.encode())
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| StateStoreError::Ssm {
                operation: "PutParameter",
                name: self.name.clone(),
                reason: aws_sdk_ssm::error::DisplayErrorContext(&e).to_string(),
            })?;
        tracing::info!(parameter = %self.name, status = ?state.status, "state recorded");
        Ok(())
    }

    pub async fn read(&self) -> Result<Option<EnvironmentState>, StateStoreError> {
        let output = match self.client.get_parameter().name(&self.name).send().await {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_parameter_not_found()) => return Ok(None),
            Err(e) => {
                return Err(StateStoreError::Ssm {
                    operation: "GetParameter",
                    name: self.name.clone(),
                    reason: aws_sdk_ssm::error::DisplayErrorContext(&e).to_string(),
                })
            }
        };
        let Some(value) = output.parameter().and_then(|p| p.value()) else {
            return Ok(None);
        };
        serde_json::from_str(value).map(Some).map_err(|e| StateStoreError::Corrupt {
            name: self.name.clone(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Action, AppliedEntry};

    fn report(applied: usize) -> Report {
        let mut r = Report::new(Action::Migrate, "prod", "run-9");
        r.status = Status::Applied;
        r.current = Some("0001_x".into());
        r.applied = (0..applied)
            .map(|i| AppliedEntry {
                tag: format!("{i:04}_a_reasonably_long_migration_name"),
                hash: "h".into(),
                duration_ms: 1,
            })
            .collect();
        r
    }

    #[test]
    fn carries_the_contract_fields() {
        let s = EnvironmentState::from_report(&report(2), "7", time::OffsetDateTime::UNIX_EPOCH);
        let v: serde_json::Value = serde_json::from_str(&s.encode()).unwrap();
        for field in [
            "environment",
            "current",
            "status",
            "lastAction",
            "appliedAt",
            "durationMs",
            "applied",
            "runId",
            "pending",
            "functionVersion",
        ] {
            assert!(v.get(field).is_some(), "missing {field}");
        }
        assert_eq!(v["lastAction"], "migrate");
        assert_eq!(v["appliedAt"], "1970-01-01T00:00:00Z");
        assert_eq!(v["status"], "applied");
    }

    #[test]
    fn a_state_cut_to_fit_keeps_the_recovery_point_whole() {
        let mut s = EnvironmentState::from_report(&report(300), "7", time::OffsetDateTime::UNIX_EPOCH);
        let point = RecoveryPoint {
            started_at: "2026-12-06T02:07:19.592316+00:00".into(),
            start_lsn: "0/3000060".into(),
        };
        let mut with_point = report(300);
        with_point.recovery_point = Some(point.clone());
        assert_eq!(
            EnvironmentState::from_report(&with_point, "7", time::OffsetDateTime::UNIX_EPOCH).recovery_point,
            Some(point.clone()),
            "the run's report carries it into the state"
        );
        s.recovery_point = Some(point.clone());
        let back: EnvironmentState = serde_json::from_str(&s.encode()).unwrap();
        assert!(back.applied.len() < 300, "it was cut");
        assert_eq!(back.recovery_point, Some(point));
    }

    #[test]
    fn stays_within_four_kilobytes_keeping_exact_counts() {
        let s = EnvironmentState::from_report(&report(300), "7", time::OffsetDateTime::UNIX_EPOCH);
        let json = s.encode();
        assert!(json.len() <= MAX_STATE_BYTES, "{}", json.len());
        let back: EnvironmentState = serde_json::from_str(&json).unwrap();
        assert_eq!(back.applied_count, 300);
        assert!(back.applied.len() < 300 && !back.applied.is_empty());
        assert_eq!(back.applied.last().unwrap(), &s.applied[299], "the newest tags are kept");
    }

    #[test]
    fn a_long_error_and_many_tags_still_fit() {
        // Used to loop forever: the message was cut to 256 bytes plus "…", again and again.
        let mut r = report(0);
        r.status = Status::Failed;
        r.applied = (0..150)
            .map(|i| AppliedEntry {
                tag: format!("{i:04}_{}", "m".repeat(35)),
                hash: "h".into(),
                duration_ms: 1,
            })
            .collect();
        let mut s = EnvironmentState::from_report(&r, "7", time::OffsetDateTime::UNIX_EPOCH);
        s.error = Some(StateError {
            error_type: "MigrationFailed".into(),
            message: "é".repeat(300),
        });
        let json = s.encode();
        assert!(json.len() <= MAX_STATE_BYTES, "{}", json.len());
        let back: EnvironmentState = serde_json::from_str(&json).unwrap();
        assert_eq!(back.status, Status::Failed);
        assert_eq!(back.current.as_deref(), Some("0001_x"));
        assert_eq!(back.run_id, "run-9");
        assert_eq!(back.applied_count, 150);
        assert_eq!(back.error.unwrap().error_type, "MigrationFailed");
    }

    #[test]
    fn oversized_strings_end_in_a_minimal_valid_state() {
        let mut s = EnvironmentState::from_report(&report(10), "7", time::OffsetDateTime::UNIX_EPOCH);
        s.environment = "e".repeat(5000);
        s.function_version = "\u{1}".repeat(3000);
        s.error = Some(StateError {
            error_type: "MigrationFailed".into(),
            message: "\"".repeat(3000),
        });
        let json = s.encode();
        assert!(json.len() <= MAX_STATE_BYTES, "{}", json.len());
        let back: EnvironmentState = serde_json::from_str(&json).unwrap();
        assert_eq!(back.status, Status::Applied);
        assert_eq!(back.run_id, "run-9");
        assert_eq!(back.applied_count, 10);
        assert_eq!(back.error.unwrap().error_type, "MigrationFailed");
    }

    #[test]
    fn a_failure_before_the_ledger_keeps_the_last_known_version() {
        let previous = EnvironmentState::from_report(&report(2), "7", time::OffsetDateTime::UNIX_EPOCH);
        let mut busy = Report::new(Action::Migrate, "prod", "run-10");
        busy.status = Status::Failed;
        busy.error = Some(crate::report::ErrorReport::of(&crate::engine::Error::Deadline { during: "x" }));
        let mut s = EnvironmentState::from_report(&busy, "7", time::OffsetDateTime::UNIX_EPOCH);
        s.keep_known_version(Some(&previous));
        assert_eq!(s.current.as_deref(), Some("0001_x"));
        assert_eq!(s.run_id, "run-10");
        assert_eq!(s.status, Status::Failed);
        // Nothing published before: still no version.
        let mut first = EnvironmentState::from_report(&busy, "7", time::OffsetDateTime::UNIX_EPOCH);
        first.keep_known_version(None);
        assert_eq!(first.current, None);
        // A failure after the ledger was read reports what the ledger said.
        let mut failed = report(0);
        failed.status = Status::Failed;
        failed.current = None;
        failed.pending = vec![crate::report::PendingEntry {
            tag: "0000_a".into(),
            hash: "h".into(),
            statements: 1,
        }];
        failed.error = busy.error.clone();
        let mut s = EnvironmentState::from_report(&failed, "7", time::OffsetDateTime::UNIX_EPOCH);
        s.keep_known_version(Some(&previous));
        assert_eq!(s.current, None, "the ledger said none");
    }

    #[test]
    fn cut_never_exceeds_its_budget() {
        for max in 0..12 {
            for text in ["", "abc", "ééééé", "a longer text"] {
                let c = cut(text, max);
                assert!(c.len() <= max, "{text:?} {max}: {c:?}");
            }
        }
        assert_eq!(cut("abcdef", 5), "ab…");
    }

    #[test]
    fn the_postgres_detail_stays_out_of_the_state() {
        let message = "migration 0002_x failed: duplicate key (SQLSTATE 23505); detail: Key (email)=(alice@example.com) exists.";
        let clean = without_detail(message, Some("Key (email)=(alice@example.com) exists."));
        assert!(!clean.contains("alice@example.com"), "{clean}");
        assert!(clean.contains("SQLSTATE 23505"));
    }
}
