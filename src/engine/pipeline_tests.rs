//! The flight builder's tests: what a segment sends, in which requests and flights, and which
//! part a failure is blamed on.

use super::*;
use crate::engine::plan::SegmentMode;
use crate::migrations::source::Migration;
use crate::migrations::source::TransactionMode;
use crate::migrations::statement::Statement;

fn migration(tag: &str, statements: &[&str]) -> Migration {
    Migration {
        idx: 0,
        tag: tag.into(),
        created_at: 0,
        name: None,
        hash: "h".into(),
        statements: statements.iter().enumerate().map(|(i, s)| Statement::new(*s, i + 1)).collect(),
        mode: TransactionMode::Transaction,
        adds_enum_value: false,
        marked_no_transaction: false,
        commit_after: false,
        ends_transaction: false,
        down: None,
    }
}

#[test]
fn a_segment_is_begin_each_migration_in_one_request_and_rows_then_commit() {
    let a = migration("0000_a", &["CREATE TABLE a ()", "CREATE TABLE b ()"]);
    let b = migration("0001_b", &["CREATE TABLE c ()"]);
    let segment = transaction(vec![&a, &b]);
    let requests = requests(&segment, &bookkeeping("SET LOCAL lock_timeout = '1ms'"), UNBOUNDED);
    use Part::*;
    let s = |migration, statement| Statement { migration, statement };
    assert_eq!(
        parts_of(&requests),
        [
            vec![Begin],
            vec![s(0, 0), s(0, 1)],
            vec![s(1, 0)],
            vec![Rows { first: 0, end: 2 }],
            vec![Commit]
        ]
    );
    assert_eq!(requests[0].sql, "BEGIN; SET LOCAL lock_timeout = '1ms'; MARK");
    // Each piece on a line of its own (the one before may end in a `--` comment), the
    // migration's duration mark last.
    assert_eq!(requests[1].sql, "CREATE TABLE a ()\n;CREATE TABLE b ()\n;DURATION");
    assert_eq!(requests[1].starts, [0, 19]);
    assert_eq!(requests[2].sql, "CREATE TABLE c ()\n;DURATION");
    let ends: Vec<_> = requests.iter().map(|r| r.ends).collect();
    assert_eq!(ends, [None, Some(0), Some(1), None, None]);
    assert_eq!(requests[3].sql, "ROWS 0..2");
    assert_eq!(requests[4].sql, "COMMIT");
}

#[test]
fn a_huge_migration_is_cut_into_requests_of_about_a_mebibyte() {
    let insert = format!("INSERT INTO t VALUES ('{}')", "x".repeat(1000));
    let a = migration("0000_a", &vec![insert.as_str(); 3000]);
    let segment = transaction(vec![&a]);
    let requests = requests(&segment, &bookkeeping("S"), UNBOUNDED);
    let statements = &requests[1..requests.len() - 2];
    assert_eq!(statements.len(), 3, "3 MB of statements in 3 requests");
    assert!(statements.iter().all(|r| r.sql.len() < SHARED_BYTES + insert.len() + 16));
    // Every statement once, in order; only the last request ends the migration.
    let parts: Vec<Part> = statements.iter().flat_map(|r| r.parts.clone()).collect();
    let expected: Vec<Part> = (0..3000).map(|statement| Part::Statement { migration: 0, statement }).collect();
    assert_eq!(parts, expected);
    let ends: Vec<_> = statements.iter().map(|r| r.ends).collect();
    assert_eq!(ends, [None, None, Some(0)]);
}

#[test]
fn a_piece_that_may_hold_several_statements_is_a_request_of_its_own() {
    let a = migration(
        "0000_a",
        &["CREATE TABLE a ()", "CREATE TABLE b (); CREATE TABLE c ()", "CREATE TABLE d ()"],
    );
    let segment = transaction(vec![&a]);
    let requests = requests(&segment, &bookkeeping("S"), UNBOUNDED);
    let s = |statement| Part::Statement { migration: 0, statement };
    assert_eq!(parts_of(&requests)[1..4], [vec![s(0)], vec![s(1)], vec![s(2)]]);
    assert_eq!(requests[3].sql, "CREATE TABLE d ()\n;DURATION");
    assert_eq!(requests[3].ends, Some(0));
}

