//! The one run loop behind every command, for the CLI and the Lambda alike: load the
//! migrations, open the session, hand it to the command, close it, and say what happened.

use std::time::Instant;

use crate::engine::budget::ABANDON_AFTER;

use crate::engine::command::Command;
use crate::engine::commands::{check, check_rollback, drift, history, lint, migrate, require, rollback, status, verify};
use crate::engine::error::Error;
use crate::engine::invocation::Invocation;
use crate::engine::outcome::{Done, Finished, MigrationsLoaded, RunOutcome};
use crate::engine::progress::Progress;
use crate::engine::session::Session;
use crate::error::{public_message, Classified};

pub async fn run(inv: &Invocation<'_>) -> RunOutcome {
    let started = Instant::now();
    let run_id = uuid::Uuid::now_v7().to_string();
    let span = tracing::info_span!("run", run_id = %run_id, action = ?inv.command.action(), environment = %inv.settings.environment);
    let _enter = span.enter();
    let mut outcome = RunOutcome {
        run_id: run_id.clone(),
        command: inv.command.clone(),
        environment: inv.settings.environment.clone(),
        duration: Default::default(),
        database: None,
        migrations: None,
        lock_wait: Default::default(),
        warnings: Vec::new(),
        done: Done::Nothing,
        error: None,
    };
    let progress = Progress::default();
    let executed = match inv.budget.abandon_at(ABANDON_AFTER) {
        Some(abandon_at) => tokio::time::timeout_at(abandon_at.into(), execute(inv, &run_id, &progress, &mut outcome))
            .await
            .unwrap_or_else(|_| {
                Err(Error::Abandoned {
                    action: inv.command.action(),
                    in_migration: progress.current(),
                })
            }),
        None => execute(inv, &run_id, &progress, &mut outcome).await,
    };
    if let Err(e) = executed {
        outcome.error = Some(e);
    }
    outcome.duration = started.elapsed();
    match &outcome.error {
        None => tracing::info!(duration_ms = outcome.duration.as_millis() as u64, "run finished"),
        Some(error) => {
            tracing::error!(error_type = %error.error_type(), migration = error.migration(), error = %public_message(error), "run failed")
        }
    }
    outcome
}

/// Fills in what the run did; an error before the command started is returned.
async fn execute(inv: &Invocation<'_>, run_id: &str, progress: &Progress, outcome: &mut RunOutcome) -> Result<(), Error> {
    // Before loading: the traps `check` looks for are what loading refuses, and it says more.
    if let Command::Check { base } = &inv.command {
        let finished = check::check(inv.source, inv.settings, base.as_deref());
        outcome.done = Done::Check(finished.outcome);
        outcome.error = finished.error;
        return Ok(());
    }
    let set = inv.source.load()?;
    outcome.migrations = Some(MigrationsLoaded {
        source: set.source.to_string(),
        count: set.migrations.len(),
    });
    // Linting the folder alone needs no database.
    if let Command::Lint { since, live: false } = &inv.command {
        let finished = lint::offline(&set, inv.settings, since.as_deref());
        outcome.warnings.extend(finished.warnings);
        outcome.done = Done::Lint(finished.outcome);
        outcome.error = finished.error;
        return Ok(());
    }
    let session = Session::open(inv, &set, run_id, progress).await?;
    outcome.database = Some(session.database().clone());
    let (session, finished) = dispatch(session, &inv.command).await;
    outcome.lock_wait = session.lock_wait();
    session.close().await;
    outcome.warnings.extend(finished.warnings);
    outcome.done = finished.outcome;
    outcome.error = finished.error;
    Ok(())
}

async fn dispatch<'a>(mut session: Session<'a>, command: &'a Command) -> (Session<'a>, Finished<Done>) {
    match command {
        Command::Status => {
            let finished = match status::status(&session).await {
                Ok(view) => Finished {
                    outcome: Done::Status(view),
                    ..Finished::default()
                },
                Err(e) => Finished::failed(e),
            };
            (session, finished)
        }
        Command::Plan { target } => {
            let (session, finished) = migrate::migrate(session, target.as_deref(), true).await;
            (session, finished.map(Done::Migrate))
        }
        Command::Migrate { target, dry_run } => {
            let (session, finished) = migrate::migrate(session, target.as_deref(), *dry_run).await;
            (session, finished.map(Done::Migrate))
        }
        Command::Drift { fail_on_drift, strict } => {
            let finished = drift::drift(&session, *fail_on_drift, *strict).await;
            (session, finished.map(Done::Drift))
        }
        Command::Verify { analyze } => {
            let finished = verify::verify(&mut session, *analyze).await;
            (session, finished.map(Done::Verify))
        }
        Command::Rollback {
            target,
            dry_run,
            allow_data_loss,
        } => {
            let (session, finished) = rollback::rollback(session, target, *dry_run, *allow_data_loss).await;
            (session, finished.map(Done::Rollback))
        }
        Command::History { limit } => {
            let finished = match history::history(&session, *limit).await {
                Ok(rows) => Finished::new(Done::History(rows), Vec::new(), None),
                Err(e) => Finished::failed(e),
            };
            (session, finished)
        }
        Command::Require { version } => {
            let finished = require::require(&session, version).await;
            (session, finished.map(Done::Require))
        }
        Command::Check { .. } => unreachable!("execute runs check before the session"),
        Command::Lint { .. } => {
            let finished = lint::live(&session).await;
            (session, finished.map(Done::Lint))
        }
        Command::CheckRollback => {
            let (session, finished) = check_rollback::check_rollback(session).await;
            (session, finished.map(Done::CheckRollback))
        }
    }
}
