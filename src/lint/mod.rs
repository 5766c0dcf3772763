//! The schema-evolution lint gate: each statement of the migrations through Postgres's own
//! grammar, the team's policy (`rule`) applied in the order the migrations run, waivers written
//! next to the statement, and, when a database is reachable, the live size of each table a
//! finding is about. Pure: the table sizes come in as [`LiveTables`].
//!
//! `docs/schema-evolution.md` is the policy in prose; `lint`, `plan` and `migrate` use this.

pub mod checks;
pub mod live;
pub mod rule;
pub mod schema_state;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::error::{Classified, ErrorType};

use crate::lint::checks::{Hit, MigrationChecks};
use crate::lint::live::{LiveEstimate, LiveTables};
use crate::lint::rule::{Cost, Level, Rule};
use crate::lint::schema_state::SchemaState;
use crate::migrations::folders::MIGRATION_FILE;
use crate::migrations::source::{Layout, Migration, TransactionMode};
use crate::migrations::statement::Statement;
use crate::sql::parse;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    #[serde(serialize_with = "rule_id")]
    pub rule: Rule,
    pub level: Level,
    pub migration: String,
    /// The file, relative to the migrations folder.
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub excerpt: String,
    pub message: String,
    pub alternative: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveEstimate>,
    /// The reason of the waiver that allows it; a waived finding neither fails `lint` nor stops
    /// `migrate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waived: Option<String>,
    /// The statement (piece) of the migration it is about, counting from 0: what `--online`
    /// replaces by a recipe (the line alone cannot say, when pieces share a line).
    #[serde(skip)]
    pub statement: usize,
}

fn rule_id<S: serde::Serializer>(rule: &Rule, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(rule.id())
}

impl Finding {
    /// Fails `lint` and stops `migrate`.
    pub fn blocks(&self) -> bool {
        self.level == Level::Error && self.waived.is_none()
    }
}

/// Lints every migration of a folder of this layout (in the order they run). With `live`, the
/// findings about a scan or a rewrite carry the table's size, and a large table makes them
/// errors; a finding about a table that does not exist yet (an earlier pending migration
/// creates it, empty) is dropped.
pub fn lint(layout: Layout, migrations: &[&Migration], live: Option<&LiveTables>) -> Vec<Finding> {
    lint_selected(layout, migrations, |_| true, live)
}

/// The findings of the `selected` migrations only; the others are still read, in order, for
/// what they build (an enum's values, a column's type, which tables exist).
pub fn lint_selected(
    layout: Layout,
    migrations: &[&Migration],
    selected: impl Fn(&Migration) -> bool,
    live: Option<&LiveTables>,
) -> Vec<Finding> {
    analyse(layout, migrations, selected).grade(live)
}

/// Reads and checks the `selected` migrations, once: whether the live sizes matter is known
/// from the analysis, and grading it with them does not parse anything again.
pub fn analyse(layout: Layout, migrations: &[&Migration], selected: impl Fn(&Migration) -> bool) -> Analysis {
    analyse_with(layout, migrations, selected, None)
}

/// [`analyse`] with the names of the functions the database marks volatile (`provolatile`):
/// Postgres, not a list of names, decides which column default writes every row.
pub fn analyse_with(
    layout: Layout,
    migrations: &[&Migration],
    selected: impl Fn(&Migration) -> bool,
    volatile: Option<&BTreeSet<String>>,
) -> Analysis {
    let mut schema = SchemaState::default();
    let mut found = Vec::new();
    for m in migrations {
        let linted = selected(m);
        schema.next_migration(linted);
        if linted {
            lint_migration(layout, m, &mut schema, volatile, &mut found);
        } else {
            lint_migration(layout, m, &mut schema, volatile, &mut Vec::new());
        }
    }
    Analysis { found }
}

/// The findings before the live tables are known.
pub struct Analysis {
    found: Vec<Found>,
}

/// A finding as read offline, and whether the table or the enum it is about is created by a
/// linted migration (judged where the finding is, in history order).
struct Found {
    finding: Finding,
    table_created_by_linted: bool,
    enum_created_by_linted: bool,
}

