//! `az://` against Azurite, the Azure Storage emulator (the npm package `azurite`, its blob
//! service `azurite-blob`), started by each test on 127.0.0.1 with a port of its own choosing and
//! killed at the test's end. The CLI reaches it the way a user reaches Azurite, through the
//! variables object_store's Azure client reads: `AZURE_STORAGE_USE_EMULATOR=true` (the
//! well-known account `devstoreaccount1` and its published key) and `AZURITE_BLOB_STORAGE_URL`.
//! Export (a block-blob upload: Put Block, Put Block List), retention (list, delete), `verify`
//! and import (streamed reads) all go through the real binary.

use std::process::Command;

use cityforge_data::storage::{expand_placeholders, Location, StoreOptions};
use object_store::azure::{
    AzureAccessKey, AzureAuthorizer, AzureCredential, MicrosoftAzure, MicrosoftAzureBuilder,
};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::emulator::{install_crypto_provider, Emulator, Program};
use crate::support::{self, cli, sample_db};
use crate::{stderr, stdout, table_counts};

/// Azurite's blob service: the variable, the command, where `.ci/run` installs it.
pub const AZURITE: Program = Program {
    name: "Azurite",
    variable: "CITYFORGE_AZURITE",
    command: "azurite-blob",
    ci_path: ".cache/cityforge-ci/azurite/node_modules/.bin/azurite-blob",
    install: "`npm install --prefix ~/.cache/cityforge-ci/azurite azurite@3.35.0`",
};

/// The emulator's well-known account.
pub const ACCOUNT: &str = "devstoreaccount1";
/// The well-known key of [`ACCOUNT`] (published by Microsoft; every Azurite has it).
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// What these tests cover, for the skip message.
const COVERS: &str = "az:// export, retention, verify and import against Azurite";

/// An Azurite blob service of one test.
pub struct Azurite {
    emulator: Emulator,
}

impl Azurite {
    /// Starts Azurite for `test`, or returns `None` after saying why the test is skipped (it
    /// panics instead when `CI=true`).
    pub fn start_or_skip(test: &str) -> Option<Azurite> {
        let program = AZURITE.find_or_skip(&format!("azure::{test}"), COVERS)?;
        let dir = tempfile::Builder::new()
            .prefix("cityforge-azurite-")
            .tempdir()
            .unwrap();
        let mut command = Command::new(program);
        command
            .args(["--blobHost", "127.0.0.1", "--blobPort", "0", "--location"])
            .arg(dir.path())
            // No data leaves the machine (Azurite sends usage data by default).
            .arg("--disableTelemetry")
            // object_store may speak a newer API version than this Azurite knows; what it uses
            // of it is older.
            .arg("--skipApiVersionCheck")
            .arg("--silent");
        // "Azurite Blob service successfully listens on http://127.0.0.1:PORT"
        let emulator = Emulator::start(command, dir, |line| {
            line.split_once("listens on http://127.0.0.1:")
                .and_then(|(_, port)| port.trim().parse().ok())
        })
        .unwrap_or_else(|error| panic!("{error}"));
        Some(Azurite { emulator })
    }

    /// `http://127.0.0.1:PORT` of the blob service.
    pub fn endpoint(&self) -> String {
        self.emulator.endpoint()
    }

    /// The CLI pointed at this Azurite, as a user points it: the emulator variables, and no
    /// other `AZURE_*` variable of the environment.
    pub fn cli(&self) -> support::Cli {
        let mut command = cli();
        for (key, _) in std::env::vars() {
            if key.starts_with("AZURE_") || key.starts_with("AZURITE_") {
                command.env_remove(key);
            }
        }
        command
            .env("AZURE_STORAGE_USE_EMULATOR", "true")
            .env("AZURITE_BLOB_STORAGE_URL", self.endpoint());
        command
    }

    /// The same account as store options (as a pipeline file gives them), without the emulator
    /// switch: the endpoint with the account in its path, the account and its key.
    pub fn options(&self) -> StoreOptions {
        StoreOptions::new()
            .with("endpoint", format!("{}/{ACCOUNT}", self.endpoint()))
            .with("account_name", ACCOUNT)
            .with("access_key", ACCOUNT_KEY)
            .with("allow_http", "true")
    }

    /// `az://container/key` with [`options`](Self::options).
    pub fn location(&self, container: &str, key: &str) -> Location {
        Location::parse_with_options(&format!("az://{container}/{key}"), self.options()).unwrap()
    }

