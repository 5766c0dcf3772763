//! The CloudFormation custom resource protocol: reading the request, what a run's answer says
//! (its reason and data), and the response document (≤ 4096 bytes) that `delivery` PUTs to the
//! pre-signed ResponseURL.

use std::collections::HashMap;

use aws_lambda_events::cloudformation::{
    CloudFormationCustomResourceResponse, CloudFormationCustomResourceResponseStatus as ResponseStatus,
};
use serde_json::{Map, Value};

use crate::aws::state::cut;
use crate::error::{public_message, Classified};
use crate::lambda::error::InvocationError;
use crate::lambda::request::RequestError;
use crate::report::{Report, Status};

/// CloudFormation rejects larger response bodies.
pub const MAX_BODY_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

/// What every answer echoes, and where it goes: enough to answer even a request that is
/// otherwise unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub request_id: String,
    pub response_url: String,
    pub stack_id: String,
    pub logical_resource_id: String,
    /// Present on Update and Delete: the id CloudFormation has on record.
    pub physical_resource_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CfnRequest {
    pub request_type: RequestType,
    pub envelope: Envelope,
    pub migrations_version: Option<String>,
    /// The function version the stack wants to run this (the template passes the published
    /// version's ARN); lets a rollback Update be told apart from a forward one.
    pub function_version: Option<String>,
    pub dry_run: bool,
}

/// Why an event is not a request this function can carry out.
#[derive(Debug)]
pub enum Malformed {
    /// The event names where to answer: CloudFormation must be told FAILED with `reason`.
    Answerable { envelope: Envelope, reason: String },
    /// Not even the envelope is there: nobody to answer, only the invocation fails.
    Unanswerable(RequestError),
}

impl CfnRequest {
    /// Reads a custom resource event. Anything wrong past the envelope (`ResponseURL`,
    /// `RequestId`, `StackId`, `LogicalResourceId`) is `Answerable`, so the stack gets a FAILED
    /// naming it instead of waiting an hour.
    pub fn from_value(event: &Value) -> Result<Self, Malformed> {
        let envelope = envelope(event).map_err(Malformed::Unanswerable)?;
        let fail = |reason: String| Malformed::Answerable {
            envelope: envelope.clone(),
            reason: format!("InvalidRequest: {reason}"),
        };
        let request_type = match event.get("RequestType") {
            Some(Value::String(t)) if t == "Create" => RequestType::Create,
            Some(Value::String(t)) if t == "Update" => RequestType::Update,
            Some(Value::String(t)) if t == "Delete" => RequestType::Delete,
            Some(Value::String(t)) => return Err(fail(format!("unknown RequestType {t:?}: expected Create, Update or Delete"))),
            None => return Err(fail("the event has no RequestType (Create, Update or Delete)".into())),
            Some(other) => return Err(fail(format!("RequestType must be a string, got {other}"))),
        };
        if request_type == RequestType::Update && envelope.physical_resource_id.is_none() {
            return Err(fail("an Update must carry a string PhysicalResourceId".into()));
        }
        let empty = Map::new();
        let properties = match event.get("ResourceProperties") {
            Some(Value::Object(p)) => p,
            // A Delete never reads its properties: refusing it would only strand the stack
            // (the Delete that rolls back a refused Create carries the same bad properties).
            _ if request_type == RequestType::Delete => &empty,
            None | Some(Value::Null) => {
                return Err(fail(
                    "the event has no ResourceProperties: the template's custom resource must pass them (at least ServiceToken)".into(),
                ))
            }
            Some(other) => return Err(fail(format!("ResourceProperties must be an object, got {other}"))),
        };
        let properties = |name: &str| match request_type {
            RequestType::Delete => None,
            _ => properties.get(name),
        };
        // CloudFormation passes every property value as a string; accept real booleans too.
        let dry_run = match properties("DryRun") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s.is_empty() => false,
            Some(other) => {
                return Err(fail(format!(
                    "ResourceProperties.DryRun must be \"true\" or \"false\", got {other}"
                )))
            }
        };
        let migrations_version = properties("MigrationsVersion").map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let function_version = match properties("FunctionVersion") {
            Some(Value::String(arn)) if !arn.is_empty() => Some(arn.clone()),
            _ => None,
        };
        let mut envelope = envelope;
        if request_type == RequestType::Create {
            envelope.physical_resource_id = None;
        }
        Ok(Self {
            request_type,
            envelope,
            migrations_version,
            function_version,
            dry_run,
        })
    }
}

