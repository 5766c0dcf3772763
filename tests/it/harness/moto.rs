//! moto, the local AWS API emulator (Secrets Manager, SSM) the Lambda tests talk to. Its state
//! is shared by every test of the run, so tests name their resources after their own database.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::ChildStdin;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{pick_port, spawn_with_lifeline, tail_file, MANIFEST_DIR, STARTUP_TIMEOUT, START_ATTEMPTS};

pub struct Moto {
    port: u16,
    _lifeline: ChildStdin,
}

static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();

/// The run's moto server (from the repo's .venv), started on first call.
pub fn moto() -> &'static Moto {
    match MOTO.get_or_init(start_moto) {
        Ok(m) => m,
        Err(msg) => panic!("{msg}"),
    }
}

impl Moto {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A plain HTTP/1.1 GET; returns (status, body).
    pub fn http_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.port, path)
    }
}

fn start_moto() -> Result<Moto, String> {
    let venv = Path::new(MANIFEST_DIR).join(".venv/bin");
    let cmd: Vec<String> = if venv.join("moto_server").exists() {
        vec![venv.join("moto_server").display().to_string()]
    } else if venv.join("python").exists() {
        vec![venv.join("python").display().to_string(), "-m".into(), "moto.server".into()]
    } else {
        return Err("moto is not installed in .venv: run scripts/bootstrap.sh".into());
    };

    const WRAPPER: &str = r#"
log=$1; shift
"$@" </dev/null >"$log" 2>&1 &
pid=$!
read _
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -f "$log"
"#;
    let mut last_err = String::new();
    for _ in 0..START_ATTEMPTS {
        let port = pick_port();
        let log = std::env::temp_dir().join(format!("wm-moto-{}-{}.log", std::process::id(), fastrand::u64(..)));
        let mut args = vec![log.display().to_string()];
        args.extend(cmd.iter().cloned());
        args.extend(["-H", "127.0.0.1", "-p", &port.to_string()].map(String::from));
        let lifeline = spawn_with_lifeline(WRAPPER, &args)?;

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if http_get(port, "/").is_ok() {
                return Ok(Moto { port, _lifeline: lifeline });
            }
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            if log_text.contains("Address already in use") {
                last_err = log_text;
                break; // dropping the lifeline stops this attempt
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "moto did not answer on 127.0.0.1:{port} within {STARTUP_TIMEOUT:?}; log tail:\n{}",
                    tail_file(&log, 30)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Err(format!("moto never got a free port: {last_err}"))
}

fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:.200}")))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}
