//! What the runner must know of each SQL statement in a piece of a migration file, read from
//! Postgres's own grammar (libpg_query): where the statements begin and end, which end the
//! transaction they run in, which cannot run in one, which add an enum value, and which the
//! runner cannot drive at all.
//!
//! A piece libpg_query cannot parse is left unclassified ([`classify`] returns `None`): the
//! server will refuse it with a syntax error too, so the caller treats it as one ordinary
//! statement that runs (and fails) inside the segment's transaction, where its failure costs
//! nothing. No hand-written scanner second-guesses the grammar.

use pg_query::protobuf::{AlterTableType, ObjectType, TransactionStmtKind};
use pg_query::NodeEnum;

/// What one statement asks of the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `COMMIT`, `END` (`AND CHAIN` too): ends the transaction it runs in and keeps its work, so
    /// what follows runs outside the transaction the runner opened.
    Commit,
    /// Ends the transaction without keeping its work (`ROLLBACK`, `ABORT`, `PREPARE
    /// TRANSACTION`): it would silently undo what the runner applied before it in the same
    /// transaction. The name is the statement's.
    Abandon(&'static str),
    /// Cannot run inside a transaction block; the name is what Postgres says cannot.
    NoTransaction(&'static str),
    /// `ALTER TYPE … ADD VALUE`: the new value is unusable until the transaction commits.
    AddsEnumValue,
    /// `COPY … FROM STDIN` / `TO STDOUT`: the copy sub-protocol, which a migration runner has
    /// no data for and no reader of. The name is the statement's.
    CopyStdio(&'static str),
    Other,
}

/// One statement of a piece: its kind and its byte range in the piece (the range of the
/// statement's own text, from its first token to the end of its `;` or of the piece).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// The statements of `piece`, in order, or `None` when libpg_query cannot parse it (then it is
/// not valid SQL for the server either). An empty list: only comments and whitespace.
pub fn classify(piece: &str) -> Option<Vec<Classified>> {
    if piece.contains('\0') {
        return None;
    }
    let parsed = pg_query::parse(piece).ok()?;
    let stmts = parsed.protobuf.stmts;
    let mut out = Vec::with_capacity(stmts.len());
    for (i, raw) in stmts.iter().enumerate() {
        // stmt_location includes the whitespace and comments after the previous `;`; the
        // statement ends where the next one's location begins (after its `;`), or at the end.
        let start = raw.stmt_location.max(0) as usize;
        let end = stmts
            .get(i + 1)
            .map_or(piece.len(), |next| next.stmt_location.max(0) as usize)
            .min(piece.len());
        let kind = raw.stmt.as_ref().and_then(|n| n.node.as_ref()).map_or(Kind::Other, kind_of);
        out.push(Classified { kind, start, end });
    }
    Some(out)
}

fn kind_of(node: &NodeEnum) -> Kind {
    match node {
        NodeEnum::TransactionStmt(t) => match TransactionStmtKind::try_from(t.kind) {
            Ok(TransactionStmtKind::TransStmtCommit) => Kind::Commit,
            Ok(TransactionStmtKind::TransStmtRollback) => Kind::Abandon("ROLLBACK"),
            Ok(TransactionStmtKind::TransStmtPrepare) => Kind::Abandon("PREPARE TRANSACTION"),
            Ok(TransactionStmtKind::TransStmtCommitPrepared) => Kind::NoTransaction("COMMIT PREPARED"),
            Ok(TransactionStmtKind::TransStmtRollbackPrepared) => Kind::NoTransaction("ROLLBACK PREPARED"),
            // BEGIN inside a transaction is a warning and nothing more; savepoints stay in it.
            _ => Kind::Other,
        },
        NodeEnum::IndexStmt(s) if s.concurrent => Kind::NoTransaction("CREATE INDEX CONCURRENTLY"),
        NodeEnum::DropStmt(s) if s.concurrent && s.remove_type == ObjectType::ObjectIndex as i32 => {
            Kind::NoTransaction("DROP INDEX CONCURRENTLY")
        }
        NodeEnum::ReindexStmt(s) if has_option(&s.params, "concurrently") => Kind::NoTransaction("REINDEX CONCURRENTLY"),
        NodeEnum::VacuumStmt(s) if s.is_vacuumcmd => Kind::NoTransaction("VACUUM"),
        NodeEnum::AlterSystemStmt(_) => Kind::NoTransaction("ALTER SYSTEM"),
        NodeEnum::CreatedbStmt(_) => Kind::NoTransaction("CREATE DATABASE"),
        NodeEnum::DropdbStmt(_) => Kind::NoTransaction("DROP DATABASE"),
        NodeEnum::CreateTableSpaceStmt(_) => Kind::NoTransaction("CREATE TABLESPACE"),
        NodeEnum::DropTableSpaceStmt(_) => Kind::NoTransaction("DROP TABLESPACE"),
        NodeEnum::AlterTableStmt(s) if s.cmds.iter().any(detaches_concurrently) => Kind::NoTransaction("DETACH PARTITION CONCURRENTLY"),
        NodeEnum::AlterEnumStmt(s) if !s.new_val.is_empty() && s.old_val.is_empty() => Kind::AddsEnumValue,
        NodeEnum::CopyStmt(s) if s.filename.is_empty() && !s.is_program => {
            Kind::CopyStdio(if s.is_from { "COPY FROM STDIN" } else { "COPY TO STDOUT" })
        }
        _ => Kind::Other,
    }
}

fn has_option(options: &[pg_query::Node], name: &str) -> bool {
    options
        .iter()
        .any(|o| matches!(&o.node, Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case(name)))
}

fn detaches_concurrently(cmd: &pg_query::Node) -> bool {
    let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node else {
        return false;
    };
    cmd.subtype == AlterTableType::AtDetachPartition as i32
        && matches!(cmd.def.as_deref().and_then(|d| d.node.as_ref()), Some(NodeEnum::PartitionCmd(p)) if p.concurrent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<Kind> {
        classify(sql).expect("parses").iter().map(|c| c.kind).collect()
    }

    #[test]
    fn statements_that_cannot_run_in_a_transaction() {
        let cases = [
            ("CREATE INDEX CONCURRENTLY i ON t (a);", "CREATE INDEX CONCURRENTLY"),
            (
                "create unique index concurrently if not exists i on t (a);",
                "CREATE INDEX CONCURRENTLY",
            ),
            ("DROP INDEX CONCURRENTLY IF EXISTS i;", "DROP INDEX CONCURRENTLY"),
            ("REINDEX INDEX CONCURRENTLY i;", "REINDEX CONCURRENTLY"),
            ("REINDEX (CONCURRENTLY, VERBOSE) TABLE t;", "REINDEX CONCURRENTLY"),
            ("VACUUM (ANALYZE) t;", "VACUUM"),
            ("ALTER SYSTEM SET work_mem = '8MB';", "ALTER SYSTEM"),
            ("CREATE DATABASE x;", "CREATE DATABASE"),
            ("DROP DATABASE x;", "DROP DATABASE"),
            ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY;", "DETACH PARTITION CONCURRENTLY"),
            ("COMMIT PREPARED 'x';", "COMMIT PREPARED"),
        ];
        for (sql, reason) in cases {
            assert_eq!(kinds(sql), [Kind::NoTransaction(reason)], "{sql}");
        }
        for sql in [
            "-- CREATE INDEX CONCURRENTLY in a comment\nCREATE INDEX i ON t (a);",
            "CREATE INDEX i ON t (a) WHERE note = 'VACUUM';",
            "ANALYZE t;",
            "REINDEX INDEX i;",
            "DROP TABLE t;",
            "ALTER TABLE p DETACH PARTITION c;",
            "DO $$ BEGIN CREATE INDEX CONCURRENTLY i ON t (a); END $$;",
        ] {
            assert_eq!(kinds(sql), [Kind::Other], "{sql}");
        }
    }

    #[test]
    fn transaction_control_is_told_apart_from_words_that_look_like_it() {
        assert_eq!(kinds("COMMIT;"), [Kind::Commit]);
        assert_eq!(kinds("end"), [Kind::Commit]);
        assert_eq!(kinds("COMMIT AND CHAIN;"), [Kind::Commit]);
        assert_eq!(kinds("ROLLBACK;"), [Kind::Abandon("ROLLBACK")]);
        assert_eq!(kinds("ABORT;"), [Kind::Abandon("ROLLBACK")]);
        assert_eq!(kinds("PREPARE TRANSACTION 'x';"), [Kind::Abandon("PREPARE TRANSACTION")]);
        for sql in [
            "ROLLBACK TO SAVEPOINT s;",
            "SAVEPOINT s;",
            "RELEASE s;",
            "BEGIN;",
            "CREATE TEMP TABLE x (a int) ON COMMIT DROP;",
            "DO $$ BEGIN PERFORM 1; COMMIT; END $$;",
            "SELECT 'x; COMMIT';",
            "SELECT CASE WHEN true THEN 1 END;",
            // The body's `;` and `END` belong to the function: one statement, no COMMIT.
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;",
        ] {
            assert_eq!(kinds(sql), [Kind::Other], "{sql}");
        }
    }

    #[test]
    fn enum_additions_and_copy() {
        assert_eq!(kinds("ALTER TYPE \"public\".\"status\" ADD VALUE 'hidden';"), [Kind::AddsEnumValue]);
        assert_eq!(kinds("alter type s add value if not exists 'x' before 'y';"), [Kind::AddsEnumValue]);
        assert_eq!(kinds("ALTER TYPE s RENAME VALUE 'a' TO 'b';"), [Kind::Other]);
        assert_eq!(kinds("COPY t TO STDOUT;"), [Kind::CopyStdio("COPY TO STDOUT")]);
        assert_eq!(kinds("COPY t (a) FROM STDIN;"), [Kind::CopyStdio("COPY FROM STDIN")]);
        assert_eq!(kinds("COPY t FROM '/data/t.csv';"), [Kind::Other]);
        assert_eq!(kinds("COPY (SELECT 1) TO PROGRAM 'cat';"), [Kind::Other]);
    }

    #[test]
    fn ranges_cover_each_statement_with_its_semicolon() {
        let sql = "CREATE TABLE a ();\n\nCOMMIT;\n-- after\nCREATE TABLE b ()";
        let parts = classify(sql).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(&sql[parts[0].start..parts[0].end], "CREATE TABLE a ();");
        assert_eq!(&sql[parts[1].start..parts[1].end], "\n\nCOMMIT;");
        assert_eq!(&sql[parts[2].start..parts[2].end], "\n-- after\nCREATE TABLE b ()");
        assert_eq!(parts[1].kind, Kind::Commit);
    }

    #[test]
    fn comments_alone_are_no_statement_and_broken_sql_is_unclassified() {
        assert_eq!(classify("-- nothing\n/* nor /* nested */ here */\n"), Some(vec![]));
        assert_eq!(classify("SELEC 1"), None);
        assert_eq!(classify("SELECT 1\0"), None);
    }
}