#[test]
fn the_failed_part_is_where_the_error_points_or_after_the_completions() {
    let a = migration("0000_é", &["SELECT 'é'", "SELECT x", "SELECT 3"]);
    let segment = transaction(vec![&a]);
    let request = &requests(&segment, &bookkeeping("S"), UNBOUNDED)[1];
    let s = |statement| Part::Statement { migration: 0, statement };
    assert_eq!(request.starts, [0, 12, 22]);
    // Characters, not bytes: `é` is one.
    assert_eq!(request.sql.chars().nth(12), Some('S'));
    assert_eq!(request.failed_part(0, Some(13)), s(1));
    assert_eq!(request.failed_part(0, Some(12)), s(0));
    assert_eq!(request.failed_part(0, None), s(0));
    assert_eq!(request.failed_part(2, None), s(2));
    // The duration mark after the last statement counts as it.
    assert_eq!(request.failed_part(3, None), s(2));
    assert_eq!(request.failed_part(0, Some(request.sql.chars().count())), s(2));

    let alone = requests(&segment, &bookkeeping("S"), Bounds { share: false, ..UNBOUNDED });
    assert_eq!(parts_of(&alone)[1..4], [vec![s(0)], vec![s(1)], vec![s(2)]]);
}

fn parts_of(requests: &[Request]) -> Vec<Vec<Part>> {
    requests.iter().map(|r| r.parts.clone()).collect()
}

#[test]
fn a_migration_without_statements_still_has_its_mark() {
    let a = migration("0000_a", &[]);
    let segment = transaction(vec![&a]);
    let requests = requests(&segment, &bookkeeping("S"), UNBOUNDED);
    assert_eq!(requests[1].parts, [Part::Mark { migration: 0 }]);
    assert_eq!((requests[1].sql.as_str(), requests[1].ends), ("DURATION", Some(0)));
}

const UNBOUNDED: Bounds<'static> = Bounds {
    deadline: None,
    statement_timeout: None,
    share: true,
};

fn transaction<'m>(migrations: Vec<&'m Migration>) -> Segment<'m> {
    Segment {
        mode: SegmentMode::Transaction,
        migrations,
    }
}

fn bookkeeping(settings: &str) -> Bookkeeping<impl Fn(Range<usize>) -> String> {
    Bookkeeping {
        settings: settings.into(),
        mark: "MARK",
        duration_mark: "DURATION",
        rows: |r: Range<usize>| format!("ROWS {r:?}"),
    }
}

fn committing(tag: &str, statements: &[&str]) -> Migration {
    let mut m = migration(tag, statements);
    m.ends_transaction = true;
    m
}

fn flight_parts(requests: &[Request]) -> Vec<Vec<Vec<Part>>> {
    flights(requests).map(parts_of).collect()
}

#[test]
fn a_file_that_ends_with_its_own_commit_has_its_rows_before_it_and_no_commit_of_ours() {
    // dittofeed's 0002: the COMMIT is a piece of its own (statement::split).
    let a = committing("0000_a", &["CREATE TABLE b ()", "COMMIT;"]);
    let segment = transaction(vec![&a]);
    let requests = requests(&segment, &bookkeeping("S"), UNBOUNDED);
    use Part::*;
    let s = |statement| vec![Statement { migration: 0, statement }];
    assert_eq!(
        flight_parts(&requests),
        [vec![vec![Begin], s(0), vec![Rows { first: 0, end: 1 }], s(1)]]
    );
    // The duration mark rides on the last statement before the COMMIT.
    assert_eq!(requests[1].ends, Some(0));
    assert!(requests[1].sql.ends_with("DURATION"));
    assert_eq!(requests[3].sql, "COMMIT;");
}

#[test]
fn a_commit_with_more_after_it_ends_a_flight_and_the_rest_runs_in_a_new_transaction() {
    // The case: CREATE TABLE, COMMIT, then a statement that fails.
    let a = committing(
        "0000_c",
        &["CREATE TABLE t (id integer);", "COMMIT;", "INSERT INTO t VALUES (1/0);"],
    );
    let segment = transaction(vec![&a]);
    let requests = requests(&segment, &bookkeeping("SET LOCAL lock_timeout = '1ms'"), UNBOUNDED);
    use Part::*;
    let s = |statement| vec![Statement { migration: 0, statement }];
    assert_eq!(
        flight_parts(&requests),
        [
            vec![vec![Begin], s(0), s(1)],
            vec![vec![Rebegin], s(2), vec![Rows { first: 0, end: 1 }], vec![Commit]]
        ]
    );
    // The new transaction has the same bounds as the first.
    assert_eq!(requests[3].sql, "BEGIN; SET LOCAL lock_timeout = '1ms'");
    assert_eq!(requests[4].ends, Some(0));
}

