//! The planner's tests: what it refuses, what it reports and how it cuts the pending migrations
//! into commit segments.

use super::*;
use crate::migrations::source::Needs;
use crate::migrations::statement::Statement;

fn migration(idx: usize, when: i64, mode: TransactionMode, adds_enum_value: bool) -> Migration {
    Migration {
        idx,
        tag: format!("{idx:04}_m"),
        created_at: when,
        name: None,
        hash: format!("hash{idx}"),
        statements: vec![],
        marked_no_transaction: false,
        commit_after: false,
        down: None,
        needs: Needs {
            mode,
            adds_enum_value,
            ends_transaction: false,
        }
        .into(),
    }
}

/// What a migration with its own `COMMIT` asks of the runner.
fn committing() -> std::sync::OnceLock<Needs> {
    Needs {
        ends_transaction: true,
        ..Needs::PLAIN
    }
    .into()
}

fn plain(n: usize) -> Vec<Migration> {
    (0..n)
        .map(|i| migration(i, 100 * (i as i64 + 1), TransactionMode::Transaction, false))
        .collect()
}

fn row(id: i32, m: &Migration) -> LedgerRow {
    LedgerRow {
        id,
        hash: m.hash.clone(),
        created_at: Some(m.created_at),
        name: None,
    }
}

fn tags(ms: &[&Migration]) -> Vec<String> {
    ms.iter().map(|m| m.tag.clone()).collect()
}

fn autocommit() -> TransactionMode {
    TransactionMode::Autocommit { reason: "test".into() }
}

#[test]
fn empty_ledger_everything_pending_in_one_transaction() {
    let ms = plain(3);
    let a = assess(&[], &ms);
    assert!(a.applied.is_empty() && a.problems.is_empty());
    assert_eq!(a.pending.len(), 3);
    assert!(a.current().is_none());
    let p = plan(&a, &ms, PlanOptions::default()).unwrap();
    assert_eq!(p.segments.len(), 1);
    assert_eq!(p.segments[0].mode, SegmentMode::Transaction);
    assert_eq!(p.segments[0].migrations.len(), 3);
}

#[test]
fn applied_rows_are_matched_by_when_and_hash() {
    let ms = plain(3);
    let a = assess(&[row(1, &ms[0]), row(2, &ms[1])], &ms);
    assert_eq!(a.applied.len(), 2);
    assert_eq!(a.applied[1].row_id, 2);
    assert_eq!(a.current().unwrap().tag, ms[1].tag);
    assert_eq!(tags(&a.pending), [ms[2].tag.clone()]);
    assert!(a.problems.is_empty());
}

#[test]
fn a_required_version_lacks_only_the_migrations_up_to_it() {
    let ms = plain(4);
    let a = assess(&[row(1, &ms[0]), row(2, &ms[2])], &ms);
    let missing = |version: &str| tags(&missing_for(&a, &ms, version).unwrap());
    assert_eq!(missing(&ms[0].tag), Vec::<String>::new());
    assert_eq!(missing(&ms[1].tag), [ms[1].tag.clone()]);
    assert_eq!(missing(&ms[2].tag), [ms[1].tag.clone()], "applied out of order still counts");
    assert_eq!(missing(&ms[3].tag), [ms[1].tag.clone(), ms[3].tag.clone()]);
    assert_eq!(
        missing_for(&a, &ms, "9999_nope").unwrap_err(),
        PlanError::UnknownTarget { tag: "9999_nope".into() }
    );
}

#[test]
fn everything_applied_plans_nothing() {
    let ms = plain(2);
    let a = assess(&[row(1, &ms[0]), row(2, &ms[1])], &ms);
    let p = plan(&a, &ms, PlanOptions::default()).unwrap();
    assert!(p.is_empty());
    assert!(p.deferred.is_empty());
}

#[test]
fn changed_file_is_a_checksum_mismatch_and_refuses() {
    let ms = plain(2);
    let mut r = row(1, &ms[0]);
    r.hash = "old".into();
    let a = assess(&[r], &ms);
    assert_eq!(a.applied.len(), 1, "the schema change still happened");
    assert_eq!(a.problems.len(), 1);
    assert_eq!(a.problems[0].kind(), "checksumMismatch");
    let err = plan(&a, &ms, PlanOptions::default()).unwrap_err();
    assert!(matches!(&err, PlanError::ChecksumMismatch { tag, applied_hash, .. } if tag == "0000_m" && applied_hash == "old"));
    // Not even unknown-row tolerance lets a changed file through.
    let options = PlanOptions {
        allow_unknown_rows: true,
        ..Default::default()
    };
    assert!(plan(&a, &ms, options).is_err());
}

