//! A fleet's target named in the event (`"target"`, a Distributed Map item): the real function
//! under the Runtime API emulator runs against the target's database with the target's own
//! secret, records the target's own state in SSM (moto), and names it in reports and errors.

use serde_json::json;

use crate::harness::stack::{aws, response, Stack};
use crate::harness::{self, pg, TAG_0001};

#[tokio::test(flavor = "multi_thread")]
async fn a_target_runs_with_its_own_secret_and_records_its_own_state() {
    let function = Stack::new().await;
    let tenant = Stack::new().await;
    let lambda = function.start(&[]);

    let target = json!({"name": "tenant-a", "secretArn": tenant.secret_id});
    let migrated = response(lambda.invoke(json!({"action": "migrate", "target": target})), &lambda.logs_tail(40));
    assert_eq!(
        (migrated["status"].as_str(), migrated["targetName"].as_str()),
        (Some("applied"), Some("tenant-a"))
    );
    assert_eq!(migrated["database"]["user"], tenant.role.as_str());
    assert_eq!(harness::ledger(&tenant.db).await.len(), 2);
    assert!(
        harness::ledger(&function.db).await.is_empty(),
        "the function's own database is untouched"
    );

    let name = format!("{}/targets/tenant-a/state", function.ssm_prefix);
    let state = aws_sdk_ssm::Client::new(&aws().await).get_parameter().name(&name).send().await;
    let state: serde_json::Value = serde_json::from_str(state.expect("the target's state").parameter().unwrap().value().unwrap()).unwrap();
    assert_eq!(
        (state["status"].as_str(), state["current"].as_str()),
        (Some("applied"), Some(TAG_0001))
    );
    assert!(function.state().await.is_none(), "the environment's own state is not the target's");

    // Without a target, the function's own database, as before.
    let own = response(lambda.invoke(json!({"action": "status"})), "status");
    assert_eq!((own["status"].as_str(), own.get("targetName")), (Some("pending"), None));

    // A target that fails: its name leads the message, the errorType is the run's own (what a
    // workflow's Retry and Catch match on).
    let gone = json!({"name": "tenant-gone", "databaseUrl": pg().admin_url("wm_target_never_created")});
    let (error_type, message) = lambda
        .invoke(json!({"action": "migrate", "target": gone}))
        .expect_error(&lambda.logs_tail(40));
    assert!(message.starts_with("target tenant-gone: "), "{error_type}: {message}");
    assert_ne!(error_type, "InvalidRequest");
    let (error_type, message) = lambda
        .invoke(json!({"action": "migrate", "target": {"name": "x"}}))
        .expect_error("a target without a location");
    assert_eq!(error_type, "InvalidRequest", "{message}");

    function.assert_no_password(&lambda);
    tenant.assert_no_password(&lambda);
}
