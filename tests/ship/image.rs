//! The container image, checked without a container engine: the Dockerfile's runtime image ships
//! every library the binary is linked against, with a glibc at least as new as the symbol
//! versions it asks for; the build stage runs the same Debian release; the image runs the
//! binary as a numeric non-root user; `.dockerignore` lets in what the build reads and keeps out
//! `.git`, `target/` and the rest.
//!
//! The binary checked is the one this test binary was built with: `cargo test --test ship` checks
//! the debug build, `cargo test --release --test ship` the release build the image ships (both
//! link the same libraries).

use std::collections::BTreeSet;
use std::process::Command;

use crate::{binary, read, root};

/// The Dockerfile's runtime image; [`SHIPPED`] and [`GLIBC`] describe it.
const RUNTIME_IMAGE: &str = "gcr.io/distroless/cc-debian12:nonroot";

/// The Debian release of [`RUNTIME_IMAGE`], as the build stage's image names it.
const DEBIAN_CODENAME: &str = "bookworm";

/// The shared libraries (sonames) [`RUNTIME_IMAGE`] ships. Where this comes from: the distroless
/// project's `base/config.bzl` (BASE_PACKAGES "debian12": libc6, libssl3) and `cc/config.bzl`
/// (CC_PACKAGES "debian12": libgomp1, libstdc++6, libgcc-s1, gcc-12-base); the sonames are those
/// of the Debian 12 packages (`dpkg -L libc6 libssl3 libgomp1 libstdc++6 libgcc-s1` on bookworm,
/// glibc 2.36-9+deb12u14), the dynamic loader for amd64 and arm64.
const SHIPPED: [&str; 24] = [
    // libc6
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libresolv.so.2",
    "libutil.so.1",
    "libanl.so.1",
    "libnsl.so.1",
    "libmvec.so.1",
    "libBrokenLocale.so.1",
    "libthread_db.so.1",
    "libc_malloc_debug.so.0",
    "libnss_files.so.2",
    "libnss_dns.so.2",
    "libnss_compat.so.2",
    // libssl3
    "libssl.so.3",
    "libcrypto.so.3",
    // libgcc-s1, libstdc++6, libgomp1
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libgomp.so.1",
    // linux-vdso is the kernel's, in every process.
    "linux-vdso.so.1",
];

/// The glibc version of [`RUNTIME_IMAGE`] (Debian 12's libc6 2.36): the newest `GLIBC_x.y`
/// symbol version the binary may need.
const GLIBC: (u32, u32) = (2, 36);

/// `readelf ARGS binary`'s output.
fn readelf(args: &[&str]) -> String {
    let output = Command::new("readelf")
        .args(args)
        .arg(binary())
        .output()
        .expect("readelf (binutils) runs");
    assert!(output.status.success(), "readelf {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The NEEDED entries of the binary's dynamic section.
fn needed() -> BTreeSet<String> {
    readelf(&["-d", "-W"])
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| {
            let start = line.find('[')? + 1;
            let end = line.rfind(']')?;
            Some(line[start..end].to_owned())
        })
        .collect()
}

/// `GLIBC_x.y` versions the binary asks for (its version-needs section).
fn glibc_versions() -> BTreeSet<(u32, u32)> {
    readelf(&["-V", "-W"])
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|version| {
            let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .collect()
}

#[test]
fn the_runtime_image_ships_every_library_the_binary_needs() {
    let needed = needed();
    assert!(
        needed.contains("libc.so.6"),
        "read the NEEDED entries: {needed:?}"
    );
    let missing: Vec<&String> = needed
        .iter()
        .filter(|name| !SHIPPED.contains(&name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} needs {missing:?}, which {RUNTIME_IMAGE} does not ship (it has {SHIPPED:?}); link \
         it statically or choose another runtime image",
        binary().display()
    );

    let interpreter = readelf(&["-l", "-W"]);
    let interpreter = interpreter
        .lines()
        .find_map(|line| line.split("program interpreter: ").nth(1))
        .map(|rest| rest.trim_end_matches(']').to_owned())
        .expect("a dynamically linked binary names its loader");
    let loader = interpreter.rsplit('/').next().unwrap();
    assert!(SHIPPED.contains(&loader), "the loader {interpreter}");

    let versions = glibc_versions();
    let newest = versions.iter().max().copied().expect("GLIBC_ versions");
    assert!(
        newest <= GLIBC,
        "the binary needs GLIBC_{}.{}, {RUNTIME_IMAGE} has glibc {}.{}: build it on {DEBIAN_CODENAME}",
        newest.0,
        newest.1,
        GLIBC.0,
        GLIBC.1
    );

    // And here, every one of them resolves.
    let ldd = Command::new("ldd")
        .arg(binary())
        .output()
        .expect("ldd runs");
    let text = String::from_utf8_lossy(&ldd.stdout);
    assert!(
        ldd.status.success() && !text.contains("not found"),
        "{text}"
    );
    for name in &needed {
        assert!(text.contains(name.as_str()), "ldd lists {name}: {text}");
    }
    println!("NEEDED {needed:?}, newest GLIBC_{}.{}", newest.0, newest.1);
}

/// The Dockerfile's instructions, continuation lines joined, comments left out.
fn instructions() -> Vec<String> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in read("Dockerfile").lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part.trim_end());
                current.push(' ');
            }
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
}

