//! The fuzzing loop: mutate, run the target under `catch_unwind` and a watchdog, keep inputs that
//! reach an outcome not seen before, save and minimize every finding.
//!
//! Coverage-free: the only feedback is the target's outcome signature (an error message with its
//! numbers masked, or the shape of an accepted input), which separates code paths well enough to
//! keep the interesting mutants. One thread, one ChaCha stream: a run is a function of its seed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::mutate::{Mutator, MAX_INPUT};

/// A fuzz target: runs one input, panics when a property fails, returns the outcome signature.
pub struct Target {
    /// Name, used for findings' file names.
    pub name: &'static str,
    /// Runs one input.
    pub run: fn(&[u8]) -> String,
    /// One edit of an input.
    pub mutate: fn(&mut Mutator, &mut Vec<u8>),
    /// Tokens worth inserting besides the seeds' own words.
    pub dictionary: &'static [&'static str],
}

/// How long and from which seed.
#[derive(Clone, Debug)]
pub struct Budget {
    /// Stop after this long.
    pub duration: Duration,
    /// The seed of the random stream.
    pub seed: u64,
    /// An input running longer than this is a hang.
    pub timeout: Duration,
    /// Where findings are written.
    pub findings_dir: PathBuf,
}

/// One distinct failure.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The panic message's first line, with where it was raised.
    pub signature: String,
    /// The input as found.
    pub input: PathBuf,
    /// The input after minimization.
    pub minimized: PathBuf,
    /// Bytes of the minimized input.
    pub minimized_len: usize,
}

/// What a run did.
#[derive(Debug)]
pub struct Report {
    pub target: &'static str,
    pub seed: u64,
    pub executions: u64,
    pub elapsed: Duration,
    pub distinct_outcomes: usize,
    pub pool: usize,
    pub slowest: Duration,
    pub largest_input: usize,
    pub findings: Vec<Finding>,
    /// How often each outcome occurred (the most common ones are printed).
    pub outcomes: BTreeMap<String, u64>,
}

impl Report {
    /// Executions per second.
    pub fn rate(&self) -> f64 {
        self.executions as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A few lines for the test output and the fuzzing notes.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "fuzz target {}: seed {}, {} executions in {:.1} s ({:.0}/s), {} distinct outcomes, \
             pool {}, slowest input {:.3} s, largest input {} bytes, {} finding(s)\n",
            self.target,
            self.seed,
            self.executions,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.distinct_outcomes,
            self.pool,
            self.slowest.as_secs_f64(),
            self.largest_input,
            self.findings.len()
        );
        let accepted: u64 = self
            .outcomes
            .iter()
            .filter(|(outcome, _)| outcome.starts_with("ok") || outcome.starts_with("parsed"))
            .map(|(_, count)| count)
            .sum();
        text.push_str(&format!(
            "  {accepted} inputs accepted (read, or parsed), the rest refused with an error\n"
        ));
        let mut common: Vec<(&String, &u64)> = self.outcomes.iter().collect();
        common.sort_by(|a, b| b.1.cmp(a.1));
        for (outcome, count) in common.iter().take(12) {
            text.push_str(&format!("  {count:>9}  {outcome:.150}\n"));
        }
        for finding in &self.findings {
            text.push_str(&format!(
                "  FINDING {}\n    input {}\n    minimized ({} bytes) {}\n",
                finding.signature,
                finding.input.display(),
                finding.minimized_len,
                finding.minimized.display()
            ));
        }
        text
    }
}

thread_local! {
    /// Set while this thread runs fuzz inputs: panics are recorded here, not printed.
    static CAUGHT: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that records panics of fuzzing threads quietly and leaves every
/// other thread's panics to the default hook.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let quiet = CAUGHT.with(|caught| {
                let mut caught = caught.borrow_mut();
                match caught.as_mut() {
                    Some(slot) => {
                        let message = info
                            .payload()
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| {
                                info.payload()
                                    .downcast_ref::<&str>()
                                    .map(|s| (*s).to_owned())
                            })
                            .unwrap_or_else(|| "a panic without a message".to_owned());
                        let first = message.lines().next().unwrap_or_default().to_owned();
                        let location = info
                            .location()
                            .map(|l| format!("{}:{}", l.file(), l.line()))
                            .unwrap_or_default();
                        *slot = Some(format!("{location}: {first}"));
                        true
                    }
                    None => false,
                }
            });
            if !quiet {
                default(info);
            }
        }));
    });
}

