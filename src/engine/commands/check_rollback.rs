//! `check-rollback`, on a scratch database: for each migration in order, apply it, compare with
//! its snapshot, roll it back, compare with the previous snapshot, apply it again and compare
//! once more; with the same functions `migrate` and `rollback` use. Every step's warnings are
//! kept.

use crate::engine::commands::migrate::apply;
use crate::engine::commands::rollback::roll_back;
use crate::engine::commands::verify::conclude;
use crate::engine::error::Error;
use crate::engine::outcome::{CheckedRollback, Finished, LedgerView};
use crate::engine::rollback_plan::{RollbackError, RollbackTarget};
use crate::engine::session::Session;
use crate::schema::verify::{Check, CheckKind, CheckStatus};

pub async fn check_rollback(session: Session<'_>) -> (Session<'_>, Finished<CheckedRollback>) {
    session
        .with_lock(|mut s| async move {
            let finished = round_trips(&mut s).await;
            (s, finished)
        })
        .await
}

async fn round_trips(session: &mut Session<'_>) -> Finished<CheckedRollback> {
    let mut warnings = Vec::new();
    let mut checked = CheckedRollback::default();
    let error = match check_each(session, &mut warnings).await {
        Ok(checks) => {
            let error = conclude(&checks).err();
            checked.checks = Some(checks);
            match session.assess().await {
                Ok(assessment) => checked.ledger = Some(LedgerView::of(&assessment)),
                Err(e) => return Finished::new(checked, warnings, Some(e)),
            }
            error
        }
        Err((checks, e)) => {
            checked.checks = checks;
            Some(e)
        }
    };
    Finished::new(checked, warnings, error)
}

type Stopped = (Option<Vec<Check>>, Error);

async fn check_each(session: &mut Session<'_>, warnings: &mut Vec<String>) -> Result<Vec<Check>, Stopped> {
    let set = session.set;
    let rows = session
        .settings()
        .ledger
        .read(session.client())
        .await
        .map_err(|e| (None, e.into()))?;
    if !rows.is_empty() {
        return Err((None, RollbackError::NotScratch { rows: rows.len() }.into()));
    }
    let mut checks: Vec<Check> = Vec::new();
    let mut stopped = false;
    for (i, m) in set.migrations.iter().enumerate() {
        let mut check = Check::new(CheckKind::RollbackRoundTrip, m.tag.clone());
        if stopped {
            check.status = CheckStatus::Skipped;
            check.detail = Some("an earlier migration could not be re-applied".into());
            checks.push(check);
            continue;
        }
        let previous = i.checked_sub(1).map(|p| &set.migrations[p]);
        let target = previous.map_or(RollbackTarget::Empty, |p| RollbackTarget::Migration(p.tag.clone()));
        // A migration that does not apply on an empty database is an error, not a finding.
        let step = apply(session, Some(&m.tag), false).await;
        warnings.extend(step.warnings);
        if let Some(e) = step.error {
            check.fail(format!("applying it failed: {e}"));
            checks.push(check);
            return Err((Some(checks), e));
        }
        let applied = match session.compare(Some(m)).await {
            Ok(c) => c.differences,
            Err(e) => return Err((None, e)),
        };
        if !applied.is_empty() {
            check.fail(format!(
                "once applied, the schema differs from {}'s snapshot in {} place(s)",
                m.tag,
                applied.len()
            ));
            check.differences.extend(applied);
        }
        if m.down.is_none() {
            check.fail(format!("no down file {}", m.down_file()));
            checks.push(check);
            continue;
        }
        // A scratch database holds no data worth keeping.
        let back = roll_back(session, &target, false, true).await;
        warnings.extend(back.warnings);
        if let Some(e) = back.error {
            // Its transaction was rolled back: the migration is still applied, go on.
            check.fail(format!("rolling back failed: {e}"));
            checks.push(check);
            continue;
        }
        let differences = back.outcome.differences.unwrap_or_default();
        if !differences.is_empty() {
            check.fail(format!(
                "rolled back to {target}, the schema differs from its snapshot in {} place(s)",
                differences.len()
            ));
            check.differences.extend(differences);
        }
        let again = apply(session, Some(&m.tag), false).await;
        warnings.extend(again.warnings);
        match again.error {
            None => {
                let reapplied = match session.compare(Some(m)).await {
                    Ok(c) => c.differences,
                    Err(e) => return Err((None, e)),
                };
                if !reapplied.is_empty() {
                    check.fail(format!(
                        "applied again after the rollback, the schema differs from {}'s snapshot in {} place(s)",
                        m.tag,
                        reapplied.len()
                    ));
                    check.differences.extend(reapplied);
                }
            }
            Some(e) => {
                check.fail(format!("applying it again after the rollback failed: {e}"));
                stopped = true;
            }
        }
        if !check.failed() {
            check.detail = Some(format!("applied, rolled back to {target} matching its snapshot, applied again"));
        }
        checks.push(check);
    }
    Ok(checks)
}
