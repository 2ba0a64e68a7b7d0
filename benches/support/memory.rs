//! Resident memory over a run: the trampoline samples its program's RSS every [`EVERY`] while it
//! runs and writes the series beside its usage report ([`series_path`]); [`super::charts`] draws
//! them. Peak RSS alone says how high memory went, the series shows that it stays flat.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the program's resident set is read.
pub const EVERY: Duration = Duration::from_millis(50);

/// One sample: seconds since the program started, resident set in KiB.
pub type Sample = (f64, u64);

/// Where the trampoline writes the series of the run whose usage goes to `report`.
pub fn series_path(report: &Path) -> PathBuf {
    let mut name = report.as_os_str().to_owned();
    name.push(".rss");
    PathBuf::from(name)
}

/// A thread reading `pid`'s resident set every [`EVERY`] until `done` is set or the process has
/// no memory left to read (it exited).
pub struct Sampler {
    done: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32) -> Sampler {
        let done = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&done);
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let Some(kib) = vm_rss_kib(pid) else { break };
                samples.push((started.elapsed().as_secs_f64(), kib));
                std::thread::sleep(EVERY);
            }
            samples
        });
        Sampler { done, thread }
    }

    /// Stops sampling and returns the series.
    pub fn finish(self) -> Vec<Sample> {
        self.done.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// `VmRSS` of `pid` in KiB; `None` once the process is gone (a zombie has no `VmRSS` line).
fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Writes a series as `seconds kib` lines.
pub fn write(path: &Path, samples: &[Sample]) -> std::io::Result<()> {
    let text: String = samples
        .iter()
        .map(|(t, kib)| format!("{t:.3} {kib}\n"))
        .collect();
    fs::write(path, text)
}

/// Reads what [`write`] wrote; an absent or unreadable file is an empty series.
pub fn read(path: &Path) -> Vec<Sample> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (t, kib) = line.split_once(' ')?;
            Some((t.parse().ok()?, kib.parse().ok()?))
        })
        .collect()
}
