//! Encryption in pipeline files: `recipients` and `recipients_file` in an export_file sink,
//! `identity_file` and `identity` in an export_file source; their errors point into the file.

use crate::support::{age_keypair, checksums, empty_cityforge, sample_db};
use crate::{run_cli, stderr, write_pipeline};

#[tokio::test]
async fn a_pipeline_encrypts_and_another_decrypts() {
    let source = sample_db("pipecrypt", 500).await;
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = age_keypair(dir.path(), "key.txt");
    let (other_key, other) = age_keypair(dir.path(), "other.txt");
    std::fs::write(dir.path().join("team.txt"), format!("# ops\n{other}\n")).unwrap();
    let backup = write_pipeline(
        dir.path(),
        "backup.toml",
        &format!(
            "[source]\ntype = \"postgres\"\nurl = \"{}\"\n\n\
             [[sinks]]\ntype = \"export_file\"\nlocation = \"backup.json.gz.age\"\n\
             recipients = [\"{recipient}\"]\nrecipients_file = \"team.txt\"\n",
            source.url
        ),
    );
    let output = run_cli(&["run", backup.to_str().unwrap()], &[], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let stored = std::fs::read(dir.path().join("backup.json.gz.age")).unwrap();
    assert!(stored.starts_with(b"age-encryption.org/v1\n"));

    // One restore reads the key from a file, the other from a variable.
    let key_text = std::fs::read_to_string(&other_key).unwrap();
    for (index, identity) in [
        format!("identity_file = \"{}\"", key.display()),
        "identity = \"${RESTORE_AGE_KEY}\"".to_owned(),
    ]
    .into_iter()
    .enumerate()
    {
        let target = empty_cityforge(&format!("pipecrypt_{index}")).await;
        let restore = write_pipeline(
            dir.path(),
            "restore.toml",
            &format!(
                "[source]\ntype = \"export_file\"\nlocation = \"backup.json.gz.age\"\n{identity}\n\n\
                 [[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nmode = \"skip\"\n",
                target.url
            ),
        );
        let output = run_cli(
            &["run", restore.to_str().unwrap()],
            &[("RESTORE_AGE_KEY", &key_text)],
            dir.path(),
        );
        assert!(output.status.success(), "{index}: {}", stderr(&output));
        assert_eq!(checksums(&target).await, checksums(&source).await);
    }

    // Without an identity the source says which key to add; nothing is loaded.
    let target = empty_cityforge("pipecrypt_none").await;
    let before = checksums(&target).await;
    let restore = write_pipeline(
        dir.path(),
        "nokey.toml",
        &format!(
            "[source]\ntype = \"export_file\"\nlocation = \"backup.json.gz.age\"\n\n\
             [[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nmode = \"skip\"\n",
            target.url
        ),
    );
    let output = run_cli(&["run", restore.to_str().unwrap()], &[], dir.path());
    let message = stderr(&output);
    assert!(!output.status.success(), "{message}");
    assert!(message.contains("is encrypted (age)"), "{message}");
    assert!(message.contains("identity_file = "), "{message}");
    assert_eq!(checksums(&target).await, before);
}

#[test]
fn a_malformed_recipient_is_named_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(
        dir.path(),
        "bad.toml",
        "[source]\ntype = \"postgres\"\nurl = \"postgres://db/x\"\n\n\
         [[sinks]]\ntype = \"export_file\"\nlocation = \"a.json.gz\"\n\
         recipients = [\"age1nope\"]\n\n\
         [[sinks]]\ntype = \"export_file\"\nlocation = \"b.json.age\"\n",
    );
    let output = run_cli(&["check", file.to_str().unwrap()], &[], dir.path());
    let message = stderr(&output);
    assert!(!output.status.success(), "{message}");
    assert!(
        message.contains("bad.toml:5:1:") && message.contains("cannot encrypt to recipient 1"),
        "{message}"
    );
    assert!(
        message.contains("bad.toml:10:1:") && message.contains("no age recipients are given"),
        "{message}"
    );
}
