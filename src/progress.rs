//! Progress of a run, shown one of two ways. On a terminal: a bar on stderr with the percentage
//! and the time left (a spinner when the end cannot be known, e.g. reading standard input), with
//! log lines printed above it so the two never garble each other. Without one: a `Progress.` log
//! event every so often (text or JSON, like every other log line), so a CronJob's logs show how
//! far a long run is.
//!
//! How far is measured against the source's [`Extent`]: for PostgreSQL, the catalog's row
//! estimates, corrected as rows arrive (a table that outgrows its estimate raises the total, a
//! finished table counts its real rows), so the percentage never passes 100 and never goes
//! back; for an export file, the stored (compressed) bytes read against the file's size.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};
use tracing::info;

use crate::sources::Extent;
use crate::storage::ReadMeter;

static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Steps of the bar's length: the bar shows a fraction, whatever the unit behind it.
const BAR_STEPS: u64 = 1000;

/// How a run shows its progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// Nothing (a library caller, `-q`, or events turned off).
    Hidden,
    /// A bar (or a spinner) on stderr, for a terminal.
    Bar,
    /// A `Progress.` log event at most this often, checked as batches pass.
    Log(Duration),
}

/// Progress of a run; a no-op when hidden.
pub struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    state: Mutex<State>,
}

struct State {
    model: String,
    /// Rows moved, over all models.
    rows: u64,
    /// Bytes of those rows' cells.
    bytes: u64,
    started: Instant,
    last_event: Instant,
    tracker: Tracker,
}

/// How far the run is, from the source's [`Extent`].
#[derive(Debug)]
enum Tracker {
    Unknown,
    /// Estimated rows per table, each replaced by the real count once its table is read (and
    /// raised meanwhile when the table outgrows it), so the sum is the best total known.
    Rows {
        totals: Vec<u64>,
        /// Tables begun so far; the current one is `begun - 1`.
        begun: usize,
        /// Rows of the current table.
        current: u64,
    },
    Bytes(ReadMeter),
}

impl Tracker {
    fn new(extent: Extent) -> Tracker {
        match extent {
            Extent::Unknown => Tracker::Unknown,
            Extent::Rows(totals) => Tracker::Rows {
                totals,
                begun: 0,
                current: 0,
            },
            Extent::Bytes(meter) => Tracker::Bytes(meter),
        }
    }

    fn begin_model(&mut self) {
        if let Tracker::Rows {
            totals,
            begun,
            current,
        } = self
        {
            *begun += 1;
            *current = 0;
            // More tables than estimates (not expected): the extra ones start from nothing.
            if totals.len() < *begun {
                totals.push(0);
            }
        }
    }

    fn rows(&mut self, rows: u64) {
        if let Tracker::Rows {
            totals,
            begun,
            current,
        } = self
        {
            *current += rows;
            if let Some(total) = begun.checked_sub(1).and_then(|i| totals.get_mut(i)) {
                *total = (*total).max(*current);
            }
        }
    }

    fn end_model(&mut self) {
        if let Tracker::Rows {
            totals,
            begun,
            current,
        } = self
        {
            if let Some(total) = begun.checked_sub(1).and_then(|i| totals.get_mut(i)) {
                *total = *current;
            }
            *current = 0;
        }
    }

    /// The share done, 0 to 1, given the rows moved so far; `None` when there is no end in sight.
    fn fraction(&self, rows: u64) -> Option<f64> {
        match self {
            Tracker::Unknown => None,
            Tracker::Rows { totals, .. } => {
                let total: u64 = totals.iter().sum();
                (total > 0).then(|| (rows as f64 / total as f64).min(1.0))
            }
            Tracker::Bytes(meter) => meter
                .size()
                .filter(|&size| size > 0)
                .map(|size| (meter.read() as f64 / size as f64).min(1.0)),
        }
    }
}

