//! Both workflows of template.yaml executed: moto's States Language interpreter runs the
//! definitions CloudFormation would deploy (rendered by scripts/check-asl.py, which validates
//! them), and every Lambda task is served by the real function binary through the Runtime API
//! (harness/workflows.rs, harness/sfn_moto.py), against real databases on the harness's
//! PostgreSQL. Only the retry waits are shortened (`quick_retries`).

use serde_json::{json, Value};

use crate::harness::workflows::{definition, quick_retries, Workflows, BUCKET};
use crate::harness::{self, pg, TestDb};

/// The newest built-in migration: what `require` asks for.
const LAST: &str = "0001_wish_2007_enums_audit";
const MIGRATIONS: usize = 2;
/// A phase past its tolerance fails the execution with the Map Run's own error (uncaught, so that
/// a redrive redrives its Map Run).
const THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";

/// `functions` function processes (the reserved concurrency), their own state under `prefix`.
fn start(functions: usize, prefix: &str, own_db: Option<&TestDb>) -> Workflows {
    start_with(functions, prefix, own_db, &[])
}

/// `start`, the functions' environment extended by `extra`.
pub(crate) fn start_with(functions: usize, prefix: &str, own_db: Option<&TestDb>, extra: &[(&str, &str)]) -> Workflows {
    let prefix = prefix.to_string();
    // A fleet's function never connects to its own database; the variable must still be valid.
    let own = own_db.map_or_else(|| pg().admin_url("wm_fleet_function_own"), |db| db.url.clone());
    let extra: Vec<(String, String)> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Workflows::start(functions, move |endpoint| {
        let mut env: Vec<(String, String)> = [
            ("DATABASE_URL", own.as_str()),
            ("DB_SSLMODE", "disable"),
            ("DB_ALLOW_PLAINTEXT", "true"),
            ("APP_ENV", "test"),
            ("SSM_PREFIX", prefix.as_str()),
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_LAMBDA_FUNCTION_VERSION", "7"),
            ("LOCK_WAIT_SECONDS", "1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec();
        env.extend(extra.iter().cloned());
        env
    })
}

pub(crate) fn fleet_definition(max_concurrency: &str, tolerated: &str) -> Value {
    let mut def = definition(
        "FleetStateMachine",
        &[
            ("FleetBucket", BUCKET),
            ("FleetMaxConcurrency", max_concurrency),
            ("FleetToleratedFailurePercentage", tolerated),
        ],
    );
    quick_retries(&mut def);
    def
}

fn target(name: &str, db: &TestDb) -> Value {
    json!({"name": name, "databaseUrl": db.url})
}

/// (target name, action) of each invocation, in order.
fn calls(workflows: &Workflows) -> Vec<(String, String)> {
    workflows
        .invoked()
        .iter()
        .map(|p| {
            (
                p["target"]["name"].as_str().unwrap_or("").to_string(),
                p["action"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

pub(crate) fn unique_prefix() -> String {
    format!("/wishlist/wf{}/migrations", uuid::Uuid::now_v7().simple())
}

async fn state(workflows: &Workflows, name: &str) -> Option<Value> {
    use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(workflows.endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("t", "t", None, None, "tests"))
        .load()
        .await;
    let out = aws_sdk_ssm::Client::new(&config).get_parameter().name(name).send().await.ok()?;
    Some(serde_json::from_str(out.parameter()?.value()?).expect("state is JSON"))
}

/// A target whose database does not exist (yet): it fails with the function's own error.
fn missing_db_target(name: &str) -> (Value, String) {
    let db_name = format!("wm_missing_{}", uuid::Uuid::now_v7().simple());
    (json!({"name": name, "databaseUrl": pg().admin_url(&db_name)}), db_name)
}

async fn create_database(name: &str) -> TestDb {
    let admin = pg().db("postgres").client().await;
    admin
        .batch_execute(&format!("CREATE DATABASE {}", harness::ident(name)))
        .await
        .unwrap();
    pg().db(name)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_of_twenty_databases_migrates_canary_first_and_requires_the_version() {
    let prefix = unique_prefix();
    let workflows = start(4, &prefix, None);
    let mut dbs = Vec::new();
    for _ in 0..20 {
        dbs.push(pg().fresh_db().await);
    }
    let manifest: Vec<Value> = dbs
        .iter()
        .enumerate()
        .map(|(i, db)| target(&format!("tenant-{i:02}"), db))
        .collect();
    workflows
        .put_object("fleet-manifests/twenty.json", &Value::Array(manifest).to_string())
        .await;

    let run = workflows
        .execute(
            &fleet_definition("4", "0"),
            json!({"manifest": "fleet-manifests/twenty.json", "requireVersion": LAST}),
        )
        .await;
    assert_eq!(run.status(), "SUCCEEDED", "{}", run.0);

    for db in &dbs {
        assert_eq!(harness::ledger(db).await.len(), MIGRATIONS, "{} migrated", db.name);
    }
    // The canary ran alone and whole before any other target started.
    let calls = calls(&workflows);
    let canary: Vec<(String, String)> = ["plan", "migrate", "require"]
        .map(|a| ("tenant-00".to_string(), a.to_string()))
        .to_vec();
    assert_eq!(calls[..3], canary[..], "{calls:?}");
    assert_eq!(calls.len(), 3 * 20, "plan, migrate and require once per target: {calls:?}");
    assert!(
        calls[3..].iter().all(|(name, _)| name != "tenant-00"),
        "the canary is not run twice"
    );
    // Each target's state is its own, under the environment's prefix.
    for name in ["tenant-00", "tenant-13"] {
        let state = state(&workflows, &format!("{prefix}/targets/{name}/state")).await.expect(name);
        assert_eq!(
            (state["status"].as_str(), state["current"].as_str()),
            (Some("applied"), Some(LAST)),
            "{state}"
        );
    }
    assert!(
        state(&workflows, &format!("{prefix}/state")).await.is_none(),
        "the function's own state is not a target's"
    );
    // The ResultWriter's files: every target succeeded, by name.
    let out = run.output();
    let succeeded = workflows.results(&out["fleet"]["ResultWriterDetails"], "SUCCEEDED").await;
    assert_eq!(succeeded.len(), 20, "{succeeded:?}");
    assert!(workflows.results(&out["fleet"]["ResultWriterDetails"], "FAILED").await.is_empty());
    let canary = workflows.results(&out["canary"]["ResultWriterDetails"], "SUCCEEDED").await;
    let result: Value = serde_json::from_str(canary[0]["Output"].as_str().unwrap()).unwrap();
    assert_eq!(
        (result["name"].as_str(), result["current"].as_str()),
        (Some("tenant-00"), Some(LAST))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_canary_stops_the_fleet() {
    let workflows = start(2, &unique_prefix(), None);
    let (canary, _) = missing_db_target("canary");
    let others = [pg().fresh_db().await, pg().fresh_db().await];
    let manifest = json!([canary, target("other-1", &others[0]), target("other-2", &others[1])]);
    workflows
        .put_object("fleet-manifests/canary-fails.json", &manifest.to_string())
        .await;

    let run = workflows
        .execute(
            &fleet_definition("2", "50"),
            json!({"manifest": "fleet-manifests/canary-fails.json"}),
        )
        .await;
    assert_eq!((run.status(), run.0["error"].as_str()), ("FAILED", Some(THRESHOLD)), "{}", run.0);
    let phase = workflows.entered(&run, "Phase").await["phase"].clone();
    assert_eq!(phase["canary"], true, "the canary's phase failed: {phase}");
    let calls = calls(&workflows);
    assert!(
        calls.iter().all(|(name, _)| name == "canary"),
        "nothing after the canary started: {calls:?}"
    );
    for db in &others {
        assert!(harness::ledger(db).await.is_empty(), "{} untouched", db.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_within_the_tolerance_pass_beyond_it_fail_and_a_redrive_runs_only_the_failed() {
    let workflows = start(3, &unique_prefix(), None);
    let mut good = Vec::new();
    for _ in 0..4 {
        good.push(pg().fresh_db().await);
    }
    let (late_1, late_1_db) = missing_db_target("late-1");
    let (late_2, _) = missing_db_target("late-2");
    let mut manifest: Vec<Value> = good.iter().enumerate().map(|(i, db)| target(&format!("good-{i}"), db)).collect();
    manifest.push(late_1);
    workflows
        .put_object("fleet-manifests/one-late.json", &Value::Array(manifest.clone()).to_string())
        .await;
    manifest.push(late_2);
    workflows
        .put_object("fleet-manifests/two-late.json", &Value::Array(manifest).to_string())
        .await;

    // 1 of 5 failed: within 25%. The results name it, with the function's errorType.
    let within = workflows
        .execute(&fleet_definition("3", "25"), json!({"manifest": "fleet-manifests/one-late.json"}))
        .await;
    assert_eq!(within.status(), "SUCCEEDED", "{}", within.0);
    let failed = workflows.results(&within.output()["fleet"]["ResultWriterDetails"], "FAILED").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0]["Input"].as_str().unwrap().contains("\"late-1\""), "{failed:?}");
    assert!(
        !failed[0]["Error"].as_str().unwrap_or("States.").starts_with("States."),
        "{failed:?}"
    );
    for db in &good {
        assert_eq!(harness::ledger(db).await.len(), MIGRATIONS);
    }

    // 2 of 6 failed: beyond 25%, the execution fails.
    let beyond = workflows
        .execute(&fleet_definition("3", "25"), json!({"manifest": "fleet-manifests/two-late.json"}))
        .await;
    assert_eq!(
        (beyond.status(), beyond.0["error"].as_str()),
        ("FAILED", Some(THRESHOLD)),
        "{}",
        beyond.0
    );
    let phase = workflows.entered(&beyond, "Phase").await["phase"].clone();
    assert_eq!(phase["canary"], false, "the wave after the canary failed: {phase}");
    assert!(
        beyond.0["cause"].as_str().unwrap_or("").contains("2 of 6 items failed"),
        "{}",
        beyond.0
    );

    // The redrive (docs/deploy.md): a second execution over the failed items of the results, once
    // late-1's database exists. Nothing that succeeded runs again.
    let late_db = create_database(&late_1_db).await;
    let items: Vec<Value> = failed
        .iter()
        .map(|f| serde_json::from_str(f["Input"].as_str().unwrap()).unwrap())
        .collect();
    workflows
        .put_object("fleet-manifests/redrive.json", &Value::Array(items).to_string())
        .await;
    let before = workflows.invoked().len();
    let redrive = workflows
        .execute(&fleet_definition("3", "0"), json!({"manifest": "fleet-manifests/redrive.json"}))
        .await;
    assert_eq!(redrive.status(), "SUCCEEDED", "{}", redrive.0);
    let redriven: Vec<String> = calls(&workflows)[before..].iter().map(|(n, _)| n.clone()).collect();
    assert!(
        !redriven.is_empty() && redriven.iter().all(|n| n == "late-1"),
        "only the failed target ran again: {redriven:?}"
    );
    assert_eq!(harness::ledger(&late_db).await.len(), MIGRATIONS);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_whose_lock_is_busy_is_retried_until_it_is_free() {
    let workflows = start(2, &unique_prefix(), None);
    let canary = pg().fresh_db().await;
    let busy = pg().fresh_db().await;
    let holder = busy.client().await;
    holder
        .execute("select pg_advisory_lock($1)", &[&wishlist_migrator::config::DEFAULT_LOCK_KEY])
        .await
        .unwrap();
    let manifest = json!([target("canary", &canary), target("busy", &busy)]);
    workflows.put_object("fleet-manifests/busy.json", &manifest.to_string()).await;
    let busy_answers = || {
        workflows
            .answered()
            .into_iter()
            .filter(|(p, _)| p["target"]["name"] == "busy" && p["action"] == "migrate")
            .map(|(_, answer)| answer)
            .collect::<Vec<_>>()
    };
    // The lock is let go once the busy target's first migrate has given up on it.
    let release = async {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(90);
        while busy_answers().is_empty() && std::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        holder
            .execute("select pg_advisory_unlock($1)", &[&wishlist_migrator::config::DEFAULT_LOCK_KEY])
            .await
            .unwrap();
    };
    let definition = fleet_definition("2", "0");
    let (run, ()) = tokio::join!(
        workflows.execute(&definition, json!({"manifest": "fleet-manifests/busy.json"})),
        release
    );
    assert_eq!(run.status(), "SUCCEEDED", "{}", run.0);
    let answers = busy_answers();
    assert!(answers.len() >= 2, "the busy target's migrate was retried: {answers:?}");
    assert_eq!(answers[0]["errorType"], "MigrationLockBusy", "{answers:?}");
    assert_eq!(answers.last().unwrap()["response"]["status"], "applied", "{answers:?}");
    assert_eq!(harness::ledger(&busy).await.len(), MIGRATIONS);
}

fn in_wave(name: &str, db: &TestDb, wave: u32) -> Value {
    json!({"name": name, "databaseUrl": db.url, "wave": wave})
}

/// Where `name`'s invocations are in `calls`: (first, last).
fn span(calls: &[(String, String)], name: &str) -> (usize, usize) {
    let at: Vec<usize> = (0..calls.len()).filter(|&i| calls[i].0 == name).collect();
    (*at.first().unwrap_or_else(|| panic!("{name} ran: {calls:?}")), *at.last().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_waves_run_in_ascending_order_each_after_the_one_before() {
    let workflows = start(3, &unique_prefix(), None);
    let mut dbs = Vec::new();
    for _ in 0..5 {
        dbs.push(pg().fresh_db().await);
    }
    // Wave 2's targets come before wave 1's in the manifest, and no target is in wave 0.
    let manifest = json!([
        in_wave("canary", &dbs[0], 1),
        in_wave("late-a", &dbs[1], 2),
        in_wave("early-a", &dbs[2], 1),
        in_wave("late-b", &dbs[3], 2),
        in_wave("early-b", &dbs[4], 1),
    ]);
    workflows.put_object("fleet-manifests/waves.json", &manifest.to_string()).await;

    let run = workflows
        .execute(
            &fleet_definition("3", "0"),
            json!({"manifest": "fleet-manifests/waves.json", "requireVersion": LAST}),
        )
        .await;
    assert_eq!(run.status(), "SUCCEEDED", "{}", run.0);
    for db in &dbs {
        assert_eq!(harness::ledger(db).await.len(), MIGRATIONS, "{} migrated", db.name);
    }
    let calls = calls(&workflows);
    assert_eq!(calls.len(), 3 * 5, "plan, migrate and require once per target: {calls:?}");
    // The canary alone first, then all of wave 1 before any of wave 2.
    assert_eq!(span(&calls, "canary"), (0, 2), "{calls:?}");
    let wave_1_ends = span(&calls, "early-a").1.max(span(&calls, "early-b").1);
    let wave_2_starts = span(&calls, "late-a").0.min(span(&calls, "late-b").0);
    assert!(wave_1_ends < wave_2_starts, "wave 2 started after wave 1 ended: {calls:?}");

    let out = run.output();
    let mut waves: Vec<u64> = out["waves"].as_array().unwrap().iter().filter_map(Value::as_u64).collect();
    waves.sort_unstable();
    assert_eq!(waves, [1, 2], "{out}");
    // The last wave's results: its own targets applied, the others passed through untouched.
    let last: Vec<Value> = workflows
        .results(&out["fleet"]["ResultWriterDetails"], "SUCCEEDED")
        .await
        .iter()
        .map(|r| serde_json::from_str(r["Output"].as_str().unwrap()).unwrap())
        .collect();
    // In the order the children ended.
    let mut applied: Vec<&str> = last
        .iter()
        .filter(|r| r["status"] == "applied")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    applied.sort_unstable();
    assert_eq!(applied, ["late-a", "late-b"], "{last:?}");
    assert!(
        last.iter().all(|r| r["status"] == "applied" || r["status"] == "notThisPhase"),
        "{last:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wave_past_the_tolerance_stops_the_fleet_and_the_next_wave_stays_at_its_old_version() {
    let workflows = start(3, &unique_prefix(), None);
    let canary = pg().fresh_db().await;
    let good = pg().fresh_db().await;
    let (broken_1, _) = missing_db_target("broken-1");
    let (broken_2, _) = missing_db_target("broken-2");
    let [broken_1, broken_2] = [broken_1, broken_2].map(|mut t| {
        t["wave"] = json!(1);
        t
    });
    // Wave 2 is a fleet a release behind: at 0000, waiting for 0001.
    let mut later = Vec::new();
    for _ in 0..2 {
        let db = pg().fresh_db().await;
        harness::run(&mut harness::wm(&db.url, "migrations", &["migrate", "--to", harness::TAG_0000])).expect(0);
        later.push(db);
    }
    let manifest = json!([
        in_wave("canary", &canary, 1),
        broken_1,
        in_wave("good", &good, 1),
        broken_2,
        in_wave("later-1", &later[0], 2),
        in_wave("later-2", &later[1], 2),
    ]);
    workflows.put_object("fleet-manifests/wave-fails.json", &manifest.to_string()).await;

    // 2 of the fleet's 6 failed in wave 1: past 20%.
    let run = workflows
        .execute(&fleet_definition("3", "20"), json!({"manifest": "fleet-manifests/wave-fails.json"}))
        .await;
    assert_eq!((run.status(), run.0["error"].as_str()), ("FAILED", Some(THRESHOLD)), "{}", run.0);
    assert!(run.0["cause"].as_str().unwrap_or("").contains("2 of 6 items failed"), "{}", run.0);
    let phase = workflows.entered(&run, "Phase").await["phase"].clone();
    assert_eq!(
        (phase["canary"].as_bool(), phase["wave"].as_u64()),
        (Some(false), Some(1)),
        "{phase}"
    );
    let calls = calls(&workflows);
    assert!(
        calls.iter().all(|(name, _)| !name.starts_with("later-")),
        "no target of wave 2 was invoked: {calls:?}"
    );
    for db in [&canary, &good] {
        assert_eq!(harness::ledger(db).await.len(), MIGRATIONS, "{} migrated", db.name);
    }
    for db in &later {
        assert_eq!(harness::ledger(db).await.len(), 1, "{} still at 0000", db.name);
        let client = db.client().await;
        let audit = client.query_one("select to_regtype('wishlist_store') is null", &[]).await.unwrap();
        assert!(audit.get::<_, bool>(0), "{}: nothing of 0001 ran", db.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_outside_the_lowest_wave_and_a_wave_not_from_0_to_999_are_refused_before_anything_runs() {
    let workflows = start(1, &unique_prefix(), None);
    let dbs = [pg().fresh_db().await, pg().fresh_db().await];
    let manifest = json!([in_wave("canary", &dbs[0], 2), in_wave("first", &dbs[1], 1)]);
    workflows
        .put_object("fleet-manifests/canary-late.json", &manifest.to_string())
        .await;
    let run = workflows
        .execute(
            &fleet_definition("2", "50"),
            json!({"manifest": "fleet-manifests/canary-late.json"}),
        )
        .await;
    assert_eq!((run.status(), run.0["error"].as_str()), ("FAILED", Some(THRESHOLD)), "{}", run.0);
    // The canary's phase is the lowest wave's (1), and the canary is in wave 2.
    let phase = workflows.entered(&run, "Phase").await["phase"].clone();
    assert_eq!(
        (phase["canary"].as_bool(), phase["wave"].as_u64()),
        (Some(true), Some(1)),
        "{phase}"
    );

    for (key, wave) in [("far", json!(1000)), ("half", json!(1.5))] {
        let mut manifest = json!([in_wave("canary", &dbs[0], 0), in_wave(key, &dbs[1], 0)]);
        manifest[1]["wave"] = wave;
        let object = format!("fleet-manifests/{key}.json");
        workflows.put_object(&object, &manifest.to_string()).await;
        let run = workflows.execute(&fleet_definition("2", "50"), json!({ "manifest": object })).await;
        assert_eq!(
            (run.status(), run.0["error"].as_str()),
            ("FAILED", Some("ManifestRefused")),
            "{key}: {}",
            run.0
        );
    }
    assert!(workflows.invoked().is_empty(), "{:?}", calls(&workflows));
    for db in &dbs {
        assert!(harness::ledger(db).await.is_empty(), "{} untouched", db.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_manifest_succeeds_and_runs_nothing() {
    let workflows = start(1, &unique_prefix(), None);
    workflows.put_object("fleet-manifests/empty.json", "[]").await;
    let run = workflows
        .execute(&fleet_definition("2", "0"), json!({"manifest": "fleet-manifests/empty.json"}))
        .await;
    assert_eq!(run.status(), "SUCCEEDED", "{}", run.0);
    assert!(workflows.invoked().is_empty(), "{:?}", calls(&workflows));
}

/// The release workflow, end to end (the snapshot off, as in dev): plan, migrate, status and
/// require on the function's own database. Only the execution's end and the database are
/// asserted, not the states' names, which change as the workflow grows.
#[tokio::test(flavor = "multi_thread")]
async fn the_release_workflow_migrates_and_requires_end_to_end() {
    let db = pg().fresh_db().await;
    let workflows = start(1, &unique_prefix(), Some(&db));
    let mut def = definition("ReleaseStateMachine", &[]);
    quick_retries(&mut def);

    let run = workflows.execute(&def, json!({"requireVersion": LAST})).await;
    assert_eq!(run.status(), "SUCCEEDED", "{}", run.0);
    assert_eq!(harness::ledger(&db).await.len(), MIGRATIONS);
    let actions: Vec<String> = calls(&workflows).into_iter().map(|(_, a)| a).collect();
    for action in ["plan", "migrate", "require"] {
        assert!(actions.iter().any(|a| a == action), "{action} ran: {actions:?}");
    }

    // A version the build does not have: require fails the execution with the function's errorType.
    let behind = workflows.execute(&def, json!({"requireVersion": "9999_not_built"})).await;
    assert_eq!(behind.status(), "FAILED", "{}", behind.0);
    assert!(
        behind.0["error"].as_str().is_some_and(|e| !e.starts_with("States.")),
        "{}",
        behind.0
    );
}
