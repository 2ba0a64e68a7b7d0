//! Compressed exports of several gzip members (zstd frames), one per block, as our exporter
//! writes them, import back exactly.

use crate::support::{empty_cityforge, gzip_members, sample_db};
use crate::{assert_ok, checksums, export, import};

#[tokio::test]
async fn multi_member_exports_import_back_exactly() {
    // About 5 MB of document: several 1 MiB gzip members, two 4 MiB zstd frames.
    let source = sample_db("members_source", 10_000).await;
    let expected = checksums(&source).await;
    let dir = tempfile::tempdir().unwrap();
    for (name, args) in [
        ("backup.json.gz", &[][..]),
        ("fast.json.gz", &["--compress-level", "1"][..]),
        ("backup.json.zst", &[][..]),
    ] {
        let file = dir.path().join(name);
        export(&source, &file, args);
        if name.ends_with(".gz") {
            let members = gzip_members(&std::fs::read(&file).unwrap());
            assert!(members > 1, "{name}: {members} member(s)");
        }
        let target = empty_cityforge(&format!("members_{}", name.replace('.', "_"))).await;
        assert_ok(&import(&target, &file, &[]));
        assert_eq!(checksums(&target).await, expected, "{name}");
    }
}
