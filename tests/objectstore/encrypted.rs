//! Encrypted exports in an object store: a multipart upload of age ciphertext to `s3://`, with
//! the sidecar over the stored bytes, verified and imported back with the identity.

use crate::s3::S3Server;
use crate::support::{age_keypair, empty_cityforge, sample_db};
use crate::{cli_s3, stderr, stdout, table_counts};

#[tokio::test]
async fn encrypted_exports_round_trip_through_s3() {
    let db = sample_db("s3crypt", 20_000).await;
    let server = S3Server::shared();
    let bucket = server.bucket("encrypted");
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = age_keypair(dir.path(), "key.txt");
    for (name, compress) in [("plain.json.age", "none"), ("zstd.json.zst.age", "zstd")] {
        let location = format!("s3://{bucket}/{name}");
        let output = cli_s3()
            .args(["export", "--compress", compress, "--encrypt-to", &recipient])
            .args(["-o", &location])
            .env("DATABASE_URL", &db.url)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let stored = server.get(&bucket, name).await.unwrap();
        assert!(stored.starts_with(b"age-encryption.org/v1\n"), "{name}");
        if compress == "none" {
            // More than one 5 MiB part of ciphertext.
            assert!(stored.len() > 5 << 20, "{name}: {} bytes", stored.len());
        }
        // The sidecar is the digest of the stored (encrypted) bytes.
        let sidecar = server
            .get(&bucket, &format!("{name}.sha256"))
            .await
            .unwrap();
        let digest = {
            use sha2::Digest as _;
            let sum = sha2::Sha256::digest(&stored);
            sum.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        assert_eq!(
            String::from_utf8(sidecar).unwrap(),
            format!("{digest}  {name}\n")
        );
        assert!(server.pending_uploads(&bucket).is_empty());

        let output = cli_s3()
            .args(["verify", &location, "--identity", key.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(stdout(&output).contains(&digest));

        let target = empty_cityforge(&format!("s3crypt_{compress}")).await;
        let output = cli_s3()
            .args([
                "import",
                "-i",
                &location,
                "--identity",
                key.to_str().unwrap(),
            ])
            .env("DATABASE_URL", &target.url)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(
            table_counts(&target).await,
            table_counts(&db).await,
            "{name}"
        );
    }
}
