//! Deciding what a run does: matching ledger rows to local migrations, finding what drizzle-orm
//! would silently get wrong, and cutting the pending migrations into commit segments. Pure: no I/O.

use std::collections::{HashMap, HashSet};

use crate::db::ledger::LedgerRow;
use crate::error::{Classified, ErrorType};
use crate::migrations::source::{Migration, TransactionMode};

/// Something wrong between the ledger and the local migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The migration was applied, and its file has changed since.
    ChecksumMismatch {
        tag: String,
        applied_hash: String,
        file_hash: String,
    },
    /// Not applied, but not newer than the newest applied row: drizzle-orm would skip it forever.
    OutOfOrder { tag: String, when: i64, newest_applied_when: i64 },
    /// 1.0: not applied, but it sorts before an applied folder: drizzle-orm 1.0 would apply it
    /// after migrations written without it. Still pending (it is what drizzle-orm 1.0 applies).
    OutOfOrderFolder { tag: String, newest_applied: String },
    /// 1.0: not applied under its name, but a ledger row naming no folder has its hash: the
    /// applied folder was renamed, and drizzle-orm 1.0 would run it again.
    RenamedFolder { tag: String, applied_as: String },
    /// A ledger row that matches no journal entry (a migration deleted locally, or a `when` edited).
    UnknownRow {
        id: i32,
        hash: String,
        created_at: Option<i64>,
        /// A local migration with the same hash, which points at an edited journal `when`
        /// (1.0: a renamed folder).
        same_hash_as: Option<String>,
        /// 1.0: the row's folder name.
        name: Option<String>,
    },
}

impl Problem {
    pub fn tag(&self) -> Option<&str> {
        match self {
            Self::ChecksumMismatch { tag, .. }
            | Self::OutOfOrder { tag, .. }
            | Self::OutOfOrderFolder { tag, .. }
            | Self::RenamedFolder { tag, .. } => Some(tag),
            Self::UnknownRow { .. } => None,
        }
    }

    /// Stable camelCase name used in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ChecksumMismatch { .. } => "checksumMismatch",
            Self::OutOfOrder { .. } | Self::OutOfOrderFolder { .. } => "outOfOrder",
            Self::RenamedFolder { .. } => "renamedMigration",
            Self::UnknownRow { .. } => "unknownLedgerRow",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::ChecksumMismatch { tag, applied_hash, file_hash } => format!(
                "{tag}: applied with hash {applied_hash} but the file now hashes to {file_hash}"
            ),
            Self::OutOfOrder { tag, when, newest_applied_when } => format!(
                "{tag}: not applied, and its journal when={when} is not newer than the newest applied migration (created_at={newest_applied_when})"
            ),
            Self::OutOfOrderFolder { tag, newest_applied } => {
                format!("{tag}: not applied, and it sorts before {newest_applied}, which is applied")
            }
            Self::RenamedFolder { tag, applied_as } => {
                format!("{tag}: not applied under this name, but its file was applied as {applied_as} (was the folder renamed?)")
            }
            Self::UnknownRow {
                id,
                hash,
                name: Some(name),
                same_hash_as,
                ..
            } => {
                let hint = same_hash_as
                    .as_ref()
                    .map(|tag| format!(" (same hash as {tag}: was the folder renamed?)"))
                    .unwrap_or_default();
                format!("ledger row id={id} hash={hash} name={name} matches no migration folder{hint}")
            }
            Self::UnknownRow {
                id,
                hash,
                created_at,
                same_hash_as,
                name: None,
            } => {
                let created = created_at.map_or("null".to_string(), |c| c.to_string());
                let hint = same_hash_as
                    .as_ref()
                    .map(|tag| format!(" (same hash as {tag}: was its journal `when` edited?)"))
                    .unwrap_or_default();
                format!("ledger row id={id} hash={hash} created_at={created} matches no journal entry{hint}")
            }
        }
    }
}

/// A local migration the ledger records as applied.
#[derive(Debug, Clone, Copy)]
pub struct Applied<'m> {
    pub migration: &'m Migration,
    pub row_id: i32,
}

