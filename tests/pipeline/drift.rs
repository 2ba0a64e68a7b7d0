//! Schema drift between a PostgreSQL source and a PostgreSQL target: `check --connect` and `run`
//! list every difference model by model, say which side is behind, and write nothing.

use crate::support::{checksums, empty_cityforge, sample_db};
use crate::{run_cli, stderr, write_pipeline};

#[tokio::test]
async fn a_target_whose_schema_drifted_is_refused_before_any_write() {
    let source = sample_db("driftsource", 200).await;
    let target = empty_cityforge("drifttarget").await;
    // The target misses a migration the source had (a column), has one the source lacks (a
    // required column), and narrowed a type.
    target
        .connect()
        .await
        .batch_execute(
            "ALTER TABLE users DROP COLUMN last_login;\n\
             ALTER TABLE users ALTER COLUMN first_name TYPE varchar(5);\n\
             ALTER TABLE tags ADD COLUMN slug text NOT NULL;",
        )
        .await
        .unwrap();
    let before = checksums(&target).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(
        dir.path(),
        "drift.toml",
        &format!(
            "[source]\ntype = \"postgres\"\nurl = \"{}\"\n\n\
             [[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\n",
            source.url, target.url
        ),
    );
    for command in ["check", "run"] {
        let args: Vec<&str> = if command == "check" {
            vec!["check", "--connect", file.to_str().unwrap()]
        } else {
            vec!["run", file.to_str().unwrap()]
        };
        let output = run_cli(&args, &[], dir.path());
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{command}: {message}");
        for part in [
            "drift.toml:5:1: the target's schema differs from the source's for 2 models",
            "\n  User:\n",
            &format!(
                "the target lacks column last_login that the source has: the target ({}) is \
                 behind the source",
                target.name
            ),
            "column first_name is character varying(5) in the target but character varying(",
            "\n  Tag:\n",
            &format!(
                "the target has column slug (NOT NULL, without a default) that the source lacks, \
                 so no copied row can fill it: the source ({}) is behind the target",
                source.name
            ),
        ] {
            assert!(
                message.contains(part),
                "{command}: {part:?} not in:\n{message}"
            );
        }
        assert_eq!(checksums(&target).await, before, "{command} wrote nothing");
    }

    // Once the target has caught up, both pass and the rows arrive.
    target
        .connect()
        .await
        .batch_execute(
            "ALTER TABLE users ADD COLUMN last_login timestamp;\n\
             ALTER TABLE users ALTER COLUMN first_name TYPE varchar(100);\n\
             ALTER TABLE tags ALTER COLUMN slug SET DEFAULT '';",
        )
        .await
        .unwrap();
    let output = run_cli(
        &["check", "--connect", file.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run_cli(&["run", file.to_str().unwrap()], &[], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    assert_ne!(checksums(&target).await, before);
}
