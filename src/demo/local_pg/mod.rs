//! Throwaway PostgreSQL cluster for the `demo` command, integration tests and benchmarks.
//!
//! Guarantees:
//! - Everything lives in one fresh folder, `cityforge-pg-<pid>-<random>` under
//!   [`std::env::temp_dir`] (or `/tmp` when we are root and the server user cannot reach
//!   `TMPDIR`): the data directory, the server log and, when its path is short enough, the Unix
//!   socket. Nothing else on the machine is touched.
//! - The server listens on 127.0.0.1 only, on a port that was free, and every connection (TCP or
//!   Unix socket) must log in as `postgres` with a random password (SCRAM-SHA-256).
//! - TLS is off unless [`LocalPg::start_with`] is given a certificate and key ([`ServerTls`]); it
//!   can then also refuse every TCP connection that does not use TLS.
//! - [`LocalPg::start`] returns only once a real login has succeeded (over TLS when TLS is on).
//! - [`LocalPg::stop`] and `Drop` shut the server down (fast shutdown, SIGKILL after 10 s) and
//!   delete the folder; [`LocalPg::shared`] does the same at process exit.
//! - If our process dies without cleaning up, the kernel sends the postmaster SIGQUIT
//!   (`PR_SET_PDEATHSIG`), so no server outlives us (only its folder may be left behind).
//! - Durability is switched off (`fsync`, `synchronous_commit`, `full_page_writes`): it is fast and
//!   must never hold data anyone cares about.
//! - It works as root: PostgreSQL refuses to run as root, so `initdb` and `postgres` then run as
//!   the `postgres` user (or `nobody` when that does not exist).

use std::ffi::{CStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rand::distributions::Alphanumeric;
use rand::Rng;

mod host;
mod process;
#[cfg(test)]
mod tests;

use host::*;
use process::*;

/// Superuser created by `initdb`.
const SUPERUSER: &str = "postgres";
/// Address the server listens on.
const HOST: &str = "127.0.0.1";
/// How long one start attempt may take before we give up on the server.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one login attempt may take; a live server answers in milliseconds, and a short
/// timeout keeps us from hanging on a foreign listener that took our port.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a fast shutdown may take before the postmaster is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times we pick a new port when the chosen one was taken before the server bound it.
const PORT_ATTEMPTS: u32 = 5;
/// Length of the generated superuser password (alphanumerics, so it is URL-safe).
const PASSWORD_LEN: usize = 32;
/// Longest Unix socket directory we use; `sun_path` holds 108 bytes including `/.s.PGSQL.<port>`.
const MAX_SOCKET_DIR_LEN: usize = 80;
/// How much of the server log or initdb output goes into an error message.
const TAIL_BYTES: usize = 4096;

/// Why a throwaway cluster could not be started or stopped.
///
/// It is `Clone` so that [`LocalPg::shared`] can hand the same failure to every caller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LocalPgError {
    /// No directory with `initdb` and `postgres` was found.
    #[error(
        "PostgreSQL server binaries (initdb, postgres) were not found via pg_config, \
         /usr/lib/postgresql/*/bin or PATH; install them (`apt-get install postgresql` on Debian/Ubuntu)"
    )]
    BinariesNotFound,
    /// We run as root and neither the `postgres` nor the `nobody` user exists.
    #[error(
        "running as root, but neither the `postgres` nor the `nobody` user exists to run \
         PostgreSQL as (it refuses to run as root)"
    )]
    NoUnprivilegedUser,
    /// An operating-system call failed.
    ///
    /// The cause is part of the message rather than `Error::source`, so it is printed exactly once
    /// however the error is displayed.
    #[error("could not {action}: {cause}")]
    Io {
        /// What we were doing, e.g. "create the temp folder /tmp/x".
        action: String,
        /// The underlying error (in an `Arc` so the enum stays `Clone`).
        cause: Arc<io::Error>,
    },
    /// `initdb` exited unsuccessfully.
    #[error("initdb failed ({status}); its output ends with:\n{output}")]
    Initdb {
        /// Exit status of the last attempt.
        status: String,
        /// Tail of initdb's combined output.
        output: String,
    },
    /// The server exited while we waited for it to accept logins.
    #[error(
        "the PostgreSQL server exited during startup ({status}); its log ends with:\n{log_tail}"
    )]
    ServerExited {
        /// Exit status of the postmaster.
        status: String,
        /// Tail of the server log.
        log_tail: String,
    },
    /// The server did not accept a login before the startup timeout.
    #[error(
        "the PostgreSQL server on port {port} did not accept a login within {timeout_secs} s \
         (last error: {last_error}); its log ends with:\n{log_tail}"
    )]
    StartupTimeout {
        /// Port the server was told to use.
        port: u16,
        /// The timeout that elapsed.
        timeout_secs: u64,
        /// The last connection or login error.
        last_error: String,
        /// Tail of the server log.
        log_tail: String,
    },
    /// Every port we picked was taken by someone else before the server could bind it.
    #[error(
        "the PostgreSQL server could not bind a free port in {attempts} attempts; \
         its log ends with:\n{log_tail}"
    )]
    PortsExhausted {
        /// How many ports were tried.
        attempts: u32,
        /// Tail of the server log of the last attempt.
        log_tail: String,
    },
}

