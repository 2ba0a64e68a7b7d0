//! Build script: the git commit `--version` prints, as `CITYFORGE_GIT_COMMIT`.
//!
//! Where the commit comes from, first match wins:
//! 1. the `CITYFORGE_GIT_COMMIT` environment variable at build time, when not empty (the
//!    Dockerfile passes its `GIT_COMMIT` build argument this way, since `.dockerignore` keeps
//!    `.git` out of the build context);
//! 2. `git rev-parse --short=12 HEAD`, only when this crate's folder is the top of a git work tree
//!    (a clone or a worktree), so that a source tarball unpacked inside some other repository
//!    does not print that repository's commit;
//! 3. otherwise `unknown` (a tarball, a vendored copy, no `git` installed): the build never
//!    fails for want of a commit.
//!
//! Uncommitted changes are not marked: the commit is HEAD's at build time. The script reruns when
//! HEAD moves (a commit, a checkout) or the variable changes, not on every source change.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The variable that overrides git, and that the crate reads with `env!`.
const VARIABLE: &str = "CITYFORGE_GIT_COMMIT";

fn main() {
    println!("cargo:rerun-if-env-changed={VARIABLE}");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = commit(std::env::var(VARIABLE).ok(), &manifest_dir);
    println!("cargo:rustc-env={VARIABLE}={commit}");
}

/// The commit to print: `given` (the variable) when not blank, else git's in `dir`, else
/// `unknown`.
pub fn commit(given: Option<String>, dir: &Path) -> String {
    given
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .or_else(|| commit_from_git(dir))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `git` in `dir`, its output trimmed; `None` when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

/// HEAD's short commit when `dir` is the top of a git work tree, with the files whose change
/// moves HEAD registered for a rerun.
fn commit_from_git(dir: &Path) -> Option<String> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same(Path::new(&top), dir) {
        return None;
    }
    // HEAD itself (a checkout), the branch it points at (a commit) and packed-refs (a gc); in a
    // worktree these live in different folders, which `--git-path` resolves.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(dir, &["rev-parse", "--git-path", &name]) {
            let path = dir.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    git(dir, &["rev-parse", "--short=12", "HEAD"])
}
