//! The set-up block: `cargo run --release -- demo` runs as the built binary's `demo` (a private
//! PostgreSQL cluster, the default 20,000 sample rows, a gzip export in the working folder; about
//! ten seconds in a debug build); `cargo test` is this suite.

use crate::commands::runs;
use crate::shell::Shell;
use crate::{block, SET_UP};

#[test]
fn the_set_up_block_runs() {
    // No database variables: the demo starts its own server.
    let shell = Shell::new(Vec::new());
    let runs = runs(block(SET_UP));
    assert_eq!(runs.len(), 1, "the demo");
    let ran = shell.run(&runs[0], &[]);
    assert!(ran.stdout.contains("Exported"), "{}", ran.stdout);
    let exports: Vec<String> = crate::support::files_in(shell.dir())
        .into_iter()
        .filter(|name| name.starts_with("cityforge_demo_") && name.ends_with(".json.gz"))
        .collect();
    assert_eq!(exports.len(), 1, "a gzip export here: {exports:?}");
}
