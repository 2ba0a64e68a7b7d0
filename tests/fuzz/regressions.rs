//! Inputs the fuzzer once failed on, kept as tests (minimized). The files of
//! `corpus/regressions/` also run through both targets in `corpus_passes`.

use std::time::{Duration, Instant};

/// Found as a hang of the document target: a 42 KB export whose cell held 20 000 nested
/// arrays. Reading it is fast; writing it in the pretty layout is not, because every line is
/// indented by its depth (about 800 MB for this cell; see docs/FUZZING.md), so the target
/// round-trips such cells in the compact layout only.
#[test]
fn deeply_nested_cell_reads_and_round_trips_compact() {
    let deep = 20_000;
    let text = format!(
        r#"{{"export_metadata": {{"version": "1.0"}}, "data": {{"T": [{{"v": {}{}}}]}}}}"#,
        "[".repeat(deep),
        "]".repeat(deep)
    );
    let started = Instant::now();
    let outcome = crate::document::run(text.as_bytes());
    assert!(outcome.starts_with("ok: 1 tables"), "{outcome}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Found as a second hang: a 528 KB export whose cell held a few hundred values nested about
/// 1000 deep. Not deep enough to skip the pretty layout by depth, yet written pretty it took
/// 375 MB and 14 s; the target now skips the pretty layout by the indentation it would write.
#[test]
fn many_deep_values_in_a_cell_stay_fast() {
    let value = format!("{}{}", "[".repeat(700), "]".repeat(700));
    let cell = format!("[{}]", vec![value; 375].join(", "));
    let text = format!(
        r#"{{"export_metadata": {{"version": "1.0"}}, "data": {{"T": [{{"id": 1, "v": {cell}}}]}}}}"#
    );
    let started = Instant::now();
    let outcome = crate::document::run(text.as_bytes());
    assert!(outcome.starts_with("ok: 1 tables"), "{outcome}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Found by the pipeline target: a NUL in a comment gave the error "p.toml:1:2: " with no
/// message (the TOML parser has none for it).
#[test]
fn control_character_in_a_comment_is_named() {
    let error = cityforge_data::pipeline::config::PipelineFile::parse(
        std::path::Path::new("p.toml"),
        "#\0",
        &|_| None,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(error, "p.toml:1:2: the character '\\0' is not allowed here");
    assert_eq!(
        crate::pipeline::run(b"#\0"),
        "parse at: the character '\\N' is not allowed here".replace("\\N", "\\0")
    );
}
