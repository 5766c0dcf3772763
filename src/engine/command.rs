//! The commands a run carries out, named once: the CLI's subcommands, the Lambda's `action`
//! values and the report's `action` field all come from [`Action`].

use serde::{Deserialize, Serialize};

use crate::engine::rollback_plan::{RollbackTarget, EMPTY_TARGET};

/// What kind of command a run is, without its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Status,
    Plan,
    Migrate,
    Drift,
    Verify,
    Rollback,
    CheckRollback,
    Require,
    History,
    Lint,
    Check,
}

impl Action {
    /// In the order messages list them.
    pub const ALL: [Action; 11] = [
        Self::Migrate,
        Self::Plan,
        Self::Status,
        Self::Drift,
        Self::Verify,
        Self::Rollback,
        Self::CheckRollback,
        Self::Require,
        Self::History,
        Self::Lint,
        Self::Check,
    ];

    /// The name on the command line and in a Lambda request's `action`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Plan => "plan",
            Self::Migrate => "migrate",
            Self::Drift => "drift",
            Self::Verify => "verify",
            Self::Rollback => "rollback",
            Self::CheckRollback => "check-rollback",
            Self::Require => "require",
            Self::History => "history",
            Self::Lint => "lint",
            Self::Check => "check",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Every name, comma-separated, for messages that list the valid ones.
    pub fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Status,
    Plan {
        target: Option<String>,
    },
    Migrate {
        target: Option<String>,
        dry_run: bool,
    },
    /// Tells changes made to the database outside the migrations (status `driftDetected`; with
    /// `fail_on_drift` also an error, `DriftDetected`) from disagreements between drizzle's
    /// snapshot and what the migrations build (status `modelMismatch`; with `strict` an error,
    /// `ModelMismatch`). See `engine/examine.rs`.
    Drift {
        fail_on_drift: bool,
        strict: bool,
    },
    /// Drift, plus enum values, index validity and the hot queries' plans (`analyze`: timings).
    Verify {
        analyze: bool,
    },
    /// Undoes every applied migration newer than `target`, newest first, in one transaction.
    Rollback {
        target: RollbackTarget,
        dry_run: bool,
        allow_data_loss: bool,
    },
    /// On a scratch database: apply, roll back, compare and re-apply each migration in turn.
    CheckRollback,
    /// The deploy gate: `version` and every migration before it are applied (else `SchemaBehind`).
    Require {
        version: String,
    },
    /// The newest `limit` rows of the history table.
    History {
        limit: u32,
    },
    /// The schema-evolution policy over the migrations; `live`: the pending ones against the
    /// database's tables, else every one (after `since`) without connecting.
    Lint {
        since: Option<String>,
        live: bool,
    },
    /// The pull request's gate, without a database: drizzle-kit's team-workflow traps in the
    /// folder, against `base` (a git ref or a folder) when given.
    Check {
        base: Option<String>,
    },
}

impl Command {
    pub fn action(&self) -> Action {
        match self {
            Self::Status => Action::Status,
            Self::Plan { .. } => Action::Plan,
            Self::Migrate { .. } => Action::Migrate,
            Self::Drift { .. } => Action::Drift,
            Self::Verify { .. } => Action::Verify,
            Self::Rollback { .. } => Action::Rollback,
            Self::CheckRollback => Action::CheckRollback,
            Self::Require { .. } => Action::Require,
            Self::History { .. } => Action::History,
            Self::Lint { .. } => Action::Lint,
            Self::Check { .. } => Action::Check,
        }
    }

    /// The migration the command goes to, as the report names it.
    pub fn target(&self) -> Option<&str> {
        match self {
            Self::Status
            | Self::Drift { .. }
            | Self::Verify { .. }
            | Self::CheckRollback
            | Self::History { .. }
            | Self::Lint { .. }
            | Self::Check { .. } => None,
            Self::Require { version } => Some(version),
            Self::Plan { target } | Self::Migrate { target, .. } => target.as_deref(),
            Self::Rollback { target, .. } => Some(target.tag().unwrap_or(EMPTY_TARGET)),
        }
    }

    /// Changes nothing, by request.
    pub fn dry_run(&self) -> bool {
        match self {
            Self::Status
            | Self::Drift { .. }
            | Self::Verify { .. }
            | Self::CheckRollback
            | Self::Require { .. }
            | Self::History { .. }
            | Self::Lint { .. }
            | Self::Check { .. } => false,
            Self::Plan { .. } => true,
            Self::Migrate { dry_run, .. } | Self::Rollback { dry_run, .. } => *dry_run,
        }
    }

    /// Whether the run can change the schema, and so publishes the environment's state.
    pub fn changes_schema(&self) -> bool {
        matches!(self, Self::Migrate { dry_run: false, .. } | Self::Rollback { dry_run: false, .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_found_by_its_name() {
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.name()), Some(action));
        }
        assert_eq!(Action::from_name("checkRollback"), None);
        assert_eq!(
            Action::names(),
            "migrate, plan, status, drift, verify, rollback, check-rollback, require, history, lint, check"
        );
    }
}
