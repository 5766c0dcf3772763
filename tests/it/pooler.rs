//! Poolers, lost locks and connection limits: a real PgBouncer in transaction mode is refused
//! before anything runs, in session mode it works (32 runners through a pool of 4 included),
//! the lock is given back on every path by the backend that took it, and a server out of
//! connection slots is waited out within the deadline.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::pgbouncer::{PgBouncer, PoolMode};
use crate::harness::*;

/// Nothing of the run is left: no ledger, no table, no lock on any backend.
async fn assert_untouched(db: &TestDb) {
    assert!(!db.table_exists("drizzle.__drizzle_migrations").await, "no ledger was created");
    assert!(!db.table_exists("public.wishlist_items").await, "no migration ran");
    assert_eq!(db.advisory_locks().await, 0, "no lock left on any backend");
}

/// A setting as the next client of the pool sees it (with a pool of 1: on the backend the run had).
async fn pooled_setting(url: &str, name: &str) -> String {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("through the pool");
    tokio::spawn(connection);
    let row = client
        .query_one(&format!("select current_setting('{name}')"), &[])
        .await
        .expect("setting");
    row.get(0)
}

fn assert_refused_as_pooled(run: Run) {
    let run = run.expect(2);
    let report = run.report();
    assert_eq!(error_type(&report), "PoolerNotSupported", "{report}");
    let message = report["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("session-mode") && message.contains("writer endpoint"), "{message}");
}

#[tokio::test]
async fn transaction_mode_is_refused_before_anything_runs() {
    for (mode, pool_size) in [(PoolMode::Transaction, 1), (PoolMode::Transaction, 2), (PoolMode::Statement, 2)] {
        let db = pg().fresh_db().await;
        let bouncer = PgBouncer::start(mode, pool_size);
        let url = bouncer.url(&db.name);
        let started = Instant::now();
        assert_refused_as_pooled(run(&mut wm(&url, "migrations", &["migrate"])));
        eprintln!("{mode:?} pool of {pool_size}: refused in {:?}", started.elapsed());
        assert_untouched(&db).await;
        assert_eq!(
            pooled_setting(&url, "idle_in_transaction_session_timeout").await,
            "0",
            "no setting leaked to the pool"
        );
        assert_refused_as_pooled(run(&mut wm(&url, "migrations", &["rollback", "--to", "none"])));
        assert_untouched(&db).await;
    }
}

#[tokio::test]
async fn transaction_mode_is_refused_on_a_migrated_database_too() {
    // A ledger exists, so the run opens with the combined statement (db/opening.rs).
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, "migrations", &["migrate", "--to", TAG_0000])).expect(0);
    let bouncer = PgBouncer::start(PoolMode::Transaction, 2);
    assert_refused_as_pooled(run(&mut wm(&bouncer.url(&db.name), "migrations", &["migrate"])));
    assert_eq!(ledger(&db).await.len(), 1, "the pending migration was not applied");
    assert_eq!(db.advisory_locks().await, 0);
}

#[tokio::test]
async fn transaction_mode_is_refused_while_other_clients_switch_backends() {
    let db = pg().fresh_db().await;
    let bouncer = PgBouncer::start(PoolMode::Transaction, 2);
    let url = bouncer.url(&db.name);
    // Other clients keep the pool's backends busy, so our transactions move between them.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("load client");
        tokio::spawn(connection);
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = client.simple_query("select pg_sleep(0.005)").await;
            }
        }));
    }
    for _ in 0..3 {
        assert_refused_as_pooled(run(&mut wm(&url, "migrations", &["migrate"])));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in load {
        let _ = task.await;
    }
    assert_untouched(&db).await;
}

#[tokio::test]
async fn session_mode_works_and_gives_the_lock_back() {
    for pool_size in [1, 2] {
        let db = pg().fresh_db().await;
        let bouncer = PgBouncer::start(PoolMode::Session, pool_size);
        let url = bouncer.url(&db.name);
        let report = run(&mut wm(&url, "migrations", &["migrate"])).expect(0).report();
        assert_eq!(report["status"], "applied", "{report}");
        assert_eq!(ledger(&db).await, expected_ledger(&repo_path("migrations")));
        // A no-op run too: PgBouncer keeps the server session after the client leaves, so a
        // lock left to the close would stay on it.
        let report = run(&mut wm(&url, "migrations", &["migrate"])).expect(0).report();
        assert_eq!(report["status"], "upToDate", "{report}");
        assert_eq!(db.advisory_locks().await, 0, "no lock left on the pooled backend");
    }
}

