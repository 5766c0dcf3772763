//! Where an interrupted migration that runs outside a transaction picks up again. Its
//! statements commit one by one, and each one's commit is recorded in the history table, so
//! the next run skips what already stands instead of failing on it forever
//! (`relation "idx_a" already exists`). Pure: the history rows are read by the applier.

use sha2::{Digest, Sha256};

use crate::db::history::StatementDone;
use crate::db::ledger::quote_ident;
use crate::error::{Classified, ErrorType};
use crate::migrations::statement::Statement;
use crate::sql::index::{self, IndexName};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{tag}: statement {index} committed in run {run_id}, and its text has changed since. It runs outside a transaction, so it stays in the database as it was: restore the statement as it was applied (statements 1 to {done} must not change), or undo what it did by hand and delete its history rows (action 'statement') before running again")]
pub struct ResumeError {
    pub tag: String,
    pub index: i32,
    pub done: i32,
    pub run_id: String,
}

impl Classified for ResumeError {
    fn error_type(&self) -> ErrorType {
        ErrorType::ChecksumMismatch
    }

    fn migration(&self) -> Option<&str> {
        Some(&self.tag)
    }
}

/// How a completed statement is recognised again: the SHA-256 of its text, hex.
pub fn statement_hash(statement: &Statement) -> String {
    hex::encode(Sha256::digest(statement.sql.as_bytes()))
}

/// Where to start, counting from 0, and the run the skipped statements committed in: the
/// statements 1..k recorded as done (in order, none missing) are skipped, provided each still
/// reads as it did.
pub fn resume_point(tag: &str, statements: &[Statement], done: &[StatementDone]) -> Result<(usize, Option<String>), ResumeError> {
    let mut start = 0;
    let mut run_id = None;
    let highest = done.iter().map(|d| d.index).max().unwrap_or(0);
    for d in done {
        let index = usize::try_from(d.index).unwrap_or(0);
        let changed = || ResumeError {
            tag: tag.to_string(),
            index: d.index,
            done: highest,
            run_id: d.run_id.clone(),
        };
        let statement = index.checked_sub(1).and_then(|i| statements.get(i)).ok_or_else(changed)?;
        if statement_hash(statement) != d.hash {
            return Err(changed());
        }
        if index == start + 1 {
            start = index;
            run_id = Some(d.run_id.clone());
        }
    }
    Ok((start, run_id))
}

/// The index a named `CREATE [UNIQUE] INDEX CONCURRENTLY` builds, as a quoted reference in
/// its table's schema; `None` for any other statement or an unnamed index. A failed concurrent
/// build leaves that index behind INVALID, and the statement could never run again while it is
/// there.
pub fn concurrent_index(statement: &Statement) -> Option<String> {
    index::built_concurrently(&statement.sql).map(|i| quoted(&i))
}

fn quoted(index: &IndexName) -> String {
    match &index.schema {
        Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&index.name)),
        None => quote_ident(&index.name),
    }
}

/// How one statement of a migration that runs outside a transaction commits, and how the next
/// run tells it committed when a crash came between its commit and its history row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Can run in a transaction block: it commits in one transaction with its history row, so
    /// the two never come apart.
    WithItsRow,
    /// `CREATE INDEX CONCURRENTLY` of this index (quoted): done when the index is there and valid.
    BuildsIndex(String),
    /// `DROP INDEX CONCURRENTLY` of this index (quoted): done when the index is gone.
    DropsIndex(String),
    /// Neither (`VACUUM`, `REINDEX CONCURRENTLY`, an unnamed index, ...): after such a crash it
    /// runs again.
    Alone,
}

impl Step {
    pub fn of(statement: &Statement) -> Step {
        if statement.autocommit_reason().is_none() {
            // A piece that ends a transaction of its own would end ours before its history row.
            return if statement.ends_transaction() {
                Step::Alone
            } else {
                Step::WithItsRow
            };
        }
        if let Some(index) = concurrent_index(statement) {
            return Step::BuildsIndex(index);
        }
        dropped_index(statement).map_or(Step::Alone, Step::DropsIndex)
    }
}

/// Whether the statement waits for every older transaction (or snapshot) of the database to end
/// before it finishes: `lock_timeout` governs that wait, so any long query elsewhere would
/// fail it, however harmless; the deadline bounds it instead.
pub fn waits_for_older_transactions(statement: &Statement) -> bool {
    statement.autocommit_reason().is_some_and(|reason| reason.ends_with("CONCURRENTLY"))
}