#[test]
fn the_dockerfile_builds_locked_on_the_runtime_release_and_runs_as_non_root() {
    let instructions = instructions();
    let from: Vec<&String> = instructions
        .iter()
        .filter(|i| i.starts_with("FROM "))
        .collect();
    assert_eq!(from.len(), 2, "a build stage and a runtime stage: {from:?}");
    assert!(
        from[0].starts_with("FROM rust:") && from[0].contains(&format!("-{DEBIAN_CODENAME} ")),
        "the build stage runs the runtime image's Debian release: {}",
        from[0]
    );
    assert_eq!(
        from[1],
        &format!("FROM {RUNTIME_IMAGE}"),
        "the libraries this test knows are {RUNTIME_IMAGE}'s"
    );
    let runtime: Vec<&String> = instructions
        .iter()
        .skip_while(|i| !i.starts_with(&format!("FROM {RUNTIME_IMAGE}")))
        .collect();
    let has = |wanted: &str| runtime.iter().any(|i| i.as_str() == wanted);
    assert!(
        has("USER 65532:65532"),
        "a numeric non-root user: {runtime:?}"
    );
    assert!(
        has(r#"ENTRYPOINT ["/usr/local/bin/cityforge-data"]"#),
        "the binary as the entrypoint: {runtime:?}"
    );
    assert!(
        instructions
            .iter()
            .any(|i| i.contains("cargo build --release --locked")),
        "a locked release build"
    );
    assert!(
        instructions
            .iter()
            .any(|i| i == "ENV CITYFORGE_GIT_COMMIT=${GIT_COMMIT}"),
        "the commit reaches build.rs"
    );

    // The build stage's Rust is at least the crate's rust-version.
    let version = |text: &str| -> (u32, u32) {
        let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap());
        (parts.next().unwrap(), parts.next().unwrap())
    };
    let rust = instructions
        .iter()
        .find_map(|i| i.strip_prefix("ARG RUST_VERSION="))
        .expect("ARG RUST_VERSION=");
    let manifest = read("Cargo.toml");
    let required = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        version(rust) >= version(required),
        "Rust {rust} < {required}"
    );
}

/// Whether `.dockerignore` sends `path` (relative, `/`-separated) to the build: Docker's rule,
/// for the patterns this file uses (`*`, `!name`, `!folder/`): the last pattern that matches
/// the path or one of its parents decides.
fn in_context(patterns: &[String], path: &str) -> bool {
    let mut included = true;
    for pattern in patterns {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern.as_str()),
        };
        let pattern = pattern.trim_end_matches('/');
        let matches = pattern == "*" || path == pattern || path.starts_with(&format!("{pattern}/"));
        if matches {
            included = negated;
        }
    }
    included
}

/// Every file under `dir` (relative to the crate, `/`-separated).
fn files_under(dir: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(root().join(dir)).unwrap() {
        let entry = entry.unwrap();
        let relative = format!("{dir}/{}", entry.file_name().to_string_lossy());
        if entry.file_type().unwrap().is_dir() {
            files_under(&relative, out);
        } else {
            out.push(relative);
        }
    }
}

#[test]
fn the_build_context_holds_what_the_build_reads_and_nothing_else() {
    let patterns: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    for pattern in &patterns {
        let bare = pattern.trim_start_matches('!').trim_end_matches('/');
        assert!(
            bare == "*" || !bare.contains(['*', '?', '[']),
            "in_context knows `*`, names and folders only: {pattern}"
        );
    }
    // What `cargo build --release --locked --bin cityforge-data` reads: the manifest, the lock
    // file, the build script, the sources (with src/sql), and every target the manifest
    // declares (cargo checks that the [[bench]] files exist).
    let mut needed = vec![
        "Cargo.toml".to_owned(),
        "Cargo.lock".to_owned(),
        "build.rs".to_owned(),
    ];
    files_under("src", &mut needed);
    let manifest = read("Cargo.toml");
    let mut in_bench = false;
    for line in manifest.lines() {
        if line.starts_with('[') {
            in_bench = line == "[[bench]]";
        } else if let Some(name) = line.strip_prefix("name = ").filter(|_| in_bench) {
            needed.push(format!("benches/{}.rs", name.trim_matches('"')));
        }
    }
    assert!(
        needed.iter().any(|f| f.starts_with("benches/")),
        "{needed:?}"
    );
    for file in &needed {
        assert!(root().join(file).is_file(), "{file} exists");
        assert!(
            in_context(&patterns, file),
            ".dockerignore leaves out {file}"
        );
    }
    for left_out in [
        ".git",
        ".git/HEAD",
        "target/release/cityforge-data",
        "tests/ship/main.rs",
        "README.md",
        "deploy/k8s/backup-cronjob.yaml",
        "data_export_20251024_030000.json",
        ".env",
    ] {
        assert!(
            !in_context(&patterns, left_out),
            ".dockerignore sends {left_out}"
        );
    }
}

#[test]
fn in_context_follows_the_last_matching_pattern() {
    let patterns: Vec<String> = ["*", "!src/", "!Cargo.toml"].map(String::from).to_vec();
    assert!(in_context(&patterns, "src/main.rs"));
    assert!(in_context(&patterns, "Cargo.toml"));
    assert!(!in_context(&patterns, "srcs/main.rs"));
    assert!(!in_context(&patterns, "Cargo.toml.orig"));
    assert!(in_context(&[], "anything"));
}
