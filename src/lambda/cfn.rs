//! The CloudFormation custom resource protocol: reading the request, the response document
//! (≤ 4096 bytes) and delivering it to the pre-signed ResponseURL.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lambda_events::cloudformation::{
    CloudFormationCustomResourceRequest as Event, CloudFormationCustomResourceResponse,
    CloudFormationCustomResourceResponseStatus as ResponseStatus,
};
use serde_json::Value;

use crate::lambda::request::RequestError;

/// CloudFormation rejects larger response bodies.
pub const MAX_BODY_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone)]
pub struct CfnRequest {
    pub request_type: RequestType,
    pub request_id: String,
    pub response_url: String,
    pub stack_id: String,
    pub logical_resource_id: String,
    /// Present on Update and Delete: the id CloudFormation has on record.
    pub physical_resource_id: Option<String>,
    pub migrations_version: Option<String>,
    /// The function version the stack wants to run this (the template passes the published
    /// version's ARN); lets a rollback Update be told apart from a forward one.
    pub function_version: Option<String>,
    pub dry_run: bool,
}

impl CfnRequest {
    pub fn from_event(event: Event) -> Result<Self, RequestError> {
        let (request_type, request_id, response_url, stack_id, logical, physical, properties) = match event {
            Event::Create(e) => (
                RequestType::Create,
                e.request_id,
                e.response_url,
                e.stack_id,
                e.logical_resource_id,
                None,
                e.resource_properties,
            ),
            Event::Update(e) => (
                RequestType::Update,
                e.request_id,
                e.response_url,
                e.stack_id,
                e.logical_resource_id,
                Some(e.physical_resource_id),
                e.resource_properties,
            ),
            Event::Delete(e) => (
                RequestType::Delete,
                e.request_id,
                e.response_url,
                e.stack_id,
                e.logical_resource_id,
                Some(e.physical_resource_id),
                e.resource_properties,
            ),
            _ => {
                return Err(RequestError::CloudFormation {
                    reason: "unsupported RequestType".into(),
                })
            }
        };
        // CloudFormation passes every property value as a string; accept real booleans too.
        let dry_run = match properties.get("DryRun") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s.is_empty() => false,
            Some(other) => {
                return Err(RequestError::BadField {
                    field: "ResourceProperties.DryRun".into(),
                    reason: format!("must be \"true\" or \"false\", got {other}"),
                })
            }
        };
        let migrations_version = properties.get("MigrationsVersion").map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let function_version = match properties.get("FunctionVersion") {
            Some(Value::String(arn)) if !arn.is_empty() => Some(arn.clone()),
            _ => None,
        };
        Ok(Self {
            function_version,
            request_type,
            request_id,
            response_url,
            stack_id,
            logical_resource_id: logical,
            physical_resource_id: physical,
            migrations_version,
            dry_run,
        })
    }
}

impl CfnRequest {
    /// During a stack rollback CloudFormation sends an Update carrying the previous properties
    /// while the new function still runs: the requested version is then not the running one.
    /// `running` is `AWS_LAMBDA_FUNCTION_VERSION`; the property is a version ARN (or number).
    /// `$LATEST` (an unqualified invocation) cannot be compared with a published version: then
    /// the Update migrates as usual.
    pub fn is_rollback_of(&self, running: &str) -> bool {
        match (&self.request_type, &self.function_version) {
            (RequestType::Update, Some(requested)) if running != "$LATEST" => requested.rsplit(':').next() != Some(running),
            _ => false,
        }
    }
}

/// What to tell CloudFormation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub success: bool,
    pub reason: String,
    /// Small values readable with `!GetAtt`: Current, AppliedCount, RunId.
    pub data: HashMap<String, String>,
}

impl Answer {
    pub fn failed(reason: impl Into<String>) -> Self {
        Self {
            success: false,
            reason: reason.into(),
            data: HashMap::new(),
        }
    }
}

/// The response document, cutting the reason so the body fits CloudFormation's limit.
pub fn response_body(request: &CfnRequest, physical_resource_id: &str, answer: &Answer) -> String {
    let mut response = CloudFormationCustomResourceResponse::default();
    response.status = if answer.success {
        ResponseStatus::Success
    } else {
        ResponseStatus::Failed
    };
    response.physical_resource_id = physical_resource_id.to_string();
    response.stack_id = request.stack_id.clone();
    response.request_id = request.request_id.clone();
    response.logical_resource_id = request.logical_resource_id.clone();
    response.data = answer.data.clone();
    let mut reason = answer.reason.clone();
    loop {
        response.reason = Some(reason.clone());
        let body = serde_json::to_string(&response).expect("response serializes");
        if body.len() <= MAX_BODY_BYTES || reason.is_empty() {
            return body;
        }
        let over = body.len() - MAX_BODY_BYTES;
        let mut keep = reason.len().saturating_sub(over + 3);
        while !reason.is_char_boundary(keep) {
            keep -= 1;
        }
        reason = format!("{}…", &reason[..keep]);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("ResponseURL answered HTTP {status}: {body}")]
    Rejected { status: u16, body: String },
    #[error("could not deliver the response after {attempts} attempt(s): {last}")]
    GaveUp { attempts: u32, last: String },
}