impl Analysis {
    /// Whether any finding's grade depends on the live tables (so they are worth reading): the
    /// size of a table a scan or a rewrite is about, or whether a table a pending migration
    /// creates is there already (`CREATE TABLE IF NOT EXISTS` over a live one). When none does,
    /// grading against no sizes at all gives the same findings.
    pub fn wants_live_sizes(&self) -> bool {
        self.found.iter().any(|f| {
            f.finding.table.is_some() && (f.table_created_by_linted || matches!(f.finding.rule.cost(), Cost::Scan | Cost::Rewrite))
        })
    }

    /// The findings; with `live`, the findings about a scan or a rewrite carry the table's size
    /// (a large table makes them errors), and those about what an earlier pending migration
    /// creates are dropped.
    pub fn grade(self, live: Option<&LiveTables>) -> Vec<Finding> {
        let Some(live) = live else {
            return self.found.into_iter().map(|f| f.finding).collect();
        };
        self.found
            .into_iter()
            .filter_map(|found| {
                let mut finding = found.finding;
                // Created by an earlier pending migration: nothing runs against it yet, and it
                // is empty when this one runs (a fresh environment built from the whole history).
                let size = finding.table.as_ref().and_then(|t| live.sizes.get(t));
                if (found.table_created_by_linted && size.is_none()) || found.enum_created_by_linted {
                    return None;
                }
                if let (Some(size), cost @ (Cost::Scan | Cost::Rewrite)) = (size, finding.rule.cost()) {
                    finding.live = live::estimate(size, cost, live.large_table_rows);
                    if finding.live.as_ref().is_some_and(|e| e.large) {
                        finding.level = Level::Error;
                    }
                }
                Some(finding)
            })
            .collect()
    }
}

/// One statement piece, parsed: the byte range of each statement it holds. Its parse trees are
/// dropped once checked: kept for every piece, they were most of the memory of a migration of
/// many statements (a 50 MB file's trees took several times its size).
struct Piece<'m> {
    statement: &'m Statement,
    parsed: Vec<ParsedRange>,
    waivers: Vec<Waiver>,
}

/// What is kept of one parsed statement: its byte range in the piece, and what it does to the
/// transaction ([`transaction_control`]).
struct ParsedRange {
    start: usize,
    end: usize,
    control: Option<Option<bool>>,
}

struct Waiver {
    rule: Option<Rule>,
    reason: Option<String>,
    offset: usize,
}

fn lint_migration(layout: Layout, m: &Migration, schema: &mut SchemaState, volatile: Option<&BTreeSet<String>>, out: &mut Vec<Found>) {
    let file = match layout {
        Layout::Journal => format!("{}.sql", m.tag),
        Layout::Folders => format!("{}/{MIGRATION_FILE}", m.tag),
    };
    let mut checks = MigrationChecks::default();
    checks.volatile = volatile;
    let mut pieces = Vec::with_capacity(m.statements.len());
    // (piece, hit): hits of every piece, placed once all are read (a dropped enum is judged at
    // the end of the migration).
    let mut hits: Vec<(usize, Hit)> = Vec::new();
    for (index, statement) in m.statements.iter().enumerate() {
        let waivers = parse::directives(&statement.sql).into_iter().filter_map(waiver).collect::<Vec<_>>();
        let parsed = match parse::parse(&statement.sql) {
            Ok(parsed) => parsed,
            Err(message) => {
                hits.push((
                    index,
                    Hit {
                        rule: Rule::UnparsableStatement,
                        offset: 0,
                        table: None,
                        enum_type: None,
                        message: format!("Postgres's grammar rejects it: {message}"),
                    },
                ));
                Vec::new()
            }
        };
        checks.piece = index;
        for p in &parsed {
            let mut found = Vec::new();
            checks.check(&p.node, &statement.sql[p.start..p.end], p.start, schema, &mut found);
            hits.extend(found.into_iter().map(|h| (index, h)));
        }
        pieces.push(Piece {
            statement,
            parsed: parsed
                .iter()
                .map(|p| ParsedRange {
                    start: p.start,
                    end: p.end,
                    control: transaction_control(&p.node),
                })
                .collect(),
            waivers,
        });
    }
    let mut ended = Vec::new();
    checks.finish(&mut ended);
    hits.extend(ended);
    non_transactional_mixed(m, &pieces, &mut hits);
    for (index, piece) in pieces.iter().enumerate() {
        for w in &piece.waivers {
            match (&w.rule, &w.reason) {
                (None, _) => hits.push((index, waiver_hit(Rule::UnknownRuleWaived, w, "waives a rule that does not exist"))),
                (Some(_), None) => hits.push((index, waiver_hit(Rule::WaiverWithoutReason, w, "waives a rule without saying why"))),
                _ => {}
            }
        }
    }
    hits.sort_by_key(|(piece, h)| (*piece, h.offset));
    for (index, hit) in hits {
        let piece = &pieces[index];
        let table_created_by_linted = hit.table.as_ref().is_some_and(|t| schema.created_by_linted(t));
        let enum_created_by_linted = hit.enum_type.as_ref().is_some_and(|e| schema.created_by_linted(e));
        let (start, end) = statement_range(piece, hit.offset);
        let (line, column) = parse::position(&piece.statement.sql, piece.statement.line, hit.offset);
        let waived = if hit.rule.waivable() {
            waiver_for(piece, hit.rule, hit.offset)
        } else {
            None
        };
        let finding = Finding {
            rule: hit.rule,
            level: hit.rule.level(),
            migration: m.tag.clone(),
            file: file.clone(),
            line,
            column,
            excerpt: parse::excerpt(&piece.statement.sql, start, end),
            message: hit.message,
            alternative: hit.rule.alternative(),
            table: hit.table,
            live: None,
            waived,
            statement: index,
        };
        out.push(Found {
            finding,
            table_created_by_linted,
            enum_created_by_linted,
        });
    }
}

