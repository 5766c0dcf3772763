//! `wishlist-migrate fleet status|plan|migrate`: many databases of the shared cluster, each
//! created here, migrated canary first, never more than `--concurrency` open at once (watched in
//! `pg_stat_activity`), failures reported with their typed errors, the tolerance and the exit
//! codes as an operator's script sees them.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::stack::{aws, secret_json};
use crate::harness::*;

/// `n` fresh databases of the shared cluster.
async fn databases(n: usize) -> Vec<TestDb> {
    let mut dbs = Vec::with_capacity(n);
    for _ in 0..n {
        dbs.push(pg().fresh_db().await);
    }
    dbs
}

/// A manifest naming each database after itself, written to a file of its own.
fn manifest(items: &[Value]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_string(items).unwrap()).unwrap();
    file
}

fn url_targets(dbs: &[TestDb]) -> Vec<Value> {
    dbs.iter().map(|db| json!({"name": db.name, "databaseUrl": db.url})).collect()
}

/// `wishlist-migrate --json --migrations migrations [global] fleet <sub> --targets FILE [args]`.
fn fleet(global: &[&str], sub: &str, targets: &tempfile::NamedTempFile, args: &[&str]) -> Command {
    let mut cmd = cli();
    cmd.args(["--json", "--migrations", "migrations"])
        .args(global)
        .args(["fleet", sub, "--targets"])
        .arg(targets.path())
        .args(args);
    cmd
}

