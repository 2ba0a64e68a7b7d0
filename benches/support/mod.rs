//! Shared by the benchmarks (`benches/export.rs`, `benches/import.rs`, `benches/copy.rs`): settings, the throwaway
//! cluster with the sample database, running and measuring child processes, medians, and the
//! Markdown helpers of the reports.
//!
//! Every measured program runs under a small trampoline: the bench binary re-executes itself with
//! [`TRAMPOLINE_ENV`] set, the trampoline spawns the program, reaps it with `wait4` and writes the
//! program's own peak RSS and CPU to a file. At `execve`, Linux records the old address space's
//! high-water mark in the new program's `ru_maxrss`, and a program spawned straight from the bench
//! (`posix_spawn`, i.e. `vfork`) would report the bench process's peak (tens of MiB after loading
//! the sample data) whenever its own is lower. Under the trampoline that floor is the trampoline's
//! own few MiB. Call [`trampoline`] first in `main`.
#![allow(dead_code)]

pub mod charts;
pub mod memory;

use std::collections::BTreeMap;
use std::error::Error;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use cityforge_data::demo::local_pg::LocalPg;
use cityforge_data::demo::sample;
use cityforge_data::pg::ConnectionSettings;

/// Sample size when neither `BENCH_ROWS` nor a numeric argument is given.
pub const DEFAULT_ROWS: u64 = 1_000_000;
/// Runs per case when `BENCH_REPEATS` is not set.
pub const DEFAULT_REPEATS: usize = 3;
/// The CLI under test, built by cargo for this bench.
pub const CLI_BIN: &str = env!("CARGO_BIN_EXE_cityforge-data");
/// Database the sample data goes into.
pub const DB: &str = "cityforge";
/// Peak RSS limit of our processes, MiB.
pub const RSS_LIMIT_MIB: f64 = 64.0;
/// Allowed peak-RSS growth from the 1M-row run to a larger one.
pub const RSS_GROWTH_LIMIT: f64 = 0.10;
/// Set (to the report file) when the bench binary runs as the trampoline.
pub const TRAMPOLINE_ENV: &str = "CITYFORGE_BENCH_RUSAGE_FILE";
/// How long to wait after a case before reading the CPU counters.
pub const SETTLE: Duration = Duration::from_millis(100);
/// How long to wait at most for a run's backends to exit.
pub const BACKEND_EXIT_TIMEOUT: Duration = Duration::from_secs(300);

/// Benchmark settings from the environment and the command line.
pub struct Config {
    /// Approximate sample rows.
    pub rows: u64,
    /// Runs per case.
    pub repeats: usize,
    /// The CLI binary: `BENCH_EXPORT_BIN`, else the one cargo built for this bench.
    pub export_bin: PathBuf,
}

impl Config {
    /// Reads `BENCH_ROWS` / the first numeric argument, `BENCH_REPEATS` and `BENCH_EXPORT_BIN`;
    /// other arguments (`--bench` and whatever cargo passes) are ignored.
    pub fn from_env() -> Result<Config, Box<dyn Error>> {
        let from_args = std::env::args().skip(1).find_map(|a| parse_count(&a).ok());
        let rows = match (from_args, std::env::var("BENCH_ROWS")) {
            (Some(rows), _) => rows,
            (None, Ok(text)) if !text.is_empty() => {
                parse_count(&text).map_err(|e| format!("BENCH_ROWS={text}: {e}"))?
            }
            _ => DEFAULT_ROWS,
        };
        let repeats = match std::env::var("BENCH_REPEATS") {
            Ok(text) if !text.is_empty() => {
                parse_count(&text).map_err(|e| format!("BENCH_REPEATS={text}: {e}"))? as usize
            }
            _ => DEFAULT_REPEATS,
        };
        let export_bin = std::env::var_os("BENCH_EXPORT_BIN")
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(CLI_BIN), PathBuf::from);
        if !export_bin.is_file() {
            return Err(format!(
                "{} is missing: run `cargo build --release`",
                export_bin.display()
            )
            .into());
        }
        Ok(Config {
            rows,
            repeats: repeats.max(1),
            export_bin,
        })
    }
}

/// A count such as `5000000` or `5_000_000`.
fn parse_count(text: &str) -> Result<u64, std::num::ParseIntError> {
    text.replace('_', "").parse::<u64>()
}

