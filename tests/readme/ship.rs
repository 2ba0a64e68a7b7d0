//! The `--version`, completions and man page block runs as shown (the commit shown is the
//! README's example: the binary's own replaces it); the image block is all `docker`, which no
//! test machine has (tests/ship shows what can be shown without it).

use crate::commands::{runs, steps, Step};
use crate::shell::Shell;
use crate::{block, IMAGE, VERSION};

/// The commit the README's `--version` output shows.
const SHOWN_COMMIT: &str = "1a2b3c4d5e6f";

#[test]
fn the_version_completions_and_man_block_runs_as_shown() {
    let shell = Shell::new(Vec::new());
    let shown = [(env!("CITYFORGE_GIT_COMMIT"), SHOWN_COMMIT)];
    let runs = runs(block(VERSION));
    assert!(runs.len() >= 6, "{runs:?}");
    for run in &runs {
        shell.run(run, &shown);
    }
    for (file, starts) in [
        ("cityforge-data.bash", "_cityforge__data()"),
        ("_cityforge-data", "#compdef cityforge-data"),
        ("cityforge-data.fish", "# Print an optspec"),
        ("cityforge-data.1", ".ie"),
        ("cityforge-data-export.1", ".ie"),
    ] {
        let text = std::fs::read_to_string(shell.path(file))
            .unwrap_or_else(|e| panic!("the block writes {file}: {e}"));
        assert!(text.trim_start().starts_with(starts), "{file}: {text:.200}");
    }
}

#[test]
fn the_image_block_needs_a_container_engine() {
    let steps = steps(block(IMAGE));
    assert_eq!(steps.len(), 3, "build, run, push: {steps:?}");
    for step in steps {
        assert!(matches!(step, Step::Skip { .. }), "{step:?}");
    }
}
