//! `--version` prints the version and the git commit; build.rs finds the commit in a git work
//! tree of the crate only, takes `CITYFORGE_GIT_COMMIT` first and says `unknown` otherwise (a
//! tarball, the Docker build); completions and man pages come out of the clap definitions.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::support::cli;
use crate::{binary, root};

#[path = "../../build.rs"]
#[allow(dead_code)]
mod build_script;

/// `git` in `dir` with a fixed identity; panics when it fails.
fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A new repository in `dir` with one commit; its short commit.
fn repository_with_a_commit(dir: &Path) -> String {
    git(dir, &["init", "-q"]);
    std::fs::write(dir.join("Cargo.toml"), "[package]\n").unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "one"]);
    git(dir, &["rev-parse", "--short=12", "HEAD"])
}

#[test]
fn version_prints_the_version_and_the_commit() {
    let commit = env!("CITYFORGE_GIT_COMMIT");
    let expected = format!(
        "cityforge-data {} (commit {commit})\n",
        env!("CARGO_PKG_VERSION")
    );
    for flag in ["--version", "-V"] {
        let output = cli().arg(flag).output().unwrap();
        assert!(output.status.success(), "{output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), expected, "{flag}");
    }
    // Built from this work tree: the commit is its HEAD's (the build script reruns when HEAD
    // moves); from a copy without .git it is "unknown".
    let top = Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .current_dir(root())
        .output();
    let in_git = top.is_ok_and(|top| {
        top.status.success()
            && Path::new(String::from_utf8_lossy(&top.stdout).trim())
                .canonicalize()
                .ok()
                == root().canonicalize().ok()
    });
    if in_git {
        assert_eq!(commit, git(root(), &["rev-parse", "--short=12", "HEAD"]));
    } else {
        assert_eq!(commit, "unknown");
    }
}

#[test]
fn the_build_script_takes_the_variable_then_git_then_says_unknown() {
    let repository = tempfile::tempdir().unwrap();
    let head = repository_with_a_commit(repository.path());
    assert_eq!(head.len(), 12, "{head}");
    let cases = [
        // (CITYFORGE_GIT_COMMIT, the crate's folder, the commit printed)
        (
            Some("0123456789ab"),
            repository.path().to_owned(),
            "0123456789ab",
        ),
        (Some("  "), repository.path().to_owned(), head.as_str()),
        (None, repository.path().to_owned(), head.as_str()),
    ];
    for (given, dir, expected) in cases {
        let got = build_script::commit(given.map(str::to_owned), &dir);
        assert_eq!(got, expected, "{given:?} in {}", dir.display());
    }

    // A source tarball: no .git, or unpacked inside another repository, whose commit is not
    // this source's.
    let tarball = tempfile::tempdir().unwrap();
    assert_eq!(build_script::commit(None, tarball.path()), "unknown");
    let inside = repository.path().join("vendor/cityforge-data");
    std::fs::create_dir_all(&inside).unwrap();
    assert_eq!(build_script::commit(None, &inside), "unknown");
    assert_eq!(
        build_script::commit(Some("fedcba987654".into()), &inside),
        "fedcba987654",
        "the Dockerfile's build argument"
    );
}

#[test]
fn completions_for_each_shell_name_the_commands_and_flags() {
    for shell in ["bash", "zsh", "fish"] {
        let output = cli().args(["completions", shell]).output().unwrap();
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = String::from_utf8(output.stdout).unwrap();
        for word in [
            "cityforge-data",
            "export",
            "import",
            "verify",
            "keep-last",
            "also-empty",
        ] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    // The bash script loads and registers the completion.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cityforge-data.bash");
    let output = cli().args(["completions", "bash"]).output().unwrap();
    std::fs::write(&file, output.stdout).unwrap();
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}' && complete -p cityforge-data",
            file.display()
        ))
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{loaded:?}");
    assert!(
        String::from_utf8_lossy(&loaded.stdout).contains("cityforge-data"),
        "{loaded:?}"
    );

    let unknown = cli().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
}

#[test]
fn man_pages_for_the_program_and_each_command() {
    let output = cli().arg("man").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let page = String::from_utf8(output.stdout).unwrap();
    assert!(page.contains(".TH cityforge-data 1"), "{page}");
    assert!(
        page.contains(env!("CARGO_PKG_VERSION")),
        "the version: {page}"
    );
    for command in [
        "export",
        "import",
        "run",
        "check",
        "demo",
        "verify",
        "completions",
    ] {
        assert!(page.contains(command), "the program's page lists {command}");
        let output = cli().args(["man", command]).output().unwrap();
        assert!(output.status.success(), "{command}: {output:?}");
        let page = String::from_utf8(output.stdout).unwrap();
        assert!(
            page.contains(&format!(".TH cityforge-data-{command} 1")),
            "{command}: {page}"
        );
    }
    let export = cli().args(["man", "export"]).output().unwrap();
    assert!(String::from_utf8_lossy(&export.stdout).contains(r"keep\-last"));

    let unknown = cli().args(["man", "exprot"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("exprot") && stderr.contains("export, import"),
        "names the commands: {stderr}"
    );
}

#[test]
fn the_man_page_renders_where_man_is_installed() {
    let Ok(probe) = Command::new("man").arg("--version").output() else {
        // Past the test harness's capture, so that `cargo test` shows it.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: the man page was not rendered: man is not installed (apt-get install man-db)"
        );
        return;
    };
    assert!(probe.status.success());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cityforge-data.1");
    let status = Command::new(binary())
        .arg("man")
        .stdout(std::fs::File::create(&file).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let rendered = Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(&file)
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{rendered:?}");
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        text.contains("NAME") && text.contains("cityforge-data"),
        "{text}"
    );
}
