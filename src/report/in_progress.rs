//! Whether a failed `migrate` is an online run still in progress: stopped by its deadline
//! part-way through a recipe, its committed steps kept and resumable, so the Lambda answers
//! `inProgress` (and the release workflow invokes it again) instead of failing.

use crate::engine::error::Error;
use crate::engine::outcome::{Migrated, SegmentStatus};
use crate::online::{Decision, OnlinePlan};
use crate::report::InProgressReport;

/// What is left, when `error` stopped an online run at its deadline with nothing in doubt.
/// Only an online run qualifies: its recipes commit step by step, so each round moves it on.
/// A transaction cut at the deadline kept nothing, and running it again would only repeat it.
pub fn of(m: &Migrated, error: &Error) -> Option<InProgressReport> {
    if m.online.is_empty() || m.segments.iter().any(|s| s.status == SegmentStatus::Unknown) {
        return None;
    }
    let (migration, step, statement) = match error {
        Error::Deadline { .. } => (None, None, None),
        Error::Migration(e) if e.deadline => (Some(e.tag.clone()), e.statement_number(), e.statement.clone()),
        _ => return None,
    };
    let steps = migration
        .as_ref()
        .and_then(|tag| m.online.iter().find(|p| &p.migration == tag))
        .map(steps_of);
    Some(InProgressReport {
        remaining: m
            .ledger
            .as_ref()
            .map(|l| l.pending.iter().map(|p| p.tag.clone()).collect())
            .unwrap_or_default(),
        migration,
        step,
        steps,
        statement,
        reason: error.to_string(),
    })
}

/// How many statements the online run of `plan`'s migration sends: each recipe's steps in
/// place of its statement.
fn steps_of(plan: &OnlinePlan) -> usize {
    plan.statements
        .iter()
        .map(|s| match &s.decision {
            Decision::Recipe { steps, .. } => steps.len(),
            Decision::AsWritten | Decision::Refused { .. } => 1,
            Decision::Merged { .. } => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::connection::PgError;
    use crate::engine::error::MigrationError;
    use crate::engine::outcome::{LedgerView, PendingMigration, SegmentOutcome};
    use crate::engine::plan::SegmentMode;
    use crate::migrations::statement::Statement;
    use crate::online::StatementPlan;

    fn plan(decisions: Vec<Decision>) -> OnlinePlan {
        OnlinePlan {
            migration: "0001_online".into(),
            statements: decisions
                .into_iter()
                .enumerate()
                .map(|(i, decision)| StatementPlan {
                    statement: i + 1,
                    line: i + 1,
                    summary: "s".into(),
                    decision,
                    estimated_ms: None,
                })
                .collect(),
        }
    }

    /// An online run of 0001 (a 4-step recipe, then a 1-step one) with 0002 after it.
    fn migrated(online: bool, status: SegmentStatus) -> Migrated {
        let recipe = |n: usize| Decision::Recipe {
            recipe: "r".into(),
            steps: vec!["step".into(); n],
        };
        let pending = |tag: &str| PendingMigration {
            tag: tag.into(),
            hash: "h".into(),
            statements: 2,
        };
        Migrated {
            ledger: Some(LedgerView {
                current: Some("0000_tables".into()),
                pending: vec![pending("0001_online"), pending("0002_more")],
                problems: Vec::new(),
            }),
            segments: vec![SegmentOutcome {
                mode: SegmentMode::Autocommit,
                migrations: vec!["0001_online".into()],
                status,
                attempts: 1,
                reason: None,
            }],
            online: if online {
                vec![plan(vec![recipe(4), recipe(1)])]
            } else {
                Vec::new()
            },
            ..Migrated::default()
        }
    }

    fn cut(deadline: bool, i: usize) -> Error {
        let pg = PgError {
            sqlstate: Some("57014".into()),
            message: "canceling statement due to statement timeout".into(),
            detail: None,
            hint: None,
        };
        let statement = Statement::new(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"items_user_idx\" ON \"items\" (\"user_id\")",
            2,
        );
        Error::Migration(MigrationError::at_statement(
            "0001_online",
            i,
            &statement,
            pg,
            deadline,
            "Cancelled at the invocation deadline",
        ))
    }

    #[test]
    fn an_online_run_cut_by_its_deadline_says_which_step_is_next_and_what_is_left() {
        let left = of(&migrated(true, SegmentStatus::PartiallyApplied), &cut(true, 4)).expect("in progress");
        assert_eq!(left.remaining, ["0001_online", "0002_more"]);
        assert_eq!(left.migration.as_deref(), Some("0001_online"));
        assert_eq!((left.step, left.steps), (Some(5), Some(5)));
        assert!(
            left.statement.as_deref().unwrap().starts_with("CREATE INDEX CONCURRENTLY"),
            "{left:?}"
        );
        assert!(left.reason.contains("invocation deadline"), "{}", left.reason);
        assert_eq!(
            left.summary(),
            "0001_online is part-way (next: step 5 of 5); 2 migration(s) left: 0001_online, 0002_more"
        );
        // Stopped between migrations: what is left, without a step.
        let between = of(&migrated(true, SegmentStatus::Committed), &Error::Deadline { during: "migrating" }).unwrap();
        assert_eq!((between.migration, between.step), (None, None));
    }

    #[test]
    fn anything_else_is_a_failure() {
        // Not online: the transaction it was in kept nothing, and running it again repeats it.
        assert!(of(&migrated(false, SegmentStatus::RolledBack), &cut(true, 0)).is_none());
        // A statement that failed on its own, not at the deadline.
        assert!(of(&migrated(true, SegmentStatus::PartiallyApplied), &cut(false, 1)).is_none());
        // Whether the last step committed is not known: a person checks with `status` first.
        assert!(of(&migrated(true, SegmentStatus::Unknown), &cut(true, 1)).is_none());
        let lost = Error::Abandoned {
            action: crate::engine::Action::Migrate,
            in_migration: Some("0001_online".into()),
        };
        assert!(of(&migrated(true, SegmentStatus::PartiallyApplied), &lost).is_none());
    }

    #[test]
    fn a_statement_merged_into_a_later_recipe_sends_no_step_of_its_own() {
        let merged = plan(vec![
            Decision::Merged { into: 3 },
            Decision::AsWritten,
            Decision::Recipe {
                recipe: "expandBackfillSwap".into(),
                steps: vec!["step".into(); 8],
            },
        ]);
        assert_eq!(steps_of(&merged), 1 + 8);
    }
}
