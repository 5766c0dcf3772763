//! A commit segment in one flight. Every request of the transaction (its `BEGIN` and session
//! settings, each statement, each migration's duration mark, the segment's ledger and history
//! rows, the `COMMIT`) is sent before any answer is awaited; tokio-postgres writes them out back to back and PostgreSQL
//! answers each in order, so the segment costs one round trip however many statements it has,
//! where sending each after the last one's answer costs one round trip per statement.
//!
//! Each statement stays a request of its own (one simple query), so its answer says exactly
//! which statement failed. Once one fails, PostgreSQL rejects the rest of the transaction with
//! 25P02 and answers the `COMMIT` with a rollback: [`first_failure`] keeps the first real error.
//! The order is fixed when the requests are built, and the answers are read in that order.

use std::ops::Range;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::{Client, SimpleQueryMessage, SimpleQueryStream};

use crate::engine::plan::Segment;

/// in_failed_sql_transaction: what the server answers every request after the one that failed.
pub const IN_FAILED_TRANSACTION: &str = "25P02";

/// What one request of the flight is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `BEGIN`, the transaction's timeouts, the duration mark, and the deadline if any.
    Begin,
    /// Re-arms `statement_timeout` with what is left until the deadline, just before statement
    /// `statement` of migration `migration` (0-based) starts; fails if the deadline has passed.
    Arm {
        migration: usize,
        statement: usize,
    },
    /// Statement `statement` of migration `migration` (0-based, in the segment).
    Statement {
        migration: usize,
        statement: usize,
    },
    /// The duration mark of a migration with no statement to carry it (see [`Request::ends`]).
    Mark {
        migration: usize,
    },
    /// The ledger and history rows of migrations `first..end`, in two multi-row inserts: at the
    /// end of the segment, and around a migration whose own `COMMIT` ends the transaction (the
    /// rows before it are written inside the transaction it commits, its own right after it).
    Rows {
        first: usize,
        end: usize,
    },
    /// With a deadline, right before the `COMMIT`: fails once it has passed, so a segment the
    /// client gave up on (a link that stalled after the flight was sent) is never committed late.
    CommitCheck,
    Commit,
}

