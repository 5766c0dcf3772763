//! The test harness's Lambda Runtime API emulator and ResponseURL stand-in, checked
//! with a raw HTTP client (so a harness bug is not mistaken for a function bug),
//! then a smoke run of the real binary under them. The function's behaviour is
//! tested in depth elsewhere; these need neither PostgreSQL nor moto.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::harness::lambda_process::LambdaProcess;
use crate::harness::response_url::ResponseServer;
use crate::harness::runtime_api::{Invocation, RuntimeApi, FUNCTION_ARN};

/// One HTTP/1.1 exchange on a kept-alive connection: (status, lowercased headers, body).
fn exchange(
    reader: &mut BufReader<TcpStream>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && *v == "chunked");
    let mut out = Vec::new();
    if chunked {
        head.push_str("\r\n");
        out.extend_from_slice(head.as_bytes());
        // Two chunks, to exercise reassembly.
        let (a, b) = body.split_at(body.len() / 2);
        for part in [a, b] {
            out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body);
    }
    reader.get_mut().write_all(&out).unwrap();

    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

fn connect(port: u16) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    BufReader::new(stream)
}

#[test]
fn runtime_api_serves_next_and_records_response_and_error() {
    let api = RuntimeApi::start();
    let port = api.port();
    // A fake function: polls `next` on one kept-alive connection, answers the
    // first event with a response and the second with an error (chunked body).
    let function = std::thread::spawn(move || {
        let mut conn = connect(port);
        let mut seen = Vec::new();
        for round in 0..2 {
            let (status, headers, body) = exchange(&mut conn, "GET", "/2018-06-01/runtime/invocation/next", &[], b"");
            assert_eq!(status, 200);
            let id = header(&headers, "lambda-runtime-aws-request-id").to_string();
            let deadline: u64 = header(&headers, "lambda-runtime-deadline-ms").parse().unwrap();
            assert_eq!(header(&headers, "lambda-runtime-invoked-function-arn"), FUNCTION_ARN);
            assert!(header(&headers, "lambda-runtime-trace-id").starts_with("Root=1-"));
            let event: Value = serde_json::from_slice(&body).unwrap();
            seen.push((event.clone(), deadline));
            if round == 0 {
                let reply = serde_json::to_vec(&json!({"echo": event})).unwrap();
                let path = format!("/2018-06-01/runtime/invocation/{id}/response");
                let (status, _, _) = exchange(&mut conn, "POST", &path, &[("Content-Type", "application/json")], &reply);
                assert_eq!(status, 202);
                // A second answer for the same id is a protocol error, as with the service.
                let (status, _, _) = exchange(&mut conn, "POST", &path, &[], &reply);
                assert_eq!(status, 400);
            } else {
                let err = br#"{"errorType":"MigrationLockBusy","errorMessage":"held by pid 42"}"#;
                let path = format!("/2018-06-01/runtime/invocation/{id}/error");
                let (status, _, _) = exchange(
                    &mut conn,
                    "POST",
                    &path,
                    &[
                        ("Lambda-Runtime-Function-Error-Type", "MigrationLockBusy"),
                        ("Transfer-Encoding", "chunked"),
                    ],
                    err,
                );
                assert_eq!(status, 202);
            }
        }
        seen
    });

    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let first = api.invoke_raw(
        br#"{"action":"status"}"#.to_vec(),
        Duration::from_secs(30),
        Duration::from_secs(30),
        || false,
    );
    assert_eq!(first, Some(Invocation::Response(json!({"echo": {"action": "status"}}))));
    let second = api.invoke_raw(
        br#"{"action":"migrate"}"#.to_vec(),
        Duration::from_secs(5),
        Duration::from_secs(30),
        || false,
    );
    assert_eq!(
        second,
        Some(Invocation::Error {
            error_type: "MigrationLockBusy".into(),
            error_message: "held by pid 42".into()
        })
    );
    let seen = function.join().expect("fake function");
    assert_eq!(seen[1].0, json!({"action": "migrate"}));
    // Deadlines are epoch milliseconds, counted from delivery.
    assert!(seen[0].1 >= now_ms + 29_000 && seen[0].1 <= now_ms + 60_000, "{seen:?}");
    assert!(seen[1].1 >= now_ms + 4_000 && seen[1].1 <= now_ms + 35_000, "{seen:?}");
    assert_eq!(api.protocol_errors().len(), 1, "{:?}", api.protocol_errors());
    assert_eq!(api.queued(), 0);
}

