//! Progress of long work: a bar with rate and ETA on a terminal, a
//! structured log line a second otherwise, and gauges either way (served
//! with `--metrics-addr`).

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
        use crate::metric::{PROGRESS_DONE, PROGRESS_RATE, PROGRESS_TOTAL};
        let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
        let left = self.total.saturating_sub(done) as f64 / rate.max(1e-3);
        metrics::gauge!(PROGRESS_DONE, "work" => self.what).set(done as f64);
        metrics::gauge!(PROGRESS_TOTAL, "work" => self.what).set(self.total as f64);
        metrics::gauge!(PROGRESS_RATE, "work" => self.what).set(rate);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_exposed_as_gauges_by_work() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let progress = Progress::new("rebuilding task-list", "events", 1_000);
            progress.show(250, Instant::now() - Duration::from_secs(5));
        });
        let rendered = handle.render();
        for line in [
            "taskledger_progress_done{work=\"rebuilding task-list\"} 250",
            "taskledger_progress_total{work=\"rebuilding task-list\"} 1000",
        ] {
            assert!(rendered.contains(line), "{line} in\n{rendered}");
        }
        let rate: f64 = rendered
            .lines()
            .find_map(|l| {
                l.strip_prefix("taskledger_progress_rate{work=\"rebuilding task-list\"} ")
            })
            .and_then(|v| v.parse().ok())
            .expect("a rate");
        assert!((45.0..=50.0).contains(&rate), "250 in about 5 s: {rate}");
    }
}