impl LocalPgError {
    /// Wraps an I/O error with a description of what we were doing.
    fn io(action: impl Into<String>, cause: io::Error) -> Self {
        Self::Io {
            action: action.into(),
            cause: Arc::new(cause),
        }
    }
}

/// How [`LocalPg::start_with`] sets up a cluster; the default is what [`LocalPg::start`] does.
#[derive(Debug, Clone, Default)]
pub struct LocalPgOptions {
    /// TLS for TCP connections; `None` (the default) leaves TLS off.
    pub tls: Option<ServerTls>,
}

/// The server side of TLS: certificate, private key, and whether TLS is mandatory.
///
/// Both are written into the data directory, owned by the server user with mode 0600, and used
/// through `ssl = on`, `ssl_cert_file` and `ssl_key_file`.
#[derive(Clone)]
pub struct ServerTls {
    /// The server certificate in PEM, optionally followed by its intermediate certificates.
    pub cert_pem: String,
    /// The certificate's private key in PEM (PKCS#8, PKCS#1 or SEC1), unencrypted.
    pub key_pem: String,
    /// Refuse TCP connections without TLS: `pg_hba.conf` then has only `hostssl` lines for TCP,
    /// plus `hostnossl … reject`. Unix-socket connections are unaffected.
    pub require: bool,
}

impl std::fmt::Debug for ServerTls {
    /// Shows the certificate but not the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"(hidden)")
            .field("require", &self.require)
            .finish()
    }
}

/// A running throwaway PostgreSQL cluster; stopped and deleted on [`LocalPg::stop`] or drop.
///
/// Connect with [`LocalPg::url`], or run client tools from [`LocalPg::bin_dir`] with
/// [`LocalPg::host`], [`LocalPg::port`], [`LocalPg::user`] and `PGPASSWORD` = [`LocalPg::password`].
#[derive(Debug)]
pub struct LocalPg {
    /// Directory holding `initdb`, `postgres`, and usually `psql`, `pg_dump`, `pg_restore`.
    bin_dir: PathBuf,
    /// The temp folder that holds everything; deleted on stop.
    root: PathBuf,
    /// `<root>/data`, the cluster's data directory.
    data_dir: PathBuf,
    /// `<root>/postgres.log`, the server's stdout and stderr.
    log_path: PathBuf,
    /// TCP port on 127.0.0.1.
    port: u16,
    /// Superuser password.
    password: String,
    /// Whether the server speaks TLS (then the startup login check uses it).
    tls: bool,
    /// Mutable part, behind a mutex so the process-wide instance can be stopped through `&self`.
    state: Mutex<State>,
}

/// What [`LocalPg::stop`] still has to clean up.
#[derive(Debug, Default)]
struct State {
    /// The postmaster, while it may be running.
    child: Option<Child>,
    /// Whether the temp folder is gone.
    removed: bool,
}

/// The unprivileged account that runs PostgreSQL when we are root.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: libc::uid_t,
    gid: libc::gid_t,
}

impl LocalPg {
    /// Creates, starts and waits for a new cluster; blocks until a login works (up to ~30 s).
    ///
    /// Each call makes an independent cluster; tests that can share one should use
    /// [`LocalPg::shared`], which is much cheaper. Same as
    /// [`LocalPg::start_with`]`(LocalPgOptions::default())`: no TLS.
    pub fn start() -> Result<LocalPg, LocalPgError> {
        LocalPg::start_with(LocalPgOptions::default())
    }

