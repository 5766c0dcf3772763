//! The team's schema-evolution policy as rules: each with a stable id (what a waiver names), a
//! level, what it costs in production and the safe alternative. `docs/schema-evolution.md` is
//! the same list in prose; a test keeps the two in step.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Warning,
    Error,
}

/// What a statement does to writers of the table while it runs: decides whether the table's
/// live size can turn a warning into an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Breaks the running API version, or cannot work; the size of the table does not matter.
    Breaking,
    /// Reads every row while holding a lock that blocks writes.
    Scan,
    /// Rewrites every row (and rebuilds the indexes) under ACCESS EXCLUSIVE.
    Rewrite,
    /// Neither: about how the migration is run.
    Procedure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    DropTable,
    DropColumn,
    RenameTable,
    RenameColumn,
    NotNullColumnWithoutDefault,
    EnumValueRemoved,
    EnumValueRenamed,
    EnumTypeDropped,
    EnumValueUsedBeforeCommit,
    NonTransactionalMixed,
    IndexWithoutConcurrently,
    ConstraintBuildsIndex,
    ConstraintWithoutNotValid,
    SetNotNull,
    ColumnTypeRewrite,
    VolatileDefault,
    LockTimeoutOverridden,
    UnparsableStatement,
    WaiverWithoutReason,
    UnknownRuleWaived,
}