/// The index a `DROP INDEX CONCURRENTLY [IF EXISTS] [schema.]name` drops, quoted.
pub fn dropped_index(statement: &Statement) -> Option<String> {
    index::dropped_concurrently(&statement.sql).map(|i| quoted(&i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statements(sql: &[&str]) -> Vec<Statement> {
        sql.iter().enumerate().map(|(i, s)| Statement::new(*s, i + 1)).collect()
    }

    fn done(statements: &[Statement], index: i32) -> StatementDone {
        StatementDone {
            index,
            hash: statement_hash(&statements[index as usize - 1]),
            run_id: format!("run-{index}"),
        }
    }

    #[test]
    fn resumes_after_the_statements_that_committed() {
        let s = statements(&[
            "CREATE INDEX CONCURRENTLY a ON t (a)",
            "CREATE INDEX CONCURRENTLY b ON t (b)",
            "ANALYZE t",
        ]);
        assert_eq!(resume_point("m", &s, &[]), Ok((0, None)));
        assert_eq!(resume_point("m", &s, &[done(&s, 1)]), Ok((1, Some("run-1".into()))));
        assert_eq!(resume_point("m", &s, &[done(&s, 1), done(&s, 2)]), Ok((2, Some("run-2".into()))));
        // Recorded twice (two interrupted runs) counts once.
        assert_eq!(resume_point("m", &s, &[done(&s, 1), done(&s, 1)]).map(|r| r.0), Ok(1));
        // All done but the ledger row: nothing left to run.
        assert_eq!(resume_point("m", &s, &[done(&s, 1), done(&s, 2), done(&s, 3)]).map(|r| r.0), Ok(3));
    }

    #[test]
    fn a_changed_or_vanished_completed_statement_is_refused() {
        let s = statements(&["CREATE INDEX CONCURRENTLY a ON t (a)", "CREATE INDEX CONCURRENTLY b ON t (b)"]);
        let changed = statements(&["CREATE INDEX CONCURRENTLY a ON t (a, c)", "CREATE INDEX CONCURRENTLY b ON t (b)"]);
        let error = resume_point("m", &changed, &[done(&s, 1)]).unwrap_err();
        assert_eq!((error.index, error.error_type()), (1, ErrorType::ChecksumMismatch));
        assert!(error.to_string().contains("statement 1 committed in run run-1"), "{error}");
        let shorter = statements(&["CREATE INDEX CONCURRENTLY a ON t (a)"]);
        assert!(resume_point("m", &shorter, &[done(&s, 1), done(&s, 2)]).is_err());
        let bogus = StatementDone {
            index: 0,
            hash: String::new(),
            run_id: "r".into(),
        };
        assert!(resume_point("m", &s, &[bogus]).is_err());
    }

    #[test]
    fn finds_the_index_a_concurrent_build_creates() {
        let index = |sql: &str| concurrent_index(&statements(&[sql])[0]);
        assert_eq!(
            index("CREATE INDEX CONCURRENTLY \"idx_a\" ON \"t\" (a)").as_deref(),
            Some("\"idx_a\"")
        );
        assert_eq!(
            index("create unique index concurrently if not exists Idx_B on only \"app\".\"T\" using btree (b)").as_deref(),
            Some("\"app\".\"idx_b\"")
        );
        assert_eq!(index("CREATE INDEX \"idx_a\" ON \"t\" (a)"), None);
        assert_eq!(index("CREATE INDEX CONCURRENTLY ON \"t\" (a)"), None, "an unnamed index");
        assert_eq!(index("REINDEX INDEX CONCURRENTLY \"idx_a\""), None);
    }

    #[test]
    fn the_statement_that_failed_may_be_fixed() {
        // Statement 2 failed (so it was never recorded); editing it is how an operator fixes it.
        let s = statements(&["CREATE INDEX CONCURRENTLY a ON t (a)", "CREATE INDEX CONCURRENTLY b ON t (b)"]);
        let fixed = statements(&["CREATE INDEX CONCURRENTLY a ON t (a)", "CREATE INDEX CONCURRENTLY b ON t (c)"]);
        assert_eq!(resume_point("m", &fixed, &[done(&s, 1)]).map(|r| r.0), Ok(1));
    }

    #[test]
    fn each_statement_commits_with_its_row_or_can_be_checked() {
        let step = |sql: &str| Step::of(&statements(&[sql])[0]);
        assert_eq!(step("CREATE TABLE \"t\" (a int)"), Step::WithItsRow);
        assert_eq!(step("ALTER TYPE \"e\" ADD VALUE 'x'"), Step::WithItsRow);
        assert_eq!(step("INSERT INTO t VALUES (1); COMMIT;"), Step::Alone);
        assert_eq!(
            step("CREATE INDEX CONCURRENTLY \"idx_a\" ON \"t\" (a)"),
            Step::BuildsIndex("\"idx_a\"".into())
        );
        assert_eq!(
            step("DROP INDEX CONCURRENTLY IF EXISTS \"app\".\"idx_a\";"),
            Step::DropsIndex("\"app\".\"idx_a\"".into())
        );
        assert_eq!(step("drop index concurrently Idx_A"), Step::DropsIndex("\"idx_a\"".into()));
        assert_eq!(step("DROP INDEX CONCURRENTLY \"idx_a\" CASCADE"), Step::Alone);
        assert_eq!(step("VACUUM \"t\""), Step::Alone);
        assert_eq!(step("CREATE INDEX CONCURRENTLY ON \"t\" (a)"), Step::Alone);
    }

    #[test]
    fn only_concurrent_statements_wait_for_older_transactions() {
        let waits = |sql: &str| waits_for_older_transactions(&statements(&[sql])[0]);
        assert!(waits("CREATE UNIQUE INDEX CONCURRENTLY \"idx_a\" ON \"t\" (a)"));
        assert!(waits("DROP INDEX CONCURRENTLY \"idx_a\""));
        assert!(waits("REINDEX INDEX CONCURRENTLY \"idx_a\""));
        assert!(waits("ALTER TABLE \"p\" DETACH PARTITION \"c\" CONCURRENTLY"));
        assert!(!waits("VACUUM \"t\""));
        assert!(!waits("CREATE INDEX \"idx_a\" ON \"t\" (a)"));
    }
}