/// Whether an environment variable is set to something other than empty or `0`.
pub fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// One program of a case: what to run and where its stdout goes.
pub struct Stage {
    /// Executable.
    pub program: PathBuf,
    /// Arguments; the token [`OUT`] is replaced by the output path.
    pub args: Vec<OsString>,
    /// Extra environment.
    pub env: Vec<(OsString, OsString)>,
    /// Whether stdout is the output file (else the program writes the file itself, or stdout
    /// feeds the next stage, or goes to `/dev/null`).
    pub stdout_to_file: bool,
}

/// Placeholder for the output path in [`Stage::args`].
pub const OUT: &str = "{out}";

impl Stage {
    /// A stage from a program and string arguments.
    pub fn new(program: impl AsRef<Path>, args: &[&str], stdout_to_file: bool) -> Stage {
        Stage {
            program: program.as_ref().to_path_buf(),
            args: args.iter().map(OsString::from).collect(),
            env: Vec::new(),
            stdout_to_file,
        }
    }

    /// The stage with one more environment variable.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Stage {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// One thing we measure.
pub struct Case {
    /// Row label.
    pub name: &'static str,
    /// Output file name in the work folder, deleted after each run (`None`: no output file).
    pub file: Option<&'static str>,
    /// Database the case connects to (`PGDATABASE`, `DATABASE_URL`).
    pub database: &'static str,
    /// Whether a failing run is a result to report rather than an error of the bench.
    pub may_fail: bool,
    /// One program, or a pipeline (each stage's stdout into the next one's stdin).
    pub stages: Vec<Stage>,
}

/// What one run of one case cost.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// Spawn of the first stage to exit of the last.
    pub wall: Duration,
    /// User + system CPU of all stages (not the server's).
    pub cpu: Duration,
    /// CPU of the PostgreSQL server processes that exited during the run (the backends).
    pub server_cpu: Duration,
    /// CPU the machine spent on anything else meanwhile (other users, the server's background
    /// processes, the kernel): a noise indicator.
    pub other_cpu: Duration,
    /// Peak RSS per stage, KiB.
    pub rss_kib: Vec<u64>,
    /// Size of the output file.
    pub bytes: u64,
    /// Why the run failed (only for cases that [`Case::may_fail`]).
    pub failure: Option<String>,
    /// How long the server's backends went on after the last program had exited (not part of
    /// the wall time).
    pub backend_exit: Duration,
    /// Resident memory over the run, per stage ([`memory`]).
    pub rss_series: Vec<Vec<memory::Sample>>,
}

impl Run {
    /// The largest peak RSS of the stages, MiB.
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib.iter().copied().max().unwrap_or(0) as f64 / 1024.0
    }
}

/// Median figures of one case over all repeats.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Median wall time, seconds.
    pub wall: f64,
    /// Fastest and slowest run, seconds.
    pub wall_range: (f64, f64),
    /// Median client CPU, seconds.
    pub cpu: f64,
    /// Median server (backend) CPU, seconds.
    pub server_cpu: f64,
    /// Median CPU spent on anything else meanwhile, seconds.
    pub other_cpu: f64,
    /// Median peak RSS (largest stage), MiB.
    pub rss: f64,
    /// Largest peak RSS over the repeats, MiB.
    pub rss_max: f64,
    /// Median peak RSS per stage, MiB.
    pub stage_rss: Vec<f64>,
    /// Output size (median).
    pub bytes: u64,
    /// How many runs failed, and the first failure.
    pub failures: (usize, Option<String>),
}

/// The median of some numbers (the lower middle one for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) / 2]
}

impl Summary {
    /// Medians of a case's runs.
    pub fn of(runs: &[Run]) -> Summary {
        let stages = runs[0].rss_kib.len();
        Summary {
            wall: median(runs.iter().map(|r| r.wall.as_secs_f64()).collect()),
            wall_range: runs
                .iter()
                .map(|r| r.wall.as_secs_f64())
                .fold((f64::INFINITY, 0.0), |(lo, hi), w| (lo.min(w), hi.max(w))),
            cpu: median(runs.iter().map(|r| r.cpu.as_secs_f64()).collect()),
            server_cpu: median(runs.iter().map(|r| r.server_cpu.as_secs_f64()).collect()),
            other_cpu: median(runs.iter().map(|r| r.other_cpu.as_secs_f64()).collect()),
            rss: median(runs.iter().map(Run::rss_mib).collect()),
            rss_max: runs.iter().map(Run::rss_mib).fold(0.0, f64::max),
            stage_rss: (0..stages)
                .map(|i| median(runs.iter().map(|r| r.rss_kib[i] as f64 / 1024.0).collect()))
                .collect(),
            bytes: median(runs.iter().map(|r| r.bytes as f64).collect()) as u64,
            failures: (
                runs.iter().filter(|r| r.failure.is_some()).count(),
                runs.iter().find_map(|r| r.failure.clone()),
            ),
        }
    }

