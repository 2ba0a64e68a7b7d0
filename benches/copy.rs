//! PostgreSQL → PostgreSQL benchmark: `run` of a pipeline file with a postgres source and a
//! postgres sink, into an empty CityForge schema, plain and with every transform of
//! `pipelines/prod-to-staging.toml`, side by side with `pg_dump --data-only | psql` (the peer: the
//! same rows from one database into another with PostgreSQL's own tools), on the same sample
//! database, in the same run. With `BENCH_BASELINE_BIN`, both `run` cases also run with that other
//! build, in the same rounds (before / after a change, alternating, so a burst of load from
//! elsewhere hits both alike), and the report gives the ratio of each round.
//!
//! ```text
//! cargo bench --bench copy                        # about 1M rows (default)
//! BENCH_ROWS=200000 cargo bench --bench copy      # or: cargo bench --bench copy -- 200000
//! BENCH_REPEATS=5 cargo bench --bench copy        # repetitions per case (default 3)
//! BENCH_BASELINE_BIN=/path/to/old/cityforge-data cargo bench --bench copy   # before / after
//! BENCH_EXPORT_BIN=/path/to/cityforge-data cargo bench --bench copy         # another build
//! BENCH_HOLD=1 cargo bench --bench copy           # pause after loading (for perf, psql, …)
//! BENCH_SUBSET=0 cargo bench --bench copy         # without the two subset cases
//! ```
//!
//! The subset cases run `pipelines/prod-to-staging-subset.toml` as it is (5 % of the users) and
//! with `sample = 50`; their rows are whatever the slice holds, reported per model below the
//! table (the ready pipeline's test checks them against an independent computation).
//!
//! It starts a throwaway PostgreSQL cluster ([`LocalPg`]), creates database `cityforge`, loads
//! the deterministic sample data ([`sample::load`]), runs `VACUUM ANALYZE` and `CHECKPOINT`, and
//! creates a template database holding only the schema ([`sample::CITYFORGE_SCHEMA_SQL`]).
//! Before every run of a case it creates the case's target database afresh from that template
//! and checkpoints; after the run it counts the rows that arrived (all of them; the sanitized
//! case those of the tables its pipeline fills) and drops the database. Cases run
//! round-robin, `BENCH_REPEATS` times, measured as in `benches/export.rs` (see `support`): wall
//! time, the program's own peak RSS and CPU (under the trampoline), the backends' CPU (source
//! and target: one cluster) and the machine's remaining busy time.

mod support;

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cityforge_data::demo::local_pg::LocalPg;
use cityforge_data::demo::sample;

use support::{
    cell, env_flag, first_line, hold, median, print_header, rounds, verdict, Case, Config, Run,
    SetUp, Stage, Summary, Target, DB,
};

/// The template database with the schema and no rows.
const EMPTY: &str = "cityforge_empty";
/// The pipeline file whose source, transforms, policy and sink the sanitized case runs.
const PROD_TO_STAGING: &str = "pipelines/prod-to-staging.toml";
/// `SANITIZE_SECRET` for the sanitized runs (any value works).
const SANITIZE_SECRET: &str = "bench-secret-not-for-production";
/// The tables `pipelines/prod-to-staging.toml` does not fill: `indexing_jobs` is left out
/// (`exclude_models`), `token_blacklist` copied empty (see the file's comments).
const UNFILLED_TABLES: [&str; 2] = ["indexing_jobs", "token_blacklist"];

/// `pg_dump --data-only` of the sample piped into `psql` on the empty target: the peer.
const PG_DUMP_PSQL: &str = "pg_dump --data-only | psql";
/// `run` of a pipeline file: postgres source → postgres sink (skip mode), no transforms.
const RUN_PLAIN: &str = "run: postgres → postgres";
/// The same with `jobs = 2` in the source.
const RUN_PLAIN_JOBS_2: &str = "run: postgres → postgres, jobs 2";
/// The same with `jobs = 4` in the source.
const RUN_PLAIN_JOBS_4: &str = "run: postgres → postgres, jobs 4";
/// `run` of `pipelines/prod-to-staging.toml` as it is (clean mode, every transform, the policy).
const RUN_SANITIZED: &str = "run: prod-to-staging.toml";
/// The plain case with the baseline build.
const RUN_PLAIN_BASE: &str = "run: postgres → postgres (baseline)";
/// `run` of `pipelines/prod-to-staging-subset.toml` as it is: 5 % of the users.
const RUN_SUBSET_5: &str = "run: prod-to-staging-subset.toml (5 %)";
/// The same with `sample = 50`.
const RUN_SUBSET_50: &str = "run: prod-to-staging-subset.toml (50 %)";
/// The ready subset pipeline.
const PROD_TO_STAGING_SUBSET: &str = "pipelines/prod-to-staging-subset.toml";
/// The sanitized case with the baseline build.
const RUN_SANITIZED_BASE: &str = "run: prod-to-staging.toml (baseline)";

