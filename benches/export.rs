//! Export benchmark: our export side by side with `pg_dump --data-only`, a raw `COPY … TO STDOUT`
//! and PostgreSQL's own `row_to_json`, on the same sample database, in the same run.
//!
//! ```text
//! cargo bench --bench export                      # about 1M rows (default)
//! BENCH_ROWS=5000000 cargo bench --bench export   # or: cargo bench --bench export -- 5000000
//! BENCH_REPEATS=5 cargo bench --bench export      # repetitions per case (default 3)
//! BENCH_EXPORT_BIN=/path/to/cityforge-data cargo bench --bench export   # another build
//! BENCH_HOLD=1 cargo bench --bench export         # pause after loading (for perf, psql, …)
//! ```
//!
//! It starts a throwaway PostgreSQL cluster ([`LocalPg`]), creates database `cityforge`, loads
//! the deterministic sample data ([`sample::load`]), runs `VACUUM ANALYZE` and `CHECKPOINT`, then
//! runs every case `BENCH_REPEATS` times, round-robin (so a burst of load from elsewhere hits
//! every case alike), and reports the median of each figure. Every case is a child process (or
//! a pipeline of two), reaped with `wait4`, so its peak RSS and CPU are its own; the backend's
//! CPU is read separately from the postmaster's `/proc` counters, and the machine's remaining busy
//! time is reported as "others' CPU" (a noise indicator). Every case writes a file in a
//! temp folder (deleted after each run and at the end), so all of them pay for the same kind of
//! output.
//!
//! The export binary is `CARGO_BIN_EXE_cityforge-data`: `cargo bench` builds it (with the
//! `bench` profile, which is `release`, into `target/release/`) before running this file, so the
//! measured binary always matches the sources (`BENCH_EXPORT_BIN` overrides it, e.g. to compare
//! two builds, or to keep one build fixed while the sources change). Results are also written to
//! `target/bench-export/rows-<N>.txt`; a run at another size compares its peak RSS with the
//! 1M-row file when present (the "≤ 10 % above 1M at 5M" target).

use std::collections::BTreeMap;
use std::error::Error;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use cityforge_data::local_pg::LocalPg;
use cityforge_data::pg::ConnectionSettings;
use cityforge_data::sample;

/// Sample size when neither `BENCH_ROWS` nor a numeric argument is given.
const DEFAULT_ROWS: u64 = 1_000_000;
/// Runs per case when `BENCH_REPEATS` is not set.
const DEFAULT_REPEATS: usize = 3;
/// The CLI under test, built by cargo for this bench.
const EXPORT_BIN: &str = env!("CARGO_BIN_EXE_cityforge-data");
/// Database the sample data goes into.
const DB: &str = "cityforge";
/// Default export / `pg_dump --data-only`, wall time (the issue's limits follow).
const DEFAULT_LIMIT: f64 = 2.0;
/// `--compact` export / `pg_dump --data-only`.
const COMPACT_LIMIT: f64 = 1.5;
/// gzip export / `pg_dump --data-only | gzip -6`.
const GZIP_LIMIT: f64 = 1.2;
/// Peak RSS limit of every export, MiB.
const RSS_LIMIT_MIB: f64 = 64.0;
/// Allowed peak-RSS growth from the 1M-row run to a larger one.
const RSS_GROWTH_LIMIT: f64 = 0.10;

/// Names of the cases, in the order they run within a round.
const PG_DUMP: &str = "pg_dump --data-only";
/// Raw `COPY t TO STDOUT` of every table through one psql.
const RAW_COPY: &str = "COPY TO STDOUT (raw)";
/// Server-side `row_to_json`.
const JSON_FLOOR: &str = "COPY row_to_json (floor)";
/// Our export, pretty.
const EXPORT: &str = "export (default)";
/// Our export, `--compact`.
const EXPORT_COMPACT: &str = "export --compact";
/// Our export, `.json.gz`.
const EXPORT_GZIP: &str = "export gzip";
/// `pg_dump --data-only | gzip -6`.
const PG_DUMP_GZIP: &str = "pg_dump | gzip -6";

/// Benchmark settings from the environment and the command line.
struct Config {
    /// Approximate sample rows.
    rows: u64,
    /// Runs per case.
    repeats: usize,
    /// The export binary: `BENCH_EXPORT_BIN`, else the one cargo built for this bench.
    export_bin: PathBuf,
}

