//! The fleet workflow's child invokes `migrate` again while an online run answers `inProgress`,
//! as the release workflow does: the target's run is cut by the invocation's deadline (an open
//! snapshot keeps its concurrent index build from finishing, as in lambda_online.rs), and the
//! next round, once the snapshot ends, finishes it. Only the rounds' 10 s wait is shortened.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::workflows::{quick_waits, Workflows};
use crate::harness::{self, pg, run, wm};
use crate::lambda_online::{folder, TAG_1};
use crate::workflows::{fleet_definition, start_with, unique_prefix};

fn migrate_answers(workflows: &Workflows) -> Vec<Value> {
    workflows
        .answered()
        .into_iter()
        .filter(|(p, _)| p["action"] == "migrate")
        .map(|(_, answer)| answer)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_target_in_progress_is_invoked_again_until_its_online_run_finishes() {
    let dir = folder();
    let migrations = dir.path().to_str().unwrap();
    let db = pg().fresh_db().await;
    run(&mut wm(&db.url, migrations, &["migrate", "--to", "0000_tables"])).expect(0);
    let admin = db.client().await;
    admin
        .batch_execute(
            "insert into lists (owner_id) select g from generate_series(1, 3000) g;
             insert into items (list_id, user_id) select g, g from generate_series(1, 3000) g;
             analyze lists; analyze items;",
        )
        .await
        .unwrap();
    // A report's open snapshot: the recipe's concurrent index cannot finish while it stays.
    let mut holder = db.client().await;
    let report = holder
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await
        .unwrap();
    report.query("select 1", &[]).await.unwrap();

    let workflows = start_with(
        1,
        &unique_prefix(),
        None,
        &[
            ("MIGRATIONS_DIR", migrations),
            ("ONLINE_MIGRATIONS", "true"),
            ("LINT_LARGE_TABLE_ROWS", "1000"),
            ("DEADLINE_MARGIN_MS", "1000"),
        ],
    );
    workflows.set_deadline(Duration::from_secs(8));
    let manifest = json!([{"name": "online", "databaseUrl": db.url}]);
    workflows.put_object("fleet-manifests/online.json", &manifest.to_string()).await;
    let mut definition = fleet_definition("1", "0");
    quick_waits(&mut definition);

    // The snapshot ends once the first round has answered inProgress.
    let release = async {
        let until = Instant::now() + Duration::from_secs(60);
        while migrate_answers(&workflows).is_empty() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        report.rollback().await.unwrap();
    };
    let (execution, ()) = tokio::join!(
        workflows.execute(&definition, json!({"manifest": "fleet-manifests/online.json"})),
        release
    );
    assert_eq!(execution.status(), "SUCCEEDED", "{}", execution.0);
    let answers = migrate_answers(&workflows);
    assert!(answers.len() >= 2, "{answers:?}");
    assert_eq!(answers[0]["response"]["status"], "inProgress", "{answers:?}");
    assert_eq!(answers.last().unwrap()["response"]["status"], "applied", "{answers:?}");
    assert_eq!(db.statements_done(TAG_1).await, [1, 2, 3, 4, 5], "each step once");
    assert_eq!(harness::ledger(&db).await.len(), 2);
}