    /// [`LocalPg::start`] with options, e.g. TLS with a given certificate and key.
    ///
    /// With TLS on, the startup login check connects over TLS (without verifying the
    /// certificate), so a bad certificate or key fails the start with the server's log.
    pub fn start_with(options: LocalPgOptions) -> Result<LocalPg, LocalPgError> {
        let bin_dir = find_bin_dir()?;
        let run_as = unprivileged_user()?;
        let root = create_root(run_as)?;
        // From here on, dropping `pg` (on any error) removes the folder and stops the server.
        let mut pg = LocalPg {
            bin_dir,
            data_dir: root.join("data"),
            log_path: root.join("postgres.log"),
            root,
            port: 0,
            password: rand::thread_rng()
                .sample_iter(&Alphanumeric)
                .take(PASSWORD_LEN)
                .map(char::from)
                .collect(),
            tls: options.tls.is_some(),
            state: Mutex::new(State::default()),
        };
        pg.initdb(run_as)?;
        let mut settings = Vec::new();
        if let Some(tls) = &options.tls {
            settings = pg.configure_tls(tls, run_as)?;
        }
        pg.launch(run_as, &settings)?;
        tracing::debug!(port = pg.port, root = %pg.root.display(), "throwaway PostgreSQL is ready");
        Ok(pg)
    }

    /// The process-wide cluster, started on first call and stopped and deleted at process exit.
    ///
    /// Meant for test binaries: all tests share one server. Statics are never dropped, so cleanup
    /// runs from a `libc::atexit` handler (normal exit, including the test harness's
    /// `process::exit`); if the process is killed instead, `PR_SET_PDEATHSIG` still stops the
    /// server. A failed start is remembered: every later call returns the same error.
    pub fn shared() -> Result<&'static LocalPg, LocalPgError> {
        static SHARED: OnceLock<Result<LocalPg, LocalPgError>> = OnceLock::new();

        extern "C" fn stop_shared_at_exit() {
            // A panic must not unwind into libc; there is nothing left to do with it anyway.
            let _ = std::panic::catch_unwind(|| {
                if let Some(Ok(pg)) = SHARED.get() {
                    if let Err(err) = pg.shutdown() {
                        tracing::warn!(%err, "could not clean up the shared throwaway PostgreSQL");
                    }
                }
            });
        }

        SHARED
            .get_or_init(|| {
                let pg = LocalPg::start()?;
                // SAFETY: registers a plain `extern "C" fn()` that never unwinds.
                if unsafe { libc::atexit(stop_shared_at_exit) } != 0 {
                    tracing::warn!(
                        root = %pg.root.display(),
                        "could not register the exit handler; the shared PostgreSQL folder will be left behind"
                    );
                }
                Ok(pg)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// TCP port the server listens on (on [`LocalPg::host`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Host the server listens on: always `127.0.0.1`.
    pub fn host(&self) -> &str {
        HOST
    }

    /// Superuser name: always `postgres`.
    pub fn user(&self) -> &str {
        SUPERUSER
    }

    /// Superuser password: random alphanumerics, so safe in URLs and shell arguments.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Directory of the PostgreSQL binaries, so callers can run `psql`, `pg_dump`, `pg_restore`.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The cluster's data directory (`PGDATA`); removed on stop.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server log (its stdout and stderr); useful when a test fails. Removed on stop.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Connection URL for database `dbname` as the superuser:
    /// `postgres://postgres:<password>@127.0.0.1:<port>/<dbname>`.
    ///
    /// It has no `sslmode`: [`crate::pg::ConnectionSettings`] then uses TLS when the server offers
    /// it (`prefer`); clients that never try TLS are refused when [`ServerTls::require`] is set.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@{HOST}:{}/{}",
            self.password,
            self.port,
            percent_encode(dbname)
        )
    }

    /// Stops the server (fast shutdown, SIGKILL after 10 s) and deletes the temp folder.
    ///
    /// Idempotent; drop does the same but can only log failures.
    pub fn stop(&mut self) -> Result<(), LocalPgError> {
        self.shutdown()
    }

