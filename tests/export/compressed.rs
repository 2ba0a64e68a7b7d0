//! Compressed exports read by the standard tools: `gzip -d`, Python's `gzip` module and `zstd -d`
//! give exactly the plain export's bytes (the timestamp value aside), though our files hold one
//! gzip member (zstd frame) per block; and `--compress-level` is applied and checked.

use std::path::Path;
use std::process::Command;

use crate::support::{cli, gzip_members, sample_db};
use crate::without_timestamp;

/// Runs a decompressing tool on `file` and returns what it wrote, or `None` (with a message
/// saying the check is skipped) when the tool is not installed.
fn decompressed_by(program: &str, args: &[&str], file: &Path) -> Option<Vec<u8>> {
    let output = match Command::new(program).args(args).arg(file).output() {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            println!(
                "SKIPPED: {program} is not installed; {} not checked with it",
                file.display()
            );
            return None;
        }
        Err(error) => panic!("{program}: {error}"),
    };
    assert!(
        output.status.success(),
        "{program} {args:?} {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(output.stdout)
}

/// Python's `gzip` module reading `file` to standard output.
const PYTHON_GZIP: &str = "import gzip, shutil, sys\n\
    with gzip.open(sys.argv[1], 'rb') as f:\n    shutil.copyfileobj(f, sys.stdout.buffer)\n";

fn export(url: &str, file: &Path, args: &[&str]) {
    let output = [std::ffi::OsStr::new("-o"), file.as_os_str()];
    crate::export_ok(
        url,
        None,
        output.into_iter().chain(args.iter().map(|a| a.as_ref())),
    );
}

fn text(bytes: Vec<u8>) -> String {
    without_timestamp(&String::from_utf8(bytes).expect("UTF-8"))
}

#[tokio::test]
async fn standard_tools_read_the_compressed_exports_as_the_plain_one() {
    // About 5 MB of document: several gzip members and two zstd frames.
    let db = sample_db("standard_tools", 10_000).await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    export(&db.url, &path("plain.json"), &[]);
    export(&db.url, &path("default.json.gz"), &[]);
    export(&db.url, &path("fast.json.gz"), &["--compress-level", "1"]);
    export(&db.url, &path("best.json.gz"), &["--compress-level", "9"]);
    export(&db.url, &path("default.json.zst"), &[]);
    export(
        &db.url,
        &path("strong.json.zst"),
        &["--compress-level", "9"],
    );
    let plain = std::fs::read(path("plain.json")).unwrap();
    assert!(
        plain.len() > 4 << 20,
        "{} bytes: too few for several blocks",
        plain.len()
    );
    let plain = text(plain);

    for name in ["default.json.gz", "fast.json.gz", "best.json.gz"] {
        let file = path(name);
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            gzip_members(&bytes) > 1,
            "{name}: one member per 1 MiB block"
        );
        if let Some(out) = decompressed_by("gzip", &["-d", "-c"], &file) {
            assert!(
                text(out) == plain,
                "gzip -d {name} differs from the plain export"
            );
        }
        if let Some(out) = decompressed_by("python3", &["-c", PYTHON_GZIP], &file) {
            assert!(
                text(out) == plain,
                "Python's gzip.open({name}) differs from the plain export"
            );
        }
        assert!(
            without_timestamp(&crate::read_document(&file).await) == plain,
            "{name}"
        );
    }
    for name in ["default.json.zst", "strong.json.zst"] {
        let file = path(name);
        if let Some(out) = decompressed_by("zstd", &["-d", "-c", "-q"], &file) {
            assert!(
                text(out) == plain,
                "zstd -d {name} differs from the plain export"
            );
        }
        assert!(
            without_timestamp(&crate::read_document(&file).await) == plain,
            "{name}"
        );
    }
    let size = |name: &str| std::fs::metadata(path(name)).unwrap().len();
    assert!(size("fast.json.gz") > size("default.json.gz"));
    assert!(size("default.json.gz") >= size("best.json.gz"));
    assert!(size("default.json.zst") > size("strong.json.zst"));
}

#[test]
fn invalid_levels_are_refused_with_the_range() {
    let dir = tempfile::tempdir().unwrap();
    // Refused before connecting: no database needed.
    for (args, words) in [
        (
            vec!["-o", "x.json.gz", "--compress-level", "10"],
            "--compress-level: compression level 10 is not one of gzip's: give 1 to 9 (default 6)",
        ),
        (
            vec![
                "-o",
                "x.json",
                "--compress",
                "zstd",
                "--compress-level",
                "0",
            ],
            "compression level 0 is not one of zstd's: give 1 to 22 (default 3)",
        ),
        (
            vec!["-o", "x.json", "--compress-level", "3"],
            "the document is not compressed",
        ),
    ] {
        let output = cli()
            .current_dir(dir.path())
            .arg("export")
            .args(&args)
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "no file"
        );
    }
}