fn envelope(event: &Value) -> Result<Envelope, RequestError> {
    let field = |name: &str| {
        match event.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(RequestError::CloudFormation {
            reason: format!("{name} must be a non-empty string; without ResponseURL, RequestId, StackId and LogicalResourceId the request cannot be answered"),
        }),
    }
    };
    Ok(Envelope {
        response_url: field("ResponseURL")?,
        request_id: field("RequestId")?,
        stack_id: field("StackId")?,
        logical_resource_id: field("LogicalResourceId")?,
        physical_resource_id: match event.get("PhysicalResourceId") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        },
    })
}

/// Where a response may be PUT: `allow` (from `CFN_RESPONSE_URL_ALLOW`) replaces the default,
/// CloudFormation's pre-signed S3 URLs over HTTPS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseUrlPolicy {
    allow: Option<Vec<String>>,
}

impl ResponseUrlPolicy {
    /// `CFN_RESPONSE_URL_ALLOW`: comma-separated URL prefixes, e.g. `http://127.0.0.1`.
    pub fn from_allow_list(list: Option<&str>) -> Self {
        let allow: Option<Vec<String>> = list.map(|l| l.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_string).collect());
        Self {
            allow: allow.filter(|a| !a.is_empty()),
        }
    }

    /// `Ok` with the host to log, or why the URL is refused (never quoting its query string:
    /// it holds a signature).
    pub fn check(&self, url: &str) -> Result<String, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
        let host = parsed.host_str().unwrap_or("").to_string();
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("it carries user information".into());
        }
        match &self.allow {
            Some(prefixes) => {
                if prefixes.iter().any(|p| has_prefix(url, p)) {
                    Ok(host)
                } else {
                    Err("it starts with none of the prefixes in CFN_RESPONSE_URL_ALLOW".into())
                }
            }
            None => {
                if parsed.scheme() != "https" {
                    return Err("it is not https".into());
                }
                if parsed.port().is_some() {
                    return Err("it names a port".into());
                }
                // `domain` is None for an IP literal.
                match parsed.domain() {
                    Some(domain) if is_s3_host(domain) => Ok(host),
                    _ => Err("its host is not an Amazon S3 endpoint".into()),
                }
            }
        }
    }
}

/// `url` starts with `prefix` and the prefix ends where a URL part does (so `http://127.0.0.1`
/// does not admit `http://127.0.0.1.evil.example`).
fn has_prefix(url: &str, prefix: &str) -> bool {
    match url.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?', ':', '#']),
        None => false,
    }
}

/// `s3.amazonaws.com`, `s3.<region>.amazonaws.com`, `s3-<region>.amazonaws.com`, each
/// optionally under a bucket name, and the same under `amazonaws.com.cn`.
pub fn is_s3_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let Some(prefix) = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))
    else {
        return false;
    };
    let labels: Vec<&str> = prefix.split('.').collect();
    if labels.iter().any(|l| !is_label(l)) {
        return false;
    }
    let last = labels[labels.len() - 1];
    last == "s3"
        || last.strip_prefix("s3-").is_some_and(is_region)
        || (labels.len() >= 2 && labels[labels.len() - 2] == "s3" && is_region(last))
}

fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// `eu-west-1`, `us-gov-west-1`, `cn-north-1`, `external-1`: letters, then a dash-separated
/// tail ending in a number.
fn is_region(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
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

/// The `Data` keys an answer is never without (when they were given): what operators read.
const KEPT_DATA: [&str; 3] = ["Current", "AppliedCount", "RunId"];

/// The response document, within CloudFormation's limit. Shrinks in a fixed order, each step
/// finite, stopping at the first that fits: every `Data` value cut to 128 bytes; the reason
/// cut down to 512 bytes; `Data` down to Current, AppliedCount and RunId; the reason cut down
/// to nothing; `Data` dropped. The ids are echoed verbatim (CloudFormation's own limits keep
/// them far under 4 KB); only if they alone were over would they be cut, as a last resort.
pub fn response_body(envelope: &Envelope, physical_resource_id: &str, answer: &Answer) -> String {
    let mut response = CloudFormationCustomResourceResponse::default();
    response.status = if answer.success {
        ResponseStatus::Success
    } else {
        ResponseStatus::Failed
    };
    response.physical_resource_id = physical_resource_id.to_string();
    response.stack_id = envelope.stack_id.clone();
    response.request_id = envelope.request_id.clone();
    response.logical_resource_id = envelope.logical_resource_id.clone();
    response.data = answer.data.clone();
    response.reason = Some(answer.reason.clone());
    let encode = |r: &CloudFormationCustomResourceResponse| serde_json::to_string(r).expect("response serializes");
    let fits = |r: &CloudFormationCustomResourceResponse| {
        let body = encode(r);
        (body.len() <= MAX_BODY_BYTES).then_some(body)
    };
    // Cuts the reason (from its full text) until the body fits or the reason is down to
    // `floor` bytes; `budget` falls by at least one byte a round, so this ends.
    let shrink_reason = |r: &mut CloudFormationCustomResourceResponse, floor: usize| -> Option<String> {
        let mut budget = r.reason.as_deref().map_or(0, str::len);
        loop {
            let body = encode(r);
            if body.len() <= MAX_BODY_BYTES {
                return Some(body);
            }
            if budget <= floor {
                return None;
            }
            let over = body.len() - MAX_BODY_BYTES;
            budget = budget.saturating_sub(over.max(1)).max(floor);
            r.reason = Some(cut(&answer.reason, budget));
        }
    };
    if let Some(body) = fits(&response) {
        return body;
    }
    for value in response.data.values_mut() {
        *value = cut(value, 128);
    }
    if let Some(body) = shrink_reason(&mut response, 512) {
        return body;
    }
    response.data.retain(|k, _| KEPT_DATA.contains(&k.as_str()));
    if let Some(body) = shrink_reason(&mut response, 0) {
        return body;
    }
    response.data.clear();
    if let Some(body) = fits(&response) {
        return body;
    }
    for id in [
        &mut response.physical_resource_id,
        &mut response.stack_id,
        &mut response.request_id,
        &mut response.logical_resource_id,
    ] {
        *id = cut(id, 512);
    }
    encode(&response)
}

/// "errorType: message" for CloudFormation, without Postgres's detail (`public_message`).
pub(super) fn reason_of(error: &InvocationError) -> String {
    format!("{}: {}", error.error_type(), public_message(error))
}

/// A custom resource cannot be answered "call me again", so an online run still in progress
/// fails it, saying how to finish: the committed steps stay, and the next run resumes after them.
pub(super) fn in_progress_reason(error: &InvocationError, left: &crate::report::InProgressReport) -> String {
    format!(
        "{}: the online migration reached the function's deadline part-way and is resumable, which a custom resource cannot wait for: {}. \
         What committed stays. Finish it with the release workflow (it invokes the function again while it answers inProgress) \
         or invoke the function with {{\"action\": \"migrate\", \"online\": true}} until it answers applied, then update the stack again",
        error.error_type(),
        left.summary()
    )
}

pub(super) fn success_reason(report: &Report) -> String {
    let current = report.current.as_deref().unwrap_or("none");
    let mut reason = match report.status {
        Status::Applied => format!("applied {} migration(s); current: {current}", report.applied.len()),
        Status::Planned => format!(
            "dry run: {} migration(s) would be applied; current: {current}",
            report.pending.len()
        ),
        _ => format!("up to date; current: {current}"),
    };
    for w in &report.warnings {
        reason.push_str("; warning: ");
        reason.push_str(w);
    }
    reason
}

pub(super) fn data(report: &Report) -> HashMap<String, String> {
    HashMap::from([
        ("Current".to_string(), report.current.clone().unwrap_or_default()),
        ("AppliedCount".to_string(), report.applied.len().to_string()),
        ("RunId".to_string(), report.run_id.clone()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, properties: Value) -> Value {
        json!({
            "RequestType": kind, "RequestId": "req-1", "ResponseURL": "http://127.0.0.1:9/r",
            "StackId": "arn:stack", "ResourceType": "Custom::WishlistMigration", "LogicalResourceId": "Migrations",
            "PhysicalResourceId": "old-id", "ResourceProperties": properties, "OldResourceProperties": {}
        })
    }

    fn request(kind: &str, properties: Value) -> CfnRequest {
        CfnRequest::from_value(&event(kind, properties)).unwrap()
    }

    fn refusal(event: &Value) -> String {
        match CfnRequest::from_value(event) {
            Err(Malformed::Answerable { envelope, reason }) => {
                assert_eq!(envelope.request_id, "req-1");
                reason
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_type_ids_and_properties() {
        let r = request(
            "Update",
            json!({"ServiceToken": "arn", "MigrationsVersion": "42", "DryRun": "true"}),
        );
        assert_eq!(r.request_type, RequestType::Update);
        assert_eq!(r.envelope.physical_resource_id.as_deref(), Some("old-id"));
        assert_eq!(r.migrations_version.as_deref(), Some("42"));
        assert!(r.dry_run);
        let r = request("Create", json!({"ServiceToken": "arn"}));
        assert!(!r.dry_run);
        assert!(r.envelope.physical_resource_id.is_none());
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
    fn malformed_events_with_an_envelope_are_answerable_and_named() {
        let reason = refusal(&event("Create", json!({"DryRun": "perhaps"})));
        assert!(reason.contains("DryRun") && reason.contains("perhaps"), "{reason}");
        let reason = refusal(&event("Rename", json!({})));
        assert!(reason.contains("unknown RequestType \"Rename\""), "{reason}");
        let mut no_properties = event("Create", json!({}));
        no_properties.as_object_mut().unwrap().remove("ResourceProperties");
        assert!(refusal(&no_properties).contains("ResourceProperties"));
        let mut no_type = event("Create", json!({}));
        no_type["RequestType"] = json!(3);
        assert!(refusal(&no_type).contains("RequestType"));
        // A Delete never reads its properties: it is not refused for them.
        assert!(CfnRequest::from_value(&event("Delete", json!({"DryRun": "perhaps"}))).is_ok());
        // Without where to answer, only the invocation can fail.
        let mut no_url = event("Create", json!({}));
        no_url["ResponseURL"] = json!(null);
        assert!(matches!(CfnRequest::from_value(&no_url), Err(Malformed::Unanswerable(_))));
    }

    fn envelope() -> Envelope {
        request("Create", json!({})).envelope
    }

    #[test]
    fn body_echoes_ids_and_fits_the_limit() {
        let answer = Answer::failed("x".repeat(10_000));
        let body = response_body(&envelope(), "phys", &answer);
        assert!(body.len() <= MAX_BODY_BYTES);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["Status"], "FAILED");
        assert_eq!(v["RequestId"], "req-1");
        assert_eq!(v["StackId"], "arn:stack");
        assert_eq!(v["LogicalResourceId"], "Migrations");
        assert_eq!(v["PhysicalResourceId"], "phys");
        assert!(v["Reason"].as_str().unwrap().ends_with('…'));
    }

    #[test]
    fn a_reason_with_data_over_the_limit_still_fits() {
        // Used to loop forever: the reason could only shrink to "…" while Data stayed over 4 KB.
        let mut answer = Answer::failed(format!("MigrationFailed: {}", "\"quoted\" ".repeat(1000)));
        answer.data = HashMap::from([
            ("Current".to_string(), "0001_add_wishlist_items".to_string()),
            ("AppliedCount".to_string(), "1".to_string()),
            ("RunId".to_string(), "run-42".to_string()),
        ]);
        for i in 0..60 {
            answer.data.insert(format!("Extra{i}"), "v".repeat(120));
        }
        let body = response_body(&envelope(), "phys", &answer);
        assert!(body.len() <= MAX_BODY_BYTES, "{}", body.len());
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["Status"], "FAILED");
        assert_eq!(v["RequestId"], "req-1");
        assert_eq!(v["Data"]["Current"], "0001_add_wishlist_items");
        assert_eq!(v["Data"]["RunId"], "run-42");
        assert!(v["Reason"].as_str().unwrap().starts_with("MigrationFailed: "), "{v}");

        // A single Data value alone over the limit.
        answer.data.insert("Huge".into(), "h".repeat(9000));
        let body = response_body(&envelope(), "phys", &answer);
        assert!(body.len() <= MAX_BODY_BYTES, "{}", body.len());
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["Data"]["RunId"], "run-42");
    }

    #[test]
    fn response_urls_default_to_presigned_s3_over_https() {
        let default = ResponseUrlPolicy::from_allow_list(None);
        for ok in [
            "https://s3.amazonaws.com/bucket/key?X-Amz-Signature=abc",
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/arn%3Aaws/x?X-Amz-Signature=abc",
            "https://s3.eu-west-1.amazonaws.com/b/k",
            "https://bucket.s3.eu-west-1.amazonaws.com/k",
            "https://s3-us-west-2.amazonaws.com/b/k",
            "https://bucket.s3-external-1.amazonaws.com/k",
            "https://s3.cn-north-1.amazonaws.com.cn/b/k",
            "https://S3.AmazonAWS.com/b/k",
        ] {
            assert_eq!(default.check(ok).map_err(|e| format!("{ok}: {e}")).map(|_| ()), Ok(()));
        }
        for bad in [
            "http://s3.amazonaws.com/b/k",
            "https://s3.amazonaws.com.evil.example/b/k",
            "https://s3.amazonaws.com@evil.example/b/k",
            "https://user:pw@s3.amazonaws.com/b/k",
            "https://evil-s3.amazonaws.com/b/k",
            "https://s3.evil.example/b/k",
            "https://ec2.amazonaws.com/b/k",
            "https://amazonaws.com/b/k",
            "https://notamazonaws.com/b/k",
            "https://s3.amazonaws.com:8443/b/k",
            "https://52.216.0.1/b/k",
            "https://[::1]/b/k",
            "https://s3.amazonaws.com./b/k",
            "ftp://s3.amazonaws.com/b/k",
            "not a url",
        ] {
            assert!(default.check(bad).is_err(), "{bad} must be refused");
        }
        let err = default.check("https://evil.example/k?X-Amz-Signature=SECRET").unwrap_err();
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn the_shipped_events_carry_urls_the_default_accepts() {
        for event in [
            include_str!("../../events/cfn-create.json"),
            include_str!("../../events/cfn-update.json"),
            include_str!("../../events/cfn-delete.json"),
        ] {
            let request = CfnRequest::from_value(&serde_json::from_str(event).unwrap()).unwrap();
            let host = ResponseUrlPolicy::default().check(&request.envelope.response_url).unwrap();
            assert!(host.ends_with(".s3.amazonaws.com"), "{host}");
        }
    }

    #[test]
    fn the_allow_list_replaces_the_default() {
        let local = ResponseUrlPolicy::from_allow_list(Some("http://127.0.0.1, http://localhost:8080/cfn/"));
        assert_eq!(local.check("http://127.0.0.1:4000/r?x=1"), Ok("127.0.0.1".into()));
        assert!(local.check("http://127.0.0.1/r").is_ok());
        assert!(local.check("http://localhost:8080/cfn/abc").is_ok());
        for bad in [
            "http://127.0.0.1.evil.example/r",
            "http://127.0.0.1@evil.example/r",
            "http://127.0.0.1:80@evil.example/r",
            "http://127.0.0.10/r",
            "http://localhost:8080/other",
            "https://s3.amazonaws.com/b/k",
        ] {
            assert!(local.check(bad).is_err(), "{bad} must be refused");
        }
        assert_eq!(ResponseUrlPolicy::from_allow_list(Some(" , ")), ResponseUrlPolicy::default());
    }
}
