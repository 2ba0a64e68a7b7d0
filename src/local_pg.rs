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

/// Sends SIGINT (fast shutdown), waits up to [`SHUTDOWN_TIMEOUT`], then SIGKILLs and reaps.
fn stop_child(child: &mut Child) -> Result<(), LocalPgError> {
    let wait_error = |err| LocalPgError::io("wait for the PostgreSQL server to exit", err);
    if child.try_wait().map_err(wait_error)?.is_some() {
        return Ok(());
    }
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: plain syscall; the child is not reaped yet, so the pid still names it.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        while Instant::now() < deadline {
            if child.try_wait().map_err(wait_error)?.is_some() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!(pid, "PostgreSQL ignored fast shutdown for 10 s; killing it");
    }
    if let Err(err) = child.kill() {
        // InvalidInput means it already exited, which is what we want.
        if err.kind() != io::ErrorKind::InvalidInput {
            return Err(LocalPgError::io("kill the PostgreSQL server", err));
        }
    }
    child.wait().map_err(wait_error)?;
    Ok(())
}

/// Makes the kernel send the postmaster SIGQUIT (immediate shutdown) when its parent dies.
///
/// The "parent" here is the spawning *thread*, not the process, which is why servers are spawned
/// from the long-lived keeper thread (see [`spawn_from_keeper`]).
fn set_parent_death_signal(cmd: &mut Command) {
    // SAFETY: getpid is always safe.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure only makes async-signal-safe syscalls and does not allocate. It runs after
    // std's setuid, which matters: changing credentials clears the death signal.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // If we died between fork and prctl, the signal will never come: give up now.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// A spawn request for the keeper thread, with where to send the result.
type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` from a dedicated thread that lives as long as the process.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process. Tests
/// (and tokio's blocking pool) run on short-lived threads, so spawning there would kill the server
/// as soon as that thread finished. The keeper thread blocks on its channel forever (the sender is
/// a static that is never dropped), so the signal only fires when the whole process dies.
fn spawn_from_keeper(cmd: Command) -> io::Result<Child> {
    static KEEPER: Mutex<Option<mpsc::Sender<SpawnRequest>>> = Mutex::new(None);

    let (reply_tx, reply_rx) = mpsc::channel();
    {
        let mut keeper = KEEPER.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = match keeper.take() {
            Some(sender) => sender,
            None => {
                let (tx, rx) = mpsc::channel::<SpawnRequest>();
                thread::Builder::new()
                    .name("local-pg-keeper".to_owned())
                    .spawn(move || {
                        for (mut cmd, reply) in rx {
                            // The requester only goes away if it panicked; nothing to do then.
                            let _ = reply.send(cmd.spawn());
                        }
                    })?;
                tx
            }
        };
        let sent = sender.send((cmd, reply_tx));
        *keeper = Some(sender);
        sent.map_err(|_| io::Error::other("the PostgreSQL keeper thread has stopped"))?;
    }
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("the PostgreSQL keeper thread has stopped"))?
}

/// Logs in with the crate's own client and runs `SELECT 1`; returns the error text on failure.
///
/// With `tls`, the login uses `sslmode=require` (encrypted, certificate not verified), so it works
/// whether or not plain connections are refused; otherwise `sslmode=disable`.
///
/// Runs on its own thread with its own runtime so that it works even when [`LocalPg::start`] is
/// called from inside an async runtime (a nested `block_on` would panic).
fn try_login(port: u16, password: &str, tls: bool) -> Result<(), String> {
    let ssl_mode = if tls { "require" } else { "disable" };
    let url = format!(
        "postgres://{SUPERUSER}:{password}@{HOST}:{port}/postgres?sslmode={ssl_mode}&connect_timeout={}",
        LOGIN_TIMEOUT.as_secs()
    );
    thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|err| format!("could not build a tokio runtime: {err}"))?;
                runtime.block_on(async {
                    let login = async {
                        let settings = crate::pg::ConnectionSettings::from_url(&url)
                            .map_err(|err| err.to_string())?;
                        let client = settings.connect().await.map_err(|err| err.to_string())?;
                        let result = client
                            .simple_query("SELECT 1")
                            .await
                            .map(drop)
                            .map_err(|err| crate::pg::error_chain(&err));
                        drop(client);
                        // Let the connection task (spawned by `connect`) see the client gone and
                        // say goodbye, so the server does not log an aborted connection.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        result
                    };
                    match tokio::time::timeout(LOGIN_TIMEOUT, login).await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(err)) => Err(format!("login failed: {err}")),
                        Err(_) => Err(format!(
                            "login timed out after {} s",
                            LOGIN_TIMEOUT.as_secs()
                        )),
                    }
                })
            })
            .join()
            .unwrap_or_else(|_| Err("the login check panicked".to_owned()))
    })
}

/// Finds the directory holding `initdb` and `postgres`.
///
/// Order: `pg_config --bindir`, the highest `/usr/lib/postgresql/<version>/bin`, then `PATH`.
fn find_bin_dir() -> Result<PathBuf, LocalPgError> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();

    // Debian's pg_config may come from libpq-dev without the server, hence the check.
    if let Ok(output) = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    {
        if output.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
            if has_server(&dir) {
                return Ok(dir);
            }
        }
    }

    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        let best = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let version = parse_version(&entry.file_name().to_string_lossy())?;
                let dir = entry.path().join("bin");
                has_server(&dir).then_some((version, dir))
            })
            .max_by(|a, b| a.0.cmp(&b.0));
        if let Some((_, dir)) = best {
            return Ok(dir);
        }
    }

    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| has_server(dir)))
        .ok_or(LocalPgError::BinariesNotFound)
}

/// Parses a version directory name such as `15` or `9.6` into comparable numbers.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// The user to run PostgreSQL as: `None` unless we are root, then `postgres` or else `nobody`.
fn unprivileged_user() -> Result<Option<RunAs>, LocalPgError> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    lookup_user(c"postgres")
        .or_else(|| lookup_user(c"nobody"))
        .map(Some)
        .ok_or(LocalPgError::NoUnprivilegedUser)
}

/// Looks up a user's uid and primary gid with the thread-safe `getpwnam_r`.
fn lookup_user(name: &CStr) -> Option<RunAs> {
    // SAFETY: all-zero is a valid `passwd` (null pointers, zero ids); it is only read on success.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: every pointer is valid for the call, and `buf.len()` is the buffer's real size.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut entry,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(RunAs {
        uid: entry.pw_uid,
        gid: entry.pw_gid,
    })
}

/// Creates the unique temp folder (mode 0700), owned by `run_as` when given.
fn create_root(run_as: Option<RunAs>) -> Result<PathBuf, LocalPgError> {
    let mut base = std::env::temp_dir();
    if let Some(user) = run_as {
        // The server user must be able to reach the folder (TMPDIR may be under /root).
        if !traversable_by(&base, user) {
            tracing::debug!(base = %base.display(), "temp dir is not reachable by the server user; using /tmp");
            base = PathBuf::from("/tmp");
        }
    }
    let mut attempts = 0;
    let root = loop {
        let suffix: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(10)
            .map(char::from)
            .collect();
        let candidate = base.join(format!("cityforge-pg-{}-{suffix}", std::process::id()));
        match fs::DirBuilder::new().mode(0o700).create(&candidate) {
            Ok(()) => break candidate,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempts < 10 => {
                attempts += 1;
            }
            Err(err) => {
                return Err(LocalPgError::io(
                    format!("create the temp folder {}", candidate.display()),
                    err,
                ))
            }
        }
    };
    if let Some(user) = run_as {
        if let Err(err) = chown(&root, user) {
            // Nothing else will clean it up: no LocalPg exists yet.
            let _ = fs::remove_dir(&root);
            return Err(err);
        }
    }
    Ok(root)
}

/// Whether `user` can traverse every directory from `/` down to `dir`.
fn traversable_by(dir: &Path, user: RunAs) -> bool {
    use std::os::unix::fs::MetadataExt;
    dir.ancestors().all(|ancestor| {
        fs::metadata(ancestor).is_ok_and(|meta| {
            let mode = meta.permissions().mode();
            mode & 0o001 != 0
                || (meta.uid() == user.uid && mode & 0o100 != 0)
                || (meta.gid() == user.gid && mode & 0o010 != 0)
        })
    })
}

/// Writes `contents` to a new file only its owner can read, owned by `run_as` when given.
fn write_private_file(
    path: &Path,
    contents: &str,
    run_as: Option<RunAs>,
) -> Result<(), LocalPgError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|err| LocalPgError::io(format!("create {}", path.display()), err))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|err| LocalPgError::io(format!("write {}", path.display()), err))?;
    if let Some(user) = run_as {
        chown(path, user)?;
    }
    Ok(())
}

/// Gives `path` to `user`.
fn chown(path: &Path, user: RunAs) -> Result<(), LocalPgError> {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
        .map_err(|err| LocalPgError::io(format!("change the owner of {}", path.display()), err))
}

/// A port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close).
fn free_port() -> Result<u16, LocalPgError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| LocalPgError::io("find a free TCP port on 127.0.0.1", err))
}

/// The last [`TAIL_BYTES`] of `text`, cut at a character boundary.
fn tail(text: &str) -> String {
    let mut start = text.len().saturating_sub(TAIL_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for the URL path.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connects to `url`, spawning the connection driver.
    async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    #[tokio::test]
    async fn starts_accepts_the_password_and_refuses_a_wrong_one() {
        let pg = LocalPg::start().expect("start a throwaway PostgreSQL");
        assert_eq!(pg.host(), "127.0.0.1");
        assert_eq!(pg.user(), "postgres");
        assert!(pg.password().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(
            pg.url("postgres"),
            format!(
                "postgres://postgres:{}@127.0.0.1:{}/postgres",
                pg.password(),
                pg.port()
            )
        );
        assert!(pg.bin_dir().join("initdb").is_file());
        assert!(pg.data_dir().join("PG_VERSION").is_file());
        assert!(pg.log_path().is_file());

        let client = connect(&pg.url("postgres")).await.expect("log in");
        let row = client.query_one("SELECT 1", &[]).await.expect("SELECT 1");
        assert_eq!(row.get::<_, i32>(0), 1);

        let wrong = format!(
            "postgres://postgres:wrong{}@127.0.0.1:{}/postgres",
            pg.password(),
            pg.port()
        );
        let err = connect(&wrong)
            .await
            .map(drop)
            .expect_err("a wrong password must be refused");
        assert_eq!(
            err.as_db_error().map(|db| db.code()),
            Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
            "unexpected error: {err}"
        );
    }

    #[test]
    fn stop_and_drop_remove_everything() {
        let mut pg = LocalPg::start().expect("start a throwaway PostgreSQL");
        let root = pg.root.clone();
        let data_dir = pg.data_dir().to_path_buf();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, pg.port()));
        assert!(TcpStream::connect(addr).is_ok());

        pg.stop().expect("stop");
        pg.stop().expect("stop again (idempotent)");
        drop(pg);
        assert!(!data_dir.exists(), "{} still exists", data_dir.display());
        assert!(!root.exists(), "{} still exists", root.display());
        assert!(
            TcpStream::connect(addr).is_err(),
            "{addr} still accepts connections"
        );
    }

    #[test]
    fn drop_alone_stops_the_server() {
        let pg = LocalPg::start().expect("start a throwaway PostgreSQL");
        let root = pg.root.clone();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, pg.port()));
        drop(pg);
        assert!(!root.exists(), "{} still exists", root.display());
        assert!(
            TcpStream::connect(addr).is_err(),
            "{addr} still accepts connections"
        );
    }

    #[test]
    fn shared_is_one_instance() {
        let first = LocalPg::shared().expect("start the shared PostgreSQL");
        let second = LocalPg::shared().expect("get the shared PostgreSQL again");
        assert!(std::ptr::eq(first, second));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, first.port()));
        assert!(TcpStream::connect(addr).is_ok());
    }

    #[test]
    fn server_survives_the_thread_that_started_it() {
        // PDEATHSIG is per thread: a server started from a finished thread must still be up.
        let pg = thread::spawn(|| LocalPg::start().expect("start a throwaway PostgreSQL"))
            .join()
            .expect("the starting thread panicked");
        thread::sleep(Duration::from_millis(300));
        assert_eq!(try_login(pg.port(), pg.password(), false), Ok(()));
    }

    #[test]
    fn a_bad_certificate_fails_the_start_with_the_server_log() {
        let tls = ServerTls {
            cert_pem: "not a certificate".to_owned(),
            key_pem: "not a key".to_owned(),
            require: true,
        };
        assert!(
            !format!("{tls:?}").contains("not a key"),
            "Debug shows the key"
        );
        let err = LocalPg::start_with(LocalPgOptions { tls: Some(tls) })
            .expect_err("a server with a bad certificate must not start");
        assert!(
            matches!(&err, LocalPgError::ServerExited { log_tail, .. } if log_tail.contains("certificate")),
            "{err}"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(parse_version("15"), Some(vec![15]));
        assert!(parse_version("9.6") < parse_version("10"));
        assert_eq!(parse_version("15-beta"), None);
        assert_eq!(percent_encode("a b/ü"), "a%20b%2F%C3%BC");
        assert_eq!(tail("short"), "short");
        assert!(find_bin_dir().is_ok_and(|dir| dir.join("postgres").is_file()));
    }
}
