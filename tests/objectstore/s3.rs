//! A real S3-compatible server for the tests, in this process: s3s's file-system backend
//! (`s3s-fs`, Rust, no Python) behind s3s's SigV4 checking, on 127.0.0.1 with a random port, one
//! per test binary, on its own thread and tokio runtime, its files in a temporary folder removed
//! at exit. Also a TCP proxy that can "stop the server" mid-request, helpers that look at the
//! server's state (keys, pending multipart uploads) and a measure of a child's peak memory.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cityforge_data::storage::{Location, StoreOptions};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, S3};
use tokio_util::sync::CancellationToken;

/// Access key the tests use (the server checks every request's signature against it).
pub const ACCESS_KEY: &str = "AKIACITYFORGETEST";
/// Secret the tests use; no message may ever contain it.
pub const SECRET_KEY: &str = "cityforge-test-secret-Zq8xV3nP";

static NEXT_BUCKET: AtomicUsize = AtomicUsize::new(0);

/// The S3 server of this test binary.
pub struct S3Server {
    port: u16,
    root: PathBuf,
    uploads: Uploads,
}

/// The server's folder, removed at exit.
static ROOT: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_root_at_exit() {
    if let Some(root) = ROOT.get() {
        let _ = std::fs::remove_dir_all(root);
    }
}

/// Multipart uploads started and neither completed nor aborted, by upload id: bucket, key and
/// the parts stored so far. `s3s-fs` has no ListMultipartUploads, so [`TestS3`] keeps this.
type Uploads = Arc<Mutex<BTreeMap<String, PendingUpload>>>;

struct PendingUpload {
    bucket: String,
    key: String,
    parts: usize,
}

impl S3Server {
    /// The server, started on first use.
    pub fn shared() -> &'static S3Server {
        static SERVER: OnceLock<S3Server> = OnceLock::new();
        SERVER.get_or_init(|| {
            start().unwrap_or_else(|error| panic!("cannot start the S3 server: {error}"))
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a new, empty bucket named after `label` (a bucket is a folder of the backend).
    pub fn bucket(&self, label: &str) -> String {
        let name = format!(
            "cf-{label}-{}-{}",
            std::process::id(),
            NEXT_BUCKET.fetch_add(1, Ordering::SeqCst)
        );
        self.create_bucket(&name);
        name
    }

    /// Creates the empty bucket `name` exactly (for a name a document shows); panics when it
    /// exists already: the server is this test binary's, so only one test may use a name.
    pub fn create_bucket(&self, name: &str) {
        std::fs::create_dir(self.root.join(name))
            .unwrap_or_else(|error| panic!("create bucket {name}: {error}"));
    }

    /// The environment the CLI needs to reach the server through `endpoint`.
    pub fn env_for(endpoint: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", endpoint.to_owned()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
    }

    /// Sets the server's variables on a command, removing any other AWS_* variable.
    pub fn configure(&self, command: &mut Command) {
        configure_endpoint(command, &self.endpoint());
    }

    /// The options that reach the server, for locations parsed in this process.
    pub fn options(&self) -> StoreOptions {
        StoreOptions::new()
            .with("endpoint", self.endpoint())
            .with("allow_http", "true")
            .with("access_key_id", ACCESS_KEY)
            .with("secret_access_key", SECRET_KEY)
            .with("region", "us-east-1")
    }

    /// `s3://bucket/key` with the server's options.
    pub fn location(&self, bucket: &str, key: &str) -> Location {
        Location::parse_with_options(&format!("s3://{bucket}/{key}"), self.options()).unwrap()
    }

    /// An object_store client on a bucket.
    pub fn store(&self, bucket: &str) -> AmazonS3 {
        // reqwest is built without a default TLS provider (see Cargo.toml).
        let _ = rustls::crypto::ring::default_provider().install_default();
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .with_region("us-east-1")
            .with_bucket_name(bucket)
            .build()
            .unwrap()
    }

    /// Every key in a bucket, sorted.
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        use futures_util::TryStreamExt;
        let mut keys: Vec<String> = self
            .store(bucket)
            .list(None)
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }

    /// An object's bytes, if it exists.
    pub async fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        match self.store(bucket).get(&ObjectPath::from(key)).await {
            Ok(result) => Some(result.bytes().await.unwrap().to_vec()),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(error) => panic!("get {bucket}/{key}: {error}"),
        }
    }

