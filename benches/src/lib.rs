//! Shared pieces of the benchmarks: latency recording and report formatting.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies of one kind of operation, in microseconds.
pub struct Latencies {
    histogram: Histogram<u64>,
    pub errors: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            errors: 0,
        }
    }
}

impl Latencies {
    pub fn record(&mut self, elapsed: Duration) {
        let micros = elapsed.as_micros().clamp(1, 60_000_000) as u64;
        self.histogram.record(micros).expect("clamped into bounds");
    }

    pub fn merge(&mut self, other: &Latencies) {
        self.histogram.add(&other.histogram).expect("same bounds");
        self.errors += other.errors;
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The `q` quantile in milliseconds.
    pub fn millis(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }
}