impl Config {
    /// Reads `BENCH_ROWS` / the first numeric argument, `BENCH_REPEATS` and `BENCH_EXPORT_BIN`;
    /// other arguments (`--bench` and whatever cargo passes) are ignored.
    fn from_env() -> Result<Config, Box<dyn Error>> {
        let parse = |text: &str| text.replace('_', "").parse::<u64>();
        let from_args = std::env::args().skip(1).find_map(|a| parse(&a).ok());
        let rows = match (from_args, std::env::var("BENCH_ROWS")) {
            (Some(rows), _) => rows,
            (None, Ok(text)) if !text.is_empty() => {
                parse(&text).map_err(|e| format!("BENCH_ROWS={text}: {e}"))?
            }
            _ => DEFAULT_ROWS,
        };
        let repeats = match std::env::var("BENCH_REPEATS") {
            Ok(text) if !text.is_empty() => {
                parse(&text).map_err(|e| format!("BENCH_REPEATS={text}: {e}"))? as usize
            }
            _ => DEFAULT_REPEATS,
        };
        let export_bin = std::env::var_os("BENCH_EXPORT_BIN")
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(EXPORT_BIN), PathBuf::from);
        Ok(Config {
            rows,
            repeats: repeats.max(1),
            export_bin,
        })
    }
}

/// One program of a case: what to run and where its stdout goes.
struct Stage {
    /// Executable.
    program: PathBuf,
    /// Arguments; the token [`OUT`] is replaced by the output path.
    args: Vec<OsString>,
    /// Whether stdout is the output file (else the program writes the file itself, or stdout
    /// feeds the next stage).
    stdout_to_file: bool,
}

/// Placeholder for the output path in [`Stage::args`].
const OUT: &str = "{out}";

impl Stage {
    /// A stage from a program and string arguments.
    fn new(program: impl AsRef<Path>, args: &[&str], stdout_to_file: bool) -> Stage {
        Stage {
            program: program.as_ref().to_path_buf(),
            args: args.iter().map(OsString::from).collect(),
            stdout_to_file,
        }
    }
}

/// One thing we measure.
struct Case {
    /// Row label.
    name: &'static str,
    /// Output file name in the work folder.
    file: &'static str,
    /// One program, or a pipeline (each stage's stdout into the next one's stdin).
    stages: Vec<Stage>,
}

/// What one run of one case cost.
#[derive(Clone, Debug, Default)]
struct Run {
    /// Spawn of the first stage to exit of the last.
    wall: Duration,
    /// User + system CPU of all stages (not the server's).
    cpu: Duration,
    /// CPU of the PostgreSQL server processes that exited during the run (the backend).
    server_cpu: Duration,
    /// CPU the machine spent on anything else meanwhile (other users, the server's background
    /// processes, the kernel): a noise indicator.
    other_cpu: Duration,
    /// Peak RSS per stage, KiB.
    rss_kib: Vec<u64>,
    /// Size of the output file.
    bytes: u64,
}

impl Run {
    /// The largest peak RSS of the stages, MiB.
    fn rss_mib(&self) -> f64 {
        self.rss_kib.iter().copied().max().unwrap_or(0) as f64 / 1024.0
    }
}

/// Median figures of one case over all repeats.
#[derive(Clone, Debug)]
struct Summary {
    /// Median wall time, seconds.
    wall: f64,
    /// Fastest and slowest run, seconds.
    wall_range: (f64, f64),
    /// Median client CPU, seconds.
    cpu: f64,
    /// Median server (backend) CPU, seconds.
    server_cpu: f64,
    /// Median CPU spent on anything else meanwhile, seconds.
    other_cpu: f64,
    /// Median peak RSS (largest stage), MiB.
    rss: f64,
    /// Largest peak RSS over the repeats, MiB.
    rss_max: f64,
    /// Median peak RSS per stage, MiB.
    stage_rss: Vec<f64>,
    /// Output size (median; they are all the same but for the export's timestamp).
    bytes: u64,
}

/// The median of some numbers (the lower middle one for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) / 2]
}

impl Summary {
    /// Medians of a case's runs.
    fn of(runs: &[Run]) -> Summary {
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
        }
    }
}

/// Everything a case needs to reach the database.
struct Target<'a> {
    /// The cluster.
    pg: &'a LocalPg,
    /// Folder for outputs and stderr captures.
    work: &'a Path,
}

