//! TLS against a real PostgreSQL: every `sslmode` through `ConnectionSettings`, and the CLI once.
//!
//! Certificates come from rcgen: a test CA, server certificates it signs, and an unrelated CA.
//! Two throwaway clusters refuse TCP connections without TLS: one's certificate names
//! `localhost` and `127.0.0.1`, the other's only `localhost` (for `verify-ca` versus
//! `verify-full`). Two more present self-signed certificates for `localhost` (one marked as a CA,
//! as `openssl req -x509` makes them, one not), trusted by giving the certificate itself as
//! `sslrootcert`, as libpq allows. They are shared by all tests and stopped at process exit.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use cityforge_data::demo::local_pg::{LocalPg, LocalPgOptions, ServerTls};
use cityforge_data::pg::{ConnectionSettings, PgError};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// A certificate authority: its certificate (PEM) and what signs with it.
struct Ca {
    /// The CA certificate in PEM.
    pem: String,
    /// Subject and key, to sign server certificates.
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A new self-signed CA named `name`.
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("generate a CA key");
        let cert = params.self_signed(&key).expect("self-sign the CA");
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses) and its key, both PEM.
    fn server_cert(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("valid names");
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("generate a server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the server certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// A self-signed server certificate for `localhost` and its key, both PEM; `is_ca` as `openssl req
/// -x509` sets it (CA:TRUE) or not at all.
fn self_signed(is_ca: bool) -> (String, String) {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("valid name");
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = if is_ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::NoCa
    };
    let key = KeyPair::generate().expect("generate a key");
    let cert = params.self_signed(&key).expect("self-sign");
    (cert.pem(), key.serialize_pem())
}

/// Everything the tests share; dropped (clusters stopped, files removed) at process exit.
struct Fixture {
    /// Certificate files (`ca.pem`, `other-ca.pem`).
    dir: tempfile::TempDir,
    /// TLS required; certificate for `localhost` and `127.0.0.1`, signed by `ca.pem`.
    both_names: LocalPg,
    /// TLS required; certificate for `localhost` only, signed by `ca.pem`.
    localhost_only: LocalPg,
    /// TLS required; a self-signed certificate for `localhost` marked as a CA
    /// (`self-signed-ca.pem`).
    self_signed_ca: LocalPg,
    /// TLS required; a self-signed certificate for `localhost` without the CA mark
    /// (`self-signed.pem`).
    self_signed: LocalPg,
}

impl Fixture {
    fn start() -> Fixture {
        let ca = Ca::new("cityforge test CA");
        let other_ca = Ca::new("unrelated test CA");
        let dir = tempfile::tempdir().expect("create a temp folder");
        std::fs::write(dir.path().join("ca.pem"), &ca.pem).expect("write ca.pem");
        std::fs::write(dir.path().join("other-ca.pem"), &other_ca.pem).expect("write other-ca.pem");

        let serve = |(cert_pem, key_pem): (String, String)| {
            LocalPg::start_with(LocalPgOptions {
                tls: Some(ServerTls {
                    cert_pem,
                    key_pem,
                    require: true,
                }),
            })
            .unwrap_or_else(|err| panic!("start a TLS PostgreSQL: {err}"))
        };
        let self_signed_server = |is_ca: bool, file: &str| {
            let (cert_pem, key_pem) = self_signed(is_ca);
            std::fs::write(dir.path().join(file), &cert_pem).expect("write the certificate");
            serve((cert_pem, key_pem))
        };
        Fixture {
            both_names: serve(ca.server_cert(&["localhost", "127.0.0.1"])),
            localhost_only: serve(ca.server_cert(&["localhost"])),
            self_signed_ca: self_signed_server(true, "self-signed-ca.pem"),
            self_signed: self_signed_server(false, "self-signed.pem"),
            dir,
        }
    }

    /// The test CA that signed both servers' certificates.
    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A CA that signed nothing the servers present.
    fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }
}