impl Part {
    /// The migration this request belongs to, if any.
    pub fn migration(self) -> Option<usize> {
        match self {
            Self::Arm { migration, .. } | Self::Statement { migration, .. } | Self::Mark { migration } => Some(migration),
            Self::Begin | Self::Rows { .. } | Self::CommitCheck | Self::Commit => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub part: Part,
    pub sql: String,
    /// The request ends this migration (0-based, in the segment): its last statement carries the
    /// duration mark, so the request's last row is the migration's duration on the server's
    /// clock, and progress is reported as it arrives. One request less per migration: each
    /// costs the server a round of its protocol loop, about as much as a small statement.
    pub ends: Option<usize>,
}

/// How the flight bounds itself in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// What is left until the run's deadline when the flight is sent; `None` without one.
    pub left: Option<Duration>,
    /// The operator's `statement_timeout`, if any.
    pub statement_timeout: Option<Duration>,
}

/// The SQL a segment's requests carry besides the migrations' own.
pub struct Bookkeeping<R: Fn(Range<usize>) -> String> {
    /// The transaction's `SET LOCAL` list.
    pub settings: String,
    /// Starts the first migration's duration.
    pub mark: &'static str,
    /// Ends a migration's duration and starts the next one's.
    pub duration_mark: &'static str,
    /// The ledger and history rows of the segment's migrations in the range.
    pub rows: R,
}

/// The requests of a segment, in the order they run.
pub fn requests<R: Fn(Range<usize>) -> String>(segment: &Segment<'_>, sql: &Bookkeeping<R>, bounds: Bounds) -> Vec<Request> {
    let (settings, mark) = (&sql.settings, sql.mark);
    let statements: usize = segment.migrations.iter().map(|m| m.statements.len()).sum();
    let armed = bounds.left.is_some();
    let mut out = Vec::with_capacity(statements * (1 + usize::from(armed)) + segment.migrations.len() + 4);
    let mut unwritten = 0;
    let mut write_rows = |out: &mut Vec<Request>, end: usize| {
        if unwritten < end {
            out.push(Request {
                part: Part::Rows { first: unwritten, end },
                sql: (sql.rows)(unwritten..end),
                ends: None,
            });
            unwritten = end;
        }
    };
    let mut begin = format!("BEGIN; {settings}; {mark}");
    if let Some(left) = bounds.left {
        begin.push_str("; ");
        begin.push_str(&deadline_sql(left));
    }
    out.push(Request {
        part: Part::Begin,
        sql: begin,
        ends: None,
    });
    for (mi, m) in segment.migrations.iter().enumerate() {
        if m.ends_transaction {
            write_rows(&mut out, mi);
        }
        for (si, statement) in m.statements.iter().enumerate() {
            if armed {
                out.push(Request {
                    part: Part::Arm {
                        migration: mi,
                        statement: si,
                    },
                    sql: arm_sql(bounds.statement_timeout),
                    ends: None,
                });
            }
            let last = si + 1 == m.statements.len();
            out.push(Request {
                part: Part::Statement {
                    migration: mi,
                    statement: si,
                },
                // On a line of its own: the statement may end in a `--` comment.
                sql: if last {
                    format!("{}\n;{}", statement.sql, sql.duration_mark)
                } else {
                    statement.sql.clone()
                },
                ends: last.then_some(mi),
            });
        }
        if m.statements.is_empty() {
            out.push(Request {
                part: Part::Mark { migration: mi },
                sql: sql.duration_mark.to_string(),
                ends: Some(mi),
            });
        }
        if m.ends_transaction {
            write_rows(&mut out, mi + 1);
        }
    }
    write_rows(&mut out, segment.migrations.len());
    if armed {
        out.push(Request {
            part: Part::CommitCheck,
            sql: arm_sql(bounds.statement_timeout),
            ends: None,
        });
    }
    out.push(Request {
        part: Part::Commit,
        sql: "COMMIT".into(),
        ends: None,
    });
    out
}

/// The deadline as a setting on the server's clock: `left` from when the server begins the
/// segment (later than the client's clock by the one-way latency). A session setting, like the
/// duration mark (`ledger::MARK_SQL`), so a migration's own `COMMIT` does not erase it.
fn deadline_sql(left: Duration) -> String {
    format!(
        "select set_config('wishlist_migrator.deadline', (clock_timestamp() + interval '{} milliseconds')::text, false)",
        left.as_millis()
    )
}

/// Before each statement, as the unpipelined applier did from the client: `statement_timeout`
/// re-armed with what is left until the deadline (and no more than the operator's), so the
/// whole segment ends by it; past the deadline the request fails (a cast error the applier
/// reports as the deadline), so no later statement starts.
fn arm_sql(statement_timeout: Option<Duration>) -> String {
    let limit = match statement_timeout {
        Some(c) => format!("least({}, d.ms)", c.as_millis().max(1)),
        None => "d.ms".to_string(),
    };
    format!(
        "select set_config('statement_timeout', (case when d.ms > 0 then {limit} \
         else ('deadline passed ' || d.ms)::bigint end)::bigint::text, true) \
         from (select floor(extract(epoch from nullif(current_setting('wishlist_migrator.deadline', true), '')::timestamptz - clock_timestamp()) * 1000) as ms) d"
    )
}

/// Sends every request without awaiting any answer: each call only queues its message for the
/// connection task, which writes them out together.
pub async fn send(client: &Client, requests: &[Request]) -> Vec<Result<SimpleQueryStream, tokio_postgres::Error>> {
    let mut streams = Vec::with_capacity(requests.len());
    for request in requests {
        streams.push(client.simple_query_raw(&request.sql).await);
    }
    streams
}

/// Reads one request's answer to its end: the first column of its last row, if it returned any
/// (a statement that returns rows comes before the duration mark it carries).
pub async fn answer(stream: Result<SimpleQueryStream, tokio_postgres::Error>) -> Result<Option<String>, tokio_postgres::Error> {
    let mut stream = Box::pin(stream?);
    let mut last = None;
    while let Some(message) = stream.next().await {
        if let SimpleQueryMessage::Row(row) = message? {
            last = Some(row.get(0).map(str::to_string));
        }
    }
    Ok(last.flatten())
}

/// Which request's failure the segment failed with: the first error that is not the server
/// refusing a request because an earlier one had already failed (25P02). `None` when every
/// request succeeded.
pub fn first_failure<E>(answers: &[(Part, Result<(), E>)], sqlstate: impl Fn(&E) -> Option<&str>) -> Option<usize> {
    let first = answers.iter().position(|(_, a)| a.is_err())?;
    let real = answers[first..]
        .iter()
        .position(|(_, a)| matches!(a, Err(e) if sqlstate(e) != Some(IN_FAILED_TRANSACTION)));
    Some(real.map_or(first, |i| first + i))
}

#[cfg(test)]
mod tests {
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
            statements: statements
                .iter()
                .enumerate()
                .map(|(i, s)| Statement {
                    sql: s.to_string(),
                    line: i + 1,
                })
                .collect(),
            mode: TransactionMode::Transaction,
            adds_enum_value: false,
            marked_no_transaction: false,
            commit_after: false,
            ends_transaction: false,
            down: None,
        }
    }

    #[test]
    fn a_segment_is_begin_its_statements_and_rows_in_order_then_commit() {
        let a = migration("0000_a", &["CREATE TABLE a ()", "CREATE TABLE b ()"]);
        let b = migration("0001_b", &["CREATE TABLE c ()"]);
        let segment = transaction(vec![&a, &b]);
        let requests = requests(&segment, &bookkeeping("SET LOCAL lock_timeout = '1ms'"), UNBOUNDED);
        let parts: Vec<_> = requests.iter().map(|r| r.part).collect();
        use Part::*;
        assert_eq!(
            parts,
            [
                Begin,
                Statement {
                    migration: 0,
                    statement: 0
                },
                Statement {
                    migration: 0,
                    statement: 1
                },
                Statement {
                    migration: 1,
                    statement: 0
                },
                Rows { first: 0, end: 2 },
                Commit
            ]
        );
        assert_eq!(requests[0].sql, "BEGIN; SET LOCAL lock_timeout = '1ms'; MARK");
        // A migration's last statement carries its duration mark, on a line of its own.
        assert_eq!(requests[1].sql, "CREATE TABLE a ()");
        assert_eq!(requests[2].sql, "CREATE TABLE b ()\n;DURATION");
        assert_eq!(requests[3].sql, "CREATE TABLE c ()\n;DURATION");
        let ends: Vec<_> = requests.iter().map(|r| r.ends).collect();
        assert_eq!(ends, [None, None, Some(0), Some(1), None, None]);
        assert_eq!(requests[4].sql, "ROWS 0..2");
        assert_eq!(requests[5].sql, "COMMIT");
    }

    #[test]
    fn a_migration_without_statements_still_has_its_mark() {
        let a = migration("0000_a", &[]);
        let segment = transaction(vec![&a]);
        let requests = requests(&segment, &bookkeeping("S"), UNBOUNDED);
        assert_eq!(requests[1].part, Part::Mark { migration: 0 });
        assert_eq!((requests[1].sql.as_str(), requests[1].ends), ("DURATION", Some(0)));
    }

    const UNBOUNDED: Bounds = Bounds {
        left: None,
        statement_timeout: None,
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

    #[test]
    fn rows_are_written_inside_the_transaction_a_migration_commits_itself() {
        let a = migration("0000_a", &["CREATE TABLE a ()"]);
        let mut b = migration("0001_b", &["CREATE TABLE b ();\nCOMMIT;"]);
        b.ends_transaction = true;
        let segment = transaction(vec![&a, &b]);
        let parts: Vec<_> = requests(&segment, &bookkeeping("S"), UNBOUNDED).iter().map(|r| r.part).collect();
        use Part::*;
        assert_eq!(
            parts,
            [
                Begin,
                Statement {
                    migration: 0,
                    statement: 0
                },
                // 0000_a's rows before 0001_b's COMMIT, so they commit with it.
                Rows { first: 0, end: 1 },
                Statement {
                    migration: 1,
                    statement: 0
                },
                Rows { first: 1, end: 2 },
                Commit
            ]
        );
    }

    #[test]
    fn with_a_deadline_each_statement_is_armed_first() {
        let a = migration("0000_a", &["SELECT 1", "SELECT 2"]);
        let segment = transaction(vec![&a]);
        let bounds = Bounds {
            left: Some(Duration::from_millis(2500)),
            statement_timeout: Some(Duration::from_secs(60)),
        };
        let requests = requests(&segment, &bookkeeping("S"), bounds);
        assert!(requests[0].sql.contains("interval '2500 milliseconds'"), "{}", requests[0].sql);
        assert_eq!(
            requests[1].part,
            Part::Arm {
                migration: 0,
                statement: 0
            }
        );
        assert!(requests[1].sql.contains("least(60000, d.ms)"), "{}", requests[1].sql);
        assert_eq!(
            requests[2].part,
            Part::Statement {
                migration: 0,
                statement: 0
            }
        );
        assert_eq!(
            requests[3].part,
            Part::Arm {
                migration: 0,
                statement: 1
            }
        );
        assert_eq!(requests[4].ends, Some(0));
        assert_eq!(requests[5].part, Part::Rows { first: 0, end: 1 });
        assert_eq!(requests[6].part, Part::CommitCheck);
        assert_eq!(requests[7].part, Part::Commit);
        assert_eq!(requests.len(), 8);
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
}
