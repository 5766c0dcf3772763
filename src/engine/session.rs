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
use crate::db::ledger::{LedgerRead, LedgerRow, LedgerShape};
use crate::db::lock::{self, LockError};
use crate::db::opening::{self, OpeningError};
use crate::db::pooler;
use crate::engine::budget::{CONNECT_FLOOR, READ_BACK_GRACE};
use crate::engine::error::Error;
use crate::engine::invocation::Invocation;
use crate::engine::model;
use crate::engine::outcome::Finished;
use crate::engine::plan::{self, Assessment};
use crate::engine::progress::Progress;
use crate::engine::upgrade;
use crate::migrations::source::{Layout, Migration, MigrationSet};
use crate::schema::drift::{self, Difference, DriftOptions};
use crate::schema::snapshot::Snapshot;

/// How long [`Session::read_back`] waits for the run's own backend to end, at most (and
/// [`READ_BACK_GRACE`] past the deadline).
const READ_BACK_WAIT: Duration = Duration::from_secs(10);

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
        connection.connect_timeout = inv.budget.bound_connect(connection.connect_timeout);
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

    /// The live schema against the snapshot of `version` (the empty schema for `None`).
    pub async fn compare(&self, version: Option<&Migration>) -> Result<Comparison, Error> {
        let expected = Snapshot::at(&self.set.source, version)?;
        let actual = catalog::read(self.client()).await?;
        let model = model::build(self.client(), &expected, &actual).await?;
        let differences = drift::compare_catalogs(&model, &actual, &self.drift_options());
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

    /// Runs `work` holding the advisory lock, after checking the session can write and is not
    /// pooled per transaction. The lock is given back on every path `work` returns by, by the
    /// backend that took it; a release that finds it not held is the run's error (or, after
    /// another error, a warning). Only a panic leaves it to the connection's drop. The session
    /// goes to `work` and comes back with its outcome: a plain value, so the future stays `Send`
    /// for the Lambda's spawned task.
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
        if let Some(warning) = pooler::rds_proxy_warning(&session.database().host) {
            finished.warnings.push(warning);
        }
        match held.release(session.client()).await {
            Ok(()) => {}
            // The connection failed, not the lock: the server frees it with the session.
            Err(e @ LockError::Database { .. }) => finished
                .warnings
                .push(format!("{e}; the server frees the lock when it ends the session")),
            Err(e) if finished.error.is_none() => finished.error = Some(e.into()),
            Err(e) => finished.warnings.push(e.to_string()),
        }
        (session, finished)
    }

    /// The opening statement first (check, try-lock and ledger read in one round trip); when
    /// the lock is busy, the database has no ledger yet or a pooler stands between, the
    /// step-by-step path: the pooler probe (refusing transaction pooling before anything is set
    /// or locked), the check, then polling for the lock, waiting and naming the holder.
    async fn take_lock(&mut self) -> Result<lock::HeldLock, Error> {
        let settings = self.settings();
        let announced = pooler::announced_pid(self.client()).await;
        let opened = opening::open(self.client(), &settings.ledger, settings.lock_key, announced)
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
            Some(opened) if opened.direct => {
                writable(opened.read_only, opened.in_recovery)?;
                if opened.locked {
                    tracing::info!(key = settings.lock_key, wait_ms = 0u64, "advisory lock held");
                    *lock(&self.opened) = opened.ledger;
                    return Ok(lock::HeldLock::taken_at_once(settings.lock_key, opened.pid));
                }
            }
            Some(opened) => {
                self.refuse_transaction_pooling(opened.pid).await?;
                self.check_writable().await?;
            }
            None => {
                // No ledger yet: the opening's first statement may have taken the lock.
                let (pid, held) = lock::held_here(self.client(), settings.lock_key).await?;
                let direct = announced == Some(pid);
                if !direct {
                    self.refuse_transaction_pooling(pid).await?;
                }
                self.check_writable().await?;
                if held && direct {
                    tracing::info!(key = settings.lock_key, wait_ms = 0u64, "advisory lock held");
                    return Ok(lock::HeldLock::taken_at_once(settings.lock_key, pid));
                }
            }
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

    /// Behind a pooler: a second client's backend and ours again, against ours (`ours`) before.
    /// RDS Proxy pins a session once it sees a `SET` (the session setup), so that comes first
    /// there; elsewhere nothing is set before the verdict.
    async fn refuse_transaction_pooling(&self, ours: i32) -> Result<(), Error> {
        let ours = if pooler::rds_proxy_warning(&self.database().host).is_some() {
            self.check_writable().await?;
            // The backend it pinned, which may not be the one the opening statement ran on.
            pooler::backend_pid(self.client()).await.map_err(Error::Session)?
        } else {
            ours
        };
        let mut connection = self.inv.connection.clone();
        connection.connect_timeout = self.inv.budget.bound_connect(connection.connect_timeout);
        let second = Database::connect(&connection).await?;
        let second_pid = tokio::time::timeout(pooler::SECOND_CLIENT_WAIT, pooler::backend_pid(second.client())).await;
        match second_pid {
            Ok(_) => second.close().await,
            // Its query still waits in the pooler's queue: a close would wait for the answer.
            Err(_) => second.abandon(),
        }
        let ours_after = pooler::backend_pid(self.client()).await;
        let probe = pooler::Probe {
            ours_before: ours,
            ours_after: ours_after.map_err(Error::Session)?,
            second: second_pid.ok().transpose().map_err(Error::Session)?,
        };
        tracing::info!(?probe, pooling = ?probe.pooling(), "connection pooler found");
        match probe.pooling() {
            pooler::Pooling::Session => Ok(()),
            pooler::Pooling::Transaction => Err(LockError::PoolerNotSupported {
                ours_before: probe.ours_before,
                ours_after: probe.ours_after,
                second: probe.second.map(|pid| format!(", a second client's {pid}")).unwrap_or_default(),
            }
            .into()),
        }
    }

    /// The ledger as it stands once this run's own backend has ended: after a connection that
    /// failed with a flight in the air, that backend may still be running it. It holds the
    /// migration lock until it ends (which settles its transaction), so a new connection waits
    /// for the lock, a little past the deadline at most, reads the ledger under it and gives it
    /// back. On a connection that is still open, the ledger is read there.
    pub async fn read_back(&self) -> Result<Vec<LedgerRow>, Error> {
        let settings = self.settings();
        if !self.client().is_closed() {
            return Ok(settings.ledger.read(self.client()).await?);
        }
        let wait = self
            .inv
            .time_left()
            .map_or(READ_BACK_WAIT, |left| (left + READ_BACK_GRACE).min(READ_BACK_WAIT));
        let mut connection = self.inv.connection.clone();
        connection.connect_timeout = connection.connect_timeout.min(wait.max(CONNECT_FLOOR));
        let db = Database::connect(&connection).await?;
        let read = async {
            let held = lock::acquire(db.client(), settings.lock_key, wait).await?;
            let rows = settings.ledger.read(db.client()).await;
            held.release(db.client()).await?;
            Ok::<_, Error>(rows?)
        }
        .await;
        db.close().await;
        read
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
