//! What the cluster needs from the machine: PostgreSQL's binaries, an unprivileged user when we
//! are root, a private folder that user can reach, private files, and a free port.

use super::*;

/// Finds the directory holding `initdb` and `postgres`.
///
/// Order: `pg_config --bindir`, the highest `/usr/lib/postgresql/<version>/bin`, then `PATH`.
pub(super) fn find_bin_dir() -> Result<PathBuf, LocalPgError> {
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
pub(super) fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// The user to run PostgreSQL as: `None` unless we are root, then `postgres` or else `nobody`.
pub(super) fn unprivileged_user() -> Result<Option<RunAs>, LocalPgError> {
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
pub(super) fn lookup_user(name: &CStr) -> Option<RunAs> {
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
pub(super) fn create_root(run_as: Option<RunAs>) -> Result<PathBuf, LocalPgError> {
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
pub(super) fn traversable_by(dir: &Path, user: RunAs) -> bool {
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
pub(super) fn write_private_file(
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
pub(super) fn chown(path: &Path, user: RunAs) -> Result<(), LocalPgError> {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
        .map_err(|err| LocalPgError::io(format!("change the owner of {}", path.display()), err))
}

/// A port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close).
pub(super) fn free_port() -> Result<u16, LocalPgError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| LocalPgError::io("find a free TCP port on 127.0.0.1", err))
}

/// The last [`TAIL_BYTES`] of `text`, cut at a character boundary.
pub(super) fn tail(text: &str) -> String {
    let mut start = text.len().saturating_sub(TAIL_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for the URL path.
pub(super) fn percent_encode(text: &str) -> String {
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
