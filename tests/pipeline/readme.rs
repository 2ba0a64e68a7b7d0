//! The README's pipeline examples run as shown (issue 10.8: docs that cannot drift).

use crate::support::sample_db;
use crate::{run_cli, stderr, write_pipeline};

/// The body of the first ```toml block after `heading` in README.md.
fn toml_block_after(heading: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find(heading).expect("the heading is in the README")..];
    let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + section[start..].find("```").unwrap();
    section[start..end].to_owned()
}

#[tokio::test]
async fn the_transform_reference_passes_check_connect_on_cityforge() {
    let db = sample_db("readme_transforms", 100).await;
    let dir = tempfile::tempdir().unwrap();
    let transforms = toml_block_after("### Transform reference");
    let file = write_pipeline(
        dir.path(),
        "reference.toml",
        &format!(
            "[source]\ntype = \"postgres\"\nurl = \"{}\"\n\n{transforms}\n\
             [[sinks]]\ntype = \"export_file\"\nlocation = \"out.json\"\n",
            db.url
        ),
    );
    let output = run_cli(
        &["check", "--connect", file.to_str().unwrap()],
        &[("SANITIZE_SECRET", "s")],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    // And it runs.
    let output = run_cli(
        &["run", file.to_str().unwrap()],
        &[("SANITIZE_SECRET", "s")],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
}
