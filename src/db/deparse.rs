//! Postgres as the judge of spelling: two SQL expressions are the same when Postgres, having
//! parsed each in the context of their table, prints them alike. Each is put in a temporary view
//! (`SELECT (<expression>) FROM <table>`) and read back with `pg_get_viewdef`, inside a
//! transaction that is always rolled back. Creating a view parses and resolves an expression
//! without running it, and takes only ACCESS SHARE on the tables it names.

use tokio_postgres::Client;

use crate::db::connection::PgError;
use crate::db::ledger::quote_ident;

/// The expression pairs of one table to compare.
pub struct Pairs<'a> {
    pub schema: &'a str,
    pub table: &'a str,
    pub pairs: &'a [(String, String)],
}

/// For each entry, whether every pair prints alike. An expression Postgres cannot take (a table
/// that is gone, a function that does not exist) makes its entry `false`: not the same.
pub async fn printed_alike(client: &Client, asks: &[Pairs<'_>]) -> Result<Vec<bool>, PgError> {
    // A temporary view needs a writable session; a standby cannot judge, the caller keeps its
    // own verdict. lock_timeout: a migration holding a table must not make drift wait long.
    client.batch_execute("BEGIN; SET LOCAL lock_timeout = '2s'").await?;
    let mut answers = Vec::with_capacity(asks.len());
    for ask in asks {
        let from = format!("{}.{}", quote_ident(ask.schema), quote_ident(ask.table));
        let mut same = true;
        for (a, b) in ask.pairs {
            if !same {
                break;
            }
            same = match pair_alike(client, &from, a, b).await {
                Ok(alike) => alike,
                // read_only_sql_transaction: nothing can be judged here, say so once.
                Err(e) if e.code().is_some_and(|c| c.code() == "25006") => {
                    let _ = client.batch_execute("ROLLBACK").await;
                    return Err(e.into());
                }
                Err(_) => false,
            };
        }
        answers.push(same);
    }
    client.batch_execute("ROLLBACK").await?;
    Ok(answers)
}

async fn pair_alike(client: &Client, from: &str, a: &str, b: &str) -> Result<bool, tokio_postgres::Error> {
    client.batch_execute("SAVEPOINT wm_deparse").await?;
    let printed = async {
        // One statement each, over the extended protocol, which refuses a second statement: an
        // expression cannot end the transaction. The newlines keep a trailing `--` comment in.
        let mut printed = Vec::with_capacity(2);
        for (name, expression) in [("wm_deparse_a", a), ("wm_deparse_b", b)] {
            client
                .execute(
                    &format!("CREATE TEMP VIEW {name} AS SELECT (\n{expression}\n) AS v FROM {from}"),
                    &[],
                )
                .await?;
            let row = client
                .query_one(&format!("SELECT pg_get_viewdef('pg_temp.{name}'::regclass, true)"), &[])
                .await?;
            printed.push(row.get::<_, String>(0));
        }
        Ok::<_, tokio_postgres::Error>(printed[0] == printed[1])
    }
    .await;
    client.batch_execute("ROLLBACK TO SAVEPOINT wm_deparse").await?;
    printed
}