impl Target<'_> {
    /// CPU of the postmaster and of its reaped children (the backends), from `/proc`.
    fn server_cpu(&self) -> Duration {
        let pid = fs::read_to_string(self.pg.data_dir().join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next()?.trim().parse::<u32>().ok());
        let Some(pid) = pid else {
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

    /// Runs one case once and measures it; the output file is deleted afterwards.
    fn measure(&self, case: &Case) -> Result<Run, Box<dyn Error>> {
        let out = self.work.join(case.file);
        // Earlier runs' dirty pages must not be flushed on this run's time.
        // SAFETY: sync(2) has no preconditions.
        unsafe { libc::sync() };
        let mut children: Vec<(Child, PathBuf, &Stage)> = Vec::new();
        let server_before = self.server_cpu();
        let busy_before = machine_busy();
        let started = Instant::now();
        let mut previous_stdout = None;
        for (i, stage) in case.stages.iter().enumerate() {
            let stderr_path = self.work.join(format!("{}.stage{i}.stderr", case.file));
            let mut cmd = Command::new(&stage.program);
            for arg in &stage.args {
                if arg == OUT {
                    cmd.arg(&out);
                } else {
                    cmd.arg(arg);
                }
            }
            cmd.env("PGHOST", self.pg.host())
                .env("PGPORT", self.pg.port().to_string())
                .env("PGUSER", self.pg.user())
                .env("PGPASSWORD", self.pg.password())
                .env("PGDATABASE", DB)
                .env("DATABASE_URL", self.pg.url(DB))
                .env_remove("RUST_LOG")
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
            children.push((child, stderr_path, stage));
        }
        let mut reaped = Vec::with_capacity(children.len());
        for (child, stderr_path, stage) in children {
            let (status, usage) = wait_with_rusage(child)?;
            reaped.push((status, usage, stderr_path, stage));
        }
        let mut run = Run {
            wall: started.elapsed(),
            ..Run::default()
        };
        let mut failure = None;
        for (status, usage, stderr_path, stage) in reaped {
            run.rss_kib.push(usage.ru_maxrss.max(0) as u64);
            run.cpu += timeval(usage.ru_utime) + timeval(usage.ru_stime);
            if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) && failure.is_none() {
                let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
                failure = Some(format!(
                    "{} failed (wait status {status}): {}",
                    stage.program.display(),
                    stderr.trim()
                ));
            }
            fs::remove_file(&stderr_path)?;
        }
        // Let the postmaster reap the backend, so its CPU shows in the postmaster's counters.
        std::thread::sleep(SETTLE);
        let server_after = self.server_cpu();
        let busy_after = machine_busy();
        run.server_cpu = server_after.saturating_sub(server_before);
        run.other_cpu = busy_after
            .saturating_sub(busy_before)
            .saturating_sub(run.cpu + run.server_cpu);
        run.bytes = fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        let _ = fs::remove_file(&out);
        match failure {
            Some(message) => Err(format!("{}: {message}", case.name).into()),
            None => Ok(run),
        }
    }
}

/// Reaps a child with `wait4`, returning its wait status and its own resource usage.
fn wait_with_rusage(child: Child) -> io::Result<(libc::c_int, libc::rusage)> {
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

/// How long to wait after a case before reading the CPU counters.
const SETTLE: Duration = Duration::from_millis(100);

/// Clock ticks as a `Duration`.
fn from_ticks(ticks: u64) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / hz)
}

/// Busy CPU time of the whole machine (user, nice, system, irq, softirq) from `/proc/stat`.
fn machine_busy() -> Duration {
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

/// A `timeval` as a `Duration`.
fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec.max(0) as u64) + Duration::from_micros(tv.tv_usec.max(0) as u64)
}

/// The three load averages from `/proc/loadavg`.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// First line of a command's stdout, or `?`.
fn first_line(program: &Path, args: &[&str]) -> String {
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

/// `MemTotal` from `/proc/meminfo`, GiB.
fn mem_total_gib() -> f64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0)
}

/// Every case, in run order.
fn cases(pg: &LocalPg, export_bin: &Path) -> Vec<Case> {
    let bin = |name: &str| pg.bin_dir().join(name);
    let psql_copies = |select: &dyn Fn(&str) -> String| {
        let mut args: Vec<OsString> = ["-X", "-q", "-v", "ON_ERROR_STOP=1"]
            .iter()
            .map(OsString::from)
            .collect();
        for table in sample::TABLES {
            args.push("-c".into());
            args.push(select(table).into());
        }
        Stage {
            program: bin("psql"),
            args,
            stdout_to_file: true,
        }
    };
    vec![
        Case {
            name: PG_DUMP,
            file: "pg_dump.sql",
            stages: vec![Stage::new(
                bin("pg_dump"),
                &["--data-only", "-f", OUT],
                false,
            )],
        },
        Case {
            name: RAW_COPY,
            file: "copy.txt",
            stages: vec![psql_copies(&|t| format!("COPY {t} TO STDOUT"))],
        },
        Case {
            name: JSON_FLOOR,
            file: "row_to_json.txt",
            stages: vec![psql_copies(&|t| {
                format!("COPY (SELECT row_to_json(t) FROM {t} t) TO STDOUT")
            })],
        },
        Case {
            name: EXPORT,
            file: "export.json",
            stages: vec![Stage::new(
                export_bin,
                &["--quiet", "export", "-o", OUT],
                false,
            )],
        },
        Case {
            name: EXPORT_COMPACT,
            file: "export-compact.json",
            stages: vec![Stage::new(
                export_bin,
                &["--quiet", "export", "--compact", "-o", OUT],
                false,
            )],
        },
        Case {
            name: EXPORT_GZIP,
            file: "export.json.gz",
            stages: vec![Stage::new(
                export_bin,
                &["--quiet", "export", "-o", OUT],
                false,
            )],
        },
        Case {
            name: PG_DUMP_GZIP,
            file: "pg_dump.sql.gz",
            stages: vec![
                Stage::new(bin("pg_dump"), &["--data-only"], false),
                Stage::new("gzip", &["-6"], true),
            ],
        },
    ]
}

