//! `status`: the ledger against the local migrations. Reads only; takes no lock.

use crate::engine::error::Error;
use crate::engine::outcome::LedgerView;
use crate::engine::session::Session;

pub async fn status(session: &Session<'_>) -> Result<LedgerView, Error> {
    Ok(LedgerView::of(&session.assess().await?))
}
