//! A real S3-compatible server for the tests: moto's server (`pip install "moto[server]"`, which
//! `.ci/run` installs when missing) on 127.0.0.1 with a random port, one per test binary, stopped
//! at exit. Also a TCP proxy that can "stop the server" mid-request, and helpers that look at the
//! bucket directly (keys, pending multipart uploads) and measure a child's peak memory.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use cityforge_data::storage::{Location, StoreOptions};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio_util::sync::CancellationToken;

/// Access key the tests use (moto accepts any).
pub const ACCESS_KEY: &str = "AKIACITYFORGETEST";
/// Secret the tests use; no message may ever contain it.
pub const SECRET_KEY: &str = "cityforge-test-secret-Zq8xV3nP";

static NEXT_BUCKET: AtomicUsize = AtomicUsize::new(0);

/// The moto server of this test binary.
pub struct S3Server {
    port: u16,
    pid: i32,
}

static SERVER_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn stop_server_at_exit() {
    let pid = SERVER_PID.swap(0, Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: signalling a child we started.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

impl S3Server {
    /// The server, started on first use (a failed start panics with what to install).
    pub fn shared() -> &'static S3Server {
        static SERVER: OnceLock<S3Server> = OnceLock::new();
        SERVER.get_or_init(|| {
            let mut last_error = String::new();
            for _ in 0..3 {
                match start_moto() {
                    Ok(server) => {
                        SERVER_PID.store(server.pid, Ordering::SeqCst);
                        // SAFETY: registers a plain extern "C" fn that never unwinds.
                        unsafe {
                            libc::atexit(stop_server_at_exit);
                        }
                        return server;
                    }
                    Err(error) => last_error = error,
                }
            }
            panic!(
                "cannot start moto's S3 server ({last_error}); install it with \
                 pip install \"moto[server]\" (.ci/run does)"
            )
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

    /// Creates a new, empty bucket named after `label`.
    pub fn bucket(&self, label: &str) -> String {
        let name = format!(
            "cf-{label}-{}-{}",
            std::process::id(),
            NEXT_BUCKET.fetch_add(1, Ordering::SeqCst)
        );
        let (status, body) = http(self.port, "PUT", &format!("/{name}"));
        assert_eq!(status, 200, "create bucket {name}: {body}");
        name
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
        let (status, body) = http(self.port, "GET", &format!("/{bucket}?uploads"));
        assert_eq!(status, 200, "list uploads: {body}");
        body.split("<Upload>")
            .skip(1)
            .filter_map(|upload| Some((element(upload, "Key")?, element(upload, "UploadId")?)))
            .collect()
    }

    /// Parts stored so far by a pending multipart upload.
    pub fn uploaded_parts(&self, bucket: &str, key: &str, upload_id: &str) -> usize {
        let (status, body) = http(
            self.port,
            "GET",
            &format!(
                "/{bucket}/{key}?uploadId={}",
                url::form_urlencoded::byte_serialize(upload_id.as_bytes()).collect::<String>()
            ),
        );
        if status != 200 {
            return 0;
        }
        body.matches("<Part>").count()
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn moto_command(port: u16) -> Command {
    let port = port.to_string();
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
            .unwrap_or(false)
    };
    let mut command = if on_path("moto_server") {
        Command::new("moto_server")
    } else {
        let mut command = Command::new("python3");
        command.args(["-m", "moto.server"]);
        command
    };
    command.args(["-H", "127.0.0.1", "-p", &port]);
    command
}

fn start_moto() -> Result<S3Server, String> {
    let port = free_port();
    let log = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut command = moto_command(port);
    command
        .stdin(Stdio::null())
        .stdout(log.reopen().map_err(|e| e.to_string())?)
        .stderr(log.reopen().map_err(|e| e.to_string())?)
        .current_dir(std::env::temp_dir());
    die_with_parent(&mut command);
    let pid = spawn_kept(command).map_err(|e| format!("cannot run moto: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let (status, _) = http(port, "GET", "/");
            if status == 200 {
                return Ok(S3Server { port, pid });
            }
        }
        let exited = unsafe { libc::kill(pid, 0) } != 0;
        if exited || Instant::now() > deadline {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            let mut text = String::new();
            let _ = log.reopen().map(|mut f| f.read_to_string(&mut text));
            return Err(format!("moto did not come up on port {port}: {text}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The child gets SIGTERM when the thread that spawned it ends (see [`spawn_kept`]).
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl and getppid are async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Spawns from a thread that waits for the child, so `PR_SET_PDEATHSIG` fires only when the child
/// is gone or the test process dies.
fn spawn_kept(mut command: Command) -> std::io::Result<i32> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || match command.spawn() {
        Ok(mut child) => {
            let _ = sender.send(Ok(child.id() as i32));
            let _ = child.wait();
        }
        Err(error) => {
            let _ = sender.send(Err(error));
        }
    });
    receiver
        .recv()
        .map_err(|_| std::io::Error::other("the spawning thread died"))?
}

/// The text of the first `<name>` element in `xml`.
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..end].to_owned())
}

/// A plain HTTP/1.0 request without a body or signature (moto accepts those); status and body.
pub fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    let mut stream = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(stream) => stream,
        Err(error) => return (0, error.to_string()),
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let request =
        format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, "write failed".to_owned());
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
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
    /// Peak resident set size in bytes (`ru_maxrss`).
    pub max_rss: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Forks and execs its arguments, waits with `wait4` and writes the child's `ru_maxrss` (KiB) to
/// the file named first; exits as the child did.
const TRAMPOLINE: &str = r#"
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"#;

/// Runs a command to the end and measures its peak RSS: `ru_maxrss` from `wait4` on the child.
///
/// The child is started by a small Python trampoline rather than by this process: at `execve`,
/// Linux records the *old* address space's high-water mark in the new program's `ru_maxrss`,
/// and a child spawned directly from the test process (vfork) would report the test process's
/// own peak (hundreds of MiB after a sample load) instead of the CLI's.
pub fn run_measured(command: Command) -> Measured {
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut wrapper = Command::new("python3");
    wrapper
        .arg("-c")
        .arg(TRAMPOLINE)
        .arg(report.path())
        .arg(command.get_program())
        .args(command.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapper.env(key, value),
            None => wrapper.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapper.current_dir(dir);
    }
    let started = Instant::now();
    let mut child = wrapper.spawn().expect("spawn python3 and the CLI");
    let outputs = collect_output(&mut child);
    let status = child.wait().unwrap();
    let elapsed = started.elapsed();
    let (_, stderr) = outputs.join().unwrap();
    let kib: u64 = std::fs::read_to_string(report.path())
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no ru_maxrss from the trampoline: {stderr}"));
    Measured {
        code: status.code(),
        stderr,
        max_rss: kib * 1024,
        elapsed,
    }
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
