//! PostgreSQL connection settings: a URL, `DATABASE_URL`, or the seed's `POSTGRES_*` variables;
//! TLS through `sslmode` with rustls; and errors that name the server but never the password.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::{Host, SslMode as PgSslMode};
use tokio_postgres::Client;

/// Errors from connecting to PostgreSQL; messages name the server, never the password.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The connection settings cannot be understood.
    #[error("invalid connection settings {url}: {reason}")]
    BadSettings {
        /// The settings, password masked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// No connection settings were given at all.
    #[error(
        "no database given: pass --database-url, set DATABASE_URL, or set POSTGRES_HOST, \
         POSTGRES_PORT, POSTGRES_DB, POSTGRES_USER and POSTGRES_PASSWORD"
    )]
    NoSettings,
    /// Some of the seed's `POSTGRES_*` variables are set but not all that name a database: a
    /// half-configured job must not fall back to a database nobody named.
    #[error(
        "the POSTGRES_* variables are incomplete: {missing} not set (set: {set}). Set {them} \
         (or pass --database-url); nothing falls back to a default database"
    )]
    IncompleteSeedVariables {
        /// The variables missing, comma-separated.
        missing: String,
        /// The variables that are set, comma-separated.
        set: String,
        /// "it" or "them".
        them: &'static str,
    },
    /// The server could not be reached.
    #[error("could not connect to PostgreSQL at {server}: {reason}")]
    Unreachable {
        /// host:port.
        server: String,
        /// Why (connection refused, timeout…).
        reason: String,
    },
    /// The server refused the login.
    #[error("PostgreSQL at {server} refused the login of user \"{user}\": {reason}")]
    Auth {
        /// host:port.
        server: String,
        /// The user name.
        user: String,
        /// The server's message.
        reason: String,
    },
    /// The database does not exist.
    #[error("database \"{database}\" does not exist on the PostgreSQL server at {server}")]
    NoDatabase {
        /// host:port.
        server: String,
        /// The database name.
        database: String,
    },
    /// The TLS set-up failed (certificate files, handshake).
    #[error("TLS to PostgreSQL at {server} failed: {reason}")]
    Tls {
        /// host:port.
        server: String,
        /// Why.
        reason: String,
    },
    /// Any other connection error.
    #[error("connecting to PostgreSQL at {server} failed: {reason}")]
    Other {
        /// host:port.
        server: String,
        /// The error chain.
        reason: String,
    },
}

/// `sslmode` as libpq defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS when the server offers it, without verifying the certificate (libpq's default).
    #[default]
    Prefer,
    /// Require TLS, without verifying the certificate (unless a root certificate is given).
    Require,
    /// Require TLS and a certificate signed by a trusted root.
    VerifyCa,
    /// Require TLS, a trusted certificate and a host name that matches it.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            // libpq's `allow` tries plain first, then TLS; `prefer` reaches the same servers.
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// Where and how to connect. Its `Display` masks the password, so it can be logged.
#[derive(Clone)]
pub struct ConnectionSettings {
    config: tokio_postgres::Config,
    ssl_mode: SslMode,
    root_cert: Option<PathBuf>,
    masked: String,
}

impl fmt::Display for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked)
    }
}

impl fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionSettings({})", self.masked)
    }
}

/// Replaces the password of a `postgres://user:password@…` URL (or a `password=` query
/// parameter) with `***`.
pub fn mask_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            if parsed.query_pairs().any(|(key, _)| key == "password") {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(key, value)| {
                        let value = if key == "password" {
                            "***".to_owned()
                        } else {
                            value.into_owned()
                        };
                        (key.into_owned(), value)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) => mask_unparsed(url),
    }
}

/// Masks the password of a connection string that does not parse (a bad port, a malformed host):
/// the user-info of `scheme://user:password@…` up to the last `@`, and every `password=` value of
/// a key=value string or query. Anything it cannot place is hidden whole.
fn mask_unparsed(text: &str) -> String {
    let mut masked = match text.find("://") {
        Some(scheme_end) => {
            let authority_start = scheme_end + 3;
            match text[authority_start..].rfind('@') {
                Some(at) => {
                    let at = authority_start + at;
                    let userinfo = &text[authority_start..at];
                    match userinfo.find(':') {
                        Some(colon) => {
                            format!("{}:***{}", &text[..authority_start + colon], &text[at..])
                        }
                        None => text.to_owned(),
                    }
                }
                None => text.to_owned(),
            }
        }
        None => text.to_owned(),
    };
    // `password=value` in a key=value string or a query, quoted or not.
    let mut from = 0;
    while let Some(found) = masked[from..].to_ascii_lowercase().find("password=") {
        let value_start = from + found + "password=".len();
        let rest = &masked[value_start..];
        let value_len = if let Some(quoted) = rest.strip_prefix('\'') {
            quoted.find('\'').map_or(rest.len(), |end| end + 2)
        } else {
            rest.find(|c: char| c.is_whitespace() || c == '&' || c == '#')
                .unwrap_or(rest.len())
        };
        masked.replace_range(value_start..value_start + value_len, "***");
        from = value_start + 3;
    }
    masked
}

