//! A commit segment in one flight. Every request of the transaction (its `BEGIN` and session
//! settings, each statement, each migration's duration mark, the segment's ledger and history
//! rows, the `COMMIT`) is sent before any answer is awaited; tokio-postgres writes them out back to back and PostgreSQL
//! answers each in order, so the segment costs one round trip however many statements it has,
//! where sending each after the last one's answer costs one round trip per statement.
//!
//! A migration's statements go in one request (one simple query of several statements) when
//! each is surely one SQL statement ([`Statement::is_single`]): each then answers with one
//! completion, so the completions that arrived before an error, or the error's position in the
//! request's text, say exactly which statement failed ([`Request::failed_part`]). Since
//! PostgreSQL 13 `statement_timeout` applies to each statement of such a request on its own. A
//! piece that may hold several statements stays a request of its own. Once one fails,
//! PostgreSQL rejects the rest of the transaction with 25P02 and answers the `COMMIT` with a
//! rollback: [`first_failure`] keeps the first real error. The order is fixed when the requests
//! are built, and the answers are read in that order.
//!
//! [`Statement::is_single`]: crate::migrations::statement::Statement::is_single

use std::ops::Range;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::error::ErrorPosition;
use tokio_postgres::{Client, SimpleQueryMessage, SimpleQueryStream};

use crate::engine::plan::Segment;

/// in_failed_sql_transaction: what the server answers every request after the one that failed.
pub const IN_FAILED_TRANSACTION: &str = "25P02";

/// What one request of the flight is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `BEGIN`, the transaction's timeouts, the duration mark, and the deadline if any.
    Begin,
    /// After a migration's own `COMMIT` (which ended a flight): `BEGIN` and the transaction's
    /// timeouts again, so what follows runs in a transaction with its bounds, as the rest does.
    Rebegin,
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
            Self::Begin | Self::Rebegin | Self::Rows { .. } | Self::CommitCheck | Self::Commit => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What the request carries, in order: one part, or a migration's statements (each with its
    /// deadline re-arm before it, if any), each of them one SQL statement.
    pub parts: Vec<Part>,
    /// Where each part's text starts in `sql`, in characters: the unit of PostgreSQL's error
    /// position.
    pub starts: Vec<usize>,
    pub sql: String,
    /// `sql`'s length in characters as [`Request::push`] left it: counting the whole text at
    /// each push would be quadratic in a migration of many pieces.
    chars: usize,
    /// The request ends this migration (0-based, in the segment): its last statement carries the
    /// duration mark, so the request's last row is the migration's duration on the server's
    /// clock, and progress is reported as it arrives. One request less per migration: each
    /// costs the server a round of its protocol loop, about as much as a small statement.
    pub ends: Option<usize>,
    /// The request ends the transaction (a migration's own `COMMIT`, or the segment's): the
    /// flight ends with it, and nothing more is sent until its answers are read, so nothing
    /// after a `COMMIT` ever runs outside a transaction and its bounds.
    pub ends_flight: bool,
}

/// How the flight bounds itself in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds<'b> {
    /// The run's deadline on the server's clock (a `timestamptz` expression), `None` without
    /// one: a flight that reaches the server late (a link that held it) finds it passed, however
    /// late the server began it.
    pub deadline: Option<&'b str>,
    /// The operator's `statement_timeout`, if any.
    pub statement_timeout: Option<Duration>,
    /// The server times each statement of a multi-statement request on its own (PostgreSQL 13
    /// on), so a migration's statements may share a request; before, each is a request of its
    /// own, which its timeout bounds alone.
    pub share: bool,
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

impl Request {
    fn one(part: Part, sql: String) -> Self {
        Self {
            parts: vec![part],
            starts: vec![0],
            chars: sql.chars().count(),
            sql,
            ends: None,
            ends_flight: false,
        }
    }

    fn ending_flight(part: Part, sql: String) -> Self {
        Self {
            ends_flight: true,
            ..Self::one(part, sql)
        }
    }

    fn empty() -> Self {
        Self {
            parts: Vec::new(),
            starts: Vec::new(),
            sql: String::new(),
            chars: 0,
            ends: None,
            ends_flight: false,
        }
    }

    /// Adds a part to the request's text, as a statement of its own.
    fn push(&mut self, part: Part, sql: &str) {
        if !self.sql.is_empty() {
            // On a line of its own: the text before may end in a `--` comment.
            self.sql.push_str("\n;");
            self.chars += 2;
        }
        self.parts.push(part);
        self.starts.push(self.chars);
        self.sql.push_str(sql);
        self.chars += sql.chars().count();
    }

    /// The part the request first carries (what it begins).
    pub fn first(&self) -> Part {
        self.parts[0]
    }

