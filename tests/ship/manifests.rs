//! Every manifest of deploy/k8s validates against the Kubernetes schemas, strictly (an unknown or
//! misspelt field is an error), with kubernetes-validate: a PyPI package that carries the schemas
//! of each Kubernetes version inside it, so validation needs no network. `.ci/run` installs it;
//! the test installs nothing. Where it is missing, the test fails in CI (`CI=true`) and says it
//! skipped otherwise.
//!
//! Beside the schemas, what the schemas cannot know: the image is this crate's at its version,
//! every pod runs as the image's non-root user and every container drops its capabilities on a
//! read-only root file system, with memory requests and limits above the measured peak, and every
//! Secret the manifests read is one the README shows how to create, with the same keys.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{read, root};

/// The Kubernetes versions the manifests must validate against: the oldest still supported by
/// the large providers' extended support, and the newest the validator knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

/// The validator's command name (its PyPI package has the same name).
const VALIDATOR: &str = "kubernetes-validate";

/// The image the manifests run: this crate's, at its version.
fn image() -> String {
    format!(
        "ghcr.io/smoltech/cityforge-data:{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The manifests: every `.yaml` of deploy/k8s.
fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/k8s"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "the CronJob and the restore Job: {files:?}"
    );
    files
}

/// The validator: `$CITYFORGE_KUBERNETES_VALIDATE`, else on PATH, else in the virtual
/// environment `.ci/run` creates (`~/.cache/cityforge-ci/venv`).
fn validator() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CITYFORGE_KUBERNETES_VALIDATE") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(VALIDATOR));
    let ci_venv = std::env::var_os("HOME").map(|home| {
        Path::new(&home)
            .join(".cache/cityforge-ci/venv/bin")
            .join(VALIDATOR)
    });
    on_path.chain(ci_venv).find(|path| path.is_file())
}

/// The validator, or `None` after saying why the test is skipped; panics in CI.
fn validator_or_skip() -> Option<PathBuf> {
    if let Some(validator) = validator() {
        return Some(validator);
    }
    let how = format!(
        "{VALIDATOR} is not installed: `bash .ci/run` installs it, or \
         `python3 -m venv ~/.cache/cityforge-ci/venv && \
         ~/.cache/cityforge-ci/venv/bin/pip install {VALIDATOR}`"
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{how} (CI=true: the manifests must be validated)"
    );
    // Past the test harness's capture (which hides a passing test's output), so that
    // `cargo test` shows it.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: the manifests were not validated against the Kubernetes schemas; {how}"
    );
    None
}

/// Runs the validator on `files` for `version`: (success, output).
fn validate(validator: &Path, version: &str, files: &[PathBuf]) -> (bool, String) {
    let output = Command::new(validator)
        .args(["--strict", "--kubernetes-version", version])
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", validator.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn every_manifest_validates_against_the_kubernetes_schemas() {
    let Some(validator) = validator_or_skip() else {
        return;
    };
    let files = manifests();
    for version in KUBERNETES_VERSIONS {
        let (valid, output) = validate(&validator, version, &files);
        assert!(valid, "Kubernetes {version}:\n{output}");
        for file in &files {
            let name = file.file_name().unwrap().to_string_lossy();
            assert!(
                output.contains(&*name) && output.contains("passed"),
                "{name} was validated:\n{output}"
            );
        }
    }

    // A typo in a field name fails: the validation is strict.
    let dir = tempfile::tempdir().unwrap();
    for (file, from, to) in [
        (
            "backup-cronjob.yaml",
            "readOnlyRootFilesystem",
            "readOnlyRootFileSystem",
        ),
        ("restore-job.yaml", "backoffLimit", "backofLimit"),
        ("restore-job.yaml", "capabilities:", "capabilites:"),
    ] {
        let text = read(&format!("deploy/k8s/{file}"));
        assert!(text.contains(from), "{file} has {from}");
        let broken = dir.path().join(file);
        std::fs::write(&broken, text.replacen(from, to, 1)).unwrap();
        let (valid, output) = validate(&validator, KUBERNETES_VERSIONS[1], &[broken]);
        assert!(
            !valid,
            "{file} with {to} instead of {from} passed:\n{output}"
        );
    }
}

