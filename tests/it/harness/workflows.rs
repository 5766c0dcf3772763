//! The template's state machines executed, not only validated: moto's States Language
//! interpreter (in-process in `sfn_moto.py`, beside this file) runs them, and every Lambda task
//! is served by the real `wishlist-migrator-lambda` through the Runtime API emulator
//! (`lambda_process`): moto POSTs each invoke's payload here, a free function process runs it,
//! and its answer (or its errorType) goes back as Lambda's.

use std::collections::VecDeque;
use std::path::Path;
use std::process::ChildStdin;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::http::{respond, serve};
use super::lambda_process::LambdaProcess;
use super::runtime_api::Invocation;
use super::{pick_port, spawn_with_lifeline, tail_file, MANIFEST_DIR, STARTUP_TIMEOUT};

/// The bucket the fleet workflow reads its manifests from and writes its results to.
pub const BUCKET: &str = "wishlist-fleet-test";

struct Pool {
    free: Mutex<VecDeque<Arc<LambdaProcess>>>,
    returned: Condvar,
    /// Every payload the state machines sent, in the order the function received them.
    invoked: Mutex<Vec<Value>>,
    /// Each payload with the function's answer, in the order they were answered.
    answered: Mutex<Vec<(Value, Value)>>,
    /// How long each invocation has before its deadline.
    deadline: Mutex<Duration>,
}

/// A moto of its own executing state machines, and `functions` function processes serving
/// their Lambda tasks (as many as the workflow may run at once: Lambda's reserved concurrency).
pub struct Workflows {
    port: u16,
    pool: Arc<Pool>,
    http: reqwest::Client,
    _lifeline: ChildStdin,
}

