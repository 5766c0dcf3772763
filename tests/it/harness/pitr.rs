//! Point-in-time recovery, as docs/backup-restore.md's local drill does it: a cluster of its own
//! that archives its WAL to a folder, a base backup with `pg_basebackup`, and a recovery of that
//! backup into a new data directory that replays the archive up to a target and is promoted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::pg::{as_user_prefix, is_root, postgres_user, start_pg_with, PgServer, RunAs};

/// A cluster archiving every finished WAL segment into `archive`, with its base backups beside.
pub struct Archiving {
    pub server: &'static PgServer,
    /// Holds `archive/` and `base/`, owned by the server's user; deleted when this is dropped.
    dir: tempfile::TempDir,
    run_as: Option<RunAs>,
}

/// Where recovery stops: before the first transaction that committed at or after a moment on
/// the server's clock, or before a WAL position (both not inclusive).
pub enum Target<'a> {
    Time(&'a str),
    Lsn(&'a str),
}

impl Archiving {
    pub fn start() -> Self {
        let run_as = if is_root() {
            Some(postgres_user().unwrap_or_else(|e| panic!("{e}")))
        } else {
            None
        };
        // As root, a TMPDIR private to root would be unreachable for the postgres user.
        let dir = tempfile::Builder::new()
            .prefix("wm-pitr-")
            .tempdir_in("/tmp")
            .expect("a folder for the archive");
        for sub in ["", "archive"] {
            let path = dir.path().join(sub);
            std::fs::create_dir_all(&path).unwrap();
            if let Some(u) = &run_as {
                std::os::unix::fs::chown(&path, Some(u.uid), Some(u.gid)).expect("chown the archive");
            }
        }
        let archive = dir.path().join("archive");
        let server = start_pg_with(&|_, _| {
            Ok([
                "wal_level=replica".to_string(),
                "archive_mode=on".to_string(),
                // The documented form: never overwrite a segment already archived.
                format!("archive_command=test ! -f {0}/%f && cp %p {0}/%f", archive.display()),
            ]
            .into_iter()
            .flat_map(|setting| ["-c".to_string(), setting])
            .collect())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        Self {
            server: Box::leak(Box::new(server)),
            dir,
            run_as,
        }
    }

    fn base(&self) -> PathBuf {
        self.dir.path().join("base")
    }

    /// `pg_basebackup` of the whole cluster into `base/`, as the server's user so the copy can
    /// be a data directory.
    pub fn base_backup(&self) {
        let began = Instant::now();
        let mut argv = as_user_prefix(&self.run_as);
        argv.push(super::pg_tool("pg_basebackup").display().to_string());
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .arg("--pgdata")
            .arg(self.base())
            .args(["--wal-method=stream", "--checkpoint=fast", "--no-sync", "--dbname"])
            .arg(self.server.admin_url("postgres"))
            .current_dir(self.dir.path())
            .output()
            .expect("run pg_basebackup");
        assert!(out.status.success(), "pg_basebackup: {}", String::from_utf8_lossy(&out.stderr));
        eprintln!("base backup in {} ms", began.elapsed().as_millis());
    }

    /// Closes the current WAL segment and waits until the archiver has copied it: everything
    /// committed so far is then in the archive.
    pub async fn archive_now(&self) {
        let client = super::pg::connect(&self.server.admin_url("postgres")).await;
        let row = client
            .query_one("select pg_walfile_name(pg_switch_wal())", &[])
            .await
            .expect("switch WAL");
        let segment: String = row.get(0);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let row = client
                .query_one("select coalesce(last_archived_wal, '') from pg_stat_archiver", &[])
                .await
                .unwrap();
            let archived: String = row.get(0);
            if archived >= segment {
                return;
            }
            assert!(Instant::now() < deadline, "segment {segment} was not archived (last: {archived})");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new cluster from the base backup, its WAL replayed from the archive up to `target`, then
    /// promoted; once it accepts writes. Connections are trusted: the backup carries the
    /// original's password, which this harness does not know under the new server's name.
    pub async fn recover(&self, target: Target<'_>) -> Recovered {
        let (base, archive) = (self.base(), self.dir.path().join("archive"));
        let target = match target {
            Target::Time(t) => format!("recovery_target_time={t}"),
            Target::Lsn(l) => format!("recovery_target_lsn={l}"),
        };
        let began = Instant::now();
        let server = start_pg_with(&|data, run_as| {
            restore_base(&base, data, run_as)?;
            Ok([
                format!("restore_command=cp {}/%f %p", archive.display()),
                target.clone(),
                "recovery_target_inclusive=off".to_string(),
                "recovery_target_action=promote".to_string(),
            ]
            .into_iter()
            .flat_map(|setting| ["-c".to_string(), setting])
            .collect())
        })
        .unwrap_or_else(|e| panic!("recovery to {target}: {e}"));
        let server: &'static PgServer = Box::leak(Box::new(server));
        // It accepts read-only connections while it still replays.
        let client = super::pg::connect(&server.admin_url("postgres")).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.query_one("select pg_is_in_recovery()", &[]).await.unwrap().get::<_, bool>(0) {
            assert!(Instant::now() < deadline, "the recovered cluster was never promoted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The figure docs/backup-restore.md quotes (`--nocapture` shows it).
        eprintln!("recovered to {target} and promoted in {} ms", began.elapsed().as_millis());
        Recovered { server }
    }
}

impl Drop for Archiving {
    fn drop(&mut self) {
        self.server.stop();
    }
}

/// A cluster recovered from the archive; stopped (and its files deleted) when dropped.
pub struct Recovered {
    pub server: &'static PgServer,
}

impl Drop for Recovered {
    fn drop(&mut self) {
        self.server.stop();
    }
}

/// The base backup copied over a fresh data directory, with `recovery.signal` (archive
/// recovery) and a pg_hba.conf that trusts local TCP connections.
fn restore_base(base: &Path, data: &Path, run_as: &Option<RunAs>) -> Result<(), String> {
    std::fs::remove_dir_all(data).map_err(|e| format!("empty the data directory: {e}"))?;
    // `cp -a` keeps the backup's owner and modes (the server's user, 0700).
    let out = Command::new("cp")
        .arg("-a")
        .arg(base)
        .arg(data)
        .output()
        .map_err(|e| format!("cp: {e}"))?;
    if !out.status.success() {
        return Err(format!("copy the base backup: {}", String::from_utf8_lossy(&out.stderr)));
    }
    std::fs::write(data.join("pg_hba.conf"), "host all all 127.0.0.1/32 trust\n").map_err(|e| e.to_string())?;
    let signal = data.join("recovery.signal");
    std::fs::write(&signal, "").map_err(|e| e.to_string())?;
    if let Some(u) = run_as {
        std::os::unix::fs::chown(&signal, Some(u.uid), Some(u.gid)).map_err(|e| format!("chown recovery.signal: {e}"))?;
    }
    Ok(())
}
