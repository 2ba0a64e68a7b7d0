//! Fuzzing on the stable toolchain: a deterministic, coverage-free byte-mutation fuzzer for the
//! export document reader and for pipeline files (see docs/FUZZING.md).
//!
//! `cargo test` runs each target for a few seconds. Longer runs:
//!
//! ```text
//! CITYFORGE_FUZZ_SECS=1800 cargo test --release --test fuzz -- --nocapture
//! ```
//!
//! Settings (environment): `CITYFORGE_FUZZ_SECS` (per target, default 3), `CITYFORGE_FUZZ_SEED`
//! (default 1), `CITYFORGE_FUZZ_TIMEOUT_SECS` (an input running longer is a hang, default 30),
//! `CITYFORGE_FUZZ_CLI_FILES` (mutated files run through the real `check`, default 100),
//! `CITYFORGE_FUZZ_FINDINGS` (where failing inputs go, default target/tmp/fuzz-findings).

#[path = "../support/mod.rs"]
mod support;

mod document;
mod engine;
mod mutate;
mod pipeline;
mod regressions;

use std::path::{Path, PathBuf};
use std::time::Duration;

use engine::{Budget, Report, Target};

fn setting(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
        Err(_) => default,
    }
}

/// The budget from the environment.
fn budget() -> Budget {
    Budget {
        duration: Duration::from_secs(setting("CITYFORGE_FUZZ_SECS", 3)),
        seed: setting("CITYFORGE_FUZZ_SEED", 1),
        timeout: Duration::from_secs(setting("CITYFORGE_FUZZ_TIMEOUT_SECS", 30)),
        findings_dir: std::env::var_os("CITYFORGE_FUZZ_FINDINGS")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-findings")),
    }
}

fn corpus(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(folder)
}

/// Seeds of the document target: the corpus, and the inputs of past findings.
pub fn document_seeds() -> Vec<(PathBuf, Vec<u8>)> {
    let mut seeds = engine::files(&corpus("documents"));
    seeds.extend(engine::files(&corpus("regressions/document")));
    seeds
}

/// Seeds of the pipeline target: the ready pipelines, the corpus, and past findings.
pub fn pipeline_seeds() -> Vec<(PathBuf, Vec<u8>)> {
    let mut seeds = engine::files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines"));
    seeds.extend(engine::files(&corpus("pipelines")));
    seeds.extend(engine::files(&corpus("regressions/pipeline")));
    seeds
}

fn fuzz(target: &Target, seeds: Vec<(PathBuf, Vec<u8>)>) -> Report {
    let seeds: Vec<Vec<u8>> = seeds.into_iter().map(|(_, bytes)| bytes).collect();
    let report = engine::fuzz(target, &seeds, &budget());
    // Printed for `--nocapture` runs and kept in the test's output on failure.
    println!("{}", report.summary());
    report
}

fn assert_no_findings(report: &Report) {
    assert!(
        report.findings.is_empty(),
        "{} finding(s); minimized inputs are in {} (copy one into \
         tests/fuzz/corpus/regressions/ to keep it as a regression test)\n{}",
        report.findings.len(),
        budget().findings_dir.display(),
        report.summary()
    );
}

#[test]
fn document_reader() {
    let report = fuzz(&document::TARGET, document_seeds());
    assert_no_findings(&report);
}

#[test]
fn pipeline_files() {
    let report = fuzz(&pipeline::TARGET, pipeline_seeds());
    assert_no_findings(&report);
}

/// Mutated pipeline files through the real `cityforge-data check`: exit code 0, 1 or 2, never
/// a panic's 101 or a signal.
#[test]
fn check_command() {
    use rand::SeedableRng;
    let files = setting("CITYFORGE_FUZZ_CLI_FILES", 100);
    let budget = budget();
    let seeds: Vec<Vec<u8>> = pipeline_seeds().into_iter().map(|(_, b)| b).collect();
    let mut mutator = mutate::Mutator::new(
        rand_chacha::ChaCha8Rng::seed_from_u64(budget.seed),
        &seeds,
        pipeline::TARGET.dictionary,
    );
    let dir = tempfile::tempdir().unwrap();
    let mut codes = std::collections::BTreeMap::<i32, u64>::new();
    let started = std::time::Instant::now();
    for index in 0..files {
        let mut input = seeds[index as usize % seeds.len()].clone();
        if index as usize >= seeds.len() {
            for _ in 0..1 + index % 4 {
                (pipeline::TARGET.mutate)(&mut mutator, &mut input);
            }
        }
        let path = dir.path().join(format!("p{index}.toml"));
        std::fs::write(&path, &input).unwrap();
        let mut command = support::cli();
        command.arg("check").arg(&path).current_dir(dir.path());
        for name in pipeline::ENV_NAMES {
            if index % 2 == 0 {
                command.env(name, pipeline::environment(name).unwrap_or_default());
            } else {
                command.env_remove(name);
            }
        }
        let output = command.output().unwrap();
        let code = output.status.code();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !matches!(code, Some(0..=2)) {
            let kept = budget
                .findings_dir
                .join(format!("check-exit-{code:?}-{index}.toml"));
            let _ = std::fs::create_dir_all(&budget.findings_dir);
            let _ = std::fs::write(&kept, &input);
            panic!(
                "check exited with {code:?} on {} (kept as {}):\n{stderr}",
                path.display(),
                kept.display()
            );
        }
        if code != Some(0) {
            // Warnings (a literal secret, say) may come first; the error is a line of its own.
            assert!(
                stderr
                    .lines()
                    .any(|line| line.starts_with("error: ") && line.trim().len() > "error:".len()),
                "check failed without an error message (exit {code:?}):\n{stderr}"
            );
        }
        *codes.entry(code.unwrap_or(-1)).or_default() += 1;
    }
    println!(
        "check command: {files} files in {:.1} s, exit codes {codes:?}",
        started.elapsed().as_secs_f64()
    );
}

/// The seeds themselves (and every kept regression input) pass both targets.
#[test]
fn corpus_passes() {
    for (target, seeds) in [
        (&document::TARGET, document_seeds()),
        (&pipeline::TARGET, pipeline_seeds()),
    ] {
        assert!(!seeds.is_empty());
        for (path, bytes) in seeds {
            if let Err(signature) = engine::execute(target, &bytes) {
                panic!(
                    "{} fails target {}: {signature}",
                    path.display(),
                    target.name
                );
            }
        }
    }
}

/// `CITYFORGE_FUZZ_REPLAY=FILE`: runs one saved input through both targets and prints the
/// outcome and time of each (does nothing without the variable).
#[test]
fn replay() {
    let Some(path) = std::env::var_os("CITYFORGE_FUZZ_REPLAY") else {
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    for target in [&document::TARGET, &pipeline::TARGET] {
        let started = std::time::Instant::now();
        let result = engine::execute(target, &bytes);
        println!(
            "{}: {result:?} in {:.3} s",
            target.name,
            started.elapsed().as_secs_f64()
        );
    }
}