    /// Stores an object.
    pub async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        self.store(bucket)
            .put(&ObjectPath::from(key), bytes.into())
            .await
            .unwrap();
    }

    /// An object's ETag (a multipart upload's ends with `-<parts>`).
    pub async fn etag(&self, bucket: &str, key: &str) -> String {
        self.store(bucket)
            .head(&ObjectPath::from(key))
            .await
            .unwrap()
            .e_tag
            .unwrap_or_default()
    }

    /// Keys of the multipart uploads that were started and neither completed nor aborted.
    pub fn pending_uploads(&self, bucket: &str) -> Vec<String> {
        self.pending_upload_ids(bucket)
            .into_iter()
            .map(|(key, _)| key)
            .collect()
    }

    /// Keys and upload ids of the pending multipart uploads.
    pub fn pending_upload_ids(&self, bucket: &str) -> Vec<(String, String)> {
        let uploads = self.uploads.lock().unwrap();
        uploads
            .iter()
            .filter(|(_, upload)| upload.bucket == bucket)
            .map(|(id, upload)| (upload.key.clone(), id.clone()))
            .collect()
    }

    /// Parts stored so far by a pending multipart upload.
    pub fn uploaded_parts(&self, bucket: &str, key: &str, upload_id: &str) -> usize {
        let uploads = self.uploads.lock().unwrap();
        uploads
            .get(upload_id)
            .filter(|upload| upload.bucket == bucket && upload.key == key)
            .map_or(0, |upload| upload.parts)
    }
}

/// Points a command at an S3 endpoint with the test credentials.
pub fn configure_endpoint(command: &mut Command, endpoint: &str) {
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    for (key, value) in S3Server::env_for(endpoint) {
        command.env(key, value);
    }
}

/// Starts the server on a thread of its own, with its own runtime, so that it outlives every
/// test's runtime.
fn start() -> Result<S3Server, String> {
    let root = tempfile::Builder::new()
        .prefix("cityforge-s3-")
        .tempdir()
        .map_err(|e| format!("temporary folder: {e}"))?
        .keep();
    let _ = ROOT.set(root.clone());
    // SAFETY: registers a plain extern "C" fn that never unwinds.
    unsafe {
        libc::atexit(remove_root_at_exit);
    }
    let backend =
        s3s_fs::FileSystem::new(&root).map_err(|e| format!("file-system backend: {e:?}"))?;
    let uploads = Uploads::default();
    let service = {
        let mut builder = s3s::service::S3ServiceBuilder::new(TestS3 {
            fs: backend,
            root: root.clone(),
            uploads: uploads.clone(),
        });
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        builder.build()
    };
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("bind: {e}"))?
        .port();
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("bind: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("s3-server")
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    std::thread::Builder::new()
        .name("s3-server".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                use hyper_util::rt::{TokioExecutor, TokioIo};
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        // Out of file descriptors, say: wait instead of spinning.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let connection = http
                        .serve_connection(TokioIo::new(socket), service.clone())
                        .into_owned();
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                }
            })
        })
        .map_err(|e| format!("thread: {e}"))?;
    Ok(S3Server {
        port,
        root,
        uploads,
    })
}

/// `s3s-fs` plus what it lacks and S3 does: the bookkeeping of pending multipart uploads
/// (ListMultipartUploads) and `NoSuchBucket` for a write into a bucket that does not exist
/// (`s3s-fs` would create the folder). Every other operation goes to `s3s-fs` unchanged.
struct TestS3 {
    fs: s3s_fs::FileSystem,
    root: PathBuf,
    uploads: Uploads,
}

impl TestS3 {
    fn require_bucket(&self, bucket: &str) -> S3Result<()> {
        let valid = !bucket.is_empty() && !bucket.contains(['/', '.']);
        if valid && self.root.join(bucket).is_dir() {
            Ok(())
        } else {
            Err(s3s::s3_error!(NoSuchBucket))
        }
    }
}