fn waiver_hit(rule: Rule, w: &Waiver, message: &str) -> Hit {
    Hit {
        rule,
        offset: w.offset,
        table: None,
        enum_type: None,
        message: message.to_string(),
    }
}

/// `allow <rule-id> -- <reason>`; other directives (`no-transaction`, `commit-after`) are not
/// waivers.
fn waiver(d: parse::Directive) -> Option<Waiver> {
    let rest = parse::strip_prefix_ignore_case(&d.text, "allow")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let (id, reason) = match rest.split_once("--") {
        Some((id, reason)) => (id.trim(), Some(reason.trim().to_string()).filter(|r| !r.is_empty())),
        None => (rest.trim(), None),
    };
    Some(Waiver {
        rule: Rule::from_id(id),
        reason,
        offset: d.offset,
    })
}

/// The parsed statement a byte of the piece belongs to: the first that ends at or after it.
fn statement_index(piece: &Piece, offset: usize) -> Option<usize> {
    if piece.parsed.is_empty() {
        return None;
    }
    Some(piece.parsed.iter().position(|p| p.end >= offset).unwrap_or(piece.parsed.len() - 1))
}

fn statement_range(piece: &Piece, offset: usize) -> (usize, usize) {
    match statement_index(piece, offset) {
        Some(i) => (piece.parsed[i].start, piece.parsed[i].end),
        None => (0, piece.statement.sql.len()),
    }
}

/// A waiver applies to the statement it is written in or just before.
fn waiver_for(piece: &Piece, rule: Rule, offset: usize) -> Option<String> {
    let target = statement_index(piece, offset);
    piece
        .waivers
        .iter()
        .filter(|w| w.rule == Some(rule))
        .find(|w| statement_index(piece, w.offset) == target)
        .and_then(|w| w.reason.clone())
}

/// A statement that cannot run in a transaction, in a migration with statements that could and
/// no `no-transaction` marker: the tool then runs each statement on its own commit, so the
/// others lose the all-or-nothing the author may have counted on. Not when the file itself ends
/// the transaction before it (its own `COMMIT`, a convention teams document for concurrent index
/// builds under drizzle-orm's one transaction): the author chose to run it outside one, and
/// groups what belongs together in its own `BEGIN … COMMIT`. Inside such a `BEGIN` it is mixed.
fn non_transactional_mixed(m: &Migration, pieces: &[Piece], hits: &mut Vec<(usize, Hit)>) {
    let transactional = pieces
        .iter()
        .filter(|p| p.statement.autocommit_reason().is_none() && !only_transaction_control(p))
        .count();
    let marked = matches!(m.mode(), TransactionMode::Autocommit { .. }) && m.marked_no_transaction;
    if transactional == 0 || marked {
        return;
    }
    // One finding per migration, at its first such statement: the rule is about the migration.
    let first = pieces.iter().enumerate().find_map(|(i, p)| {
        let reason = p.statement.autocommit_reason()?;
        in_transaction_at(pieces, i).then_some((i, p, reason))
    });
    if let Some((index, piece, reason)) = first {
        let offset = piece.parsed.first().map(|p| p.start).unwrap_or(0);
        hits.push((
            index,
            Hit {
                rule: Rule::NonTransactionalMixed,
                offset,
                table: None,
                enum_type: None,
                message: format!(
                    "{reason} cannot run in a transaction, so the {transactional} other statement(s) of this migration would commit one by one too"
                ),
            },
        ));
    }
}