    /// Peak RSS as a cell: the median, or the stages' medians joined by ` / `.
    pub fn rss_cell(&self) -> String {
        if self.stage_rss.len() > 1 {
            self.stage_rss
                .iter()
                .map(|r| format!("{r:.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
        } else {
            format!("{:.1}", self.rss)
        }
    }
}

/// Everything a case needs to reach the database.
pub struct Target<'a> {
    /// The cluster.
    pub pg: &'a LocalPg,
    /// Folder for outputs and stderr captures.
    pub work: &'a Path,
}

impl Target<'_> {
    /// The postmaster's process id, from `postmaster.pid`.
    fn postmaster_pid(&self) -> Option<u32> {
        fs::read_to_string(self.pg.data_dir().join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next()?.trim().parse::<u32>().ok())
    }

    /// How many client backends (and their parallel workers) are alive: the postmaster's
    /// children whose title is `postgres: <user> …` or `postgres: parallel worker …`.
    fn client_backends(&self) -> usize {
        let Some(postmaster) = self.postmaster_pid() else {
            return 0;
        };
        let client = format!("postgres: {} ", self.pg.user());
        let Ok(entries) = fs::read_dir("/proc") else {
            return 0;
        };
        entries
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
            .filter(|e| {
                let ppid = fs::read_to_string(e.path().join("stat"))
                    .ok()
                    .and_then(|stat| {
                        let (_, rest) = stat.rsplit_once(')')?;
                        rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                    });
                ppid == Some(postmaster)
            })
            .filter(|e| {
                fs::read(e.path().join("cmdline")).is_ok_and(|title| {
                    let title = String::from_utf8_lossy(&title);
                    title.starts_with(&client) || title.starts_with("postgres: parallel worker")
                })
            })
            .count()
    }

    /// Waits (up to [`BACKEND_EXIT_TIMEOUT`]) until no client backend is left, so that the
    /// backends of a run are reaped, and their CPU counted, before the counters are read; returns
    /// how long that took. A backend goes on working after its client has gone: it drops its
    /// temporary tables at exit.
    pub fn wait_for_backends(&self) -> Duration {
        let started = Instant::now();
        while self.client_backends() > 0 && started.elapsed() < BACKEND_EXIT_TIMEOUT {
            std::thread::sleep(Duration::from_millis(10));
        }
        started.elapsed()
    }

