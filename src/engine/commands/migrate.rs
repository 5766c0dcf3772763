//! `plan` and `migrate`: read the ledger, plan the pending migrations into commit segments and
//! apply them segment by segment under the advisory lock (a dry run takes no lock and changes
//! nothing, so it can run beside a real migration).

use crate::db::history::RecoveryPoint;
use crate::db::ledger::{LedgerRead, LedgerRow, LedgerShape};
use crate::engine::applier::{Applier, NotCommitted};
use crate::engine::command::Action;
use crate::engine::commands::lint;
use crate::engine::error::Error;
use crate::engine::outcome::{AppliedMigration, Finished, LedgerView, Migrated, SegmentOutcome, SegmentStatus};
use crate::engine::plan::{self, PlanOptions, Problem, Segment, SegmentMode};
use crate::engine::resume::resume_point;
use crate::engine::retry::AttemptFailure;
use crate::engine::session::Session;
use crate::engine::upgrade;
use crate::lint::LintError;
use crate::migrations::source::{Layout, Migration, TransactionMode};
use crate::online::{self, OnlinePlan};

pub async fn migrate<'a>(session: Session<'a>, target: Option<&'a str>, dry_run: bool) -> (Session<'a>, Finished<Migrated>) {
    if dry_run {
        let mut session = session;
        let finished = apply(&mut session, target, true).await;
        return (session, finished);
    }
    session
        .with_lock(|mut s| async move {
            let finished = apply(&mut s, target, false).await;
            (s, finished)
        })
        .await
}

/// Plans and applies up to `target`; the caller holds the lock (or changes nothing: `dry_run`).
/// `check-rollback` applies through this too.
pub async fn apply(session: &mut Session<'_>, target: Option<&str>, dry_run: bool) -> Finished<Migrated> {
    let mut migrated = Migrated::default();
    let mut warnings = Vec::new();
    let error = apply_into(session, target, dry_run, &mut migrated, &mut warnings).await.err();
    Finished::new(migrated, warnings, error)
}

async fn apply_into(
    session: &mut Session<'_>,
    target: Option<&str>,
    dry_run: bool,
    migrated: &mut Migrated,
    warnings: &mut Vec<String>,
) -> Result<(), Error> {
    let settings = session.settings();
    let assessment = session.assess().await?;
    migrated.ledger = Some(LedgerView::of(&assessment));
    let options = PlanOptions {
        target,
        allow_unknown_rows: settings.allow_unknown_rows,
        allow_out_of_order: settings.allow_out_of_order,
    };
    let mut plan = plan::plan(&assessment, &session.set.migrations, options)?;
    if assessment.problems.iter().any(|p| matches!(p, Problem::UnknownRow { .. })) {
        warnings.push("ledger rows that match no journal entry were ignored (allow unknown migrations is on)".into());
    }
    if let Some(p) = assessment.problems.iter().find(|p| matches!(p, Problem::OutOfOrderFolder { .. })) {
        warnings.push(format!(
            "{} (allow out of order is on: applied in drizzle-orm 1.0's order)",
            p.describe()
        ));
    }
    migrated.segments = plan.segments.iter().map(planned).collect();
    // What `--online` runs instead of the files with recipes; outlives the plan made of it.
    let rewritten: Vec<Migration>;
    // The lint gate, before anything changes (check-rollback, on its scratch database, applies
    // through here too and is not gated).
    if matches!(session.inv.command.action(), Action::Migrate | Action::Plan) {
        let pending: Vec<&Migration> = plan.migrations().collect();
        migrated.findings = lint::findings(session, &pending).await?;
        let mut plans: Vec<OnlinePlan> = pending.iter().map(|m| online::plan(m, &migrated.findings)).collect();
        if settings.online {
            continue_as_started(session, &pending, &migrated.findings, &mut plans).await;
            crate::engine::online_change::refuse_what_cannot_swap(session.client(), &pending, &mut plans).await;
            crate::engine::online_add::refuse_without_key(session.client(), &pending, &mut plans).await;
            online::answer(&plans, &mut migrated.findings);
        }
        if let Some(refused) = LintError::refuse(&migrated.findings) {
            let refused = refused.with_online(&online::hint(&plans, settings.online));
            if dry_run {
                warnings.push(format!("migrate would refuse: {refused}"));
            } else if !settings.lint_gate {
                warnings.push(format!(
                    "the lint gate is off (LINT_GATE=false), so this was applied anyway: {refused}"
                ));
            } else {
                return Err(refused.into());
            }
        } else if settings.online && plans.iter().any(OnlinePlan::has_recipe) {
            rewritten = session
                .set
                .migrations
                .iter()
                .map(|m| match plans.iter().find(|p| p.migration == m.tag && p.has_recipe()) {
                    Some(p) => online::rewrite(m, p),
                    None => m.clone(),
                })
                .collect();
            plan = plan::over(&plan, &rewritten);
            migrated.segments = plan.segments.iter().map(planned).collect();
            migrated.online = plans.into_iter().filter(OnlinePlan::has_recipe).collect();
        }
    }
    if !dry_run {
        upgrade_ledger(session, warnings).await?;
    }
    if plan.is_empty() || dry_run {
        return Ok(());
    }
    settings.ledger.ensure(session.client(), session.set.layout).await?;
    let starts = resume_points(session, &plan.segments, warnings).await?;
    let applier = Applier::new(session.inv, session.run_id, session.progress, session.times_each_statement());
    let applied = apply_segments(session, &applier, &plan.segments, &starts, migrated, warnings).await;
    migrated.backfills = std::mem::take(&mut *applier.backfills.lock().expect("not poisoned"));
    // The state the run leaves is drift's baseline, unless a migration stopped half-way: its
    // committed statements are in the schema but not in the ledger the baseline is keyed on.
    let committed = migrated.segments.iter().any(|s| s.status == SegmentStatus::Committed);
    let partial = migrated.segments.iter().any(|s| s.status == SegmentStatus::PartiallyApplied);
    let recorded = committed && !partial && session.record_baseline(warnings).await;
    if committed || partial {
        migrated.recovery_point = recovery_point(session, warnings).await;
    }
    // The baseline's write is a synchronous commit: it flushed the run's last segment.
    if matches!(applied, Ok(Unflushed(true))) && !recorded {
        applier.flush(session.client(), warnings).await;
    }
    applied.map(|_| ())
}