/// `run` with every prod-to-staging transform / `pg_dump --data-only | psql`, wall time, at most
/// (issue 12).
const SANITIZED_LIMIT: f64 = 0.5;

/// The build to compare with, from `BENCH_BASELINE_BIN`.
fn baseline_bin() -> Option<PathBuf> {
    std::env::var_os("BENCH_BASELINE_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The plain pipeline file: prod-to-staging's `[source]` (its URL from `SOURCE_URL`), reading
/// with `jobs` connections, and one postgres sink (its URL from `DATABASE_URL`, which every case
/// gets for its target), written into `work`; returns its path.
fn plain_pipeline(work: &Path, jobs: usize) -> Result<String, Box<dyn Error>> {
    let path = work.join(format!("plain-{jobs}.toml"));
    std::fs::write(
        &path,
        format!(
            "[source]\ntype = \"postgres\"\nurl = \"${{SOURCE_URL}}\"\nnaming = \"cityforge\"\n\
             jobs = {jobs}\n\n[[sinks]]\ntype = \"postgres\"\nurl = \"${{DATABASE_URL}}\"\n"
        ),
    )?;
    Ok(path.to_string_lossy().into_owned())
}

/// Every case, in run order; the baseline's right after the same case of the build under test.
fn cases(
    pg: &LocalPg,
    export_bin: &Path,
    baseline: Option<&Path>,
    work: &Path,
) -> Result<Vec<Case>, Box<dyn Error>> {
    let plain = plain_pipeline(work, 1)?;
    let sanitized = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(PROD_TO_STAGING)
        .to_string_lossy()
        .into_owned();
    let source_url = pg.url(DB);
    let run_plain = |name, bin: &Path, database| Case {
        name,
        file: None,
        database,
        may_fail: false,
        stages: vec![
            Stage::new(bin, &["--quiet", "run", &plain], false).env("SOURCE_URL", &source_url)
        ],
    };
    let run_file = |name, bin: &Path, file: &str, database| Case {
        name,
        file: None,
        database,
        may_fail: false,
        stages: vec![Stage::new(bin, &["--quiet", "run", file], false)
            .env("PRODUCTION_DATABASE_URL", &source_url)
            .env("STAGING_DATABASE_URL", pg.url(database))
            .env("SANITIZE_SECRET", SANITIZE_SECRET)],
    };
    let run_sanitized = |name, bin: &Path, database| run_file(name, bin, &sanitized, database);
    let mut cases = vec![Case {
        name: PG_DUMP_PSQL,
        file: None,
        database: "target_psql",
        may_fail: false,
        stages: vec![
            Stage::new(
                pg.bin_dir().join("pg_dump"),
                &["--data-only", "-d", DB],
                false,
            ),
            Stage::new(
                pg.bin_dir().join("psql"),
                &["-X", "-q", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null"],
                false,
            ),
        ],
    }];
    cases.push(run_plain(RUN_PLAIN, export_bin, "target_run"));
    // The pipeline's source reading with 2 and 4 connections on one snapshot.
    for (name, jobs, database) in [
        (RUN_PLAIN_JOBS_2, 2, "target_run_jobs_2"),
        (RUN_PLAIN_JOBS_4, 4, "target_run_jobs_4"),
    ] {
        let file = plain_pipeline(work, jobs)?;
        cases.push(Case {
            name,
            file: None,
            database,
            may_fail: false,
            stages: vec![Stage::new(export_bin, &["--quiet", "run", &file], false)
                .env("SOURCE_URL", &source_url)],
        });
    }
    if let Some(baseline) = baseline {
        cases.push(run_plain(RUN_PLAIN_BASE, baseline, "target_run_base"));
    }
    cases.push(run_sanitized(RUN_SANITIZED, export_bin, "target_sanitized"));
    if let Some(baseline) = baseline {
        cases.push(run_sanitized(
            RUN_SANITIZED_BASE,
            baseline,
            "target_sanitized_base",
        ));
    }
    if std::env::var("BENCH_SUBSET").as_deref() != Ok("0") {
        let ready = Path::new(env!("CARGO_MANIFEST_DIR")).join(PROD_TO_STAGING_SUBSET);
        let half = work.join("prod-to-staging-subset-50.toml");
        let text = std::fs::read_to_string(&ready)?;
        let halved = text.replace("sample = 5 }", "sample = 50 }");
        if halved == text {
            return Err(format!("{PROD_TO_STAGING_SUBSET}: no `sample = 5 }}` to change").into());
        }
        std::fs::write(&half, halved)?;
        cases.push(run_file(
            RUN_SUBSET_5,
            export_bin,
            &ready.to_string_lossy(),
            "target_subset_5",
        ));
        cases.push(run_file(
            RUN_SUBSET_50,
            export_bin,
            &half.to_string_lossy(),
            "target_subset_50",
        ));
    }
    Ok(cases)
}

/// Whether the case copies a subset (whose rows are reported, not checked against a total).
fn subset(case: &Case) -> bool {
    case.name == RUN_SUBSET_5 || case.name == RUN_SUBSET_50
}

/// Whether the case runs `pipelines/prod-to-staging.toml` (which leaves tables unfilled).
fn sanitized(case: &Case) -> bool {
    case.name == RUN_SANITIZED || case.name == RUN_SANITIZED_BASE
}

/// One query summing `count(*)` over the sample tables, but those in `skip`.
fn count_rows_sql(skip: &[&str]) -> String {
    let counts: Vec<String> = sample::TABLES
        .iter()
        .filter(|t| !skip.contains(t))
        .map(|t| format!("(SELECT count(*) FROM {t})"))
        .collect();
    format!("SELECT {}", counts.join(" + "))
}

/// Creates the case's target database afresh from the empty template, then checkpoints and
/// lets the setup's backends exit.
fn fresh_target(target: &Target, case: &Case) -> Result<(), Box<dyn Error>> {
    target.psql(
        "postgres",
        &[
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", case.database),
            &format!(
                "CREATE DATABASE {} TEMPLATE {EMPTY} STRATEGY FILE_COPY",
                case.database
            ),
            "CHECKPOINT",
        ],
    )?;
    target.wait_for_backends();
    std::thread::sleep(support::SETTLE);
    Ok(())
}

/// Rows per table of the case's target, in [`sample::TABLES`] order.
fn rows_per_table(target: &Target, case: &Case) -> Result<Vec<u64>, Box<dyn Error>> {
    let counts: Vec<String> = sample::TABLES
        .iter()
        .map(|t| format!("(SELECT count(*) FROM {t})"))
        .collect();
    let line = target.psql(
        case.database,
        &[&format!("SELECT concat_ws(' ', {})", counts.join(", "))],
    )?;
    line.split_whitespace().map(|n| Ok(n.parse()?)).collect()
}

/// Checks that every row arrived (`expected`: all, or those of the tables the sanitized
/// pipeline fills; a subset's rows per table are kept in `sliced`), then drops the target.
fn check_and_drop(
    target: &Target,
    case: &Case,
    run: &Run,
    expected: (u64, u64),
    sliced: &mut BTreeMap<&'static str, Vec<u64>>,
) -> Result<(), Box<dyn Error>> {
    if subset(case) {
        sliced.insert(case.name, rows_per_table(target, case)?);
        target.psql(
            "postgres",
            &[&format!("DROP DATABASE {} WITH (FORCE)", case.database)],
        )?;
        return Ok(());
    }
    let skip: &[&str] = if sanitized(case) {
        &UNFILLED_TABLES
    } else {
        &[]
    };
    let rows: u64 = target
        .psql(case.database, &[&count_rows_sql(skip)])?
        .parse()
        .map_err(|e| format!("row count of {}: {e}", case.database))?;
    target.psql(
        "postgres",
        &[&format!("DROP DATABASE {} WITH (FORCE)", case.database)],
    )?;
    let want = if sanitized(case) {
        expected.1
    } else {
        expected.0
    };
    if run.failure.is_none() && rows != want {
        return Err(format!(
            "{}: {rows} rows in the target after the run, expected {want}",
            case.name
        )
        .into());
    }
    Ok(())
}

/// Prints the results as Markdown, ready for `docs/BENCHMARKS.md`.
fn report(
    config: &Config,
    total_rows: u64,
    cases: &[Case],
    runs: &BTreeMap<&str, Vec<Run>>,
    sliced: &BTreeMap<&'static str, Vec<u64>>,
    source_rows: &[u64],
) -> Result<(), Box<dyn Error>> {
    let summaries: BTreeMap<&str, Summary> = runs
        .iter()
        .map(|(name, runs)| (*name, Summary::of(runs)))
        .collect();
    let peer = &summaries[PG_DUMP_PSQL];
    println!(
        "\n### {total_rows} rows, median of {} runs\n",
        config.repeats
    );
    println!(
        "| case | wall s | (min–max) | rows/s | peak RSS MiB | client CPU s | server CPU s \
         | others' CPU s | ratio | vs |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for case in cases {
        let s = &summaries[case.name];
        println!(
            "| {} | {:.2} | {:.2}–{:.2} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.2}× | {} |",
            cell(case.name),
            s.wall,
            s.wall_range.0,
            s.wall_range.1,
            total_rows as f64 / s.wall,
            s.rss_cell(),
            s.cpu,
            s.server_cpu,
            s.other_cpu,
            s.wall / peer.wall,
            cell(PG_DUMP_PSQL),
        );
    }
    println!("\n| target | limit | measured | holds |");
    println!("|---|---:|---:|---|");
    let ratio = summaries[RUN_SANITIZED].wall / peer.wall;
    println!(
        "| {} wall / {} | ≤ {SANITIZED_LIMIT:.1}× | {ratio:.2}× | {} |",
        cell(RUN_SANITIZED),
        cell(PG_DUMP_PSQL),
        verdict(ratio <= SANITIZED_LIMIT)
    );
    if !sliced.is_empty() {
        let names: Vec<&str> = sliced.keys().copied().collect();
        println!("\nRows per table: the source, and what each subset copied (its last run).\n");
        println!(
            "| table | source | {} |",
            names
                .iter()
                .map(|n| cell(n))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        println!("|---|---:|{}", "---:|".repeat(names.len()));
        for (index, table) in sample::TABLES.iter().enumerate() {
            let copied: Vec<String> = names.iter().map(|n| sliced[n][index].to_string()).collect();
            println!(
                "| {table} | {} | {} |",
                source_rows[index],
                copied.join(" | ")
            );
        }
        let totals: Vec<String> = names
            .iter()
            .map(|n| sliced[n].iter().sum::<u64>().to_string())
            .collect();
        println!(
            "| **total** | {} | {} |",
            source_rows.iter().sum::<u64>(),
            totals.join(" | ")
        );
    }
    if baseline_bin().is_none() {
        return Ok(());
    }
    println!("\n| build under test / baseline | wall, each round | median | client CPU, median | server CPU, median |");
    println!("|---|---|---:|---:|---:|");
    for (new, old) in [
        (RUN_PLAIN, RUN_PLAIN_BASE),
        (RUN_SANITIZED, RUN_SANITIZED_BASE),
    ] {
        let ratios: Vec<f64> = runs[new]
            .iter()
            .zip(&runs[old])
            .map(|(n, o)| n.wall.as_secs_f64() / o.wall.as_secs_f64())
            .collect();
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "| {} | {} | {:.2}× | {:.2}× | {:.2}× |",
            cell(new),
            each.join(", "),
            median(ratios.clone()),
            summaries[new].cpu / summaries[old].cpu,
            summaries[new].server_cpu / summaries[old].server_cpu,
        );
    }
    Ok(())
}

/// The whole benchmark; the cluster and the work folder are dropped (stopped, deleted) on return.
fn run() -> Result<(), Box<dyn Error>> {
    let config = Config::from_env()?;
    print_header("PostgreSQL → PostgreSQL benchmark", &config);
    let baseline = baseline_bin();
    if let Some(baseline) = &baseline {
        let hash = first_line(Path::new("sha256sum"), &[&baseline.to_string_lossy()]);
        println!(
            "baseline: {} (sha256 {})",
            baseline.display(),
            hash.get(..16).unwrap_or("?")
        );
    }
    let SetUp {
        pg,
        work,
        total_rows,
    } = support::set_up(&config, ["pg_dump", "psql"])?;
    let target = Target {
        pg: &pg,
        work: work.path(),
    };
    target.psql("postgres", &[&format!("CREATE DATABASE {EMPTY}")])?;
    target.psql(EMPTY, &[sample::CITYFORGE_SCHEMA_SQL])?;
    let filled: u64 = target
        .psql(DB, &[&count_rows_sql(&UNFILLED_TABLES)])?
        .parse()?;
    let expected = (total_rows, filled);
    let cases = cases(&pg, &config.export_bin, baseline.as_deref(), work.path())?;
    if env_flag("BENCH_HOLD") && !hold(&pg, work.path())? {
        drop(cases);
        work.close()?;
        return Ok(());
    }
    let mut sliced = BTreeMap::new();
    let runs = rounds(
        &target,
        &cases,
        config.repeats,
        &mut |case| fresh_target(&target, case),
        &mut |case, run| check_and_drop(&target, case, run, expected, &mut sliced),
    )?;
    let source = Case {
        name: "source",
        file: None,
        database: DB,
        may_fail: false,
        stages: Vec::new(),
    };
    let source_rows = rows_per_table(&target, &source)?;
    report(&config, total_rows, &cases, &runs, &sliced, &source_rows)?;
    support::charts::rss_chart(
        "copy",
        config.rows,
        "a PostgreSQL → PostgreSQL copy",
        &runs,
        &[RUN_PLAIN, RUN_SANITIZED, RUN_SUBSET_5, RUN_SUBSET_50]
            .into_iter()
            .filter(|name| runs.contains_key(name))
            .collect::<Vec<_>>(),
    )?;
    drop(cases);
    work.close()?;
    drop(pg);
    Ok(())
}

/// Runs the benchmark; exits 1 with the error on stderr when anything fails.
fn main() -> ExitCode {
    support::main("PostgreSQL → PostgreSQL benchmark", run)
}