    /// CPU of the postmaster and of its reaped children (the backends), from `/proc`.
    pub fn server_cpu(&self) -> Duration {
        let Some(pid) = self.postmaster_pid() else {
            return Duration::ZERO;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return Duration::ZERO;
        };
        // Fields after "(comm)": state is field 3, utime/stime/cutime/cstime are fields 14–17.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return Duration::ZERO;
        };
        let ticks: u64 = rest
            .split_whitespace()
            .skip(11)
            .take(4)
            .filter_map(|f| f.parse::<u64>().ok())
            .sum();
        from_ticks(ticks)
    }

    /// A command for `program` with the connection variables of `database` (for libpq programs
    /// and our CLI).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, database: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("PGHOST", self.pg.host())
            .env("PGPORT", self.pg.port().to_string())
            .env("PGUSER", self.pg.user())
            .env("PGPASSWORD", self.pg.password())
            .env("PGDATABASE", database)
            .env("DATABASE_URL", self.pg.url(database))
            .env_remove("RUST_LOG");
        cmd
    }

    /// Runs psql on `database` with these commands (each its own `-c`), returns its stdout
    /// (unaligned, tuples only); not measured.
    pub fn psql(&self, database: &str, commands: &[&str]) -> Result<String, Box<dyn Error>> {
        let mut cmd = self.command(self.pg.bin_dir().join("psql"), database);
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]);
        for command in commands {
            cmd.arg("-c").arg(command);
        }
        let output = cmd.output()?;
        if !output.status.success() {
            return Err(format!(
                "psql on {database} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Runs a program to the end, unmeasured (e.g. to make a dump); fails with its stderr.
    pub fn run_unmeasured(&self, mut cmd: Command) -> Result<Duration, Box<dyn Error>> {
        let started = Instant::now();
        let output = cmd.stdin(Stdio::null()).stdout(Stdio::null()).output()?;
        if !output.status.success() {
            return Err(format!(
                "{:?} failed: {}",
                cmd.get_program(),
                String::from_utf8_lossy(&output.stderr).trim()
            )
            .into());
        }
        Ok(started.elapsed())
    }

    /// Runs one case once and measures it; the output file is deleted afterwards.
    pub fn measure(&self, case: &Case) -> Result<Run, Box<dyn Error>> {
        let out = self.work.join(case.file.unwrap_or("no-output"));
        // Earlier runs' dirty pages must not be flushed on this run's time.
        // SAFETY: sync(2) has no preconditions.
        unsafe { libc::sync() };
        let trampoline = std::env::current_exe()?;
        let mut children: Vec<(Child, PathBuf, PathBuf, &Stage)> = Vec::new();
        let server_before = self.server_cpu();
        let busy_before = machine_busy();
        let started = Instant::now();
        let mut previous_stdout = None;
        for (i, stage) in case.stages.iter().enumerate() {
            let stderr_path = self.work.join(format!("stage{i}.stderr"));
            let usage_path = self.work.join(format!("stage{i}.rusage"));
            let _ = fs::remove_file(&usage_path);
            let mut cmd = self.command(&trampoline, case.database);
            cmd.env(TRAMPOLINE_ENV, &usage_path).arg(&stage.program);
            for arg in &stage.args {
                if arg == OUT {
                    cmd.arg(&out);
                } else {
                    cmd.arg(arg);
                }
            }
            cmd.envs(stage.env.iter().map(|(k, v)| (k, v)))
                .stderr(File::create(&stderr_path)?);
            cmd.stdin(match previous_stdout.take() {
                Some(pipe) => Stdio::from(pipe),
                None => Stdio::null(),
            });
            let last = i + 1 == case.stages.len();
            if stage.stdout_to_file {
                cmd.stdout(File::create(&out)?);
            } else if !last {
                cmd.stdout(Stdio::piped());
            } else {
                cmd.stdout(Stdio::null());
            }
            let mut child = cmd
                .spawn()
                .map_err(|e| format!("{}: {e}", stage.program.display()))?;
            previous_stdout = child.stdout.take();
            children.push((child, stderr_path, usage_path, stage));
        }
        let mut reaped = Vec::with_capacity(children.len());
        for (child, stderr_path, usage_path, stage) in children {
            let (status, _) = wait_with_rusage(child)?;
            reaped.push((status, stderr_path, usage_path, stage));
        }
        let mut run = Run {
            wall: started.elapsed(),
            ..Run::default()
        };
        for (status, stderr_path, usage_path, stage) in reaped {
            let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
            let usage = fs::read_to_string(&usage_path).map_err(|e| {
                format!(
                    "{}: no usage from the trampoline ({e}): {}",
                    stage.program.display(),
                    stderr.trim()
                )
            })?;
            let usage: Vec<u64> = usage
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            let [maxrss_kib, user_us, system_us] = usage[..] else {
                return Err(format!("{}: bad usage report", stage.program.display()).into());
            };
            run.rss_kib.push(maxrss_kib);
            let series_path = memory::series_path(&usage_path);
            run.rss_series.push(memory::read(&series_path));
            let _ = fs::remove_file(&series_path);
            run.cpu += Duration::from_micros(user_us + system_us);
            if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) && run.failure.is_none()
            {
                run.failure = Some(format!(
                    "{} failed (exit status {}): {}",
                    stage
                        .program
                        .file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                    libc::WEXITSTATUS(status),
                    abridge(&stderr)
                ));
            }
            fs::remove_file(&stderr_path)?;
            fs::remove_file(&usage_path)?;
        }
        // Let the backends exit and the postmaster reap them, so that their CPU shows in the
        // postmaster's counters.
        run.backend_exit = self.wait_for_backends();
        std::thread::sleep(SETTLE);
        let server_after = self.server_cpu();
        let busy_after = machine_busy();
        run.server_cpu = server_after.saturating_sub(server_before);
        run.other_cpu = busy_after
            .saturating_sub(busy_before)
            .saturating_sub(run.cpu + run.server_cpu);
        if case.file.is_some() {
            run.bytes = fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            let _ = fs::remove_file(&out);
        }
        match &run.failure {
            Some(message) if !case.may_fail => Err(format!("{}: {message}", case.name).into()),
            _ => Ok(run),
        }
    }
}

/// The first lines of an error output, with the number of lines left out.
fn abridge(stderr: &str) -> String {
    const KEEP: usize = 3;
    let lines: Vec<&str> = stderr.trim().lines().collect();
    let mut text = lines
        .iter()
        .take(KEEP)
        .copied()
        .collect::<Vec<_>>()
        .join(" ⏎ ");
    if lines.len() > KEEP {
        let _ = write!(text, " … ({} more lines)", lines.len() - KEEP);
    }
    text
}

/// Reaps a child with `wait4`, returning its wait status and its resource usage.
pub fn wait_with_rusage(child: Child) -> io::Result<(libc::c_int, libc::rusage)> {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child; both pointers are valid for writes.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            // The child is reaped; `Child` neither waits nor kills on drop.
            drop(child);
            return Ok((status, usage));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// When the bench binary runs as the trampoline ([`TRAMPOLINE_ENV`] set): runs the program named
/// by the arguments, samples its resident memory while it runs ([`memory`]), reaps it with
/// `wait4`, writes `maxrss_kib user_us system_us` of the program to the file named by the
/// variable (and the memory series beside it) and exits as the program did. Otherwise returns `None`.
pub fn trampoline() -> Option<ExitCode> {
    let report = std::env::var_os(TRAMPOLINE_ENV)?;
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("trampoline: no program given");
        return Some(ExitCode::from(127));
    };
    let child = match Command::new(&program)
        .args(args)
        .env_remove(TRAMPOLINE_ENV)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("trampoline: {}: {e}", program.to_string_lossy());
            return Some(ExitCode::from(127));
        }
    };
    let sampler = memory::Sampler::start(child.id());
    let (status, usage) = match wait_with_rusage(child) {
        Ok(reaped) => reaped,
        Err(e) => {
            eprintln!("trampoline: wait4: {e}");
            return Some(ExitCode::from(127));
        }
    };
    let series = sampler.finish();
    if let Err(e) = memory::write(&memory::series_path(Path::new(&report)), &series) {
        eprintln!("trampoline: the memory series: {e}");
        return Some(ExitCode::from(127));
    }
    let micros = |tv: libc::timeval| tv.tv_sec.max(0) as u64 * 1_000_000 + tv.tv_usec.max(0) as u64;
    let text = format!(
        "{} {} {}\n",
        usage.ru_maxrss.max(0),
        micros(usage.ru_utime),
        micros(usage.ru_stime)
    );
    if let Err(e) = fs::write(&report, text) {
        eprintln!("trampoline: {}: {e}", Path::new(&report).display());
        return Some(ExitCode::from(127));
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Some(ExitCode::from(code as u8))
}

