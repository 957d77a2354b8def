//! Lag per partition, and when a projection that is behind counts as stalled.

use std::collections::HashMap;

use super::super::leases::Owned;
use super::super::progress::{Progress, Verdict};
use super::super::stall::partition_lag;
use super::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn lag_is_what_each_partition_held_has_beyond_where_the_projection_stands() {
    let watermarks = [(0, 10), (5, 20), (3, 9)];
    let next = HashMap::from([(0, 4), (1, 20)]);
    let every = Owned::from([(0, 1), (1, 1), (2, 1)]);
    assert_eq!(
        partition_lag(&watermarks, &every, &next),
        [(0, 6), (1, 0), (2, 6)]
    );
    // Another process's partitions are its own lag; one past the topic's
    // end (it shrank) has none to report.
    let some = Owned::from([(2, 4), (7, 1)]);
    assert_eq!(partition_lag(&watermarks, &some, &next), [(2, 6)]);
}

#[test]
fn standing_past_a_partitions_end_is_no_lag() {
    let owned = Owned::from([(0, 1)]);
    assert_eq!(
        partition_lag(&[(0, 10)], &owned, &HashMap::from([(0, 15)])),
        [(0, 0)]
    );
}

#[test]
fn a_caught_up_projection_is_never_stalled() {
    let t0 = Instant::now();
    let mut progress = Progress::default();
    progress.made(t0);
    assert_eq!(
        progress.check(0, t0 + secs(3_600), TIMEOUT),
        Verdict::CaughtUp
    );
}

#[test]
fn the_clock_starts_at_the_first_check_that_finds_messages_waiting() {
    let t0 = Instant::now();
    let mut progress = Progress::default();
    assert_eq!(progress.check(5, t0, TIMEOUT), Verdict::Behind(secs(0)));
    assert_eq!(
        progress.check(5, t0 + secs(30), TIMEOUT),
        Verdict::Behind(secs(30))
    );
    assert_eq!(
        progress.check(5, t0 + secs(31), TIMEOUT),
        Verdict::Stalled(secs(31))
    );
}

#[test]
fn applying_a_batch_starts_the_clock_again() {
    let t0 = Instant::now();
    let mut progress = Progress::default();
    progress.made(t0);
    assert_eq!(
        progress.check(5, t0 + secs(20), TIMEOUT),
        Verdict::Behind(secs(20))
    );
    progress.made(t0 + secs(25));
    assert_eq!(
        progress.check(5, t0 + secs(50), TIMEOUT),
        Verdict::Behind(secs(25))
    );
    assert_eq!(
        progress.check(5, t0 + secs(56), TIMEOUT),
        Verdict::Stalled(secs(31))
    );
}

#[test]
fn catching_up_starts_the_clock_again() {
    let t0 = Instant::now();
    let mut progress = Progress::default();
    progress.made(t0);
    assert_eq!(progress.check(0, t0 + secs(40), TIMEOUT), Verdict::CaughtUp);
    assert_eq!(
        progress.check(3, t0 + secs(60), TIMEOUT),
        Verdict::Behind(secs(20))
    );
}