#[tokio::test]
async fn a_no_op_run_gives_the_lock_back_without_a_pooler_reset() {
    // With server_reset_query empty, nothing the pooler does frees a lock the client left:
    // only the run's own unlock does.
    let db = pg().fresh_db().await;
    let bouncer = PgBouncer::start_keeping_session_state(PoolMode::Session, 1);
    let url = bouncer.url(&db.name);
    run(&mut wm(&url, "migrations", &["migrate"])).expect(0);
    let report = run(&mut wm(&url, "migrations", &["migrate"])).expect(0).report();
    assert_eq!(report["status"], "upToDate", "{report}");
    assert_eq!(db.advisory_locks().await, 0, "the no-op run unlocked");
    let report = run(&mut wm(&url, "migrations", &["migrate"])).expect(0).report();
    assert_eq!(report["status"], "upToDate", "{report}");
    assert!(report["error"].is_null());
}

#[tokio::test]
async fn an_unlock_that_finds_the_lock_gone_is_the_runs_error() {
    // The migration frees every advisory lock of its session, as a stray call in a migration
    // (or a backend swap) would: the release finds nothing to give back.
    let dir = copy_fixture("migrations");
    let file = dir.path().join(format!("{TAG_0001}.sql"));
    let mut sql = std::fs::read_to_string(&file).expect("read 0001");
    sql.push_str("\n--> statement-breakpoint\nSELECT pg_advisory_unlock_all();\n");
    std::fs::write(&file, sql).expect("write 0001");
    let db = pg().fresh_db().await;
    let run = run(&mut wm(&db.url, dir.path(), &["--no-lint-gate", "migrate"])).expect(1);
    let report = run.report();
    assert_eq!(error_type(&report), "MigrationLockLost", "{report}");
    let message = report["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("was not held at release"), "{message}");
    assert!(!run.stderr.contains("WARN"), "a report error, not a log line: {}", run.stderr);
}

#[tokio::test]
async fn many_runners_through_a_session_pool_of_four_apply_once() {
    many_runners_through(PgBouncer::start(PoolMode::Session, 4), "DISCARD ALL").await;
}

#[tokio::test]
async fn many_runners_through_a_session_pool_that_keeps_session_state_apply_once() {
    // Without the pooler's reset a lock a runner left would stay on its backend, and the next
    // runner handed that backend would hold it too (advisory locks are re-entrant per session).
    many_runners_through(PgBouncer::start_keeping_session_state(PoolMode::Session, 4), "no reset").await;
}

async fn many_runners_through(bouncer: PgBouncer, reset: &str) {
    const RUNNERS: usize = 32;
    let db = pg().fresh_db().await;
    let url = bouncer.url(&db.name);
    let started = Instant::now();
    let children: Vec<_> = (0..RUNNERS)
        .map(|_| spawn(&mut wm(&url, "migrations", &["--lock-wait", "120", "migrate"])))
        .collect();
    let runs: Vec<Run> = children.into_iter().map(wait).collect();
    let elapsed = started.elapsed();
    let mut applied = Vec::new();
    for run in &runs {
        assert_eq!(run.code, 0, "every runner ends cleanly: {}\n{}", run.stdout, run.stderr);
        let report: Value = run.report();
        assert!(matches!(report["status"].as_str(), Some("applied" | "upToDate")), "{report}");
        assert_eq!(report["current"], TAG_0001);
        applied.extend(tags(&report["applied"]));
    }
    applied.sort();
    assert_eq!(applied, [TAG_0000, TAG_0001], "exactly one runner applied each migration");
    assert_eq!(ledger(&db).await, expected_ledger(&repo_path("migrations")));
    assert_eq!(db.advisory_locks().await, 0, "no lock left on any backend");
    eprintln!("{RUNNERS} runners through a session pool of 4 ({reset}): {elapsed:?}");
}

#[tokio::test]
async fn a_full_server_is_waited_for_within_the_deadline() {
    let db = pg().fresh_db().await;
    let url = db
        .create_role(
            "limited",
            "limited-pw",
            &["GRANT ALL ON DATABASE {db} TO {role}", "GRANT ALL ON SCHEMA public TO {role}"],
        )
        .await;
    let admin = db.client().await;
    let role = ident(&db.role_name("limited"));
    admin
        .batch_execute(&format!("ALTER ROLE {role} CONNECTION LIMIT 1"))
        .await
        .expect("limit");
    // The role's only slot is taken.
    let (holder, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("hold the slot");
    let holder_task = tokio::spawn(connection);

    let started = Instant::now();
    let run_refused = run(&mut wm(&url, "migrations", &["--timeout", "3", "status"])).expect(1);
    let waited = started.elapsed();
    let report = run_refused.report();
    assert_eq!(error_type(&report), "ConnectionFailed", "{report}");
    assert_eq!(report["error"]["sqlstate"], "53300", "{report}");
    let message = report["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no connection slot left") && message.contains("CONNECTION LIMIT"),
        "{message}"
    );
    // Retried with backoff, and given up within the deadline (a liveness bound, not a timing
    // figure: the backoff is jittered, so how much of the 3 s it used varies).
    let tries: u32 = message
        .split("tried ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the message says how often it tried: {message}"));
    assert!(tries >= 2, "retried: {message}");
    assert!(waited < Duration::from_secs(8), "gave up within the deadline: {waited:?}");
    eprintln!("no connection slot: gave up after {waited:?} with --timeout 3");

    // The slot frees up while the run waits: it connects and works.
    let started_second = Instant::now();
    let child = spawn(&mut wm(&url, "migrations", &["--timeout", "20", "migrate"]));
    tokio::time::sleep(Duration::from_millis(800)).await;
    drop(holder);
    let _ = holder_task.await;
    let report = wait(child).expect(0).report();
    assert_eq!(report["status"], "applied", "{report}");
    eprintln!(
        "a slot freed after 0.8 s: applied {:?} after the run started",
        started_second.elapsed()
    );
}