/// Clock ticks as a `Duration`.
pub fn from_ticks(ticks: u64) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / hz)
}

/// Busy CPU time of the whole machine (user, nice, system, irq, softirq) from `/proc/stat`.
pub fn machine_busy() -> Duration {
    let ticks = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("cpu "))?;
            let f: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal …
            Some(f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)?)
        })
        .unwrap_or(0);
    from_ticks(ticks)
}

/// The three load averages from `/proc/loadavg`.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// First line of a command's stdout, or `?`.
pub fn first_line(program: &Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// A `kB` field of `/proc/<who>/status` or `/proc/meminfo`, MiB.
fn kib_field(path: &str, field: &str) -> f64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// `MemTotal` from `/proc/meminfo`, GiB.
pub fn mem_total_gib() -> f64 {
    kib_field("/proc/meminfo", "MemTotal:") / 1024.0
}

/// This process's peak RSS (`VmHWM`), MiB: what a program spawned without the trampoline would
/// report at least.
pub fn own_peak_rss_mib() -> f64 {
    kib_field("/proc/self/status", "VmHWM:")
}

/// Prints the machine, the binary and the sources (the header of every bench).
pub fn print_header(title: &str, config: &Config) {
    println!(
        "{title}: {} rows requested, {} runs per case",
        config.rows, config.repeats
    );
    println!(
        "machine: {} CPUs, {:.1} GiB RAM, {}; load average {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        mem_total_gib(),
        first_line(Path::new("uname"), &["-sr"]),
        load_average()
    );
    let hash = first_line(
        Path::new("sha256sum"),
        &[&config.export_bin.to_string_lossy()],
    );
    println!(
        "binary: {} (sha256 {}); sources: {}",
        config.export_bin.display(),
        hash.get(..16).unwrap_or("?"),
        first_line(
            Path::new("git"),
            &[
                "-C",
                env!("CARGO_MANIFEST_DIR"),
                "describe",
                "--always",
                "--dirty"
            ]
        )
    );
}

/// What every benchmark starts with: a throwaway cluster, a work folder, and the sample loaded.
pub struct SetUp {
    /// The cluster (stopped and deleted when dropped).
    pub pg: LocalPg,
    /// The work folder (deleted when dropped).
    pub work: tempfile::TempDir,
    /// Rows of the loaded sample.
    pub total_rows: u64,
}

/// Starts the cluster, prints the versions of the two peer `tools` (paths, or names in the
/// cluster's bin directory), loads the sample ([`prepare`]) and prints the bench process's own
/// peak RSS.
pub fn set_up(config: &Config, tools: [&str; 2]) -> Result<SetUp, Box<dyn Error>> {
    let pg = LocalPg::start()?;
    let version = |tool: &str| {
        let in_cluster = pg.bin_dir().join(tool);
        let program = if in_cluster.exists() {
            in_cluster
        } else {
            PathBuf::from(tool)
        };
        first_line(&program, &["--version"])
    };
    println!("{} / {}", version(tools[0]), version(tools[1]));
    let work = tempfile::Builder::new()
        .prefix("cityforge-bench-")
        .tempdir()?;
    let total_rows = prepare(&pg, config.rows)?;
    println!(
        "bench process peak RSS {:.1} MiB (not inherited by the measured programs: trampoline)",
        own_peak_rss_mib()
    );
    Ok(SetUp {
        pg,
        work,
        total_rows,
    })
}

/// A benchmark's `main`: the trampoline when the process is one, else `run`, exiting 1 with
/// the error (naming the `benchmark`) on stderr when anything fails.
pub fn main(benchmark: &str, run: fn() -> Result<(), Box<dyn Error>>) -> ExitCode {
    if let Some(code) = trampoline() {
        return code;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{benchmark} failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Creates database [`DB`], loads the sample, vacuums; returns the total row count.
pub fn prepare(pg: &LocalPg, rows: u64) -> Result<u64, Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let admin = ConnectionSettings::from_url(&pg.url("postgres"))?
            .connect()
            .await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {DB}"))
            .await?;
        let client = ConnectionSettings::from_url(&pg.url(DB))?.connect().await?;
        sample::create_schema(&client).await?;
        let started = Instant::now();
        let summary = sample::load(&client, rows).await?;
        let loaded = started.elapsed();
        println!(
            "loaded {} rows in {:.1} s ({:.0} rows/s)",
            summary.total(),
            loaded.as_secs_f64(),
            summary.total() as f64 / loaded.as_secs_f64()
        );
        for (table, n) in &summary.tables {
            println!("  {table:<24} {n:>9}");
        }
        let started = Instant::now();
        client.batch_execute("VACUUM ANALYZE").await?;
        client.batch_execute("CHECKPOINT").await?;
        let size: i64 = client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await?
            .get(0);
        let version: String = client.query_one("SHOW server_version", &[]).await?.get(0);
        println!(
            "VACUUM ANALYZE + CHECKPOINT in {:.1} s; database size {:.0} MiB; server {version}",
            started.elapsed().as_secs_f64(),
            size as f64 / 1024.0 / 1024.0
        );
        Ok::<_, Box<dyn Error>>(summary.total())
    })
}

