//! One run's connection: opened once, checked, locked and closed here, so the commands deal
//! only in what they do. The ledger is read through [`Session::assess`] and the live schema
//! through [`Session::compare`]; the advisory lock is held only inside [`Session::with_lock`].

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio_postgres::Client;

use crate::config::RunSettings;
use crate::db::baseline::RecordedCatalog;
use crate::db::catalog::{self, Catalog};
use crate::db::connection::{Database, DatabaseInfo, PgError};
use crate::db::ledger::{LedgerRead, LedgerShape};
use crate::db::lock::{self, LockError};
use crate::db::opening::{self, OpeningError};
use crate::engine::error::Error;
use crate::engine::invocation::Invocation;
use crate::engine::outcome::Finished;
use crate::engine::plan::{self, Assessment};
use crate::engine::progress::Progress;
use crate::engine::upgrade;
use crate::migrations::source::{Layout, Migration, MigrationSet};
use crate::schema::drift::{self, Difference, DriftOptions};
use crate::schema::snapshot::Snapshot;

pub struct Session<'a> {
    db: Database,
    pub inv: &'a Invocation<'a>,
    pub set: &'a MigrationSet,
    pub run_id: &'a str,
    pub progress: &'a Progress,
    lock_wait: Duration,
    /// The ledger the opening statement read under the lock, for the first [`Session::assess`].
    opened: Mutex<Option<LedgerRead>>,
    /// The shape the latest [`Session::assess`] found, so `migrate` does not ask again.
    shape: Mutex<Option<LedgerShape>>,
    /// Set by a command that leaves the lock to the session's close (nothing to do, and the
    /// session closes right after): the unlock would be one more round trip for nothing.
    leave_lock: bool,
}

/// The live schema against the snapshot of one version.
pub struct Comparison {
    pub expected: Snapshot,
    pub actual: Catalog,
    pub differences: Vec<Difference>,
}

impl<'a> Session<'a> {
    pub async fn open(inv: &'a Invocation<'a>, set: &'a MigrationSet, run_id: &'a str, progress: &'a Progress) -> Result<Self, Error> {
        let mut connection = inv.connection.clone();
        if let Some(left) = inv.time_left() {
            connection.connect_timeout = connection.connect_timeout.min(left.max(Duration::from_millis(100)));
        }
        let db = Database::connect(&connection).await?;
        Ok(Self {
            db,
            inv,
            set,
            run_id,
            progress,
            lock_wait: Duration::ZERO,
            opened: Mutex::new(None),
            shape: Mutex::new(None),
            leave_lock: false,
        })
    }

    pub fn database(&self) -> &DatabaseInfo {
        &self.db.info
    }