/// Creates the database, loads the sample, vacuums; returns the total row count.
fn prepare(pg: &LocalPg, rows: u64) -> Result<u64, Box<dyn Error>> {
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

/// Where results are kept between runs.
fn results_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench-export")
}

/// `name=value` lines of the peak RSS per export case, for the growth comparison.
fn rss_record(summaries: &BTreeMap<&str, Summary>) -> String {
    let mut text = String::new();
    for name in [EXPORT, EXPORT_COMPACT, EXPORT_GZIP] {
        if let Some(s) = summaries.get(name) {
            let _ = writeln!(text, "{name}={:.2}", s.rss);
        }
    }
    text
}

/// Parses [`rss_record`]'s output.
fn parse_rss_record(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|l| {
            let (name, value) = l.split_once('=')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// A case name as a Markdown table cell (`|` escaped).
fn cell(name: &str) -> String {
    name.replace('|', "\\|")
}

/// `yes` / `NO` for a target check.
fn verdict(holds: bool) -> &'static str {
    if holds {
        "yes"
    } else {
        "**NO**"
    }
}

/// Prints the results and target checks as Markdown, ready for `docs/BENCHMARKS.md`.
fn report(
    config: &Config,
    total_rows: u64,
    cases: &[Case],
    summaries: &BTreeMap<&str, Summary>,
) -> Result<(), Box<dyn Error>> {
    let dump = &summaries[PG_DUMP];
    let dump_gz = &summaries[PG_DUMP_GZIP];
    println!(
        "\n### {total_rows} rows, median of {} runs\n",
        config.repeats
    );
    println!(
        "| case | wall s | (min–max) | rows/s | MB/s | output MB | peak RSS MiB | client CPU s \
         | server CPU s | others' CPU s | ratio | vs |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for case in cases {
        let s = &summaries[case.name];
        let (reference, against) = match case.name {
            EXPORT_GZIP => (dump_gz, PG_DUMP_GZIP),
            _ => (dump, PG_DUMP),
        };
        let rss = if s.stage_rss.len() > 1 {
            s.stage_rss
                .iter()
                .map(|r| format!("{r:.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
        } else {
            format!("{:.1}", s.rss)
        };
        println!(
            "| {} | {:.2} | {:.2}–{:.2} | {:.0} | {:.1} | {:.1} | {rss} | {:.2} | {:.2} | {:.2} \
             | {:.2}× | {} |",
            cell(case.name),
            s.wall,
            s.wall_range.0,
            s.wall_range.1,
            total_rows as f64 / s.wall,
            s.bytes as f64 / 1e6 / s.wall,
            s.bytes as f64 / 1e6,
            s.cpu,
            s.server_cpu,
            s.other_cpu,
            s.wall / reference.wall,
            cell(against),
        );
    }

    println!("\n| target | limit | measured | holds |");
    println!("|---|---:|---:|---|");
    let ratio = |name: &str, reference: &Summary| summaries[name].wall / reference.wall;
    for (name, reference, against, limit) in [
        (EXPORT, dump, PG_DUMP, DEFAULT_LIMIT),
        (EXPORT_COMPACT, dump, PG_DUMP, COMPACT_LIMIT),
        (EXPORT_GZIP, dump_gz, PG_DUMP_GZIP, GZIP_LIMIT),
    ] {
        let r = ratio(name, reference);
        println!(
            "| {} wall / {} | ≤ {limit:.1}× | {r:.2}× | {} |",
            cell(name),
            cell(against),
            verdict(r <= limit)
        );
    }
    for name in [EXPORT, EXPORT_COMPACT, EXPORT_GZIP] {
        let s = &summaries[name];
        println!(
            "| {name} peak RSS (max of runs) | ≤ {RSS_LIMIT_MIB:.0} MiB | {:.1} MiB ({:.1}) | {} |",
            s.rss,
            s.rss_max,
            verdict(s.rss_max <= RSS_LIMIT_MIB)
        );
    }

    let dir = results_dir();
    fs::create_dir_all(&dir)?;
    let record = rss_record(summaries);
    fs::write(dir.join(format!("rows-{}.txt", config.rows)), &record)?;
    if config.rows != DEFAULT_ROWS {
        let baseline_path = dir.join(format!("rows-{DEFAULT_ROWS}.txt"));
        match fs::read_to_string(&baseline_path) {
            Ok(text) => {
                let baseline = parse_rss_record(&text);
                for (name, now) in parse_rss_record(&record) {
                    if let Some(&base) = baseline.get(&name) {
                        let growth = now / base - 1.0;
                        println!(
                            "| {name} peak RSS (median) vs the {DEFAULT_ROWS}-row run ({base:.1} MiB) | ≤ +{:.0} % | {:+.1} % | {} |",
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
    }
    Ok(())
}

/// `BENCH_HOLD`: prints how to reach the loaded cluster (for `perf`, `psql`, a manual export)
/// and waits for a line on stdin: empty to go on measuring, `q` (or end of input) to stop.
fn hold(pg: &LocalPg) -> Result<bool, Box<dyn Error>> {
    println!(
        "BENCH_HOLD: the cluster is loaded.\n  DATABASE_URL={}\n  PGHOST={} PGPORT={} PGUSER={} \
         PGPASSWORD={} PGDATABASE={DB}\n  bin: {}\nPress Enter to measure, or q to stop.",
        pg.url(DB),
        pg.host(),
        pg.port(),
        pg.user(),
        pg.password(),
        pg.bin_dir().display()
    );
    let mut line = String::new();
    let read = io::stdin().read_line(&mut line)?;
    Ok(read > 0 && line.trim() != "q")
}

/// The whole benchmark; the cluster and the work folder are dropped (stopped, deleted) on return.
fn run() -> Result<(), Box<dyn Error>> {
    let config = Config::from_env()?;
    if !config.export_bin.is_file() {
        return Err(format!(
            "{} is missing: run `cargo build --release`",
            config.export_bin.display()
        )
        .into());
    }
    println!(
        "export benchmark: {} rows requested, {} runs per case",
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
        "export binary: {} (sha256 {}); sources: {}",
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

    let pg = LocalPg::start()?;
    println!(
        "{} / {}",
        first_line(&pg.bin_dir().join("pg_dump"), &["--version"]),
        first_line(Path::new("gzip"), &["--version"])
    );
    let work = tempfile::Builder::new()
        .prefix("cityforge-bench-")
        .tempdir()?;
    let total_rows = prepare(&pg, config.rows)?;
    let target = Target {
        pg: &pg,
        work: work.path(),
    };
    let cases = cases(&pg, &config.export_bin);
    if std::env::var_os("BENCH_HOLD").is_some_and(|v| !v.is_empty()) && !hold(&pg)? {
        drop(cases);
        work.close()?;
        return Ok(());
    }

    // Warm the page cache the same way for everyone (VACUUM went through shared buffers' ring).
    target.measure(&cases[1])?;

    let mut runs: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
    for round in 1..=config.repeats {
        println!(
            "\nround {round}/{}: load average {}",
            config.repeats,
            load_average()
        );
        for case in &cases {
            let run = target.measure(case)?;
            println!(
                "  {:<26} {:>7.2} s  cpu {:>6.2} s  server {:>6.2} s  others {:>5.2} s  rss {:>6.1} MiB  {:>9.1} MB",
                case.name,
                run.wall.as_secs_f64(),
                run.cpu.as_secs_f64(),
                run.server_cpu.as_secs_f64(),
                run.other_cpu.as_secs_f64(),
                run.rss_mib(),
                run.bytes as f64 / 1e6
            );
            runs.entry(case.name).or_default().push(run);
        }
    }
    println!("\nload average after the runs: {}", load_average());

    let summaries: BTreeMap<&str, Summary> = runs
        .iter()
        .map(|(name, runs)| (*name, Summary::of(runs)))
        .collect();
    report(&config, total_rows, &cases, &summaries)?;
    drop(cases);
    work.close()?;
    drop(pg);
    Ok(())
}

/// Runs the benchmark; exits 1 with the error on stderr when anything fails.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("export benchmark failed: {err}");
            ExitCode::FAILURE
        }
    }
}
