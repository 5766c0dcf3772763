//! The run's PostgreSQL cluster: started on first use and shared by every test, which
//! isolates itself in a database of its own (`pg().fresh_db()`), because a cluster costs a
//! second or two to initdb and a database costs milliseconds. `tls` starts specialised
//! clusters with the same machinery (`start_pg_with`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::{ident, literal, pick_port, spawn_with_lifeline, tail_file, STARTUP_TIMEOUT, START_ATTEMPTS};

pub struct PgServer {
    port: u16,
    password: String,
    // Closing it (at process exit, or `stop`) tells the wrapper to stop the server; a line
    // written to it restarts the server (`restart`).
    lifeline: Mutex<Option<ChildStdin>>,
    log: PathBuf,
}

static PG: OnceLock<Result<PgServer, String>> = OnceLock::new();

/// The run's PostgreSQL cluster, started on first call.
pub fn pg() -> &'static PgServer {
    // A failed start is remembered so every test reports it at once instead of
    // each waiting out its own startup timeout.
    match PG.get_or_init(start_pg) {
        Ok(server) => server,
        Err(msg) => panic!("{msg}"),
    }
}

/// A cluster of the caller's own, for a test that must disturb the whole server (restart it)
/// without touching the run's shared one.
pub fn private_pg() -> &'static PgServer {
    // Leaked: it lives as long as the test binary, like the shared one, and stops with it.
    Box::leak(Box::new(start_pg().unwrap_or_else(|msg| panic!("{msg}"))))
}

impl PgServer {
    /// Restarts the server the way an operator's `pg_ctl restart -m fast` does (SIGINT: every
    /// session is terminated, open transactions roll back) and waits until it accepts
    /// connections again.
    pub fn restart_fast(&self) {
        {
            let mut lifeline = self.lifeline.lock().unwrap_or_else(|e| e.into_inner());
            let lifeline = lifeline.as_mut().expect("the server was stopped");
            lifeline
                .write_all(b"restart\n")
                .and_then(|()| lifeline.flush())
                .expect("tell the wrapper to restart");
        }
        let url = self.admin_url("postgres");
        let log = self.log.clone();
        // Give the shutdown a moment to begin, so the probe does not reach the old server.
        std::thread::sleep(Duration::from_millis(300));
        std::thread::spawn(move || wait_for_pg(&url, &log))
            .join()
            .expect("probe thread")
            .unwrap_or_else(|_| panic!("PostgreSQL did not come back after a restart:\n{}", tail_file(&self.log, 30)));
    }

    /// Stops the server now and deletes its files, as process exit would: for a test that
    /// starts clusters of its own and should not keep them running through the rest of the run.
    pub fn stop(&self) {
        drop(self.lifeline.lock().unwrap_or_else(|e| e.into_inner()).take());
    }

    /// The database `name` of this cluster, one the test did not create here (a recovered
    /// cluster's, brought along by its backup).
    pub fn db(&'static self, name: &str) -> TestDb {
        TestDb {
            name: name.to_string(),
            url: self.admin_url(name),
            server: self,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Password of the `postgres` superuser; random per run.
    pub fn admin_password(&self) -> &str {
        &self.password
    }

    pub fn url(&self, user: &str, password: &str, db: &str) -> String {
        format!("postgres://{}:{}@127.0.0.1:{}/{}", pct(user), pct(password), self.port, pct(db))
    }

    pub fn admin_url(&self, db: &str) -> String {
        self.url("postgres", &self.password, db)
    }

    /// A new, empty database with a name no other test of the run uses.
    pub async fn fresh_db(&'static self) -> TestDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!("wm_test_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let admin = connect(&self.admin_url("postgres")).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {}", ident(&name)))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        TestDb {
            url: self.admin_url(&name),
            name,
            server: self,
        }
    }
}

pub struct TestDb {
    pub name: String,
    /// Superuser URL for this database.
    pub url: String,
    server: &'static PgServer,
}

impl TestDb {
    /// A superuser connection to this database; its connection task is spawned
    /// on the current runtime.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    /// The one value the query returns, as text.
    pub async fn one(&self, sql: &str) -> String {
        self.client().await.query_one(sql, &[]).await.unwrap().get(0)
    }

