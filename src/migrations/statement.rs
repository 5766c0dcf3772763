//! One SQL statement of a migration file: splitting on drizzle's breakpoint and what the
//! statement needs from the runner (autocommit, a commit boundary after it), as Postgres's own
//! grammar reads it (`sql::classify`).

use std::sync::OnceLock;

use crate::sql::classify::{classify, Classified, Kind};
use crate::sql::parse::shorten;

/// drizzle-kit's separator between statements of one migration file.
pub const BREAKPOINT: &str = "--> statement-breakpoint";

/// First-line marker that forces a migration to run outside a transaction.
pub const NO_TRANSACTION_MARKER: &str = "-- wishlist-migrator: no-transaction";

/// A comment line anywhere in a file: its transaction segment commits after it, so an online
/// sequence (expand, backfill, validate) can commit between its steps.
pub const COMMIT_AFTER_MARKER: &str = "-- wishlist-migrator: commit-after";

#[derive(Debug, Clone)]
pub struct Statement {
    pub sql: String,
    /// 1-based line of the file where the statement's first non-blank line is.
    pub line: usize,
    /// What Postgres's grammar makes of the piece ([`classify`]; `None` when it cannot parse
    /// it), read when first asked: a full parse costs tens of microseconds a piece, and a run
    /// asks only of the migrations it applies, not of the hundreds a history has applied.
    kinds: OnceLock<Option<Vec<Classified>>>,
}

impl PartialEq for Statement {
    fn eq(&self, other: &Self) -> bool {
        self.sql == other.sql && self.line == other.line
    }
}

impl Eq for Statement {}

/// A statement in a piece that the runner refuses to run, with the file's line it starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub what: &'static str,
    pub line: usize,
}

impl Statement {
    pub fn new(sql: impl Into<String>, line: usize) -> Self {
        Self {
            sql: sql.into(),
            line,
            kinds: OnceLock::new(),
        }
    }

    fn classified(&self) -> Option<&[Classified]> {
        self.kinds.get_or_init(|| classified(&self.sql)).as_deref()
    }

    /// The first meaningful line, shortened: enough for an operator to find it in the file.
    pub fn summary(&self) -> String {
        let first = self
            .sql
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("--"))
            .unwrap_or("");
        shorten(first, 120)
    }

    fn kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        self.classified().into_iter().flatten().map(|c| c.kind)
    }

    /// Why this statement cannot run inside a transaction block, if it cannot.
    pub fn autocommit_reason(&self) -> Option<&'static str> {
        self.kinds().find_map(|k| match k {
            Kind::NoTransaction(reason) => Some(reason),
            _ => None,
        })
    }

    /// `ALTER TYPE ... ADD VALUE`: the new value is unusable until this transaction commits
    /// (SQLSTATE 55P04), so a later migration that uses it needs a commit in between.
    pub fn adds_enum_value(&self) -> bool {
        self.kinds().any(|k| k == Kind::AddsEnumValue)
    }

    /// Whether the statement has anything to run besides comments and whitespace. A piece
    /// Postgres cannot parse is not empty: the server must see it, and refuse it.
    pub fn is_empty(&self) -> bool {
        self.classified().is_some_and(<[Classified]>::is_empty)
    }

    /// Whether PostgreSQL reads this piece as exactly one SQL statement, so that it answers with
    /// exactly one completion and can share a request with others: counting completions then
    /// names the one that failed. Pieces with a backslash stay alone: libpg_query reads strings
    /// with `standard_conforming_strings` on, and a server set otherwise would split them
    /// differently.
    pub fn is_single(&self) -> bool {
        matches!(self.classified(), Some(k) if k.len() == 1) && !self.sql.contains('\\')
    }

    /// Whether the piece ends the transaction it runs in and keeps its work (`COMMIT`, `END`;
    /// some real histories end a file with `COMMIT;`). [`split`] makes such a statement a piece
    /// of its own, so what follows it is always in another piece.
    pub fn ends_transaction(&self) -> bool {
        self.kinds().any(|k| k == Kind::Commit)
    }

    /// A statement the runner refuses before anything runs: one that ends the transaction
    /// without keeping it (`ROLLBACK`: it would silently undo the migrations before it in the
    /// same transaction), or the copy sub-protocol (`COPY … FROM STDIN`/`TO STDOUT`: no data to
    /// send, no reader for what comes back, so the outcome could not be known).
    pub fn refused(&self) -> Option<Refused> {
        let c = self
            .classified()
            .into_iter()
            .flatten()
            .find(|c| matches!(c.kind, Kind::Abandon(_) | Kind::CopyStdio(_)))?;
        let (Kind::Abandon(what) | Kind::CopyStdio(what)) = c.kind else {
            unreachable!("matched above")
        };
        Some(Refused {
            what,
            line: self.line_at(c.start),
        })
    }

    /// The file's line of the first token (Postgres's scanner: comments are not tokens) at or
    /// after byte `offset` of the piece.
    fn line_at(&self, offset: usize) -> usize {
        let blank_before = self.sql.lines().take_while(|l| l.trim().is_empty()).count();
        let first = self.line - blank_before;
        let rest = &self.sql[offset.min(self.sql.len())..];
        let token = pg_query::scan(rest).ok().and_then(|scanned| {
            let comment = [
                pg_query::protobuf::Token::SqlComment as i32,
                pg_query::protobuf::Token::CComment as i32,
            ];
            scanned
                .tokens
                .iter()
                .find(|t| !comment.contains(&t.token))
                .map(|t| t.start as usize)
        });
        let at = offset + token.unwrap_or(rest.len() - rest.trim_start().len());
        first + self.sql[..at.min(self.sql.len())].matches('\n').count()
    }
}

