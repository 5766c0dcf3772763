//! TLS-only PostgreSQL clusters and the test PKI they use, for the `tls` tests.
//!
//! The certificates are made at test time with the `openssl` CLI (scripts/bootstrap.sh
//! installs it), so no key material lives in the repository and nothing can expire in it.
//! Every cluster here has `ssl = on` and a pg_hba.conf whose only line is `hostssl`: a
//! connection that succeeds was encrypted, whatever the client claims.
//!
//! Two clusters rather than one that swaps certificates: a reload would race with tests
//! running in parallel, and the second cluster is started only by the test that needs it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;

use super::pg::{start_pg_with, PgServer, RunAs};
use super::spawn_with_lifeline;

/// The host name in the certificate of `pg_tls_other_host()`; it resolves nowhere.
pub const OTHER_HOST: &str = "db.example.internal";

/// The files of the test PKI.
pub struct Pki {
    dir: PathBuf,
    // Held, never written: at process exit the wrapper deletes the directory.
    _lifeline: ChildStdin,
}

impl Pki {
    /// The CA that signed both servers' certificates.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A CA that signed nothing the servers present.
    pub fn other_ca(&self) -> PathBuf {
        self.dir.join("other-ca.crt")
    }

    /// The private key of `ca()`: a PEM file that holds no certificate.
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    /// Where a test may write its own bundle variants.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

static PKI: OnceLock<Result<Pki, String>> = OnceLock::new();
static PG_TLS: OnceLock<Result<PgServer, String>> = OnceLock::new();
static PG_TLS_OTHER_HOST: OnceLock<Result<PgServer, String>> = OnceLock::new();

pub fn pki() -> &'static Pki {
    match PKI.get_or_init(make_pki) {
        Ok(pki) => pki,
        Err(msg) => panic!("{msg}"),
    }
}

/// A TLS-only cluster whose certificate (signed by `pki().ca()`) names `localhost` and
/// `127.0.0.1`, the names its URLs use.
pub fn pg_tls() -> &'static PgServer {
    match PG_TLS.get_or_init(|| start_tls_pg("localhost")) {
        Ok(server) => server,
        Err(msg) => panic!("{msg}"),
    }
}

/// A TLS-only cluster whose certificate is signed by the right CA but names only
/// `OTHER_HOST`, while it is reached as 127.0.0.1 or localhost.
pub fn pg_tls_other_host() -> &'static PgServer {
    match PG_TLS_OTHER_HOST.get_or_init(|| start_tls_pg("other")) {
        Ok(server) => server,
        Err(msg) => panic!("{msg}"),
    }
}

fn start_tls_pg(cert: &'static str) -> Result<PgServer, String> {
    let pki = match PKI.get_or_init(make_pki) {
        Ok(pki) => pki,
        Err(msg) => return Err(msg.clone()),
    };
    start_pg_with(&|data, run_as| install_tls(pki, cert, data, run_as))
}

fn install_tls(pki: &Pki, cert: &str, data: &Path, run_as: &Option<RunAs>) -> Result<Vec<String>, String> {
    let copy = |from: &str, to: &str, mode: u32| -> Result<(), String> {
        let target = data.join(to);
        std::fs::copy(pki.dir.join(from), &target).map_err(|e| format!("copy {from}: {e}"))?;
        // PostgreSQL refuses a key others can read, or one owned by another user than the server's.
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())?;
        if let Some(u) = run_as {
            std::os::unix::fs::chown(&target, Some(u.uid), Some(u.gid)).map_err(|e| format!("chown {to}: {e}"))?;
        }
        Ok(())
    };
    copy(&format!("server-{cert}.crt"), "server.crt", 0o644)?;
    copy(&format!("server-{cert}.key"), "server.key", 0o600)?;
    // Replaces initdb's file, keeping its owner: no `local`, no `host`, so a plain-text
    // connection has no line to match and is refused.
    std::fs::write(data.join("pg_hba.conf"), "hostssl all all 127.0.0.1/32 scram-sha-256\n")
        .map_err(|e| format!("write pg_hba.conf: {e}"))?;
    Ok(["ssl=on", "ssl_cert_file=server.crt", "ssl_key_file=server.key"]
        .into_iter()
        .flat_map(|setting| ["-c".to_string(), setting.to_string()])
        .collect())
}

/// Sections for `openssl req -extensions` / `openssl x509 -extensions`; a config of our own
/// so the distribution's openssl.cnf defaults cannot add or clash with extensions.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_localhost]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid
[server_other]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:db.example.internal
authorityKeyIdentifier = keyid
";

fn make_pki() -> Result<Pki, String> {
    let dir = tempfile::Builder::new()
        .prefix("wm-pki-")
        .tempdir()
        .map_err(|e| format!("create the PKI directory: {e}"))?
        .keep();
    let lifeline = spawn_with_lifeline("read _; rm -rf \"$1\"", &[dir.display().to_string()])?;
    std::fs::write(dir.join("openssl.cnf"), OPENSSL_CNF).map_err(|e| e.to_string())?;

    // EC keys: generating them is instant, where RSA would cost noticeable time per key.
    const NEW_KEY: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-sha256"];
    let ca = |name: &str, cn: &str| -> Result<(), String> {
        let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
        let mut args = vec!["req", "-x509", "-new", "-config", "openssl.cnf", "-extensions", "ca", "-days", "7"];
        args.extend(NEW_KEY);
        args.extend(["-keyout", &key, "-out", &crt, "-subj", cn]);
        openssl(&dir, &args)
    };
    ca("ca", "/CN=wishlist-migrator test CA")?;
    ca("other-ca", "/CN=unrelated test CA")?;

    for (name, cn, serial) in [
        ("localhost", "/CN=localhost", "0x1001"),
        ("other", "/CN=db.example.internal", "0x1002"),
    ] {
        let (key, csr, crt) = (
            format!("server-{name}.key"),
            format!("server-{name}.csr"),
            format!("server-{name}.crt"),
        );
        let mut args = vec!["req", "-new", "-config", "openssl.cnf"];
        args.extend(NEW_KEY);
        args.extend(["-keyout", &key, "-out", &csr, "-subj", cn]);
        openssl(&dir, &args)?;
        let section = format!("server_{name}");
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-set_serial",
                serial,
                "-days",
                "7",
                "-sha256",
                "-extfile",
                "openssl.cnf",
                "-extensions",
                &section,
                "-out",
                &crt,
            ],
        )?;
    }
    Ok(Pki { dir, _lifeline: lifeline })
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run the openssl CLI ({e}): install it (scripts/bootstrap.sh does)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
