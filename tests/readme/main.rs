//! README.md runs (issue 10.8: docs that cannot drift). Every fenced block of the README is known
//! here by its language and first line ([`BLOCKS`]) and run by one test of this binary against
//! the throwaway PostgreSQL and the in-process S3 server: the export, import, `verify` and
//! `kubectl exec` commands in one working folder ([`session`]), the pipeline commands and the
//! pipeline examples ([`pipelines`]), the set-up's demo ([`set_up`]), the CronJob excerpt,
//! which must be the deploy file's ([`cronjob`]), whose restore Job's containers run too, and
//! `--version`, completions and man pages ([`ship`]). A block nobody knows fails
//! [`every_readme_block_is_covered`], so a new example cannot go in untested; a command of a bash
//! block that is neither run nor skipped with a reason fails it too ([`commands::steps`]).

#[path = "../support/mod.rs"]
mod support;

#[path = "../objectstore/s3.rs"]
#[allow(dead_code)]
mod s3;

mod commands;
mod cronjob;
mod pipelines;
mod session;
mod set_up;
mod shell;
mod ship;

use std::sync::OnceLock;

/// A fenced code block of README.md.
#[derive(Debug)]
pub struct Block {
    /// The info string after the opening fence: `bash`, `toml`, `yaml`.
    pub lang: String,
    /// The lines between the fences.
    pub text: String,
    /// Line of the opening fence (1-based), for messages.
    pub line: usize,
}

impl Block {
    /// The block's lines with their README line numbers.
    pub fn lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.text
            .lines()
            .enumerate()
            .map(|(i, line)| (self.line + 1 + i, line))
    }
}

/// How a test names the README block it runs: its language and the start of its first line.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub lang: &'static str,
    pub first_line: &'static str,
}

impl Key {
    fn matches(&self, block: &Block) -> bool {
        block.lang == self.lang
            && block
                .text
                .lines()
                .next()
                .is_some_and(|line| line.trim_start().starts_with(self.first_line))
    }
}

/// Set-up: `cargo run --release -- demo`, `cargo test` ([`set_up`]).
pub const SET_UP: Key = Key {
    lang: "bash",
    first_line: "cargo run --release -- demo",
};
/// The export examples ([`session`]).
pub const EXPORT: Key = Key {
    lang: "bash",
    first_line: "# All data to data_export_",
};
/// The import examples ([`session`]).
pub const IMPORT: Key = Key {
    lang: "bash",
    first_line: "# Skip records that already exist",
};
/// The encrypted backup examples ([`session`]).
pub const ENCRYPTION: Key = Key {
    lang: "bash",
    first_line: "# On the machine that restores: the key pair",
};
/// `run`, `run --dry-run`, `check`, `check --connect` of a ready pipeline ([`pipelines`]).
pub const PIPELINE_COMMANDS: Key = Key {
    lang: "bash",
    first_line: "cityforge-data run pipelines/prod-to-staging.toml",
};
/// The main pipeline example ([`pipelines`]).
pub const PIPELINE_EXAMPLE: Key = Key {
    lang: "toml",
    first_line: "[source]",
};
/// The subset example ([`pipelines`]).
pub const SUBSET: Key = Key {
    lang: "toml",
    first_line: "[subset]",
};
/// The transform reference ([`pipelines`]).
pub const TRANSFORM_REFERENCE: Key = Key {
    lang: "toml",
    first_line: "[[transforms]]",
};
/// `verify` of the daily backup and its output ([`session`]).
pub const VERIFY: Key = Key {
    lang: "bash",
    first_line: "cityforge-data verify s3://",
};
/// Installing the CronJob: all `kubectl`, every command skipped with its reason ([`session`]).
pub const CRONJOB_INSTALL: Key = Key {
    lang: "bash",
    first_line: "kubectl create secret generic",
};
/// The heart of the CronJob ([`cronjob`], run in [`session`]).
pub const CRONJOB: Key = Key {
    lang: "yaml",
    first_line: "command: [\"cityforge-data\"]",
};
/// Export through `kubectl exec` ([`session`]).
pub const KUBECTL_EXPORT: Key = Key {
    lang: "bash",
    first_line: "POD=$(kubectl get pods",
};
/// Import through `kubectl exec` ([`session`]).
pub const KUBECTL_IMPORT: Key = Key {
    lang: "bash",
    first_line: "# From the bucket, streamed",
};
/// `--version`, completions and man pages ([`ship`]).
pub const VERSION: Key = Key {
    lang: "bash",
    first_line: "cityforge-data --version",
};
/// The restore Job: all `kubectl`, skipped; the Job's containers run in [`session`].
pub const RESTORE_JOB: Key = Key {
    lang: "bash",
    first_line: "sed 's/cityforge_20251024_030000/",
};
/// Building and pushing the image: all `docker`, skipped ([`ship`]).
pub const IMAGE: Key = Key {
    lang: "bash",
    first_line: "docker build",
};

