//! Rolling back: which applied migrations `rollback --to TAG` undoes (newest first), the
//! hand-written `<tag>.down.sql` files that undo them, and which tables and columns holding data
//! those files would drop. Planning is pure; only [`data_at_risk`] reads the database.

use std::fmt;

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;

use crate::db::connection::PgError;
use crate::db::ledger::quote_ident;
use crate::engine::plan::{Assessment, PlanError, Problem};
use crate::error::{Classified, Details, ErrorType, INSUFFICIENT_PRIVILEGE};
use crate::migrations::source::{DownScript, Layout, Migration};
use crate::migrations::statement::Statement;

/// Where a rollback stops: the migration left as the newest applied one, or nothing at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTarget {
    Migration(String),
    /// Before the first migration: every applied migration is rolled back.
    Empty,
}

/// The `--to` value that rolls back every migration. drizzle-kit tags start with digits, so no
/// migration can be named this.
pub const EMPTY_TARGET: &str = "none";

impl RollbackTarget {
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            EMPTY_TARGET => Self::Empty,
            tag => Self::Migration(tag.to_string()),
        }
    }

    pub fn tag(&self) -> Option<&str> {
        match self {
            Self::Migration(tag) => Some(tag),
            Self::Empty => None,
        }
    }
}

impl fmt::Display for RollbackTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag().unwrap_or(EMPTY_TARGET))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(
        "--to {target}: that migration is not applied (current: {current}); rollback only goes back to an applied migration, or to `none`"
    )]
    TargetNotApplied { target: String, current: String },
    #[error(
        "{tag}: no down file {file}; write it (statements separated by --> statement-breakpoint) before rolling back past this migration{hint}"
    )]
    MissingDownFile { tag: String, file: String, hint: &'static str },
    #[error("{tag}: down statement {index} ({reason}) cannot run inside a transaction, and a rollback is one transaction; use the plain form (e.g. DROP INDEX without CONCURRENTLY)")]
    NeedsAutocommit { tag: String, index: usize, reason: &'static str },
    #[error("{count} ledger row(s) newer than {target} match no journal entry (first: {first}); they cannot be rolled back and drizzle-orm would never re-apply what lies under them")]
    UnknownRowsAfterTarget { target: String, count: usize, first: String },
    #[error("rolling back would destroy data, or cannot rule it out: {} ({tag}). Back it up (take a snapshot), then run again with --allow-data-loss", objects.join("; "))]
    DataLoss { tag: String, objects: Vec<String> },
    #[error("check-rollback needs a scratch database with no migration applied, and this one has {rows} ledger row(s); point it at an empty database")]
    NotScratch { rows: usize },
    #[error("checking whether {object} holds data failed: {error}")]
    Inspect { object: String, error: PgError },
}

impl RollbackError {
    pub fn tag(&self) -> Option<&str> {
        match self {
            Self::Plan(e) => e.tag(),
            Self::MissingDownFile { tag, .. } | Self::NeedsAutocommit { tag, .. } | Self::DataLoss { tag, .. } => Some(tag),
            Self::TargetNotApplied { target, .. } => Some(target),
            _ => None,
        }
    }

    pub fn pg(&self) -> Option<&PgError> {
        match self {
            Self::Inspect { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// One migration to undo.
#[derive(Debug, Clone, Copy)]
pub struct Step<'m> {
    pub migration: &'m Migration,
    pub down: &'m DownScript,
}

#[derive(Debug, Clone)]
pub struct RollbackPlan<'m> {
    pub target: RollbackTarget,
    /// Newest first: the order the down files run in.
    pub steps: Vec<Step<'m>>,
}

/// Checks that `target` can be rolled back to and lists the down files to run. Refuses what
/// would leave the ledger or the schema in a state nobody can reason about.
pub fn plan<'m>(
    assessment: &Assessment<'m>,
    migrations: &'m [Migration],
    target: &RollbackTarget,
    allow_unknown_rows: bool,
) -> Result<RollbackPlan<'m>, RollbackError> {
    let target_idx = match target {
        RollbackTarget::Empty => None,
        RollbackTarget::Migration(tag) => {
            let m = migrations
                .iter()
                .find(|m| &m.tag == tag)
                .ok_or_else(|| PlanError::UnknownTarget { tag: tag.clone() })?;
            if !assessment.applied.iter().any(|a| a.migration.idx == m.idx) {
                return Err(RollbackError::TargetNotApplied {
                    target: tag.clone(),
                    current: assessment.current().map_or("none".into(), |c| c.tag.clone()),
                });
            }
            Some(m.idx)
        }
    };
    let undone: Vec<&Migration> = assessment
        .applied
        .iter()
        .rev()
        .map(|a| a.migration)
        .filter(|m| target_idx.is_none_or(|t| m.idx > t))
        .collect();
    for p in &assessment.problems {
        if let Problem::ChecksumMismatch {
            tag,
            applied_hash,
            file_hash,
        } = p
        {
            // Its down file was written for the file as it is now, not for what was applied.
            if undone.iter().any(|m| &m.tag == tag) {
                return Err(PlanError::ChecksumMismatch {
                    tag: tag.clone(),
                    applied_hash: applied_hash.clone(),
                    file_hash: file_hash.clone(),
                }
                .into());
            }
        }
    }
    let unknown: Vec<&Problem> = assessment
        .problems
        .iter()
        .filter(|p| matches!(p, Problem::UnknownRow { .. }))
        .collect();
    let target_when = target_idx.map(|t| migrations[t].created_at);
    let newer: Vec<&&Problem> = unknown
        .iter()
        .filter(|p| matches!(p, Problem::UnknownRow { created_at, .. } if target_when.is_none_or(|w| created_at.is_none_or(|c| c > w))))
        .collect();
    if !newer.is_empty() {
        return Err(RollbackError::UnknownRowsAfterTarget {
            target: target.to_string(),
            count: newer.len(),
            first: newer[0].describe(),
        });
    }
    if !unknown.is_empty() && !allow_unknown_rows {
        return Err(PlanError::UnknownRows {
            count: unknown.len(),
            first: unknown[0].describe(),
        }
        .into());
    }
    let mut steps = Vec::with_capacity(undone.len());
    for m in undone {
        let down = m.down.as_ref().ok_or_else(|| RollbackError::MissingDownFile {
            tag: m.tag.clone(),
            file: m.down_file(),
            hint: match m.layout() {
                Layout::Journal => "",
                Layout::Folders => " (drizzle-kit up leaves 0.x's <tag>.down.sql files at the top of the folder: move each into its migration's folder as down.sql)",
            },
        })?;
        if let Some((index, reason)) = down
            .statements
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.autocommit_reason().map(|r| (i + 1, r)))
        {
            return Err(RollbackError::NeedsAutocommit {
                tag: m.tag.clone(),
                index,
                reason,
            });
        }
        steps.push(Step { migration: m, down });
    }
    Ok(RollbackPlan {
        target: target.clone(),
        steps,
    })
}

