//! What a Lambda invocation asks for: a CloudFormation custom resource event, or a
//! `{"action": ...}` request from Step Functions or `sam remote invoke`.

use aws_lambda_events::cloudformation::CloudFormationCustomResourceRequest;
use serde_json::Value;

use crate::runner::Command;

/// The actions a direct request may name.
pub const ACTIONS: &[&str] = &["migrate", "plan", "status"];

#[derive(Debug)]
pub enum Request {
    Direct(Command),
    CloudFormation(Box<CloudFormationCustomResourceRequest>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("the event must be a JSON object like {{\"action\": \"migrate\"}}; got {got}. Valid actions: {}", ACTIONS.join(", "))]
    NotAnObject { got: &'static str },
    #[error("the event has no \"action\". Valid actions: {}", ACTIONS.join(", "))]
    MissingAction,
    #[error("unknown action {action:?}. Valid actions: {}", ACTIONS.join(", "))]
    UnknownAction { action: String },
    #[error("field {field:?}: {reason}. Valid actions: {}", ACTIONS.join(", "))]
    BadField { field: String, reason: String },
    #[error("not a valid CloudFormation custom resource event: {reason}")]
    CloudFormation { reason: String },
}

pub fn parse(event: &Value) -> Result<Request, RequestError> {
    let Value::Object(fields) = event else {
        return Err(RequestError::NotAnObject { got: kind(event) });
    };
    if fields.contains_key("RequestType") {
        return serde_json::from_value(event.clone())
            .map(|cfn| Request::CloudFormation(Box::new(cfn)))
            .map_err(|e| RequestError::CloudFormation { reason: e.to_string() });
    }
    let action = match fields.get("action") {
        None => return Err(RequestError::MissingAction),
        Some(Value::String(a)) => a.as_str(),
        Some(other) => {
            return Err(RequestError::BadField {
                field: "action".into(),
                reason: format!("must be a string, got {}", kind(other)),
            })
        }
    };
    if !ACTIONS.contains(&action) {
        return Err(RequestError::UnknownAction { action: action.to_string() });
    }
    let mut target = None;
    let mut dry_run = None;
    for (field, value) in fields {
        match (field.as_str(), value) {
            ("action", _) => {}
            ("to", Value::String(tag)) if action != "status" => target = Some(tag.clone()),
            ("dryRun", Value::Bool(b)) if action == "migrate" => dry_run = Some(*b),
            ("to" | "dryRun", Value::Null) => {}
            ("to", Value::String(_)) | ("dryRun", Value::Bool(_)) => {
                return Err(RequestError::BadField {
                    field: field.clone(),
                    reason: format!("not accepted by the {action} action"),
                })
            }
            ("to", other) => return Err(wrong_type(field, "a migration tag string", other)),
            ("dryRun", other) => return Err(wrong_type(field, "true or false", other)),
            _ => {
                return Err(RequestError::BadField {
                    field: field.clone(),
                    reason: "unknown field (accepted: action, to, dryRun)".into(),
                })
            }
        }
    }
    let command = match action {
        "status" => Command::Status,
        "plan" => Command::Plan { target },
        _ => Command::Migrate {
            target,
            dry_run: dry_run.unwrap_or(false),
        },
    };
    Ok(Request::Direct(command))
}

fn wrong_type(field: &str, expected: &str, got: &Value) -> RequestError {
    RequestError::BadField {
        field: field.to_string(),
        reason: format!("must be {expected}, got {}", kind(got)),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn direct(v: Value) -> Command {
        match parse(&v).unwrap() {
            Request::Direct(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn maps_actions_to_commands() {
        assert_eq!(direct(json!({"action": "status"})), Command::Status);
        assert_eq!(direct(json!({"action": "plan", "to": "0001_x"})), Command::Plan { target: Some("0001_x".into()) });
        assert_eq!(
            direct(json!({"action": "migrate", "dryRun": true})),
            Command::Migrate { target: None, dry_run: true }
        );
    }

    #[test]
    fn refuses_what_is_not_a_request_and_lists_valid_actions() {
        for (event, expected) in [
            (json!("migrate"), RequestError::NotAnObject { got: "a string" }),
            (json!([1]), RequestError::NotAnObject { got: "an array" }),
            (json!({}), RequestError::MissingAction),
            (json!({"action": "drop"}), RequestError::UnknownAction { action: "drop".into() }),
        ] {
            let err = parse(&event).unwrap_err();
            assert_eq!(err, expected);
            assert!(err.to_string().contains("migrate, plan, status"), "{err}");
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let err = parse(&json!({"action": "migrate", "dryRun": "yes"})).unwrap_err();
        assert!(matches!(&err, RequestError::BadField { field, .. } if field == "dryRun"), "{err}");
        let err = parse(&json!({"action": "migrate", "force": true})).unwrap_err();
        assert!(matches!(&err, RequestError::BadField { field, .. } if field == "force"), "{err}");
        let err = parse(&json!({"action": "status", "to": "x"})).unwrap_err();
        assert!(matches!(&err, RequestError::BadField { field, .. } if field == "to"), "{err}");
        let err = parse(&json!({"action": 3})).unwrap_err();
        assert!(matches!(&err, RequestError::BadField { field, .. } if field == "action"), "{err}");
    }

    #[test]
    fn recognises_cloudformation_events() {
        let event = json!({
            "RequestType": "Create", "RequestId": "r1", "ResponseURL": "http://127.0.0.1:1/x",
            "StackId": "s", "ResourceType": "Custom::WishlistMigration", "LogicalResourceId": "Migrations",
            "ResourceProperties": {"ServiceToken": "arn", "MigrationsVersion": "7"}
        });
        assert!(matches!(parse(&event).unwrap(), Request::CloudFormation(_)));
        let broken = json!({"RequestType": "Create"});
        assert!(matches!(parse(&broken).unwrap_err(), RequestError::CloudFormation { .. }));
    }
}