#[test]
fn pending_entry_older_than_newest_applied_is_out_of_order() {
    // 0001 was merged with an older `when` after 0002 was applied elsewhere.
    let ms = vec![
        migration(0, 100, TransactionMode::Transaction, false),
        migration(1, 200, TransactionMode::Transaction, false),
        migration(2, 300, TransactionMode::Transaction, false),
    ];
    let a = assess(&[row(1, &ms[0]), row(2, &ms[2])], &ms);
    assert_eq!(a.problems.len(), 1);
    assert!(matches!(&a.problems[0], Problem::OutOfOrder { tag, newest_applied_when: 300, .. } if tag == "0001_m"));
    assert!(a.pending.is_empty());
    let err = plan(&a, &ms, PlanOptions::default()).unwrap_err();
    assert!(matches!(err, PlanError::OutOfOrder { when: 200, .. }));
}

#[test]
fn unknown_rows_refuse_unless_allowed() {
    let ms = plain(2);
    let stray = LedgerRow {
        id: 7,
        hash: "zzz".into(),
        created_at: Some(50),
        name: None,
    };
    let a = assess(&[stray, row(8, &ms[0])], &ms);
    assert_eq!(a.problems.len(), 1);
    assert_eq!(a.problems[0].kind(), "unknownLedgerRow");
    let err = plan(&a, &ms, PlanOptions::default()).unwrap_err();
    assert!(matches!(&err, PlanError::UnknownRows { count: 1, first } if first.contains("id=7")));
    let options = PlanOptions {
        allow_unknown_rows: true,
        ..Default::default()
    };
    let p = plan(&a, &ms, options).unwrap();
    assert_eq!(tags(&p.migrations().collect::<Vec<_>>()), [ms[1].tag.clone()]);
}

#[test]
fn unknown_row_newer_than_local_migrations_makes_them_out_of_order() {
    // drizzle-orm compares with the newest row, known or not.
    let ms = plain(2);
    let stray = LedgerRow {
        id: 9,
        hash: "zzz".into(),
        created_at: Some(10_000),
        name: None,
    };
    let a = assess(&[row(1, &ms[0]), stray], &ms);
    assert!(a.problems.iter().any(|p| p.kind() == "outOfOrder"));
    assert!(a.pending.is_empty());
}

#[test]
fn an_edited_when_is_hinted_by_hash() {
    let ms = plain(1);
    let moved = LedgerRow {
        id: 1,
        hash: ms[0].hash.clone(),
        created_at: Some(1),
        name: None,
    };
    let a = assess(&[moved], &ms);
    assert!(matches!(&a.problems[0], Problem::UnknownRow { same_hash_as: Some(t), .. } if t == "0000_m"));
    assert!(a.problems[0].describe().contains("edited"));
}

#[test]
fn null_created_at_is_unknown() {
    let ms = plain(1);
    let a = assess(
        &[LedgerRow {
            id: 1,
            hash: "x".into(),
            created_at: None,
            name: None,
        }],
        &ms,
    );
    assert_eq!(a.problems[0].kind(), "unknownLedgerRow");
    assert_eq!(a.pending.len(), 1);
}

#[test]
fn target_stops_at_the_tag_and_defers_the_rest() {
    let ms = plain(4);
    let a = assess(&[row(1, &ms[0])], &ms);
    let options = PlanOptions {
        target: Some("0002_m"),
        ..Default::default()
    };
    let p = plan(&a, &ms, options).unwrap();
    assert_eq!(tags(&p.migrations().collect::<Vec<_>>()), ["0001_m", "0002_m"]);
    assert_eq!(tags(&p.deferred), ["0003_m"]);
}

