//! The Pipelines section: its commands on a copy of pipelines/ (production and staging are
//! throwaway databases), the main example (`check --connect` under its own strict policy, then
//! `run`, its S3 sink served by the S3 server) and the transform reference.

use std::process::Output;

use crate::commands::runs;
use crate::s3::{configure_endpoint, S3Server};
use crate::shell::Shell;
use crate::support::{cli, count, empty_cityforge, sample_db, TestDb};
use crate::{block, PIPELINE_COMMANDS, PIPELINE_EXAMPLE, SUBSET, TRANSFORM_REFERENCE};

/// The CLI in `dir` with `env` and the S3 server's variables.
fn run_cli(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = cli();
    configure_endpoint(&mut command, &S3Server::shared().endpoint());
    command.current_dir(dir).args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn emails(db: &TestDb) -> Vec<String> {
    db.texts("SELECT email FROM users ORDER BY id").await
}

#[tokio::test]
async fn the_pipeline_commands_run_as_shown() {
    let production = sample_db("production", 300).await;
    let staging = empty_cityforge("staging").await;
    let shell = Shell::new(vec![
        ("PRODUCTION_DATABASE_URL".to_owned(), production.url.clone()),
        ("STAGING_DATABASE_URL".to_owned(), staging.url.clone()),
        ("SANITIZE_SECRET".to_owned(), "readme-secret".to_owned()),
    ]);
    // A copy of pipelines/, so that nothing a command writes lands in the repository.
    let ready = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    std::fs::create_dir(shell.path("pipelines")).unwrap();
    for entry in std::fs::read_dir(ready).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            shell.path("pipelines").join(entry.file_name()),
        )
        .unwrap();
    }
    let runs = runs(block(PIPELINE_COMMANDS));
    assert_eq!(
        runs.len(),
        5,
        "run, run --dry-run, check, check --connect, the subset's run --dry-run"
    );
    for run in runs {
        let ran = shell.run(&run, &[]);
        if run.command.text.contains("--dry-run") {
            assert!(ran.stdout.contains("Sinks:"), "the plan: {}", ran.stdout);
        }
        if run.command.text.contains("subset") {
            assert!(
                ran.stdout.contains("rows the subset copies"),
                "the subset's plan: {}",
                ran.stdout
            );
        }
    }
    let client = staging.connect().await;
    let production_users = count(&production.connect().await, "users").await;
    assert_eq!(count(&client, "users").await, production_users);
}

#[tokio::test]
async fn the_pipeline_example_passes_check_connect_and_runs() {
    let production = sample_db("example", 300).await;
    let staging = empty_cityforge("example_staging").await;
    // The example's sink writes to s3://backups/.
    let s3 = S3Server::shared();
    s3.create_bucket("backups");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pipeline.toml"),
        &block(PIPELINE_EXAMPLE).text,
    )
    .unwrap();
    let env = [
        ("PRODUCTION_DATABASE_URL", production.url.as_str()),
        ("STAGING_DATABASE_URL", staging.url.as_str()),
        ("SANITIZE_SECRET", "readme-secret"),
    ];
    let output = run_cli(dir.path(), &["check", "--connect", "pipeline.toml"], &env);
    assert_success(&output, "check --connect of the README's pipeline example");
    let output = run_cli(dir.path(), &["run", "pipeline.toml"], &env);
    assert_success(&output, "run of the README's pipeline example");

    let copied = emails(&staging).await;
    let original = emails(&production).await;
    assert_eq!(copied.len(), original.len(), "every user copied");
    assert!(
        copied.iter().all(|email| !original.contains(email)),
        "every e-mail replaced"
    );
    let keys = s3.keys("backups").await;
    assert!(
        keys.len() == 2 && keys[0].starts_with("staging_") && keys[0].ends_with(".json.gz"),
        "the export and its .sha256: {keys:?}"
    );
}

#[tokio::test]
async fn the_transform_reference_passes_check_connect_and_runs() {
    let db = sample_db("readme_transforms", 100).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("reference.toml"),
        format!(
            "[source]\ntype = \"postgres\"\nurl = \"{}\"\n\n{}\n\
             [[sinks]]\ntype = \"export_file\"\nlocation = \"out.json\"\n",
            db.url,
            block(TRANSFORM_REFERENCE).text
        ),
    )
    .unwrap();
    let env = [("SANITIZE_SECRET", "s")];
    let output = run_cli(dir.path(), &["check", "--connect", "reference.toml"], &env);
    assert_success(&output, "check --connect of the transform reference");
    let output = run_cli(dir.path(), &["run", "reference.toml"], &env);
    assert_success(&output, "run of the transform reference");
}

#[tokio::test]
async fn the_subset_example_passes_check_connect_and_runs() {
    let db = sample_db("readme_subset", 2_000).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("subset.toml"),
        format!(
            "[source]\ntype = \"postgres\"\nurl = \"{}\"\n\n{}\n\
             [[sinks]]\ntype = \"export_file\"\nlocation = \"out.json\"\n",
            db.url,
            block(SUBSET).text
        ),
    )
    .unwrap();
    let output = run_cli(dir.path(), &["check", "--connect", "subset.toml"], &[]);
    assert_success(&output, "check --connect of the subset example");
    let listed = String::from_utf8_lossy(&output.stdout).into_owned();
    let output = run_cli(dir.path(), &["run", "subset.toml"], &[]);
    assert_success(&output, "run of the subset example");
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out.json")).unwrap()).unwrap();
    let users = document["data"]["User"].as_array().unwrap().len();
    let all_users = count(&db.connect().await, "users").await as usize;
    assert!(
        users > 0 && users < all_users,
        "a slice: {users} of {all_users}"
    );
    let announced = listed
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("User "))
        .map(|rest| rest.trim().to_owned());
    assert_eq!(
        announced,
        Some(users.to_string()),
        "check --connect announced the users copied: {listed}"
    );
}
