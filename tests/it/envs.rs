//! `envs`: every environment's published state read back from SSM (moto), against the local
//! migrations, as JSON, an aligned table, and an HTML page rendered in a real headless Chromium.

use std::process::Command;

use serde_json::{json, Value};

use crate::harness::stack::aws;
use crate::harness::*;

fn state(environment: &str, current: Option<&str>, status: &str, applied_at: &str, duration_ms: u64) -> String {
    json!({"environment": environment, "current": current, "status": status, "lastAction": "migrate",
           "appliedAt": applied_at, "durationMs": duration_ms, "applied": [], "appliedCount": 0,
           "runId": "r", "pending": 0, "functionVersion": "7"})
    .to_string()
}

/// Publishes states under a prefix of this test's own, as the function would.
async fn publish(prefix: &str, states: &[(&str, String)]) {
    let ssm = aws_sdk_ssm::Client::new(&aws().await);
    for (environment, value) in states {
        ssm.put_parameter()
            .name(format!("{prefix}/{environment}/migrations/state"))
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .expect("put the state");
    }
}

/// `wishlist-migrate [global] envs --prefix <prefix> [sub]`.
fn envs_with(prefix: &str, args: &[&str], sub: &[&str]) -> Run {
    let mut cmd = cli();
    cmd.env("AWS_ENDPOINT_URL", moto().endpoint_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .args(["--migrations", "migrations"])
        .args(args)
        .args(["envs", "--prefix", prefix])
        .args(sub);
    run(&mut cmd)
}

fn envs(prefix: &str, args: &[&str]) -> Run {
    envs_with(prefix, args, &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn envs_shows_where_each_environment_stands_in_json_a_table_and_a_page() {
    let prefix = format!("/wm-envs-{}", fastrand::u32(..));
    publish(
        &prefix,
        &[
            ("dev", state("dev", Some(TAG_0000), "applied", "2026-11-01T10:00:00Z", 800)),
            ("prod", state("prod", Some(TAG_0000), "applied", "2026-11-02T10:00:00Z", 1200)),
            ("staging", state("staging", Some(TAG_0000), "applied", "2026-11-01T11:00:00Z", 900)),
        ],
    )
    .await;
    // Later runs: dev and staging move to 0001 (the parameter's history keeps the earlier ones).
    publish(
        &prefix,
        &[
            ("dev", state("dev", Some(TAG_0001), "applied", "2026-12-01T09:00:00Z", 2500)),
            ("staging", state("staging", Some(TAG_0001), "failed", "2026-12-01T09:30:00Z", 40)),
        ],
    )
    .await;

    let out = envs(&prefix, &["--json"]).expect(0);
    let report: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    let rows = report["environments"].as_array().unwrap();
    let view: Vec<(&str, &str, i64, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["environment"].as_str().unwrap(),
                r["current"].as_str().unwrap(),
                r["behind"].as_i64().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        view,
        [
            ("dev", TAG_0001, 0, "applied"),
            ("prod", TAG_0000, 1, "applied"),
            ("staging", TAG_0001, 0, "failed")
        ]
    );
    assert_eq!(rows[1]["appliedAt"], "2026-11-02T10:00:00Z");
    assert_eq!(rows[1]["durationMs"], 1200);
    assert_eq!(rows[1]["ranBy"], "7");

    let table = envs(&prefix, &[]).expect(0).stdout;
    assert!(!table.contains('\x1b'), "NO_COLOR: no colour");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    let column = |line: &str| line.find(TAG_0000).or_else(|| line.find(TAG_0001));
    assert_eq!(column(lines[1]), column(lines[2]), "aligned:\n{table}");

    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("envs.html");
    envs_with(&prefix, &[], &["--html", page.to_str().unwrap()]).expect(0);
    let dom = chromium(&["--dump-dom", &format!("file://{}", page.display())]);
    for environment in ["dev", "staging", "prod"] {
        assert!(
            dom.contains(&format!("<tr data-environment=\"{environment}\"")),
            "{environment} in the table:\n{dom}"
        );
        assert!(
            dom.contains(&format!("<section class=\"timeline\" data-environment=\"{environment}\"")),
            "{dom}"
        );
    }
    assert!(dom.contains(TAG_0000) && dom.contains(TAG_0001));
    // dev's timeline holds both of its runs, from the parameter's history.
    let dev = dom.split("data-environment=\"dev\"><h2>").nth(1).unwrap();
    let dev = &dev[..dev.find("</section>").unwrap()];
    assert_eq!(dev.matches("<li").count(), 2, "{dev}");
    let shot = dir.path().join("envs.png");
    chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1000,700",
        &format!("file://{}", page.display()),
    ]);
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 2000, "a real screenshot");
}