/// What the per-run hooks of [`rounds`] return.
pub type BenchResult = Result<(), Box<dyn Error>>;

/// Runs every case `repeats` times, round-robin, printing each run; `before` runs (unmeasured)
/// before each run, `after` after it (e.g. to check or drop what the run made).
pub fn rounds<'c>(
    target: &Target,
    cases: &'c [Case],
    repeats: usize,
    before: &mut dyn FnMut(&Case) -> BenchResult,
    after: &mut dyn FnMut(&Case, &mut Run) -> BenchResult,
) -> Result<BTreeMap<&'c str, Vec<Run>>, Box<dyn Error>> {
    let mut runs: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
    for round in 1..=repeats {
        println!("\nround {round}/{repeats}: load average {}", load_average());
        for case in cases {
            before(case)?;
            let mut run = target.measure(case)?;
            after(case, &mut run)?;
            println!(
                "  {:<36} {:>7.2} s  cpu {:>6.2} s  server {:>6.2} s  others {:>5.2} s  rss {:>6.1} MiB  {:>9.1} MB  backend exit +{:.2} s{}",
                case.name,
                run.wall.as_secs_f64(),
                run.cpu.as_secs_f64(),
                run.server_cpu.as_secs_f64(),
                run.other_cpu.as_secs_f64(),
                run.rss_mib(),
                run.bytes as f64 / 1e6,
                run.backend_exit.as_secs_f64(),
                run.failure
                    .as_deref()
                    .map_or_else(String::new, |f| format!("  FAILED: {f}"))
            );
            runs.entry(case.name).or_default().push(run);
        }
    }
    println!("\nload average after the runs: {}", load_average());
    Ok(runs)
}