/// Runs `input` once; `Err(signature)` when it panicked.
pub fn execute(target: &Target, input: &[u8]) -> Result<String, String> {
    install_hook();
    CAUGHT.with(|c| *c.borrow_mut() = Some(None));
    let result = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    let caught = CAUGHT.with(|c| c.borrow_mut().take()).flatten();
    result.map_err(|_| caught.unwrap_or_else(|| "a panic".to_owned()))
}

/// Numbers masked, so "line 3" and "line 7" are one outcome.
pub fn mask_digits(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_digit = false;
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            if !last_digit {
                out.push('N');
            }
            last_digit = true;
        } else {
            out.push(ch);
            last_digit = false;
        }
    }
    out
}

/// An outcome without what varies between inputs: numbers, quoted names, line breaks.
pub fn outcome_class(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    for ch in mask_digits(text).chars() {
        match quote {
            Some(q) if ch == q => {
                out.push(ch);
                quote = None;
            }
            Some(_) => {}
            None if matches!(ch, '`' | '"' | '\'') => {
                out.push(ch);
                out.push('…');
                quote = Some(ch);
            }
            None if ch == '\n' => out.push_str(" / "),
            None => out.push(ch),
        }
    }
    // Past the start, messages mostly repeat what the input said.
    out.chars().take(64).collect()
}

/// The panic signature without what varies between inputs (numbers, quoted text).
fn finding_key(signature: &str) -> String {
    let location = signature.split(": ").next().unwrap_or_default();
    let message: String = signature
        .split('"')
        .step_by(2)
        .collect::<Vec<_>>()
        .join("\"…\"");
    format!(
        "{location} {}",
        mask_digits(&message).chars().take(100).collect::<String>()
    )
}