/// The ledger read against the local migrations: the answer to `status`.
#[derive(Debug, Clone)]
pub struct Assessment<'m> {
    /// In journal order.
    pub applied: Vec<Applied<'m>>,
    /// In journal order; only migrations drizzle-orm would also apply.
    pub pending: Vec<&'m Migration>,
    pub problems: Vec<Problem>,
    /// The ledger as it was read (what a recorded baseline is keyed on).
    pub rows: Vec<LedgerRow>,
}

impl<'m> Assessment<'m> {
    /// The last applied migration in journal order: the database's schema version.
    pub fn current(&self) -> Option<&'m Migration> {
        self.applied.last().map(|a| a.migration)
    }
}

pub fn assess<'m>(rows: &[LedgerRow], migrations: &'m [Migration]) -> Assessment<'m> {
    let by_when: HashMap<i64, &Migration> = migrations.iter().map(|m| (m.created_at, m)).collect();
    let mut applied_ids: HashMap<usize, i32> = HashMap::new();
    let mut problems = Vec::new();
    for row in rows {
        match row.created_at.and_then(|when| by_when.get(&when)) {
            Some(m) if m.hash == row.hash => {
                applied_ids.entry(m.idx).or_insert(row.id);
            }
            Some(m) => {
                // Still counts as applied: the schema change happened, only the file moved on.
                applied_ids.entry(m.idx).or_insert(row.id);
                problems.push(Problem::ChecksumMismatch {
                    tag: m.tag.clone(),
                    applied_hash: row.hash.clone(),
                    file_hash: m.hash.clone(),
                });
            }
            None => problems.push(Problem::UnknownRow {
                id: row.id,
                hash: row.hash.clone(),
                created_at: row.created_at,
                same_hash_as: migrations.iter().find(|m| m.hash == row.hash).map(|m| m.tag.clone()),
                name: None,
            }),
        }
    }
    // drizzle-orm applies exactly the entries newer than its newest row; mirror that cut-off.
    let newest_applied_when = rows.iter().filter_map(|r| r.created_at).max();
    let mut applied = Vec::new();
    let mut pending = Vec::new();
    for m in migrations {
        if let Some(&row_id) = applied_ids.get(&m.idx) {
            applied.push(Applied { migration: m, row_id });
        } else {
            match newest_applied_when {
                Some(newest) if m.created_at <= newest => problems.push(Problem::OutOfOrder {
                    tag: m.tag.clone(),
                    when: m.created_at,
                    newest_applied_when: newest,
                }),
                _ => pending.push(m),
            }
        }
    }
    Assessment {
        applied,
        pending,
        problems,
        rows: rows.to_vec(),
    }
}

