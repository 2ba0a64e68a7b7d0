//! Import benchmark: our import of our export side by side with `psql -f` of a
//! `pg_dump --data-only` plain dump and `pg_restore --data-only` of a custom dump, each into a
//! fresh empty CityForge schema (ours also with `--per-row-fk-checks`), plus our `--mode merge`
//! into a database that already holds the same data, and our `--mode clean` into such a database
//! twice in a row (the second run into what the first left); on the same sample database, in the
//! same run.
//!
//! ```text
//! cargo bench --bench import                      # about 1M rows (default)
//! BENCH_ROWS=5000000 cargo bench --bench import   # or: cargo bench --bench import -- 5000000
//! BENCH_REPEATS=5 cargo bench --bench import      # repetitions per case (default 3)
//! BENCH_EXPORT_BIN=/path/to/cityforge-data cargo bench --bench import   # another build
//! BENCH_PHASES=0 cargo bench --bench import       # skip the per-statement timing run
//! BENCH_HOLD=1 cargo bench --bench import         # pause after the dumps (for perf, psql, …)
//! ```
//!
//! It starts a throwaway PostgreSQL cluster ([`LocalPg`]), creates database `cityforge`, loads
//! the deterministic sample data ([`sample::load`]), runs `VACUUM ANALYZE` and `CHECKPOINT`, and
//! makes the inputs (unmeasured): `pg_dump --data-only` (plain), `pg_dump --data-only -Fc`
//! (custom) and our `export` (default layout). It creates a template database holding only the
//! schema ([`sample::CITYFORGE_SCHEMA_SQL`]). Before every run of a case it creates the case's
//! target database afresh (`CREATE DATABASE … TEMPLATE`: the empty schema, or a copy of
//! `cityforge` for merge and the first clean) and runs `CHECKPOINT`; after the run it counts the
//! rows that arrived and drops the database (the first clean's stays for the second, which follows
//! it directly). Cases run round-robin, `BENCH_REPEATS` times, and the tables show medians,
//! measured as in `benches/export.rs` (see `support`): wall time, the program's own peak RSS and
//! CPU (under the trampoline), the backends' CPU and the machine's remaining busy time.
//!
//! Then (unless `BENCH_PHASES=0`) it runs `psql -f`, the import and the merge once more with
//! `log_min_duration_statement = 0` on the target database and sums the server log's statement
//! durations by phase and table: where the time goes. Results are written to
//! `target/bench-import/rows-<N>.txt`; a run at another size compares our peak RSS with the
//! 1M-row file when present.

mod support;

use std::collections::BTreeMap;
use std::error::Error;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::ExitCode;

use cityforge_data::demo::local_pg::LocalPg;
use cityforge_data::demo::sample;

use support::{
    cell, env_flag, hold, print_header, rounds, rss_growth, verdict, Case, Config, Run, SetUp,
    Stage, Summary, Target, DB, RSS_LIMIT_MIB,
};

/// Import into empty / `psql -f` of the plain dump, wall time, at most (issue 12: COPY straight
/// into the emptied tables; issue 2 asked 1.5×).
const IMPORT_LIMIT: f64 = 0.4;
/// The same with `--per-row-fk-checks` (issue 2's limit).
const PER_ROW_LIMIT: f64 = 1.5;
/// Clean into a full database / import into empty, wall time, at most (each of the two runs).
const CLEAN_LIMIT: f64 = 1.5;
/// The template database with the schema and no rows.
const EMPTY: &str = "cityforge_empty";

/// `psql -f` of the plain `pg_dump --data-only`: the reference.
const PSQL: &str = "psql -f (plain dump)";
/// `pg_restore --data-only`, one job.
const RESTORE: &str = "pg_restore --data-only";
/// `pg_restore --data-only -j 2`: loads children before parents and fails.
const RESTORE_J2: &str = "pg_restore --data-only -j 2";
/// `pg_restore --data-only -j 2 --disable-triggers`: no foreign-key checks.
const RESTORE_J2_NO_TRIGGERS: &str = "pg_restore --data-only -j 2 --disable-triggers";
/// Our import of our export into the empty schema.
const IMPORT: &str = "import (skip, into empty)";
/// The same import with PostgreSQL's row-by-row foreign-key checks instead of set-based ones.
const IMPORT_ROWS: &str = "import --per-row-fk-checks (skip, into empty)";
/// Our import with `--mode merge` into a copy of the full database.
const MERGE: &str = "import --mode merge (into full copy)";
/// Our import with `--mode clean` into a copy of the full database.
const CLEAN: &str = "import --mode clean (into full copy)";
/// The same clean once more, into the database the first one left (no copy in between).
const CLEAN_AGAIN: &str = "import --mode clean, again (same db)";