/// Where the run's committed work began, read back from its history rows: the report and the
/// SSM state carry it so an operator can undo the run by a point-in-time recovery. Best effort:
/// the history has it too.
async fn recovery_point(session: &Session<'_>, warnings: &mut Vec<String>) -> Option<RecoveryPoint> {
    match session.settings().ledger.recovery_point(session.client(), session.run_id).await {
        Ok(point) => point,
        Err(e) => {
            warnings.push(format!(
                "could not read back where this run began ({e}); `history` lists each migration's startedAt and startLsn"
            ));
            None
        }
    }
}

/// An online run that stopped part-way goes on by the recipes it started with, even when the
/// live sizes changed since and a statement no longer blocks: its committed steps are in the
/// history, and running the file as written would trip over them (`already exists`).
async fn continue_as_started(session: &Session<'_>, pending: &[&Migration], findings: &[crate::lint::Finding], plans: &mut [OnlinePlan]) {
    for (m, current) in pending.iter().zip(plans.iter_mut()) {
        let continued = online::plan_continued(m, findings);
        if continued == *current || !continued.has_recipe() {
            continue;
        }
        // No history table yet: nothing of it ran.
        let done = session
            .settings()
            .ledger
            .statements_done(session.client(), &m.tag)
            .await
            .unwrap_or_default();
        if done.is_empty() {
            continue;
        }
        let as_planned = match current.has_recipe() {
            true => online::rewrite(m, current).statements,
            false => m.statements.clone(),
        };
        let fits = |statements: &[crate::migrations::statement::Statement]| resume_point(&m.tag, statements, &done).is_ok();
        if !fits(&as_planned) && fits(&online::rewrite(m, &continued).statements) {
            tracing::info!(tag = %m.tag, "continuing the online recipes an earlier run started");
            *current = continued;
        }
    }
}

/// Whether the segments ended with a deferred commit no synchronous one has followed yet.
struct Unflushed(bool);

