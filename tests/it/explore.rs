use crate::harness::*;

#[tokio::test]
async fn explore_drift_on_real_histories() {
    for rel in ["tests/fixtures/real-world/homarr", "tests/fixtures/real-world/ai-chatbot", "tests/fixtures/real-world/dittofeed"] {
        let dir = repo_path(rel);
        let db = pg().fresh_db().await;
        for (tag, _) in journal(&dir) {
            run(&mut wm(&db.url, rel, &["migrate", "--to", &tag])).expect(0);
            let out = run(&mut wm(&db.url, rel, &["drift"]));
            let report = out.report();
            let diffs = report["differences"].as_array().cloned().unwrap_or_default();
            eprintln!("== {rel} {tag}: status {} exit {} ({} differences) {}", report["status"], out.code, diffs.len(), if diffs.is_empty() { report["error"].to_string() } else { String::new() });
            for d in diffs {
                eprintln!("   {d}");
            }
        }
    }
}