/// Occurrences of `line` (trimmed) among the lines of `text` that are not comments.
fn count(text: &str, line: &str) -> usize {
    text.lines().filter(|l| l.trim() == line).count()
}

/// Mebibytes of a Kubernetes quantity in `Mi` or `Gi`.
fn mebibytes(quantity: &str) -> u64 {
    if let Some(n) = quantity.strip_suffix("Mi") {
        n.parse().unwrap()
    } else if let Some(n) = quantity.strip_suffix("Gi") {
        n.parse::<u64>().unwrap() * 1024
    } else {
        panic!("a quantity in Mi or Gi: {quantity}")
    }
}

/// The `memory:` values under each `section:` line (`requests:`, `limits:`), in order.
fn memory(text: &str, section: &str) -> Vec<u64> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut values = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != section {
            continue;
        }
        let inside = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || indent(l) > indent(line));
        for l in inside {
            if let Some(value) = l.trim().strip_prefix("memory: ") {
                values.push(mebibytes(value));
            }
        }
    }
    values
}

#[test]
fn every_container_runs_the_pinned_image_locked_down_with_sized_memory() {
    for file in manifests() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let images: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("image: "))
            .collect();
        assert!(!images.is_empty(), "{name}");
        for used in &images {
            assert_eq!(*used, image(), "{name}: a pinned tag, the crate's version");
        }
        let containers = images.len();
        let pods = count(&text, "restartPolicy: Never");
        assert_eq!(pods, 1, "{name}: one pod template");
        for (line, times) in [
            ("automountServiceAccountToken: false", pods),
            ("runAsNonRoot: true", pods),
            ("runAsUser: 65532", pods),
            ("type: RuntimeDefault", pods),
            ("allowPrivilegeEscalation: false", containers),
            ("readOnlyRootFilesystem: true", containers),
            (r#"drop: ["ALL"]"#, containers),
            (r#"command: ["cityforge-data"]"#, containers),
        ] {
            assert_eq!(count(&text, line), times, "{name}: {line}");
        }
        // Every container's memory: the request at least the 64 MiB every measured run stays
        // under (docs/BENCHMARKS.md: 14-35 MiB release, ~55 MiB a debug export to S3), the limit
        // above the request.
        let (requests, limits) = (memory(&text, "requests:"), memory(&text, "limits:"));
        assert_eq!(
            (requests.len(), limits.len()),
            (containers, containers),
            "{name}"
        );
        for (request, limit) in requests.iter().zip(&limits) {
            assert!(*request >= 64, "{name}: a memory request of {request} Mi");
            assert!(
                limit > request,
                "{name}: limit {limit} Mi, request {request} Mi"
            );
        }
    }
}

/// The `(secret, key)` pairs a manifest reads through `secretKeyRef`.
fn secret_keys(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut pairs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if *line != "secretKeyRef:" {
            continue;
        }
        let field = |name: &str| {
            lines[i + 1..i + 3]
                .iter()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("{name} after secretKeyRef (line {})", i + 1))
                .to_owned()
        };
        pairs.push((field("name: "), field("key: ")));
    }
    pairs
}

#[test]
fn every_secret_the_manifests_read_is_created_in_the_readme() {
    let readme = read("README.md").replace("\\\n", " ");
    let created: Vec<&str> = readme
        .lines()
        .filter(|l| l.trim_start().starts_with("kubectl create secret generic "))
        .collect();
    for file in manifests() {
        let text = std::fs::read_to_string(&file).unwrap();
        let pairs = secret_keys(&text);
        assert!(!pairs.is_empty(), "{}", file.display());
        for (secret, key) in pairs {
            let command = created
                .iter()
                .find(|l| l.contains(&format!("generic {secret} ")))
                .unwrap_or_else(|| panic!("the README creates the Secret {secret}"));
            assert!(
                command.contains(&format!("--from-literal={key}=")),
                "the README's Secret {secret} has the key {key}: {command}"
            );
        }
    }
}
