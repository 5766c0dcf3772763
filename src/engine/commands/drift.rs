//! `drift`: the live schema against drizzle-kit's snapshot of the newest applied migration.
//! Reads only; takes no lock.

use crate::engine::error::Error;
use crate::engine::outcome::{Drifted, Finished, LedgerView};
use crate::engine::session::{version_label, Session};
use crate::schema::drift::DriftError;

pub async fn drift(session: &Session<'_>, fail_on_drift: bool) -> Finished<Drifted> {
    let mut drifted = Drifted::default();
    let error = compare(session, fail_on_drift, &mut drifted).await.err();
    Finished::new(drifted, Vec::new(), error)
}

async fn compare(session: &Session<'_>, fail_on_drift: bool, drifted: &mut Drifted) -> Result<(), Error> {
    let assessment = session.assess().await?;
    drifted.ledger = Some(LedgerView::of(&assessment));
    let version = assessment.current();
    let differences = session.compare(version).await?.differences;
    let found = drifted.differences.insert(differences);
    if let Some(first) = found.first() {
        tracing::info!(count = found.len(), first = %first, "drift detected");
        if fail_on_drift {
            return Err(DriftError::detected(&version_label(version), found).into());
        }
    }
    Ok(())
}
