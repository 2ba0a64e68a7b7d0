//! Object stores built from a location and the environment (timeouts, retries, credentials), and
//! their errors in words: which bucket, what to check, never a secret.

use super::*;

/// The process-wide in-memory store behind `memory://` locations.
pub(super) fn memory_store() -> Arc<dyn ObjectStore> {
    static MEMORY: OnceLock<Arc<object_store::memory::InMemory>> = OnceLock::new();
    MEMORY
        .get_or_init(|| Arc::new(object_store::memory::InMemory::new()))
        .clone()
}

/// Request timeout unless configured: a whole part (16 MiB at most) must go through in it.
pub(super) const DEFAULT_TIMEOUT: &str = "120s";
/// Connection timeout unless configured.
pub(super) const DEFAULT_CONNECT_TIMEOUT: &str = "10s";
/// Retries of a failed request unless configured (`max_retries`).
pub(super) const DEFAULT_MAX_RETRIES: usize = 5;
/// Time limit of the retries of one request unless configured (`retry_timeout`).
pub(super) const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) fn build_store(object: &ObjectLocation) -> Result<Arc<dyn ObjectStore>, StorageError> {
    if object.kind == StoreKind::Memory {
        return Ok(memory_store());
    }
    // reqwest runs rustls without a built-in provider: use ring, as the PostgreSQL client does.
    static PROVIDER: OnceLock<()> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let config_error = |reason: String| StorageError::Config {
        location: object.to_string(),
        reason,
    };
    let prefix = object.kind.env_prefix().unwrap_or_default();
    let configured = |key: &str| {
        object.options.get(key).is_some()
            || std::env::var_os(format!("{prefix}{}", key.to_ascii_uppercase())).is_some()
    };
    let mut settings: Vec<(String, String)> = Vec::new();
    for (key, value) in [
        ("timeout", DEFAULT_TIMEOUT),
        ("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
    ] {
        if !configured(key) {
            settings.push((key.to_owned(), value.to_owned()));
        }
    }
    let mut retry = object_store::RetryConfig {
        max_retries: DEFAULT_MAX_RETRIES,
        retry_timeout: DEFAULT_RETRY_TIMEOUT,
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            base: 2.0,
        },
    };
    for (key, value) in object.options.iter() {
        match key {
            "max_retries" => {
                retry.max_retries = value.parse().map_err(|_| {
                    config_error(format!("max_retries must be a number, not \"{value}\""))
                })?
            }
            "retry_timeout" => {
                retry.retry_timeout = parse_duration(value).ok_or_else(|| {
                    config_error(format!(
                        "retry_timeout must be a duration such as 60s, not \"{value}\""
                    ))
                })?
            }
            _ => settings.push((key.to_owned(), value.to_owned())),
        }
    }
    let unknown = |key: &str| config_error(format!("unknown store option \"{key}\""));
    let store: Arc<dyn ObjectStore> = match object.kind {
        StoreKind::S3 => {
            use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
            let mut builder = AmazonS3Builder::from_env();
            for (key, value) in &settings {
                let key: AmazonS3ConfigKey = key.parse().map_err(|_| unknown(key))?;
                builder = builder.with_config(key, value);
            }
            let store = builder
                .with_bucket_name(&object.bucket)
                .with_retry(retry)
                .build()
                .map_err(|e| config_error(describe_config_error(&e)))?;
            Arc::new(store)
        }
        StoreKind::Gcs => {
            use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
            let mut builder = GoogleCloudStorageBuilder::from_env();
            for (key, value) in &settings {
                let key: GoogleConfigKey = key.parse().map_err(|_| unknown(key))?;
                builder = builder.with_config(key, value);
            }
            let store = builder
                .with_bucket_name(&object.bucket)
                .with_retry(retry)
                .build()
                .map_err(|e| config_error(describe_config_error(&e)))?;
            Arc::new(store)
        }
        StoreKind::Azure => {
            use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
            let mut builder = MicrosoftAzureBuilder::from_env();
            for (key, value) in &settings {
                let key: AzureConfigKey = key.parse().map_err(|_| unknown(key))?;
                builder = builder.with_config(key, value);
            }
            let store = builder
                .with_container_name(&object.bucket)
                .with_retry(retry)
                .build()
                .map_err(|e| config_error(describe_config_error(&e)))?;
            Arc::new(store)
        }
        StoreKind::Memory => memory_store(),
    };
    Ok(store)
}

/// `90`, `90s`, `2m`, `1h` → a duration.
pub(super) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "s" | "sec" | "secs" => number,
        "m" | "min" | "mins" => number * 60,
        "h" => number * 3600,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

/// A builder error in words, without credentials.
pub(super) fn describe_config_error(error: &object_store::Error) -> String {
    redact(&error_chain(error))
}

/// Environment variables whose values are secrets, removed from any message.
pub(super) const SECRET_VARIABLES: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS_JSON",
];