/// Where a bench keeps results between runs: `target/<name>`.
pub fn results_dir(name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join(name)
}

/// `name=value` lines of the median peak RSS of these cases, for the growth comparison.
pub fn rss_record(names: &[&str], summaries: &BTreeMap<&str, Summary>) -> String {
    let mut text = String::new();
    for name in names {
        if let Some(s) = summaries.get(name) {
            let _ = writeln!(text, "{name}={:.2}", s.rss);
        }
    }
    text
}

/// Parses [`rss_record`]'s output.
pub fn parse_rss_record(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|l| {
            let (name, value) = l.split_once('=')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Saves the peak RSS of `names` to `target/<dir>/rows-<N>.txt` and, for a size other than the
/// default, prints target rows comparing them with the default-size file.
pub fn rss_growth(
    dir: &str,
    rows: u64,
    names: &[&str],
    summaries: &BTreeMap<&str, Summary>,
) -> Result<(), Box<dyn Error>> {
    let dir = results_dir(dir);
    fs::create_dir_all(&dir)?;
    let record = rss_record(names, summaries);
    fs::write(dir.join(format!("rows-{rows}.txt")), &record)?;
    if rows == DEFAULT_ROWS {
        return Ok(());
    }
    let baseline_path = dir.join(format!("rows-{DEFAULT_ROWS}.txt"));
    match fs::read_to_string(&baseline_path) {
        Ok(text) => {
            let baseline = parse_rss_record(&text);
            for (name, now) in parse_rss_record(&record) {
                if let Some(&base) = baseline.get(&name) {
                    let growth = now / base - 1.0;
                    println!(
                        "| {} peak RSS (median) vs the {DEFAULT_ROWS}-row run ({base:.1} MiB) | ≤ +{:.0} % | {:+.1} % | {} |",
                        cell(&name),
                        RSS_GROWTH_LIMIT * 100.0,
                        growth * 100.0,
                        verdict(growth <= RSS_GROWTH_LIMIT)
                    );
                }
            }
        }
        Err(_) => println!(
            "\n(no {} yet: run the default size first for the RSS growth check)",
            baseline_path.display()
        ),
    }
    Ok(())
}

/// A case name as a Markdown table cell (`|` escaped).
pub fn cell(name: &str) -> String {
    name.replace('|', "\\|")
}

/// `yes` / `NO` for a target check.
pub fn verdict(holds: bool) -> &'static str {
    if holds {
        "yes"
    } else {
        "**NO**"
    }
}

/// `BENCH_HOLD`: prints how to reach the loaded cluster (for `perf`, `psql`, a manual run)
/// and waits for a line on stdin: empty to go on measuring, `q` (or end of input) to stop.
pub fn hold(pg: &LocalPg, work: &Path) -> Result<bool, Box<dyn Error>> {
    println!(
        "BENCH_HOLD: the cluster is loaded.\n  DATABASE_URL={}\n  PGHOST={} PGPORT={} PGUSER={} \
         PGPASSWORD={} PGDATABASE={DB}\n  bin: {}\n  work folder: {}\n  server log: {}\n\
         Press Enter to measure, or q to stop.",
        pg.url(DB),
        pg.host(),
        pg.port(),
        pg.user(),
        pg.password(),
        pg.bin_dir().display(),
        work.display(),
        pg.log_path().display()
    );
    let mut line = String::new();
    let read = io::stdin().read_line(&mut line)?;
    Ok(read > 0 && line.trim() != "q")
}
