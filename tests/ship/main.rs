//! Shipping the binary (issue 14), shown without a container engine or a cluster:
//! - [`version`]: `--version` names the git commit (and build.rs finds it, or says `unknown`,
//!   wherever the source comes from); completions and man pages come from the clap definitions;
//! - [`image`]: the Dockerfile's runtime image ships every library the binary needs, in a glibc
//!   as new as the binary asks for, and the build context (`.dockerignore`) holds what the build
//!   reads;
//! - [`sandbox`]: the binary exports, verifies and imports with an empty environment, as the
//!   image's non-root user, in a read-only working folder, writing only to its output folder;
//! - [`manifests`]: every file of deploy/k8s validates against the Kubernetes schemas (strict:
//!   an unknown field is an error) and keeps the image's security settings.

#[path = "../support/mod.rs"]
mod support;

mod image;
mod manifests;
mod sandbox;
mod version;

use std::path::{Path, PathBuf};

/// The crate's folder.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the crate, read whole.
pub fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

/// The binary under test (the profile the tests were built with).
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cityforge-data"))
}
