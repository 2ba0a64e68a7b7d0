//! PostgreSQL connection settings found as libpq finds them (explicit parts, a URL, the `PG*`
//! variables, a password file) or from the seed's `POSTGRES_*` variables; TLS through `sslmode`
//! with rustls; and errors that name the server but never the password.

use std::fmt;
use std::path::PathBuf;

use tokio_postgres::config::{Host, SslMode as PgSslMode};
use tokio_postgres::Client;

use crate::text::error_chain;

mod mask;
mod pgpass;
pub mod sql;
mod tls;

pub use mask::mask_url;
#[cfg(test)]
use pgpass::pgpass_lookup;
use pgpass::pgpass_password;

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
        "no database given: set DATABASE_URL, PGHOST or PGDATABASE, or set POSTGRES_HOST, \
         POSTGRES_DB and POSTGRES_USER (with POSTGRES_PORT and POSTGRES_PASSWORD)"
    )]
    NoSettings,
    /// Some of the seed's `POSTGRES_*` variables are set but not all that name a database: a
    /// half-configured job must not fall back to a database nobody named.
    #[error(
        "the POSTGRES_* variables are incomplete: {missing} not set (set: {set}). Set {them} \
         (or name the database another way); nothing falls back to a default database"
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

/// The `application_name` of every connection unless the URL or `PGAPPNAME` names another: what a
/// DBA sees in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "cityforge-data";

/// Connection parts named on their own, like pg_dump's `-h -p -U -d`: each replaces the same part
/// of the URL, of the `PG*` variables and of the `POSTGRES_*` variables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionOverrides {
    /// Host name, IP address or Unix-socket directory.
    pub host: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// User name.
    pub user: Option<String>,
    /// Database name.
    pub dbname: Option<String>,
}

/// Connection parts under their libpq keywords, before defaults are applied.
#[derive(Default)]
struct Parts {
    host: Option<String>,
    port: Option<String>,
    user: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    application_name: Option<String>,
    /// Every other keyword, as `key=value` text ready for a conninfo string.
    other: Vec<String>,
}

impl Parts {
    /// Takes a keyword this module handles itself; false for any other.
    fn set(&mut self, key: &str, value: String) -> bool {
        let slot = match key {
            "host" => &mut self.host,
            "port" => &mut self.port,
            "user" => &mut self.user,
            "password" => &mut self.password,
            "dbname" => &mut self.dbname,
            "sslmode" => &mut self.sslmode,
            "sslrootcert" => &mut self.sslrootcert,
            "application_name" => &mut self.application_name,
            _ => return false,
        };
        *slot = Some(value).filter(|v| !v.is_empty());
        true
    }