/// Pieces this large are split by the parser first and classified statement by statement, so
/// that a generated data migration (tens of MB in one piece) never holds its whole parse tree.
const WHOLE_PARSE_LIMIT: usize = 64 * 1024;

fn classified(sql: &str) -> Option<Vec<Classified>> {
    if sql.len() <= WHOLE_PARSE_LIMIT {
        return classify(sql);
    }
    let base = sql.as_ptr() as usize;
    let offsets: Vec<usize> = pg_query::split_with_parser(sql)
        .ok()?
        .iter()
        .map(|part| part.as_ptr() as usize - base)
        .collect();
    let mut out = Vec::with_capacity(offsets.len());
    for (i, &offset) in offsets.iter().enumerate() {
        // The parser's split leaves each `;` out: a part runs to where the next one begins.
        let end = offsets.get(i + 1).copied().unwrap_or(sql.len());
        for c in classify(&sql[offset..end])? {
            out.push(Classified {
                start: offset + c.start,
                end: offset + c.end,
                ..c
            });
        }
    }
    Some(out)
}

/// Splits a migration file exactly as drizzle-orm does, dropping pieces with nothing to run;
/// then a piece holding a `COMMIT` among other statements is cut around it, so that the
/// statement that ends a transaction is always a piece of its own (the runner ends a flight
/// there and opens the next transaction before anything after it runs).
pub fn split(sql: &str) -> Vec<Statement> {
    let mut statements = Vec::new();
    let mut line = 1;
    for piece in sql.split(BREAKPOINT) {
        push_piece(&mut statements, piece, line);
        line += piece.matches('\n').count();
    }
    statements
}

/// `first_line`: the line the piece's text begins on. The parser's split (no parse tree: a few
/// microseconds) says how many statements the piece holds; only a piece of several is
/// classified here, to cut it around its `COMMIT`s.
fn push_piece(statements: &mut Vec<Statement>, piece: &str, first_line: usize) {
    let count = if piece.contains('\0') {
        None
    } else {
        pg_query::split_with_parser(piece).ok().map(|parts| parts.len())
    };
    match count {
        // Comments and whitespace only: nothing to run.
        Some(0) => return,
        Some(1) | None => {
            statements.push(at_line(piece, first_line));
            return;
        }
        Some(_) => {}
    }
    let statement = at_line(piece, first_line);
    let cuts = cuts_around_commits(&statement);
    if cuts.is_empty() {
        statements.push(statement);
        return;
    }
    let mut from = 0;
    for cut in cuts.into_iter().chain([piece.len()]) {
        let part = &piece[from..cut];
        let part_statement = at_line(part, first_line + piece[..from].matches('\n').count());
        if !part_statement.is_empty() {
            statements.push(part_statement);
        }
        from = cut;
    }
}

/// Byte offsets to cut the piece at: before and after each `COMMIT` that is not alone in it.
fn cuts_around_commits(statement: &Statement) -> Vec<usize> {
    let Some(kinds) = statement.classified() else { return Vec::new() };
    if kinds.len() < 2 {
        return Vec::new();
    }
    let mut cuts = Vec::new();
    for c in kinds.iter().filter(|c| c.kind == Kind::Commit) {
        for at in [c.start, c.end] {
            if at > 0 && at < statement.sql.len() && cuts.last() != Some(&at) {
                cuts.push(at);
            }
        }
    }
    cuts
}

fn at_line(text: &str, first_line: usize) -> Statement {
    let leading_blank_lines = text.lines().take_while(|l| l.trim().is_empty()).count();
    Statement::new(text, first_line + leading_blank_lines)
}

