//! The Lambda function when what it depends on misbehaves: a ResponseURL that refuses, redirects
//! or never answers; Secrets Manager unreachable, throttled or holding a malformed secret; many
//! containers at once on a database that is already up to date.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::lambda_process::LambdaProcess;
use crate::harness::response_url::{PutAnswer, ResponseServer};
use crate::harness::runtime_api::Invocation;
use crate::harness::stack::{assert_all_released, aws, cfn_event, invoke_all, response, Stack};
use crate::harness::throttle::Throttle;
use crate::harness::{history, ledger, TAG_0001};

/// The part of a pre-signed URL that works as a credential: it must never be logged.
const SIGNATURE: &str = "X-Amz-Signature=5e1f0c0ffee";

fn presigned(server: &ResponseServer, path: &str) -> String {
    server.url(&format!("{path}?X-Amz-Expires=7200&{SIGNATURE}"))
}

/// A Create whose answer cannot be delivered: the migration itself still ran and is recorded.
async fn assert_migrated_but_not_delivered(stack: &Stack, lambda: &LambdaProcess, invocation: Invocation, expect: &str) {
    let (error_type, message) = invocation.expect_error("an undeliverable answer is a function error, so Lambda retries");
    assert_eq!(error_type, "ResponseNotDelivered", "{message}");
    assert!(message.contains(expect), "says why: {message}");
    assert_eq!(ledger(&stack.db).await.len(), 2, "the migration ran before the answer failed");
    let logs = lambda.logs();
    assert!(
        !logs.contains(SIGNATURE) && !message.contains(SIGNATURE),
        "the pre-signed URL's signature was logged"
    );
    stack.assert_no_password(lambda);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_url_answering_403_is_not_retried() {
    let stack = Stack::new().await;
    let server = ResponseServer::start();
    server.answer_puts(PutAnswer::Forbidden);
    let lambda = stack.start(&[]);
    let invocation = lambda.invoke(cfn_event("Create", "req-403", &presigned(&server, "/expired"), json!({})));
    assert_migrated_but_not_delivered(&stack, &lambda, invocation, "HTTP 403").await;
    let puts = server.requests();
    assert_eq!(puts.len(), 1, "an expired URL stays expired: one PUT, no retry: {puts:?}");

    // Lambda's own retry of the invocation answers the same without migrating again.
    let runs = history(&stack.db).await.len();
    server.answer_puts(PutAnswer::Ok);
    let again = response(
        lambda.invoke(cfn_event("Create", "req-403", &presigned(&server, "/expired"), json!({}))),
        "the retried invocation",
    );
    assert_eq!(again["Status"], "SUCCESS");
    assert_eq!(history(&stack.db).await.len(), runs, "the retry did not migrate twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_from_the_response_url_is_never_followed() {
    let stack = Stack::new().await;
    let server = ResponseServer::start();
    let elsewhere = ResponseServer::start();
    server.answer_puts(PutAnswer::Redirect(elsewhere.url("/internal-service")));
    let lambda = stack.start(&[]);
    let invocation = lambda.invoke(cfn_event("Create", "req-307", &presigned(&server, "/redirect"), json!({})));
    assert_migrated_but_not_delivered(&stack, &lambda, invocation, "redirect").await;
    assert_eq!(server.requests().len(), 1, "a redirect is an answer, not retried");
    assert!(
        elsewhere.requests().is_empty(),
        "the redirect target was reached: {:?}",
        elsewhere.requests()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_url_that_never_answers_ends_before_the_deadline() {
    let stack = Stack::new().await;
    let server = ResponseServer::start();
    server.answer_puts(PutAnswer::Never);
    let lambda = stack.start(&[("DEADLINE_MARGIN_MS", "3000")]);
    let deadline = Duration::from_secs(12);
    // Answered before the deadline: the Runtime API emulator, like the service, turns a late
    // answer into Sandbox.Timedout.
    let invocation = lambda.invoke_with_deadline(cfn_event("Create", "req-hang", &presigned(&server, "/hang"), json!({})), deadline);
    assert_migrated_but_not_delivered(&stack, &lambda, invocation, "attempt").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_secrets_manager_fails_promptly_and_names_the_secret() {
    let stack = Stack::new().await;
    // Only Secrets Manager points at a closed port; SSM stays on moto.
    let lambda = stack.start(&[("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:9")]);
    let started = Instant::now();
    let (error_type, message) = lambda.invoke(json!({"action": "migrate"})).expect_error("migrate");
    assert!(started.elapsed() < Duration::from_secs(20), "no hang: {:?}", started.elapsed());
    assert_eq!(error_type, "SecretUnavailable", "{message}");
    assert!(message.contains(&stack.secret_id), "names the secret: {message}");
    assert!(ledger(&stack.db).await.is_empty(), "nothing ran without credentials");

    let server = ResponseServer::start();
    let answered = response(
        lambda.invoke(cfn_event("Create", "req-nosm", &server.url("/nosm"), json!({}))),
        "Create without Secrets Manager",
    );
    assert_eq!(answered["Status"], "FAILED");
    let reason = server.wait_for_requests(1, Duration::from_secs(30))[0].body_json()["Reason"].to_string();
    assert!(reason.contains("SecretUnavailable"), "{reason}");
    stack.assert_no_password(&lambda);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_secrets_manager_is_retried_then_reported() {
    let stack = Stack::new().await;
    // Two throttled answers, then moto: the SDK's retry absorbs them.
    let brief = Throttle::start(2);
    let lambda = stack.start(&[("AWS_ENDPOINT_URL_SECRETS_MANAGER", &brief.endpoint_url())]);
    let migrated = response(lambda.invoke(json!({"action": "migrate"})), "migrate through two throttled answers");
    assert_eq!(migrated["status"], "applied");
    assert_eq!(brief.counts(), (2, 1), "two throttled, then the third attempt went through");

    // Throttled for good: a typed error, promptly, and nothing ran.
    let other = Stack::new().await;
    let always = Throttle::start(usize::MAX);
    let lambda = other.start(&[("AWS_ENDPOINT_URL_SECRETS_MANAGER", &always.endpoint_url())]);
    let started = Instant::now();
    let (error_type, message) = lambda
        .invoke(json!({"action": "migrate"}))
        .expect_error("migrate, always throttled");
    assert!(started.elapsed() < Duration::from_secs(30), "no hang: {:?}", started.elapsed());
    assert_eq!(error_type, "SecretUnavailable", "{message}");
    assert!(
        message.contains("ThrottlingException") || message.contains("Rate exceeded"),
        "{message}"
    );
    assert!(always.counts().0 >= 2, "the SDK retried before giving up: {:?}", always.counts());
    assert!(ledger(&other.db).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_secret_is_a_typed_error_that_never_echoes_it() {
    let stack = Stack::new().await;
    let client = aws_sdk_secretsmanager::Client::new(&aws().await);
    // A URL pasted instead of the RDS JSON (its password must not be echoed), JSON without a
    // password, and a port that is not a port.
    let cases = [
        (
            format!("postgres://{}:{}@127.0.0.1/db", stack.role, stack.password),
            "not a JSON object",
        ),
        (json!({"username": stack.role, "host": "127.0.0.1"}).to_string(), "\"password\""),
        (
            json!({"username": stack.role, "password": stack.password, "host": "127.0.0.1", "port": "fivefour"}).to_string(),
            "\"port\"",
        ),
    ];
    for (i, (secret, expect)) in cases.iter().enumerate() {
        let id = format!("{}-malformed-{i}", stack.secret_id);
        client
            .create_secret()
            .name(&id)
            .secret_string(secret)
            .send()
            .await
            .expect("seed the secret");
        let lambda = stack.start(&[("DB_SECRET_ID", &id)]);
        let (error_type, message) = lambda.invoke(json!({"action": "status"})).expect_error("status");
        assert_eq!(error_type, "SecretUnavailable", "case {i}: {message}");
        assert!(message.contains(&id) && message.contains(expect), "case {i}: {message}");
        assert!(!message.contains(&stack.password), "case {i}: the secret's password was echoed");
        stack.assert_no_password(&lambda);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_two_concurrent_invocations_on_an_up_to_date_database_change_nothing() {
    let stack = Stack::new().await;
    let first = stack.start(&[]);
    response(first.invoke(json!({"action": "migrate"})), "bring the database up to date");
    let runs = history(&stack.db).await.len();
    let functions: Vec<LambdaProcess> = (0..32).map(|_| stack.start(&[])).collect();
    let results = invoke_all(&functions, &json!({"action": "migrate"}));
    for result in results {
        let report = result.expect_response("an up-to-date migrate");
        assert_eq!(report["status"], "upToDate", "{report}");
        assert_eq!(report["current"], TAG_0001);
    }
    assert_eq!(ledger(&stack.db).await.len(), 2, "no ledger row added");
    assert_eq!(history(&stack.db).await.len(), runs, "nothing recorded as applied");
    assert_all_released(&stack.db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_events_are_typed_errors_and_the_container_keeps_serving() {
    let stack = Stack::new().await;
    let server = ResponseServer::start();
    let lambda = stack.start(&[]);
    let padding = "x".repeat(1024 * 1024);
    let mut no_stack_id = cfn_event("Create", "req-nostack", &server.url("/nostack"), json!({}));
    no_stack_id.as_object_mut().unwrap().remove("StackId");
    let cases = [
        (json!(null), "JSON object"),
        (json!([]), "JSON object"),
        (json!({"action": "migrate", "target": padding}), "target"),
        (json!({"action": padding}), "action"),
        (no_stack_id, "StackId"),
    ];
    for (event, needle) in cases {
        let shown: String = event.to_string().chars().take(80).collect();
        let (error_type, message) = lambda.invoke(event).expect_error(&shown);
        assert_eq!(error_type, "InvalidRequest", "{shown}: {message}");
        assert!(message.contains(needle), "{shown}: {message}");
        assert!(
            message.len() < 2048,
            "{shown}: the error echoes the event back ({} bytes)",
            message.len()
        );
    }
    // Not JSON at all: the runtime client refuses it before the handler; the container lives on.
    let (error_type, _) = lambda
        .invoke_bytes(b"{not json".to_vec(), Duration::from_secs(30))
        .expect_error("bytes");
    assert!(!error_type.is_empty());
    assert!(
        server.requests().is_empty(),
        "an event CloudFormation did not send is never answered"
    );
    assert!(ledger(&stack.db).await.is_empty(), "nothing ran");
    let status = response(lambda.invoke(json!({"action": "status"})), "the same container afterwards");
    assert_eq!(status["status"], "pending");
}

/// An endpoint that accepts the connection and never answers (a VPC endpoint behind the wrong
/// security group, a stuck proxy): each AWS call gives up after its operation timeout instead of
/// holding the run until the invocation's deadline.
#[tokio::test(flavor = "multi_thread")]
async fn a_secrets_manager_that_never_answers_fails_within_the_operation_timeout() {
    let endpoint = silent_endpoint();
    let stack = Stack::new().await;
    let lambda = stack.start(&[("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint.as_str())]);
    let started = Instant::now();
    let (error_type, message) = lambda
        .invoke_with_deadline(json!({"action": "migrate"}), Duration::from_secs(120))
        .expect_error("migrate");
    let took = started.elapsed();
    assert_eq!(error_type, "SecretUnavailable", "{message}");
    assert!(took < Duration::from_secs(30), "waited {took:?} on an endpoint that never answers");
    assert!(ledger(&stack.db).await.is_empty(), "nothing ran without credentials");
}

/// An address that accepts connections and never answers on them (for two minutes).
fn silent_endpoint() -> String {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().take(32) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(120));
    });
    endpoint
}

/// The redelivery check of a CloudFormation request reads SSM; it runs under the deadline guard
/// with the migration, so CloudFormation is answered in time even when SSM never answers.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_ssm_still_leaves_cloudformation_answered_before_the_deadline() {
    let endpoint = silent_endpoint();
    let stack = Stack::new().await;
    let lambda = stack.start(&[("AWS_ENDPOINT_URL_SSM", endpoint.as_str())]);
    let server = ResponseServer::start();
    let create = cfn_event("Create", "req-silent-ssm", &server.url("/silent"), json!({}));
    // 9 s: less the 5 s margin and the 3 s kept for the answer, 1 s of work, then the guard.
    let returned = response(lambda.invoke_with_deadline(create, Duration::from_secs(9)), "Create");
    // Answered before the deadline: the Runtime API emulator, like the service, turns a late
    // answer into Sandbox.Timedout.
    assert_eq!(returned["Status"], "FAILED", "{returned}");
    let answer = server.wait_for_requests(1, Duration::from_secs(5))[0].body_json();
    assert!(answer["Reason"].as_str().unwrap().starts_with("DeadlineExceeded"), "{answer}");
}