/// The ledger read against a drizzle-kit 1.0 folder, as drizzle-orm 1.0 reads it: a folder is
/// applied when its name is in the ledger (rows without a name are ignored, as drizzle-orm 1.0
/// ignores them), whatever the row's `created_at`; `migrations` are in drizzle-orm 1.0's order.
/// Where drizzle-orm 1.0 would go on silently, this finds the problem: a changed file (its name's
/// row has another hash), a row whose name matches no folder (a folder deleted or renamed: 1.0
/// would run a renamed one again), and a pending folder that sorts before an applied one (1.0
/// would apply it out of order).
pub fn assess_folders<'m>(rows: &[LedgerRow], migrations: &'m [Migration]) -> Assessment<'m> {
    let by_name: HashMap<&str, &Migration> = migrations.iter().filter_map(|m| Some((m.name.as_deref()?, m))).collect();
    let mut applied_ids: HashMap<usize, i32> = HashMap::new();
    let mut problems = Vec::new();
    for row in rows {
        let Some(name) = row.name.as_deref() else { continue };
        match by_name.get(name) {
            Some(m) => {
                applied_ids.entry(m.idx).or_insert(row.id);
                if m.hash != row.hash {
                    problems.push(Problem::ChecksumMismatch {
                        tag: m.tag.clone(),
                        applied_hash: row.hash.clone(),
                        file_hash: m.hash.clone(),
                    });
                }
            }
            None => problems.push(Problem::UnknownRow {
                id: row.id,
                hash: row.hash.clone(),
                created_at: row.created_at,
                same_hash_as: migrations.iter().find(|m| m.hash == row.hash).map(|m| m.tag.clone()),
                name: Some(name.to_string()),
            }),
        }
    }
    let newest_applied = migrations.iter().rev().find(|m| applied_ids.contains_key(&m.idx));
    let mut applied = Vec::new();
    let mut pending = Vec::new();
    for m in migrations {
        if let Some(&row_id) = applied_ids.get(&m.idx) {
            applied.push(Applied { migration: m, row_id });
        } else {
            let renamed_from = rows
                .iter()
                .filter(|r| r.hash == m.hash)
                .find_map(|r| r.name.as_deref().filter(|name| !by_name.contains_key(name)));
            if let Some(applied_as) = renamed_from {
                problems.push(Problem::RenamedFolder {
                    tag: m.tag.clone(),
                    applied_as: applied_as.to_string(),
                });
                continue;
            }
            if let Some(newest) = newest_applied.filter(|newest| m.idx < newest.idx) {
                problems.push(Problem::OutOfOrderFolder {
                    tag: m.tag.clone(),
                    newest_applied: newest.tag.clone(),
                });
            }
            pending.push(m);
        }
    }
    Assessment {
        applied,
        pending,
        problems,
        rows: rows.to_vec(),
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions<'a> {
    /// Apply up to and including this tag.
    pub target: Option<&'a str>,
    /// Go on despite ledger rows that match no journal entry.
    pub allow_unknown_rows: bool,
    /// drizzle-kit 1.0 folders: apply pending folders that sort before an applied one.
    pub allow_out_of_order: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentMode {
    /// All migrations of the segment and their ledger rows commit together or not at all.
    Transaction,
    /// One migration whose statements cannot run in a transaction; each commits on its own.
    Autocommit,
}

#[derive(Debug, Clone)]
pub struct Segment<'m> {
    pub mode: SegmentMode,
    pub migrations: Vec<&'m Migration>,
}

#[derive(Debug, Clone)]
pub struct Plan<'m> {
    pub segments: Vec<Segment<'m>>,
    /// Pending migrations left for later because they come after the target.
    pub deferred: Vec<&'m Migration>,
}

impl<'m> Plan<'m> {
    pub fn migrations(&self) -> impl Iterator<Item = &'m Migration> + '_ {
        self.segments.iter().flat_map(|s| s.migrations.iter().copied())
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("{tag}: applied with hash {applied_hash}, but the file now hashes to {file_hash}. An applied migration must not change: restore the file from the release that applied it and put the change in a new migration")]
    ChecksumMismatch {
        tag: String,
        applied_hash: String,
        file_hash: String,
    },
    #[error("{tag}: pending, but its journal when={when} is not newer than the newest applied migration (created_at={newest_applied_when}); drizzle-orm would skip it forever. Regenerate it with drizzle-kit so it comes after what is applied")]
    OutOfOrder { tag: String, when: i64, newest_applied_when: i64 },
    #[error("{tag}: pending, but it sorts before {newest_applied}, which is applied; drizzle-orm 1.0 would apply it now, after migrations that were written without it. Give it a later timestamp (rename the folder, or regenerate it with drizzle-kit) so it comes after what is applied")]
    OutOfOrderFolder { tag: String, newest_applied: String },
    #[error("{tag}: pending, but its file was applied as {applied_as}, a folder that no longer exists: it was renamed, and drizzle-orm 1.0 would run it again. Give the folder its applied name back")]
    RenamedFolder { tag: String, applied_as: String },
    #[error("{count} ledger row(s) match no journal entry (first: {first}). Restore the missing migrations, or pass --allow-unknown-migrations (ALLOW_UNKNOWN_MIGRATIONS=true) if they were removed on purpose")]
    UnknownRows { count: usize, first: String },
    #[error("the ledger is drizzle-orm 0.x's and must be upgraded to 1.0's for this drizzle-kit 1.0 folder, but {} of its rows (ids: {}) match no migration folder, by second or by hash; drizzle-orm 1.0 refuses to upgrade it too. Restore the missing folders (drizzle-kit up on the release that applied them)", ids.len(), ids.iter().map(i32::to_string).collect::<Vec<_>>().join(", "))]
    UpgradeUnmatched { ids: Vec<i32> },
    #[error("--to {tag}: no migration with that tag in the journal")]
    UnknownTarget { tag: String },
    #[error("{file}, line {line}: {what} in a migration is refused before anything runs: {why}. Remove it from the file (drizzle-kit never writes it); a migration that must commit part of its work may end that part with its own COMMIT")]
    RefusedStatement {
        tag: String,
        file: String,
        line: usize,
        what: &'static str,
        why: &'static str,
    },
}

