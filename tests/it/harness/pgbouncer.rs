//! A real PgBouncer (Debian's package) in front of the run's PostgreSQL, one per test, in the
//! pool mode and pool size the test asks for. Like the cluster it runs as the unprivileged
//! `postgres` user when the tests run as root (PgBouncer refuses root) and stops when the test
//! binary exits (the lifeline pipe, see `mod.rs`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::pg::{as_user_prefix, is_root, postgres_user};
use super::{pg, pick_port, spawn_with_lifeline, tail_file, STARTUP_TIMEOUT, START_ATTEMPTS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    Session,
    Transaction,
    Statement,
}

pub struct PgBouncer {
    port: u16,
    log: PathBuf,
    // Closing it (when this is dropped, or at exit) stops PgBouncer.
    _lifeline: std::process::ChildStdin,
}

impl PgBouncer {
    /// Starts one in `mode` with `pool_size` server connections per database, logging in to the
    /// run's cluster as its superuser whatever user a client names.
    pub fn start(mode: PoolMode, pool_size: u32) -> Self {
        Self::start_with(mode, pool_size, "DISCARD ALL")
    }

    /// One whose `server_reset_query` is empty: a server session keeps what a client left on it
    /// (settings, advisory locks) for the next client, as with `server_reset_query_always = 0`
    /// in transaction mode.
    pub fn start_keeping_session_state(mode: PoolMode, pool_size: u32) -> Self {
        Self::start_with(mode, pool_size, "")
    }

    fn start_with(mode: PoolMode, pool_size: u32, reset_query: &str) -> Self {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match try_start(mode, pool_size, reset_query) {
                Ok(bouncer) => return bouncer,
                Err(e) => last = e,
            }
        }
        panic!("PgBouncer did not start: {last}")
    }

    /// A URL for `db` through this PgBouncer.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://wm:unused@127.0.0.1:{}/{db}", self.port)
    }

    pub fn log_tail(&self) -> String {
        tail_file(&self.log, 30)
    }
}

fn try_start(mode: PoolMode, pool_size: u32, reset_query: &str) -> Result<PgBouncer, String> {
    use std::os::unix::fs::PermissionsExt;
    let server = pg();
    let run_as = if is_root() { Some(postgres_user()?) } else { None };
    let base = if run_as.is_some() {
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("wm-pgbouncer-{}-{}", std::process::id(), fastrand::u64(..)));
    std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
    let port = pick_port();
    let log = dir.join("pgbouncer.log");
    let ini = dir.join("pgbouncer.ini");
    let mode = match mode {
        PoolMode::Session => "session",
        PoolMode::Transaction => "transaction",
        PoolMode::Statement => "statement",
    };
    std::fs::write(
        &ini,
        format!(
            "[databases]\n\
             * = host=127.0.0.1 port={pg_port} user=postgres password={password}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = any\n\
             pool_mode = {mode}\n\
             default_pool_size = {pool_size}\n\
             server_reset_query = {reset_query}\n\
             max_client_conn = 500\n\
             logfile = {log}\n\
             ignore_startup_parameters = extra_float_digits,options\n",
            pg_port = server.port(),
            password = server.admin_password(),
            log = log.display(),
        ),
    )
    .map_err(|e| e.to_string())?;
    if let Some(u) = &run_as {
        for p in [&dir, &ini] {
            std::os::unix::fs::chown(p, Some(u.uid), Some(u.gid)).map_err(|e| format!("chown {}: {e}", p.display()))?;
        }
    }
    const WRAPPER: &str = r#"
dir=$1; shift
"$@" </dev/null >>"$dir/stdout.log" 2>&1 & pid=$!
read _
kill -TERM "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -rf "$dir"
"#;
    let mut args = vec![dir.display().to_string()];
    args.extend(as_user_prefix(&run_as));
    args.push(pgbouncer_bin());
    args.push(ini.display().to_string());
    let lifeline = spawn_with_lifeline(WRAPPER, &args)?;
    let bouncer = PgBouncer {
        port,
        log,
        _lifeline: lifeline,
    };
    let url = format!("{}?sslmode=disable", bouncer.url("postgres"));
    let ready = std::thread::spawn(move || wait_ready(&url)).join().unwrap_or(false);
    if ready {
        Ok(bouncer)
    } else {
        Err(format!(
            "no answer on 127.0.0.1:{port} within {STARTUP_TIMEOUT:?}:\n{}\n{}",
            bouncer.log_tail(),
            tail_file(&dir.join("stdout.log"), 10)
        ))
    }
}

fn pgbouncer_bin() -> String {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("pgbouncer")
        .to_string()
}

fn wait_ready(url: &str) -> bool {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return false;
    };
    rt.block_on(async {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Ok((client, conn))) =
                tokio::time::timeout(Duration::from_secs(2), tokio_postgres::connect(url, tokio_postgres::NoTls)).await
            {
                let conn = tokio::spawn(conn);
                let ok = client.simple_query("select 1").await.is_ok();
                drop(client);
                let _ = conn.await;
                if ok {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    })
}