/// Whether the piece at `index` starts its work inside a transaction, as the file was written
/// for drizzle-orm: inside the one drizzle-orm opens, until the file's own `COMMIT` (or
/// `ROLLBACK`, `END`, `PREPARE TRANSACTION`) ends it; inside again after its own `BEGIN`.
fn in_transaction_at(pieces: &[Piece], index: usize) -> bool {
    let mut open = true;
    let statements = pieces[..=index]
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.parsed.iter().map(move |s| (i, s)));
    for (i, statement) in statements {
        match statement.control {
            Some(now_open) => open = now_open.unwrap_or(open),
            // The piece's first statement that is not transaction control: where it starts work.
            None if i == index => return open,
            None => {}
        }
    }
    open
}

/// `Some(Some(open))` for a statement that opens or ends the transaction, `Some(None)` for other
/// transaction control (a savepoint), `None` for anything else.
fn transaction_control(node: &pg_query::NodeEnum) -> Option<Option<bool>> {
    use pg_query::protobuf::TransactionStmtKind as Kind;
    let pg_query::NodeEnum::TransactionStmt(t) = node else {
        return None;
    };
    Some(match Kind::try_from(t.kind).ok()? {
        Kind::TransStmtBegin | Kind::TransStmtStart => Some(true),
        Kind::TransStmtCommit | Kind::TransStmtRollback | Kind::TransStmtPrepare => Some(false),
        _ => None,
    })
}

/// A piece of `BEGIN`, `COMMIT` and the like only: nothing of its own to keep all-or-nothing.
fn only_transaction_control(piece: &Piece) -> bool {
    !piece.parsed.is_empty() && piece.parsed.iter().all(|s| s.control.is_some())
}

/// What the gate refuses with.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    #[error("{blocking} finding(s) of the schema-evolution policy block this: the first, {first}. Use the safe alternative, or waive it next to the statement (`-- wishlist-migrator: allow <rule-id> -- <reason>`; see docs/schema-evolution.md); every finding is listed in the report.{online}")]
    Refused {
        blocking: usize,
        first: String,
        migration: String,
        /// What `--online` could do instead (said by the engine, which plans it); empty when nothing.
        online: String,
    },
    #[error("--since {tag}: no migration of the folder has this tag; `status` lists them")]
    UnknownSince { tag: String },
}

impl LintError {
    /// Refuses when a finding blocks; `None` when none does.
    pub fn refuse(findings: &[Finding]) -> Option<Self> {
        let blocking: Vec<&Finding> = findings.iter().filter(|f| f.blocks()).collect();
        let first = blocking.first()?;
        Some(Self::Refused {
            blocking: blocking.len(),
            first: format!("{} in {} line {}: {}", first.rule.id(), first.file, first.line, first.message),
            migration: first.migration.clone(),
            online: String::new(),
        })
    }

    /// The refusal with what `--online` could do about it (`hint` begins with a space).
    pub fn with_online(mut self, hint: &str) -> Self {
        if let Self::Refused { online, .. } = &mut self {
            *online = hint.to_string();
        }
        self
    }
}

impl Classified for LintError {
    fn error_type(&self) -> ErrorType {
        match self {
            Self::Refused { .. } => ErrorType::LintFailed,
            Self::UnknownSince { .. } => ErrorType::InvalidRequest,
        }
    }

    fn migration(&self) -> Option<&str> {
        match self {
            Self::Refused { migration, .. } => Some(migration),
            Self::UnknownSince { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests;
