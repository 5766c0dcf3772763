//! `drift`: changes made to the database outside its migrations, and where drizzle's snapshot
//! disagrees with what the migrations build, answered separately (`engine/examine.rs`). Reads
//! only; takes no lock (a replay works in a scratch database of its own).

use crate::engine::error::Error;
use crate::engine::examine::examine;
use crate::engine::outcome::{Drifted, Finished, LedgerView};
use crate::engine::session::{version_label, Session};
use crate::schema::drift::DriftError;

pub async fn drift(session: &Session<'_>, fail_on_drift: bool, strict: bool) -> Finished<Drifted> {
    let mut drifted = Drifted::default();
    let mut warnings = Vec::new();
    let error = compare(session, fail_on_drift, strict, &mut drifted, &mut warnings).await.err();
    Finished::new(drifted, warnings, error)
}

async fn compare(
    session: &Session<'_>,
    fail_on_drift: bool,
    strict: bool,
    drifted: &mut Drifted,
    warnings: &mut Vec<String>,
) -> Result<(), Error> {
    let assessment = session.assess().await?;
    drifted.ledger = Some(LedgerView::of(&assessment));
    let version = version_label(assessment.current());
    let examination = examine(session, &assessment, strict, warnings).await?;
    drifted.baseline = Some(examination.baseline);
    drifted.notes = examination.notes;
    let changes = drifted.differences.insert(examination.manual_changes);
    let mismatches = drifted.model_mismatches.insert(examination.model_mismatches);
    if let Some(first) = changes.first() {
        tracing::info!(count = changes.len(), first = %first, baseline = ?examination.baseline, "drift detected");
        if fail_on_drift {
            return Err(DriftError::detected(&version, changes).into());
        }
    }
    if let Some(first) = mismatches.first() {
        tracing::info!(count = mismatches.len(), first = %first.object, "the snapshot and the migrations disagree");
        if strict {
            let first = format!("{} {}", first.kind.as_str(), first.object);
            return Err(DriftError::model_mismatch(&version, mismatches.len(), first).into());
        }
    }
    Ok(())
}
