//! What a Lambda invocation asks for: a CloudFormation custom resource event, or a
//! `{"action": ...}` request from Step Functions or `sam remote invoke`.

use serde_json::Value;

use crate::config::target::Target;
use crate::engine::command::{Action, Command};
use crate::engine::rollback_plan::RollbackTarget;
use crate::error::{Classified, ErrorType};

/// Every field a direct request may carry besides `action`.
const FIELDS: &str = "action, to, version, limit, dryRun, failOnDrift, strict, analyze, allowDataLoss, online, target";

/// `history`'s rows when the request names no `limit`, and the most it may name.
pub const HISTORY_LIMIT: u32 = 50;
const HISTORY_LIMIT_MAX: u64 = 10_000;

/// The fields each action accepts besides `action`.
fn accepted(action: Action) -> &'static [&'static str] {
    match action {
        Action::Plan => &["to", "online"],
        Action::Migrate => &["to", "dryRun", "online"],
        Action::Drift => &["failOnDrift", "strict"],
        Action::Verify => &["analyze"],
        Action::Rollback => &["to", "dryRun", "allowDataLoss"],
        Action::Require => &["version"],
        Action::History => &["limit"],
        Action::Status | Action::CheckRollback | Action::Lint | Action::Check => &[],
    }
}

#[derive(Debug)]
pub enum Request {
    Direct(Command),
    /// A custom resource event, read by `cfn::CfnRequest::from_value` (which answers even a
    /// malformed one).
    CloudFormation(Box<Value>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error(
        "the event must be a JSON object like {{\"action\": \"migrate\"}}; got {got}. Valid actions: {}",
        Action::names()
    )]
    NotAnObject { got: &'static str },
    #[error("the event has no \"action\". Valid actions: {}", Action::names())]
    MissingAction,
    #[error("unknown action {action:?}. Valid actions: {}", Action::names())]
    UnknownAction { action: String },
    #[error("field {field:?}: {reason}. Valid actions: {}", Action::names())]
    BadField { field: String, reason: String },
    #[error("not a valid CloudFormation custom resource event: {reason}")]
    CloudFormation { reason: String },
    #[error(
        "refused to answer at ResponseURL (host {host:?}): {reason}. Only CloudFormation's pre-signed https S3 URLs are accepted; for a local stack set CFN_RESPONSE_URL_ALLOW to the URL prefixes to allow (e.g. http://127.0.0.1)"
    )]
    ResponseUrl { host: String, reason: String },
}

/// Enough of a value to recognise it in an error, never the whole of an oversized one: errors are
/// logged and returned to whoever invoked.
fn excerpt(value: &str) -> String {
    excerpt_to(value, 64)
}

fn excerpt_to(value: &str, max_chars: usize) -> String {
    match value.char_indices().nth(max_chars) {
        None => value.to_string(),
        Some((cut, _)) => format!("{}… ({} bytes)", &value[..cut], value.len()),
    }
}

