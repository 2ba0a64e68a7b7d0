//! The server process: starting it from a keeper thread that outlives no one, logging in to
//! know it is ready, and stopping it.

use super::*;

/// Sends SIGINT (fast shutdown), waits up to [`SHUTDOWN_TIMEOUT`], then SIGKILLs and reaps.
pub(super) fn stop_child(child: &mut Child) -> Result<(), LocalPgError> {
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
pub(super) fn set_parent_death_signal(cmd: &mut Command) {
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
pub(super) fn spawn_from_keeper(cmd: Command) -> io::Result<Child> {
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
pub(super) fn try_login(port: u16, password: &str, tls: bool) -> Result<(), String> {
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
                            .map_err(|err| crate::text::error_chain(&err));
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
