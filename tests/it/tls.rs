//! TLS as docs/configuration.md documents it (`DB_SSLMODE`, `DB_CA_BUNDLE`), against real PostgreSQL
//! servers with `ssl = on` that accept nothing but `hostssl` (see `harness::tls`): a run that
//! gets past connecting has used TLS, and `plain_text_is_refused_by_the_tls_only_server`
//! shows that the server really refuses anything else.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use crate::harness::tls::{pg_tls, pg_tls_other_host, pki, OTHER_HOST};
use crate::harness::{cli, PgServer, TestDb};

/// A fresh database on one of the TLS-only servers.
struct Target {
    server: &'static PgServer,
    db: TestDb,
}

async fn target(server: &'static PgServer) -> Target {
    Target {
        db: server.fresh_db().await,
        server,
    }
}

struct Run {
    code: i32,
    report: Value,
    stdout: String,
    stderr: String,
}

impl Run {
    fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    fn error_type(&self) -> &str {
        self.report["error"]["type"]
            .as_str()
            .unwrap_or_else(|| panic!("no error.type in {}", self.report))
    }

    fn message(&self) -> &str {
        self.report["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no error.message in {}", self.report))
    }

    /// A refused certificate: the reason once (not again for each error in the chain), and a
    /// hint saying what the certificate must satisfy, naming the host that was tried.
    fn certificate_refusal(&self, host: &str) -> &str {
        let message = self.failure("ConnectionFailed");
        assert_eq!(message.matches("certificate verify failed").count(), 1, "{message}");
        let hint = self.report["error"]["hint"]
            .as_str()
            .unwrap_or_else(|| panic!("no error.hint in {}", self.report));
        assert!(hint.contains("DB_CA_BUNDLE") && hint.contains(&format!("{host:?}")), "{hint}");
        message
    }

    /// Asserts a failure's type and returns its message.
    fn failure(&self, error_type: &str) -> &str {
        assert_eq!(self.error_type(), error_type, "{}", self.report);
        self.message()
    }
}

impl Target {
    /// `wishlist-migrate --json migrate` as the admin user, reaching the server as `host`.
    /// `None` leaves the variable unset, so the CLI's own default applies.
    fn migrate(&self, host: &str, sslmode: Option<&str>, bundle: Option<&Path>) -> Run {
        let password = self.server.admin_password();
        let url = self
            .server
            .url("postgres", password, &self.db.name)
            .replacen("@127.0.0.1:", &format!("@{host}:"), 1);
        let mut cmd = cli();
        cmd.env("DATABASE_URL", url).args(["--json", "migrate"]);
        if let Some(mode) = sslmode {
            cmd.env("DB_SSLMODE", mode);
        }
        if let Some(path) = bundle {
            cmd.env("DB_CA_BUNDLE", path);
        }
        let out = cmd.stdin(Stdio::null()).output().expect("run wishlist-migrate");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // TLS failures quote the connection target; it must never include the password.
        for text in [&stdout, &stderr] {
            assert!(!text.contains(password), "the password appeared in the output:\n{text}");
        }
        let report = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON report ({e}):\n{stdout}\nstderr:\n{stderr}"));
        Run {
            code: out.status.code().unwrap_or(-1),
            report,
            stdout,
            stderr,
        }
    }