/// Whether the process id announced at startup is the backend's, for a connection made the way
/// the CLI makes it.
async fn announced_is_backend(url: &str, tls: wishlist_migrator::TlsMode, ca: Option<std::path::PathBuf>) -> bool {
    use wishlist_migrator::db::{connection::Database, pooler};
    let mut settings = wishlist_migrator::ConnectionSettings::new(url.parse().expect("url"), tls);
    settings.ca_bundle = ca;
    let db = Database::connect(&settings).await.expect("connect");
    let announced = pooler::announced_pid(db.client()).await;
    let backend = pooler::backend_pid(db.client()).await.expect("pid");
    db.close().await;
    announced == Some(backend)
}

#[tokio::test]
async fn a_direct_connection_is_told_from_a_pooled_one_without_a_probe() {
    use wishlist_migrator::TlsMode;
    let db = pg().fresh_db().await;
    assert!(announced_is_backend(&db.url, TlsMode::Disable, None).await, "plain");
    assert!(announced_is_backend(&db.url, TlsMode::Prefer, None).await, "prefer");
    let tls = crate::harness::tls::pg_tls();
    let ca = Some(crate::harness::tls::pki().ca());
    let tls_url = tls
        .url("postgres", tls.admin_password(), "postgres")
        .replace("127.0.0.1", "localhost");
    assert!(announced_is_backend(&tls_url, TlsMode::Require, None).await, "require");
    assert!(announced_is_backend(&tls_url, TlsMode::VerifyFull, ca).await, "verify-full");
    let relay = crate::harness::proxy::Proxy::start(pg().port());
    let relayed = db.url.replace(&format!(":{}/", pg().port()), &format!(":{}/", relay.port()));
    assert!(
        announced_is_backend(&relayed, TlsMode::Disable, None).await,
        "a TCP relay is no pooler"
    );
    for mode in [PoolMode::Session, PoolMode::Transaction] {
        let bouncer = PgBouncer::start(mode, 2);
        assert!(
            !announced_is_backend(&bouncer.url(&db.name), TlsMode::Disable, None).await,
            "{mode:?}"
        );
    }
}
