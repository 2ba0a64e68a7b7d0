//! The README's "heart of" the CronJob is deploy/k8s/backup-cronjob.yaml's: its lines appear in
//! the file in the same order, each verbatim (one shift of indentation for all), consecutive where
//! the README shows them consecutive; a comment line of the README marks where file lines are left
//! out (comments of the file are not compared). The session runs its command and arguments, and
//! those of the restore Job's containers ([`restore_job`]).

use crate::{block, CRONJOB};

/// The container of the README's excerpt.
#[derive(Debug, PartialEq)]
pub struct Container {
    pub command: String,
    pub args: Vec<String>,
    /// The variables given a `value:`.
    pub env: Vec<(String, String)>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// The command, arguments and variables of the README's excerpt.
pub fn excerpt() -> Container {
    container(&block(CRONJOB).text)
}

/// The containers of deploy/k8s/restore-job.yaml, in the order they run (the init container
/// `verify`, then the import): each from its `command:` line to the next one.
pub fn restore_job() -> Vec<Container> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/k8s/restore-job.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].trim_start().starts_with("command: "))
        .chain([lines.len()])
        .collect();
    starts
        .windows(2)
        .map(|w| container(&lines[w[0]..w[1]].join("\n")))
        .collect()
}

/// The command, arguments and variables given a `value:` of one container's lines.
fn container(text: &str) -> Container {
    let lines: Vec<&str> = text.lines().collect();
    let mut container = Container {
        command: String::new(),
        args: Vec::new(),
        env: Vec::new(),
    };
    let mut list = "";
    let mut list_indent = 0;
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || is_comment(line) {
            continue;
        }
        if let Some(command) = trimmed.strip_prefix("command: ") {
            container.command = serde_json::from_str::<Vec<String>>(command)
                .unwrap()
                .join(" ");
        } else if trimmed == "args:" || trimmed == "env:" {
            list = trimmed;
            list_indent = indent(line);
        } else if indent(line) <= list_indent {
            list = "";
        } else if list == "args:" {
            let arg = trimmed.strip_prefix("- ").expect("an args item");
            container.args.push(arg.to_owned());
        } else if let Some(name) = trimmed.strip_prefix("- name: ") {
            let value = lines[index + 1..]
                .iter()
                .find(|l| !is_comment(l))
                .and_then(|l| l.trim().strip_prefix("value: "));
            if let Some(value) = value {
                let value = serde_json::from_str::<String>(value).unwrap();
                container.env.push((name.to_owned(), value));
            }
        }
    }
    container
}

#[test]
fn the_readme_excerpt_is_the_deploy_files() {
    let readme = block(CRONJOB);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/k8s/backup-cronjob.yaml"
    );
    let file = std::fs::read_to_string(path).unwrap();
    // The file's lines that are not comments, with their line numbers.
    let file: Vec<(usize, &str)> = file
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !is_comment(l))
        .map(|(i, l)| (i + 1, l))
        .collect();
    let mut cursor: Option<usize> = None;
    let mut shift = 0isize;
    let mut elided = false;
    for (line, text) in readme.lines() {
        if text.trim().is_empty() {
            continue;
        }
        if is_comment(text) {
            elided = true;
            continue;
        }
        let same = |(_, l): &(usize, &str)| {
            l.trim_start() == text.trim_start()
                && indent(l) as isize - indent(text) as isize == shift
        };
        let found = match cursor {
            None => {
                let found: Vec<usize> = (0..file.len())
                    .filter(|&i| file[i].1.trim_start() == text.trim_start())
                    .collect();
                assert_eq!(
                    found.len(),
                    1,
                    "README line {line}: {text:?} is not once in {path}"
                );
                shift = indent(file[found[0]].1) as isize - indent(text) as isize;
                Some(found[0])
            }
            Some(previous) if elided => (previous + 1..file.len()).find(|&i| same(&file[i])),
            Some(previous) => Some(previous + 1).filter(|&i| file.get(i).is_some_and(same)),
        };
        let Some(found) = found else {
            panic!(
                "README line {line}: {text:?} is not the next line of {path} (after line {}); \
                 the README's CronJob excerpt must be the file's, a comment marking what it \
                 leaves out",
                cursor.map_or(0, |i| file[i].0)
            )
        };
        cursor = Some(found);
        elided = false;
    }
    assert!(cursor.is_some(), "the excerpt has lines");
}

#[test]
fn the_excerpt_is_an_export_to_the_bucket() {
    let container = excerpt();
    assert_eq!(container.command, "cityforge-data");
    assert_eq!(container.args[0], "export");
    assert!(
        container
            .args
            .iter()
            .any(|a| a.starts_with("--output=s3://cityforge-backups/")),
        "{container:?}"
    );
    // The one value the session replaces (the cluster's database service).
    assert!(
        container
            .env
            .iter()
            .any(|(name, _)| name == "POSTGRES_HOST"),
        "{container:?}"
    );
}
