//! Each environment's migration state in SSM Parameter Store (`${SSM_PREFIX}/state`): what the
//! last migrate did, readable from any account tool or dashboard. The database ledger stays the
//! source of truth; this is its published summary.

use serde::{Deserialize, Serialize};

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StateError>,
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
            error: report.error.as_ref().map(|e| StateError {
                error_type: e.error_type.as_str().to_string(),
                message: e.message.clone(),
            }),
            cfn_request_id: None,
        }
    }

    /// Compact JSON within SSM's 4 KB: long lists and messages are cut, counts stay exact.
    pub fn encode(&self) -> String {
        let mut state = self.clone();
        loop {
            let json = serde_json::to_string(&state).expect("state serializes");
            if json.len() <= MAX_STATE_BYTES {
                return json;
            }
            if let Some(error) = state.error.as_mut().filter(|e| e.message.len() > 256) {
                error.message = cut(&error.message, 256);
            } else if !state.applied.is_empty() {
                // Keep the newest tags: the oldest are the least interesting after a long first run.
                let keep = state.applied.len() / 2;
                state.applied.drain(..state.applied.len() - keep);
            } else {
                return json;
            }
        }
    }
}

fn cut(text: &str, max_bytes: usize) -> String {
    let mut end = max_bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
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
    fn stays_within_four_kilobytes_keeping_exact_counts() {
        let s = EnvironmentState::from_report(&report(300), "7", time::OffsetDateTime::UNIX_EPOCH);
        let json = s.encode();
        assert!(json.len() <= MAX_STATE_BYTES, "{}", json.len());
        let back: EnvironmentState = serde_json::from_str(&json).unwrap();
        assert_eq!(back.applied_count, 300);
        assert!(back.applied.len() < 300 && !back.applied.is_empty());
        assert_eq!(back.applied.last().unwrap(), &s.applied[299], "the newest tags are kept");
    }
}
