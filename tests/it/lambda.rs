//! The Lambda function end to end: the real binary under the Runtime API emulator, credentials
//! from Secrets Manager and state in SSM (moto), a real PostgreSQL with password authentication,
//! and a local server standing in for CloudFormation's pre-signed ResponseURL.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::lambda_process::LambdaProcess;
use crate::harness::response_url::ResponseServer;
use crate::harness::stack::{
    assert_all_released, assert_nothing_kept, aws, cfn_answer, cfn_event, invoke_all, response, secret_json, slow_history, Stack,
};
use crate::harness::{self, eventually, ledger, migrator_sessions, pg, tags, TAG_0000, TAG_0001};

#[tokio::test(flavor = "multi_thread")]
async fn status_migrate_and_again_through_the_runtime_api_with_state_in_ssm() {
    let stack = Stack::new().await;
    let lambda = stack.start(&[]);

    let status = response(lambda.invoke(json!({"action": "status"})), "status");
    assert_eq!(status["status"], "pending");
    assert_eq!(harness::tags(&status["pending"]), [TAG_0000, TAG_0001]);
    assert!(stack.state().await.is_none(), "status records nothing");

    let migrated = response(lambda.invoke(json!({"action": "migrate"})), "migrate");
    assert_eq!(migrated["status"], "applied");
    assert_eq!(migrated["current"], TAG_0001);
    assert_eq!(harness::tags(&migrated["applied"]), [TAG_0000, TAG_0001]);
    assert_eq!(migrated["database"]["user"], stack.role.as_str());
    assert_eq!(harness::ledger(&stack.db).await.len(), 2);
    assert_eq!(stack.db.advisory_locks().await, 0);

    let state = stack.state().await.expect("migrate writes the state");
    assert_eq!(state["environment"], "test");
    assert_eq!(state["current"], TAG_0001);
    assert_eq!(state["status"], "applied");
    assert_eq!(state["lastAction"], "migrate");
    assert_eq!(state["applied"], json!([TAG_0000, TAG_0001]));
    assert_eq!(state["runId"], migrated["runId"]);
    assert_eq!(state["pending"], 0);
    assert_eq!(state["functionVersion"], "7");
    assert!(state["appliedAt"].as_str().unwrap().contains('T'), "RFC 3339");
    assert!(state["durationMs"].is_u64());
    // Where the run began on the database's clock: the runbook's point-in-time recovery target.
    assert_eq!(state["recoveryPoint"], migrated["recoveryPoint"]);
    assert!(state["recoveryPoint"]["startedAt"].as_str().unwrap().ends_with("+00:00"), "{state}");

    let again = response(lambda.invoke(json!({"action": "migrate"})), "second migrate");
    assert_eq!(again["status"], "upToDate");
    assert_eq!(again["applied"], json!([]));
    let rewritten = stack.state().await.unwrap();
    assert_eq!(rewritten["runId"], again["runId"], "every migrate rewrites the state");
    assert_eq!(rewritten["status"], "upToDate");

    let plan = response(lambda.invoke(json!({"action": "plan"})), "plan");
    assert_eq!(plan["status"], "upToDate");
    stack.assert_no_password(&lambda);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_requests_are_typed_and_list_the_valid_actions() {
    let stack = Stack::new().await;
    let lambda = stack.start(&[]);
    for (event, needle) in [
        (json!("migrate"), "JSON object"),
        (json!([{"action": "migrate"}]), "JSON object"),
        (json!(42), "JSON object"),
        (json!({"action": "drop-everything"}), "drop-everything"),
        (json!({"action": "migrate", "dryRun": "yes"}), "dryRun"),
        (json!({"verb": "migrate"}), "action"),
    ] {
        let (error_type, message) = lambda.invoke(event.clone()).expect_error(&event.to_string());
        assert_eq!(error_type, "InvalidRequest", "{event}");
        assert!(message.contains(needle), "{event}: {message}");
        assert!(message.contains("migrate, plan, status"), "lists the valid actions: {message}");
    }
    assert!(harness::ledger(&stack.db).await.is_empty(), "nothing ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudformation_create_update_delete_answer_the_response_url() {
    let stack = Stack::new().await;
    let server = ResponseServer::start();
    let lambda = stack.start(&[]);

    let create = cfn_event(
        "Create",
        "req-create",
        &server.url("/create?X-Amz-Signature=abc"),
        json!({"MigrationsVersion": "1"}),
    );
    let returned = response(lambda.invoke(create.clone()), "Create");
    assert_eq!(
        returned["Status"], "SUCCESS",
        "after the PUT the function returns success to Lambda"
    );
    let answer = cfn_answer(&server, "/create?X-Amz-Signature=abc");
    assert_eq!(answer["Status"], "SUCCESS");
    assert_eq!(answer["StackId"], create["StackId"]);
    assert_eq!(answer["RequestId"], "req-create");
    assert_eq!(answer["LogicalResourceId"], "DatabaseMigrations");
    assert_eq!(answer["Data"]["Current"], TAG_0001);
    assert_eq!(answer["Data"]["AppliedCount"], "2");
    let physical_id = answer["PhysicalResourceId"].as_str().unwrap().to_string();
    assert!(physical_id.starts_with("wishlist-migrator-test-"), "{physical_id}");
    assert!(!physical_id.contains(&stack.password));
    assert_eq!(harness::ledger(&stack.db).await.len(), 2);
    let state = stack.state().await.unwrap();
    assert_eq!(state["runId"], answer["Data"]["RunId"]);

    let update = cfn_event("Update", "req-update", &server.url("/update"), json!({"MigrationsVersion": "2"}));
    response(lambda.invoke(update), "Update");
    let answer = cfn_answer(&server, "/update");
    assert_eq!(answer["Status"], "SUCCESS");
    assert_eq!(answer["Data"]["AppliedCount"], "0");
    assert_eq!(
        answer["PhysicalResourceId"],
        physical_id.as_str(),
        "stable for the same environment and database"
    );

    let delete = cfn_event("Delete", "req-delete", &server.url("/delete"), json!({"MigrationsVersion": "2"}));
    response(lambda.invoke(delete), "Delete");
    let answer = cfn_answer(&server, "/delete");
    assert_eq!(answer["Status"], "SUCCESS");
    assert_eq!(
        answer["PhysicalResourceId"], "wishlist-migrator-test-previous",
        "Delete echoes the id on record"
    );
    assert_eq!(harness::ledger(&stack.db).await.len(), 2, "Delete never touches the database");
    assert!(stack.db.table_exists("public.wishlist_items").await);
    stack.assert_no_password(&lambda);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_request_gets_the_same_answer_without_migrating_twice() {
    let stack = Stack::new().await;
    let server = ResponseServer::start();
    let first = stack.start(&[]);
    let create = cfn_event("Create", "req-twice", &server.url("/first"), json!({}));
    response(first.invoke(create.clone()), "Create");
    let original = cfn_answer(&server, "/first");
    let history_before = harness::history(&stack.db).await.len();

    // Same container: answered from memory.
    let mut again = create.clone();
    again["ResponseURL"] = json!(server.url("/same-container"));
    response(first.invoke(again), "redelivery");
    let repeated = cfn_answer(&server, "/same-container");
    // Another container (Lambda retried on a new one): answered from the SSM state.
    drop(first);
    let second = stack.start(&[]);
    let mut again = create;
    again["ResponseURL"] = json!(server.url("/new-container"));
    response(second.invoke(again), "redelivery to a new container");
    let from_state = cfn_answer(&server, "/new-container");

    for answer in [&repeated, &from_state] {
        assert_eq!(answer["Status"], "SUCCESS");
        assert_eq!(answer["Data"]["RunId"], original["Data"]["RunId"], "the same run's result");
        assert_eq!(answer["Data"]["AppliedCount"], "2");
        assert_eq!(answer["PhysicalResourceId"], original["PhysicalResourceId"]);
    }
    assert_eq!(
        harness::history(&stack.db).await.len(),
        history_before,
        "no second run touched the database"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_response_put_is_retried_on_server_errors() {
    let stack = Stack::new().await;
    let server = ResponseServer::start();
    server.fail_next_puts(2);
    let lambda = stack.start(&[]);
    let create = cfn_event("Create", "req-retry", &server.url("/flaky"), json!({}));
    response(lambda.invoke(create), "Create");
    let puts = server.wait_for_requests(3, Duration::from_secs(30));
    assert_eq!(puts.len(), 3, "two 500s, then delivered");
    assert_eq!(puts[0].body, puts[2].body, "the same answer each time");
    assert_eq!(puts[2].body_json()["Status"], "SUCCESS");
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudformation_with_a_missing_secret_answers_failed_promptly() {
    let stack = Stack::new().await;
    let server = ResponseServer::start();
    let lambda = stack.start(&[("DB_SECRET_ID", "wishlist/nowhere/database")]);
    let started = Instant::now();
    let create = cfn_event("Create", "req-nosecret", &server.url("/nosecret"), json!({}));
    let returned = response(lambda.invoke(create), "Create with a missing secret");
    assert!(started.elapsed() < Duration::from_secs(20), "no hang: {:?}", started.elapsed());
    assert_eq!(returned["Status"], "FAILED", "reported to CloudFormation, not as a function error");
    let answer = cfn_answer(&server, "/nosecret");
    assert_eq!(answer["Status"], "FAILED");
    let reason = answer["Reason"].as_str().unwrap();
    assert!(reason.starts_with("SecretUnavailable"), "{reason}");
    assert!(reason.contains("wishlist/nowhere/database"), "names the secret: {reason}");
    assert!(harness::ledger(&stack.db).await.is_empty());

    // A direct invocation gets the same failure as a typed function error.
    let (error_type, _) = lambda.invoke(json!({"action": "status"})).expect_error("status");
    assert_eq!(error_type, "SecretUnavailable");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_too_short_stops_cleanly_with_deadline_exceeded() {
    let stack = Stack::new().await;
    let history = slow_history();
    let dir = history.path().to_str().unwrap();
    let lambda = stack.start(&[("MIGRATIONS_DIR", dir), ("DEADLINE_MARGIN_MS", "1000")]);
    let (error_type, message) = lambda
        .invoke_with_deadline(json!({"action": "migrate"}), Duration::from_secs(5))
        .expect_error("migrate against the deadline");
    // Answered before the deadline: the Runtime API emulator, like the service, turns a late
    // answer into Sandbox.Timedout.
    assert_eq!(error_type, "DeadlineExceeded", "{message}");
    assert!(message.contains("0002_slow"), "names the migration: {message}");
    assert_nothing_kept(&stack.db).await;
    let state = stack.state().await.expect("a failed migrate is recorded too");
    assert_eq!(state["status"], "failed");
    assert_eq!(state["error"]["type"], "DeadlineExceeded");
    stack.assert_no_password(&lambda);
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudformation_is_answered_failed_before_the_deadline() {
    let stack = Stack::new().await;
    let history = slow_history();
    let server = ResponseServer::start();
    let dir = history.path().to_str().unwrap();
    let lambda = stack.start(&[("MIGRATIONS_DIR", dir), ("DEADLINE_MARGIN_MS", "1000")]);
    let create = cfn_event("Create", "req-deadline", &server.url("/deadline"), json!({}));
    let returned = lambda
        .invoke_with_deadline(create, Duration::from_secs(8))
        .expect_response("Create against the deadline");
    // Answered before the deadline: the Runtime API emulator, like the service, turns a late
    // answer into Sandbox.Timedout.
    assert_eq!(returned["Status"], "FAILED");
    let answer = cfn_answer(&server, "/deadline");
    assert_eq!(answer["Status"], "FAILED");
    assert!(
        answer["Reason"].as_str().unwrap().starts_with("DeadlineExceeded"),
        "{}",
        answer["Reason"]
    );
    assert_nothing_kept(&stack.db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_secret_is_fetched_again_once() {
    let stack = Stack::new().await;
    let lambda = stack.start(&[]);
    response(lambda.invoke(json!({"action": "status"})), "status caches the secret");

    let rotated = harness::secret_password();
    let admin = stack.db.client().await;
    admin
        .batch_execute(&format!(
            "ALTER ROLE {} PASSWORD {}",
            harness::ident(&stack.role),
            harness::literal(&rotated)
        ))
        .await
        .unwrap();
    aws_sdk_secretsmanager::Client::new(&aws().await)
        .put_secret_value()
        .secret_id(&stack.secret_id)
        .secret_string(secret_json(&stack.role, &rotated, &stack.db))
        .send()
        .await
        .unwrap();

    let migrated = response(lambda.invoke(json!({"action": "migrate"})), "migrate after rotation");
    assert_eq!(migrated["status"], "applied");
    assert!(
        lambda.logs().contains("fetching the secret again"),
        "the retry is visible in the logs"
    );
    assert!(!lambda.logs().contains(&rotated));
    stack.assert_no_password(&lambda);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_ssm_is_a_warning_not_a_failure() {
    let stack = Stack::new().await;
    // Secrets Manager stays on moto; only SSM points at a closed port.
    let lambda = stack.start(&[("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:9")]);
    let migrated = response(lambda.invoke(json!({"action": "migrate"})), "migrate");
    assert_eq!(migrated["status"], "applied", "the ledger is the source of truth");
    let warnings = migrated["warnings"].to_string();
    assert!(warnings.contains("PutParameter"), "{warnings}");
    assert_eq!(harness::ledger(&stack.db).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_rollback_update_reports_state_and_never_migrates() {
    let stack = Stack::new().await;
    let server = ResponseServer::start();
    let lambda = stack.start(&[]);
    // The stack asks for version 6 while 7 runs: CloudFormation is rolling back.
    let properties = json!({"MigrationsVersion": "1",
        "FunctionVersion": "arn:aws:lambda:us-east-1:123456789012:function:wishlist-migrator-test:6"});
    let update = cfn_event("Update", "req-rollback", &server.url("/rollback"), properties);
    response(lambda.invoke(update), "rollback Update");
    let answer = cfn_answer(&server, "/rollback");
    assert_eq!(answer["Status"], "SUCCESS", "a rollback must not fail the stack");
    assert!(answer["Reason"].as_str().unwrap().contains("rollback"), "{}", answer["Reason"]);
    assert!(harness::ledger(&stack.db).await.is_empty(), "nothing migrated");
    assert!(!stack.db.table_exists("public.wishlist_items").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_on_a_database_ahead_of_the_build_leaves_it_alone() {
    let stack = Stack::new().await;
    // A newer release applied a third migration; the function still embeds two.
    let newer = harness::copy_fixture("migrations");
    std::fs::write(newer.path().join("0002_newer.sql"), "CREATE TABLE newer_release (id int);\n").unwrap();
    let mut entries = harness::journal(newer.path());
    entries.push(("0002_newer".into(), entries.last().unwrap().1 + 1_000));
    let refs: Vec<(&str, i64)> = entries.iter().map(|(t, w)| (t.as_str(), *w)).collect();
    harness::rewrite_journal(newer.path(), &refs);
    let role_url = pg().url(&stack.role, &stack.password, &stack.db.name);
    harness::run(&mut harness::wm(&role_url, newer.path(), &["migrate"])).expect(0);

    let server = ResponseServer::start();
    let lambda = stack.start(&[]);
    let update = cfn_event("Update", "req-ahead", &server.url("/ahead"), json!({"MigrationsVersion": "old"}));
    response(lambda.invoke(update), "Update");
    let answer = cfn_answer(&server, "/ahead");
    assert_eq!(answer["Status"], "SUCCESS", "{}", answer["Reason"]);
    assert!(
        answer["Reason"].as_str().unwrap().contains("ahead of this build"),
        "{}",
        answer["Reason"]
    );
    assert_eq!(harness::ledger(&stack.db).await.len(), 3, "schema left as it is");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_cloudformation_events_are_answered_failed_and_nothing_runs() {
    let stack = Stack::new().await;
    let server = ResponseServer::start();
    let lambda = stack.start(&[]);
    let mut unknown_type = cfn_event("Create", "req-type", &server.url("/type"), json!({}));
    unknown_type["RequestType"] = json!("Upgrade");
    let dry_run = cfn_event("Create", "req-dryrun", &server.url("/dryrun"), json!({"DryRun": "perhaps"}));
    let mut no_properties = cfn_event("Create", "req-props", &server.url("/props"), json!({}));
    no_properties.as_object_mut().unwrap().remove("ResourceProperties");
    for (event, path, expected) in [
        (unknown_type, "/type", "unknown RequestType \"Upgrade\""),
        (dry_run, "/dryrun", "DryRun must be \"true\" or \"false\", got \"perhaps\""),
        (no_properties, "/props", "no ResourceProperties"),
    ] {
        let returned = response(lambda.invoke(event.clone()), path);
        assert_eq!(returned["Status"], "FAILED", "{path}: {returned}");
        let answer = cfn_answer(&server, path);
        assert_eq!(answer["Status"], "FAILED", "{path}: {answer}");
        assert_eq!(answer["RequestId"], event["RequestId"]);
        assert_eq!(answer["StackId"], event["StackId"]);
        assert_eq!(answer["LogicalResourceId"], "DatabaseMigrations");
        let reason = answer["Reason"].as_str().unwrap();
        assert!(reason.starts_with("InvalidRequest: "), "{path}: {reason}");
        assert!(reason.contains(expected), "{path}: {reason}");
    }
    assert!(harness::ledger(&stack.db).await.is_empty(), "nothing ran");
    assert!(stack.state().await.is_none(), "nothing recorded");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_url_that_is_not_allowed_is_refused_before_anything_runs() {
    let stack = Stack::new().await;
    let server = ResponseServer::start();
    // Without CFN_RESPONSE_URL_ALLOW only https S3 URLs are accepted, not the local stand-in.
    let lambda = stack.start(&[("CFN_RESPONSE_URL_ALLOW", "")]);
    let create = cfn_event("Create", "req-url", &server.url("/steal?X-Amz-Signature=do-not-log-me"), json!({}));
    let (error_type, message) = lambda.invoke(create).expect_error("a loopback ResponseURL");
    assert_eq!(error_type, "InvalidRequest", "{message}");
    assert!(message.contains("CFN_RESPONSE_URL_ALLOW"), "says what to do: {message}");
    // A malformed event is refused the same way: no answer goes to an unchecked URL.
    let mut malformed = cfn_event("Create", "req-url-2", &server.url("/steal2"), json!({}));
    malformed["RequestType"] = json!("Upgrade");
    let (error_type, _) = lambda.invoke(malformed).expect_error("a malformed event");
    assert_eq!(error_type, "InvalidRequest");

    // Allowed prefixes are whole URL parts: 127.0.0.1 does not admit 127.0.0.10 or a look-alike.
    let narrow = stack.start(&[("CFN_RESPONSE_URL_ALLOW", "http://127.0.0.2")]);
    let create = cfn_event("Create", "req-url-3", &server.url("/steal3"), json!({}));
    let (error_type, _) = narrow.invoke(create).expect_error("another host");
    assert_eq!(error_type, "InvalidRequest");

    assert!(server.requests().is_empty(), "no PUT: {:?}", server.requests());
    assert!(harness::ledger(&stack.db).await.is_empty(), "nothing ran");
    let logs = lambda.logs();
    assert!(logs.contains("127.0.0.1"), "the refusal names the host:\n{logs}");
    assert!(!logs.contains("do-not-log-me"), "the signature was logged:\n{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_to_the_database_needs_db_allow_plaintext() {
    let stack = Stack::new().await;
    let server = ResponseServer::start();
    let lambda = stack.start(&[("DB_ALLOW_PLAINTEXT", "")]);
    let (error_type, message) = lambda.invoke(json!({"action": "status"})).expect_error("status");
    assert_eq!(error_type, "ConfigError", "{message}");
    assert!(
        message.contains("DB_SSLMODE") && message.contains("DB_ALLOW_PLAINTEXT"),
        "{message}"
    );
    let (error_type, _) = lambda.invoke(json!({"action": "migrate"})).expect_error("migrate");
    assert_eq!(error_type, "ConfigError");
    let create = cfn_event("Create", "req-plain", &server.url("/plain"), json!({}));
    response(lambda.invoke(create), "Create");
    let answer = cfn_answer(&server, "/plain");
    assert_eq!(answer["Status"], "FAILED");
    assert!(
        answer["Reason"].as_str().unwrap().starts_with("ConfigError: DB_SSLMODE"),
        "{answer}"
    );
    assert!(harness::ledger(&stack.db).await.is_empty(), "nothing ran");

    let allowed = stack.start(&[("DB_ALLOW_PLAINTEXT", "true")]);
    let report = response(allowed.invoke(json!({"action": "migrate"})), "migrate with the allowance");
    assert_eq!(report["status"], "applied", "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_postgres_detail_stays_out_of_every_output() {
    let stack = Stack::new().await;
    let dir = harness::copy_fixture("migrations");
    // The row value is made by the statement, so it appears in the detail and not in the SQL.
    std::fs::write(
        dir.path().join("0002_unique_emails.sql"),
        "CREATE TABLE subscribers (email text UNIQUE);\n--> statement-breakpoint\nINSERT INTO subscribers SELECT 'zebra-' || (7000 + 731) || '@example.com' FROM generate_series(1, 2);\n",
    )
    .unwrap();
    let mut entries = harness::journal(dir.path());
    entries.push(("0002_unique_emails".into(), entries.last().unwrap().1 + 1_000));
    let refs: Vec<(&str, i64)> = entries.iter().map(|(t, w)| (t.as_str(), *w)).collect();
    harness::rewrite_journal(dir.path(), &refs);
    let server = ResponseServer::start();
    let lambda = stack.start(&[("MIGRATIONS_DIR", dir.path().to_str().unwrap())]);
    let create = cfn_event("Create", "req-detail", &server.url("/detail"), json!({}));
    let returned = response(lambda.invoke(create), "Create");
    assert_eq!(returned["Status"], "FAILED");
    let put = server.wait_for_requests(1, Duration::from_secs(30));
    let body = String::from_utf8_lossy(&put[0].body).into_owned();
    let answer = put[0].body_json();
    assert_eq!(answer["Status"], "FAILED");
    let reason = answer["Reason"].as_str().unwrap();
    assert!(reason.contains("0002_unique_emails") && reason.contains("23505"), "{reason}");
    assert!(!body.contains("zebra-7731"), "the row value reached CloudFormation: {body}");
    assert!(!returned.to_string().contains("zebra-7731"), "{returned}");
    let state = stack.state().await.expect("the failed migrate is recorded");
    assert_eq!(state["status"], "failed");
    assert!(!state.to_string().contains("zebra-7731"), "the row value reached SSM: {state}");

    // A direct invocation's error is what Step Functions shows and Lambda logs: the same rule.
    let (error_type, message) = lambda.invoke(json!({"action": "migrate"})).expect_error("migrate");
    assert_eq!(error_type, "MigrationFailed");
    assert!(message.contains("23505"), "{message}");
    assert!(!message.contains("zebra-7731"), "the row value reached Step Functions: {message}");
    assert!(
        !lambda.logs().contains("zebra-7731"),
        "the row value reached CloudWatch:\n{}",
        lambda.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_two_concurrent_invocations_apply_each_migration_once() {
    // 32 warm containers answering one release's invocations at the same moment.
    let stack = Stack::new().await;
    let functions: Vec<LambdaProcess> = (0..32).map(|_| stack.start(&[])).collect();
    let results = invoke_all(&functions, &json!({"action": "migrate"}));
    let mut applied = Vec::new();
    for result in results {
        let report = result.expect_response("every run gets the lock in the end");
        assert!(matches!(report["status"].as_str(), Some("applied" | "upToDate")), "{report}");
        applied.extend(tags(&report["applied"]));
    }
    applied.sort();
    assert_eq!(applied, [TAG_0000, TAG_0001], "each migration applied by exactly one invocation");
    assert_eq!(ledger(&stack.db).await.len(), 2, "no duplicate ledger rows");
    assert_all_released(&stack.db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_warm_invocations_leak_neither_memory_nor_connections() {
    let stack = Stack::new().await;
    let function = stack.start(&[]);
    function.invoke(json!({"action": "migrate"})).expect_response("first migrate");
    // Warm up: allocator pools, the TLS and SDK clients, the secret cache.
    for _ in 0..20 {
        function.invoke(json!({"action": "status"})).expect_response("warm-up status");
    }
    let warm = function.rss_kib();
    for i in 0..200 {
        let event = if i % 2 == 0 {
            json!({"action": "status"})
        } else {
            json!({"action": "migrate"})
        };
        let report = function.invoke(event).expect_response("warm invocation");
        assert_eq!(report["current"], TAG_0001, "{report}");
    }
    let after = function.rss_kib();
    eprintln!("RSS after warm-up {warm} KiB, after 200 more invocations {after} KiB");
    // A leak of even 40 KiB per invocation would show as 8 MiB here.
    assert!(
        after < warm + 8 * 1024,
        "RSS grew from {warm} KiB to {after} KiB over 200 invocations"
    );
    assert!(
        eventually(|| async { migrator_sessions(&stack.db).await == 0 }).await,
        "pg_stat_activity back to baseline"
    );
    assert_eq!(stack.db.advisory_locks().await, 0);
    stack.assert_no_password(&function);
}