/// PUTs the response with an empty Content-Type (the pre-signed URL's signature covers it),
/// retrying network errors and 5xx with backoff until `deadline`.
pub async fn deliver(http: &reqwest::Client, url: &str, body: String, deadline: Instant) -> Result<u32, DeliveryError> {
    const MAX_ATTEMPTS: u32 = 6;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let sent = http
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, "")
            .body(body.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let last = match sent {
            Ok(response) if response.status().is_success() => {
                tracing::info!(attempt, "CloudFormation response delivered");
                return Ok(attempt);
            }
            Ok(response) if response.status().is_server_error() => format!("HTTP {}", response.status().as_u16()),
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                return Err(DeliveryError::Rejected {
                    status,
                    body: body.chars().take(300).collect(),
                });
            }
            Err(e) => e.to_string(),
        };
        let delay = Duration::from_millis(250 * (1 << (attempt - 1).min(5)));
        if attempt >= MAX_ATTEMPTS || Instant::now() + delay >= deadline {
            return Err(DeliveryError::GaveUp { attempts: attempt, last });
        }
        tracing::warn!(attempt, error = %last, "CloudFormation response not delivered; retrying");
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(kind: &str, properties: Value) -> CfnRequest {
        let event: Event = serde_json::from_value(json!({
            "RequestType": kind, "RequestId": "req-1", "ResponseURL": "http://127.0.0.1:9/r",
            "StackId": "arn:stack", "ResourceType": "Custom::WishlistMigration", "LogicalResourceId": "Migrations",
            "PhysicalResourceId": "old-id", "ResourceProperties": properties, "OldResourceProperties": {}
        }))
        .unwrap();
        CfnRequest::from_event(event).unwrap()
    }

    #[test]
    fn reads_type_ids_and_properties() {
        let r = request(
            "Update",
            json!({"ServiceToken": "arn", "MigrationsVersion": "42", "DryRun": "true"}),
        );
        assert_eq!(r.request_type, RequestType::Update);
        assert_eq!(r.physical_resource_id.as_deref(), Some("old-id"));
        assert_eq!(r.migrations_version.as_deref(), Some("42"));
        assert!(r.dry_run);
        let r = request("Create", json!({"ServiceToken": "arn"}));
        assert!(!r.dry_run);
        assert!(r.physical_resource_id.is_none());
    }

    #[test]
    fn an_update_asking_for_another_version_is_a_rollback() {
        let arn =
            |v: &str| json!({"FunctionVersion": format!("arn:aws:lambda:eu-west-1:000000000000:function:wishlist-migrator-prod:{v}")});
        assert!(request("Update", arn("6")).is_rollback_of("7"));
        assert!(!request("Update", arn("7")).is_rollback_of("7"));
        assert!(!request("Create", arn("6")).is_rollback_of("7"), "a Create is never a rollback");
        assert!(
            !request("Update", json!({})).is_rollback_of("7"),
            "without the property, migrate as usual"
        );
        assert!(
            !request("Update", arn("6")).is_rollback_of("$LATEST"),
            "an unqualified invocation migrates"
        );
    }

    #[test]
    fn bad_dry_run_is_named() {
        let event: Event = serde_json::from_value(json!({
            "RequestType": "Create", "RequestId": "r", "ResponseURL": "u", "StackId": "s",
            "ResourceType": "t", "LogicalResourceId": "l", "ResourceProperties": {"DryRun": "perhaps"}
        }))
        .unwrap();
        let err = CfnRequest::from_event(event).unwrap_err();
        assert!(err.to_string().contains("DryRun"));
    }

    #[test]
    fn body_echoes_ids_and_fits_the_limit() {
        let r = request("Create", json!({}));
        let answer = Answer::failed("x".repeat(10_000));
        let body = response_body(&r, "phys", &answer);
        assert!(body.len() <= MAX_BODY_BYTES);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["Status"], "FAILED");
        assert_eq!(v["RequestId"], "req-1");
        assert_eq!(v["StackId"], "arn:stack");
        assert_eq!(v["LogicalResourceId"], "Migrations");
        assert_eq!(v["PhysicalResourceId"], "phys");
        assert!(v["Reason"].as_str().unwrap().ends_with('…'));
    }
}
