//! One SQL statement of a migration file: splitting on drizzle's breakpoint and classifying what
//! the statement needs from the runner (autocommit, a commit boundary after it).

/// drizzle-kit's separator between statements of one migration file.
pub const BREAKPOINT: &str = "--> statement-breakpoint";

/// First-line marker that forces a migration to run outside a transaction.
pub const NO_TRANSACTION_MARKER: &str = "-- wishlist-migrator: no-transaction";

/// A comment line anywhere in a file: its transaction segment commits after it, so an online
/// sequence (expand, backfill, validate) can commit between its steps.
pub const COMMIT_AFTER_MARKER: &str = "-- wishlist-migrator: commit-after";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    /// 1-based line of the file where the statement's first non-blank line is.
    pub line: usize,
}

impl Statement {
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

    /// Why this statement cannot run inside a transaction block, if it cannot.
    pub fn autocommit_reason(&self) -> Option<&'static str> {
        let words = keywords(&self.sql);
        let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
        let has = |word: &str| words.iter().any(|x| x == word);
        match w(0) {
            "CREATE" => {
                let index_at = if w(1) == "UNIQUE" { 2 } else { 1 };
                if w(index_at) == "INDEX" && w(index_at + 1) == "CONCURRENTLY" {
                    return Some("CREATE INDEX CONCURRENTLY");
                }
                match w(1) {
                    "DATABASE" => Some("CREATE DATABASE"),
                    "TABLESPACE" => Some("CREATE TABLESPACE"),
                    _ => None,
                }
            }
            "DROP" => match (w(1), w(2)) {
                ("INDEX", "CONCURRENTLY") => Some("DROP INDEX CONCURRENTLY"),
                ("DATABASE", _) => Some("DROP DATABASE"),
                ("TABLESPACE", _) => Some("DROP TABLESPACE"),
                _ => None,
            },
            "REINDEX" if has("CONCURRENTLY") => Some("REINDEX CONCURRENTLY"),
            "VACUUM" => Some("VACUUM"),
            "ALTER" if w(1) == "SYSTEM" => Some("ALTER SYSTEM"),
            "ALTER" if w(1) == "TABLE" && has("DETACH") && has("CONCURRENTLY") => Some("DETACH PARTITION CONCURRENTLY"),
            _ => None,
        }
    }

    /// `ALTER TYPE ... ADD VALUE`: the new value is unusable until this transaction commits
    /// (SQLSTATE 55P04), so a later migration that uses it needs a commit in between.
    pub fn adds_enum_value(&self) -> bool {
        let words = keywords(&self.sql);
        words.first().map(String::as_str) == Some("ALTER")
            && words.get(1).map(String::as_str) == Some("TYPE")
            && words.windows(2).any(|p| p[0] == "ADD" && p[1] == "VALUE")
    }

    /// Whether the statement has anything to run besides comments and whitespace.
    pub fn is_empty(&self) -> bool {
        keywords(&self.sql).is_empty()
    }

    /// Whether PostgreSQL will read this piece as exactly one SQL statement, by a reading that
    /// errs towards "no": no `;` but at its end outside quotes, comments and dollar quotes, and
    /// none of what this tokenizer does not follow (block comments, which nest in PostgreSQL;
    /// backslash escapes; `BEGIN ATOMIC` bodies and rules, whose `;` the server reads as inside).
    /// Such pieces can share one request: each answers with exactly one completion, so counting
    /// completions names the one that failed.
    pub fn is_single(&self) -> bool {
        if self.sql.contains("/*") || self.sql.contains('\\') {
            return false;
        }
        let words = tokens(&self.sql, true);
        let body = words.iter().rposition(|w| w != ";").map_or(0, |i| i + 1);
        !words[..body].iter().any(|w| w == ";" || w == "ATOMIC" || w == "RULE")
    }

    /// Whether one of the SQL statements in this piece ends the transaction it runs in (`COMMIT`,
    /// `END`, `ROLLBACK`, `ABORT`; some real histories end a file with `COMMIT;`). What follows it
    /// runs outside the segment's transaction.
    pub fn ends_transaction(&self) -> bool {
        let words = tokens(&self.sql, true);
        let mut starts = std::iter::once(0).chain(words.iter().enumerate().filter(|(_, w)| *w == ";").map(|(i, _)| i + 1));
        starts.any(|i| {
            let w = |k: usize| words.get(i + k).map(String::as_str).unwrap_or("");
            match w(0) {
                "COMMIT" | "END" | "ABORT" => !matches!(w(1), "PREPARED"),
                // `ROLLBACK TO [SAVEPOINT] x` stays in the transaction.
                "ROLLBACK" => !matches!(w(1), "TO" | "PREPARED"),
                _ => false,
            }
        })
    }
}