/// The input files in the work folder.
const PLAIN_DUMP: &str = "dump.sql";
/// The custom-format dump.
const CUSTOM_DUMP: &str = "dump.custom";
/// Our export.
const EXPORT_FILE: &str = "export.json";

/// The database a case starts from: the empty schema, or a copy of the full database.
fn template(case: &Case) -> &'static str {
    if case.name == MERGE || case.name == CLEAN {
        DB
    } else {
        EMPTY
    }
}

/// Every case, in run order.
fn cases(pg: &LocalPg, export_bin: &Path, work: &Path) -> Vec<Case> {
    let bin = |name: &str| pg.bin_dir().join(name);
    let path = |file: &str| work.join(file).to_string_lossy().into_owned();
    let restore = |name, database, extra: &[&str]| {
        let mut args = vec!["--data-only", "-d", database];
        args.extend_from_slice(extra);
        let dump = path(CUSTOM_DUMP);
        args.push(&dump);
        Case {
            name,
            file: None,
            database,
            may_fail: true,
            stages: vec![Stage::new(bin("pg_restore"), &args, false)],
        }
    };
    let import = |name, database, extra: &[&str]| {
        let input = path(EXPORT_FILE);
        let mut args = vec!["--quiet", "import", "-i", &input];
        args.extend_from_slice(extra);
        Case {
            name,
            file: None,
            database,
            may_fail: false,
            stages: vec![Stage::new(export_bin, &args, false)],
        }
    };
    vec![
        Case {
            name: PSQL,
            file: None,
            database: "target_psql",
            may_fail: false,
            stages: vec![Stage::new(
                bin("psql"),
                &["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", &path(PLAIN_DUMP)],
                false,
            )],
        },
        restore(RESTORE, "target_restore", &[]),
        restore(RESTORE_J2, "target_restore_j2", &["-j", "2"]),
        restore(
            RESTORE_J2_NO_TRIGGERS,
            "target_restore_j2_dt",
            &["-j", "2", "--disable-triggers"],
        ),
        import(IMPORT, "target_import", &[]),
        import(IMPORT_ROWS, "target_import_rows", &["--per-row-fk-checks"]),
        import(MERGE, "target_merge", &["--mode", "merge"]),
        // The second clean must run right after the first: it imports into what the first left.
        import(CLEAN, "target_clean", &["--mode", "clean", "--yes"]),
        import(CLEAN_AGAIN, "target_clean", &["--mode", "clean", "--yes"]),
    ]
}

/// One query summing `count(*)` over every sample table.
fn count_rows_sql() -> String {
    let counts: Vec<String> = sample::TABLES
        .iter()
        .map(|t| format!("(SELECT count(*) FROM {t})"))
        .collect();
    format!("SELECT {}", counts.join(" + "))
}

/// Makes the three inputs and the empty template; prints their sizes and times.
fn make_inputs(target: &Target, export_bin: &Path) -> Result<(), Box<dyn Error>> {
    let bin = |name: &str| target.pg.bin_dir().join(name);
    let file = |name: &str| target.work.join(name);
    let mut plain = target.command(bin("pg_dump"), DB);
    plain.arg("--data-only").arg("-f").arg(file(PLAIN_DUMP));
    let mut custom = target.command(bin("pg_dump"), DB);
    custom
        .args(["--data-only", "-Fc", "-f"])
        .arg(file(CUSTOM_DUMP));
    let mut export = target.command(export_bin, DB);
    export
        .args(["--quiet", "export", "-o"])
        .arg(file(EXPORT_FILE));
    for (what, cmd, name) in [
        ("pg_dump --data-only", plain, PLAIN_DUMP),
        ("pg_dump --data-only -Fc", custom, CUSTOM_DUMP),
        ("cityforge-data export", export, EXPORT_FILE),
    ] {
        let took = target.run_unmeasured(cmd)?;
        println!(
            "input {name:<12} {:>8.1} MB  ({what}, {:.1} s)",
            fs::metadata(file(name))?.len() as f64 / 1e6,
            took.as_secs_f64()
        );
    }
    target.psql("postgres", &[&format!("CREATE DATABASE {EMPTY}")])?;
    target.psql(EMPTY, &[sample::CITYFORGE_SCHEMA_SQL])?;
    Ok(())
}

