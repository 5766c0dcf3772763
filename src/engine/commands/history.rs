//! `history`: the runs recorded in the history table, newest first. Reads only; takes no lock.

use crate::db::history::HistoryRow;
use crate::engine::error::Error;
use crate::engine::session::Session;

pub async fn history(session: &Session<'_>, limit: u32) -> Result<Vec<HistoryRow>, Error> {
    Ok(session.settings().ledger.history_rows(session.client(), i64::from(limit)).await?)
}