/// Whether the file opts out of transactions with the marker on its first line.
pub fn has_no_transaction_marker(sql: &str) -> bool {
    sql.trim_start_matches('\u{feff}')
        .lines()
        .next()
        .map(|first| {
            let normalized: String = first.split_whitespace().collect::<Vec<_>>().join(" ");
            normalized.eq_ignore_ascii_case(NO_TRANSACTION_MARKER)
        })
        .unwrap_or(false)
}

/// Whether a line of the file, on its own, is the `commit-after` marker.
pub fn has_commit_after_marker(sql: &str) -> bool {
    sql.lines().any(|line| {
        let normalized: String = line.split_whitespace().collect::<Vec<_>>().join(" ");
        normalized.eq_ignore_ascii_case(COMMIT_AFTER_MARKER)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(sql: &str) -> Statement {
        Statement::new(sql, 1)
    }

    #[test]
    fn splits_like_drizzle_and_tracks_lines() {
        let sql = "CREATE TABLE a (id int);\n--> statement-breakpoint\nCREATE INDEX i ON a (id);\n--> statement-breakpoint\n\n";
        let parts = split(sql);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].line, 1);
        assert_eq!(parts[1].sql.trim(), "CREATE INDEX i ON a (id);");
        assert_eq!(parts[1].line, 3);
    }

    #[test]
    fn a_file_without_breakpoints_is_one_statement() {
        let parts = split("CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n");
        assert_eq!(parts.len(), 1);
    }

    #[test]
    fn comment_only_pieces_are_dropped() {
        assert!(split("-- nothing here\n/* nor here */\n").is_empty());
    }

    #[test]
    fn recognises_statements_that_need_autocommit() {
        let cases = [
            ("CREATE INDEX CONCURRENTLY i ON t (a);", Some("CREATE INDEX CONCURRENTLY")),
            ("create unique index concurrently i on t (a);", Some("CREATE INDEX CONCURRENTLY")),
            ("DROP INDEX CONCURRENTLY IF EXISTS i;", Some("DROP INDEX CONCURRENTLY")),
            ("REINDEX INDEX CONCURRENTLY i;", Some("REINDEX CONCURRENTLY")),
            ("VACUUM (ANALYZE) t;", Some("VACUUM")),
            ("ALTER SYSTEM SET work_mem = '8MB';", Some("ALTER SYSTEM")),
            ("CREATE DATABASE x;", Some("CREATE DATABASE")),
            (
                "ALTER TABLE p DETACH PARTITION c CONCURRENTLY;",
                Some("DETACH PARTITION CONCURRENTLY"),
            ),
            ("-- CREATE INDEX CONCURRENTLY in a comment\nCREATE INDEX i ON t (a);", None),
            ("CREATE INDEX i ON t (a) WHERE note = 'VACUUM';", None),
            ("CREATE TABLE t (a int);", None),
            ("REINDEX INDEX i;", None),
        ];
        for (sql, expected) in cases {
            assert_eq!(stmt(sql).autocommit_reason(), expected, "{sql}");
        }
    }

    #[test]
    fn recognises_enum_value_additions() {
        assert!(stmt("ALTER TYPE \"public\".\"status\" ADD VALUE 'hidden';").adds_enum_value());
        assert!(stmt("alter type status add value if not exists 'x' before 'y';").adds_enum_value());
        assert!(!stmt("ALTER TYPE status RENAME VALUE 'a' TO 'b';").adds_enum_value());
        assert!(!stmt("ALTER TABLE t ADD COLUMN value text;").adds_enum_value());
    }

    #[test]
    fn dollar_quoted_bodies_are_not_read_as_keywords() {
        let body = "DO $$ BEGIN VACUUM; END $$;";
        assert_eq!(stmt(body).autocommit_reason(), None);
        let tagged = "DO $body$ BEGIN CREATE INDEX CONCURRENTLY i ON t(a); END $body$;";
        assert_eq!(stmt(tagged).autocommit_reason(), None);
    }

    #[test]
    fn summary_skips_comments_and_shortens() {
        let s = stmt(&format!("-- why\n\n  ALTER TABLE {} ADD x int;", "t".repeat(200)));
        assert!(s.summary().starts_with("ALTER TABLE ttt"));
        assert!(s.summary().ends_with('…'));
    }

    #[test]
    fn commit_after_marker_is_a_line_of_its_own_anywhere() {
        assert!(has_commit_after_marker(
            "ALTER TABLE t ADD c int;\n--  wishlist-migrator:  commit-after\n"
        ));
        assert!(!has_commit_after_marker("SELECT '-- wishlist-migrator: commit-after';"));
        assert!(!has_commit_after_marker("ALTER TABLE t ADD c int;"));
    }

    #[test]
    fn marker_must_be_on_the_first_line() {
        assert!(has_no_transaction_marker("-- wishlist-migrator: no-transaction\nVACUUM;"));
        assert!(has_no_transaction_marker("--  Wishlist-Migrator:   NO-TRANSACTION  \nVACUUM;"));
        assert!(!has_no_transaction_marker("VACUUM;\n-- wishlist-migrator: no-transaction"));
    }

    #[test]
    fn a_piece_that_ends_its_transaction_is_told_from_one_that_mentions_commit() {
        // dittofeed's 0002 ends its last piece this way.
        assert!(stmt("CREATE UNIQUE INDEX i ON t (a);\n\nCOMMIT;").ends_transaction());
        assert!(stmt("commit").ends_transaction());
        assert!(stmt("SELECT 1; END;").ends_transaction());
        assert!(!stmt("ROLLBACK TO SAVEPOINT s;").ends_transaction());
        assert!(!stmt("CREATE TEMP TABLE x (a int) ON COMMIT DROP;").ends_transaction());
        assert!(!stmt("DO $$ BEGIN PERFORM 1; COMMIT; END $$;").ends_transaction());
        assert!(!stmt("SELECT 'x; COMMIT';").ends_transaction());
        assert!(!stmt("SELECT CASE WHEN true THEN 1 END;").ends_transaction());
        // The body's `END` is the function's, not a COMMIT.
        assert!(!stmt("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;").ends_transaction());
    }

    #[test]
    fn rollback_and_copy_stdio_are_refused_with_their_line() {
        let s = Statement::new("\n\nCREATE TABLE t ();\n-- then\nROLLBACK;", 3);
        assert_eq!(s.refused(), Some(Refused { what: "ROLLBACK", line: 5 }));
        assert_eq!(stmt("abort").refused().map(|r| r.what), Some("ROLLBACK"));
        assert_eq!(stmt("COPY t TO STDOUT").refused().map(|r| r.what), Some("COPY TO STDOUT"));
        assert_eq!(stmt("ROLLBACK TO SAVEPOINT s; COMMIT").refused(), None);
        assert_eq!(stmt("SELEC 1").refused(), None);
    }

    #[test]
    fn a_commit_among_other_statements_becomes_a_piece_of_its_own() {
        let sql = "CREATE TABLE t (id int);\n--> statement-breakpoint\nINSERT INTO t VALUES (1);\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON t (id);\n";
        let parts = split(sql);
        let texts: Vec<&str> = parts.iter().map(|p| p.sql.trim()).collect();
        assert_eq!(
            texts,
            [
                "CREATE TABLE t (id int);",
                "INSERT INTO t VALUES (1);",
                "COMMIT;",
                "CREATE INDEX CONCURRENTLY i ON t (id);"
            ]
        );
        let lines: Vec<usize> = parts.iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 3, 4, 5]);
        assert!(parts[2].ends_transaction() && !parts[1].ends_transaction());
        // A piece of one statement is not parsed until asked.
        assert!(parts[0].kinds.get().is_none());
        // A COMMIT alone, or last after comments only, stays as it is.
        assert_eq!(split("-- done\nCOMMIT;").len(), 1);
        // Unparsable text is never cut: the server refuses it whole.
        assert_eq!(split("SELEC 1; COMMIT;").len(), 1);
    }

    #[test]
    fn a_piece_is_single_only_when_the_grammar_reads_one_statement() {
        assert!(stmt("CREATE TABLE t (a int);").is_single());
        assert!(stmt("CREATE TABLE t (a int);;\n-- done\n").is_single());
        assert!(stmt("SELECT 'a;b', \"c;d\", $x$;$x$ -- e;f").is_single());
        assert!(stmt("DO $$ BEGIN PERFORM 1; END $$;").is_single());
        // Nested block comments, BEGIN ATOMIC bodies and rules: one statement each, as the server reads them.
        assert!(stmt("SELECT 1 /* a /* b */ ; */").is_single());
        assert!(stmt("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END").is_single());
        assert!(stmt("CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; SELECT 2)").is_single());
        assert!(!stmt("CREATE TABLE a ();\nCREATE TABLE b ();").is_single());
        assert!(!stmt("SELECT E'\\';' ").is_single());
        assert!(!stmt("SELEC 1").is_single());
    }

    #[test]
    fn a_huge_piece_is_classified_statement_by_statement() {
        let mut sql = String::new();
        while sql.len() <= WHOLE_PARSE_LIMIT {
            sql.push_str("INSERT INTO t VALUES ('a;b');\n");
        }
        sql.push_str("COMMIT;\nVACUUM t;\n");
        let s = stmt(&sql);
        assert!(s.ends_transaction());
        assert_eq!(s.autocommit_reason(), Some("VACUUM"));
        let parts = split(&sql);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].sql.trim(), "COMMIT;");
        assert_eq!(parts[2].line, sql.matches('\n').count());
    }
}
