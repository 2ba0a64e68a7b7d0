//! The binary as the image and the CronJob run it: an empty environment (no HOME, PATH, USER,
//! TZ, PG* or AWS_* variables: the database URL comes as a flag), the image's non-root user
//! (uid 65532, when the test runs as root), a working folder it cannot write and one output
//! folder it can. It exports, verifies and imports there; an export aimed at the working folder
//! fails with a message in words and leaves nothing.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::binary;
use crate::support::{audit, count, empty_cityforge, files_in, sample_db};

/// The runtime image's non-root user and group (distroless `nonroot`, the Dockerfile's `USER`).
const NONROOT: u32 = 65532;

/// The folders of one run: `work` read-only for the binary, `out` writable.
struct Sandbox {
    base: tempfile::TempDir,
    /// The user the binary runs as: [`NONROOT`] when the test runs as root, else the test's.
    uid: Option<u32>,
}

impl Sandbox {
    fn new() -> Sandbox {
        let base = tempfile::tempdir().unwrap();
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_root = unsafe { libc::geteuid() } == 0;
        let uid = as_root.then_some(NONROOT);
        let work = base.path().join("work");
        let out = base.path().join("out");
        std::fs::create_dir(&work).unwrap();
        std::fs::create_dir(&out).unwrap();
        // A copy of the binary the user can reach: the build's own may sit below a folder only
        // its owner may enter (a clone in `mktemp -d`), as the image's binary never does.
        let bin = base.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::copy(binary(), bin.join("cityforge-data")).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(
            bin.join("cityforge-data"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o555)).unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o700)).unwrap();
        if let Some(uid) = uid {
            std::os::unix::fs::chown(&out, Some(uid), Some(uid)).unwrap();
        }
        let sandbox = Sandbox { base, uid };
        // The sandbox holds: the user cannot create a file in the working folder.
        let touch = sandbox
            .command(Path::new("/usr/bin/touch"))
            .arg("probe")
            .output()
            .unwrap();
        assert!(
            !touch.status.success(),
            "the working folder is writable: {touch:?}"
        );
        sandbox
    }

    fn work(&self) -> std::path::PathBuf {
        self.base.path().join("work")
    }

    fn out(&self, name: &str) -> String {
        self.base
            .path()
            .join("out")
            .join(name)
            .display()
            .to_string()
    }

    /// `program` with an empty environment, as the sandbox's user, in the working folder.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .current_dir(self.work())
            .stdin(std::process::Stdio::null());
        if let Some(uid) = self.uid {
            command.uid(uid).gid(uid);
        }
        command
    }

    /// The binary with `args`; its output audited.
    fn run(&self, args: &[&str]) -> Output {
        let binary = self.base.path().join("bin/cityforge-data");
        let output = self.command(&binary).args(args).output().unwrap();
        audit(&output);
        output
    }
}

#[tokio::test]
async fn exports_verifies_and_imports_with_an_empty_environment_in_a_read_only_folder() {
    let source = sample_db("sandbox", 300).await;
    let target = empty_cityforge("sandbox_target").await;
    let sandbox = Sandbox::new();
    let backup = sandbox.out("backup.json.gz");

    let version = sandbox.run(&["--version"]);
    assert!(version.status.success(), "{version:?}");

    let export = sandbox.run(&["export", "--database-url", &source.url, "-o", &backup]);
    assert!(export.status.success(), "export: {export:?}");
    let verify = sandbox.run(&["verify", &backup]);
    assert!(verify.status.success(), "verify: {verify:?}");
    assert!(
        String::from_utf8_lossy(&verify.stdout).starts_with("OK "),
        "{verify:?}"
    );
    let import = sandbox.run(&["import", "--database-url", &target.url, "-i", &backup]);
    assert!(import.status.success(), "import: {import:?}");
    let (from, to) = (source.connect().await, target.connect().await);
    for table in ["users", "cards", "card_tags", "forum_posts"] {
        assert_eq!(
            count(&to, table).await,
            count(&from, table).await,
            "{table}"
        );
    }

    // Without -o the export goes to the working folder, which it cannot write: exit 1, the
    // reason in words, nothing left behind.
    let refused = sandbox.run(&["export", "--database-url", &source.url]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("data_export_") && stderr.to_lowercase().contains("permission denied"),
        "names the file and the cause: {stderr}"
    );
    assert!(
        files_in(&sandbox.work()).is_empty(),
        "{:?}",
        files_in(&sandbox.work())
    );
    assert_eq!(
        files_in(&sandbox.base.path().join("out")),
        ["backup.json.gz", "backup.json.gz.sha256"]
    );
}