impl Progress {
    /// Progress shown as `mode` says.
    pub fn new(mode: ProgressMode) -> Progress {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(spinner_style());
            bar.enable_steady_tick(Duration::from_millis(120));
            if let Ok(mut active) = ACTIVE_BAR.lock() {
                *active = Some(bar.clone());
            }
            bar
        });
        let now = Instant::now();
        Progress {
            mode,
            bar,
            state: Mutex::new(State {
                model: String::new(),
                rows: 0,
                bytes: 0,
                started: now,
                last_event: now,
                tracker: Tracker::Unknown,
            }),
        }
    }

    /// No progress output.
    pub fn hidden() -> Progress {
        Progress::new(ProgressMode::Hidden)
    }

    /// The run starts: how much the source has to read. A known end turns the spinner into a
    /// bar.
    pub fn start(&self, extent: Extent) {
        if self.mode == ProgressMode::Hidden {
            return;
        }
        if let Ok(mut state) = self.state.lock() {
            state.tracker = Tracker::new(extent);
            let known = match &state.tracker {
                Tracker::Unknown => false,
                Tracker::Rows { .. } => true,
                Tracker::Bytes(meter) => meter.size().is_some_and(|size| size > 0),
            };
            if let (Some(bar), true) = (&self.bar, known) {
                bar.set_style(bar_style());
                bar.set_length(BAR_STEPS);
            }
            self.show(&state);
        }
    }

    /// A model starts.
    pub fn begin_model(&self, model: &str) {
        if self.mode == ProgressMode::Hidden {
            return;
        }
        if let Ok(mut state) = self.state.lock() {
            state.model = model.to_owned();
            state.tracker.begin_model();
            self.show(&state);
        }
    }

    /// Rows and their bytes were moved.
    pub fn rows(&self, rows: u64, bytes: u64) {
        if self.mode == ProgressMode::Hidden {
            return;
        }
        if let Ok(mut state) = self.state.lock() {
            state.rows += rows;
            state.bytes += bytes;
            state.tracker.rows(rows);
            self.show(&state);
            if let ProgressMode::Log(every) = self.mode {
                let now = Instant::now();
                if now.duration_since(state.last_event) >= every {
                    state.last_event = now;
                    log_event(&state);
                }
            }
        }
    }

    /// The current model is complete: its real row count replaces its estimate.
    pub fn end_model(&self) {
        if self.mode == ProgressMode::Hidden {
            return;
        }
        if let Ok(mut state) = self.state.lock() {
            state.tracker.end_model();
            self.show(&state);
        }
    }

    fn show(&self, state: &State) {
        let Some(bar) = &self.bar else {
            return;
        };
        let elapsed = state.started.elapsed();
        let secs = elapsed.as_secs_f64().max(0.001);
        let fraction = state.tracker.fraction(state.rows);
        let mut message = String::new();
        // Most telling first: the line is cut to the terminal's width.
        if let Some(fraction) = fraction {
            bar.set_position((fraction * BAR_STEPS as f64) as u64);
            message.push_str(&format!("{:>3}% ", (fraction * 100.0).floor() as u64));
            if let Some(left) = time_left(elapsed, fraction) {
                message.push_str(&format!("({:#} left) ", HumanDuration(left)));
            }
        }
        if !state.model.is_empty() {
            message.push_str(&format!("{}: ", state.model));
        }
        message.push_str(&format!("{} rows, ", state.rows));
        match &state.tracker {
            Tracker::Bytes(meter) => {
                message.push_str(&HumanBytes(meter.read()).to_string());
                if let Some(size) = meter.size() {
                    message.push_str(&format!(" of {}", HumanBytes(size)));
                }
                message.push_str(&format!(
                    " read ({}/s)",
                    HumanBytes((meter.read() as f64 / secs) as u64)
                ));
            }
            _ => message.push_str(&format!(
                "{} read ({}/s)",
                HumanBytes(state.bytes),
                HumanBytes((state.bytes as f64 / secs) as u64)
            )),
        }
        bar.set_message(message);
    }

    /// The run is over. On success the bar is drawn once more as the counts end (at 100%), then
    /// removed; on failure it is just removed.
    pub fn finish(&self, succeeded: bool) {
        if let Some(bar) = &self.bar {
            if succeeded {
                if let Ok(state) = self.state.lock() {
                    self.show(&state);
                }
                // Draws the final state as it is (unlike `finish`, which would force 100%).
                bar.abandon();
            }
            bar.finish_and_clear();
            if let Ok(mut active) = ACTIVE_BAR.lock() {
                *active = None;
            }
        }
    }
}