    /// `pg_dump --schema-only` of the application's schema (drizzle's ledger schema left out),
    /// its lines sorted: two databases built the same way compare equal whatever their column
    /// order (a trailing comma goes with it).
    pub fn schema_lines(&self) -> Vec<String> {
        let out = Command::new(pg_tool("pg_dump"))
            .args(["--schema-only", "--no-owner", "--exclude-schema=drizzle"])
            .arg(&self.url)
            .output()
            .expect("run pg_dump");
        assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
        let mut lines: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("--") && !l.starts_with('\\') && !l.trim().is_empty())
            .map(|l| l.trim_end_matches(',').to_string())
            .collect();
        lines.sort();
        lines
    }

    /// The cluster-wide name `create_role(name, ..)` gives its role.
    pub fn role_name(&self, name: &str) -> String {
        format!("{name}_{}", self.name)
    }

    /// Creates a LOGIN role and returns a URL that logs in as it to this database.
    ///
    /// Roles are cluster-wide, so the role is really named `role_name(name)`.
    /// `grants_sql` runs as superuser in this database after the role exists;
    /// in it `{role}` and `{db}` stand for the quoted role and database names,
    /// e.g. `"GRANT CREATE ON SCHEMA public TO {role}"`.
    pub async fn create_role(&self, name: &str, password: &str, grants_sql: &[&str]) -> String {
        let role = self.role_name(name);
        let client = self.client().await;
        client
            .batch_execute(&format!("CREATE ROLE {} LOGIN PASSWORD {}", ident(&role), literal(password)))
            .await
            .unwrap_or_else(|e| panic!("CREATE ROLE {role}: {e}"));
        for sql in grants_sql {
            let sql = sql.replace("{role}", &ident(&role)).replace("{db}", &ident(&self.name));
            client.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        self.server.url(&role, password, &self.name)
    }

    /// Advisory locks currently held or awaited in this database.
    pub async fn advisory_locks(&self) -> i64 {
        let client = self.client().await;
        client
            .query_one(
                "SELECT count(*) FROM pg_locks \
                 WHERE locktype = 'advisory' \
                   AND database = (SELECT oid FROM pg_database WHERE datname = $1)",
                &[&self.name],
            )
            .await
            .expect("count advisory locks")
            .get(0)
    }

    /// Whether e.g. `"public.wishlists"` or `"drizzle.__drizzle_migrations"` exists.
    pub async fn table_exists(&self, qualified: &str) -> bool {
        let client = self.client().await;
        client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&qualified])
            .await
            .expect("to_regclass")
            .get(0)
    }

    /// The statements of `tag` recorded as committed in the history (an online recipe's steps,
    /// a no-transaction migration's statements), in the order they committed.
    pub async fn statements_done(&self, tag: &str) -> Vec<i32> {
        self.client()
            .await
            .query(
                "select statement_index from drizzle.wishlist_migrator_history where tag = $1 and action = 'statement' order by id",
                &[&tag],
            )
            .await
            .expect("read the history")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

/// TLS when the server offers it (the URL's default `sslmode=prefer`), certificates unchecked:
/// the harness itself must also reach the TLS-only clusters of `tls`, and what the tests
/// prove about certificates is the CLI's verification, never the harness's.
fn harness_tls() -> postgres_native_tls::MakeTlsConnector {
    let connector = native_tls::TlsConnector::builder()
        .danger_accept_invalid_certs(true)
        .danger_accept_invalid_hostnames(true)
        .build()
        .expect("build the harness's TLS connector");
    postgres_native_tls::MakeTlsConnector::new(connector)
}

pub(super) async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, harness_tls())
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A client program of the server the harness runs (`pg_dump`, `pg_restore`, ...), so its
/// version matches the cluster's.
pub fn pg_tool(name: &str) -> PathBuf {
    pg_bin().unwrap_or_else(|e| panic!("{e}")).join(name)
}