impl Rule {
    pub const ALL: [Rule; 20] = [
        Self::DropTable,
        Self::DropColumn,
        Self::RenameTable,
        Self::RenameColumn,
        Self::NotNullColumnWithoutDefault,
        Self::EnumValueRemoved,
        Self::EnumValueRenamed,
        Self::EnumTypeDropped,
        Self::EnumValueUsedBeforeCommit,
        Self::NonTransactionalMixed,
        Self::IndexWithoutConcurrently,
        Self::ConstraintBuildsIndex,
        Self::ConstraintWithoutNotValid,
        Self::SetNotNull,
        Self::ColumnTypeRewrite,
        Self::VolatileDefault,
        Self::LockTimeoutOverridden,
        Self::UnparsableStatement,
        Self::WaiverWithoutReason,
        Self::UnknownRuleWaived,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Self::DropTable => "drop-table",
            Self::DropColumn => "drop-column",
            Self::RenameTable => "rename-table",
            Self::RenameColumn => "rename-column",
            Self::NotNullColumnWithoutDefault => "not-null-column-without-default",
            Self::EnumValueRemoved => "enum-value-removed",
            Self::EnumValueRenamed => "enum-value-renamed",
            Self::EnumTypeDropped => "enum-type-dropped",
            Self::EnumValueUsedBeforeCommit => "enum-value-used-before-commit",
            Self::NonTransactionalMixed => "non-transactional-mixed",
            Self::IndexWithoutConcurrently => "index-without-concurrently",
            Self::ConstraintBuildsIndex => "constraint-builds-index",
            Self::ConstraintWithoutNotValid => "constraint-without-not-valid",
            Self::SetNotNull => "set-not-null",
            Self::ColumnTypeRewrite => "column-type-rewrite",
            Self::VolatileDefault => "volatile-default",
            Self::LockTimeoutOverridden => "lock-timeout-overridden",
            Self::UnparsableStatement => "unparsable-statement",
            Self::WaiverWithoutReason => "waiver-without-reason",
            Self::UnknownRuleWaived => "unknown-rule-waived",
        }
    }

    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.id() == id)
    }

    pub fn level(self) -> Level {
        match self.cost() {
            Cost::Scan | Cost::Rewrite => Level::Warning,
            Cost::Breaking => Level::Error,
            Cost::Procedure => match self {
                // Postgres reports its own precise error when the migration runs and rolls the
                // transaction back; and a newer server may accept what the parser (17) does not.
                Self::LockTimeoutOverridden | Self::UnknownRuleWaived | Self::UnparsableStatement => Level::Warning,
                _ => Level::Error,
            },
        }
    }

    pub fn cost(self) -> Cost {
        match self {
            Self::DropTable
            | Self::DropColumn
            | Self::RenameTable
            | Self::RenameColumn
            | Self::NotNullColumnWithoutDefault
            | Self::EnumValueRemoved
            | Self::EnumValueRenamed
            | Self::EnumTypeDropped
            | Self::EnumValueUsedBeforeCommit => Cost::Breaking,
            Self::IndexWithoutConcurrently | Self::ConstraintBuildsIndex | Self::ConstraintWithoutNotValid | Self::SetNotNull => Cost::Scan,
            Self::ColumnTypeRewrite | Self::VolatileDefault => Cost::Rewrite,
            Self::NonTransactionalMixed
            | Self::LockTimeoutOverridden
            | Self::UnparsableStatement
            | Self::WaiverWithoutReason
            | Self::UnknownRuleWaived => Cost::Procedure,
        }
    }

    /// Whether a waiver can silence it: a waiver cannot waive the waiver rules themselves.
    pub fn waivable(self) -> bool {
        !matches!(self, Self::WaiverWithoutReason | Self::UnknownRuleWaived)
    }

    /// What to do instead: the line a finding ends with.
    pub fn alternative(self) -> &'static str {
        match self {
            Self::DropTable | Self::DropColumn => {
                "expand/contract: stop using it in one release, drop it in a later one once no running version reads it"
            }
            Self::RenameTable | Self::RenameColumn => {
                "expand/contract: add the new name, write both, backfill, move readers, drop the old name in a later release"
            }
            Self::NotNullColumnWithoutDefault => {
                "add the column nullable (or with a constant DEFAULT), backfill in batches, then add the NOT NULL in a later migration"
            }
            Self::EnumValueRemoved | Self::EnumValueRenamed => {
                "keep the value: stop writing it, migrate the rows, and leave it in the type (Postgres cannot drop an enum value in place)"
            }
            Self::EnumTypeDropped => "drop the type only after every column using it was moved off it, in a later release",
            Self::EnumValueUsedBeforeCommit => {
                "use the new value in a later migration, or end this one with `-- wishlist-migrator: commit-after` and use it in the next"
            }
            Self::NonTransactionalMixed => {
                "put the statement that cannot run in a transaction in a migration of its own, marked `-- wishlist-migrator: no-transaction`"
            }
            Self::IndexWithoutConcurrently => {
                "CREATE INDEX CONCURRENTLY in a migration of its own marked `-- wishlist-migrator: no-transaction`"
            }
            Self::ConstraintBuildsIndex => {
                "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT … UNIQUE/PRIMARY KEY USING INDEX"
            }
            Self::ConstraintWithoutNotValid => {
                "ADD CONSTRAINT … NOT VALID, end the migration with `-- wishlist-migrator: commit-after`, then VALIDATE CONSTRAINT in the next"
            }
            Self::SetNotNull => {
                "ADD CONSTRAINT … CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later segment, then SET NOT NULL (no scan) and drop the check"
            }
            Self::ColumnTypeRewrite => {
                "add a column of the new type, write both, backfill in batches, switch readers, drop the old column later"
            }
            Self::VolatileDefault => {
                "add the column without the default (or with a constant one), then set the default and backfill in batches"
            }
            Self::LockTimeoutOverridden => {
                "leave lock_timeout to the tool (PG_LOCK_TIMEOUT_MS): it retries a statement that waits too long instead of queueing every writer"
            }
            Self::UnparsableStatement => "fix the statement: Postgres's own grammar does not accept it",
            Self::WaiverWithoutReason => "write why after the rule id: `-- wishlist-migrator: allow <rule-id> -- <reason>`",
            Self::UnknownRuleWaived => "name a rule from docs/schema-evolution.md (`wishlist-migrate lint --json` shows each finding's rule)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_found_by_its_id_and_ids_are_unique() {
        for rule in Rule::ALL {
            assert_eq!(Rule::from_id(rule.id()), Some(rule));
        }
        let mut ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), Rule::ALL.len());
    }

    #[test]
    fn scan_and_rewrite_rules_are_warnings_breaking_ones_errors() {
        for rule in Rule::ALL {
            match rule.cost() {
                Cost::Scan | Cost::Rewrite => assert_eq!(rule.level(), Level::Warning, "{}", rule.id()),
                Cost::Breaking => assert_eq!(rule.level(), Level::Error, "{}", rule.id()),
                Cost::Procedure => {}
            }
        }
    }

    #[test]
    fn the_policy_document_covers_every_rule() {
        let doc = include_str!("../../docs/schema-evolution.md");
        for rule in Rule::ALL {
            assert!(
                doc.contains(&format!("`{}`", rule.id())),
                "docs/schema-evolution.md lacks `{}`",
                rule.id()
            );
        }
    }
}
