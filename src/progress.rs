//! Progress of long work: a bar with rate and ETA on a terminal, a
//! structured log line a second otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A progress line with rate and ETA on a terminal; a log line a second
/// otherwise.
pub struct Progress {
    what: &'static str,
    unit: &'static str,
    total: u64,
    terminal: bool,
    last_log: std::cell::Cell<Instant>,
}

impl Progress {
    pub fn new(what: &'static str, unit: &'static str, total: u64) -> Self {
        Self {
            what,
            unit,
            total,
            terminal: std::io::stderr().is_terminal(),
            last_log: std::cell::Cell::new(Instant::now()),
        }
    }

    pub fn show(&self, done: u64, started: Instant) {
        let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
        let left = self.total.saturating_sub(done) as f64 / rate.max(1e-3);
        if self.terminal {
            let width = 30;
            let filled = (done * width / self.total.max(1)).min(width) as usize;
            eprint!(
                "\r{} [{}{}] {done}/{} {}  {rate:.0} {}/s  ETA {left:.0} s ",
                self.what,
                "#".repeat(filled),
                "-".repeat(width as usize - filled),
                self.total,
                self.unit,
                self.unit
            );
            let _ = std::io::stderr().flush();
        } else if self.last_log.get().elapsed() >= Duration::from_secs(1) {
            self.last_log.set(Instant::now());
            tracing::info!(
                done,
                total = self.total,
                rate = rate as u64,
                eta_secs = left as u64,
                unit = self.unit,
                "{}",
                self.what
            );
        }
    }

    pub fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}
