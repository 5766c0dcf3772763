//! What every step of an online recipe shares: its failure (the migration's error with the
//! server's), an error of the recipe's own, and a statement tried again while the table's
//! traffic keeps its lock from being granted within the step's short `lock_timeout`.

use tokio_postgres::GenericClient;

use crate::db::connection::PgError;
use crate::engine::applier::Applier;
use crate::engine::error::MigrationError;
use crate::engine::progress::PROGRESS;
use crate::engine::retry::LOCK_NOT_AVAILABLE;
use crate::migrations::source::Migration;

pub(super) type Failed = (MigrationError, PgError);

pub(super) fn pg(message: impl Into<String>) -> PgError {
    PgError {
        sqlstate: None,
        message: message.into(),
        detail: None,
        hint: None,
    }
}

impl Applier<'_> {
    /// `sql` (a whole transaction, or one statement) tried again while its lock is not granted
    /// within the step's `lock_timeout`, with the online pauses.
    pub(super) async fn with_lock_retries(&self, client: &impl GenericClient, m: &Migration, i: usize, sql: &str) -> Result<(), PgError> {
        let mut attempt = 0;
        loop {
            match client.batch_execute(sql).await.map_err(PgError::from) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let _ = client.batch_execute("ROLLBACK").await;
                    match self.online_retry(&e, attempt) {
                        Some(pause) if e.is(LOCK_NOT_AVAILABLE) => {
                            attempt += 1;
                            tracing::info!(target: PROGRESS, tag = %m.tag, statement = i + 1, attempt, "lock not granted within 500 ms: gave way to the table's traffic, trying this step again");
                            tokio::time::sleep(pause).await;
                        }
                        _ => return Err(e),
                    }
                }
            }
        }
    }
}
