//! Configuration as an operator supplies it (flags over the environment), usage and config
//! errors (exit 2, still one JSON report with --json), connection failures, and passwords
//! never showing up in any output. `harness::run` checks every run's stdout and stderr for the
//! admin password and every `secret_password()`; the tests here add the risky paths.

use crate::harness::*;

#[tokio::test]
async fn a_wrong_password_is_a_connection_failure_that_does_not_echo_it() {
    let db = pg().fresh_db().await;
    let wrong = pg().url("postgres", &secret_password(), &db.name);
    let report = run(&mut wm(&wrong, "migrations", &["migrate"])).expect(1).report();
    assert_eq!(error_type(&report), "ConnectionFailed");
    assert_eq!(report["error"]["sqlstate"], "28P01");

    // The same through the libpq variables, in human mode and with every log line enabled.
    let mut cmd = cli();
    cmd.env("PGHOST", "127.0.0.1")
        .env("PGPORT", pg().port().to_string())
        .env("PGUSER", "postgres")
        .env("PGPASSWORD", secret_password())
        .env("PGDATABASE", &db.name)
        .env("RUST_LOG", "trace")
        .args(["--migrations", "migrations", "migrate"]);
    let out = run(&mut cmd).expect(1);
    assert!(out.stderr.contains("error[ConnectionFailed]"), "{}", out.stderr);
    assert!(!db.table_exists("drizzle.__drizzle_migrations").await);
}

#[tokio::test]
async fn a_successful_run_logs_no_password_even_at_trace_level() {
    let db = pg().fresh_db().await;
    let mut cmd = wm(&db.url, "migrations", &["migrate"]);
    cmd.env("RUST_LOG", "trace");
    let out = run(&mut cmd).expect(0);
    assert_eq!(out.report()["status"], "applied");
    // Not vacuous: the run did log, and the report names the database it used.
    assert!(!out.stderr.is_empty(), "RUST_LOG=trace produced no log at all");
    assert_eq!(out.report()["database"]["user"], "postgres");
}

#[tokio::test]
async fn the_libpq_variables_work_and_flags_override_the_environment() {
    let db = pg().fresh_db().await;
    let mut cmd = cli();
    cmd.env("PGHOST", "127.0.0.1")
        .env("PGPORT", pg().port().to_string())
        .env("PGUSER", "postgres")
        .env("PGPASSWORD", pg().admin_password())
        .env("PGDATABASE", &db.name)
        .args(["--json", "--migrations", "migrations", "migrate", "--to", TAG_0000]);
    assert_eq!(tags(&run(&mut cmd).expect(0).report()["applied"]), [TAG_0000]);

    // A stale DATABASE_URL and APP_ENV in the environment; the flags win.
    let stale = pg().url("postgres", &secret_password(), &db.name);
    let mut cmd = cli();
    cmd.env("DATABASE_URL", &stale).env("APP_ENV", "prod").args([
        "--json",
        "--database-url",
        &db.url,
        "--env",
        "staging",
        "--migrations",
        "migrations",
        "migrate",
    ]);
    let report = run(&mut cmd).expect(0).report();
    assert_eq!(tags(&report["applied"]), [TAG_0001]);
    assert_eq!(report["environment"], "staging");
}

#[tokio::test]
async fn bad_settings_are_config_errors_with_exit_2_and_a_json_report() {
    let db = pg().fresh_db().await;
    let cases = [
        ("LOCK_WAIT_SECONDS", "soon"),
        ("PG_LOCK_TIMEOUT_MS", "0"),
        ("LOCK_TIMEOUT_RETRIES", "-1"),
        ("MIGRATION_LOCK_KEY", "wishlist"),
        ("APP_ENV", "prod env"),
        ("DB_SSLMODE", "sometimes"),
    ];
    for (variable, value) in cases {
        let mut cmd = wm(&db.url, "migrations", &["migrate"]);
        cmd.env(variable, value);
        let report = run(&mut cmd).expect(2).report();
        assert_eq!(report["status"], "failed");
        assert_eq!(error_type(&report), "ConfigError", "{variable}={value}: {report}");
        assert!(report["error"]["message"].as_str().unwrap().contains(variable), "{report}");
    }
    // Without --json the error goes to stderr.
    let mut cmd = cli();
    cmd.env("DATABASE_URL", &db.url).env("LOCK_WAIT_SECONDS", "soon").arg("migrate");
    let out = run(&mut cmd).expect(2);
    assert!(
        out.stderr.contains("error[ConfigError]") && out.stderr.contains("LOCK_WAIT_SECONDS"),
        "{}",
        out.stderr
    );
    // None of them got as far as the database.
    assert!(!schema_exists(&db, "drizzle").await);
}

#[test]
fn no_database_configured_is_exit_2() {
    let mut cmd = cli();
    cmd.args(["--json", "status"]);
    let report = run(&mut cmd).expect(2).report();
    assert_eq!(error_type(&report), "ConfigError");
    assert!(report["error"]["message"].as_str().unwrap().contains("DATABASE_URL"), "{report}");
}

#[test]
fn an_unparsable_url_is_exit_2_without_echoing_it() {
    let password = secret_password();
    let url = format!("postgres://postgres:{password}@127.0.0.1:notaport/x");
    let mut cmd = cli();
    cmd.env("DATABASE_URL", &url).args(["--json", "status"]);
    assert_eq!(error_type(&run(&mut cmd).expect(2).report()), "ConfigError");
    let mut cmd = cli();
    cmd.args(["--database-url", &url, "status"]);
    let out = run(&mut cmd).expect(2);
    assert!(out.stderr.contains("--database-url"), "{}", out.stderr);
}

#[test]
fn usage_errors_are_exit_2() {
    run(cli().args(["migrate", "--no-such-flag"])).expect(2);
    run(cli().args(["frobnicate"])).expect(2);
    run(cli().args(["--lock-wait", "soon", "status"])).expect(2);
}

/// Log lines on a stderr that is not a terminal (CI logs, CloudWatch) carry no colour codes, even
/// when NO_COLOR is not set.
#[test]
fn log_lines_on_a_pipe_carry_no_colour_codes() {
    let mut cmd = cli();
    cmd.env_remove("NO_COLOR")
        .env("DATABASE_URL", "postgres://migrator:not-used@127.0.0.1:1/wishlist")
        .env("DB_SSLMODE", "disable")
        .arg("status");
    let out = run(&mut cmd).expect(1);
    assert!(out.stderr.contains("run failed"), "the failure is logged: {}", out.stderr);
    assert!(!out.stderr.contains('\u{1b}'), "colour codes on a pipe: {:?}", out.stderr);
}
