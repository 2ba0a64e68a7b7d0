//! Placeholders in locations (`{timestamp}`, `{date}`) and retention: older exports matching the
//! same pattern deleted after a successful export, never a good backup for a suspicious one.

use super::*;

/// Whether a location text carries `{timestamp}` or `{date}`.
pub fn has_placeholders(text: &str) -> bool {
    text.contains("{timestamp}") || text.contains("{date}")
}

/// Replaces `{timestamp}` by `YYYYMMDD_HHMMSS` and `{date}` by `YYYYMMDD` of `time` (UTC for
/// the CLI). Done once at the start of an export.
pub fn expand_placeholders(text: &str, time: NaiveDateTime) -> String {
    text.replace("{timestamp}", &time.format("%Y%m%d_%H%M%S").to_string())
        .replace("{date}", &time.format("%Y%m%d").to_string())
}

/// How many older exports to keep: exports matching the pattern that neither rule keeps are
/// deleted (a rule that is not set keeps nothing on its own; with neither set nothing is deleted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the newest N exports (the one just written counts).
    pub keep_last: Option<usize>,
    /// Keep the exports younger than D days (by the time in their names).
    pub keep_days: Option<u64>,
    /// Delete even when the new export is suspiciously small next to the newest older one
    /// (see [`SHRINK_GUARD`]).
    pub force: bool,
}

/// Retention deletes nothing when the new export is smaller than this fraction of the newest
/// older export it would keep: a backup of the wrong database, or of a database emptied by
/// mistake, must not cost the good ones. `--force-retention` overrides it.
pub const SHRINK_GUARD: f64 = 0.5;