/// Creates the case's target database afresh from its template, then checkpoints. The second
/// clean keeps the database the first one left.
fn fresh_target(target: &Target, case: &Case) -> Result<(), Box<dyn Error>> {
    if case.name == CLEAN_AGAIN {
        target.psql("postgres", &["CHECKPOINT"])?;
        settle(target);
        return Ok(());
    }
    target.psql(
        "postgres",
        &[
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", case.database),
            &format!(
                "CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY",
                case.database,
                template(case)
            ),
            "CHECKPOINT",
        ],
    )?;
    settle(target);
    Ok(())
}

/// Lets the setup's backends exit (and be reaped) before a measurement reads the server CPU.
fn settle(target: &Target) {
    target.wait_for_backends();
    std::thread::sleep(support::SETTLE);
}

/// Counts the rows in the case's target (a failed restore notes how many arrived), then drops it
/// (except after the first clean: the second one imports into it).
fn check_and_drop(
    target: &Target,
    case: &Case,
    run: &mut Run,
    total_rows: u64,
) -> Result<(), Box<dyn Error>> {
    let rows: u64 = target
        .psql(case.database, &[&count_rows_sql()])?
        .parse()
        .map_err(|e| format!("row count of {}: {e}", case.database))?;
    if case.name != CLEAN {
        target.psql(
            "postgres",
            &[&format!("DROP DATABASE {} WITH (FORCE)", case.database)],
        )?;
    }
    match &mut run.failure {
        Some(failure) => *failure = format!("{failure} [{rows} of {total_rows} rows loaded]"),
        None if rows != total_rows => {
            return Err(format!(
                "{}: {rows} rows in the target after the run, expected {total_rows}",
                case.name
            )
            .into())
        }
        None => {}
    }
    Ok(())
}

/// The phases in the order they happen.
const PHASE_ORDER: [&str; 13] = [
    "COPY into the tables",
    "create staging tables",
    "COPY into staging tables",
    "duplicate-key check (GROUP BY)",
    "clean: lock, count, TRUNCATE",
    "clean: DELETE",
    "drop foreign keys (set-based)",
    "INSERT … SELECT into the tables",
    "UPDATE deferred FK columns (cycle)",
    "add foreign keys back: one check each",
    "sequences (ALTER SEQUENCE, setval)",
    "COMMIT",
    "other (catalog, BEGIN, SET, savepoints…)",
];

/// Seconds and statement count per (phase, table), from the server log's `duration:` lines.
type Phases = BTreeMap<(String, String), (f64, u64)>;

/// A table name without schema and quotes (`public.users` → `users`).
fn bare_table(name: &str) -> String {
    let name = name.trim_matches('"');
    name.rsplit_once('.')
        .map_or(name, |(_, t)| t)
        .trim_matches('"')
        .to_owned()
}

/// The word after `keyword` in `text`.
fn word_after<'t>(text: &'t str, keyword: &str) -> Option<&'t str> {
    let start = text.find(keyword)? + keyword.len();
    text[start..].split([' ', '(', ';']).find(|w| !w.is_empty())
}