    /// Which part failed, from the error's position in the request's text (1-based characters,
    /// as PostgreSQL gives it for a syntax error, which stops the request before its first
    /// statement runs) or else the completions that arrived before it. A duration mark after
    /// the last part counts as that part.
    pub fn failed_part(&self, completed: usize, position: Option<usize>) -> Part {
        let at = match position {
            Some(p) => self.starts.iter().rposition(|&s| s < p).unwrap_or(0),
            None => completed,
        };
        self.parts[at.min(self.parts.len() - 1)]
    }
}

/// The requests of a segment, in the order they run. A request with [`Request::ends_flight`]
/// closes a flight: the caller reads every answer up to it before it sends the next.
///
/// A migration with its own `COMMIT` (alone in its segment: `plan::segments`) has that
/// `COMMIT` as a piece of its own (`statement::split`). When the `COMMIT` is the file's last
/// statement, the migration's duration mark and ledger rows go right before it, so they commit
/// with the work they record and the segment needs no `COMMIT` of ours; a `COMMIT` with more
/// after it ends a flight, and a [`Part::Rebegin`] opens the next transaction.
pub fn requests<R: Fn(Range<usize>) -> String>(segment: &Segment<'_>, sql: &Bookkeeping<R>, bounds: Bounds<'_>) -> Vec<Request> {
    let (settings, mark) = (&sql.settings, sql.mark);
    let armed = bounds.deadline.is_some();
    let arm = |migration, statement| Request::one(Part::Arm { migration, statement }, arm_sql(bounds.statement_timeout));
    let mut out = Vec::with_capacity(segment.migrations.len() + 4);
    let mut unwritten = 0;
    let mut write_rows = |out: &mut Vec<Request>, end: usize| {
        if unwritten < end {
            out.push(Request::one(Part::Rows { first: unwritten, end }, (sql.rows)(unwritten..end)));
            unwritten = end;
        }
    };
    let mut begin = format!("BEGIN; {settings}; {mark}");
    if let Some(deadline) = bounds.deadline {
        begin.push_str("; ");
        begin.push_str(&deadline_sql(deadline));
    }
    out.push(Request::one(Part::Begin, begin));
    // The segment's transaction was committed by a migration's own last statement.
    let mut committed_by_file = false;
    for (mi, m) in segment.migrations.iter().enumerate() {
        if committed_by_file {
            out.push(Request::one(Part::Rebegin, format!("BEGIN; {settings}")));
            committed_by_file = false;
        }
        if m.ends_transaction {
            write_rows(&mut out, mi);
        }
        // Statements that share a request, until one that cannot.
        let mut shared: Option<Request> = None;
        let mut marked = false;
        for (si, statement) in m.statements.iter().enumerate() {
            let part = Part::Statement {
                migration: mi,
                statement: si,
            };
            if statement.ends_transaction() {
                out.extend(shared.take());
                let last = si + 1 == m.statements.len();
                if last {
                    mark_migration(&mut out, mi, si > 0, sql.duration_mark);
                    marked = true;
                    write_rows(&mut out, mi + 1);
                }
                if armed {
                    out.push(arm(mi, si));
                }
                out.push(Request::ending_flight(part, statement.sql.clone()));
                if last {
                    committed_by_file = true;
                } else {
                    out.push(Request::one(Part::Rebegin, format!("BEGIN; {settings}")));
                }
                continue;
            }
            if bounds.share && statement.is_single() && !m.ends_transaction {
                if shared.as_ref().is_some_and(|r| r.sql.len() >= SHARED_BYTES) {
                    out.extend(shared.take());
                }
                let request = shared.get_or_insert_with(Request::empty);
                if armed {
                    request.push(
                        Part::Arm {
                            migration: mi,
                            statement: si,
                        },
                        &arm_sql(bounds.statement_timeout),
                    );
                }
                request.push(part, &statement.sql);
                continue;
            }
            out.extend(shared.take());
            if armed {
                out.push(arm(mi, si));
            }
            out.push(Request::one(part, statement.sql.clone()));
        }
        out.extend(shared.take());
        if !marked {
            mark_migration(&mut out, mi, !m.statements.is_empty(), sql.duration_mark);
        }
        if m.ends_transaction && !committed_by_file {
            write_rows(&mut out, mi + 1);
        }
    }
    if committed_by_file {
        return shrunk(out);
    }
    write_rows(&mut out, segment.migrations.len());
    if armed {
        out.push(Request::one(Part::CommitCheck, arm_sql(bounds.statement_timeout)));
    }
    out.push(Request::ending_flight(Part::Commit, "COMMIT".into()));
    shrunk(out)
}

/// A shared request's text grew by doubling: up to twice what it holds, for every request.
fn shrunk(mut requests: Vec<Request>) -> Vec<Request> {
    for request in &mut requests {
        request.sql.shrink_to_fit();
    }
    requests
}