#[test]
fn runtime_api_records_init_error_and_gives_up_waiting() {
    let api = RuntimeApi::start();
    let mut conn = connect(api.port());
    let body = br#"{"errorType":"ConfigError","errorMessage":"APP_ENV: bad"}"#;
    let (status, _, _) = exchange(
        &mut conn,
        "POST",
        "/2018-06-01/runtime/init/error",
        &[("Lambda-Runtime-Function-Error-Type", "ConfigError")],
        body,
    );
    assert_eq!(status, 202);
    assert_eq!(api.init_error().unwrap()["errorType"], "ConfigError");
    // Nobody will answer after an init error: invoke returns at once, and the event is withdrawn.
    assert_eq!(
        api.invoke_raw(b"{}".to_vec(), Duration::from_secs(60), Duration::from_secs(60), || false),
        None
    );
    assert_eq!(api.queued(), 0);
    let (status, _, _) = exchange(&mut conn, "GET", "/2018-06-01/runtime/unknown", &[], b"");
    assert_eq!(status, 404);
}

#[test]
fn response_server_records_empty_headers_and_fails_puts_on_request() {
    let server = ResponseServer::start();
    server.fail_next_puts(1);
    let url = server.url("/cfn/stack%7CSchemaMigration%7Creq?X-Amz-Signature=abc");
    let path = url
        .strip_prefix(&format!("http://127.0.0.1:{}", server.port()))
        .unwrap()
        .to_string();
    let mut conn = connect(server.port());
    let body = br#"{"Status":"SUCCESS"}"#;
    let (first, _, _) = exchange(&mut conn, "PUT", &path, &[("Content-Type", "")], body);
    let (second, _, _) = exchange(&mut conn, "PUT", &path, &[("Content-Type", "")], body);
    assert_eq!((first, second), (500, 200));
    let requests = server.wait_for_requests(2, Duration::from_secs(5));
    assert_eq!(requests.len(), 2);
    for (r, status) in requests.iter().zip([500, 200]) {
        assert_eq!(r.method, "PUT");
        assert_eq!(r.path, "/cfn/stack%7CSchemaMigration%7Creq?X-Amz-Signature=abc");
        assert_eq!(r.header("Content-Type"), Some(""), "{:?}", r.headers);
        assert_eq!(r.header("content-length"), Some(body.len().to_string().as_str()));
        assert_eq!(r.body_json()["Status"], "SUCCESS");
        assert_eq!(r.status, status);
    }
}