/// PG_BIN, else the newest Debian-installed server, else whatever PATH has.
fn pg_bin() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join("initdb").exists() && dir.join("postgres").exists() {
            return Ok(dir);
        }
    }
    Err("no PostgreSQL server found (set PG_BIN or run scripts/bootstrap.sh)".into())
}

/// initdb and postgres refuse to run as root; as root they run as this user.
pub(super) struct RunAs {
    pub(super) uid: u32,
    pub(super) gid: u32,
}

pub(super) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn id_of(flag: &str, user: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, user]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

pub(super) fn postgres_user() -> Result<RunAs, String> {
    if id_of("-u", "postgres").is_none() {
        // Another test run, or a TLS cluster starting on another thread, may be
        // creating it at the same moment; only the re-check below matters.
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "postgres",
            ])
            .status();
    }
    match (id_of("-u", "postgres"), id_of("-g", "postgres")) {
        (Some(uid), Some(gid)) => Ok(RunAs { uid, gid }),
        _ => Err("running as root but there is no `postgres` user and useradd failed".into()),
    }
}

/// Prefix that makes `cmd` run as the unprivileged user (empty when not root).
/// setpriv execs rather than forking, so the wrapper's `$!` is the server itself.
pub(super) fn as_user_prefix(run_as: &Option<RunAs>) -> Vec<String> {
    match run_as {
        None => vec![],
        Some(u) => vec![
            "setpriv".into(),
            format!("--reuid={}", u.uid),
            format!("--regid={}", u.gid),
            "--init-groups".into(),
            "--".into(),
        ],
    }
}

fn start_pg() -> Result<PgServer, String> {
    start_pg_with(&|_, _| Ok(Vec::new()))
}

/// Prepares a specialised cluster between initdb and the first start: writes what it needs
/// into the data directory (given first) and returns extra `postgres` arguments.
type Customize<'a> = &'a dyn Fn(&Path, &Option<RunAs>) -> Result<Vec<String>, String>;

pub(super) fn start_pg_with(customize: Customize<'_>) -> Result<PgServer, String> {
    let bin = pg_bin()?;
    let run_as = if is_root() { Some(postgres_user()?) } else { None };
    let mut last_err = String::new();
    for _ in 0..START_ATTEMPTS {
        match try_start_pg(&bin, &run_as, customize) {
            Ok(server) => return Ok(server),
            Err(StartError::PortTaken(msg)) => last_err = msg,
            Err(StartError::Fatal(msg)) => return Err(msg),
        }
    }
    Err(format!("PostgreSQL never got a free port: {last_err}"))
}

enum StartError {
    PortTaken(String),
    Fatal(String),
}

