//! The README's bash blocks as commands: `\` continuations joined, comments dropped, the output
//! each command shows, the few names a test machine cannot have replaced ([`substitute`]), and the
//! commands that cannot run here listed with the reason ([`SKIPPED`]). `shell.rs` runs them.

use crate::Block;

/// A command of a bash block, as the README shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// README line of its first line.
    pub line: usize,
    /// Its lines joined (`\` continuations), without the trailing comment.
    pub text: String,
    /// Output the README shows for it: the comment lines right after it, up to a blank line or
    /// the block's end (`# ` removed). Comments followed by a command describe that command.
    pub output: Vec<String>,
}

/// What the test does with a command.
#[derive(Debug)]
pub enum Step {
    /// Runs `script` (the command after [`substitute`]).
    Run(Run),
    /// Cannot run on a test machine, for `reason`.
    Skip {
        command: Command,
        reason: &'static str,
    },
}

/// A command the test runs.
#[derive(Clone, Debug)]
pub struct Run {
    pub command: Command,
    /// The shell text run.
    pub script: String,
    /// `kubectl exec … $POD --` was removed: the command runs with the backend pod's
    /// environment (`POSTGRES_*`), not `DATABASE_URL`.
    pub in_pod: bool,
}

/// Commands that cannot run on a test machine, by how they start, and why.
pub const SKIPPED: [(&str, &str); 16] = [
    (
        "cargo test",
        "the test suite itself; this test is part of it",
    ),
    (
        "man -l",
        "man-db is not on every test machine; tests/ship renders the page with man -l where it \
         is installed",
    ),
    (
        "kubectl create secret generic cityforge-db-credentials",
        "needs a Kubernetes cluster; the CronJob's run gets the test database's POSTGRES_* \
         variables in its environment instead",
    ),
    (
        "sed 's/cityforge_20251024_030000/",
        "needs a Kubernetes cluster; the session runs the restore Job's containers (their \
         command, arguments and values) against the test database and S3 server",
    ),
    (
        "kubectl delete job",
        "needs a Kubernetes cluster",
    ),
    (
        "age-keygen",
        "the session makes its key pair with the age crate, the private key in the working \
         folder under the README's name",
    ),
    (
        "age -d",
        "tests/export/encrypted.rs checks that age -d gives exactly the compressed export (where \
         the age tool is installed; .ci/run installs it)",
    ),
    (
        "kubectl create configmap cityforge-backup-encryption",
        "needs a Kubernetes cluster; the CronJob's run gets the session's recipient for \
         $(CITYFORGE_BACKUP_RECIPIENT) instead",
    ),
    (
        "kubectl create secret generic cityforge-backup-age-key",
        "needs a Kubernetes cluster; the restore Job's containers get the session's private key \
         in CITYFORGE_AGE_IDENTITY instead",
    ),
    (
        "kubectl delete secret",
        "needs a Kubernetes cluster",
    ),
    (
        "docker ",
        "needs a container engine; tests/ship checks the Dockerfile, the build context, the \
         binary's libraries against the runtime image's, and runs the binary as the image does \
         (empty environment, uid 65532, read-only working folder)",
    ),
    (
        "kubectl create secret generic cityforge-backup-s3",
        "needs a Kubernetes cluster; the CronJob's run gets the S3 server's credentials in its \
         environment instead",
    ),
    (
        "kubectl apply -f deploy/k8s/backup-cronjob.yaml",
        "needs a Kubernetes cluster; the README's excerpt must be the file's (cronjob) and its \
         command runs against the test database and S3 server (session)",
    ),
    (
        "kubectl create job -n cityforge --from=cronjob/cityforge-backup",
        "needs a Kubernetes cluster; the Job would run the CronJob's command, which the session \
         runs",
    ),
    (
        "kubectl logs",
        "needs a Kubernetes cluster; the session checks that the CronJob's command logs JSON lines \
         (--log-format=json)",
    ),
    (
        "POD=$(kubectl get pods",
        "needs a Kubernetes cluster; `kubectl exec … $POD --` is replaced by running the command \
         here with the backend pod's environment",
    ),
];

/// The README's names that cannot exist on a test machine, replaced by what stands for them:
/// - `cargo run --release -- ARGS` → `cityforge-data ARGS`: the binary cargo built for this test
///   (the same code, a debug build);
/// - `kubectl exec [-i] -n cityforge $POD -- CMD` → `CMD`, run here with the environment the
///   backend pod has (`POSTGRES_*`, `AWS_*`);
/// - ` /backups/` → ` backups/`: a folder of the working folder stands for one at the root;
/// - `ssh backup-host 'CMD'` → `CMD`: the remote command runs in the working folder.
///
/// `None` when the result is not a `cityforge-data` command.
pub fn substitute(text: &str) -> Option<(String, bool)> {
    let mut text = text.to_owned();
    let mut in_pod = false;
    if let Some(rest) = text.strip_prefix("cargo run --release -- ") {
        text = format!("cityforge-data {rest}");
    }
    for prefix in [
        "kubectl exec -n cityforge $POD -- ",
        "kubectl exec -i -n cityforge $POD -- ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest.to_owned();
            in_pod = true;
        }
    }
    text = text.replace(" /backups/", " backups/");
    const SSH: &str = "ssh backup-host '";
    if let Some(start) = text.find(SSH) {
        let inner = start + SSH.len();
        let end = inner + text[inner..].find('\'')?;
        text = format!(
            "{}{}{}",
            &text[..start],
            &text[inner..end],
            &text[end + 1..]
        );
    }
    text.starts_with("cityforge-data ")
        .then_some((text, in_pod))
}