/// The real binary under the emulator: an invalid request comes back as a function
/// error with a matchable errorType, and a CloudFormation Delete is answered on the
/// ResponseURL without touching the (unreachable) database.
#[test]
fn real_function_answers_under_the_emulator() {
    let responses = ResponseServer::start();
    let function = LambdaProcess::start(&[
        ("APP_ENV", "test"),
        // Nothing listens on port 1: any attempt to use the database fails fast.
        ("DATABASE_URL", "postgres://migrator:not-used@127.0.0.1:1/wishlist"),
        ("DB_SSLMODE", "disable"),
        ("DB_ALLOW_PLAINTEXT", "true"),
    ]);

    let (error_type, message) = function.invoke(json!({"action": "explode"})).expect_error(&function.logs_tail(50));
    assert_eq!(error_type, "InvalidRequest", "{message}");
    assert!(message.contains("migrate"), "the message lists the valid actions: {message}");

    let stack_id = "arn:aws:cloudformation:us-east-1:123456789012:stack/wishlist-migrator-test/00000000-0000-0000-0000-000000000000";
    let delete = json!({
        "RequestType": "Delete",
        "ServiceToken": FUNCTION_ARN,
        "ResponseURL": responses.url("/cfn-response?X-Amz-Signature=0123"),
        "StackId": stack_id,
        "RequestId": "5d2b1c8e-0000-4000-8000-000000000001",
        "LogicalResourceId": "SchemaMigration",
        "PhysicalResourceId": "wishlist-migrator-test-000000000000",
        "ResourceType": "Custom::WishlistMigration",
        "ResourceProperties": {"ServiceToken": FUNCTION_ARN, "MigrationsVersion": "1"}
    });
    function.invoke(delete).expect_response(&function.logs_tail(50));
    let puts: Vec<_> = responses
        .wait_for_requests(1, Duration::from_secs(10))
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(puts[0].path, "/cfn-response?X-Amz-Signature=0123");
    // The pre-signed URL's signature covers an empty Content-Type.
    assert_eq!(puts[0].header("content-type"), Some(""), "{:?}", puts[0].headers);
    let answer = puts[0].body_json();
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    assert_eq!(answer["RequestId"], "5d2b1c8e-0000-4000-8000-000000000001");
    assert_eq!(answer["StackId"], stack_id);
    assert_eq!(answer["LogicalResourceId"], "SchemaMigration");

    assert!(function.exited().is_none(), "the function must keep polling");
    assert!(function.protocol_errors().is_empty(), "{:?}", function.protocol_errors());
    assert!(!function.logs().contains("not-used"), "password in logs:\n{}", function.logs());
}

/// The shipped `events/*.json` are accepted as they are (only the ResponseURL is
/// pointed at a local listener): direct requests get past parsing to the database,
/// and every CloudFormation event is answered on its ResponseURL.
#[test]
fn shipped_events_are_accepted_by_the_function() {
    let responses = ResponseServer::start();
    let function = LambdaProcess::start(&[
        ("APP_ENV", "test"),
        ("DATABASE_URL", "postgres://migrator:not-used@127.0.0.1:1/wishlist"),
        ("DB_SSLMODE", "disable"),
        ("DB_ALLOW_PLAINTEXT", "true"),
    ]);
    let read = |name: &str| -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events").join(name);
        serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
    };

    for name in ["status.json", "plan.json", "migrate.json", "migrate-dry-run.json"] {
        let (error_type, message) = function.invoke(read(name)).expect_error(&function.logs_tail(50));
        assert_eq!(error_type, "ConnectionFailed", "{name}: {message}");
    }

    for (i, (name, status)) in [
        ("cfn-create.json", "FAILED"),
        ("cfn-update.json", "FAILED"),
        ("cfn-delete.json", "SUCCESS"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut event = read(name);
        assert_eq!(event["ResourceType"], "Custom::WishlistMigration");
        event["ResponseURL"] = Value::String(responses.url(&format!("/{name}?X-Amz-Signature=0")));
        function.invoke(event.clone()).expect_response(&function.logs_tail(50));
        let requests = responses.wait_for_requests(i + 1, Duration::from_secs(10));
        let put = requests.last().unwrap();
        assert_eq!(put.path, format!("/{name}?X-Amz-Signature=0"));
        let answer = put.body_json();
        assert_eq!(answer["Status"], status, "{name}: {answer}");
        assert_eq!(answer["RequestId"], event["RequestId"]);
        if status == "FAILED" {
            assert!(
                answer["Reason"].as_str().is_some_and(|r| r.contains("ConnectionFailed")),
                "{name}: {answer}"
            );
        }
    }
    assert!(function.protocol_errors().is_empty(), "{:?}", function.protocol_errors());
}