impl Retention {
    /// Whether any rule is set.
    pub fn is_active(&self) -> bool {
        self.keep_last.is_some() || self.keep_days.is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Token {
    Literal(String),
    Timestamp,
    Date,
}

/// The file-name part of a pattern as tokens.
pub(super) fn tokenize(name: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut rest = name;
    loop {
        let next = [("{timestamp}", Token::Timestamp), ("{date}", Token::Date)]
            .into_iter()
            .filter_map(|(text, token)| rest.find(text).map(|at| (at, text.len(), token)))
            .min_by_key(|(at, _, _)| *at);
        match next {
            Some((at, len, token)) => {
                if at > 0 {
                    tokens.push(Token::Literal(rest[..at].to_owned()));
                }
                tokens.push(token);
                rest = &rest[at + len..];
            }
            None => {
                if !rest.is_empty() {
                    tokens.push(Token::Literal(rest.to_owned()));
                }
                return tokens;
            }
        }
    }
}

/// Matches a name against the tokens; returns the time it carries (the first placeholder).
pub(super) fn match_name(tokens: &[Token], name: &str) -> Option<NaiveDateTime> {
    let mut rest = name;
    let mut time = None;
    for token in tokens {
        match token {
            Token::Literal(text) => rest = rest.strip_prefix(text.as_str())?,
            Token::Timestamp => {
                let (value, tail) = take_digits(rest, &[8, 1, 6])?;
                let parsed = NaiveDateTime::parse_from_str(value, "%Y%m%d_%H%M%S").ok()?;
                time.get_or_insert(parsed);
                rest = tail;
            }
            Token::Date => {
                let (value, tail) = take_digits(rest, &[8])?;
                let parsed = NaiveDate::parse_from_str(value, "%Y%m%d").ok()?;
                time.get_or_insert(parsed.and_hms_opt(0, 0, 0)?);
                rest = tail;
            }
        }
    }
    if rest.is_empty() {
        time
    } else {
        None
    }
}

/// Splits off `8 digits`, or `8 digits _ 6 digits` (groups: lengths, a 1 meaning `_`).
pub(super) fn take_digits<'a>(text: &'a str, groups: &[usize]) -> Option<(&'a str, &'a str)> {
    let mut at = 0;
    let bytes = text.as_bytes();
    for (index, &len) in groups.iter().enumerate() {
        if index % 2 == 1 {
            if bytes.get(at) != Some(&b'_') {
                return None;
            }
            at += 1;
        } else {
            if bytes.len() < at + len || !bytes[at..at + len].iter().all(u8::is_ascii_digit) {
                return None;
            }
            at += len;
        }
    }
    Some(text.split_at(at))
}

/// The file-name part of a location pattern (after the last `/`).
pub(super) fn pattern_name(pattern: &str) -> &str {
    pattern.rsplit('/').next().unwrap_or(pattern)
}

/// Checks that a pattern can carry retention: placeholders in the file name, none in folders.
pub fn check_retention_pattern(pattern: &str) -> Result<(), StorageError> {
    let name = pattern_name(pattern);
    let problem = |reason: &str| StorageError::Pattern {
        pattern: redact(pattern),
        reason: reason.to_owned(),
    };
    if pattern == "-" {
        return Err(problem(
            "retention needs a folder or bucket, not standard output",
        ));
    }
    if !has_placeholders(name) {
        return Err(problem(
            "retention needs {timestamp} or {date} in the file name, so that older exports can be \
             recognised (e.g. s3://backups/cityforge_{timestamp}.json.gz)",
        ));
    }
    if has_placeholders(&pattern[..pattern.len() - name.len()]) {
        return Err(problem(
            "retention needs the placeholders in the file name, not in the folder",
        ));
    }
    Ok(())
}

/// After a successful export to `written` (the expansion of `pattern`), deletes the older
/// exports in the same folder or prefix whose names match `pattern` (placeholders as digits) and
/// that `retention` does not keep, with their `.sha256` sidecars. Never deletes `written`. Logs
/// and returns the names deleted, oldest first.
pub async fn apply_retention(
    pattern: &str,
    written: &Location,
    retention: Retention,
) -> Result<Vec<String>, StorageError> {
    if !retention.is_active() {
        return Ok(Vec::new());
    }
    check_retention_pattern(pattern)?;
    let tokens = tokenize(pattern_name(pattern));
    let Some(written_name) = written.file_name() else {
        return Ok(Vec::new());
    };
    let names = list_folder(written).await?;
    let written_size = names
        .iter()
        .find(|(name, _)| *name == written_name)
        .map(|(_, size)| *size);
    let mut candidates: Vec<(NaiveDateTime, String, u64)> = names
        .into_iter()
        .filter_map(|(name, size)| match_name(&tokens, &name).map(|time| (time, name, size)))
        .collect();
    // Newest first.
    candidates.sort_by(|a, b| b.cmp(a));
    let newest_older = candidates.iter().find(|(_, name, _)| *name != written_name);
    if let (Some(size), Some((_, newest, newest_size)), false) =
        (written_size, newest_older, retention.force)
    {
        if (size as f64) < (*newest_size as f64) * SHRINK_GUARD {
            warn!(
                written = %written,
                size,
                newest_older = %newest,
                newest_older_size = newest_size,
                "Retention deleted nothing: the new export is less than half the size of the \
                 newest older one, which looks like a backup of the wrong or an emptied database. \
                 Check it, and force retention to delete anyway."
            );
            return Ok(Vec::new());
        }
    }
    let cutoff = retention
        .keep_days
        .map(|days| Utc::now().naive_utc() - chrono::Duration::days(days as i64));
    let mut victims: Vec<(NaiveDateTime, String)> = Vec::new();
    for (rank, (time, name, _)) in candidates.into_iter().enumerate() {
        if name == written_name {
            continue;
        }
        let kept_by_count = retention.keep_last.is_some_and(|n| rank < n);
        let kept_by_age = cutoff.is_some_and(|cutoff| time >= cutoff);
        if !kept_by_count && !kept_by_age {
            victims.push((time, name));
        }
    }
    victims.reverse();
    let mut deleted = Vec::with_capacity(victims.len());
    for (_, name) in victims {
        let victim = sibling(written, &name);
        delete_location(&victim).await?;
        if let Some(sidecar) = victim.sidecar() {
            delete_location(&sidecar).await?;
        }
        info!(deleted = %victim, "Retention: deleted an older export.");
        deleted.push(name);
    }
    Ok(deleted)
}

/// The location named `name` in the same folder or prefix as `location`.
pub(super) fn sibling(location: &Location, name: &str) -> Location {
    match location {
        Location::Stdio => Location::Stdio,
        Location::Path(path) => Location::Path(path.with_file_name(name)),
        Location::ObjectStore(object) => {
            let mut parts: Vec<String> =
                object.key.parts().map(|p| p.as_ref().to_owned()).collect();
            parts.pop();
            parts.push(name.to_owned());
            Location::ObjectStore(
                object.with_key(ObjectPath::from_iter(parts.iter().map(String::as_str))),
            )
        }
    }
}

/// Names of the files or objects directly in the folder or prefix of `location`.
/// The files in the folder or prefix of `location`: name and size.
pub(super) async fn list_folder(location: &Location) -> Result<Vec<(String, u64)>, StorageError> {
    match location {
        Location::Stdio => Ok(Vec::new()),
        Location::Path(path) => {
            let folder = folder_of(path);
            let io_error = |source| StorageError::Io {
                action: "list the folder of",
                location: location.to_string(),
                source,
            };
            let mut entries = tokio::fs::read_dir(&folder).await.map_err(io_error)?;
            let mut names = Vec::new();
            while let Some(entry) = entries.next_entry().await.map_err(io_error)? {
                if let Ok(metadata) = entry.metadata().await {
                    if metadata.is_file() {
                        names.push((
                            entry.file_name().to_string_lossy().into_owned(),
                            metadata.len(),
                        ));
                    }
                }
            }
            Ok(names)
        }
        Location::ObjectStore(object) => {
            let store = object.store()?;
            let full = object.store_path();
            let mut parts: Vec<String> = full.parts().map(|p| p.as_ref().to_owned()).collect();
            parts.pop();
            let prefix = ObjectPath::from_iter(parts.iter().map(String::as_str));
            let prefix = (!parts.is_empty()).then_some(prefix);
            let listing = store
                .list_with_delimiter(prefix.as_ref())
                .await
                .map_err(|e| object_error("list the prefix of", object, &e))?;
            Ok(listing
                .objects
                .into_iter()
                .filter_map(|meta| {
                    let size = meta.size;
                    meta.location.filename().map(|name| (name.to_owned(), size))
                })
                .collect())
        }
    }
}
