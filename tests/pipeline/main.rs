//! Integration tests of pipeline files (`run`, `check`) against a real PostgreSQL.

#[path = "../support/mod.rs"]
mod support;

mod drift;
mod encrypted;
mod engine;
mod postgres;
mod ready;
mod subset;
mod subset_generated;

use std::path::Path;
use std::process::Output;

use support::cli;

/// Runs the CLI with `args` and the given environment.
pub fn run_cli(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Output {
    let mut command = cli();
    command.current_dir(dir).args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

/// The process's stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes a pipeline file into `dir`.
pub fn write_pipeline(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}
