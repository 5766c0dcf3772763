//! `require`: the deploy gate. Succeeds when the version asked for and every migration before it
//! are applied; otherwise `SchemaBehind`, naming what is missing. Reads only; takes no lock.

use crate::engine::error::Error;
use crate::engine::outcome::{Finished, LedgerView, Required};
use crate::engine::plan;
use crate::engine::session::Session;

pub async fn require(session: &Session<'_>, version: &str) -> Finished<Required> {
    let mut required = Required {
        version: version.to_string(),
        ..Required::default()
    };
    let error = check(session, &mut required).await.err();
    Finished::new(required, Vec::new(), error)
}

async fn check(session: &Session<'_>, required: &mut Required) -> Result<(), Error> {
    let assessment = session.assess().await?;
    required.ledger = Some(LedgerView::of(&assessment));
    let missing = plan::missing_for(&assessment, &session.set.migrations, &required.version)?;
    required.missing = missing.iter().map(|m| m.tag.clone()).collect();
    if required.missing.is_empty() {
        return Ok(());
    }
    tracing::info!(version = %required.version, missing = required.missing.len(), "schema behind the version required");
    Err(Error::SchemaBehind {
        version: required.version.clone(),
        missing: required.missing.clone(),
    })
}