/// A short stable name for an input.
fn hash(input: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    input.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Watches the input being run; past the timeout, saves it and aborts the process (a hung
/// thread cannot be stopped, and a hang is the finding).
/// The input being run and since when.
type Running = Arc<Mutex<Option<(Instant, Vec<u8>)>>>;

struct Watchdog {
    current: Running,
    /// Executions so far, reported with a hang.
    executions: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(name: &'static str, timeout: Duration, dir: PathBuf) -> Watchdog {
        let current: Running = Arc::new(Mutex::new(None));
        let executions = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let born = Instant::now();
        let thread = {
            let current = current.clone();
            let executions = executions.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    let guard = current.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some((started, input)) = guard.as_ref() {
                        if started.elapsed() > timeout {
                            let path = dir.join(format!("{name}-hang-{}.bin", hash(input)));
                            let _ = std::fs::create_dir_all(&dir);
                            let _ = std::fs::write(&path, input);
                            eprintln!(
                                "fuzz target {name}: an input ran longer than {timeout:?} (a hang) \
                                 after {} executions in {:.1} s; saved to {}",
                                executions.load(Ordering::Relaxed),
                                born.elapsed().as_secs_f64(),
                                path.display()
                            );
                            std::process::abort();
                        }
                    }
                }
            })
        };
        Watchdog {
            current,
            executions,
            stop,
            thread: Some(thread),
        }
    }

    fn begin(&self, input: &[u8]) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), input.to_vec()));
    }

    fn end(&self) {
        self.executions.fetch_add(1, Ordering::Relaxed);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Pool size: the seeds plus this many mutants kept for their new outcomes.
const POOL_MUTANTS: usize = 512;
/// Minimizing one finding stops after this long.
const MINIMIZE_FOR: Duration = Duration::from_secs(60);

/// Fuzzes `target` from `seeds` within `budget`.
pub fn fuzz(target: &Target, seeds: &[Vec<u8>], budget: &Budget) -> Report {
    assert!(
        !seeds.is_empty(),
        "fuzz target {} has no seeds",
        target.name
    );
    let mut mutator = Mutator::new(
        ChaCha8Rng::seed_from_u64(budget.seed),
        seeds,
        target.dictionary,
    );
    let mut pool: Vec<Vec<u8>> = seeds.to_vec();
    let mut seen: HashSet<String> = HashSet::new();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut finding_keys: HashSet<String> = HashSet::new();
    let watchdog = Watchdog::start(target.name, budget.timeout, budget.findings_dir.clone());
    let started = Instant::now();
    let mut executions = 0u64;
    let mut slowest = Duration::ZERO;
    let mut largest_input = 0;
    let mut input = Vec::new();
    // The seeds themselves first, then mutants.
    let mut seed_index = 0;
    while started.elapsed() < budget.duration {
        if seed_index < seeds.len() {
            input.clone_from(&seeds[seed_index]);
            seed_index += 1;
        } else {
            input.clone_from(pool.choose(&mut mutator.rng).unwrap_or(&seeds[0]));
            let edits = 1 + (mutator.rng.gen::<u32>() % 64).trailing_zeros().min(7) as usize;
            for _ in 0..edits {
                (target.mutate)(&mut mutator, &mut input);
                input.truncate(MAX_INPUT);
            }
        }
        largest_input = largest_input.max(input.len());
        watchdog.begin(&input);
        let began = Instant::now();
        let result = execute(target, &input);
        slowest = slowest.max(began.elapsed());
        watchdog.end();
        executions += 1;
        match result {
            Ok(outcome) => {
                let outcome = outcome_class(&outcome);
                *outcomes.entry(outcome.clone()).or_default() += 1;
                if seen.insert(outcome) && input.len() <= 256 << 10 {
                    if pool.len() < seeds.len() + POOL_MUTANTS {
                        pool.push(input.clone());
                    } else {
                        let slot = seeds.len() + mutator.rng.gen_range(0..POOL_MUTANTS);
                        pool[slot] = input.clone();
                    }
                }
            }
            Err(signature) => {
                *outcomes.entry(format!("PANIC {signature}")).or_default() += 1;
                if finding_keys.insert(finding_key(&signature)) {
                    findings.push(record_finding(
                        target, &input, &signature, budget, &watchdog,
                    ));
                }
            }
        }
    }
    Report {
        target: target.name,
        seed: budget.seed,
        executions,
        elapsed: started.elapsed(),
        distinct_outcomes: seen.len(),
        pool: pool.len(),
        slowest,
        largest_input,
        findings,
        outcomes,
    }
}

/// Saves a failing input, minimizes it (keeping the same failure), saves that too.
fn record_finding(
    target: &Target,
    input: &[u8],
    signature: &str,
    budget: &Budget,
    watchdog: &Watchdog,
) -> Finding {
    let dir = &budget.findings_dir;
    let _ = std::fs::create_dir_all(dir);
    let name = format!("{}-crash-{}", target.name, hash(input));
    let path = dir.join(format!("{name}.bin"));
    let _ = std::fs::write(&path, input);
    eprintln!(
        "fuzz target {}: FINDING {signature}\n  saved to {}",
        target.name,
        path.display()
    );
    let key = finding_key(signature);
    let minimized = minimize(input, MINIMIZE_FOR, |candidate| {
        watchdog.begin(candidate);
        let result = execute(target, candidate);
        watchdog.end();
        matches!(result, Err(s) if finding_key(&s) == key)
    });
    let minimized_path = dir.join(format!("{name}.min.bin"));
    let _ = std::fs::write(&minimized_path, &minimized);
    Finding {
        signature: signature.to_owned(),
        input: path,
        minimized: minimized_path,
        minimized_len: minimized.len(),
    }
}

/// Shrinks `input` while `fails` holds: cuts the tail, then removes chunks of halving sizes.
pub fn minimize(input: &[u8], limit: Duration, fails: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let started = Instant::now();
    let mut best = input.to_vec();
    // The shortest failing prefix, by bisection (failures are often monotone in the prefix).
    let (mut low, mut high) = (0, best.len());
    while low < high && started.elapsed() < limit {
        let mid = (low + high) / 2;
        if fails(&best[..mid]) {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    if high < best.len() && fails(&best[..high]) {
        best.truncate(high);
    }
    let mut chunk = best.len().div_ceil(2).max(1);
    loop {
        let mut at = 0;
        while at < best.len() && started.elapsed() < limit {
            let end = (at + chunk).min(best.len());
            let mut candidate = best[..at].to_vec();
            candidate.extend_from_slice(&best[end..]);
            if fails(&candidate) {
                best = candidate;
            } else {
                at += chunk;
            }
        }
        if chunk == 1 || started.elapsed() >= limit {
            break;
        }
        chunk /= 2;
    }
    best
}

/// Every file of a folder (sorted by name), or none when it does not exist.
pub fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}