pub use crate::sql::destroys::Destroys;

/// What a down statement destroys with its data, as Postgres's grammar reads it (`sql::destroys`).
pub fn destroys(statement: &Statement) -> Vec<Destroys> {
    crate::sql::destroys::destroys(&statement.sql)
}

/// An object a rollback would destroy that holds data right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataAtRisk {
    /// The migration whose down file destroys it.
    pub migration: String,
    /// `table "public"."t"`, `column "t"."c"` or `schema "s"`.
    pub object: String,
}

/// The tables (with rows) and columns (with a non-null value) the plan's down statements would
/// drop, and the down statements the check cannot read. Objects that do not exist (yet) are
/// skipped: `IF EXISTS` drops, or objects an earlier down statement of the same rollback creates.
///
/// With `lock` (inside the rollback's transaction) each table is locked `ACCESS EXCLUSIVE`, as
/// its drop would lock it, before it is looked at: a row committed after the check cannot slip
/// under the drop. The transaction's `lock_timeout` bounds the wait.
pub async fn data_at_risk(client: &impl GenericClient, plan: &RollbackPlan<'_>, lock: bool) -> Result<Vec<DataAtRisk>, RollbackError> {
    let mut out: Vec<DataAtRisk> = Vec::new();
    for step in &plan.steps {
        for (i, statement) in step.down.statements.iter().enumerate() {
            for target in destroys(statement) {
                let found = match &target {
                    Destroys::Table(table) => table_has_rows(client, table, lock).await?.then(|| format!("table {table}")),
                    Destroys::Column { table, column } => column_has_values(client, table, column, lock)
                        .await?
                        .then(|| format!("column {table}.{}", quote_ident(column))),
                    Destroys::Unclassified => Some(format!(
                        "down statement {} (line {}) `{}`, whose effect on the data the check cannot tell",
                        i + 1,
                        statement.line,
                        statement.summary()
                    )),
                    Destroys::Schema(schema) => {
                        let tables = schema_tables(client, schema).await?;
                        let mut with_rows = Vec::new();
                        for t in tables {
                            if table_has_rows(client, &t, lock).await? {
                                with_rows.push(t);
                            }
                        }
                        (!with_rows.is_empty()).then(|| format!("schema {} ({})", quote_ident(schema), with_rows.join(", ")))
                    }
                };
                if let Some(object) = found {
                    if !out.iter().any(|d| d.object == object) {
                        out.push(DataAtRisk {
                            migration: step.migration.tag.clone(),
                            object,
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

fn inspect(object: &str) -> impl Fn(tokio_postgres::Error) -> RollbackError + '_ {
    move |e| RollbackError::Inspect {
        object: object.to_string(),
        error: e.into(),
    }
}

async fn table_has_rows(client: &impl GenericClient, table: &str, lock: bool) -> Result<bool, RollbackError> {
    let exists: bool = client
        .query_one("select to_regclass($1) is not null", &[&table])
        .await
        .map_err(inspect(table))?
        .get(0);
    if !exists {
        return Ok(false);
    }
    lock_table(client, table, lock).await?;
    let sql = format!("select exists (select 1 from {table})");
    Ok(client.query_one(&sql, &[]).await.map_err(inspect(table))?.get(0))
}

async fn column_has_values(client: &impl GenericClient, table: &str, column: &str, lock: bool) -> Result<bool, RollbackError> {
    let exists: bool = client
        .query_one(
            "select exists (select 1 from pg_attribute where attrelid = to_regclass($1) and attname = $2 and attnum > 0 and not attisdropped)",
            &[&table, &column],
        )
        .await
        .map_err(inspect(table))?
        .get(0);
    if !exists {
        return Ok(false);
    }
    lock_table(client, table, lock).await?;
    // A column of nothing but NULLs loses nothing when dropped.
    let sql = format!("select exists (select 1 from {table} where {} is not null)", quote_ident(column));
    Ok(client.query_one(&sql, &[]).await.map_err(inspect(table))?.get(0))
}

async fn lock_table(client: &impl GenericClient, table: &str, lock: bool) -> Result<(), RollbackError> {
    if lock {
        let sql = format!("lock table {table} in access exclusive mode");
        client.batch_execute(&sql).await.map_err(inspect(table))?;
    }
    Ok(())
}

async fn schema_tables(client: &impl GenericClient, schema: &str) -> Result<Vec<String>, RollbackError> {
    let rows = client
        .query(
            "select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = $1 and c.relkind in ('r', 'p') order by 1",
            &[&schema],
        )
        .await
        .map_err(inspect(schema))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

impl Classified for RollbackError {
    fn error_type(&self) -> ErrorType {
        match self {
            Self::Plan(e) => e.error_type(),
            Self::Inspect { error, .. } if error.is(INSUFFICIENT_PRIVILEGE) => ErrorType::PermissionDenied,
            Self::Inspect { .. } => ErrorType::InspectionFailed,
            _ => ErrorType::RollbackRefused,
        }
    }

    fn migration(&self) -> Option<&str> {
        self.tag()
    }

    fn details(&self) -> Details {
        self.pg().map(PgError::details).unwrap_or_default()
    }
}

#[cfg(test)]
#[path = "rollback_plan_tests.rs"]
mod tests;