/// Sums the `duration: … ms  statement|parse|bind|execute …: SQL` lines by phase and table.
fn phases(log: &str) -> Phases {
    let statements: Vec<(f64, &str)> = log
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find("duration: ")? + "duration: ".len()..];
            let (ms, rest) = rest.split_once(" ms")?;
            let (_, sql) = rest.split_once(": ")?;
            Some((ms.trim().parse::<f64>().ok()?, sql.trim()))
        })
        .collect();
    // Staging tables (cf_stage_N) are named by the INSERT that moves them.
    let first_stage = |sql: &'_ str| -> Option<String> {
        sql.split_whitespace()
            .find(|w| w.starts_with("cf_stage_"))
            .map(|w| w.trim_end_matches([',', ')', ';']).to_owned())
    };
    let mut staging: BTreeMap<String, String> = BTreeMap::new();
    for (_, sql) in &statements {
        if let (Some(table), Some(stage)) = (word_after(sql, "INSERT INTO "), first_stage(sql)) {
            staging.entry(stage).or_insert_with(|| bare_table(table));
        }
    }
    let staged = |sql: &str| {
        first_stage(sql)
            .map(|w| staging.get(&w).cloned().unwrap_or(w))
            .unwrap_or_default()
    };
    let mut phases = Phases::new();
    for (ms, sql) in statements {
        let upper = sql.to_ascii_uppercase();
        let (phase, table) = if upper.starts_with("COPY CF_STAGE_") {
            ("COPY into staging tables", staged(sql))
        } else if upper.starts_with("COPY ") {
            (
                "COPY into the tables",
                bare_table(word_after(sql, "COPY ").unwrap_or("?")),
            )
        } else if upper.starts_with("CREATE TEMP TABLE") {
            ("create staging tables", String::new())
        } else if upper.contains("HAVING COUNT(*) > 1") {
            ("duplicate-key check (GROUP BY)", staged(sql))
        } else if upper.starts_with("WITH MOVED AS (INSERT INTO") {
            (
                "INSERT … SELECT into the tables",
                bare_table(word_after(sql, "INSERT INTO ").unwrap_or("?")),
            )
        } else if upper.starts_with("ALTER TABLE") && upper.contains(" DROP CONSTRAINT ") {
            (
                "drop foreign keys (set-based)",
                bare_table(word_after(sql, "ALTER TABLE ").unwrap_or("?")),
            )
        } else if upper.starts_with("ALTER TABLE") && upper.contains(" ADD CONSTRAINT ") {
            (
                "add foreign keys back: one check each",
                bare_table(word_after(sql, "ALTER TABLE ").unwrap_or("?")),
            )
        } else if upper.starts_with("UPDATE ") {
            (
                "UPDATE deferred FK columns (cycle)",
                bare_table(word_after(sql, "UPDATE ").unwrap_or("?")),
            )
        } else if upper.starts_with("LOCK TABLE")
            || upper.starts_with("TRUNCATE")
            || upper.starts_with("SELECT (SELECT COUNT(*)")
        {
            ("clean: lock, count, TRUNCATE", String::new())
        } else if upper.starts_with("DELETE FROM") {
            (
                "clean: DELETE",
                bare_table(word_after(sql, "DELETE FROM ").unwrap_or("?")),
            )
        } else if upper.contains("SETVAL")
            || upper.starts_with("ALTER SEQUENCE")
            || upper.contains("PG_SEQUENCE P")
        {
            ("sequences (ALTER SEQUENCE, setval)", String::new())
        } else if upper.starts_with("COMMIT") {
            ("COMMIT", String::new())
        } else {
            ("other (catalog, BEGIN, SET, savepoints…)", String::new())
        };
        let entry = phases.entry((phase.to_owned(), table)).or_default();
        entry.0 += ms / 1000.0;
        entry.1 += 1;
    }
    phases
}