/// The message is cut to the terminal's width: a wrapped line would not be redrawn in place.
fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{elapsed}] {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// The bar, then the percentage and the time left in the message (cut to the terminal's width).
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{bar:20}] {wide_msg}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// The time left at the average pace so far; `None` before anything is done.
fn time_left(elapsed: Duration, fraction: f64) -> Option<Duration> {
    if fraction <= 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(elapsed.as_secs_f64() * (1.0 - fraction) / fraction).ok()
}

/// The `Progress.` log event: numbers only, so a log shipper can chart them.
fn log_event(state: &State) {
    let fraction = state.tracker.fraction(state.rows);
    // One decimal, rounded down: 100 only when done.
    let percent = fraction.map(|fraction| (fraction * 1000.0).floor() / 10.0);
    let eta_seconds = fraction
        .and_then(|fraction| time_left(state.started.elapsed(), fraction))
        .map(|left| left.as_secs());
    let (input_read, input_size) = match &state.tracker {
        Tracker::Bytes(meter) => (Some(meter.read()), meter.size()),
        _ => (None, None),
    };
    info!(
        model = %state.model,
        rows = state.rows,
        bytes = state.bytes,
        percent,
        eta_seconds,
        input_read,
        input_size,
        "Progress."
    );
}

/// A tracing writer that prints above the progress line when one is shown.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = ACTIVE_BAR.lock().ok().and_then(|active| active.clone());
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps of a run against row estimates, and the fraction expected after each.
    enum Step {
        Begin,
        Rows(u64),
        End,
    }

    #[test]
    fn row_estimates_are_corrected_and_never_overshoot() {
        use Step::*;
        // Two tables estimated at 100 and 100.
        for (steps, expected, why) in [
            (vec![Begin, Rows(50)], 0.25, "within the estimates"),
            (vec![Begin, Rows(300)], 0.75, "outgrown: the total rises"),
            (
                vec![Begin, Rows(50), End],
                50.0 / 150.0,
                "ended short: real count",
            ),
            (
                vec![Begin, Rows(300), End, Begin, Rows(100)],
                1.0,
                "all read",
            ),
            (
                vec![Begin, Rows(10), End, Begin, Rows(10), End],
                1.0,
                "both short: done is 100%",
            ),
        ] {
            let mut tracker = Tracker::new(Extent::Rows(vec![100, 100]));
            let mut rows = 0;
            for step in steps {
                match step {
                    Begin => tracker.begin_model(),
                    Rows(n) => {
                        rows += n;
                        tracker.rows(n);
                    }
                    End => tracker.end_model(),
                }
            }
            let fraction = tracker.fraction(rows).unwrap();
            assert!((fraction - expected).abs() < 1e-9, "{why}: {fraction}");
        }
    }

    #[test]
    fn no_end_in_sight_without_an_extent_or_a_size() {
        assert_eq!(Tracker::new(Extent::Unknown).fraction(10), None);
        assert_eq!(Tracker::new(Extent::Rows(vec![0, 0])).fraction(0), None);
        let stdin = Tracker::new(Extent::Bytes(ReadMeter::default()));
        assert_eq!(stdin.fraction(10), None);
        // A table the estimates did not list still counts.
        let mut tracker = Tracker::new(Extent::Rows(vec![]));
        tracker.begin_model();
        tracker.rows(5);
        assert_eq!(tracker.fraction(5), Some(1.0));
    }
}