/// Every block the tests run, in README order.
pub const BLOCKS: [Key; 16] = [
    SET_UP,
    VERSION,
    EXPORT,
    IMPORT,
    PIPELINE_COMMANDS,
    PIPELINE_EXAMPLE,
    SUBSET,
    TRANSFORM_REFERENCE,
    ENCRYPTION,
    VERIFY,
    CRONJOB_INSTALL,
    CRONJOB,
    RESTORE_JOB,
    KUBECTL_EXPORT,
    KUBECTL_IMPORT,
    IMAGE,
];

/// README.md's fenced blocks, parsed once.
pub fn readme() -> &'static [Block] {
    static BLOCKS: OnceLock<Vec<Block>> = OnceLock::new();
    BLOCKS.get_or_init(|| {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        parse_blocks(&text)
    })
}

/// The fenced blocks of a Markdown text (fences of three backticks at the start of a line).
pub fn parse_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (index, line) in markdown.lines().enumerate() {
        let Some(info) = line.strip_prefix("```") else {
            if let Some(block) = &mut open {
                block.text.push_str(line);
                block.text.push('\n');
            }
            continue;
        };
        match open.take() {
            Some(block) => blocks.push(block),
            None => {
                open = Some(Block {
                    lang: info.trim().to_owned(),
                    text: String::new(),
                    line: index + 1,
                })
            }
        }
    }
    assert!(open.is_none(), "README ends inside a code block");
    blocks
}

/// The one README block `key` names.
pub fn block(key: Key) -> &'static Block {
    let found: Vec<&Block> = readme().iter().filter(|b| key.matches(b)).collect();
    match found[..] {
        [block] => block,
        _ => panic!(
            "{} README blocks are ```{} starting with {:?}, expected one",
            found.len(),
            key.lang,
            key.first_line
        ),
    }
}

#[test]
fn every_readme_block_is_covered() {
    let blocks = readme();
    assert!(
        blocks.len() >= BLOCKS.len(),
        "the README parses into blocks"
    );
    for block in blocks {
        let keys = BLOCKS.iter().filter(|key| key.matches(block)).count();
        let first_line = block.text.lines().next().unwrap_or_default();
        assert!(
            keys > 0,
            "README block at line {} is not covered: ```{} starting with {first_line:?}; \
             give it a Key in tests/readme/main.rs and a test that runs it",
            block.line,
            block.lang,
        );
        assert!(
            keys == 1,
            "README block at line {} matches {keys} keys: ```{} starting with {first_line:?}",
            block.line,
            block.lang,
        );
        if block.lang == "bash" {
            // Every command is run or skipped with a reason (panics otherwise).
            commands::steps(block);
        }
    }
    for key in BLOCKS {
        block(key);
    }
    commands::assert_every_skip_is_used(blocks);
}

#[test]
fn parse_blocks_finds_fences_languages_and_lines() {
    let blocks = parse_blocks("text\n```bash\na\nb\n```\n\n```toml\n[x]\n```\n");
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        (
            blocks[0].lang.as_str(),
            blocks[0].text.as_str(),
            blocks[0].line
        ),
        ("bash", "a\nb\n", 2)
    );
    assert_eq!(
        (
            blocks[1].lang.as_str(),
            blocks[1].text.as_str(),
            blocks[1].line
        ),
        ("toml", "[x]\n", 7)
    );
    let lines: Vec<(usize, &str)> = blocks[0].lines().collect();
    assert_eq!(lines, [(3, "a"), (4, "b")]);
}