/// Runs `psql -f`, the import and the merge once more with every statement's duration logged,
/// and prints where the time goes (per phase, and per table for the big phases).
fn phase_run(target: &Target, cases: &[Case], total_rows: u64) -> Result<(), Box<dyn Error>> {
    let mut results: Vec<(&str, f64, Phases)> = Vec::new();
    for case in cases
        .iter()
        .filter(|c| [PSQL, IMPORT, IMPORT_ROWS, MERGE, CLEAN, CLEAN_AGAIN].contains(&c.name))
    {
        fresh_target(target, case)?;
        target.psql(
            "postgres",
            &[&format!(
                "ALTER DATABASE {} SET log_min_duration_statement = 0",
                case.database
            )],
        )?;
        settle(target);
        let mut log = fs::File::open(target.pg.log_path())?;
        let offset = log.seek(SeekFrom::End(0))?;
        let mut run = target.measure(case)?;
        let mut text = String::new();
        log.seek(SeekFrom::Start(offset))?;
        log.read_to_string(&mut text)?;
        check_and_drop(target, case, &mut run, total_rows)?;
        println!(
            "phase run: {:<36} {:>7.2} s (statement logging on)",
            case.name,
            run.wall.as_secs_f64()
        );
        results.push((case.name, run.wall.as_secs_f64(), phases(&text)));
    }

    println!(
        "\n### Where the time goes: server statement time by phase (one run each, logging on)\n"
    );
    print!("| phase |");
    for (name, _, _) in &results {
        print!(" {} s |", cell(name));
    }
    println!();
    println!("|---|{}", "---:|".repeat(results.len()));
    let mut names: Vec<&str> = PHASE_ORDER.to_vec();
    for (_, _, p) in &results {
        for (phase, _) in p.keys() {
            if !names.contains(&phase.as_str()) {
                names.push(phase);
            }
        }
    }
    let by_phase = |p: &Phases, phase: &str| -> Option<f64> {
        let mut matching = p.iter().filter(|((ph, _), _)| ph == phase).peekable();
        matching.peek()?;
        Some(matching.map(|(_, (s, _))| s).sum())
    };
    for phase in names {
        if results.iter().all(|(_, _, p)| by_phase(p, phase).is_none()) {
            continue;
        }
        print!("| {phase} |");
        for (_, _, p) in &results {
            match by_phase(p, phase) {
                Some(seconds) => print!(" {seconds:.2} |"),
                None => print!(" – |"),
            }
        }
        println!();
    }
    print!("| **sum of statement times** |");
    for (_, _, p) in &results {
        print!(" **{:.2}** |", p.values().map(|(s, _)| s).sum::<f64>());
    }
    println!();
    print!("| wall time of the run |");
    for (_, wall, _) in &results {
        print!(" {wall:.2} |");
    }
    println!();
    print!("| wall − statements (client, connection, gaps) |");
    for (_, wall, p) in &results {
        print!(" {:.2} |", wall - p.values().map(|(s, _)| s).sum::<f64>());
    }
    println!();

    println!("\n### Per table (seconds; the tables with the most time)\n");
    let columns: Vec<(&str, &str)> = vec![
        (PSQL, "COPY into the tables"),
        (IMPORT, "COPY into staging tables"),
        (IMPORT, "duplicate-key check (GROUP BY)"),
        (IMPORT, "INSERT … SELECT into the tables"),
        (IMPORT, "add foreign keys back: one check each"),
        (IMPORT_ROWS, "INSERT … SELECT into the tables"),
        (MERGE, "COPY into staging tables"),
        (MERGE, "INSERT … SELECT into the tables"),
    ];
    let get = |case: &str, phase: &str, table: &str| -> f64 {
        results
            .iter()
            .find(|(n, _, _)| *n == case)
            .and_then(|(_, _, p)| p.get(&(phase.to_owned(), table.to_owned())))
            .map_or(0.0, |(s, _)| *s)
    };
    print!("| table |");
    for (case, phase) in &columns {
        print!(" {}: {} |", cell(case), phase);
    }
    println!();
    println!("|---|{}", "---:|".repeat(columns.len()));
    let mut tables: Vec<(&str, f64)> = sample::TABLES
        .iter()
        .map(|t| {
            let total: f64 = columns.iter().map(|(c, p)| get(c, p, t)).sum();
            (*t, total)
        })
        .collect();
    tables.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (table, _) in tables.iter().take(8) {
        print!("| {table} |");
        for (case, phase) in &columns {
            print!(" {:.2} |", get(case, phase, table));
        }
        println!();
    }
    Ok(())
}