/// The shared fixture, started on first use.
fn fixture() -> Arc<Fixture> {
    static FIXTURE: Mutex<Option<Arc<Fixture>>> = Mutex::new(None);
    static REGISTER: std::sync::Once = std::sync::Once::new();

    extern "C" fn stop_at_exit() {
        // A panic must not unwind into libc.
        let _ = std::panic::catch_unwind(|| {
            // Test threads are done by now, so this is the last reference: dropping it stops the
            // clusters and deletes their folders and the certificate files.
            let fixture = FIXTURE
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            drop(fixture);
        });
    }

    let mut slot = FIXTURE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(fixture) = slot.as_ref() {
        return Arc::clone(fixture);
    }
    let fixture = Arc::new(Fixture::start());
    *slot = Some(Arc::clone(&fixture));
    REGISTER.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn()` that never unwinds.
        assert_eq!(unsafe { libc::atexit(stop_at_exit) }, 0, "register atexit");
    });
    fixture
}

/// The URL of database `db` on `pg` with `host` in place of 127.0.0.1 and the given query
/// parameters (`sslmode`, `sslrootcert`, …).
fn url(pg: &LocalPg, host: &str, db: &str, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&pg.url(db)).expect("LocalPg URL parses");
    url.set_host(Some(host)).expect("valid host");
    if !params.is_empty() {
        url.query_pairs_mut().extend_pairs(params);
    }
    url.to_string()
}

/// Connects with `ConnectionSettings` and returns whether the session is encrypted.
async fn ssl_in_use(url: &str) -> Result<bool, PgError> {
    let client = ConnectionSettings::from_url(url)?.connect().await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("query pg_stat_ssl");
    Ok(row.get(0))
}

/// Connects to `url`, which must fail; returns the error and checks its message is one line that
/// names `server` and does not hold `password`.
async fn refused(url: &str, server: &str, password: &str) -> PgError {
    let err = ssl_in_use(url)
        .await
        .expect_err("the connection must be refused");
    let message = err.to_string();
    assert!(!message.contains('\n'), "not one line: {message}");
    assert!(
        message.contains(server),
        "does not name {server}: {message}"
    );
    assert!(!message.contains(password), "holds the password: {message}");
    err
}

/// `host:port` as error messages show it.
fn server(host: &str, pg: &LocalPg) -> String {
    format!("{host}:{}", pg.port())
}

/// Whether `err` is a TLS error about the certificate, in words (no Rust names such as
/// `UnknownIssuer`).
fn is_certificate_error(err: &PgError) -> bool {
    let message = err.to_string();
    assert!(
        !message.contains("Issuer") && !message.contains("Other("),
        "a Rust name in the message: {message}"
    );
    matches!(err, PgError::Tls { .. }) && message.contains("the server's certificate")
}

/// Path as a URL query value.
fn text(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

#[test]
fn certificate_and_key_belong_to_the_server_user_only() {
    use std::os::unix::fs::MetadataExt;
    let fx = fixture();
    let data_dir = fx.both_names.data_dir();
    let owner = std::fs::metadata(data_dir).expect("data dir").uid();
    for name in ["server.crt", "server.key"] {
        let meta = std::fs::metadata(data_dir.join(name)).expect(name);
        assert_eq!(meta.mode() & 0o777, 0o600, "{name}");
        assert_eq!(meta.uid(), owner, "{name} is not owned by the server user");
    }
    let hba = std::fs::read_to_string(data_dir.join("pg_hba.conf")).expect("pg_hba.conf");
    let rules: Vec<Vec<&str>> = hba
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert!(
        rules.contains(&vec!["hostnossl", "all", "all", "all", "reject"]),
        "{hba}"
    );
    assert!(
        rules.iter().all(|rule| rule[0] != "host"),
        "a plain `host` line lets connections without TLS in: {hba}"
    );
}

#[tokio::test]
async fn require_encrypts_without_verifying() {
    let fx = fixture();
    let pg = &fx.both_names;
    let url = url(pg, "127.0.0.1", "postgres", &[("sslmode", "require")]);
    assert!(ssl_in_use(&url).await.expect("sslmode=require connects"));
}

#[tokio::test]
async fn prefer_is_the_default_and_encrypts() {
    let fx = fixture();
    let pg = &fx.both_names;
    let default = url(pg, "127.0.0.1", "postgres", &[]);
    assert!(ssl_in_use(&default)
        .await
        .expect("default sslmode connects"));
    let prefer = url(pg, "127.0.0.1", "postgres", &[("sslmode", "prefer")]);
    assert!(ssl_in_use(&prefer).await.expect("sslmode=prefer connects"));
}

#[tokio::test]
async fn verify_full_accepts_the_right_ca_for_both_names() {
    let fx = fixture();
    let pg = &fx.both_names;
    let ca = fx.ca();
    for host in ["localhost", "127.0.0.1"] {
        let url = url(
            pg,
            host,
            "postgres",
            &[("sslmode", "verify-full"), ("sslrootcert", text(&ca))],
        );
        assert!(
            ssl_in_use(&url)
                .await
                .unwrap_or_else(|err| panic!("verify-full via {host}: {err}")),
            "verify-full via {host}"
        );
    }
}

#[tokio::test]
async fn an_unrelated_ca_is_refused_in_every_verifying_mode() {
    let fx = fixture();
    let pg = &fx.both_names;
    let other_ca = fx.other_ca();
    // `require` with a root certificate verifies the chain, as libpq does.
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = url(
            pg,
            "localhost",
            "postgres",
            &[("sslmode", mode), ("sslrootcert", text(&other_ca))],
        );
        let err = refused(&url, &server("localhost", pg), pg.password()).await;
        assert!(
            is_certificate_error(&err),
            "sslmode={mode}: not a certificate error: {err:?}"
        );
    }
}

#[tokio::test]
async fn verify_ca_ignores_the_host_name_but_verify_full_does_not() {
    let fx = fixture();
    let pg = &fx.localhost_only;
    let ca = fx.ca();
    let root = ("sslrootcert", text(&ca));

    let verify_ca = url(
        pg,
        "127.0.0.1",
        "postgres",
        &[("sslmode", "verify-ca"), root],
    );
    assert!(ssl_in_use(&verify_ca)
        .await
        .expect("verify-ca connects although the certificate does not name 127.0.0.1"));

    let full_by_name = url(
        pg,
        "localhost",
        "postgres",
        &[("sslmode", "verify-full"), root],
    );
    assert!(ssl_in_use(&full_by_name)
        .await
        .expect("verify-full connects via the name on the certificate"));

    let full_by_ip = url(
        pg,
        "127.0.0.1",
        "postgres",
        &[("sslmode", "verify-full"), root],
    );
    let err = refused(&full_by_ip, &server("127.0.0.1", pg), pg.password()).await;
    assert!(is_certificate_error(&err), "{err:?}");
    assert!(
        err.to_string().contains("not valid for name"),
        "does not say the name does not match: {err}"
    );
}

/// A self-signed server certificate given as `sslrootcert` is trusted as libpq trusts it, marked
/// as a CA or not (rustls alone refuses the first as `CaUsedAsEndEntity`); `verify-full` still
/// checks its name, and another certificate is still refused (issue 10.11).
#[tokio::test]
async fn a_self_signed_server_certificate_given_as_root_is_trusted_like_libpq() {
    let fx = fixture();
    for (pg, file) in [
        (&fx.self_signed_ca, "self-signed-ca.pem"),
        (&fx.self_signed, "self-signed.pem"),
    ] {
        let own = fx.dir.path().join(file);
        let root = ("sslrootcert", text(&own));
        for (mode, host) in [
            ("verify-full", "localhost"),
            ("verify-ca", "localhost"),
            ("verify-ca", "127.0.0.1"),
            ("require", "127.0.0.1"),
        ] {
            let url = url(pg, host, "postgres", &[("sslmode", mode), root]);
            assert!(
                ssl_in_use(&url)
                    .await
                    .unwrap_or_else(|err| panic!("{file}, sslmode={mode} via {host}: {err}")),
                "{file}, sslmode={mode} via {host}"
            );
        }
        let by_ip = url(
            pg,
            "127.0.0.1",
            "postgres",
            &[("sslmode", "verify-full"), root],
        );
        let err = refused(&by_ip, &server("127.0.0.1", pg), pg.password()).await;
        assert!(
            err.to_string().contains("not valid for name"),
            "{file}: does not say the name does not match: {err}"
        );
        let ca = fx.ca();
        for other in [ca.as_path(), fx.other_ca().as_path()] {
            let url = url(
                pg,
                "localhost",
                "postgres",
                &[("sslmode", "verify-full"), ("sslrootcert", text(other))],
            );
            let err = refused(&url, &server("localhost", pg), pg.password()).await;
            assert!(is_certificate_error(&err), "{file}: {err:?}");
        }
    }
}

#[tokio::test]
async fn disable_is_refused_by_pg_hba() {
    let fx = fixture();
    let pg = &fx.both_names;
    let url = url(pg, "127.0.0.1", "postgres", &[("sslmode", "disable")]);
    let err = refused(&url, &server("127.0.0.1", pg), pg.password()).await;
    assert!(
        matches!(err, PgError::Auth { .. } | PgError::Other { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("pg_hba.conf") && message.contains("no encryption"),
        "does not say why: {message}"
    );
}

#[tokio::test]
async fn cli_exports_over_verified_tls() {
    let fx = fixture();
    let pg = &fx.both_names;
    let db = "tls_cli";

    let admin = ConnectionSettings::from_url(&url(pg, "127.0.0.1", "postgres", &[]))
        .unwrap()
        .connect()
        .await
        .expect("connect as admin");
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .expect("create the database");
    let client = ConnectionSettings::from_url(&url(pg, "127.0.0.1", db, &[]))
        .unwrap()
        .connect()
        .await
        .expect("connect to the new database");
    client
        .batch_execute(
            "CREATE TABLE gadget (id integer PRIMARY KEY, name text NOT NULL);
             INSERT INTO gadget VALUES (1, 'lamp'), (2, 'kettle');",
        )
        .await
        .expect("create a table");
    drop(client);

    let ca = fx.ca();
    let database_url = url(
        pg,
        "localhost",
        db,
        &[("sslmode", "verify-full"), ("sslrootcert", text(&ca))],
    );
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cityforge-data"));
    for var in [
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_DB",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
        "PGPASSFILE",
        "PGSSLMODE",
        "PGSSLROOTCERT",
        "PGAPPNAME",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    let output = command
        .args(["export", "-o", "-", "--naming", "auto", "--sort"])
        .env("DATABASE_URL", &database_url)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run cityforge-data");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "export failed: {stderr}");
    assert!(!stderr.contains(pg.password()), "password in the logs");
    let document: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is a JSON document");
    let rows = document["data"]["gadget"]
        .as_array()
        .unwrap_or_else(|| panic!("no \"gadget\" under \"data\": {document}"));
    assert_eq!(rows.len(), 2, "{document}");
    assert_eq!(rows[0]["name"], "lamp", "{document}");
    assert_eq!(rows[1]["name"], "kettle", "{document}");
}

#[tokio::test]
async fn unix_sockets_ignore_sslmode_like_libpq() {
    let fx = fixture();
    let pg = &fx.both_names;
    // LocalPg puts the socket next to the data directory when that path is short enough.
    let dir = pg.data_dir().parent().expect("LocalPg root");
    if !dir.join(format!(".s.PGSQL.{}", pg.port())).exists() {
        eprintln!(
            "skipped: {} has no Unix socket (path too long)",
            dir.display()
        );
        return;
    }
    // The server never offers TLS on a socket (and `pg_hba.conf` lets `local` in without it).
    for mode in ["prefer", "require", "verify-full"] {
        let conninfo = format!(
            "host={} port={} user=postgres password={} dbname=postgres sslmode={mode}",
            dir.display(),
            pg.port(),
            pg.password()
        );
        let ssl = ssl_in_use(&conninfo)
            .await
            .unwrap_or_else(|err| panic!("sslmode={mode} over the Unix socket: {err}"));
        assert!(!ssl, "sslmode={mode}: TLS on a Unix socket?");
    }
}
