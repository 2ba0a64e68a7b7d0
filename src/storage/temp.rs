//! Temporary files beside a target: private names that carry the writing process's id, removed
//! when dropped unless published, and swept from a folder once their process is gone.

use super::*;

/// Removes the temporary file when dropped, unless it was published.
pub(super) struct TempFile {
    path: Option<PathBuf>,
}

impl TempFile {
    /// Owns `path`: it is removed when this is dropped.
    pub(super) fn new(path: PathBuf) -> TempFile {
        TempFile { path: Some(path) }
    }

    /// Lets the file outlive this (it was published or must stay); returns its name.
    pub(super) fn keep(&mut self) -> Option<PathBuf> {
        self.path.take()
    }

    /// The temporary name (empty once kept).
    pub(super) fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A private temporary name beside `path`: `.NAME.PID-RAND.tmp`, so a later run can tell whether
/// the process that wrote it is gone ([`temp_file_pid`]).
pub(super) fn temp_path_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".to_owned());
    let suffix: u32 = rand::random();
    path.with_file_name(format!(".{name}.{}-{suffix:08x}.tmp", std::process::id()))
}

/// The process id in one of our temporary names, `.NAME.PID-RAND.tmp` with RAND eight lower-case
/// hex digits ([`temp_path_for`]); `None` for any other name.
pub(super) fn temp_file_pid(name: &str) -> Option<u32> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (base, tag) = inner.rsplit_once('.')?;
    let (pid, random) = tag.split_once('-')?;
    let hex_digits = random.len() == 8
        && random
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let digits = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    if base.is_empty() || !hex_digits || !digits {
        return None;
    }
    pid.parse().ok().filter(|&pid| pid > 0)
}

/// Whether process `pid` no longer exists: `kill(pid, 0)` fails with ESRCH. A process we may not
/// signal (EPERM) exists.
pub(super) fn process_is_gone(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let result = unsafe { libc::kill(pid, 0) };
    result != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Removes the temporary files that killed runs (SIGKILL, power loss) left in `folder`: regular
/// files with our naming pattern ([`temp_file_pid`]) whose process no longer exists. Files of a
/// running process, and any other file, are left alone. They hold personal data, so each removal
/// is logged. Never fails: a file that cannot be removed is logged and skipped.
///
/// The process check sees this PID namespace only: folders shared between containers with
/// separate PID namespaces should not be written by exports in both at the same time.
pub(super) fn remove_stale_temp_files(folder: &Path) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(temp_file_pid) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_file()) || !process_is_gone(pid) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => warn!(
                file = %path.display(),
                pid,
                "Removed a temporary file left by an interrupted run."
            ),
            Err(error) => warn!(
                file = %path.display(),
                error = %error,
                "A temporary file left by an interrupted run could not be removed."
            ),
        }
    }
}

pub(super) fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