    /// An object_store client on a container, for the test's own reads and writes.
    pub fn store(&self, container: &str) -> MicrosoftAzure {
        install_crypto_provider();
        MicrosoftAzureBuilder::new()
            .with_endpoint(format!("{}/{ACCOUNT}", self.endpoint()))
            .with_account(ACCOUNT)
            .with_access_key(ACCOUNT_KEY)
            .with_allow_http(true)
            .with_container_name(container)
            .build()
            .unwrap()
    }

    /// A request to the blob service signed with the account key: (status, body).
    async fn signed(&self, method: reqwest::Method, path_and_query: &str) -> (u16, String) {
        install_crypto_provider();
        let url = format!("{}/{ACCOUNT}/{path_and_query}", self.endpoint());
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(&url)
            .header("content-length", "0")
            .body(object_store::client::HttpRequestBody::empty())
            .unwrap();
        let credential = AzureCredential::AccessKey(AzureAccessKey::try_new(ACCOUNT_KEY).unwrap());
        AzureAuthorizer::new(&credential, ACCOUNT)
            .try_authorize(&mut request)
            .unwrap();
        let response = reqwest::Client::new()
            .request(method, &url)
            .headers(request.headers().clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Creates a new, empty container named after `label` (object_store cannot create one).
    pub async fn container(&self, label: &str) -> String {
        let name = format!("cf-{label}-{}", std::process::id());
        let (status, body) = self
            .signed(reqwest::Method::PUT, &format!("{name}?restype=container"))
            .await;
        assert_eq!(status, 201, "create container {name}: {body}");
        name
    }

    /// Every key in a container, sorted.
    pub async fn keys(&self, container: &str) -> Vec<String> {
        use futures_util::TryStreamExt;
        let mut keys: Vec<String> = self
            .store(container)
            .list(None)
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }

    /// A blob's bytes.
    pub async fn get(&self, container: &str, key: &str) -> Vec<u8> {
        let result = self.store(container).get(&ObjectPath::from(key)).await;
        let result = result.unwrap_or_else(|e| panic!("get {container}/{key}: {e}"));
        result.bytes().await.unwrap().to_vec()
    }

    /// Stores a blob.
    pub async fn put(&self, container: &str, key: &str, bytes: Vec<u8>) {
        self.store(container)
            .put(&ObjectPath::from(key), bytes.into())
            .await
            .unwrap();
    }

    /// The committed blocks of a block blob (one per uploaded part), from Get Block List.
    pub async fn committed_blocks(&self, container: &str, key: &str) -> usize {
        let (status, body) = self
            .signed(
                reqwest::Method::GET,
                &format!("{container}/{key}?comp=blocklist&blocklisttype=committed"),
            )
            .await;
        assert_eq!(status, 200, "block list of {container}/{key}: {body}");
        let committed = body
            .split_once("<CommittedBlocks>")
            .and_then(|(_, rest)| rest.split_once("</CommittedBlocks>"))
            .map_or("", |(blocks, _)| blocks);
        committed.matches("<Block>").count()
    }
}

/// Export with retention, `verify` (good and modified), import: the cycle of the daily backup and
/// its restore, on Azurite.
#[tokio::test]
async fn export_retention_verify_and_import_through_azurite() {
    let Some(azurite) =
        Azurite::start_or_skip("export_retention_verify_and_import_through_azurite")
    else {
        return;
    };
    let db = sample_db("azure", 2_000).await;
    let container = azurite.container("cycle").await;
    let pattern = "daily/cityforge_{timestamp}.json.gz";

    // Three older exports (1 to 3 days old), each with its sidecar, and a blob that does not
    // match the pattern.
    let now = chrono::Utc::now().naive_utc();
    let mut old = Vec::new();
    for days in 1..=3 {
        let when = now - chrono::Duration::days(days) - chrono::Duration::hours(1);
        let key = expand_placeholders(pattern, when);
        azurite.put(&container, &key, b"old".to_vec()).await;
        let sidecar = format!("{key}.sha256");
        azurite.put(&container, &sidecar, b"x".to_vec()).await;
        old.push(key);
    }
    let other = "daily/cityforge_latest.json.gz";
    azurite.put(&container, other, b"other".to_vec()).await;

    // Export, keeping the newest two: the new one and the youngest old one.
    let output = azurite
        .cli()
        .args(["export", "--keep-last", "2", "-o"])
        .arg(format!("az://{container}/{pattern}"))
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    let keys = azurite.keys(&container).await;
    let new: Vec<&String> = keys
        .iter()
        .filter(|k| k.ends_with(".json.gz") && !old.contains(k) && k.as_str() != other)
        .collect();
    assert_eq!(new.len(), 1, "{keys:?}");
    let new = new[0].clone();
    let mut expected = vec![
        new.clone(),
        format!("{new}.sha256"),
        old[0].clone(),
        format!("{}.sha256", old[0]),
        other.to_owned(),
    ];
    expected.sort();
    assert_eq!(keys, expected);
    for deleted in &old[1..] {
        assert!(
            log.contains(&format!("deleted=az://{container}/{deleted}")),
            "{deleted} not in the log: {log}"
        );
    }
    assert!(log.contains("Retention applied. deleted=2"), "{log}");

    // verify: the sidecar matches and the per-model counts are the tables' rows.
    let location = format!("az://{container}/{new}");
    let output = azurite.cli().args(["verify", &location]).output().unwrap();
    let text = stdout(&output);
    assert!(output.status.success(), "{}{text}", stderr(&output));
    assert!(text.starts_with(&format!("OK {location}\n")), "{text}");
    let sidecar = String::from_utf8(azurite.get(&container, &format!("{new}.sha256")).await);
    let sidecar = sidecar.unwrap();
    let (digest, name) = sidecar.trim_end().split_once("  ").unwrap();
    assert_eq!(Some(name), new.rsplit('/').next());
    assert!(text.contains(digest), "{text}");
    let counts = table_counts(&db).await;
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let line = |model: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(model))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<i64>().ok())
    };
    assert_eq!(line("total"), Some(total), "{text}");
    let users = counts.iter().find(|(t, _)| t == "users").unwrap().1;
    assert_eq!(line("User"), Some(users), "{text}");

    // The same in this process, with the account as store options instead of the emulator
    // variables.
    let report = cityforge_data::commands::verify::verify(&azurite.location(&container, &new))
        .await
        .unwrap();
    assert_eq!(report.total_records() as i64, total);
    assert_eq!(report.sha256, digest);

    // One byte changed: verify fails and says why.
    let good = azurite.get(&container, &new).await;
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x01;
    azurite.put(&container, &new, bad).await;
    let output = azurite.cli().args(["verify", &location]).output().unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&format!("checksum mismatch for {location}")),
        "{message}"
    );
    azurite.put(&container, &new, good).await;

    // Import into an empty database, streamed from the blob: the same rows.
    crate::assert_imports_back(azurite.cli(), &location, &db, "azimport").await;
}

