//! Which functions Postgres marks volatile (`pg_proc.provolatile = 'v'`: a new value per call,
//! per row), for the lint gate: as a column default, such a function makes `ADD COLUMN` write
//! every existing row. Read from the catalog, so a user's own function counts as it is declared.

use std::collections::BTreeSet;

use tokio_postgres::GenericClient;

use crate::db::catalog::CatalogError;

/// The names of the volatile functions of every schema the database has.
pub async fn volatile_functions(client: &impl GenericClient) -> Result<BTreeSet<String>, CatalogError> {
    let rows = client
        .query("select distinct proname::text from pg_proc where provolatile = 'v'", &[])
        .await
        .map_err(|e| CatalogError {
            what: "volatile functions",
            error: e.into(),
        })?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
