//! A shell that runs the README's commands (`commands.rs`): each with `bash -o pipefail -c` (the
//! blocks are bash; pipefail so that a failing export before `| cat` fails too) in one working
//! folder, the built binary first on PATH, and checks what they print against what the README
//! shows.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::commands::{Command, Run};
use crate::s3::S3Server;

/// The S3 server's variables (endpoint, plain http, test credentials, region).
pub fn s3_env() -> Vec<(String, String)> {
    S3Server::env_for(&S3Server::shared().endpoint())
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

/// The seed's `POSTGRES_*` variables naming the database of `url`.
pub fn postgres_env(url: &str) -> Vec<(String, String)> {
    let url = url::Url::parse(url).unwrap();
    [
        ("POSTGRES_HOST", url.host_str().unwrap().to_owned()),
        ("POSTGRES_PORT", url.port().unwrap_or(5432).to_string()),
        ("POSTGRES_DB", url.path().trim_start_matches('/').to_owned()),
        ("POSTGRES_USER", url.username().to_owned()),
        (
            "POSTGRES_PASSWORD",
            url.password().unwrap_or_default().to_owned(),
        ),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}

/// What the prompt of `import --mode clean` asks for.
const PROMPT: &str = "Type 'DELETE ALL DATA' to confirm: ";

/// A working folder (with `backups/`) and the environment commands run with.
pub struct Shell {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    pod_env: Vec<(String, String)>,
}

/// How a command ended.
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
}

impl Shell {
    /// A fresh working folder; commands get `env` (their `AWS_*` and database variables are only
    /// those given).
    pub fn new(env: Vec<(String, String)>) -> Shell {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("backups")).unwrap();
        Shell {
            dir,
            env,
            pod_env: Vec::new(),
        }
    }

    /// The environment of commands that ran in the backend pod.
    pub fn with_pod_env(mut self, env: Vec<(String, String)>) -> Shell {
        self.pod_env = env;
        self
    }

    /// The working folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path in the working folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `program` with the environment of `run`, in the working folder.
    fn program(&self, program: &str, run: &Run) -> std::process::Command {
        let mut command = std::process::Command::new(program);
        crate::support::isolate(&mut command);
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        let bin = Path::new(env!("CARGO_BIN_EXE_cityforge-data"))
            .parent()
            .unwrap();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(
            std::iter::once(bin.to_path_buf()).chain(std::env::split_paths(&path)),
        )
        .unwrap();
        command
            .env("PATH", path)
            .envs(if run.in_pod { &self.pod_env } else { &self.env }.clone())
            .current_dir(self.dir());
        command
    }

    /// Runs a command; it must exit 0 and print the output the README shows for it (where
    /// `shown` replaces what differs in the test, e.g. a database name). A `clean` import
    /// without `--yes` or `--dry-run` runs on a terminal (script(1)) and is answered
    /// `DELETE ALL DATA`, as the README tells the reader to.
    pub fn run(&self, run: &Run, shown: &[(&str, &str)]) -> Ran {
        let text = &run.command.text;
        let ran = if text.contains("--mode clean")
            && !text.contains("--yes")
            && !text.contains("--dry-run")
        {
            self.run_on_terminal(run)
        } else {
            let output = self
                .program("bash", run)
                .args(["-o", "pipefail", "-c", &run.script])
                .output()
                .unwrap();
            crate::support::audit(&output);
            let ran = Ran {
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            };
            assert!(
                output.status.success(),
                "README line {}: `{}` ran as `{}` and failed ({}):\n{}\n{}",
                run.command.line,
                run.command.text,
                run.script,
                output.status,
                ran.stdout,
                ran.stderr
            );
            ran
        };
        if !run.command.output.is_empty() {
            let mut stdout = ran.stdout.clone();
            for (actual, readme) in shown {
                stdout = stdout.replace(actual, readme);
            }
            assert_shows(&run.command, &stdout);
        }
        ran
    }

    /// Runs a command on a terminal, typing `DELETE ALL DATA` once it asks.
    fn run_on_terminal(&self, run: &Run) -> Ran {
        let mut child = self
            .program("script", run)
            .args(["-qec", &run.script, "/dev/null"])
            .env("SHELL", "/bin/bash")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut keyboard = child.stdin.take().unwrap();
        let mut screen = child.stdout.take().unwrap();
        let (seen, shown) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut buffer = [0; 4096];
            while let Ok(n @ 1..) = screen.read(&mut buffer) {
                all.extend_from_slice(&buffer[..n]);
                let _ = seen.send(String::from_utf8_lossy(&all).into_owned());
            }
            String::from_utf8_lossy(&all).into_owned()
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match shown.recv_timeout(left) {
                Ok(text) if text.contains(PROMPT) => break,
                Ok(_) => {}
                Err(_) => panic!(
                    "README line {}: `{}` never asked to type DELETE ALL DATA:\n{}",
                    run.command.line,
                    run.command.text,
                    reader.join().unwrap()
                ),
            }
        }
        keyboard.write_all(b"DELETE ALL DATA\n").unwrap();
        let stdout = reader.join().unwrap();
        let output = child.wait_with_output().unwrap();
        drop(keyboard);
        assert!(
            output.status.success(),
            "README line {}: `{}` failed on a terminal ({}):\n{stdout}",
            run.command.line,
            run.command.text,
            output.status
        );
        Ran {
            stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A line's shape: whitespace collapsed, a SHA-256 (`9f2c…` in the README) as `<sha256>`, a
/// timestamp as `<time>`, every other run of digits as `0`. The README shows a production
/// backup's sizes, counts and times; the test compares what it can: every word and the shape of
/// every number.
fn shape(line: &str) -> String {
    line.split_whitespace()
        .map(|token| {
            let abbreviated = token
                .strip_suffix('…')
                .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()));
            let full = token.len() == 64 && token.chars().all(|c| c.is_ascii_hexdigit());
            if abbreviated || full {
                return "<sha256>".to_owned();
            }
            let mut shaped = String::new();
            let mut in_number = false;
            for c in token.chars() {
                if !c.is_ascii_digit() {
                    shaped.push(c);
                } else if !in_number {
                    shaped.push('0');
                }
                in_number = c.is_ascii_digit();
            }
            match shaped.as_str() {
                "0-0-0T0:0:0.0" | "0-0-0T0:0:0" => "<time>".to_owned(),
                _ => shaped,
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `stdout` shows what the README shows for `command`, line by line ([`shape`]); a README line
/// `…` stands for one or more further lines.
fn assert_shows(command: &Command, stdout: &str) {
    let actual: Vec<&str> = stdout.lines().collect();
    for (index, expected) in command.output.iter().enumerate() {
        if expected == "…" {
            assert!(
                actual.len() > index,
                "README line {}: the output shows more lines after {index}:\n{stdout}",
                command.line
            );
            return;
        }
        let line = actual.get(index).copied().unwrap_or_default();
        assert_eq!(
            shape(line),
            shape(expected),
            "README line {}: line {} of the output of `{}` is not what the README shows \
             ({expected:?}); the output:\n{stdout}",
            command.line,
            index + 1,
            command.text
        );
    }
    assert_eq!(
        actual.len(),
        command.output.len(),
        "README line {}: the output of `{}` has more lines than the README shows:\n{stdout}",
        command.line,
        command.text
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_compare_words_and_the_shape_of_numbers() {
        assert_eq!(
            shape("sha256 9f2c… (48213377 bytes stored) matches"),
            shape(&format!(
                "sha256 {} (1200 bytes   stored) matches",
                "a".repeat(64)
            ))
        );
        assert_eq!(
            shape("exported 2025-10-24T03:00:00.412345 from"),
            shape("exported 2026-01-02T10:11:12 from")
        );
        assert_ne!(shape("User 5573"), shape("Tag 5573"));
        assert_ne!(shape("1 bytes"), shape("1 byte"));
    }

    #[test]
    fn assert_shows_needs_every_line() {
        let command = Command {
            line: 1,
            text: "x".to_owned(),
            output: vec!["OK a".to_owned(), "…".to_owned()],
        };
        assert_shows(&command, "OK a\nmore\n");
        let result = std::panic::catch_unwind(|| assert_shows(&command, "OK a\n"));
        assert!(result.is_err(), "a missing line fails");
        let result = std::panic::catch_unwind(|| assert_shows(&command, "OK b\nmore\n"));
        assert!(result.is_err(), "another word fails");
    }
}