#[test]
fn a_commit_alone_in_a_file_still_has_its_mark_and_rows_before_it() {
    let a = committing("0000_a", &["COMMIT;"]);
    let segment = transaction(vec![&a]);
    let requests = requests(&segment, &bookkeeping("S"), UNBOUNDED);
    use Part::*;
    assert_eq!(
        flight_parts(&requests),
        [vec![
            vec![Begin],
            vec![Mark { migration: 0 }],
            vec![Rows { first: 0, end: 1 }],
            vec![Statement {
                migration: 0,
                statement: 0
            }]
        ]]
    );
}

#[test]
fn with_a_deadline_the_files_commit_is_armed_like_any_statement() {
    let a = committing("0000_a", &["CREATE TABLE b ()", "COMMIT;", "SELECT 1"]);
    let segment = transaction(vec![&a]);
    let deadline = server_deadline("2026-12-06 01:00:00+00", Duration::from_secs(3));
    let bounds = Bounds {
        deadline: Some(&deadline),
        statement_timeout: None,
        share: true,
    };
    let requests = requests(&segment, &bookkeeping("S"), bounds);
    use Part::*;
    let (arm, s) = (
        |statement| vec![Arm { migration: 0, statement }],
        |statement| vec![Statement { migration: 0, statement }],
    );
    assert_eq!(
        flight_parts(&requests),
        [
            vec![vec![Begin], arm(0), s(0), arm(1), s(1)],
            vec![
                vec![Rebegin],
                arm(2),
                s(2),
                vec![Rows { first: 0, end: 1 }],
                vec![CommitCheck],
                vec![Commit]
            ]
        ]
    );
}

#[test]
fn with_a_deadline_each_statement_is_armed_first() {
    let a = migration("0000_a", &["SELECT 1", "SELECT 2"]);
    let segment = transaction(vec![&a]);
    let deadline = server_deadline("2026-12-06 01:00:00+00", Duration::from_millis(2500));
    let bounds = Bounds {
        deadline: Some(&deadline),
        statement_timeout: Some(Duration::from_secs(60)),
        share: true,
    };
    let requests = requests(&segment, &bookkeeping("S"), bounds);
    // An instant on the server's clock, not "now" when the server happens to begin.
    assert!(
        requests[0].sql.ends_with(
            "set_config('wishlist_migrator.deadline', ('2026-12-06 01:00:00+00'::timestamptz + interval '2500 milliseconds')::text, false)"
        ),
        "{}",
        requests[0].sql
    );
    use Part::*;
    let (arm, s) = (
        |statement| Arm { migration: 0, statement },
        |statement| Statement { migration: 0, statement },
    );
    assert_eq!(
        parts_of(&requests),
        [
            vec![Begin],
            vec![arm(0), s(0), arm(1), s(1)],
            vec![Rows { first: 0, end: 1 }],
            vec![CommitCheck],
            vec![Commit]
        ]
    );
    assert!(requests[1].sql.starts_with(&arm_sql(Some(Duration::from_secs(60)))));
    assert!(requests[1].sql.contains("least(60000, d.ms)"), "{}", requests[1].sql);
    assert_eq!(requests[1].ends, Some(0));
    // A failed re-arm is told from the statement after it.
    assert_eq!(requests[1].failed_part(2, None), arm(1));
    assert!(!arm_sql(None).contains("least"));
}

#[test]
fn the_first_real_error_is_blamed_not_the_rejections_after_it() {
    let ok = |p| (p, Ok(()));
    let err = |p, code: &'static str| (p, Err(code));
    fn code<'a>(e: &'a &'static str) -> Option<&'a str> {
        Some(*e)
    }
    let s = |statement| Part::Statement { migration: 0, statement };
    let answers = [ok(Part::Begin), ok(s(0)), err(s(1), "42P07"), err(s(2), "25P02"), ok(Part::Commit)];
    assert_eq!(first_failure(&answers, code), Some(2));
    // A broken connection fails everything from some request on: the first failure it is.
    let answers = [ok(Part::Begin), err(s(0), "none"), err(s(1), "none")];
    assert_eq!(first_failure(&answers, code), Some(1));
    // Only rejections (the real error was lost): the first of them still names a place.
    let answers = [ok(Part::Begin), err(s(0), "25P02"), err(s(1), "25P02")];
    assert_eq!(first_failure(&answers, code), Some(1));
    let answers = [ok(Part::Begin), ok(s(0)), ok(Part::Commit)];
    assert_eq!(first_failure(&answers, code), None);
    assert_eq!(Part::Mark { migration: 3 }.migration(), Some(3));
    assert_eq!(Part::Rows { first: 0, end: 3 }.migration(), None);
}