/// An export larger than a part is committed as several blocks, and imports back.
#[tokio::test]
async fn a_large_export_is_committed_in_blocks_and_imports_back() {
    let Some(azurite) =
        Azurite::start_or_skip("a_large_export_is_committed_in_blocks_and_imports_back")
    else {
        return;
    };
    // About 12 MB uncompressed: three 5 MiB parts.
    let db = sample_db("azurebig", 25_000).await;
    let container = azurite.container("blocks").await;
    let location = format!("az://{container}/cityforge.json");
    let output = azurite
        .cli()
        .args(["export", "--compress", "none", "-o", &location])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let stored = azurite.get(&container, "cityforge.json").await;
    assert!(stored.len() > 10 << 20, "only {} bytes", stored.len());
    let blocks = azurite.committed_blocks(&container, "cityforge.json").await;
    assert!(blocks >= 3, "{blocks} committed blocks");

    crate::assert_imports_back(azurite.cli(), &location, &db, "azbigimport").await;
}

/// A container that does not exist is named as such, and nothing is read or written.
#[tokio::test]
async fn a_missing_container_is_named() {
    let Some(azurite) = Azurite::start_or_skip("a_missing_container_is_named") else {
        return;
    };
    let db = sample_db("azuremissing", 100).await;
    let output = azurite
        .cli()
        .args(["export", "-o", "az://no-such-container-cf/x.json.gz"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("cannot write az://no-such-container-cf/x.json.gz"),
        "{message}"
    );
    assert!(
        message.contains("the container no-such-container-cf does not exist"),
        "{message}"
    );
    assert!(!message.contains("Export completed"), "{message}");
    assert!(!message.contains(ACCOUNT_KEY), "{message}");

    let output = azurite
        .cli()
        .args(["verify", "az://no-such-container-cf/x.json.gz"])
        .output()
        .unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("the container no-such-container-cf does not exist"),
        "{message}"
    );
}
