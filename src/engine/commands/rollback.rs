//! `rollback --to TAG`: undo the applied migrations newer than TAG with their down files, in
//! one transaction under the advisory lock, then compare the schema with TAG's snapshot. A dry
//! run lists the statements and the data at risk, takes no lock and changes nothing.

use crate::engine::applier::{data_loss, Applier};
use crate::engine::error::Error;
use crate::engine::outcome::{Finished, LedgerView, RollbackStep, RollbackSteps, RolledBack};
use crate::engine::rollback_plan::{self, RollbackTarget};
use crate::engine::session::Session;
use crate::schema::drift::DriftError;
use crate::schema::snapshot::Snapshot;

pub async fn rollback<'a>(
    session: Session<'a>,
    target: &'a RollbackTarget,
    dry_run: bool,
    allow_data_loss: bool,
) -> (Session<'a>, Finished<RolledBack>) {
    let (session, mut finished) = if dry_run {
        let mut session = session;
        let finished = roll_back(&mut session, target, true, allow_data_loss).await;
        (session, finished)
    } else {
        session
            .with_lock(|mut s| async move {
                let finished = roll_back(&mut s, target, false, allow_data_loss).await;
                (s, finished)
            })
            .await
    };
    // Down files that do not restore the target's schema are an error, though the rollback stays.
    if finished.error.is_none() && finished.outcome.committed {
        if let Some(differences) = finished.outcome.differences.as_deref().filter(|d| !d.is_empty()) {
            finished.error = Some(DriftError::after_rollback(&target.to_string(), differences).into());
        }
    }
    (session, finished)
}

/// Plans the rollback to `target`, runs it in one transaction (unless `dry_run`) and compares
/// the schema with `target`'s snapshot. The caller holds the lock; `check-rollback` uses this.
pub async fn roll_back(session: &mut Session<'_>, target: &RollbackTarget, dry_run: bool, allow_data_loss: bool) -> Finished<RolledBack> {
    let mut rolled_back = RolledBack::default();
    let mut warnings = Vec::new();
    let error = roll_back_into(session, target, dry_run, allow_data_loss, &mut rolled_back, &mut warnings)
        .await
        .err();
    Finished::new(rolled_back, warnings, error)
}

async fn roll_back_into(
    session: &mut Session<'_>,
    target: &RollbackTarget,
    dry_run: bool,
    allow_data_loss: bool,
    rolled_back: &mut RolledBack,
    warnings: &mut Vec<String>,
) -> Result<(), Error> {
    let settings = session.settings();
    let set = session.set;
    let assessment = session.assess().await?;
    rolled_back.ledger = Some(LedgerView::of(&assessment));
    let plan = rollback_plan::plan(&assessment, &set.migrations, target, settings.allow_unknown_rows)?;
    let steps = rolled_back.plan.insert(RollbackSteps {
        to: target.to_string(),
        steps: plan
            .steps
            .iter()
            .map(|s| RollbackStep {
                tag: s.migration.tag.clone(),
                hash: s.migration.hash.clone(),
                statements: s.down.statements.iter().map(|st| st.sql.trim().to_string()).collect(),
                duration: None,
            })
            .collect(),
        data_at_risk: Vec::new(),
    });
    if plan.steps.is_empty() {
        return Ok(());
    }
    // The schema is checked against this snapshot afterwards: refuse now, not after the commit.
    let version = target.tag().and_then(|t| set.find(t));
    Snapshot::at(&set.source, version)?;
    if dry_run {
        let risk = rollback_plan::data_at_risk(session.client(), &plan, false).await?;
        steps.data_at_risk = risk.clone();
        if !risk.is_empty() && !allow_data_loss {
            return Err(data_loss(&risk));
        }
        return Ok(());
    }
    settings.ledger.ensure(session.client(), session.set.layout).await?;
    let applier = Applier::new(session.inv, session.run_id, session.progress, session.times_each_statement());
    let (durations, risk) = applier.rollback(session.client_mut(), &plan, allow_data_loss, warnings).await?;
    rolled_back.committed = true;
    for (step, duration) in steps.steps.iter_mut().zip(durations) {
        step.duration = Some(duration);
    }
    if !risk.is_empty() {
        let objects: Vec<&str> = risk.iter().map(|d| d.object.as_str()).collect();
        warnings.push(format!("dropped data (--allow-data-loss): {}", objects.join(", ")));
    }
    steps.data_at_risk = risk;
    session.record_baseline(warnings).await;
    rolled_back.ledger = Some(LedgerView::of(&session.assess().await?));
    rolled_back.differences = Some(session.compare(version).await?.differences);
    Ok(())
}