    pub fn settings(&self) -> &'a RunSettings {
        self.inv.settings
    }

    pub fn client(&self) -> &Client {
        self.db.client()
    }

    pub fn times_each_statement(&self) -> bool {
        self.db.times_each_statement()
    }

    pub fn server_major(&self) -> Option<u32> {
        self.db.server_major
    }

    pub fn client_mut(&mut self) -> &mut Client {
        self.db.client_mut()
    }

    pub fn lock_wait(&self) -> Duration {
        self.lock_wait
    }

    /// The ledger read and held against the local migrations: by `created_at` for a 0.x
    /// journal, by name for a 1.0 folder. A 1.0 folder on a 0.x ledger is read with the names
    /// the upgrade gives its rows (`engine::upgrade`; `migrate` performs it), and refused when
    /// rows match no folder.
    ///
    /// One round trip (the ledger and its shape in one statement), or none when the opening
    /// statement has just read it under the lock.
    pub async fn assess(&self) -> Result<Assessment<'a>, Error> {
        let ledger = &self.settings().ledger;
        let opened = lock(&self.opened).take();
        let LedgerRead { shape, rows } = match opened {
            Some(read) => read,
            None => ledger.read_with_shape(self.client()).await?,
        };
        *lock(&self.shape) = Some(shape);
        match self.set.layout {
            Layout::Journal => Ok(plan::assess(&rows, &self.set.migrations)),
            Layout::Folders => {
                let rows = match shape {
                    LedgerShape::Drizzle0 => upgrade::named(&rows, &upgrade::names_for(&rows, &self.set.migrations)?),
                    LedgerShape::Absent | LedgerShape::Drizzle1 => rows,
                };
                Ok(plan::assess_folders(&rows, &self.set.migrations))
            }
        }
    }

    /// The ledger's shape as the latest [`Session::assess`] found it.
    pub fn assessed_shape(&self) -> Option<LedgerShape> {
        *lock(&self.shape)
    }

    /// Leaves the advisory lock to the session's close instead of unlocking: for a command that
    /// found nothing to do, after which the run closes the session.
    pub fn leave_lock_to_close(&mut self) {
        self.leave_lock = true;
    }

    /// The live schema against the snapshot of `version` (the empty schema for `None`).
    pub async fn compare(&self, version: Option<&Migration>) -> Result<Comparison, Error> {
        let expected = Snapshot::at(&self.set.source, version)?;
        let actual = catalog::read(self.client()).await?;
        let differences = drift::compare(&expected, &actual, &self.drift_options());
        Ok(Comparison {
            expected,
            actual,
            differences,
        })
    }

    /// Records the catalog as this run leaves it, with the ledger it belongs to, as the baseline
    /// `drift` compares with (db/baseline.rs). A failure is a warning: the migrations stand, and
    /// drift can still replay them.
    /// Whether the baseline was written (a synchronous commit, which flushed every deferred
    /// one before it).
    pub async fn record_baseline(&self, warnings: &mut Vec<String>) -> bool {
        let ledger = &self.settings().ledger;
        let recorded = async {
            // Pipelined: the ledger goes out with the catalog's first flight.
            let (rows, catalog) = tokio::try_join!(async { ledger.read(self.client()).await.map_err(Error::from) }, async {
                catalog::read(self.client()).await.map_err(Error::from)
            },)?;
            let updated = ledger
                .record_catalog(self.client(), self.run_id, &RecordedCatalog::new(&rows, catalog))
                .await?;
            Ok::<_, Error>(updated > 0)
        };
        match recorded.await {
            Ok(updated) => updated,
            Err(e) => {
                tracing::warn!(error = %e, "the schema baseline was not recorded");
                warnings.push(format!(
                    "the schema baseline for drift was not recorded ({e}); drift will replay the migrations instead"
                ));
                false
            }
        }
    }

    pub fn drift_options(&self) -> DriftOptions {
        DriftOptions {
            ledger: self.settings().ledger.clone(),
            ignore: self.settings().drift_ignore.clone(),
        }
    }

    /// Runs `work` holding the advisory lock, after checking the session can write. The lock is
    /// given back on every path `work` returns by; if it panics, the connection is dropped and
    /// the server frees the lock with it. The session goes to `work` and comes back with its
    /// outcome: a plain value, so the future stays `Send` for the Lambda's spawned task.
    pub async fn with_lock<T, F>(mut self, work: impl FnOnce(Session<'a>) -> F) -> (Session<'a>, Finished<T>)
    where
        T: Default,
        F: Future<Output = (Session<'a>, Finished<T>)>,
    {
        let held = match self.take_lock().await {
            Ok(held) => held,
            Err(e) => return (self, Finished::failed(e)),
        };
        let (session, mut finished) = work(self).await;
        if session.leave_lock {
            held.leave_to_close();
        } else if let Err(e) = held.release(session.client()).await {
            finished
                .warnings
                .push(format!("{e}; the lock is freed anyway when the connection closes"));
        }
        (session, finished)
    }

    /// The opening statement first (check, try-lock and ledger read in one round trip); when
    /// the lock is busy, or the database has no ledger yet, the step-by-step path: check, then
    /// poll for the lock, waiting and naming the holder as before.
    async fn take_lock(&mut self) -> Result<lock::HeldLock, Error> {
        let settings = self.settings();
        let opened = opening::open(self.client(), &settings.ledger, settings.lock_key)
            .await
            .map_err(|e| match e {
                OpeningError::Database(pg) => Error::Session(pg),
                OpeningError::Ledger(e) => e.into(),
                OpeningError::NoRow => Error::Session(PgError {
                    sqlstate: None,
                    message: OpeningError::NoRow.to_string(),
                    detail: None,
                    hint: None,
                }),
            })?;
        match opened {
            Some(opened) => {
                writable(opened.read_only, opened.in_recovery)?;
                if opened.locked {
                    tracing::info!(key = settings.lock_key, wait_ms = 0u64, "advisory lock held");
                    *lock(&self.opened) = opened.ledger;
                    return Ok(lock::HeldLock::taken_at_once(settings.lock_key));
                }
            }
            None => self.check_writable().await?,
        }
        let wait = self.inv.time_left().map_or(settings.lock_wait, |left| settings.lock_wait.min(left));
        match lock::acquire(self.client(), settings.lock_key, wait).await {
            Ok(held) => {
                self.lock_wait = held.waited;
                tracing::info!(
                    key = settings.lock_key,
                    wait_ms = held.waited.as_millis() as u64,
                    "advisory lock held"
                );
                Ok(held)
            }
            Err(e) => {
                // A run that gave up waiting reports how long it waited, like one that got the lock.
                if let LockError::Busy { waited_ms, .. } = &e {
                    self.lock_wait = Duration::from_millis(*waited_ms);
                }
                Err(e.into())
            }
        }
    }

    async fn check_writable(&self) -> Result<(), Error> {
        let state = self.db.session_state().await.map_err(Error::Session)?;
        writable(state.read_only, state.in_recovery)
    }

    pub async fn close(self) {
        self.db.close().await;
    }
}

fn writable(read_only: bool, in_recovery: bool) -> Result<(), Error> {
    if in_recovery {
        return Err(Error::ReadOnly {
            reason: "the server is a standby in recovery",
        });
    }
    if read_only {
        return Err(Error::ReadOnly {
            reason: "transaction_read_only is on for this session",
        });
    }
    Ok(())
}

/// Only ever holds plain values: a panic elsewhere cannot leave one half-written.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The name of a schema version in messages: a tag, or the empty schema before any migration.
pub fn version_label(version: Option<&Migration>) -> String {
    version.map_or_else(|| "none (no migration applied)".to_string(), |m| m.tag.clone())
}