/// Headless Chromium (Debian's, installed by scripts/bootstrap.sh) on a local file; no network.
fn chromium(args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("run chromium (scripts/bootstrap.sh installs it)");
    assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_ahead_of_this_checkout_is_flagged() {
    let prefix = format!("/wm-envs-{}", fastrand::u32(..));
    publish(
        &prefix,
        &[(
            "prod",
            state("prod", Some("0009_from_a_newer_build"), "applied", "2026-12-01T09:00:00Z", 10),
        )],
    )
    .await;
    let report: Value = serde_json::from_str(envs(&prefix, &["--json"]).expect(0).stdout.trim()).unwrap();
    let row = &report["environments"][0];
    assert_eq!(row["ahead"], true, "{report}");
    assert!(row["behind"].is_null());
    assert!(envs(&prefix, &[]).expect(0).stdout.contains("ahead of this checkout"));
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_warns_about_a_migration_that_was_far_slower_in_another_environment() {
    let root = format!("/wm-durations-{}", fastrand::u32(..));
    let with_duration = |environment: &str, ms: u64| {
        let mut s: Value = serde_json::from_str(&state(environment, Some(TAG_0001), "applied", "2026-11-01T10:00:00Z", ms)).unwrap();
        s["durations"] = json!({ TAG_0001: ms });
        s.to_string()
    };
    publish(
        &root,
        &[("dev", with_duration("dev", 400)), ("staging", with_duration("staging", 9_000))],
    )
    .await;
    let stack = crate::harness::stack::Stack::new().await;
    let prefix = format!("{root}/test/migrations");
    let lambda = stack.start(&[("SSM_PREFIX", &prefix)]);
    let plan = crate::harness::stack::response(lambda.invoke(json!({"action": "plan"})), "plan");
    let warnings = plan["warnings"].to_string();
    assert!(
        warnings.contains(&format!("{TAG_0001} took 9000 ms in staging (dev 400 ms): expect test")),
        "{warnings}"
    );
    assert!(!warnings.contains(TAG_0000), "no duration recorded anywhere for 0000: {warnings}");

    // The run publishes its own durations for the next environment to compare with.
    crate::harness::stack::response(lambda.invoke(json!({"action": "migrate"})), "migrate");
    let ssm = aws_sdk_ssm::Client::new(&aws().await);
    let own = ssm.get_parameter().name(format!("{prefix}/state")).send().await.unwrap();
    let own: Value = serde_json::from_str(own.parameter().unwrap().value().unwrap()).unwrap();
    assert!(own["durations"][TAG_0001].is_number(), "{own}");
    assert!(own["durations"][TAG_0000].is_number(), "{own}");
}

#[tokio::test(flavor = "multi_thread")]
async fn environments_are_read_through_each_profile_named() {
    let prefix = format!("/wm-envs-{}", fastrand::u32(..));
    publish(
        &prefix,
        &[("prod", state("prod", Some(TAG_0001), "applied", "2026-12-01T09:00:00Z", 10))],
    )
    .await;
    // Two profiles (as two accounts would be), both reaching moto here.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let credentials = dir.path().join("credentials");
    std::fs::write(&config, "[profile one]\nregion = us-east-1\n[profile two]\nregion = us-east-1\n").unwrap();
    std::fs::write(
        &credentials,
        "[one]\naws_access_key_id = testing\naws_secret_access_key = testing\n[two]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .unwrap();
    let profiles = |names: &[&str]| {
        let mut cmd = cli();
        cmd.env("AWS_ENDPOINT_URL", moto().endpoint_url())
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .args(["--json", "--migrations", "migrations", "envs", "--prefix", &prefix]);
        for n in names {
            cmd.args(["--profile", n]);
        }
        run(&mut cmd)
    };
    let out = profiles(&["one", "two"]).expect(0);
    let report: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        report["environments"].as_array().unwrap().len(),
        1,
        "prod once, through either profile: {report}"
    );
    let missing = profiles(&["nope"]);
    assert_ne!(missing.code, 0, "an unknown profile is an error: {}", missing.stdout);
    assert!(missing.stderr.contains("profile nope"), "{}", missing.stderr);
}

/// The function reads the other environments' published states for the duration warning, and
/// nothing else of theirs: no grant reaches `/wishlist` as a whole (GetParametersByPath there
/// returned every parameter below it, prod's settings to the dev function included).
#[test]
fn the_function_role_reads_only_the_other_environments_states() {
    let template = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    let ssm_resources: Vec<&str> = template
        .lines()
        .filter(|l| l.contains(":ssm:") && l.contains(":parameter/"))
        .map(|l| l.rsplit(":parameter/").next().unwrap().trim())
        .collect();
    assert!(!ssm_resources.is_empty());
    for resource in &ssm_resources {
        assert!(
            resource.starts_with("wishlist/${AppEnv}/")
                || *resource == "wishlist/${AppEnv}/migrations"
                || *resource == "wishlist/*/migrations/state",
            "the role reaches beyond its own environment and the others' states: parameter/{resource}"
        );
    }
    assert!(ssm_resources.contains(&"wishlist/*/migrations/state"), "{ssm_resources:?}");
    assert!(
        !template.contains("ssm:GetParametersByPath"),
        "GetParametersByPath returns every parameter below its path"
    );
}

/// Targets' states as the function writes them (`<prefix>/<env>/migrations/targets/<name>/state`),
/// 32 puts in flight: SSM has no batch put, and 500 one after the other would take long.
async fn publish_targets(prefix: &str, environment: &str, states: Vec<(String, String)>) {
    let ssm = aws_sdk_ssm::Client::new(&aws().await);
    let mut pending = states.into_iter();
    let mut puts = tokio::task::JoinSet::new();
    loop {
        while puts.len() < 32 {
            let Some((name, value)) = pending.next() else { break };
            let (ssm, parameter) = (ssm.clone(), format!("{prefix}/{environment}/migrations/targets/{name}/state"));
            puts.spawn(async move {
                ssm.put_parameter()
                    .name(parameter)
                    .value(value)
                    .r#type(aws_sdk_ssm::types::ParameterType::String)
                    .overwrite(true)
                    .send()
                    .await
                    .expect("put a target's state");
            });
        }
        match puts.join_next().await {
            Some(done) => done.unwrap(),
            None => break,
        }
    }
}

/// The page as Chromium lays it out in a 1280×900 window, with `script` run on it (a copy of the
/// page; the page itself has none): the DOM after the script wrote what it measured into it.
fn measured(page: &std::path::Path, script: &str) -> String {
    let html = std::fs::read_to_string(page).unwrap();
    assert!(!html.contains("<script"), "the page is self-contained, no script");
    let copy = page.with_extension("measured.html");
    std::fs::write(&copy, html.replace("</body>", &format!("<script>{script}</script></body>"))).unwrap();
    chromium(&["--window-size=1280,900", "--dump-dom", &format!("file://{}", copy.display())])
}

/// The number Chromium wrote into `attribute="…"` of the DOM.
fn number(dom: &str, attribute: &str) -> f64 {
    let start = dom
        .find(&format!("{attribute}=\""))
        .unwrap_or_else(|| panic!("{attribute} in the DOM"))
        + attribute.len()
        + 2;
    dom[start..start + dom[start..].find('"').unwrap()].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_of_500_targets_is_summarised_failed_first_on_a_page_of_bounded_height() {
    let prefix = format!("/wm-fleet-{}", fastrand::u32(..));
    let failed = [
        "tenant-013",
        "tenant-102",
        "tenant-222",
        "tenant-305",
        "tenant-388",
        "tenant-450",
        "tenant-499",
    ];
    let targets: Vec<(String, String)> = (0..500)
        .map(|i| {
            let name = format!("tenant-{i:03}");
            let value = if failed.contains(&name.as_str()) {
                let mut s: Value = serde_json::from_str(&state(&name, Some(TAG_0000), "failed", "2026-12-01T10:00:00Z", 30)).unwrap();
                s["error"] = json!({"type": "LockTimeout", "message": "lock_timeout waiting on wishlist_items"});
                s.to_string()
            } else if i % 25 == 1 {
                state(&name, Some(TAG_0000), "upToDate", "2026-11-20T10:00:00Z", 12)
            } else {
                state(&name, Some(TAG_0001), "applied", "2026-12-01T10:00:00Z", 480)
            };
            (name, value)
        })
        .collect();
    let started = std::time::Instant::now();
    publish_targets(&prefix, "prod", targets).await;
    publish_targets(
        &prefix,
        "dev",
        vec![(
            "dev-a".into(),
            state("dev-a", Some(TAG_0001), "applied", "2026-12-01T09:00:00Z", 20),
        )],
    )
    .await;
    publish(
        &prefix,
        &[("prod", state("prod", Some(TAG_0001), "applied", "2026-12-01T10:00:00Z", 900))],
    )
    .await;
    eprintln!("500 targets published in {:?}", started.elapsed());

    let started = std::time::Instant::now();
    let out = envs(&prefix, &["--json"]).expect(0);
    eprintln!("envs --json read them in {:?}", started.elapsed());
    let report: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(
        report["environments"][0]["environment"], "prod",
        "the environments' rows stay: {report}"
    );
    let prod = report["fleet"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["environment"] == "prod")
        .unwrap();
    // 20 of the 500 (i % 25 == 1) are one behind, 7 failed, the rest up to date.
    assert_eq!(
        (
            &prod["targets"],
            &prod["failed"],
            &prod["behind"],
            &prod["upToDate"],
            &prod["ahead"]
        ),
        (&json!(500), &json!(7), &json!(20), &json!(473), &json!(0)),
        "{prod}"
    );
    assert_eq!(
        prod["versions"],
        json!([{"version": TAG_0001, "targets": 473}, {"version": TAG_0000, "targets": 27}])
    );
    let rows = report["targets"].as_array().unwrap();
    assert_eq!(rows.len(), 501, "every target of both environments");
    let first: Vec<&str> = rows[..7].iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(first, failed, "the failed targets first");
    assert_eq!(rows[0]["errorType"], "LockTimeout");
    assert_eq!(rows[7]["standing"], "behind");

    let text = envs(&prefix, &[]).expect(0).stdout;
    assert!(
        text.contains("fleet prod: 500 targets: 7 failed, 20 behind, 473 up to date"),
        "{text}"
    );
    let failed_line = text.lines().find(|l| l.trim_start().starts_with("failed:")).unwrap();
    for name in failed {
        assert!(
            failed_line.contains(&format!("{name} (LockTimeout, at {TAG_0000})")),
            "{failed_line}"
        );
    }
    assert!(text.lines().count() < 20, "a few lines, not 500:\n{text}");

    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("fleet.html");
    envs_with(&prefix, &[], &["--html", page.to_str().unwrap()]).expect(0);
    let dom = measured(
        &page,
        "document.body.dataset.height = document.documentElement.scrollHeight;\
         document.body.dataset.failedTop = document.querySelector('#fleet-prod .failed-targets').getBoundingClientRect().top;",
    );
    let fleet = dom.split("id=\"fleet-prod\"").nth(1).unwrap();
    let fleet = &fleet[..fleet.find("</section>").unwrap()];
    assert!(fleet.contains("<span class=\"failed\" data-count=\"7\">7 failed</span>"), "{fleet}");
    assert!(fleet.contains("data-count=\"20\">20 behind") && fleet.contains("data-count=\"473\">473 up to date"));
    let listed = fleet.split("class=\"failed-targets\"").nth(1).unwrap();
    let listed = &listed[..listed.find("</div>").unwrap()];
    let names: Vec<&str> = listed.split("data-target=\"").skip(1).map(|s| &s[..s.find('"').unwrap()]).collect();
    assert_eq!(names, failed, "the failed list names exactly the failed targets");
    let failed_top = number(&dom, "data-failed-top");
    assert!(failed_top < 900.0, "the failed targets are on the first screen: {failed_top}px");
    let height = number(&dom, "data-height");
    assert!(
        height < 2_000.0,
        "500 targets fold into a page of about two screens, not 500 rows: {height}px"
    );
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("envs-fleet-500.png");
    chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1280,900",
        &format!("file://{}", page.display()),
    ]);
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 2000, "a real screenshot");
}

