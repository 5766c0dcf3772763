//! The memory a huge migration takes: a Lambda has a fixed amount (256 MB here), so the peak must
//! grow with the migration's size by a small factor, not by the size of its parse trees or of
//! copies of its text in flight.

use std::process::Command;

use crate::harness::*;

/// Runs `cmd` under a Python parent that reports the child's peak RSS (`ru_maxrss`, KiB): the
/// only portable reading of a process's peak after it has exited.
fn peak_rss_kib(cmd: &Command) -> (Run, u64) {
    let mut wrapped = Command::new("python3");
    wrapped
        .arg("-c")
        .arg("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; sys.stderr.write('\\npeak_rss_kib %d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    let run = run(&mut wrapped);
    let kib = run
        .stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("peak_rss_kib "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak reported: {}", run.stderr));
    (run, kib)
}

/// A 0.x folder with one migration of `inserts` INSERT statements of about 500 bytes each.
fn huge_folder(inserts: usize) -> (tempfile::TempDir, u64) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("meta")).unwrap();
    let pad = "x".repeat(440);
    let mut sql = String::from("CREATE TABLE \"big\" (\"id\" integer PRIMARY KEY, \"note\" text NOT NULL);\n--> statement-breakpoint\n");
    for i in 0..inserts {
        sql.push_str(&format!(
            "INSERT INTO \"big\" (\"id\", \"note\") VALUES ({i}, '{pad}');--> statement-breakpoint\n"
        ));
    }
    std::fs::write(dir.path().join("0000_big.sql"), &sql).unwrap();
    let journal = r#"{"version":"7","dialect":"postgresql","entries":[{"idx":0,"version":"7","when":1795520100854,"tag":"0000_big","breakpoints":true}]}"#;
    std::fs::write(dir.path().join("meta/_journal.json"), journal).unwrap();
    (dir, sql.len() as u64)
}

#[tokio::test]
async fn a_huge_migration_takes_a_small_multiple_of_its_size() {
    let (small, _) = huge_folder(1);
    let (big, bytes) = huge_folder(40_000);
    let db = pg().fresh_db().await;
    let (baseline_run, baseline) = peak_rss_kib(&wm(&db.url, small.path(), &["migrate"]));
    assert_eq!(baseline_run.code, 0, "{}", baseline_run.stderr);
    let db = pg().fresh_db().await;
    let (run, peak) = peak_rss_kib(&wm(&db.url, big.path(), &["migrate"]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.report()["status"], "applied");
    let mib = |kib: u64| kib as f64 / 1024.0;
    let size = bytes as f64 / 1024.0 / 1024.0;
    let grew = mib(peak.saturating_sub(baseline));
    // About twice the size: the statements' text and the requests made of it (bench part 9
    // measures it); it was twenty times, the lint's parse trees of every statement kept at once
    // and every request's text in flight three times over.
    assert!(
        grew <= 3.0 * size,
        "a {size:.1} MiB migration took {grew:.1} MiB above a tiny one's {:.1} MiB",
        mib(baseline)
    );
}
