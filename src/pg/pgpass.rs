//! libpq's password file (`PGPASSFILE`, else `~/.pgpass`): the first line matching host, port,
//! database and user gives the password.

use super::*;

/// The password for `host:port:database:user` from a libpq password file (`PGPASSFILE`, else
/// `~/.pgpass`). Like libpq, a file that group or others can read is ignored, with a warning.
pub(super) fn pgpass_password(
    env: Env<'_>,
    host: &str,
    port: &str,
    database: &str,
    user: &str,
) -> Option<String> {
    let path = match env("PGPASSFILE") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env("HOME")?).join(".pgpass"),
    };
    let metadata = std::fs::metadata(&path).ok()?;
    if !metadata.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "The password file has group or world access and is ignored; permissions should \
                 be u=rw (0600) or less."
            );
            return None;
        }
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            tracing::warn!(file = %path.display(), %error, "Cannot read the password file.");
            return None;
        }
    };
    // A socket directory matches `localhost`, as in libpq.
    let host = if host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    pgpass_lookup(&text, [host, port, database, user])
}

/// The password of the first line of a password file matching `wanted` (host, port, database,
/// user): fields separated by `:`, `*` matching anything, `\:` and `\\` escaping.
pub(super) fn pgpass_lookup(text: &str, wanted: [&str; 4]) -> Option<String> {
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .find_map(|line| {
            let mut fields = vec![String::new()];
            let mut chars = line.chars();
            while let Some(c) = chars.next() {
                match c {
                    // The password is the rest of the line: its colons need no escape.
                    ':' if fields.len() < 5 => fields.push(String::new()),
                    '\\' => fields.last_mut()?.push(chars.next().unwrap_or(c)),
                    _ => fields.last_mut()?.push(c),
                }
            }
            if fields.len() != 5 {
                return None;
            }
            let matches = wanted
                .iter()
                .zip(&fields)
                .all(|(want, field)| field == "*" || field == want);
            matches.then(|| fields.pop()).flatten()
        })
}