#[async_trait::async_trait]
impl S3 for TestS3 {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.fs.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.fs.get_object(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.fs.head_object(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.require_bucket(&req.input.bucket)?;
        self.fs.put_object(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.require_bucket(&req.input.bucket)?;
        self.fs.copy_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.fs.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.fs.delete_objects(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.require_bucket(&req.input.bucket)?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let response = self.fs.create_multipart_upload(req).await?;
        if let Some(id) = &response.output.upload_id {
            let upload = PendingUpload {
                bucket,
                key,
                parts: 0,
            };
            self.uploads.lock().unwrap().insert(id.clone(), upload);
        }
        Ok(response)
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let id = req.input.upload_id.clone();
        let response = self.fs.upload_part(req).await?;
        if let Some(upload) = self.uploads.lock().unwrap().get_mut(&id) {
            upload.parts += 1;
        }
        Ok(response)
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.fs.list_parts(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let id = req.input.upload_id.clone();
        let response = self.fs.complete_multipart_upload(req).await?;
        self.uploads.lock().unwrap().remove(&id);
        Ok(response)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let id = req.input.upload_id.clone();
        let response = self.fs.abort_multipart_upload(req).await?;
        self.uploads.lock().unwrap().remove(&id);
        Ok(response)
    }
}

/// A TCP proxy in front of the server that stops (closes its port and every connection) once
/// `stop_after` bytes went from the client to the server: the storage going away mid-upload.
pub struct Proxy {
    /// The proxy's address.
    pub addr: SocketAddr,
    /// Bytes forwarded to the server so far.
    pub forwarded: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Proxy {
    /// Starts the proxy on a random port (on the current tokio runtime).
    pub async fn start(upstream: u16, stop_after: u64) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let forwarded = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let (count, token) = (forwarded.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = token.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { break };
                let (count, token) = (count.clone(), token.clone());
                tokio::spawn(relay(client, upstream, count, token, stop_after));
            }
            // Dropping the listener closes the port: new connections are refused.
        });
        Proxy {
            addr,
            forwarded,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether the proxy has stopped.
    pub fn stopped(&self) -> bool {
        self.stop.is_cancelled()
    }
}

async fn relay(
    client: tokio::net::TcpStream,
    upstream: u16,
    count: Arc<AtomicU64>,
    stop: CancellationToken,
    stop_after: u64,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
            if count.fetch_add(n as u64, Ordering::SeqCst) + n as u64 >= stop_after {
                stop.cancel();
                break;
            }
        }
    };
    let down = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    };
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = async { tokio::join!(up, down) } => {}
    }
    // Dropping both halves closes both connections.
}

/// What a finished child did, with its peak resident memory.
pub struct Measured {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard error.
    pub stderr: String,
    /// Peak resident set size in bytes (`VmHWM`, see [`run_measured`]).
    pub max_rss: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// How often [`run_measured`] reads the child's high-water mark.
const RSS_POLL: Duration = Duration::from_millis(2);

/// Runs a command to the end and measures its peak RSS: `VmHWM` of `/proc/<pid>/status`, read
/// every [`RSS_POLL`] until the child exits.
///
/// Not `ru_maxrss` from `wait4`: the child is spawned from the test process (vfork), and at
/// `execve` Linux records the *old* address space's high-water mark in the new program's
/// `ru_maxrss`, i.e. the test process's own peak (hundreds of MiB after a sample load) instead of
/// the CLI's. `VmHWM` belongs to the address space the CLI gets at `execve` (done when `spawn`
/// returns), so it is the CLI's alone. It only grows, so the last reading is the peak up to
/// [`RSS_POLL`] before exit; the CLI's memory is bounded while it streams, not at its end.
pub fn run_measured(mut command: crate::support::Cli) -> Measured {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn the CLI");
    let outputs = collect_output(&mut child);
    let status_file = format!("/proc/{}/status", child.id());
    let mut max_rss = 0;
    let status = loop {
        // Read before checking for exit, so that the last reading is as late as possible.
        if let Some(kib) = std::fs::read_to_string(&status_file)
            .ok()
            .as_deref()
            .and_then(vm_hwm_kib)
        {
            max_rss = max_rss.max(kib * 1024);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(RSS_POLL);
    };
    let elapsed = started.elapsed();
    let (_, stderr) = outputs.join().unwrap();
    if let Some(leak) = crate::support::debug_formatting(&stderr) {
        panic!("the CLI printed Rust debug formatting ({leak}):\n{stderr}");
    }
    assert!(max_rss > 0, "no VmHWM was ever read for the CLI: {stderr}");
    Measured {
        code: status.code(),
        stderr,
        max_rss,
        elapsed,
    }
}

/// `VmHWM` in KiB from the text of `/proc/<pid>/status` (absent once the process has exited).
fn vm_hwm_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Reads a child's stdout and stderr on threads; join for the texts.
pub fn collect_output(child: &mut Child) -> std::thread::JoinHandle<(String, String)> {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    std::thread::spawn(move || {
        let err_thread = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(stderr) = stderr.as_mut() {
                let _ = stderr.read_to_string(&mut text);
            }
            text
        });
        let mut out = String::new();
        if let Some(stdout) = stdout.as_mut() {
            let _ = stdout.read_to_string(&mut out);
        }
        (out, err_thread.join().unwrap_or_default())
    })
}

/// Serialises the tests that run large exports, so that they do not compete for the two cores.
pub async fn heavy_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}
