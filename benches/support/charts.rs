//! SVG charts of a bench's runs (plotters): resident memory over a run, for "memory stays flat",
//! and throughput by `--jobs` against pg_dump's, for "scales with cores". They go to
//! `docs/charts/` (or `BENCH_CHARTS`), named by bench and size, for docs/BENCHMARKS.md and the
//! README to show.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::memory::Sample;
use super::Run;

/// Line colours, in the order the series come.
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The folder charts are written to: `BENCH_CHARTS`, else the crate's `docs/charts`.
pub fn dir() -> PathBuf {
    std::env::var_os("BENCH_CHARTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/charts"))
}

/// A size for file names and titles: 1000000 → `1M`, 200000 → `200k`.
pub fn size_label(rows: u64) -> String {
    match rows {
        r if r >= 1_000_000 && r % 1_000_000 == 0 => format!("{}M", r / 1_000_000),
        r if r >= 1_000 && r % 1_000 == 0 => format!("{}k", r / 1_000),
        r => r.to_string(),
    }
}

/// The memory series of the run with the median wall time, from its largest stage.
pub fn median_series(runs: &[Run]) -> Vec<Sample> {
    let mut by_wall: Vec<&Run> = runs.iter().collect();
    by_wall.sort_by_key(|run| run.wall);
    let Some(run) = by_wall.get((by_wall.len().max(1) - 1) / 2) else {
        return Vec::new();
    };
    run.rss_series
        .iter()
        .max_by_key(|series| series.iter().map(|&(_, kib)| kib).max().unwrap_or(0))
        .cloned()
        .unwrap_or_default()
}

/// Draws resident memory (MiB) over time (s), one line per case, into `path`.
pub fn rss_over_time(
    path: &Path,
    title: &str,
    lines: &[(String, Vec<Sample>)],
) -> Result<(), Box<dyn Error>> {
    let max_t = lines
        .iter()
        .flat_map(|(_, s)| s.iter().map(|&(t, _)| t))
        .fold(1.0_f64, f64::max);
    let max_mib = lines
        .iter()
        .flat_map(|(_, s)| s.iter().map(|&(_, kib)| kib as f64 / 1024.0))
        .fold(8.0_f64, f64::max);
    let root = SVGBackend::new(path, (860, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max_t * 1.02, 0.0..max_mib * 1.25)?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc("resident memory, MiB")
        .draw()?;
    for (i, (name, series)) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                series.iter().map(|&(t, kib)| (t, kib as f64 / 1024.0)),
                colour.stroke_width(2),
            ))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Draws throughput (thousand rows per second) by number of connections, one line per case,
/// with each reference (e.g. pg_dump) as a dashed horizontal line, into `path`.
pub fn throughput_by_jobs(
    path: &Path,
    title: &str,
    lines: &[(String, Vec<(u32, f64)>)],
    references: &[(String, f64)],
) -> Result<(), Box<dyn Error>> {
    let max_jobs = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(jobs, _)| jobs))
        .max()
        .unwrap_or(4);
    let max_rate = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, rate)| rate))
        .chain(references.iter().map(|(_, rate)| *rate))
        .fold(1.0_f64, f64::max);
    let root = SVGBackend::new(path, (860, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.5..f64::from(max_jobs) + 0.5, 0.0..max_rate * 1.25)?;
    chart
        .configure_mesh()
        .x_desc("connections (--jobs)")
        .y_desc("thousand rows per second")
        .x_labels(max_jobs as usize)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    let mut colours = COLOURS.iter().copied().cycle();
    for (name, points) in lines {
        let colour = colours.next().unwrap_or(BLACK);
        let points: Vec<(f64, f64)> = points
            .iter()
            .map(|&(jobs, rate)| (f64::from(jobs), rate))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart.draw_series(
            points
                .into_iter()
                .map(|point| Circle::new(point, 4, colour.filled())),
        )?;
    }
    for (name, rate) in references {
        let colour = colours.next().unwrap_or(BLACK);
        let dashes = (0..(max_jobs * 8))
            .map(|i| 0.5 + f64::from(i) / 8.0)
            .collect::<Vec<_>>();
        chart
            .draw_series(
                dashes.chunks(2).filter(|c| c.len() == 2).map(|c| {
                    PathElement::new([(c[0], *rate), (c[1], *rate)], colour.stroke_width(2))
                }),
            )?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 8, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Draws the memory of `names`' median runs over time into `<dir>/<bench>-rss-<size>.svg`,
/// printing where; cases without runs are left out.
pub fn rss_chart(
    bench: &str,
    rows: u64,
    what: &str,
    runs: &BTreeMap<&str, Vec<Run>>,
    names: &[&str],
) -> Result<PathBuf, Box<dyn Error>> {
    let lines: Vec<(String, Vec<Sample>)> = names
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), median_series(runs.get(name)?))))
        .filter(|(_, series)| !series.is_empty())
        .collect();
    let size = size_label(rows);
    let path = dir().join(format!("{bench}-rss-{size}.svg"));
    std::fs::create_dir_all(dir())?;
    rss_over_time(
        &path,
        &format!("Resident memory during {what}, {size} rows"),
        &lines,
    )?;
    println!("chart: {}", path.display());
    Ok(path)
}
