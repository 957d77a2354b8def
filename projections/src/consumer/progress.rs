//! Whether a projection keeps up: when it last applied a batch or was found
//! caught up, and what a check with messages waiting makes of that. Pure, so
//! the stall rule is tested without a broker (`stall` runs the check).

use std::time::{Duration, Instant};

/// When the projection last applied a batch or was found caught up.
#[derive(Debug, Default)]
pub(super) struct Progress {
    last: Option<Instant>,
}

/// What one check made of the projection's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Nothing left to apply.
    CaughtUp,
    /// Messages wait, and progress was made this long ago: within bounds.
    Behind(Duration),
    /// Messages wait, and nothing was applied for longer than allowed.
    Stalled(Duration),
}

impl Progress {
    pub fn made(&mut self, now: Instant) {
        self.last = Some(now);
    }

    /// Judges progress with `behind` messages not applied. The clock starts
    /// at the first check that finds the projection behind, so one that
    /// starts with a backlog has the whole timeout to apply its first batch.
    pub fn check(&mut self, behind: i64, now: Instant, timeout: Duration) -> Verdict {
        if behind == 0 {
            self.last = Some(now);
            return Verdict::CaughtUp;
        }
        let since = now.saturating_duration_since(*self.last.get_or_insert(now));
        if since > timeout {
            Verdict::Stalled(since)
        } else {
            Verdict::Behind(since)
        }
    }
}
