//! A progress line (model, rows, bytes, rate) on stderr, shown only when stderr is a terminal.
//! Log lines are printed above it, so the two never garble each other.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Progress of a run; a no-op when hidden.
pub struct Progress {
    bar: Option<ProgressBar>,
    state: Mutex<State>,
}

struct State {
    model: String,
    rows: u64,
    bytes: u64,
    started: Instant,
}

impl Progress {
    /// A progress line when `visible`, else nothing.
    pub fn new(visible: bool) -> Progress {
        let bar = visible.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            if let Ok(mut active) = ACTIVE_BAR.lock() {
                *active = Some(bar.clone());
            }
            bar
        });
        Progress {
            bar,
            state: Mutex::new(State {
                model: String::new(),
                rows: 0,
                bytes: 0,
                started: Instant::now(),
            }),
        }
    }

    /// No progress output.
    pub fn hidden() -> Progress {
        Progress::new(false)
    }

    /// A model starts.
    pub fn begin_model(&self, model: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.model = model.to_owned();
            state.rows = 0;
            self.show(&state);
        }
    }

    /// Rows and their bytes were moved.
    pub fn rows(&self, rows: u64, bytes: u64) {
        if self.bar.is_none() {
            return;
        }
        if let Ok(mut state) = self.state.lock() {
            state.rows += rows;
            state.bytes += bytes;
            self.show(&state);
        }
    }

    fn show(&self, state: &State) {
        if let Some(bar) = &self.bar {
            let secs = state.started.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "{}: {} rows, {} read ({}/s)",
                state.model,
                state.rows,
                HumanBytes(state.bytes),
                HumanBytes((state.bytes as f64 / secs) as u64)
            ));
        }
    }

    /// Removes the progress line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            if let Ok(mut active) = ACTIVE_BAR.lock() {
                *active = None;
            }
        }
    }
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