pub fn parse(event: &Value) -> Result<Request, RequestError> {
    let Value::Object(fields) = event else {
        return Err(RequestError::NotAnObject { got: kind(event) });
    };
    // Whatever else is wrong with it, an event naming where to answer is CloudFormation's.
    let envelope = ["ResponseURL", "RequestId", "StackId", "LogicalResourceId"];
    if fields.contains_key("RequestType") || envelope.iter().any(|k| fields.contains_key(*k)) {
        return Ok(Request::CloudFormation(Box::new(event.clone())));
    }
    let action = match fields.get("action") {
        None => return Err(RequestError::MissingAction),
        Some(Value::String(a)) => Action::from_name(a).ok_or_else(|| RequestError::UnknownAction { action: excerpt(a) })?,
        Some(other) => {
            return Err(RequestError::BadField {
                field: "action".into(),
                reason: format!("must be a string, got {}", kind(other)),
            })
        }
    };
    let mut target = None;
    let mut version = None;
    let mut limit = None;
    let mut flags = std::collections::HashMap::new();
    for (field, value) in fields {
        let name = field.as_str();
        if name == "action" || value.is_null() {
            continue;
        }
        if !FIELDS.split(", ").any(|f| f == name) {
            return Err(RequestError::BadField {
                field: field.clone(),
                reason: format!("unknown field (accepted: {FIELDS})"),
            });
        }
        // Any action may run against a fleet's target: it names the database, not what to do.
        if name == "target" {
            target_of(event)?;
            continue;
        }
        if !accepted(action).contains(&name) {
            return Err(RequestError::BadField {
                field: field.clone(),
                reason: format!("not accepted by the {} action", action.name()),
            });
        }
        match (name, value) {
            ("to", Value::String(tag)) => target = Some(tag.clone()),
            ("to", other) => return Err(wrong_type(field, "a migration tag string", other)),
            ("version", Value::String(tag)) => version = Some(tag.clone()),
            ("version", other) => return Err(wrong_type(field, "a migration tag string", other)),
            ("limit", Value::Number(n)) if n.as_u64().is_some_and(|n| (1..=HISTORY_LIMIT_MAX).contains(&n)) => {
                limit = n.as_u64().map(|n| n as u32)
            }
            ("limit", other) => return Err(wrong_type(field, "a whole number from 1 to 10000", other)),
            (_, Value::Bool(b)) => {
                flags.insert(name, *b);
            }
            (_, other) => return Err(wrong_type(field, "true or false", other)),
        }
    }
    let flag = |name: &str| flags.get(name).copied().unwrap_or(false);
    let command = match action {
        Action::Status => Command::Status,
        Action::Plan => Command::Plan { target },
        Action::Drift => Command::Drift {
            fail_on_drift: flag("failOnDrift"),
            strict: flag("strict"),
        },
        Action::Verify => Command::Verify { analyze: flag("analyze") },
        Action::Rollback => {
            // Rolling back is never a default: the request names how far.
            let to = target.ok_or_else(|| RequestError::BadField {
                field: "to".into(),
                reason: "required by the rollback action: the migration to keep as the newest applied one, or \"none\" to roll back every migration".into(),
            })?;
            Command::Rollback {
                target: RollbackTarget::parse(&to),
                dry_run: flag("dryRun"),
                allow_data_loss: flag("allowDataLoss"),
            }
        }
        Action::CheckRollback => Command::CheckRollback,
        // The function holds the built-in migrations, not a pull request's checkout.
        Action::Check => {
            return Err(RequestError::BadField {
                field: "action".into(),
                reason: "check reads a pull request's migrations folder and its git base: run it with the CLI in CI (docs/ci.md)".into(),
            })
        }
        // The function always has its database: the pending migrations against the live tables.
        Action::Lint => Command::Lint { since: None, live: true },
        Action::History => Command::History {
            limit: limit.unwrap_or(HISTORY_LIMIT),
        },
        Action::Require => Command::Require {
            version: version.ok_or_else(|| RequestError::BadField {
                field: "version".into(),
                reason: "required by the require action: the migration tag the deploy needs applied (with everything before it)".into(),
            })?,
        },
        Action::Migrate => Command::Migrate {
            target,
            dry_run: flag("dryRun"),
        },
    };
    Ok(Request::Direct(command))
}

/// The request's `"online": true` (a run setting, not part of the command); [`parse`] has
/// already refused it anywhere but on `plan` and `migrate`, or as anything but a boolean.
pub fn wants_online(payload: &Value) -> bool {
    payload.get("online").and_then(Value::as_bool).unwrap_or(false)
}

/// The request's `"target"`, a fleet's database (a Distributed Map item): read as a manifest's
/// items are; [`parse`] has already refused a malformed one.
pub fn target_of(payload: &Value) -> Result<Option<Target>, RequestError> {
    let bad = |reason: String| RequestError::BadField {
        field: "target".into(),
        reason,
    };
    match payload.get("target") {
        None | Some(Value::Null) => Ok(None),
        Some(value @ Value::Object(_)) => Target::from_value(value.clone())
            .map(Some)
            .map_err(|e| bad(without_values(&e.to_string()))),
        Some(other) => Err(bad(format!(
            "must be an object {{\"name\", \"databaseUrl\" | \"secretArn\", \"env\"?}}, got {}",
            kind(other)
        ))),
    }
}