    async fn has_ledger(&self) -> bool {
        self.db.table_exists("drizzle.__drizzle_migrations").await
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Writes `contents` to a file of its own in `dir`.
fn bundle_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

// ---------------------------------------------------------------------------
// Connections that must succeed

#[tokio::test]
async fn require_with_the_right_ca_verifies_the_server_and_migrates() {
    let t = target(pg_tls()).await;
    let run = t.migrate("127.0.0.1", Some("require"), Some(&pki().ca())).expect(0);
    assert_eq!(run.report["status"], "applied", "{}", run.report);
    assert!(t.has_ledger().await);
}

#[tokio::test]
async fn verify_full_accepts_every_name_the_certificate_gives() {
    let t = target(pg_tls()).await;
    // IP:127.0.0.1 in the certificate's SAN.
    let run = t.migrate("127.0.0.1", Some("verify-full"), Some(&pki().ca())).expect(0);
    assert_eq!(run.report["status"], "applied", "{}", run.report);
    // DNS:localhost: a name, checked differently from an address.
    let run = t.migrate("localhost", Some("verify-full"), Some(&pki().ca())).expect(0);
    assert_eq!(run.report["status"], "upToDate", "{}", run.report);
}

#[tokio::test]
async fn require_without_a_bundle_encrypts_but_does_not_verify() {
    // This server's certificate does not name 127.0.0.1, which verification would refuse
    // (see the host-name test): like libpq's `require`, the run goes on regardless.
    let t = target(pg_tls_other_host()).await;
    let run = t.migrate("127.0.0.1", Some("require"), None).expect(0);
    assert_eq!(run.report["status"], "applied", "{}", run.report);
    assert!(t.has_ledger().await);
}

#[tokio::test]
async fn the_cli_default_prefer_uses_tls_when_the_server_offers_it() {
    let t = target(pg_tls()).await;
    let run = t.migrate("127.0.0.1", None, None).expect(0);
    assert_eq!(run.report["status"], "applied", "{}", run.report);
}

#[tokio::test]
async fn every_certificate_of_a_bundle_is_trusted_not_only_the_first() {
    let t = target(pg_tls()).await;
    let dir = tempfile::tempdir().unwrap();
    // The unrelated CA first: a reader that stops after one certificate would miss the right one.
    let both = format!("{}\n{}", read(&pki().other_ca()), read(&pki().ca()));
    let bundle = bundle_file(dir.path(), "two-cas.pem", &both);
    let run = t.migrate("127.0.0.1", Some("verify-full"), Some(&bundle)).expect(0);
    assert_eq!(run.report["status"], "applied", "{}", run.report);
}

// ---------------------------------------------------------------------------
// Connections that must fail (exit 1, ConnectionFailed)

#[tokio::test]
async fn plain_text_is_refused_by_the_tls_only_server() {
    let t = target(pg_tls()).await;
    let run = t.migrate("127.0.0.1", Some("disable"), None).expect(1);
    let message = run.failure("ConnectionFailed");
    // The server's own refusal, not some other failure: no pg_hba.conf line for plain text.
    assert!(message.contains("pg_hba.conf") && message.contains("no encryption"), "{message}");
    assert_eq!(run.report["error"]["sqlstate"], "28000", "{}", run.report);
    assert!(!t.has_ledger().await);
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused_even_from_the_trusted_ca() {
    let t = target(pg_tls_other_host()).await;
    for host in ["127.0.0.1", "localhost"] {
        for mode in ["require", "verify-full"] {
            let run = t.migrate(host, Some(mode), Some(&pki().ca())).expect(1);
            let message = run.certificate_refusal(host);
            // The chain is fine (same CA as the server that works): only the name can fail.
            assert!(message.contains("mismatch"), "{host} {mode}: {message}");
        }
    }
    assert!(!t.has_ledger().await);
    // The certificate is valid for the name it gives, so the refusal above is about the name.
    let cert = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(pki().dir().join("server-other.crt"))
        .output()
        .expect("run openssl");
    let sans = String::from_utf8_lossy(&cert.stdout);
    assert!(sans.contains(&format!("DNS:{OTHER_HOST}")) && !sans.contains("127.0.0.1"), "{sans}");
}

#[tokio::test]
async fn a_server_signed_by_a_ca_outside_the_bundle_is_refused() {
    let t = target(pg_tls()).await;
    for mode in ["require", "verify-full"] {
        let run = t.migrate("127.0.0.1", Some(mode), Some(&pki().other_ca())).expect(1);
        let message = run.certificate_refusal("127.0.0.1");
        assert!(
            !message.contains("mismatch"),
            "{mode}: the chain, not the name, is what fails: {message}"
        );
    }
    assert!(!t.has_ledger().await);
}

// ---------------------------------------------------------------------------
// Configuration errors (exit 2, ConfigError): found before connecting

#[tokio::test]
async fn verify_full_without_a_bundle_is_a_config_error() {
    let t = target(pg_tls()).await;
    let run = t.migrate("127.0.0.1", Some("verify-full"), None).expect(2);
    let message = run.failure("ConfigError");
    assert!(message.contains("DB_CA_BUNDLE") && message.contains("verify-full"), "{message}");
    assert!(!t.has_ledger().await);
}

#[tokio::test]
async fn an_unusable_bundle_file_is_a_config_error_naming_it() {
    // `require` would connect (and migrate) without the bundle: the bundle alone stops it.
    let t = target(pg_tls()).await;
    let dir = tempfile::tempdir().unwrap();
    let cert = read(&pki().ca());
    let cases = [
        (dir.path().join("missing.pem"), "No such file"),
        // A plausible mix-up: the CA's key instead of its certificate.
        (pki().ca_key(), "no PEM certificate"),
        (bundle_file(dir.path(), "empty.pem", ""), "no PEM certificate"),
        (bundle_file(dir.path(), "cut.pem", &cert[..cert.len() / 2]), "no END line"),
        (
            bundle_file(
                dir.path(),
                "garbled.pem",
                "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
            ),
            "certificate 1 is invalid",
        ),
    ];
    for (path, reason) in cases {
        let run = t.migrate("127.0.0.1", Some("require"), Some(&path)).expect(2);
        let message = run.failure("ConfigError");
        let shown = path.display().to_string();
        assert!(message.contains("DB_CA_BUNDLE") && message.contains(&shown), "{message}");
        assert!(message.contains(reason), "{shown}: expected {reason:?} in {message}");
    }
    assert!(!t.has_ledger().await);
}

#[tokio::test]
async fn the_embedded_bundle_is_only_there_when_built_in() {
    let t = target(pg_tls()).await;
    let run = t.migrate("127.0.0.1", Some("verify-full"), Some(Path::new("embedded")));
    // build.rs embeds certs/rds-ca-bundle.pem or EMBED_CA_BUNDLE when present at build time.
    let built_in =
        option_env!("EMBED_CA_BUNDLE").is_some() || Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/rds-ca-bundle.pem").is_file();
    if built_in {
        // Trusted are only the built-in CAs, and they did not sign the test server.
        let run = run.expect(1);
        run.certificate_refusal("127.0.0.1");
    } else {
        let run = run.expect(2);
        let message = run.failure("ConfigError");
        assert!(
            message.contains("certs/rds-ca-bundle.pem") && message.contains("building"),
            "{message}"
        );
    }
    assert!(!t.has_ledger().await);
}