/// A drizzle-kit 1.0 folder on a drizzle-orm 0.x ledger: the ledger is upgraded as drizzle-orm
/// 1.0 would upgrade it (engine/upgrade.rs), under the lock and in one transaction, before
/// anything is applied, so the rows this run adds carry names and drizzle-orm 1.0 finds an
/// upgraded ledger. Done even when nothing is pending: the database is then what drizzle-orm
/// 1.0's own first `migrate()` would have left.
async fn upgrade_ledger(session: &Session<'_>, warnings: &mut Vec<String>) -> Result<(), Error> {
    if session.set.layout != Layout::Folders {
        return Ok(());
    }
    let ledger = &session.settings().ledger;
    if session.assessed_shape().is_some_and(|shape| shape != LedgerShape::Drizzle0) {
        return Ok(());
    }
    let LedgerRead { shape, rows } = ledger.read_with_shape(session.client()).await?;
    if shape != LedgerShape::Drizzle0 {
        return Ok(());
    }
    let names = upgrade::names_for(&rows, &session.set.migrations)?;
    ledger.upgrade(session.client(), &names).await?;
    warnings.push(format!(
        "upgraded drizzle-orm 0.x's ledger to 1.0's, as drizzle-orm 1.0 would: added name and applied_at and named its {} row(s) after their migration folders",
        names.len()
    ));
    Ok(())
}