impl PlanError {
    pub fn tag(&self) -> Option<&str> {
        match self {
            Self::ChecksumMismatch { tag, .. }
            | Self::OutOfOrder { tag, .. }
            | Self::OutOfOrderFolder { tag, .. }
            | Self::RenamedFolder { tag, .. }
            | Self::UnknownTarget { tag }
            | Self::RefusedStatement { tag, .. } => Some(tag),
            Self::UnknownRows { .. } | Self::UpgradeUnmatched { .. } => None,
        }
    }
}

/// Refuses what drizzle-orm would get wrong; otherwise returns the segments to run.
pub fn plan<'m>(assessment: &Assessment<'m>, migrations: &'m [Migration], options: PlanOptions<'_>) -> Result<Plan<'m>, PlanError> {
    refuse_problems(&assessment.problems, options)?;
    let target_idx = match options.target {
        None => None,
        Some(tag) => Some(
            migrations
                .iter()
                .find(|m| m.tag == tag)
                .map(|m| m.idx)
                .ok_or_else(|| PlanError::UnknownTarget { tag: tag.to_string() })?,
        ),
    };
    let (selected, deferred): (Vec<&Migration>, Vec<&Migration>) =
        assessment.pending.iter().partition(|m| target_idx.is_none_or(|t| m.idx <= t));
    refuse_statements(&selected)?;
    Ok(Plan {
        segments: segments(&selected),
        deferred,
    })
}

/// The same plan over `migrations`, which hold the same tags (`--online`'s rewritten
/// migrations): each planned migration replaced by its namesake, cut into segments again (a
/// rewritten one runs statement by statement, alone).
pub fn over<'n>(plan: &Plan<'_>, migrations: &'n [Migration]) -> Plan<'n> {
    let namesake = |m: &Migration| migrations.iter().find(|n| n.tag == m.tag).expect("the same tags");
    let selected: Vec<&Migration> = plan.migrations().map(namesake).collect();
    Plan {
        segments: segments(&selected),
        deferred: plan.deferred.iter().map(|m| namesake(m)).collect(),
    }
}

/// The migrations up to and including `version`, in journal order, the database has not applied:
/// what a deploy that needs `version` waits for.
pub fn missing_for<'m>(assessment: &Assessment<'m>, migrations: &'m [Migration], version: &str) -> Result<Vec<&'m Migration>, PlanError> {
    let position = migrations
        .iter()
        .position(|m| m.tag == version)
        .ok_or_else(|| PlanError::UnknownTarget { tag: version.to_string() })?;
    let applied: HashSet<&str> = assessment.applied.iter().map(|a| a.migration.tag.as_str()).collect();
    Ok(migrations[..=position]
        .iter()
        .filter(|m| !applied.contains(m.tag.as_str()))
        .collect())
}