#[test]
fn target_already_applied_plans_nothing() {
    let ms = plain(3);
    let a = assess(&[row(1, &ms[0]), row(2, &ms[1])], &ms);
    let p = plan(
        &a,
        &ms,
        PlanOptions {
            target: Some("0000_m"),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(p.is_empty());
    assert_eq!(p.deferred.len(), 1);
}

#[test]
fn unknown_target_is_named() {
    let ms = plain(1);
    let a = assess(&[], &ms);
    let err = plan(
        &a,
        &ms,
        PlanOptions {
            target: Some("9999_nope"),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err, PlanError::UnknownTarget { tag: "9999_nope".into() });
}

#[test]
fn autocommit_migration_runs_alone_between_transactions() {
    let ms = vec![
        migration(0, 1, TransactionMode::Transaction, false),
        migration(1, 2, TransactionMode::Transaction, false),
        migration(2, 3, autocommit(), false),
        migration(3, 4, TransactionMode::Transaction, false),
    ];
    let a = assess(&[], &ms);
    let p = plan(&a, &ms, PlanOptions::default()).unwrap();
    let shape: Vec<(SegmentMode, usize)> = p.segments.iter().map(|s| (s.mode, s.migrations.len())).collect();
    assert_eq!(
        shape,
        [
            (SegmentMode::Transaction, 2),
            (SegmentMode::Autocommit, 1),
            (SegmentMode::Transaction, 1)
        ]
    );
}

#[test]
fn consecutive_autocommit_migrations_each_get_a_segment() {
    let ms = vec![migration(0, 1, autocommit(), false), migration(1, 2, autocommit(), false)];
    let p = plan(&assess(&[], &ms), &ms, PlanOptions::default()).unwrap();
    assert_eq!(p.segments.len(), 2);
    assert!(p
        .segments
        .iter()
        .all(|s| s.mode == SegmentMode::Autocommit && s.migrations.len() == 1));
}

#[test]
fn enum_value_addition_closes_its_segment() {
    let ms = vec![
        migration(0, 1, TransactionMode::Transaction, false),
        migration(1, 2, TransactionMode::Transaction, true),
        migration(2, 3, TransactionMode::Transaction, false),
        migration(3, 4, TransactionMode::Transaction, false),
    ];
    let p = plan(&assess(&[], &ms), &ms, PlanOptions::default()).unwrap();
    let groups: Vec<Vec<String>> = p.segments.iter().map(|s| tags(&s.migrations)).collect();
    assert_eq!(groups, [vec!["0000_m", "0001_m"], vec!["0002_m", "0003_m"]]);
}

#[test]
fn enum_value_addition_as_last_pending_leaves_no_empty_segment() {
    let ms = vec![
        migration(0, 1, TransactionMode::Transaction, false),
        migration(1, 2, TransactionMode::Transaction, true),
    ];
    let p = plan(&assess(&[], &ms), &ms, PlanOptions::default()).unwrap();
    assert_eq!(p.segments.len(), 1);
}

#[test]
fn every_pending_migration_lands_in_exactly_one_segment_in_order() {
    // Exhaustive over all mode/enum combinations of 5 migrations.
    for bits in 0..(1u32 << 10) {
        let ms: Vec<Migration> = (0..5)
            .map(|i| {
                let mode = if bits & (1 << i) != 0 {
                    autocommit()
                } else {
                    TransactionMode::Transaction
                };
                migration(i, i as i64 + 1, mode, bits & (1 << (i + 5)) != 0)
            })
            .collect();
        let p = plan(&assess(&[], &ms), &ms, PlanOptions::default()).unwrap();
        let order: Vec<usize> = p.migrations().map(|m| m.idx).collect();
        assert_eq!(order, [0, 1, 2, 3, 4], "bits={bits:b}");
        for s in &p.segments {
            assert!(!s.migrations.is_empty());
            if s.mode == SegmentMode::Autocommit {
                assert_eq!(s.migrations.len(), 1);
            }
            // An enum addition is only ever the last of its transaction.
            for m in &s.migrations[..s.migrations.len() - 1] {
                assert!(!m.adds_enum_value(), "bits={bits:b}");
            }
        }
    }
}

/// drizzle-kit 1.0 folders in drizzle-orm 1.0's order; the last two share one second.
fn folders() -> Vec<Migration> {
    ["20250101120000_a", "20250101120005_b", "20250101120005_C"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut m = migration(i, 1_735_732_800_000 + 5000 * i.min(1) as i64, TransactionMode::Transaction, false);
            m.tag = name.to_string();
            m.name = Some(name.to_string());
            m
        })
        .collect()
}

fn named(id: i32, m: &Migration) -> LedgerRow {
    LedgerRow {
        name: m.name.clone(),
        ..row(id, m)
    }
}

#[test]
fn a_1_0_folder_is_applied_when_its_name_is_in_the_ledger() {
    let ms = folders();
    let a = assess_folders(&[], &ms);
    assert_eq!(tags(&a.pending), ["20250101120000_a", "20250101120005_b", "20250101120005_C"]);
    // Ties within one second: matched by name, not by the shared created_at.
    let a = assess_folders(&[named(1, &ms[0]), named(2, &ms[1])], &ms);
    assert!(a.problems.is_empty(), "{:?}", a.problems);
    assert_eq!(a.applied.iter().map(|x| x.row_id).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(tags(&a.pending), ["20250101120005_C"]);
    assert_eq!(a.current().map(|m| m.tag.as_str()), Some("20250101120005_b"));
    let all: Vec<LedgerRow> = ms.iter().enumerate().map(|(i, m)| named(i as i32 + 1, m)).collect();
    let a = assess_folders(&all, &ms);
    assert!(a.pending.is_empty() && a.problems.is_empty());
}

#[test]
fn rows_without_a_name_are_ignored_as_drizzle_1_0_ignores_them() {
    let ms = folders();
    // A row with the first folder's created_at and hash but no name: not applied.
    let a = assess_folders(&[row(1, &ms[0])], &ms);
    assert!(a.applied.is_empty() && a.problems.is_empty());
    assert_eq!(a.pending.len(), 3);
}

#[test]
fn a_changed_1_0_file_is_a_checksum_mismatch() {
    let ms = folders();
    let mut r = named(1, &ms[0]);
    r.hash = "old".into();
    let a = assess_folders(&[r], &ms);
    assert_eq!(a.applied.len(), 1);
    let err = plan(&a, &ms, PlanOptions::default()).unwrap_err();
    assert!(
        matches!(&err, PlanError::ChecksumMismatch { tag, .. } if tag == "20250101120000_a"),
        "{err}"
    );
}

#[test]
fn a_renamed_or_deleted_folder_is_an_unknown_row_with_a_hint() {
    let ms = folders();
    let mut renamed = named(1, &ms[0]);
    renamed.name = Some("20250101120000_old_name".into());
    let a = assess_folders(&[renamed.clone()], &ms);
    assert_eq!(a.problems.len(), 2, "{:?}", a.problems);
    let text = a.problems[0].describe();
    assert!(text.contains("name=20250101120000_old_name matches no migration folder"), "{text}");
    assert!(text.contains("same hash as 20250101120000_a: was the folder renamed?"), "{text}");
    assert_eq!(a.problems[1].kind(), "renamedMigration");
    // A folder deleted: its row is unknown, refused unless allowed.
    let mut deleted = renamed;
    deleted.hash = "gone".into();
    let a = assess_folders(&[deleted], &ms);
    assert_eq!(a.problems.len(), 1);
    let err = plan(&a, &ms, PlanOptions::default()).unwrap_err();
    assert!(matches!(err, PlanError::UnknownRows { count: 1, .. }));
}

#[test]
fn a_pending_folder_before_an_applied_one_is_refused() {
    let ms = folders();
    // The middle one was never applied, the newest was (drizzle-orm 1.0 would now apply it).
    let a = assess_folders(&[named(1, &ms[0]), named(2, &ms[2])], &ms);
    assert_eq!(tags(&a.pending), ["20250101120005_b"], "pending: drizzle-orm 1.0 would apply it");
    assert_eq!(a.problems[0].kind(), "outOfOrder");
    let err = plan(&a, &ms, PlanOptions::default()).unwrap_err();
    assert!(
        matches!(&err, PlanError::OutOfOrderFolder { tag, newest_applied } if tag == "20250101120005_b" && newest_applied == "20250101120005_C"),
        "{err}"
    );
    assert_eq!(err.error_type(), ErrorType::OutOfOrderMigration);
    let allowed = PlanOptions {
        allow_out_of_order: true,
        ..PlanOptions::default()
    };
    let p = plan(&a, &ms, allowed).unwrap();
    assert_eq!(tags(&p.migrations().collect::<Vec<_>>()), ["20250101120005_b"]);
}

#[test]
fn a_renamed_applied_folder_is_refused_even_with_unknown_rows_allowed() {
    let ms = folders();
    let mut renamed = named(1, &ms[0]);
    renamed.name = Some("20250101115959_old_name".into());
    let a = assess_folders(&[renamed], &ms);
    assert!(!tags(&a.pending).contains(&"20250101120000_a".to_string()));
    let allowed = PlanOptions {
        allow_unknown_rows: true,
        allow_out_of_order: true,
        ..PlanOptions::default()
    };
    let err = plan(&a, &ms, allowed).unwrap_err();
    assert!(
        matches!(&err, PlanError::RenamedFolder { tag, applied_as } if tag == "20250101120000_a" && applied_as == "20250101115959_old_name"),
        "{err}"
    );
}

#[test]
fn commit_after_marker_closes_its_segment() {
    let mut ms = plain(4);
    ms[1].commit_after = true;
    let a = assess(&[], &ms);
    let p = plan(&a, &ms, PlanOptions::default()).unwrap();
    let groups: Vec<Vec<String>> = p.segments.iter().map(|s| tags(&s.migrations)).collect();
    assert_eq!(
        groups,
        vec![vec!["0000_m".to_string(), "0001_m".into()], vec!["0002_m".into(), "0003_m".into()]]
    );
}

#[test]
fn a_migration_that_commits_itself_ends_its_segment() {
    let mut ms = plain(3);
    ms[0].needs = committing();
    let a = assess(&[], &ms);
    let p = plan(&a, &ms, PlanOptions::default()).unwrap();
    let groups: Vec<Vec<String>> = p.segments.iter().map(|s| tags(&s.migrations)).collect();
    assert_eq!(groups, vec![vec!["0000_m".to_string()], vec!["0001_m".into(), "0002_m".into()]]);
}

#[test]
fn a_migration_that_commits_itself_runs_alone() {
    let mut ms = plain(3);
    ms[1].needs = committing();
    let a = assess(&[], &ms);
    let p = plan(&a, &ms, PlanOptions::default()).unwrap();
    let groups: Vec<Vec<String>> = p.segments.iter().map(|s| tags(&s.migrations)).collect();
    assert_eq!(
        groups,
        vec![vec!["0000_m".to_string()], vec!["0001_m".into()], vec!["0002_m".into()]]
    );
}

#[test]
fn a_pending_rollback_or_copy_is_refused_naming_file_and_line() {
    let mut ms = plain(2);
    ms[1].statements = vec![
        Statement::new("CREATE TABLE t ();", 1),
        Statement::new("\nINSERT INTO t DEFAULT VALUES;\nROLLBACK;", 3),
    ];
    let a = assess(&[], &ms);
    let err = plan(&a, &ms, PlanOptions::default()).unwrap_err();
    assert!(
        matches!(&err, PlanError::RefusedStatement { tag, file, line: 4, what: "ROLLBACK", .. } if tag == "0001_m" && file == "0001_m.sql"),
        "{err:?}"
    );
    assert_eq!(err.error_type(), ErrorType::InvalidMigrations);
    assert!(err.to_string().starts_with("0001_m.sql, line 4: ROLLBACK"), "{err}");
    ms[1].statements = vec![Statement::new("COPY t TO STDOUT;", 7)];
    let a = assess(&[], &ms);
    assert!(matches!(
        plan(&a, &ms, PlanOptions::default()),
        Err(PlanError::RefusedStatement {
            what: "COPY TO STDOUT",
            line: 7,
            ..
        })
    ));
    // Applied already: not this run's to refuse.
    let a = assess(&[row(1, &ms[0]), row(2, &ms[1])], &ms);
    assert!(plan(&a, &ms, PlanOptions::default()).is_ok());
}

#[test]
fn a_plan_over_rewritten_migrations_runs_the_rewritten_one_alone_and_keeps_the_rest() {
    let ms = plain(3);
    let a = assess(&[row(1, &ms[0])], &ms);
    let p = plan(&a, &ms, PlanOptions::default()).unwrap();
    assert_eq!(p.segments.len(), 1);
    // `--online` rewrote 0001 into a step-by-step migration under the same tag.
    let mut rewritten = ms.clone();
    rewritten[1].needs = Needs {
        mode: autocommit(),
        ..Needs::PLAIN
    }
    .into();
    rewritten[1].statements = vec![Statement::new("SELECT 1", 1), Statement::new("SELECT 2", 1)];
    let over = over(&p, &rewritten);
    let modes: Vec<SegmentMode> = over.segments.iter().map(|s| s.mode).collect();
    assert_eq!(modes, [SegmentMode::Autocommit, SegmentMode::Transaction]);
    assert_eq!(over.segments[0].migrations[0].statements.len(), 2, "the rewritten one runs");
    assert_eq!(tags(&over.migrations().collect::<Vec<_>>()), ["0001_m", "0002_m"]);
}