/// Ends migration `mi`: its duration mark rides on the last request when that carries the
/// migration's last statement (`on_last`), else it is a request of its own.
fn mark_migration(out: &mut Vec<Request>, mi: usize, on_last: bool, duration_mark: &str) {
    match out.last_mut() {
        Some(last) if on_last && last.first().migration() == Some(mi) && !last.ends_flight => {
            last.sql.push_str("\n;");
            last.sql.push_str(duration_mark);
            last.ends = Some(mi);
        }
        _ => out.push(Request {
            ends: Some(mi),
            ..Request::one(Part::Mark { migration: mi }, duration_mark.to_string())
        }),
    }
}

/// The requests cut into flights: each ends with a request that ends a transaction.
pub fn flights(requests: &[Request]) -> impl Iterator<Item = &[Request]> {
    requests.split_inclusive(|r| r.ends_flight)
}

/// The deadline as a setting, on the server's clock. A session setting, like the duration mark
/// (`ledger::MARK_SQL`), so a migration's own `COMMIT` does not erase it.
fn deadline_sql(deadline: &str) -> String {
    format!("select set_config('wishlist_migrator.deadline', ({deadline})::text, false)")
}

/// The run's deadline on the server's clock, from one reading of that clock: `server_now` is
/// `clock_timestamp()` as the server answered it, and `left` what was left of the deadline when
/// the answer arrived. The server read its clock before the answer arrived, so the result is
/// never later than the true deadline, and earlier by at most that round trip.
pub fn server_deadline(server_now: &str, left: Duration) -> String {
    format!(
        "{}::timestamptz + interval '{} milliseconds'",
        crate::db::ledger::quote_literal(server_now),
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

/// How long a request of statements that share it grows before the next starts: a huge
/// migration is several requests, so [`Flight`] can keep a bounded part of it on the way.
const SHARED_BYTES: usize = 1 << 20;

/// How many bytes of requests [`Flight`] keeps sent ahead of the answer being read. A segment
/// smaller than this (nearly all) is sent whole before any answer is awaited; a larger one
/// keeps this much on its way, far more than the link carries in a round trip, so the server
/// never waits for the next statement, while the client holds this much encoded text (twice:
/// its buffer and the connection's) rather than the whole migration's.
const WINDOW_BYTES: usize = 4 << 20;

/// Sends the requests without awaiting any answer: each call only queues its message for the
/// connection task, which writes them out together. They are sent as the answers are read,
/// [`WINDOW_BYTES`] ahead.
pub struct Flight<'r> {
    client: &'r Client,
    requests: &'r [Request],
    sent: std::collections::VecDeque<Result<SimpleQueryStream, tokio_postgres::Error>>,
    /// The next request to send, and the bytes sent but not yet handed out to be read.
    next: usize,
    ahead: usize,
}

impl<'r> Flight<'r> {
    pub fn new(client: &'r Client, requests: &'r [Request]) -> Self {
        Self {
            client,
            requests,
            sent: std::collections::VecDeque::new(),
            next: 0,
            ahead: 0,
        }
    }

    /// The answer stream of the next request, in order; `None` after the last.
    pub async fn next(&mut self) -> Option<Result<SimpleQueryStream, tokio_postgres::Error>> {
        while let Some(request) = self.requests.get(self.next) {
            if !self.sent.is_empty() && self.ahead >= WINDOW_BYTES {
                break;
            }
            self.sent.push_back(self.client.simple_query_raw(&request.sql).await);
            self.ahead += request.sql.len();
            self.next += 1;
        }
        let stream = self.sent.pop_front()?;
        let read = self.next - self.sent.len() - 1;
        self.ahead -= self.requests[read].sql.len();
        Some(stream)
    }
}

/// A request that failed, and how many of its statements had completed before.
#[derive(Debug)]
pub struct Failed {
    pub error: tokio_postgres::Error,
    pub completed: usize,
}

impl Failed {
    /// Where in the request's text the server placed the error (1-based characters), if it did.
    pub fn position(&self) -> Option<usize> {
        match self.error.as_db_error()?.position()? {
            ErrorPosition::Original(p) => Some(*p as usize),
            ErrorPosition::Internal { .. } => None,
        }
    }
}

/// Reads one request's answer to its end: the first column of its last row, if it returned any
/// (a statement that returns rows comes before the duration mark it carries).
pub async fn answer(stream: Result<SimpleQueryStream, tokio_postgres::Error>) -> Result<Option<String>, Failed> {
    let mut stream = Box::pin(stream.map_err(|error| Failed { error, completed: 0 })?);
    let (mut last, mut completed) = (None, 0);
    while let Some(message) = stream.next().await {
        match message.map_err(|error| Failed { error, completed })? {
            // A row may have no column at all (`SELECT;`).
            SimpleQueryMessage::Row(row) => last = Some(row.try_get(0).ok().flatten().map(str::to_string)),
            SimpleQueryMessage::CommandComplete(_) => completed += 1,
            _ => {}
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
#[path = "pipeline_tests.rs"]
mod tests;