#[tokio::test(flavor = "multi_thread")]
async fn which_migrations_ran_where_is_drawn_on_one_duration_scale() {
    let prefix = format!("/wm-grid-{}", fastrand::u32(..));
    let ran = |environment: &str, at: &str, durations: &[(&str, u64)]| {
        let mut s: Value = serde_json::from_str(&state(environment, Some(TAG_0001), "applied", at, 2_000)).unwrap();
        s["applied"] = json!(durations.iter().map(|(t, _)| t).collect::<Vec<_>>());
        s["durations"] = durations.iter().map(|(t, ms)| (t.to_string(), json!(ms))).collect();
        s.to_string()
    };
    publish(
        &prefix,
        &[
            ("dev", ran("dev", "2026-12-01T09:00:00Z", &[(TAG_0000, 40), (TAG_0001, 151)])),
            (
                "staging",
                ran("staging", "2026-12-02T09:00:00Z", &[(TAG_0000, 45), (TAG_0001, 1_015)]),
            ),
            ("prod", ran("prod", "2026-12-03T09:00:00Z", &[(TAG_0000, 60), (TAG_0001, 1_700)])),
        ],
    )
    .await;
    let report: Value = serde_json::from_str(envs(&prefix, &["--json"]).expect(0).stdout.trim()).unwrap();
    assert_eq!(report["migrations"]["scaleMs"], 1_700, "{report}");

    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("grid.html");
    envs_with(&prefix, &[], &["--html", page.to_str().unwrap()]).expect(0);
    let dom = measured(
        &page,
        "document.querySelectorAll('#migrations td[data-ms]').forEach(td => \
           td.dataset.barWidth = td.querySelector('.bar').getBoundingClientRect().width);",
    );
    let cell = |tag: &str, environment: &str| {
        let row = dom.split(&format!("<tr data-tag=\"{tag}\">")).nth(1).unwrap();
        let row = &row[..row.find("</tr>").unwrap()];
        let td = row
            .split("<td ")
            .find(|td| td.contains(&format!("data-environment=\"{environment}\"")))
            .unwrap();
        td[..td.find("</td>").unwrap()].to_string()
    };
    let width = |tag: &str, environment: &str| number(&cell(tag, environment), "data-bar-width");
    let (dev, staging, prod) = (width(TAG_0001, "dev"), width(TAG_0001, "staging"), width(TAG_0001, "prod"));
    // One scale: the bars' drawn widths are in the durations' ratios, across environments.
    assert!((staging / dev - 1_015.0 / 151.0).abs() < 0.3, "dev {dev}px, staging {staging}px");
    assert!(
        (prod / staging - 1_700.0 / 1_015.0).abs() < 0.1,
        "staging {staging}px, prod {prod}px"
    );
    assert!((width(TAG_0000, "dev") / prod - 40.0 / 1_700.0).abs() < 0.01);
    // Over ten times dev's and over a second: marked, as plan warns about it.
    assert!(cell(TAG_0001, "prod").contains("class=\"ran slow\""), "{}", cell(TAG_0001, "prod"));
    assert!(cell(TAG_0001, "staging").contains("class=\"ran\""));
    assert!(cell(TAG_0001, "dev").contains("2026-12-01T09:00:00Z") && cell(TAG_0001, "dev").contains("151 ms"));
}