async fn apply_segments(
    session: &mut Session<'_>,
    applier: &Applier<'_>,
    segments: &[Segment<'_>],
    starts: &[usize],
    migrated: &mut Migrated,
    warnings: &mut Vec<String>,
) -> Result<Unflushed, Error> {
    // Deferred commits not yet followed by a synchronous one.
    let mut unflushed = false;
    for (i, segment) in segments.iter().enumerate() {
        let outcome = if session.inv.budget.expired() {
            Err(NotCommitted {
                failure: AttemptFailure {
                    error: Error::Deadline {
                        during: "starting the next commit segment",
                    },
                    status: SegmentStatus::NotRun,
                    failed: None,
                },
                attempts: 0,
            })
        } else {
            match segment.mode {
                SegmentMode::Transaction => applier.transaction(session.client_mut(), segment, warnings).await,
                SegmentMode::Autocommit => {
                    let start = starts.get(i).copied().unwrap_or(0);
                    applier.autocommit(session.client_mut(), segment.migrations[0], start).await
                }
            }
        };
        match outcome {
            Ok((entries, attempts)) => {
                // A transaction's commit is deferred (`Applier::transaction`); an autocommit
                // migration's commits are synchronous, flushing everything before them.
                unflushed = segment.mode == SegmentMode::Transaction;
                migrated.segments[i].status = SegmentStatus::Committed;
                migrated.segments[i].attempts = attempts;
                for entry in entries {
                    if let Some(ledger) = migrated.ledger.as_mut() {
                        ledger.applied(&entry.tag);
                    }
                    migrated.applied.push(entry);
                }
            }
            Err(NotCommitted { mut failure, attempts }) => {
                if failure.status == SegmentStatus::Unknown {
                    let kept = settle(session, segment, &mut failure.error, warnings).await;
                    if let Some(kept) = kept {
                        failure.status = kept.status;
                        for entry in kept.applied {
                            if let Some(ledger) = migrated.ledger.as_mut() {
                                ledger.applied(&entry.tag);
                            }
                            migrated.applied.push(entry);
                        }
                    }
                }
                migrated.segments[i].status = failure.status;
                migrated.segments[i].attempts = attempts;
                for later in &mut migrated.segments[i + 1..] {
                    later.status = SegmentStatus::NotRun;
                }
                if let Some(failed) = &failure.failed {
                    applier.record_failure(session.client(), "apply", failed, warnings).await;
                }
                if unflushed {
                    applier.flush(session.client(), warnings).await;
                }
                return Err(failure.error);
            }
        }
    }
    Ok(Unflushed(unflushed))
}

/// What a segment whose `COMMIT` went unanswered kept, as the ledger read back says.
struct Kept {
    status: SegmentStatus,
    applied: Vec<AppliedMigration>,
}

/// The connection failed after a segment's `COMMIT` was sent: the ledger, read back once the
/// run's own backend has ended ([`Session::read_back`]), says which of its migrations the server
/// committed (their ledger rows commit with them). What it found is said in the error (or, for
/// an error of another kind, in a warning). `None` when the ledger cannot be read, or when an
/// absent ledger row cannot tell (a no-transaction migration commits its statements before its
/// row): the segment's outcome stays unknown.
async fn settle(session: &Session<'_>, segment: &Segment<'_>, error: &mut Error, warnings: &mut Vec<String>) -> Option<Kept> {
    let mut say = |note: String| match error {
        Error::ConnectionLost { settled, .. } => *settled = note,
        _ => warnings.push(note),
    };
    let rows = match session.read_back().await {
        Ok(rows) => rows,
        Err(e) => {
            say(format!("Reading the ledger back on a new connection failed too ({e}), so whether it committed is unknown: run `status` to see what was kept before running again"));
            return None;
        }
    };
    let recorded: Vec<&Migration> = segment
        .migrations
        .iter()
        .copied()
        .filter(|m| rows.iter().any(|r| recorded_as(r, m)))
        .collect();
    let (status, what) = match (recorded.len(), segment.mode) {
        (0, SegmentMode::Autocommit) => {
            say("The ledger, read back on a new connection, has no row for it yet; which of its statements committed, the next run finds out as it resumes".into());
            return None;
        }
        (0, SegmentMode::Transaction) => (SegmentStatus::RolledBack, "it was not committed: nothing of it was kept"),
        (n, _) if n == segment.migrations.len() => (
            SegmentStatus::Committed,
            "it was committed: the report lists its migrations as applied, and later segments did not run",
        ),
        _ => (
            SegmentStatus::PartiallyApplied,
            "only some of its migrations were committed: the report lists them as applied",
        ),
    };
    say(format!(
        "The ledger, read back on a new connection once the run's own backend had ended, shows {what}. Run again to apply what is left"
    ));
    Some(Kept {
        status,
        applied: recorded
            .into_iter()
            .map(|m| AppliedMigration {
                tag: m.tag.clone(),
                hash: m.hash.clone(),
                // The server measured it, but its answer was lost with the connection.
                duration: std::time::Duration::ZERO,
            })
            .collect(),
    })
}

/// Whether a ledger row records this migration: by its folder name (1.0) or its `when` (0.x),
/// and its hash.
fn recorded_as(row: &LedgerRow, m: &Migration) -> bool {
    let same_entry = match (&m.name, &row.name) {
        (Some(name), Some(row_name)) => name == row_name,
        _ => row.created_at == Some(m.created_at),
    };
    same_entry && row.hash == m.hash
}

/// Per segment, how many statements of its (autocommit) migration an interrupted earlier run
/// completed. Checked before anything runs: a completed statement that has changed since refuses
/// the whole run.
async fn resume_points(session: &Session<'_>, segments: &[Segment<'_>], warnings: &mut Vec<String>) -> Result<Vec<usize>, Error> {
    let mut starts = Vec::with_capacity(segments.len());
    for segment in segments {
        let m = segment.migrations[0];
        if segment.mode != SegmentMode::Autocommit {
            starts.push(0);
            continue;
        }
        let done = session.settings().ledger.statements_done(session.client(), &m.tag).await?;
        let (start, run_id) = resume_point(&m.tag, &m.statements, &done)?;
        if let (true, Some(run_id)) = (start > 0, run_id) {
            tracing::info!(tag = %m.tag, start = start + 1, "resuming an interrupted migration");
            warnings.push(format!(
                "{}: resumed at statement {} of {}; statements 1 to {start} committed in run {run_id}",
                m.tag,
                start + 1,
                m.statements.len()
            ));
        }
        starts.push(start);
    }
    Ok(starts)
}

fn planned(segment: &Segment<'_>) -> SegmentOutcome {
    let reason = match (segment.mode, segment.migrations.last()) {
        (SegmentMode::Autocommit, Some(m)) => match m.mode() {
            TransactionMode::Autocommit { reason } => Some(reason.clone()),
            TransactionMode::Transaction => None,
        },
        (SegmentMode::Transaction, Some(m)) if m.adds_enum_value() => {
            Some(format!("commits after {} so its new enum value can be used", m.tag))
        }
        (SegmentMode::Transaction, Some(m)) if m.commit_after => Some(format!("commits after {}, as its commit-after marker asks", m.tag)),
        (SegmentMode::Transaction, Some(m)) if m.ends_transaction() => {
            Some(format!("{} runs alone: its own COMMIT ends the transaction", m.tag))
        }
        _ => None,
    };
    SegmentOutcome {
        mode: segment.mode,
        migrations: segment.migrations.iter().map(|m| m.tag.clone()).collect(),
        status: SegmentStatus::Planned,
        attempts: 0,
        reason,
    }
}