impl ConnectionSettings {
    /// Settings from a `postgres://` URL (with `sslmode` and `sslrootcert` query parameters) or a
    /// libpq `key=value` string.
    pub fn from_url(url: &str) -> Result<ConnectionSettings, PgError> {
        let masked = mask_url(url);
        let bad = |reason: String| PgError::BadSettings {
            url: masked.clone(),
            reason,
        };
        let mut ssl_mode = SslMode::default();
        let mut root_cert = None;
        let config_text = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
            let mut kept = Vec::new();
            for (key, value) in parsed.query_pairs() {
                match key.as_ref() {
                    "sslmode" => {
                        ssl_mode = SslMode::parse(&value)
                            .ok_or_else(|| bad(format!("unknown sslmode \"{value}\"")))?;
                    }
                    "sslrootcert" => root_cert = Some(PathBuf::from(value.as_ref())),
                    _ => kept.push((key.into_owned(), value.into_owned())),
                }
            }
            if kept.is_empty() {
                parsed.set_query(None);
            } else {
                parsed.query_pairs_mut().clear().extend_pairs(kept);
            }
            parsed.to_string()
        } else {
            let mut kept = Vec::new();
            for pair in url.split_whitespace() {
                match pair.split_once('=') {
                    Some(("sslmode", value)) => {
                        ssl_mode = SslMode::parse(value)
                            .ok_or_else(|| bad(format!("unknown sslmode \"{value}\"")))?;
                    }
                    Some(("sslrootcert", value)) => root_cert = Some(PathBuf::from(value)),
                    _ => kept.push(pair),
                }
            }
            kept.join(" ")
        };
        let mut config: tokio_postgres::Config = config_text
            .parse()
            .map_err(|e: tokio_postgres::Error| bad(error_chain(&e)))?;
        config.ssl_mode(match ssl_mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
        });
        if config.get_hosts().is_empty() {
            config.host("localhost");
        }
        if config.get_user().is_none() {
            config.user(std::env::var("USER").unwrap_or_else(|_| "postgres".to_owned()));
        }
        Ok(ConnectionSettings {
            config,
            ssl_mode,
            root_cert,
            masked,
        })
    }

    /// Settings from `--database-url` / `DATABASE_URL` when given, else from the `POSTGRES_*`
    /// variables that the seed's Kubernetes CronJob sets.
    pub fn resolve(url: Option<&str>) -> Result<ConnectionSettings, PgError> {
        if let Some(url) = url.filter(|u| !u.is_empty()) {
            return ConnectionSettings::from_url(url);
        }
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let seed = [
            "POSTGRES_HOST",
            "POSTGRES_PORT",
            "POSTGRES_DB",
            "POSTGRES_USER",
            "POSTGRES_PASSWORD",
        ];
        let set: Vec<&str> = seed
            .into_iter()
            .filter(|name| var(name).is_some())
            .collect();
        if set.is_empty() {
            return Err(PgError::NoSettings);
        }
        // Host, database and user name the target; port (5432) and password (trust, .pgpass)
        // may be left out.
        let missing: Vec<&str> = ["POSTGRES_HOST", "POSTGRES_DB", "POSTGRES_USER"]
            .into_iter()
            .filter(|name| var(name).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(PgError::IncompleteSeedVariables {
                them: if missing.len() == 1 { "it" } else { "them" },
                missing: missing.join(", "),
                set: set.join(", "),
            });
        }
        let host = var("POSTGRES_HOST");
        let db = var("POSTGRES_DB");
        let mut config = tokio_postgres::Config::new();
        let host = host.unwrap_or_else(|| "localhost".to_owned());
        config.host(&host);
        let port = match var("POSTGRES_PORT") {
            Some(port) => port.parse::<u16>().map_err(|_| PgError::BadSettings {
                url: format!("POSTGRES_PORT={port}"),
                reason: "not a port number".to_owned(),
            })?,
            None => 5432,
        };
        config.port(port);
        let user = var("POSTGRES_USER").unwrap_or_else(|| "postgres".to_owned());
        config.user(&user);
        if let Some(password) = var("POSTGRES_PASSWORD") {
            config.password(password);
        }
        let db = db.unwrap_or_else(|| user.clone());
        config.dbname(&db);
        let ssl_mode = match var("PGSSLMODE") {
            Some(mode) => SslMode::parse(&mode).ok_or_else(|| PgError::BadSettings {
                url: format!("PGSSLMODE={mode}"),
                reason: "unknown sslmode".to_owned(),
            })?,
            None => SslMode::default(),
        };
        config.ssl_mode(match ssl_mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            _ => PgSslMode::Require,
        });
        Ok(ConnectionSettings {
            masked: format!("postgres://{user}@{host}:{port}/{db}"),
            config,
            ssl_mode,
            root_cert: var("PGSSLROOTCERT").map(PathBuf::from),
        })
    }

    /// `host:port` of the first host, for messages.
    pub fn server(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}")
    }

    /// The database name the settings point at.
    pub fn database(&self) -> String {
        self.config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or("postgres")
            .to_owned()
    }

    /// The same server with another database.
    pub fn with_database(&self, database: &str) -> ConnectionSettings {
        let mut settings = self.clone();
        settings.config.dbname(database);
        settings.masked = format!("{} (database {database})", self.masked);
        settings
    }

    /// Opens a connection (driving it on a background task) with the session in UTC.
    ///
    /// As in libpq, `sslmode` is ignored on Unix-domain sockets: the server never offers TLS there.
    pub async fn connect(&self) -> Result<Client, PgError> {
        let server = self.server();
        let hosts = self.config.get_hosts();
        // Without this, rustls fails before the first byte ("invalid dns name"): a socket path
        // is no server name, so even the default `prefer` could not reach a local socket.
        let unix_only = !hosts.is_empty() && hosts.iter().all(|h| matches!(h, Host::Unix(_)));
        let client = if self.ssl_mode == SslMode::Disable || unix_only {
            let mut config = self.config.clone();
            config.ssl_mode(PgSslMode::Disable);
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| self.classify(e))?;
            spawn_connection(connection);
            client
        } else {
            let tls = self.tls_connector()?;
            let (client, connection) = self
                .config
                .connect(tls)
                .await
                .map_err(|e| self.classify(e))?;
            spawn_connection(connection);
            client
        };
        client
            .batch_execute("SET TIME ZONE 'UTC'; SET client_min_messages = warning")
            .await
            .map_err(|e| PgError::Other {
                server,
                reason: error_chain(&e),
            })?;
        Ok(client)
    }

    /// Asks the server to cancel whatever `client`'s connection is running (a query blocked on a
    /// lock, say), so the connection can roll back and close. Best effort.
    pub async fn cancel(&self, token: &tokio_postgres::CancelToken) {
        let done = if self.ssl_mode == SslMode::Disable {
            token.cancel_query(tokio_postgres::NoTls).await.is_ok()
        } else {
            match self.tls_connector() {
                Ok(tls) => token.cancel_query(tls).await.is_ok(),
                Err(_) => false,
            }
        };
        if !done {
            tracing::debug!(server = %self.server(), "Could not cancel the running query.");
        }
    }

    fn tls_connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgError> {
        let tls_error = |reason: String| PgError::Tls {
            server: self.server(),
            reason,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(e.to_string()))?;
        let verify = matches!(self.ssl_mode, SslMode::VerifyCa | SslMode::VerifyFull)
            || (self.ssl_mode == SslMode::Require && self.root_cert.is_some());
        let config = if verify {
            let mut roots = rustls::RootCertStore::empty();
            match &self.root_cert {
                Some(path) => {
                    let pem = std::fs::read(path).map_err(|e| {
                        tls_error(format!("cannot read sslrootcert {}: {e}", path.display()))
                    })?;
                    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                        let cert = cert.map_err(|e| {
                            tls_error(format!("bad certificate in {}: {e}", path.display()))
                        })?;
                        roots.add(cert).map_err(|e| {
                            tls_error(format!("bad certificate in {}: {e}", path.display()))
                        })?;
                    }
                }
                None => {
                    for cert in rustls_native_certs::load_native_certs().certs {
                        let _ = roots.add(cert);
                    }
                }
            }
            if roots.is_empty() {
                return Err(tls_error(
                    "no trusted root certificate: set sslrootcert".to_owned(),
                ));
            }
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| tls_error(e.to_string()))?;
            if self.ssl_mode == SslMode::VerifyFull {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(IgnoreHostname(webpki)))
                    .with_no_client_auth()
            }
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth()
        };
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }

    fn classify(&self, error: tokio_postgres::Error) -> PgError {
        let server = self.server();
        if let Some(db) = error.as_db_error() {
            let code = db.code().code();
            return match code {
                "28P01" | "28000" => PgError::Auth {
                    server,
                    user: self.config.get_user().unwrap_or_default().to_owned(),
                    reason: db.message().to_owned(),
                },
                "3D000" => PgError::NoDatabase {
                    server,
                    database: self.database(),
                },
                _ => PgError::Other {
                    server,
                    reason: db.message().to_owned(),
                },
            };
        }
        let chain = error_chain(&error);
        let lower = chain.to_lowercase();
        if lower.contains("tls") || lower.contains("certificate") || lower.contains("ssl") {
            PgError::Tls {
                server,
                reason: chain,
            }
        } else if lower.contains("password missing") {
            PgError::Auth {
                server,
                user: self.config.get_user().unwrap_or_default().to_owned(),
                reason: "the server asks for a password and none was given".to_owned(),
            }
        } else if std::error::Error::source(&error)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some()
            || lower.contains("error connecting")
        {
            PgError::Unreachable {
                server,
                reason: chain,
            }
        } else {
            PgError::Other {
                server,
                reason: chain,
            }
        }
    }
}

