//! The schema drizzle's snapshot describes, built by Postgres: the DDL drizzle-kit would generate
//! for it (`schema::model_ddl`) runs under prefixed schemas in a transaction that is always
//! rolled back, and the catalog is read back before the rollback. Creating objects in schemas of
//! their own takes no lock on the application's tables (a foreign key to a table the snapshot
//! does not define, such as `auth.users`, is the exception: it briefly takes SHARE ROW
//! EXCLUSIVE on that table, under the lock_timeout below).

use tokio_postgres::Client;

use crate::db::catalog::{self, Catalog, CatalogError};
use crate::db::connection::PgError;
use crate::db::ledger::quote_ident;
use crate::schema::drift::model_catalog;
use crate::schema::model_ddl::{self, MODEL_PREFIX};
use crate::schema::snapshot::Snapshot;

/// The catalog `snapshot` describes, as Postgres builds and prints it, ready to compare with
/// `against` (whose names Postgres chose where drizzle named nothing are kept).
pub async fn build(client: &Client, snapshot: &Snapshot, against: &Catalog) -> Result<Catalog, CatalogError> {
    let failed = |error: tokio_postgres::Error| CatalogError {
        what: "the snapshot's schema, built in a rolled-back transaction",
        error: PgError::from(error),
    };
    let ddl = model_ddl::render(snapshot);
    // A migration holding a table must not make drift wait long.
    client.batch_execute("BEGIN; SET LOCAL lock_timeout = '2s'").await.map_err(failed)?;
    let built = async {
        // The model's schemas go first on the session's own path, so Postgres prints the model's
        // objects as it prints the application's (unqualified where those are).
        let path: Vec<String> = client
            .query_one("SELECT current_schemas(false)::text[]", &[])
            .await
            .map_err(failed)?
            .get(0);
        let mut search = path
            .iter()
            .filter(|s| ddl.schemas.contains(*s))
            .map(|s| quote_ident(&format!("{MODEL_PREFIX}{s}")))
            .collect::<Vec<_>>();
        search.extend(path.iter().map(|s| quote_ident(s)));
        if search.is_empty() {
            search.push(quote_ident(&format!("{MODEL_PREFIX}public")));
        }
        let set_path = format!("SET LOCAL search_path = {}", search.join(", "));
        // One statement per message over the extended protocol, which refuses a second one: an
        // expression in the snapshot cannot end the transaction. Issued together, so pipelined.
        let statements = std::iter::once(&set_path).chain(&ddl.statements);
        futures_util::future::try_join_all(statements.map(|s| client.query_typed(s, &[])))
            .await
            .map_err(failed)?;
        catalog::read_prefixed(client, MODEL_PREFIX).await
    }
    .await;
    client.batch_execute("ROLLBACK").await.map_err(failed)?;
    Ok(model_catalog(built?, &model_ddl::views(snapshot), against))
}