fn refuse_problems(problems: &[Problem], options: PlanOptions<'_>) -> Result<(), PlanError> {
    if let Some(Problem::ChecksumMismatch {
        tag,
        applied_hash,
        file_hash,
    }) = problems.iter().find(|p| matches!(p, Problem::ChecksumMismatch { .. }))
    {
        return Err(PlanError::ChecksumMismatch {
            tag: tag.clone(),
            applied_hash: applied_hash.clone(),
            file_hash: file_hash.clone(),
        });
    }
    if let Some(Problem::OutOfOrder {
        tag,
        when,
        newest_applied_when,
    }) = problems.iter().find(|p| matches!(p, Problem::OutOfOrder { .. }))
    {
        return Err(PlanError::OutOfOrder {
            tag: tag.clone(),
            when: *when,
            newest_applied_when: *newest_applied_when,
        });
    }
    if let Some(Problem::RenamedFolder { tag, applied_as }) = problems.iter().find(|p| matches!(p, Problem::RenamedFolder { .. })) {
        return Err(PlanError::RenamedFolder {
            tag: tag.clone(),
            applied_as: applied_as.clone(),
        });
    }
    if let Some(Problem::OutOfOrderFolder { tag, newest_applied }) = problems
        .iter()
        .find(|p| matches!(p, Problem::OutOfOrderFolder { .. }))
        .filter(|_| !options.allow_out_of_order)
    {
        return Err(PlanError::OutOfOrderFolder {
            tag: tag.clone(),
            newest_applied: newest_applied.clone(),
        });
    }
    let unknown: Vec<&Problem> = problems.iter().filter(|p| matches!(p, Problem::UnknownRow { .. })).collect();
    if !unknown.is_empty() && !options.allow_unknown_rows {
        return Err(PlanError::UnknownRows {
            count: unknown.len(),
            first: unknown[0].describe(),
        });
    }
    Ok(())
}

/// A statement of a pending migration the runner cannot run truthfully: refused before
/// anything runs, naming the file and line.
fn refuse_statements(pending: &[&Migration]) -> Result<(), PlanError> {
    for m in pending {
        if let Some(refused) = m.statements.iter().find_map(|s| s.refused()) {
            let why = if refused.what.starts_with("COPY") {
                "the copy protocol needs data the runner does not have and answers with rows it cannot read, so what it did could not be known"
            } else {
                "it ends the runner's transaction without committing it, which would silently undo the migrations applied before it in the same transaction while the run went on"
            };
            return Err(PlanError::RefusedStatement {
                tag: m.tag.clone(),
                file: m.file(),
                line: refused.line,
                what: refused.what,
                why,
            });
        }
    }
    Ok(())
}

/// One transaction for everything, except that an autocommit migration runs alone, so does a
/// migration with its own `COMMIT`, an enum value addition must commit before anything after it
/// can use the value, and a migration marked `commit-after` ends its segment (an online
/// sequence commits between its steps).
fn segments<'m>(pending: &[&'m Migration]) -> Vec<Segment<'m>> {
    let mut segments = Vec::new();
    let mut open: Vec<&Migration> = Vec::new();
    let close = |open: &mut Vec<&'m Migration>, segments: &mut Vec<Segment<'m>>| {
        if !open.is_empty() {
            segments.push(Segment {
                mode: SegmentMode::Transaction,
                migrations: std::mem::take(open),
            });
        }
    };
    for m in pending {
        match m.mode() {
            TransactionMode::Autocommit { .. } => {
                close(&mut open, &mut segments);
                segments.push(Segment {
                    mode: SegmentMode::Autocommit,
                    migrations: vec![m],
                });
            }
            TransactionMode::Transaction => {
                // A migration with its own COMMIT runs alone: that COMMIT would otherwise also
                // commit the migrations before it in the segment, which then could not be retried
                // or reported as one transaction.
                if m.ends_transaction() {
                    close(&mut open, &mut segments);
                }
                open.push(m);
                if m.adds_enum_value() || m.commit_after || m.ends_transaction() {
                    close(&mut open, &mut segments);
                }
            }
        }
    }
    close(&mut open, &mut segments);
    segments
}

impl Classified for PlanError {
    fn error_type(&self) -> ErrorType {
        match self {
            Self::ChecksumMismatch { .. } => ErrorType::ChecksumMismatch,
            Self::OutOfOrder { .. } | Self::OutOfOrderFolder { .. } => ErrorType::OutOfOrderMigration,
            Self::UnknownRows { .. } | Self::UpgradeUnmatched { .. } | Self::RenamedFolder { .. } => ErrorType::UnknownMigrations,
            Self::UnknownTarget { .. } => ErrorType::InvalidRequest,
            Self::RefusedStatement { .. } => ErrorType::InvalidMigrations,
        }
    }

    fn migration(&self) -> Option<&str> {
        self.tag()
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
