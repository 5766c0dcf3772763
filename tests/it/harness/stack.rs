//! A Lambda stack for the tests: a database, a migration role whose credentials live in a
//! Secrets Manager secret (moto), the SSM prefix its state goes to, and the function's
//! environment; plus the CloudFormation events and answers the custom-resource tests share.

use std::time::Duration;

use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
use serde_json::{json, Value};

use super::lambda_process::LambdaProcess;
use super::response_url::{RecordedRequest, ResponseServer};
use super::runtime_api::Invocation;
use super::{moto, pg, TestDb};

/// A database, a migration role whose credentials live in a Secrets Manager secret, and the
/// environment the function needs to find them.
pub struct Stack {
    pub db: TestDb,
    pub role: String,
    pub password: String,
    pub secret_id: String,
    pub ssm_prefix: String,
}

pub async fn aws() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto().endpoint_url())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

pub fn secret_json(role: &str, password: &str, db: &TestDb) -> String {
    // Port as a string on purpose: the RDS format allows both.
    json!({"engine": "postgres", "username": role, "password": password, "host": "127.0.0.1",
           "port": pg().port().to_string(), "dbname": db.name, "dbInstanceIdentifier": "ignored"})
    .to_string()
}

impl Stack {
    pub async fn new() -> Self {
        let db = pg().fresh_db().await;
        let password = super::secret_password();
        db.create_role(
            "migrator",
            &password,
            &["GRANT CREATE ON DATABASE {db} TO {role}", "GRANT CREATE ON SCHEMA public TO {role}"],
        )
        .await;
        let role = db.role_name("migrator");
        let secret_id = format!("wishlist/{}/database", db.name);
        aws_sdk_secretsmanager::Client::new(&aws().await)
            .create_secret()
            .name(&secret_id)
            .secret_string(secret_json(&role, &password, &db))
            .send()
            .await
            .expect("seed the secret");
        let ssm_prefix = format!("/wishlist/{}/migrations", db.name);
        Stack {
            db,
            role,
            password,
            secret_id,
            ssm_prefix,
        }
    }

    pub fn env<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, String)> {
        let mut env = vec![
            ("DB_SECRET_ID", self.secret_id.clone()),
            ("DB_SSLMODE", "disable".to_string()),
            // The harness's PostgreSQL is plaintext on the loopback.
            ("DB_ALLOW_PLAINTEXT", "true".to_string()),
            ("APP_ENV", "test".to_string()),
            ("SSM_PREFIX", self.ssm_prefix.clone()),
            ("AWS_ENDPOINT_URL", moto().endpoint_url()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "7".to_string()),
            ("LOCK_WAIT_SECONDS", "5".to_string()),
        ];
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k, v.to_string()));
        }
        env
    }

    pub fn start(&self, extra: &[(&str, &str)]) -> LambdaProcess {
        let env = self.env(extra);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        LambdaProcess::start(&pairs)
    }

    pub async fn state(&self) -> Option<Value> {
        let name = format!("{}/state", self.ssm_prefix);
        let out = aws_sdk_ssm::Client::new(&aws().await)
            .get_parameter()
            .name(&name)
            .send()
            .await
            .ok()?;
        Some(serde_json::from_str(out.parameter()?.value()?).expect("state is JSON"))
    }

    pub fn assert_no_password(&self, lambda: &LambdaProcess) {
        let logs = lambda.logs();
        assert!(
            !logs.contains(&self.password),
            "the database password appeared in the function's logs"
        );
        assert!(!logs.contains(pg().admin_password()));
    }
}

pub fn cfn_event(kind: &str, request_id: &str, url: &str, properties: Value) -> Value {
    let mut event = json!({
        "RequestType": kind,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:wishlist-migrator-test:live",
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/wishlist-test/0a1b2c3d",
        "RequestId": request_id,
        "LogicalResourceId": "DatabaseMigrations",
        "ResourceType": "Custom::WishlistMigration",
        "ResourceProperties": properties,
    });
    if kind != "Create" {
        event["PhysicalResourceId"] = json!("wishlist-migrator-test-previous");
        event["OldResourceProperties"] = json!({"MigrationsVersion": "0"});
    }
    event
}

/// The one PUT CloudFormation would receive for this request, checked for the protocol's rules.
pub fn cfn_answer(server: &ResponseServer, path: &str) -> Value {
    let puts: Vec<RecordedRequest> = server
        .wait_for_requests(1, Duration::from_secs(30))
        .into_iter()
        .filter(|r| r.path == path)
        .collect();
    assert_eq!(puts.len(), 1, "exactly one answer per request: {puts:?}");
    let put = &puts[0];
    assert_eq!(put.method, "PUT");
    // The pre-signed URL's signature covers an empty Content-Type: present and empty, or S3 rejects it.
    assert_eq!(put.header_all("content-type"), vec![""], "Content-Type must be sent empty");
    assert!(put.body.len() <= 4096, "CloudFormation's body limit");
    put.body_json()
}

pub fn response(invocation: Invocation, context: &str) -> Value {
    invocation.expect_response(context)
}

/// The project's migrations plus one that outlasts any short deadline.
pub fn slow_history() -> tempfile::TempDir {
    let dir = super::copy_fixture("migrations");
    std::fs::write(
        dir.path().join("0002_slow.sql"),
        "CREATE TABLE slow_marker (id int);\n--> statement-breakpoint\nSELECT pg_sleep(60);\n",
    )
    .unwrap();
    let mut entries = super::journal(dir.path());
    entries.push(("0002_slow".into(), entries.last().unwrap().1 + 1_000));
    let refs: Vec<(&str, i64)> = entries.iter().map(|(t, w)| (t.as_str(), *w)).collect();
    super::rewrite_journal(dir.path(), &refs);
    dir
}

pub async fn assert_nothing_kept(db: &TestDb) {
    assert!(super::ledger(db).await.is_empty(), "no ledger row");
    assert!(!db.table_exists("public.wishlist_items").await, "the one transaction rolled back");
    assert!(!db.table_exists("public.slow_marker").await);
    assert!(
        super::eventually(|| async { db.advisory_locks().await == 0 }).await,
        "the lock is released"
    );
}

/// The same event to every function at the same moment, as a release's invocations arrive.
pub fn invoke_all(functions: &[LambdaProcess], event: &Value) -> Vec<Invocation> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = functions.iter().map(|f| scope.spawn(|| f.invoke(event.clone()))).collect();
        handles.into_iter().map(|h| h.join().expect("invocation thread")).collect()
    })
}

/// After many invocations at once: no advisory lock and no connection of the tool left.
pub async fn assert_all_released(db: &TestDb) {
    assert_eq!(db.advisory_locks().await, 0);
    assert!(
        super::eventually(|| async { super::migrator_sessions(db).await == 0 }).await,
        "every connection closed"
    );
}