    /// The parts of a `postgres://` URL or a libpq `key=value` string.
    fn parse(url: &str, bad: &dyn Fn(String) -> PgError) -> Result<Parts, PgError> {
        let mut parts = Parts::default();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
            let decode = |text: &str| {
                percent_encoding::percent_decode_str(text)
                    .decode_utf8()
                    .map(|t| t.into_owned())
                    .map_err(|e| bad(e.to_string()))
            };
            if let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) {
                // `[::1]` is the IPv6 address ::1; `%2Fvar%2Frun` a socket directory.
                let host = host.trim_start_matches('[').trim_end_matches(']');
                parts.host = Some(decode(host)?);
            }
            parts.port = parsed.port().map(|p| p.to_string());
            parts.set("user", decode(parsed.username())?);
            if let Some(password) = parsed.password() {
                parts.set("password", decode(password)?);
            }
            parts.set("dbname", decode(parsed.path().trim_start_matches('/'))?);
            for (key, value) in parsed.query_pairs() {
                if !parts.set(&key, value.to_string()) {
                    parts
                        .other
                        .push(format!("{key}={}", quote_conninfo(&value)));
                }
            }
        } else {
            for pair in url.split_whitespace() {
                let taken = match pair.split_once('=') {
                    Some((key, value)) => parts.set(key, unquote_conninfo(value)),
                    None => false,
                };
                if !taken {
                    parts.other.push(pair.to_owned());
                }
            }
        }
        Ok(parts)
    }

    /// Fills each part still missing from `source` (a lower-precedence layer).
    fn fill(&mut self, source: Parts) {
        let pairs = [
            (&mut self.host, source.host),
            (&mut self.port, source.port),
            (&mut self.user, source.user),
            (&mut self.password, source.password),
            (&mut self.dbname, source.dbname),
            (&mut self.sslmode, source.sslmode),
            (&mut self.sslrootcert, source.sslrootcert),
            (&mut self.application_name, source.application_name),
        ];
        for (slot, value) in pairs {
            if slot.is_none() {
                *slot = value;
            }
        }
    }

    /// libpq's environment variables.
    fn from_pg_env(env: Env<'_>) -> Parts {
        Parts {
            host: env("PGHOST"),
            port: env("PGPORT"),
            user: env("PGUSER"),
            password: env("PGPASSWORD"),
            dbname: env("PGDATABASE"),
            sslmode: env("PGSSLMODE"),
            sslrootcert: env("PGSSLROOTCERT"),
            application_name: env("PGAPPNAME"),
            other: Vec::new(),
        }
    }

    /// The seed's `POSTGRES_*` variables: none set, or an error unless host, database and user
    /// all are (port defaults to 5432, and the password may come from trust rules or .pgpass).
    fn from_seed_env(env: Env<'_>) -> Result<Option<Parts>, PgError> {
        let seed = [
            "POSTGRES_HOST",
            "POSTGRES_PORT",
            "POSTGRES_DB",
            "POSTGRES_USER",
            "POSTGRES_PASSWORD",
        ];
        let set: Vec<&str> = seed
            .into_iter()
            .filter(|name| env(name).is_some())
            .collect();
        if set.is_empty() {
            return Ok(None);
        }
        let missing: Vec<&str> = ["POSTGRES_HOST", "POSTGRES_DB", "POSTGRES_USER"]
            .into_iter()
            .filter(|name| env(name).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(PgError::IncompleteSeedVariables {
                them: if missing.len() == 1 { "it" } else { "them" },
                missing: missing.join(", "),
                set: set.join(", "),
            });
        }
        Ok(Some(Parts {
            host: env("POSTGRES_HOST"),
            port: env("POSTGRES_PORT"),
            user: env("POSTGRES_USER"),
            password: env("POSTGRES_PASSWORD"),
            dbname: env("POSTGRES_DB"),
            ..Parts::default()
        }))
    }
}

/// Reads an environment variable; empty counts as unset.
type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A value quoted for a libpq conninfo string.
fn quote_conninfo(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The value of a conninfo `key=value` pair, its quotes and escapes removed.
fn unquote_conninfo(value: &str) -> String {
    let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' {
            chars.next().unwrap_or(c)
        } else {
            c
        });
    }
    out
}

impl ConnectionSettings {
    /// Settings from a `postgres://` URL (with `sslmode` and `sslrootcert` query parameters) or a
    /// libpq `key=value` string, without reading the environment (but `$USER` for the user).
    pub fn from_url(url: &str) -> Result<ConnectionSettings, PgError> {
        let masked = mask_url(url);
        let bad = |reason: String| PgError::BadSettings {
            url: masked.clone(),
            reason,
        };
        let parts = Parts::parse(url, &bad)?;
        ConnectionSettings::build(parts, masked, None)
    }

    /// Settings as libpq and pg_dump find them, each part from the first source that names it:
    /// `overrides` (the -h -p -U -d flags), then `url` (`--database-url` / `DATABASE_URL`), then
    /// the `PG*` variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`,
    /// `PGSSLMODE`, `PGSSLROOTCERT`, `PGAPPNAME`), then, without a URL, the seed's `POSTGRES_*`
    /// variables. Without any password, the password file (`PGPASSFILE`, else `~/.pgpass`).
    ///
    /// Something must name the server or database: a URL, a host or database override, `PGHOST`
    /// or `PGDATABASE`, or the `POSTGRES_*` variables; `PGUSER`, `PGPORT` or `PGPASSWORD` alone
    /// are [`PgError::NoSettings`], never a connection to a database nobody named.
    pub fn resolve(
        url: Option<&str>,
        overrides: &ConnectionOverrides,
    ) -> Result<ConnectionSettings, PgError> {
        ConnectionSettings::resolve_in(url, overrides, &process_env)
    }