fn try_start_pg(bin: &Path, run_as: &Option<RunAs>, customize: Customize<'_>) -> Result<PgServer, StartError> {
    use std::os::unix::fs::PermissionsExt;
    let fatal = StartError::Fatal;

    // As root, a TMPDIR private to root would be unreachable for the postgres user.
    let base = if run_as.is_some() {
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("wm-pg-{}-{}", std::process::id(), fastrand::u64(..)));
    std::fs::create_dir(&dir).map_err(|e| fatal(format!("mkdir {}: {e}", dir.display())))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| fatal(e.to_string()))?;

    let password: String = std::iter::repeat_with(fastrand::alphanumeric).take(24).collect();
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, format!("{password}\n")).map_err(|e| fatal(e.to_string()))?;
    if let Some(u) = run_as {
        for p in [&dir, &pwfile] {
            std::os::unix::fs::chown(p, Some(u.uid), Some(u.gid)).map_err(|e| fatal(format!("chown {}: {e}", p.display())))?;
        }
    }

    let prefix = as_user_prefix(run_as);
    let data = dir.join("data");
    let sock = dir.join("sock");
    let mut initdb_argv = prefix.clone();
    initdb_argv.push(bin.join("initdb").display().to_string());
    let out = Command::new(&initdb_argv[0])
        .args(&initdb_argv[1..])
        .arg("-D")
        .arg(&data)
        .args([
            "--username=postgres",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        // The postgres user may not be allowed into the caller's cwd.
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fatal(format!("run initdb: {e}")))?;
    let _ = std::fs::remove_file(&pwfile);
    if !out.status.success() {
        let msg = format!(
            "initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&dir);
        return Err(fatal(msg));
    }
    std::fs::create_dir(&sock).map_err(|e| fatal(e.to_string()))?;
    if let Some(u) = run_as {
        std::os::unix::fs::chown(&sock, Some(u.uid), Some(u.gid)).map_err(|e| fatal(e.to_string()))?;
    }

    let extra_args = customize(&data, run_as).map_err(|e| {
        let _ = std::fs::remove_dir_all(&dir);
        fatal(e)
    })?;

    let port = pick_port();
    let mut server_cmd: Vec<String> = prefix;
    server_cmd.push(bin.join("postgres").display().to_string());
    server_cmd.extend(
        [
            "-D",
            &data.display().to_string(),
            "-p",
            &port.to_string(),
            "-k",
            &sock.display().to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            // Durability is pointless for a cluster deleted at exit, and costs seconds.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            // Concurrency tests run many CLI processes, each with its own connections.
            "-c",
            "max_connections=200",
            "-c",
            "log_min_messages=warning",
        ]
        .map(String::from),
    );
    server_cmd.extend(extra_args);

    // A line on stdin restarts the server (fast shutdown, SIGINT); end of file stops it with an
    // immediate shutdown (SIGQUIT): nothing here needs a clean checkpoint.
    const WRAPPER: &str = r#"
dir=$1; shift
start() { "$@" </dev/null >>"$dir/server.log" 2>&1 & pg=$!; }
start "$@"
while read _; do
  kill -INT "$pg" 2>/dev/null
  wait "$pg" 2>/dev/null
  start "$@"
done
kill -QUIT "$pg" 2>/dev/null
wait "$pg" 2>/dev/null
rm -rf "$dir"
"#;
    let mut args = vec![dir.display().to_string()];
    args.extend(server_cmd);
    let lifeline = spawn_with_lifeline(WRAPPER, &args).map_err(fatal)?;

    let log = dir.join("server.log");
    let url = format!("postgres://postgres:{}@127.0.0.1:{port}/postgres", pct(&password));
    // Probing needs a runtime; the caller may already be inside one (a
    // #[tokio::test]), where block_on would panic, so probe from a fresh thread.
    let probe_log = log.clone();
    let ready = std::thread::spawn(move || wait_for_pg(&url, &probe_log))
        .join()
        .unwrap_or_else(|_| Err(WaitError::Timeout("probe thread panicked".into())));
    match ready {
        Ok(()) => Ok(PgServer {
            port,
            password,
            lifeline: Mutex::new(Some(lifeline)),
            log,
        }),
        // Dropping the lifeline makes the wrapper clean up this attempt's directory.
        Err(WaitError::PortTaken) => Err(StartError::PortTaken(tail_file(&log, 5))),
        Err(WaitError::Timeout(last)) => Err(fatal(format!(
            "PostgreSQL on 127.0.0.1:{port} did not accept connections within {STARTUP_TIMEOUT:?} \
             (last error: {last}); server log tail:\n{}",
            tail_file(&log, 30)
        ))),
    }
}

enum WaitError {
    PortTaken,
    Timeout(String),
}

fn wait_for_pg(url: &str, log: &Path) -> Result<(), WaitError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| WaitError::Timeout(e.to_string()))?;
    rt.block_on(async {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut last = String::from("none");
        while Instant::now() < deadline {
            let attempt = tokio::time::timeout(Duration::from_secs(2), tokio_postgres::connect(url, harness_tls())).await;
            match attempt {
                Ok(Ok((client, conn))) => {
                    let conn = tokio::spawn(conn);
                    let ok = client.simple_query("SELECT 1").await.is_ok();
                    drop(client);
                    let _ = conn.await;
                    if ok {
                        return Ok(());
                    }
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "connect timed out".into(),
            }
            let log_text = std::fs::read_to_string(log).unwrap_or_default();
            if log_text.contains("could not create any TCP/IP sockets") || log_text.contains("Address already in use") {
                return Err(WaitError::PortTaken);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(WaitError::Timeout(last))
    })
}

fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