/// Splits a migration file exactly as drizzle-orm does, dropping pieces with nothing to run.
pub fn split(sql: &str) -> Vec<Statement> {
    let mut statements = Vec::new();
    let mut line = 1;
    for piece in sql.split(BREAKPOINT) {
        let leading_blank_lines = piece.lines().take_while(|l| l.trim().is_empty()).count();
        let statement = Statement {
            sql: piece.to_string(),
            line: line + leading_blank_lines,
        };
        line += piece.matches('\n').count();
        if !statement.is_empty() {
            statements.push(statement);
        }
    }
    statements
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

/// Upper-cased bare words of the statement, outside comments, quotes and dollar quotes:
/// enough to recognise statement kinds without a SQL parser.
fn keywords(sql: &str) -> Vec<String> {
    tokens(sql, false)
}

/// The bare words, and with `semicolons` each `;` that ends a statement as a word of its own.
fn tokens(sql: &str, semicolons: bool) -> Vec<String> {
    let bytes = sql.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'-' && bytes.get(i + 1) == Some(&b'-') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            i += 2;
        } else if c == b'\'' || c == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                i += 1;
            }
            i += 1;
        } else if c == b'$' {
            let tag_end = bytes[i + 1..]
                .iter()
                .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                .map(|p| i + 1 + p);
            match tag_end {
                Some(end) if bytes[end] == b'$' => {
                    let tag = &sql[i..=end];
                    i = sql[end + 1..].find(tag).map(|p| end + 1 + p + tag.len()).unwrap_or(bytes.len());
                }
                _ => i += 1,
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            words.push(sql[start..i].to_ascii_uppercase());
        } else {
            if semicolons && c == b';' {
                words.push(";".to_string());
            }
            i += 1;
        }
    }
    words
}

pub fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max_chars).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(sql: &str) -> Statement {
        Statement { sql: sql.into(), line: 1 }
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
        assert!(stmt("-- c\nROLLBACK;").ends_transaction());
        assert!(!stmt("ROLLBACK TO SAVEPOINT s;").ends_transaction());
        assert!(!stmt("CREATE TEMP TABLE x (a int) ON COMMIT DROP;").ends_transaction());
        assert!(!stmt("DO $$ BEGIN PERFORM 1; COMMIT; END $$;").ends_transaction());
        assert!(!stmt("SELECT 'x; COMMIT';").ends_transaction());
        assert!(!stmt("SELECT CASE WHEN true THEN 1 END;").ends_transaction());
        assert!(!stmt("COMMIT PREPARED 'x';").ends_transaction());
    }

    #[test]
    fn a_piece_is_single_only_when_the_server_surely_reads_one_statement() {
        assert!(stmt("CREATE TABLE t (a int);").is_single());
        assert!(stmt("CREATE TABLE t (a int);;\n-- done\n").is_single());
        assert!(stmt("SELECT 'a;b', \"c;d\", $x$;$x$ -- e;f").is_single());
        assert!(stmt("DO $$ BEGIN PERFORM 1; END $$;").is_single());
        assert!(!stmt("CREATE TABLE a ();\nCREATE TABLE b ();").is_single());
        assert!(!stmt("SELECT 1 /* a /* b */ ; */").is_single());
        assert!(!stmt("SELECT E'\\';' ").is_single());
        assert!(!stmt("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END").is_single());
        assert!(!stmt("CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; SELECT 2)").is_single());
    }
}
