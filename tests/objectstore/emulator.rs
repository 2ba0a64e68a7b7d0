//! Storage emulators that run as programs of their own (Azurite, a GCS emulator), started by a
//! test on 127.0.0.1 and killed when the test lets go of them.
//!
//! `.ci/run` installs them; the tests install nothing. A test finds its emulator through a
//! variable (`CITYFORGE_AZURITE`, …), else on PATH, else where `.ci/run` puts it under
//! `~/.cache/cityforge-ci`. Where it is missing, the test says on stderr that it skipped and how
//! to enable it, and passes; with `CI=true` it fails instead, so that CI cannot skip silently (as
//! tests/ship does for kubernetes-validate).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How long an emulator may take to start listening (a Node.js start on a loaded 2-core machine
/// takes several seconds).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// An emulator program and how a person gets it.
pub struct Program {
    /// Its name in messages.
    pub name: &'static str,
    /// The variable that names the program's path.
    pub variable: &'static str,
    /// The command looked for on PATH.
    pub command: &'static str,
    /// Where `.ci/run` installs it, relative to the home folder.
    pub ci_path: &'static str,
    /// How to install it by hand, where `.ci/run` does (words after "or").
    pub install: &'static str,
}

impl Program {
    /// The program: the variable's path, else the command on PATH, else `.ci/run`'s copy.
    pub fn find(&self) -> Option<PathBuf> {
        if let Some(path) = std::env::var_os(self.variable).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .map(|dir| dir.join(self.command));
        let ci_copy = std::env::var_os("HOME").map(|home| Path::new(&home).join(self.ci_path));
        on_path.chain(ci_copy).find(|path| path.is_file())
    }

    /// The program, or `None` after saying on stderr that `test` is skipped and how to enable it
    /// (what it covers in `covers`); panics when `CI=true`.
    pub fn find_or_skip(&self, test: &str, covers: &str) -> Option<PathBuf> {
        if let Some(program) = self.find() {
            return Some(program);
        }
        let how = format!(
            "{} is not installed (neither {} nor `{}` on PATH): `bash .ci/run` installs it, or {}",
            self.name, self.variable, self.command, self.install
        );
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: {how} (CI=true: {covers} must be tested)"
        );
        // Past the test harness's capture (which hides a passing test's output), so that
        // `cargo test` shows it.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: objectstore {test} ({covers}); {how}"
        );
        None
    }
}

/// A port on 127.0.0.1 that was free a moment ago (for an emulator that cannot be told to pick
/// one itself; [`Emulator::start`] is retried when another process took it meanwhile).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// A running emulator, killed (and its folder removed) when dropped.
pub struct Emulator {
    child: Child,
    /// What it printed so far (stdout and stderr), for failure messages.
    output: Arc<Mutex<String>>,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// Its working folder (data, logs), removed after the emulator is killed.
    _dir: tempfile::TempDir,
}

impl Emulator {
    /// Starts `command` in a new folder (its working directory, passed to `args` as well) and
    /// waits until a line it prints gives the port it listens on (`listening` returns it), or
    /// [`START_TIMEOUT`] passes. The emulator dies with the thread that started it
    /// (`PR_SET_PDEATHSIG`), so a test that aborts leaves no server behind.
    pub fn start(
        mut command: Command,
        dir: tempfile::TempDir,
        listening: impl Fn(&str) -> Option<u16> + Send + Sync + 'static,
    ) -> Result<Emulator, String> {
        use std::os::unix::process::CommandExt;
        command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let output = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let listening = Arc::new(listening);
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            // Read to the end, so that the emulator never blocks on a full pipe.
            let (output, port_tx, listening) = (output.clone(), port_tx.clone(), listening.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Some(port) = listening(&line) {
                        let _ = port_tx.send(port);
                    }
                    let mut output = output.lock().unwrap();
                    output.push_str(&line);
                    output.push('\n');
                }
            });
        }
        drop(port_tx);
        let mut emulator = Emulator {
            child,
            output,
            port: 0,
            _dir: dir,
        };
        match port_rx.recv_timeout(START_TIMEOUT) {
            Ok(port) => {
                emulator.port = port;
                Ok(emulator)
            }
            Err(error) => {
                let status = emulator.child.try_wait().ok().flatten();
                let what = match (status, error) {
                    (Some(status), _) => format!("exited ({status})"),
                    (None, mpsc::RecvTimeoutError::Timeout) => {
                        format!("did not listen within {START_TIMEOUT:?}")
                    }
                    (None, mpsc::RecvTimeoutError::Disconnected) => {
                        "closed its output without saying where it listens".to_owned()
                    }
                };
                // Give the readers a moment to collect the last lines.
                std::thread::sleep(Duration::from_millis(100));
                Err(format!("{program} {what}:\n{}", emulator.output()))
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the emulator printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs the ring provider for the reqwest and object_store clients of the test process
/// (reqwest is built without a default TLS provider, see Cargo.toml).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