fn spawn_connection<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %error_chain(&error), "PostgreSQL connection ended.");
        }
    });
}

/// The whole cause chain of an error on one line (tokio-postgres' `Display` leaves out causes).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `sslmode=require`/`prefer`: encryption without certificate checks, as libpq does.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain must lead to a trusted root; the host name is not checked.
#[derive(Debug)]
struct IgnoreHostname(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for IgnoreHostname {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_of_strings_that_do_not_parse() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let shapes = [
            "postgres://sec:{pw}@127.0.0.1:99999/cft",
            "postgres://sec:{pw}@127.0.0.1:65536/cft",
            "postgresql://sec:{pw}@host:1:2/cft",
            "postgres://sec:{pw}@[::1/cft",
            "postgres://sec:{pw}@[fe80::1%eth0]:x/cft",
            "postgres://sec:{pw}@ho st/cft",
            "postgres://sec:{pw}@/cft?port=abc",
            "postgres://u@h/db?sslmode=nope&password={pw}",
            "host=h port=99999 user=u password={pw} dbname=d",
            "host=h user=u password='{pw}' dbname=d port=x",
            "postgres://sec:{pw}@h:5432/db",
        ];
        for round in 0..300 {
            let length = rng.gen_range(1..24);
            // Passwords of letters, digits and the punctuation people put in them.
            let alphabet: Vec<char> = "abcXYZ0129!$%^*()-_+[]{};.,~".chars().collect();
            let password: String = (0..length)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect::<String>()
                + &format!("Pw{round}");
            for shape in shapes {
                let url = shape.replace("{pw}", &password);
                let masked = mask_url(&url);
                assert!(!masked.contains(&password), "{url} -> {masked}");
                if let Err(error) = ConnectionSettings::from_url(&url) {
                    let text = error.to_string();
                    assert!(!text.contains(&password), "{url} -> {text}");
                }
            }
        }
    }

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert!(!mask_url("postgres://u@h/db?password=secret&x=1").contains("secret"));
        let settings = ConnectionSettings::from_url("postgres://u:secret@h:5432/db").unwrap();
        assert!(!settings.to_string().contains("secret"));
        assert!(!format!("{settings:?}").contains("secret"));
    }

    #[test]
    fn parses_sslmode_and_root_cert() {
        let settings = ConnectionSettings::from_url(
            "postgres://u:p@db.example:6543/app?sslmode=verify-full&sslrootcert=/tmp/ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(settings.ssl_mode, SslMode::VerifyFull);
        assert_eq!(settings.root_cert, Some(PathBuf::from("/tmp/ca.pem")));
        assert_eq!(settings.server(), "db.example:6543");
        assert_eq!(settings.database(), "app");
        assert_eq!(settings.config.get_application_name(), Some("x"));
    }

    #[test]
    fn rejects_unknown_sslmode_without_leaking_password() {
        let error = ConnectionSettings::from_url("postgres://u:secret@h/db?sslmode=sometimes")
            .unwrap_err()
            .to_string();
        assert!(error.contains("sometimes"), "{error}");
        assert!(!error.contains("secret"), "{error}");
    }
}