impl Workflows {
    /// `env(endpoint)`: the functions' environment, given this moto's endpoint URL.
    pub fn start(functions: usize, env: impl Fn(&str) -> Vec<(String, String)>) -> Self {
        let port = pick_port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let env = env(&endpoint);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let pool = Arc::new(Pool {
            free: Mutex::new((0..functions).map(|_| Arc::new(LambdaProcess::start(&pairs))).collect()),
            returned: Condvar::new(),
            invoked: Mutex::new(Vec::new()),
            answered: Mutex::new(Vec::new()),
            deadline: Mutex::new(Duration::from_secs(60)),
        });
        let bridge = pool.clone();
        let invoke_port = serve(
            move |request, stream| {
                let payload: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
                let answer = bridge.invoke(payload);
                respond(stream, 200, &[("Content-Type", "application/json")], answer.to_string().as_bytes())?;
                Ok(true)
            },
            || false,
        );
        const WRAPPER: &str = r#"
log=$1; shift
"$@" </dev/null >"$log" 2>&1 &
pid=$!
read _
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -f "$log"
"#;
        let log = std::env::temp_dir().join(format!("wm-sfn-{}-{port}.log", std::process::id()));
        let python = Path::new(MANIFEST_DIR).join(".venv/bin/python");
        let script = Path::new(MANIFEST_DIR).join("tests/it/harness/sfn_moto.py");
        let args = [
            log.display().to_string(),
            python.display().to_string(),
            script.display().to_string(),
            port.to_string(),
            format!("http://127.0.0.1:{invoke_port}/invoke"),
        ];
        let lifeline = spawn_with_lifeline(WRAPPER, &args).expect("start moto for the workflows");
        let until = Instant::now() + STARTUP_TIMEOUT * 2;
        while !std::fs::read_to_string(&log).unwrap_or_default().contains("ready") {
            assert!(
                Instant::now() < until,
                "moto (sfn_moto.py) did not start on port {port}:\n{}",
                tail_file(&log, 30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Workflows {
            port,
            pool,
            http: reqwest::Client::new(),
            _lifeline: lifeline,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Each invocation from now on reaches its deadline `deadline` after it starts (60 s unless
    /// set), as a shorter Lambda timeout would.
    pub fn set_deadline(&self, deadline: Duration) {
        *self.pool.deadline.lock().unwrap() = deadline;
    }

    /// The payloads the functions received so far, in order.
    pub fn invoked(&self) -> Vec<Value> {
        self.pool.invoked.lock().unwrap().clone()
    }

    /// Each payload with its answer (`{"response"}` or `{"errorType", "errorMessage"}`).
    pub fn answered(&self) -> Vec<(Value, Value)> {
        self.pool.answered.lock().unwrap().clone()
    }

    /// A Step Functions API call (JSON protocol).
    pub async fn sfn(&self, operation: &str, body: Value) -> Value {
        let response = self
            .http
            .post(self.endpoint())
            .header("Content-Type", "application/x-amz-json-1.0")
            .header("X-Amz-Target", format!("AWSStepFunctions.{operation}"))
            .header("Authorization", auth("states"))
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{operation}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{operation}: {status} {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{operation}: {e}: {text}"))
    }

    pub async fn put_object(&self, key: &str, body: &str) {
        let url = format!("{}/{BUCKET}", self.endpoint());
        let created = self.http.put(&url).header("Authorization", auth("s3")).send().await.unwrap();
        assert!(created.status().is_success() || created.status().as_u16() == 409, "{created:?}");
        let put = self
            .http
            .put(format!("{url}/{key}"))
            .header("Authorization", auth("s3"))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success(), "PUT {key}: {}", put.status());
    }

    pub async fn get_object(&self, key: &str) -> Value {
        let got = self
            .http
            .get(format!("{}/{BUCKET}/{key}", self.endpoint()))
            .header("Authorization", auth("s3"))
            .send()
            .await
            .unwrap();
        assert!(got.status().is_success(), "GET {key}: {}", got.status());
        serde_json::from_str(&got.text().await.unwrap()).expect("an object of JSON")
    }

    /// Creates a state machine from `definition`, executes it with `input` and waits for its end.
    pub async fn execute(&self, definition: &Value, input: Value) -> Execution {
        let name = format!("wm-{}", uuid::Uuid::now_v7().simple());
        let machine = self
            .sfn(
                "CreateStateMachine",
                json!({"name": name, "definition": definition.to_string(),
                       "roleArn": "arn:aws:iam::123456789012:role/wishlist-workflow"}),
            )
            .await;
        let arn = machine["stateMachineArn"].as_str().unwrap().to_string();
        let started = self
            .sfn("StartExecution", json!({"stateMachineArn": arn, "input": input.to_string()}))
            .await;
        let execution = started["executionArn"].as_str().unwrap().to_string();
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            let described = self.sfn("DescribeExecution", json!({"executionArn": execution})).await;
            if described["status"] != "RUNNING" {
                return Execution(described);
            }
            assert!(Instant::now() < until, "the execution did not end: {described}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The input of the last state named `state` that `execution` entered (which phase failed).
    pub async fn entered(&self, execution: &Execution, state: &str) -> Value {
        let arn = execution.0["executionArn"].as_str().expect("an execution ARN");
        let history = self
            .sfn("GetExecutionHistory", json!({"executionArn": arn, "maxResults": 1000}))
            .await;
        let event = history["events"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
            .find(|e| e["stateEnteredEventDetails"]["name"] == state)
            .unwrap_or_else(|| panic!("{state} was not entered: {history}"));
        serde_json::from_str(event["stateEnteredEventDetails"]["input"].as_str().unwrap()).unwrap()
    }

    /// A Map Run's per-item results, as its ResultWriter wrote them (`FAILED` or `SUCCEEDED`).
    pub async fn results(&self, writer_details: &Value, status: &str) -> Vec<Value> {
        let manifest = self.get_object(writer_details["Key"].as_str().expect("a manifest key")).await;
        let mut items = Vec::new();
        for file in manifest["ResultFiles"][status].as_array().cloned().unwrap_or_default() {
            let part = self.get_object(file["Key"].as_str().unwrap()).await;
            items.extend(part.as_array().cloned().unwrap_or_default());
        }
        items
    }
}

/// A described execution.
pub struct Execution(pub Value);

impl Execution {
    pub fn status(&self) -> &str {
        self.0["status"].as_str().unwrap_or_default()
    }

    pub fn output(&self) -> Value {
        serde_json::from_str(self.0["output"].as_str().unwrap_or("null")).unwrap()
    }
}

impl Pool {
    /// Hands `payload` to a free function (waiting for one, as Lambda queues behind reserved
    /// concurrency) and answers as the bridge protocol of `sfn_moto.py` says.
    fn invoke(&self, payload: Value) -> Value {
        let function = {
            let mut free = self.free.lock().unwrap();
            loop {
                if let Some(f) = free.pop_front() {
                    break f;
                }
                free = self.returned.wait(free).unwrap();
            }
        };
        self.invoked.lock().unwrap().push(payload.clone());
        let deadline = *self.deadline.lock().unwrap();
        let answer = match function.invoke_with_deadline(payload.clone(), deadline) {
            Invocation::Response(v) => json!({ "response": v }),
            Invocation::Error { error_type, error_message } => {
                json!({"errorType": error_type, "errorMessage": error_message})
            }
        };
        self.free.lock().unwrap().push_back(function);
        self.returned.notify_one();
        self.answered.lock().unwrap().push((payload, answer.clone()));
        answer
    }
}

/// moto routes an unsigned request by the service its credential scope names; it checks no
/// signature.
fn auth(service: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0")
}

/// A state machine of template.yaml as CloudFormation would deploy it (conditions false,
/// `substitutions` on top of scripts/check-asl.py's), through the same code that validates it.
pub fn definition(resource: &str, substitutions: &[(&str, &str)]) -> Value {
    let mut command = std::process::Command::new(Path::new(MANIFEST_DIR).join(".venv/bin/python"));
    command
        .arg(Path::new(MANIFEST_DIR).join("scripts/check-asl.py"))
        .args(["--print", resource]);
    for (k, v) in substitutions {
        command.args(["--set", &format!("{k}={v}")]);
    }
    let out = command.output().expect("run scripts/check-asl.py");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("a definition")
}

/// Every Wait state of `definition` cut to a second (the inProgress rounds' 10 s).
pub fn quick_waits(definition: &mut Value) {
    match definition {
        Value::Object(map) => {
            if map.get("Type").and_then(Value::as_str) == Some("Wait") && map.contains_key("Seconds") {
                map.insert("Seconds".to_string(), json!(1));
            }
            map.values_mut().for_each(quick_waits);
        }
        Value::Array(items) => items.iter_mut().for_each(quick_waits),
        _ => {}
    }
}

/// The template's retry policies with their waits cut to at most a second, so a test waits out a
/// busy lock in seconds; which errors are retried, and how often, stay as written.
pub fn quick_retries(definition: &mut Value) {
    match definition {
        Value::Object(map) => {
            if let Some(Value::Array(retriers)) = map.get_mut("Retry") {
                for retrier in retriers {
                    retrier["IntervalSeconds"] = json!(1);
                    if retrier.get("MaxDelaySeconds").is_some() {
                        retrier["MaxDelaySeconds"] = json!(1);
                    }
                }
            }
            map.values_mut().for_each(quick_retries);
        }
        Value::Array(items) => items.iter_mut().for_each(quick_retries),
        _ => {}
    }
}