    fn resolve_in(
        url: Option<&str>,
        overrides: &ConnectionOverrides,
        env: Env<'_>,
    ) -> Result<ConnectionSettings, PgError> {
        let url = url.filter(|u| !u.is_empty());
        let mut parts = match url {
            Some(url) => {
                let masked = mask_url(url);
                Parts::parse(url, &|reason| PgError::BadSettings {
                    url: masked.clone(),
                    reason,
                })?
            }
            None => Parts::default(),
        };
        // Whatever else the URL holds (connect_timeout, options…) is kept as it is.
        let other = std::mem::take(&mut parts.other);
        let seed = match url {
            Some(_) => None,
            None => Parts::from_seed_env(env)?,
        };
        let named = url.is_some()
            || seed.is_some()
            || overrides.host.is_some()
            || overrides.dbname.is_some()
            || env("PGHOST").is_some()
            || env("PGDATABASE").is_some();
        if !named {
            return Err(PgError::NoSettings);
        }
        parts.fill(Parts::from_pg_env(env));
        if let Some(seed) = seed {
            parts.fill(seed);
        }
        let flags = Parts {
            host: overrides.host.clone(),
            port: overrides.port.map(|p| p.to_string()),
            user: overrides.user.clone(),
            dbname: overrides.dbname.clone(),
            ..Parts::default()
        };
        let mut merged = flags;
        merged.fill(parts);
        merged.other = other;
        ConnectionSettings::build(merged, String::new(), Some(env))
    }

    /// Applies libpq's defaults to `parts` (and, with `env`, the password file) and builds the
    /// settings; an empty `masked` is replaced by a password-free URL of the result.
    fn build(
        mut parts: Parts,
        masked: String,
        env: Option<Env<'_>>,
    ) -> Result<ConnectionSettings, PgError> {
        let host = parts.host.take().unwrap_or_else(|| "localhost".to_owned());
        let port = parts.port.take().unwrap_or_else(|| "5432".to_owned());
        let user = parts
            .user
            .take()
            .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "postgres".to_owned()));
        let dbname = parts.dbname.take().unwrap_or_else(|| user.clone());
        let masked = if masked.is_empty() {
            format!("postgres://{user}@{host}:{port}/{dbname}")
        } else {
            masked
        };
        let bad = |reason: String| PgError::BadSettings {
            url: masked.clone(),
            reason,
        };
        let mut config: tokio_postgres::Config = parts
            .other
            .join(" ")
            .parse()
            .map_err(|e: tokio_postgres::Error| bad(error_chain(&e)))?;
        for host in host.split(',') {
            config.host(host);
        }
        for port in port.split(',') {
            config.port(
                port.parse()
                    .map_err(|_| bad(format!("port \"{port}\" is not a port number")))?,
            );
        }
        config.user(&user);
        config.dbname(&dbname);
        let password = parts.password.take().or_else(|| {
            let first_host = host.split(',').next().unwrap_or_default();
            let first_port = port.split(',').next().unwrap_or_default();
            pgpass_password(env?, first_host, first_port, &dbname, &user)
        });
        if let Some(password) = password {
            config.password(password);
        }
        config.application_name(
            parts
                .application_name
                .as_deref()
                .unwrap_or(APPLICATION_NAME),
        );
        let ssl_mode = match &parts.sslmode {
            Some(mode) => {
                SslMode::parse(mode).ok_or_else(|| bad(format!("unknown sslmode \"{mode}\"")))?
            }
            None => SslMode::default(),
        };
        config.ssl_mode(match ssl_mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
        });
        Ok(ConnectionSettings {
            config,
            ssl_mode,
            root_cert: parts.sslrootcert.map(PathBuf::from),
            masked,
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
        let verify = matches!(self.ssl_mode, SslMode::VerifyCa | SslMode::VerifyFull)
            || (self.ssl_mode == SslMode::Require && self.root_cert.is_some());
        let checks = if !verify {
            tls::Checks::None
        } else if self.ssl_mode == SslMode::VerifyFull {
            tls::Checks::ChainAndName
        } else {
            tls::Checks::Chain
        };
        let config = tls::client_config(checks, self.root_cert.as_deref()).map_err(|reason| {
            PgError::Tls {
                server: self.server(),
                reason,
            }
        })?;
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
        if let Some(problem) = tls::certificate_problem(&error) {
            return PgError::Tls {
                server,
                reason: format!("error performing TLS handshake: {problem}"),
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

#[cfg(test)]
mod tests;