/// A target's error without the values serde quotes (`invalid type: string "…"`): one may be a
/// URL with its password, or a megabyte; names of fields and targets stay.
fn without_values(message: &str) -> String {
    const MAX_CHARS: usize = 300;
    let mut out = String::new();
    let mut rest = message;
    while let Some(start) = rest.find("string \"") {
        let (head, tail) = rest.split_at(start + "string ".len());
        out.push_str(head);
        out.push_str("(not shown)");
        // The value is printed as Rust debug-prints a string: it ends at the first unescaped quote.
        let mut escaped = false;
        let end = tail.char_indices().skip(1).find(|&(_, c)| {
            let closes = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            closes
        });
        rest = end.map_or("", |(i, _)| &tail[i + 1..]);
    }
    out.push_str(rest);
    excerpt_to(&out, MAX_CHARS)
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

impl Classified for RequestError {
    fn error_type(&self) -> ErrorType {
        ErrorType::InvalidRequest
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
        assert_eq!(
            direct(json!({"action": "plan", "to": "0001_x"})),
            Command::Plan {
                target: Some("0001_x".into())
            }
        );
        assert_eq!(
            direct(json!({"action": "migrate", "dryRun": true})),
            Command::Migrate {
                target: None,
                dry_run: true
            }
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
    fn check_is_refused_with_where_to_run_it() {
        // The function holds the built-in migrations: a pull request's folder is not there.
        let err = parse(&json!({"action": "check"})).unwrap_err();
        assert!(err.to_string().contains("run it with the CLI in CI"), "{err}");
    }

    #[test]
    fn maps_verify_drift_and_rollback_actions() {
        assert_eq!(
            direct(json!({"action": "drift"})),
            Command::Drift {
                fail_on_drift: false,
                strict: false
            }
        );
        assert_eq!(
            direct(json!({"action": "drift", "failOnDrift": true})),
            Command::Drift {
                fail_on_drift: true,
                strict: false
            }
        );
        assert_eq!(
            direct(json!({"action": "verify", "analyze": true})),
            Command::Verify { analyze: true }
        );
        assert_eq!(direct(json!({"action": "check-rollback"})), Command::CheckRollback);
        assert_eq!(
            direct(json!({"action": "rollback", "to": "0000_x", "dryRun": true})),
            Command::Rollback {
                target: RollbackTarget::Migration("0000_x".into()),
                dry_run: true,
                allow_data_loss: false
            }
        );
        assert_eq!(
            direct(json!({"action": "rollback", "to": "none", "allowDataLoss": true})),
            Command::Rollback {
                target: RollbackTarget::Empty,
                dry_run: false,
                allow_data_loss: true
            }
        );
        let err = parse(&json!({"action": "rollback"})).unwrap_err();
        assert!(matches!(&err, RequestError::BadField { field, .. } if field == "to"), "{err}");
        let err = parse(&json!({"action": "drift", "failOnDrift": "yes"})).unwrap_err();
        assert!(
            matches!(&err, RequestError::BadField { field, .. } if field == "failOnDrift"),
            "{err}"
        );
        let err = parse(&json!({"action": "migrate", "allowDataLoss": true})).unwrap_err();
        assert!(err.to_string().contains("not accepted by the migrate action"), "{err}");
    }

    #[test]
    fn bad_fields_are_named() {
        assert!(matches!(
            direct(json!({"action": "migrate", "online": true})),
            Command::Migrate { .. }
        ));
        assert!(wants_online(&json!({"action": "plan", "online": true})));
        assert!(!wants_online(&json!({"action": "migrate"})));
        let err = parse(&json!({"action": "migrate", "online": "yes"})).unwrap_err();
        assert!(matches!(&err, RequestError::BadField { field, .. } if field == "online"), "{err}");
        let err = parse(&json!({"action": "status", "online": true})).unwrap_err();
        assert!(matches!(&err, RequestError::BadField { field, .. } if field == "online"), "{err}");
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
    fn a_target_names_the_database_for_any_action() {
        let event = json!({"action": "migrate", "target": {"name": "tenant-7", "secretArn": "arn:aws:secretsmanager:r:1:secret:t7", "env": "prod", "wave": 2}});
        assert!(matches!(direct(event.clone()), Command::Migrate { .. }));
        let target = target_of(&event).unwrap().unwrap();
        assert_eq!(
            (target.name.as_str(), target.env.as_deref(), target.wave),
            ("tenant-7", Some("prod"), 2)
        );
        let require = json!({"action": "require", "version": "0001_x", "target": {"name": "t", "databaseUrl": "postgres://u:pw@h/t"}});
        assert_eq!(direct(require.clone()), Command::Require { version: "0001_x".into() });
        assert!(target_of(&require).unwrap().unwrap().connection().unwrap().is_ok());
        assert_eq!(target_of(&json!({"action": "status"})).unwrap(), None);
        assert_eq!(target_of(&json!({"action": "status", "target": null})).unwrap(), None);
    }

    #[test]
    fn a_bad_target_is_refused_before_anything_runs_without_its_password() {
        for (target, expected) in [
            (json!("tenant-7"), "must be an object"),
            (json!({"secretArn": "arn"}), "has no name"),
            (json!({"name": "t"}), "exactly one of"),
            (json!({"name": "t", "databaseUrl": "postgres://u:hunter2@h:port/t"}), "target \"t\""),
            (json!({"name": "t", "secretArn": "arn", "region": "eu"}), "unknown field `region`"),
            (
                json!({"name": "t", "secretArn": "arn", "wave": "postgres://u:hunter2@h/t"}),
                "invalid type: string (not shown)",
            ),
            (
                json!({"name": "t", "secretArn": "arn", "wave": "a\\\"b hunter2"}),
                "invalid type: string (not shown), expected",
            ),
            (json!("postgres://u:hunter2@h/t"), "must be an object"),
            (json!("x".repeat(100_000)), "got a string"),
        ] {
            let err = parse(&json!({"action": "migrate", "target": target})).unwrap_err();
            assert!(matches!(&err, RequestError::BadField { field, .. } if field == "target"), "{err}");
            assert!(err.to_string().contains(expected), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
            assert!(err.to_string().len() < 1024, "{} bytes", err.to_string().len());
            assert_eq!(err.error_type(), ErrorType::InvalidRequest);
        }
    }

    #[test]
    fn recognises_cloudformation_events() {
        let event = json!({
            "RequestType": "Create", "RequestId": "r1", "ResponseURL": "http://127.0.0.1:1/x",
            "StackId": "s", "ResourceType": "Custom::WishlistMigration", "LogicalResourceId": "Migrations",
            "ResourceProperties": {"ServiceToken": "arn", "MigrationsVersion": "7"}
        });
        assert!(matches!(parse(&event).unwrap(), Request::CloudFormation(_)));
        let unknown_type = json!({"RequestType": "Rename", "ResponseURL": "u"});
        assert!(matches!(parse(&unknown_type).unwrap(), Request::CloudFormation(_)));
    }

    #[test]
    fn an_oversized_unknown_action_is_not_echoed_whole() {
        let action = "é".repeat(100_000);
        let err = parse(&json!({ "action": action })).unwrap_err();
        let message = err.to_string();
        assert!(message.len() < 400, "{} bytes", message.len());
        assert!(message.contains("(200000 bytes)"), "{message}");
    }

    #[test]
    fn require_takes_its_version() {
        assert_eq!(
            direct(json!({"action": "require", "version": "0001_x"})),
            Command::Require { version: "0001_x".into() }
        );
        assert!(matches!(parse(&json!({"action": "require"})), Err(RequestError::BadField { field, .. }) if field == "version"));
        assert!(
            matches!(parse(&json!({"action": "require", "version": 1})), Err(RequestError::BadField { field, .. }) if field == "version")
        );
        assert!(
            matches!(parse(&json!({"action": "migrate", "version": "0001_x"})), Err(RequestError::BadField { field, .. }) if field == "version")
        );
    }
}