/// (name, status, errorType) of each target, in manifest order.
fn lines(report: &Value) -> Vec<(String, String, Option<String>)> {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
                t["error"]["errorType"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn statuses(report: &Value) -> Vec<String> {
    lines(report).into_iter().map(|(_, status, _)| status).collect()
}

async fn ledger_rows(db: &TestDb) -> Option<i64> {
    let client = db.client().await;
    let exists: bool = client
        .query_one("select to_regclass('drizzle.__drizzle_migrations') is not null", &[])
        .await
        .unwrap()
        .get(0);
    if !exists {
        return None;
    }
    Some(
        client
            .query_one("select count(*) from drizzle.__drizzle_migrations", &[])
            .await
            .unwrap()
            .get(0),
    )
}

/// A database whose 0000 cannot apply: the table it creates is already there.
async fn conflicting(db: &TestDb) {
    db.client()
        .await
        .batch_execute("create table wishlist_items (id int)")
        .await
        .unwrap();
}

/// Samples `pg_stat_activity` every few milliseconds while it lives: which of the watched
/// databases have a backend at once.
struct Sampler {
    samples: Arc<Mutex<Vec<BTreeSet<String>>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    async fn start(dbs: &[TestDb]) -> Self {
        let names: Vec<String> = dbs.iter().map(|db| db.name.clone()).collect();
        let (client, connection) = tokio_postgres::connect(&pg().admin_url("postgres"), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (samples, stop) = (samples.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    let rows = client
                        .query("select datname from pg_stat_activity where datname = any($1)", &[&names])
                        .await
                        .unwrap();
                    let open: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
                    samples.lock().unwrap().push(open);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        Self { samples, stop, task }
    }

    async fn finish(self) -> Vec<BTreeSet<String>> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        Arc::try_unwrap(self.samples).unwrap().into_inner().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fleet_migrate_applies_every_target_canary_first_never_above_the_concurrency() {
    let dbs = databases(14).await;
    let targets = manifest(&url_targets(&dbs));
    let sampler = Sampler::start(&dbs).await;
    let child = spawn(&mut fleet(&[], "migrate", &targets, &["--concurrency", "3"]));
    let out = exit_within(child, Duration::from_secs(60), "fleet migrate").await.expect(0);
    let samples = sampler.finish().await;
    let report = out.report();
    assert_eq!(
        report["summary"],
        json!({"targets": 14, "applied": 14, "upToDate": 0, "failed": 0, "notRun": 0})
    );
    for target in report["targets"].as_array().unwrap() {
        assert_eq!(target["status"], "applied", "{target}");
        assert_eq!(target["current"], TAG_0001, "{target}");
        assert_eq!(target["applied"], json!([TAG_0000, TAG_0001]), "{target}");
        assert!(target["error"].is_null(), "{target}");
    }
    for db in &dbs {
        assert_eq!(ledger_rows(db).await, Some(2), "{}", db.name);
        assert_eq!(db.advisory_locks().await, 0, "{}", db.name);
    }
    // Never more than 3 databases open; the canary (the first target) had the server to itself.
    let peak = samples.iter().map(BTreeSet::len).max().unwrap_or(0);
    assert!((1..=3).contains(&peak), "peak {peak} open databases with --concurrency 3");
    let canary = &dbs[0].name;
    assert!(samples.iter().any(|open| open.contains(canary)), "the sampler never saw the canary");
    for open in &samples {
        assert!(!open.contains(canary) || open.len() == 1, "the canary ran beside {open:?}");
    }
    assert!(out.stderr.contains(&format!("fleet: {canary} applied")), "{}", out.stderr);

    // Again: every target is up to date, and the text table says so.
    let mut again = fleet(&[], "migrate", &targets, &["--concurrency", "8"]);
    let report = run(&mut again).expect(0).report();
    assert_eq!(report["summary"]["upToDate"], 14);
    let text = run(cli()
        .args(["--migrations", "migrations", "fleet", "status", "--targets"])
        .arg(targets.path()))
    .expect(0);
    assert!(text.stdout.starts_with("TARGET"), "{}", text.stdout);
    assert!(
        text.stdout.contains("14 targets: 0 applied, 14 up to date, 0 failed, 0 not run"),
        "{}",
        text.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_canary_stops_the_fleet_and_leaves_the_others_untouched() {
    let dbs = databases(5).await;
    conflicting(&dbs[0]).await;
    let targets = manifest(&url_targets(&dbs));
    let report = run(&mut fleet(&[], "migrate", &targets, &["--max-failures", "3"]))
        .expect(3)
        .report();
    let lines = lines(&report);
    assert_eq!(lines[0].1, "failed");
    assert_eq!(lines[0].2.as_deref(), Some("MigrationFailed"));
    assert!(
        report["targets"][0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wishlist_items"),
        "{report}"
    );
    assert_eq!(statuses(&report)[1..], ["notRun"; 4]);
    assert_eq!(
        report["summary"],
        json!({"targets": 5, "applied": 0, "upToDate": 0, "failed": 1, "notRun": 4})
    );
    for db in &dbs[1..] {
        assert_eq!(ledger_rows(db).await, None, "{} was touched", db.name);
    }
    // The text output names the canary and why nothing else ran.
    let mut text = cli();
    text.args(["--migrations", "migrations", "fleet", "migrate", "--targets"])
        .arg(targets.path());
    let out = run(&mut text).expect(3);
    assert!(out.stdout.lines().nth(1).unwrap().starts_with(&dbs[0].name), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("stopped: the canary {} failed", dbs[0].name)),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_within_the_tolerance_is_exit_1_and_the_others_apply() {
    let dbs = databases(6).await;
    conflicting(&dbs[3]).await;
    let targets = manifest(&url_targets(&dbs));
    // 20% of 6 targets tolerates one failure.
    let report = run(&mut fleet(&[], "migrate", &targets, &["--max-failures", "20%"]))
        .expect(1)
        .report();
    let mut expected = vec!["applied"; 6];
    expected[3] = "failed";
    assert_eq!(statuses(&report), expected);
    assert_eq!(lines(&report)[3].2.as_deref(), Some("MigrationFailed"));
    assert_eq!(
        report["summary"],
        json!({"targets": 6, "applied": 5, "upToDate": 0, "failed": 1, "notRun": 0})
    );
    for (i, db) in dbs.iter().enumerate() {
        // 0000 failed in its transaction: nothing of it stayed.
        assert_eq!(ledger_rows(db).await, Some(if i == 3 { 0 } else { 2 }), "{}", db.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_tolerance_no_new_target_starts() {
    let dbs = databases(6).await;
    conflicting(&dbs[2]).await;
    let targets = manifest(&url_targets(&dbs));
    let report = run(&mut fleet(&[], "migrate", &targets, &["--concurrency", "1"]))
        .expect(3)
        .report();
    assert_eq!(statuses(&report), ["applied", "applied", "failed", "notRun", "notRun", "notRun"]);
    assert_eq!(report["summary"]["notRun"], 3);
    for db in &dbs[3..] {
        assert_eq!(ledger_rows(db).await, None, "{} was touched", db.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_target_and_an_unreachable_one_are_reported_and_the_others_migrate() {
    let dbs = databases(4).await;
    let holder = dbs[2].client().await;
    holder
        .execute("select pg_advisory_lock($1)", &[&wishlist_migrator::config::DEFAULT_LOCK_KEY])
        .await
        .unwrap();
    let password = secret_password();
    // Nothing listens there: the port was free a moment ago and nobody binds it.
    let unreachable = format!("postgres://postgres:{password}@127.0.0.1:{}/nowhere", pick_port());
    let mut items = url_targets(&dbs);
    items.insert(3, json!({"name": "unreachable", "databaseUrl": unreachable}));
    let targets = manifest(&items);
    let out = run(&mut fleet(&["--lock-wait", "1"], "migrate", &targets, &["--max-failures", "2"])).expect(1);
    let report = out.report();
    let lines = lines(&report);
    assert_eq!(lines[2], (dbs[2].name.clone(), "failed".into(), Some("MigrationLockBusy".into())));
    assert_eq!(lines[3], ("unreachable".into(), "failed".into(), Some("ConnectionFailed".into())));
    for i in [0, 1, 4] {
        assert_eq!(lines[i].1, "applied", "{report}");
    }
    // The typed error names the target, never its URL (the run's check covers the password).
    let message = report["targets"][3]["error"]["message"].as_str().unwrap();
    assert!(!message.contains(&unreachable) && !message.contains("postgres://"), "{message}");
    assert_eq!(ledger_rows(&dbs[2]).await, None, "the locked database was touched");
    holder
        .execute("select pg_advisory_unlock($1)", &[&wishlist_migrator::config::DEFAULT_LOCK_KEY])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_plan_read_a_mixed_fleet_and_change_nothing() {
    let dbs = databases(4).await;
    run(&mut wm(&dbs[0].url, "migrations", &["migrate"])).expect(0);
    run(&mut wm(&dbs[1].url, "migrations", &["migrate", "--to", TAG_0000])).expect(0);
    run(&mut wm(&dbs[3].url, "migrations", &["migrate"])).expect(0);
    dbs[3]
        .client()
        .await
        .batch_execute(
            "update drizzle.__drizzle_migrations set hash = 'edited' where id = (select max(id) from drizzle.__drizzle_migrations)",
        )
        .await
        .unwrap();
    let targets = manifest(&url_targets(&dbs));

    let report = run(&mut fleet(&[], "status", &targets, &[])).expect(1).report();
    assert_eq!(statuses(&report), ["upToDate", "pending", "pending", "failed"]);
    assert_eq!(lines(&report)[3].2.as_deref(), Some("ChecksumMismatch"));
    let current: Vec<&Value> = report["targets"].as_array().unwrap().iter().map(|t| &t["current"]).collect();
    assert_eq!(current, [&json!(TAG_0001), &json!(TAG_0000), &Value::Null, &json!(TAG_0001)]);
    assert_eq!(
        report["summary"],
        json!({"targets": 4, "applied": 0, "upToDate": 1, "failed": 1, "notRun": 0})
    );

    let report = run(&mut fleet(&[], "plan", &targets, &[])).expect(1).report();
    assert_eq!(statuses(&report), ["upToDate", "planned", "planned", "failed"]);
    assert_eq!(lines(&report)[3].2.as_deref(), Some("ChecksumMismatch"));
    assert_eq!(ledger_rows(&dbs[1]).await, Some(1), "plan changed a database");
    assert_eq!(ledger_rows(&dbs[2]).await, None, "plan changed a database");

    // The text table puts the failed target first.
    let mut text = cli();
    text.args(["--migrations", "migrations", "fleet", "status", "--targets"])
        .arg(targets.path());
    let out = run(&mut text).expect(1);
    let second = out.stdout.lines().nth(1).unwrap();
    assert!(
        second.starts_with(&dbs[3].name) && second.contains("ChecksumMismatch"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_target_reads_its_credentials_and_each_target_records_its_own_state() {
    let dbs = databases(2).await;
    let secret_id = format!("wishlist/{}/fleet", dbs[1].name);
    let config = aws().await;
    aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name(&secret_id)
        .secret_string(secret_json("postgres", pg().admin_password(), &dbs[1]))
        .send()
        .await
        .unwrap();
    let targets = manifest(&[
        json!({"name": dbs[0].name, "databaseUrl": dbs[0].url, "env": "fleetone"}),
        json!({"name": dbs[1].name, "secretArn": secret_id, "env": "fleettwo"}),
    ]);
    let mut cmd = fleet(&["--record"], "migrate", &targets, &[]);
    cmd.env("AWS_ENDPOINT_URL", moto().endpoint_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        // The secret's database has no TLS here; DB_HOST would send every target to one host.
        .env("DB_SSLMODE", "disable")
        .env("DB_HOST", "192.0.2.1");
    let report = run(&mut cmd).expect(0).report();
    assert_eq!(statuses(&report), ["applied", "applied"]);
    assert_eq!(ledger_rows(&dbs[1]).await, Some(2));
    let ssm = aws_sdk_ssm::Client::new(&config);
    for (db, env) in [(&dbs[0], "fleetone"), (&dbs[1], "fleettwo")] {
        let name = format!("/wishlist/{env}/migrations/targets/{}/state", db.name);
        let state = ssm
            .get_parameter()
            .name(&name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let state: Value = serde_json::from_str(state.parameter().unwrap().value().unwrap()).unwrap();
        assert_eq!(state["current"], TAG_0001, "{state}");
        assert_eq!(state["environment"], env, "{state}");
    }
}