/// Prints the results and target checks as Markdown, ready for `docs/BENCHMARKS.md`.
fn report(
    config: &Config,
    total_rows: u64,
    cases: &[Case],
    summaries: &BTreeMap<&str, Summary>,
) -> Result<(), Box<dyn Error>> {
    let psql = &summaries[PSQL];
    println!(
        "\n### {total_rows} rows, median of {} runs\n",
        config.repeats
    );
    println!(
        "| case | wall s | (min–max) | rows/s | peak RSS MiB | client CPU s | server CPU s \
         | others' CPU s | ratio | vs | result |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
    for case in cases {
        let s = &summaries[case.name];
        let result = match &s.failures {
            (0, _) => "ok".to_owned(),
            (n, first) => {
                // The first error line and the rows that arrived; every run's message is above.
                let first = first.as_deref().unwrap_or("?");
                let loaded = first.rfind(" [").map_or("", |at| &first[at..]);
                format!(
                    "**fails** ({n} of {} runs): {}{loaded}",
                    config.repeats,
                    first.split(" ⏎ ").next().unwrap_or(first)
                )
            }
        };
        println!(
            "| {} | {:.2} | {:.2}–{:.2} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.2}× | {} | {} |",
            cell(case.name),
            s.wall,
            s.wall_range.0,
            s.wall_range.1,
            total_rows as f64 / s.wall,
            s.rss_cell(),
            s.cpu,
            s.server_cpu,
            s.other_cpu,
            s.wall / psql.wall,
            cell(PSQL),
            cell(&result),
        );
    }

    println!("\n| target | limit | measured | holds |");
    println!("|---|---:|---:|---|");
    let ratio = summaries[IMPORT].wall / psql.wall;
    println!(
        "| {} wall / {} | ≤ {IMPORT_LIMIT:.1}× | {ratio:.2}× | {} |",
        cell(IMPORT),
        cell(PSQL),
        verdict(ratio <= IMPORT_LIMIT)
    );
    let rows = summaries[IMPORT_ROWS].wall / psql.wall;
    println!(
        "| {} wall / {} | ≤ {PER_ROW_LIMIT:.1}× | {rows:.2}× | {} |",
        cell(IMPORT_ROWS),
        cell(PSQL),
        verdict(rows <= PER_ROW_LIMIT)
    );
    for name in [CLEAN, CLEAN_AGAIN] {
        let ratio = summaries[name].wall / summaries[IMPORT].wall;
        println!(
            "| {} wall / {} | ≤ {CLEAN_LIMIT:.1}× | {ratio:.2}× | {} |",
            cell(name),
            cell(IMPORT),
            verdict(ratio <= CLEAN_LIMIT)
        );
    }
    for name in [IMPORT, IMPORT_ROWS, MERGE, CLEAN, CLEAN_AGAIN] {
        let s = &summaries[name];
        println!(
            "| {name} peak RSS, median (max of runs) | ≤ {RSS_LIMIT_MIB:.0} MiB | {:.1} MiB ({:.1}) | {} |",
            s.rss,
            s.rss_max,
            verdict(s.rss_max <= RSS_LIMIT_MIB)
        );
    }
    rss_growth(
        "bench-import",
        config.rows,
        &[IMPORT, IMPORT_ROWS, MERGE],
        summaries,
    )
}

/// The whole benchmark; the cluster and the work folder are dropped (stopped, deleted) on return.
fn run() -> Result<(), Box<dyn Error>> {
    let config = Config::from_env()?;
    print_header("import benchmark", &config);
    let SetUp {
        pg,
        work,
        total_rows,
    } = support::set_up(&config, ["pg_restore", "psql"])?;
    let target = Target {
        pg: &pg,
        work: work.path(),
    };
    make_inputs(&target, &config.export_bin)?;
    let cases = cases(&pg, &config.export_bin, work.path());
    if env_flag("BENCH_HOLD") && !hold(&pg, work.path())? {
        drop(cases);
        work.close()?;
        return Ok(());
    }

    let runs = rounds(
        &target,
        &cases,
        config.repeats,
        &mut |case| fresh_target(&target, case),
        &mut |case, run| check_and_drop(&target, case, run, total_rows),
    )?;
    let summaries: BTreeMap<&str, Summary> = runs
        .iter()
        .map(|(name, runs)| (*name, Summary::of(runs)))
        .collect();
    report(&config, total_rows, &cases, &summaries)?;
    support::charts::rss_chart("import", config.rows, "an import", &runs, &[IMPORT, MERGE])?;
    if std::env::var("BENCH_PHASES").map_or(true, |v| v != "0") {
        phase_run(&target, &cases, total_rows)?;
    }
    drop(cases);
    work.close()?;
    drop(pg);
    Ok(())
}

/// Runs the benchmark; exits 1 with the error on stderr when anything fails.
fn main() -> ExitCode {
    support::main("import benchmark", run)
}
