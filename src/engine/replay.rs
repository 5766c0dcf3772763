//! The baseline built the slow way, when none was recorded: the applied migrations replayed into
//! a scratch database, whose catalog is then what the migrations build. The scratch database is
//! created on the migration server (or on `SHADOW_DATABASE_URL`'s, when set) and dropped again
//! on every path, by construction: [`replay`] owns it from `CREATE` to `DROP`.

use std::time::Instant;

use tokio_postgres::Client;

use crate::db::catalog::{self, Catalog};
use crate::db::connection::{ConnectionSettings, Database, PgError};
use crate::db::ledger::{quote_ident, LedgerTable};
use crate::migrations::source::{Layout, Migration, TransactionMode};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot create a scratch database on {server} to replay the migrations into ({error}); grant the role CREATEDB, or set SHADOW_DATABASE_URL to a server where it may create one")]
    Unavailable { server: String, error: PgError },
    #[error("cannot connect to the scratch database: {0}")]
    Connect(String),
    #[error("{tag} does not apply to an empty database ({error}); the migrations cannot rebuild this schema")]
    Migration { tag: String, error: PgError },
    #[error("reading the scratch database's catalog failed: {0}")]
    Catalog(String),
    #[error("replaying the migrations did not finish before the run's deadline (the scratch database was dropped); give the run more time, or run drift where the last migrate recorded its baseline")]
    Deadline,
}

/// The catalog `applied` builds from nothing, read the way the live one is.
pub async fn replay(
    server: &ConnectionSettings,
    admin: Option<(&Client, Option<u32>)>,
    ledger: &LedgerTable,
    applied: &[&Migration],
    run_id: &str,
    deadline: Option<Instant>,
) -> Result<Catalog, ReplayError> {
    let name = scratch_name(run_id);
    // CREATE DATABASE runs on a connection to another database of the server: the session's own
    // when the scratch database goes on the migration server, one of its own otherwise.
    let own;
    let (admin, server_major) = match admin {
        Some(admin) => admin,
        None => {
            own = Database::connect(server).await.map_err(|e| ReplayError::Connect(e.to_string()))?;
            (own.client(), own.server_major)
        }
    };
    admin
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
        .await
        .map_err(|e| ReplayError::Unavailable {
            server: server.info().to_string(),
            error: e.into(),
        })?;
    tracing::info!(database = %name, migrations = applied.len(), "replaying the applied migrations into a scratch database");
    // Bounded here, not by the run's guard: a replay cut short by the deadline still drops what it
    // created, below.
    let building = build(server, &name, ledger, applied);
    let built = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline.into(), building)
            .await
            .unwrap_or(Err(ReplayError::Deadline)),
        None => building.await,
    };
    if let Err(e) = admin.batch_execute(&drop_sql(&name, server_major)).await {
        tracing::warn!(database = %name, error = %PgError::from(e), "the scratch database could not be dropped; drop it by hand");
    }
    built
}

/// The scratch database of run `run_id`: the run id's last 12 hex digits (its random part), so
/// concurrent runs never share one and a leftover names the run that left it.
pub fn scratch_name(run_id: &str) -> String {
    let hex: String = run_id.chars().filter(char::is_ascii_hexdigit).collect();
    format!("wm_replay_{}", &hex[hex.len().saturating_sub(12)..])
}

/// Drops the scratch database even if a session is still in it (a replay cut short by the
/// deadline may leave its connection's backend running a statement). `WITH (FORCE)` does that
/// from PostgreSQL 13 on; before, and when the version is unknown, the other backends are
/// terminated first: `DROP DATABASE` then waits a few seconds for them to exit.
fn drop_sql(name: &str, server_major: Option<u32>) -> String {
    let ident = quote_ident(name);
    if server_major.is_some_and(|major| major >= 13) {
        return format!("DROP DATABASE IF EXISTS {ident} WITH (FORCE)");
    }
    let literal = name.replace('\'', "''");
    format!(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = '{literal}' and pid <> pg_backend_pid(); DROP DATABASE IF EXISTS {ident}"
    )
}

async fn build(server: &ConnectionSettings, name: &str, ledger: &LedgerTable, applied: &[&Migration]) -> Result<Catalog, ReplayError> {
    let mut scratch = server.clone();
    scratch.pg.dbname(name);
    let db = Database::connect(&scratch).await.map_err(|e| ReplayError::Connect(e.to_string()))?;
    let result = async {
        // The live database has the ledger's schema and tables; so must the baseline.
        let layout = applied.first().map_or(Layout::Journal, |m| m.layout());
        ledger
            .ensure(db.client(), layout)
            .await
            .map_err(|e| ReplayError::Catalog(e.to_string()))?;
        for m in applied {
            apply(db.client(), m)
                .await
                .map_err(|error| ReplayError::Migration { tag: m.tag.clone(), error })?;
        }
        catalog::read(db.client()).await.map_err(|e| ReplayError::Catalog(e.to_string()))
    }
    .await;
    db.close().await;
    result
}

/// One migration as the applier runs it: in a transaction of its own, or statement by statement.
async fn apply(client: &Client, m: &Migration) -> Result<(), PgError> {
    let transaction = *m.mode() == TransactionMode::Transaction;
    if transaction {
        client.batch_execute("BEGIN").await?;
    }
    for statement in &m.statements {
        if let Err(e) = client.batch_execute(&statement.sql).await {
            if transaction {
                let _ = client.batch_execute("ROLLBACK").await;
            }
            return Err(e.into());
        }
    }
    if transaction {
        client.batch_execute("COMMIT").await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drop_forces_out_other_sessions_on_every_version() {
        assert_eq!(
            drop_sql("wm_replay_0a1b", Some(15)),
            "DROP DATABASE IF EXISTS \"wm_replay_0a1b\" WITH (FORCE)"
        );
        assert_eq!(drop_sql("wm_replay_0a1b", Some(13)), drop_sql("wm_replay_0a1b", Some(16)));
        // WITH (FORCE) is a syntax error before 13: the sessions are ended first instead.
        for major in [Some(12), Some(9), None] {
            let sql = drop_sql("wm_replay_0a1b", major);
            assert!(!sql.contains("FORCE"), "{major:?}: {sql}");
            let (terminate, drop) = sql.split_once("; ").expect("two statements");
            assert!(
                terminate.starts_with("select pg_terminate_backend(pid) from pg_stat_activity where datname = 'wm_replay_0a1b'"),
                "{sql}"
            );
            assert_eq!(drop, "DROP DATABASE IF EXISTS \"wm_replay_0a1b\"");
        }
    }
}