    /// [`LocalPg::stop`] through `&self`, for the process-wide instance.
    fn shutdown(&self) -> Result<(), LocalPgError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let stopped = match state.child.take() {
            Some(mut child) => stop_child(&mut child),
            None => Ok(()),
        };
        if !state.removed {
            match fs::remove_dir_all(&self.root) {
                Ok(()) => state.removed = true,
                Err(err) if err.kind() == io::ErrorKind::NotFound => state.removed = true,
                Err(err) => {
                    return Err(LocalPgError::io(
                        format!("remove the temp folder {}", self.root.display()),
                        err,
                    ))
                }
            }
        }
        stopped
    }

    /// A command for one of our binaries, running as `run_as` from inside the temp folder.
    fn command(&self, program: &str, run_as: Option<RunAs>) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        // The unprivileged user may not be able to read our working directory (e.g. under /root).
        cmd.current_dir(&self.root)
            .env("HOME", &self.root)
            .env_remove("PGDATA")
            .stdin(Stdio::null());
        if let Some(user) = run_as {
            // std applies gid, then clears supplementary groups (setgroups(0)), then uid, all
            // before any pre_exec closure; so no explicit setgroups is needed.
            cmd.uid(user.uid).gid(user.gid);
        }
        cmd
    }

    /// Runs `initdb` into the data directory, with the random password and SCRAM auth.
    fn initdb(&self, run_as: Option<RunAs>) -> Result<(), LocalPgError> {
        let pwfile = self.root.join("pwfile");
        write_private_file(&pwfile, &self.password, run_as)?;
        let mut pwfile_arg = OsString::from("--pwfile=");
        pwfile_arg.push(&pwfile);

        let mut outcome = Ok(());
        // C.UTF-8 gives UTF-8 character classes; older systems lack it, so fall back to C.
        for locale in ["--locale=C.UTF-8", "--no-locale"] {
            // initdb removes what it created on failure; make sure anyway before retrying.
            if let Err(err) = fs::remove_dir_all(&self.data_dir) {
                if err.kind() != io::ErrorKind::NotFound {
                    outcome = Err(LocalPgError::io(
                        format!("clear the data directory {}", self.data_dir.display()),
                        err,
                    ));
                    break;
                }
            }
            let output = self
                .command("initdb", run_as)
                .arg("-D")
                .arg(&self.data_dir)
                .args(["-U", SUPERUSER, "--auth=scram-sha-256", "-E", "UTF8"])
                .arg(locale)
                .arg("--no-sync")
                .arg(&pwfile_arg)
                .output()
                .map_err(|err| {
                    LocalPgError::io(
                        format!("run {}", self.bin_dir.join("initdb").display()),
                        err,
                    )
                })?;
            if output.status.success() {
                outcome = Ok(());
                break;
            }
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            tracing::debug!(locale, output = %text, "initdb failed");
            outcome = Err(LocalPgError::Initdb {
                status: output.status.to_string(),
                output: tail(&text),
            });
        }
        if let Err(err) = fs::remove_file(&pwfile) {
            tracing::warn!(%err, path = %pwfile.display(), "could not remove the initdb password file");
        }
        outcome
    }

    /// Writes the certificate and key into the data directory (mode 0600, owned by the server
    /// user), rewrites `pg_hba.conf` when TLS is required, and returns the `-c` settings that turn
    /// TLS on.
    fn configure_tls(
        &self,
        tls: &ServerTls,
        run_as: Option<RunAs>,
    ) -> Result<Vec<OsString>, LocalPgError> {
        let cert = self.data_dir.join("server.crt");
        let key = self.data_dir.join("server.key");
        write_private_file(&cert, &tls.cert_pem, run_as)?;
        write_private_file(&key, &tls.key_pem, run_as)?;
        if tls.require {
            // First match wins; a `hostssl` line never matches a plain connection, so every TCP
            // connection without TLS reaches a `reject`. The file already belongs to the server
            // user with mode 0600; overwriting keeps both.
            let hba = self.data_dir.join("pg_hba.conf");
            let rules = "\
# Written by cityforge-data's LocalPg: TLS required for TCP connections.
# TYPE    DATABASE     USER  ADDRESS       METHOD
local     all          all                 scram-sha-256
local     replication  all                 scram-sha-256
hostssl   all          all   127.0.0.1/32  scram-sha-256
hostssl   replication  all   127.0.0.1/32  scram-sha-256
hostnossl all          all   all           reject
hostnossl replication  all   all           reject
";
            fs::write(&hba, rules)
                .map_err(|err| LocalPgError::io(format!("write {}", hba.display()), err))?;
        }
        // `-c name=value` takes the value literally (no quoting), so any path works.
        let path_setting = |name: &str, path: &Path| {
            let mut setting = OsString::from(name);
            setting.push("=");
            setting.push(path);
            setting
        };
        Ok(vec![
            OsString::from("ssl=on"),
            path_setting("ssl_cert_file", &cert),
            path_setting("ssl_key_file", &key),
        ])
    }

    /// Spawns the postmaster with the extra `-c` `settings` and waits for a login, picking a new
    /// port if ours was taken.
    fn launch(&mut self, run_as: Option<RunAs>, settings: &[OsString]) -> Result<(), LocalPgError> {
        let root_str = self.root.to_string_lossy();
        // The socket dir goes into a comma-separated GUC list and `sun_path`; skip awkward paths.
        let socket_dir = if root_str.len() <= MAX_SOCKET_DIR_LEN
            && !root_str.contains([',', ' ', '"', '\''])
            && self.root.to_str().is_some()
        {
            root_str.into_owned()
        } else {
            String::new()
        };

        let mut log_tail = String::new();
        for attempt in 1..=PORT_ATTEMPTS {
            let port = free_port()?;
            let log = File::create(&self.log_path).map_err(|err| {
                LocalPgError::io(format!("create {}", self.log_path.display()), err)
            })?;
            let log_for_stdout = log.try_clone().map_err(|err| {
                LocalPgError::io(format!("duplicate {}", self.log_path.display()), err)
            })?;
            if let Some(user) = run_as {
                chown(&self.log_path, user)?;
            }

            let mut cmd = self.command("postgres", run_as);
            cmd.arg("-D")
                .arg(&self.data_dir)
                .arg("-p")
                .arg(port.to_string())
                .arg("-c")
                .arg(format!("listen_addresses={HOST}"))
                .arg("-c")
                .arg(format!("unix_socket_directories={socket_dir}"));
            for setting in [
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
                "max_connections=100",
                "shared_buffers=128MB",
                "log_min_messages=warning",
            ] {
                cmd.arg("-c").arg(setting);
            }
            for setting in settings {
                cmd.arg("-c").arg(setting);
            }
            cmd.stdout(log_for_stdout).stderr(log);
            set_parent_death_signal(&mut cmd);

            let child = spawn_from_keeper(cmd).map_err(|err| {
                LocalPgError::io(
                    format!("start {}", self.bin_dir.join("postgres").display()),
                    err,
                )
            })?;
            self.port = port;
            self.state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .child = Some(child);

            match self.wait_ready()? {
                Ready::Yes => return Ok(()),
                Ready::PortTaken => {
                    log_tail = self.log_tail();
                    tracing::debug!(port, attempt, "port was taken; retrying with another");
                }
            }
        }
        Err(LocalPgError::PortsExhausted {
            attempts: PORT_ATTEMPTS,
            log_tail,
        })
    }

    /// Polls until the server accepts a real login, exits, or the startup timeout elapses.
    fn wait_ready(&self) -> Result<Ready, LocalPgError> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut last_error = String::from("the port never accepted a TCP connection");
        loop {
            if let Some(status) = self.reap_if_exited()? {
                let log_tail = self.log_tail();
                if log_tail.contains("could not bind") {
                    return Ok(Ready::PortTaken);
                }
                return Err(LocalPgError::ServerExited {
                    status: status.to_string(),
                    log_tail,
                });
            }
            if Instant::now() >= deadline {
                return Err(LocalPgError::StartupTimeout {
                    port: self.port,
                    timeout_secs: STARTUP_TIMEOUT.as_secs(),
                    last_error,
                    log_tail: self.log_tail(),
                });
            }
            // Cheap check first; a login attempt needs a runtime and a thread.
            match TcpStream::connect_timeout(&addr, Duration::from_millis(250)) {
                Ok(stream) => {
                    drop(stream);
                    match try_login(self.port, &self.password, self.tls) {
                        Ok(()) => return Ok(Ready::Yes),
                        Err(err) => last_error = err,
                    }
                }
                Err(err) => last_error = format!("TCP connect to {addr} failed: {err}"),
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Returns the postmaster's exit status (and forgets it) if it has exited.
    fn reap_if_exited(&self) -> Result<Option<ExitStatus>, LocalPgError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(child) = state.child.as_mut() else {
            return Ok(None);
        };
        let status = child.try_wait().map_err(|err| {
            LocalPgError::io("check whether the PostgreSQL server is running", err)
        })?;
        if status.is_some() {
            state.child = None;
        }
        Ok(status)
    }

    /// The last few KiB of the server log, or a note saying why it could not be read.
    fn log_tail(&self) -> String {
        let read = || -> io::Result<String> {
            let mut file = File::open(&self.log_path)?;
            let len = file.metadata()?.len();
            let tail_len = u64::try_from(TAIL_BYTES).unwrap_or(u64::MAX);
            file.seek(SeekFrom::Start(len.saturating_sub(tail_len)))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        match read() {
            Ok(text) if text.trim().is_empty() => "(the log is empty)".to_owned(),
            Ok(text) => text,
            Err(err) => format!("(could not read {}: {err})", self.log_path.display()),
        }
    }
}

impl Drop for LocalPg {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown() {
            tracing::warn!(%err, "could not clean up a throwaway PostgreSQL");
        }
    }
}

/// Outcome of one start attempt that did not fail outright.
enum Ready {
    /// A login worked.
    Yes,
    /// The server could not bind its port (someone took it after we probed it).
    PortTaken,
}