/// The text before a `#` comment (one outside quotes, at the start or after a space).
fn strip_comment(text: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (index, c) in text.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '#') if previous.is_whitespace() => return text[..index].trim_end(),
            _ => {}
        }
        previous = c;
    }
    text.trim_end()
}

/// The commands of a bash block.
pub fn commands(block: &Block) -> Vec<Command> {
    let lines: Vec<(usize, &str)> = block.lines().collect();
    let mut commands = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (line, first) = lines[i];
        i += 1;
        if first.trim().is_empty() || first.trim_start().starts_with('#') {
            continue;
        }
        let mut text = first.trim().to_owned();
        while let Some(joined) = text.strip_suffix('\\') {
            let (_, next) = lines
                .get(i)
                .unwrap_or_else(|| panic!("README line {line}: `\\` at the block's end"));
            text = format!("{} {}", joined.trim_end(), next.trim());
            i += 1;
        }
        let comments = lines[i..]
            .iter()
            .take_while(|(_, l)| l.starts_with('#'))
            .count();
        let ends = lines
            .get(i + comments)
            .is_none_or(|(_, l)| l.trim().is_empty());
        let mut output = Vec::new();
        if comments > 0 && ends {
            output = lines[i..i + comments]
                .iter()
                .map(|(_, l)| l.trim_start_matches('#').trim().to_owned())
                .collect();
            i += comments;
        }
        commands.push(Command {
            line,
            text: strip_comment(&text).to_owned(),
            output,
        });
    }
    commands
}

/// What the test does with each command of a bash block; panics on a command it neither runs
/// nor skips.
pub fn steps(block: &Block) -> Vec<Step> {
    commands(block)
        .into_iter()
        .map(|command| {
            if let Some((_, reason)) = SKIPPED.iter().find(|(s, _)| command.text.starts_with(s)) {
                return Step::Skip { command, reason };
            }
            let Some((script, in_pod)) = substitute(&command.text) else {
                panic!(
                    "README line {}: the command is not covered (neither a cityforge-data \
                     command nor skipped with a reason in tests/readme/commands.rs): {}",
                    command.line, command.text
                )
            };
            Step::Run(Run {
                command,
                script,
                in_pod,
            })
        })
        .collect()
}

/// The commands of a block the test runs.
pub fn runs(block: &Block) -> Vec<Run> {
    steps(block)
        .into_iter()
        .filter_map(|step| match step {
            Step::Run(run) => Some(run),
            Step::Skip { .. } => None,
        })
        .collect()
}

/// Fails when an entry of [`SKIPPED`] matches no command of the README (a stale reason).
pub fn assert_every_skip_is_used(blocks: &[Block]) {
    let mut used = Vec::new();
    for step in blocks.iter().filter(|b| b.lang == "bash").flat_map(steps) {
        if let Step::Skip { command, reason } = step {
            assert!(!reason.is_empty(), "README line {}: a reason", command.line);
            used.push(reason);
        }
    }
    for (start, reason) in SKIPPED {
        assert!(
            used.contains(&reason),
            "no README command starts with {start:?}: remove it from SKIPPED"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(text: &str) -> Block {
        Block {
            lang: "bash".to_owned(),
            text: text.to_owned(),
            line: 10,
        }
    }

    #[test]
    fn commands_join_continuations_and_drop_comments() {
        let commands = commands(&block(
            "# what it does\ncityforge-data export \\\n  --output x.json  # note\n\n\
             cityforge-data run a.toml  # the plan\n                           # more\n\
             cityforge-data verify x.json\n# OK x.json\n# …\n",
        ));
        let texts: Vec<(usize, &str, usize)> = commands
            .iter()
            .map(|c| (c.line, c.text.as_str(), c.output.len()))
            .collect();
        assert_eq!(
            texts,
            [
                (12, "cityforge-data export --output x.json", 0),
                (15, "cityforge-data run a.toml", 0),
                (17, "cityforge-data verify x.json", 2),
            ]
        );
        assert_eq!(commands[2].output, ["OK x.json", "…"]);
    }

    #[test]
    fn a_comment_before_a_command_describes_it() {
        let commands = commands(&block("cityforge-data verify x\n# (about the next)\nls\n"));
        assert!(commands[0].output.is_empty());
        assert_eq!(commands[1].text, "ls");
    }

    #[test]
    fn strip_comment_ignores_quoted_hashes() {
        assert_eq!(strip_comment("a 'b # c' # d"), "a 'b # c'");
        assert_eq!(strip_comment("a b#c"), "a b#c");
        assert_eq!(strip_comment("a"), "a");
    }

    #[test]
    fn substitutions() {
        let cases = [
            (
                "cargo run --release -- demo",
                Some(("cityforge-data demo", false)),
            ),
            (
                "cityforge-data export --output /backups/b.json",
                Some(("cityforge-data export --output backups/b.json", false)),
            ),
            (
                "cityforge-data export -o - | ssh backup-host 'cat > c.gz'",
                Some(("cityforge-data export -o - | cat > c.gz", false)),
            ),
            (
                "kubectl exec -i -n cityforge $POD -- cityforge-data import -i - < b",
                Some(("cityforge-data import -i - < b", true)),
            ),
            (
                "kubectl exec -n cityforge $POD -- cityforge-data verify x",
                Some(("cityforge-data verify x", true)),
            ),
            (
                "kubectl exec -n other $POD -- cityforge-data verify x",
                None,
            ),
            ("rm -rf /", None),
        ];
        for (text, expected) in cases {
            let got = substitute(text);
            assert_eq!(
                got.as_ref().map(|(s, pod)| (s.as_str(), *pod)),
                expected,
                "{text}"
            );
        }
    }
}