/// Removes credentials from a message: URL query strings (SAS tokens, signatures), user info,
/// and the values of the secret environment variables.
pub(super) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // Copy up to and including "://", then the URL's remainder without user info or query.
        out.push_str(&rest[..at + 3]);
        rest = &rest[at + 3..];
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ','))
            .unwrap_or(rest.len());
        let url = &rest[..end];
        let url = match url.find('@') {
            Some(at) if !url[..at].contains('/') => &url[at + 1..],
            _ => url,
        };
        match url.find('?') {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push_str("?…");
            }
            None => out.push_str(url),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    for variable in SECRET_VARIABLES {
        if let Ok(value) = std::env::var(variable) {
            if value.len() >= 4 {
                out = out.replace(&value, "***");
            }
        }
    }
    out
}

/// Classifies an object store error as a short reason a person can act on, without credentials.
pub(super) fn describe_object_error(
    object: &ObjectLocation,
    error: &object_store::Error,
) -> String {
    let chain = error_chain(error);
    let lower = chain.to_ascii_lowercase();
    let kind = object.kind;
    let bucket_word = if kind == StoreKind::Azure {
        "container"
    } else {
        "bucket"
    };
    let detail = || {
        let mut text = redact(&chain);
        if text.len() > 400 {
            let mut cut = 400;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        text
    };
    if lower.contains("nosuchbucket")
        || lower.contains("containernotfound")
        || lower.contains("the specified bucket does not exist")
    {
        return format!("the {bucket_word} {} does not exist", object.bucket);
    }
    match error {
        object_store::Error::NotFound { .. } => {
            return "no such object".to_owned();
        }
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            return format!(
                "access denied: check the credentials ({}) and the {bucket_word}'s permissions ({})",
                credential_hint(kind),
                detail()
            );
        }
        _ => {}
    }
    if lower.contains("accessdenied")
        || lower.contains("invalidaccesskeyid")
        || lower.contains("signaturedoesnotmatch")
        || lower.contains("authorizationfailure")
        || lower.contains("authenticationfailed")
    {
        return format!(
            "access denied: check the credentials ({}) ({})",
            credential_hint(kind),
            detail()
        );
    }
    if lower.contains("token request")
        || lower.contains("missing credentials")
        || lower.contains("failed to load credentials")
    {
        return format!(
            "cannot get credentials: set {} ({})",
            credential_hint(kind),
            detail()
        );
    }
    let endpoint = endpoint_in(&chain)
        .map(|e| format!(" {e}"))
        .unwrap_or_default();
    let retries = retries_in(&chain)
        .map(|n| format!(" (after {n} retries)"))
        .unwrap_or_default();
    if lower.contains("connection refused") {
        return format!(
            "cannot connect to the storage endpoint{endpoint}: connection refused{retries}; is \
             the endpoint right and the server up?"
        );
    }
    if lower.contains("dns error") || lower.contains("failed to lookup address") {
        return format!(
            "cannot resolve the host name of the storage endpoint{endpoint}; is the endpoint \
             right?"
        );
    }
    if lower.contains("timed out") || lower.contains("timeout") {
        return format!("the storage endpoint{endpoint} did not answer in time{retries}");
    }
    if lower.contains("connection reset")
        || lower.contains("connection closed")
        || lower.contains("broken pipe")
        || lower.contains("error sending request")
        || lower.contains("incompletemessage")
        || lower.contains("connection aborted")
    {
        return format!("the connection to the storage endpoint{endpoint} was lost{retries}");
    }
    detail()
}

/// `scheme://host:port` of the first URL in a message (no path, query or user info).
pub(super) fn endpoint_in(text: &str) -> Option<String> {
    let at = text.find("http://").or_else(|| text.find("https://"))?;
    let url = &text[at..];
    let host_start = url.find("://")? + 3;
    let end = url[host_start..]
        .find(|c: char| c == '/' || c == '?' || c.is_whitespace())
        .map(|i| host_start + i)
        .unwrap_or(url.len());
    let host = &url[host_start..end];
    let host = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
    Some(format!("{}{host}", &url[..host_start]))
}

/// N of "after N retries" in a message.
pub(super) fn retries_in(text: &str) -> Option<u32> {
    let at = text.find("after ")?;
    let rest = &text[at + "after ".len()..];
    let (number, tail) = rest.split_once(' ')?;
    tail.starts_with("retries")
        .then(|| number.parse().ok())
        .flatten()
        .filter(|n| *n > 0)
}

pub(super) fn credential_hint(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::S3 => "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or the pod's role",
        StoreKind::Gcs => "GOOGLE_APPLICATION_CREDENTIALS or the workload identity",
        StoreKind::Azure => "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY or a SAS",
        StoreKind::Memory => "none needed",
    }
}

pub(super) fn object_error(
    action: &'static str,
    object: &ObjectLocation,
    error: &object_store::Error,
) -> StorageError {
    StorageError::Object {
        action,
        location: object.to_string(),
        reason: describe_object_error(object, error),
    }
}
