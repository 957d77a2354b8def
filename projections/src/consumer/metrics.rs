//! What the runtime tells Prometheus: lag in messages and seconds, batch sizes
//! and times, what became of each message, stalls and restarts. Kept apart so
//! the names and labels dashboards depend on are set in one place.

use std::time::Duration;

use infra::metric;
use rdkafka::message::OwnedMessage;
use rdkafka::Message;

use super::projection::Outcome;

/// A committed batch: its size and time, each message's outcome, and how far
/// behind the newest message it applied the projection is.
pub(super) fn batch_applied(
    projection: &'static str,
    batch: &[OwnedMessage],
    took: Duration,
    outcomes: &[Outcome],
) {
    ::metrics::histogram!(metric::PROJECTION_BATCH_SIZE, "projection" => projection)
        .record(batch.len() as f64);
    ::metrics::histogram!(metric::PROJECTION_BATCH_SECONDS, "projection" => projection)
        .record(took.as_secs_f64());
    for outcome in outcomes {
        ::metrics::counter!(
            metric::PROJECTION_MESSAGES,
            "projection" => projection,
            "outcome" => outcome.as_str()
        )
        .increment(1);
    }
    if let Some(newest) = batch.iter().filter_map(|m| m.timestamp().to_millis()).max() {
        ::metrics::gauge!(metric::PROJECTION_LAG_SECONDS, "projection" => projection)
            .set(lag_seconds(newest, chrono::Utc::now().timestamp_millis()));
    }
}

/// Seconds from a message's timestamp to now; never negative, since a
/// producer's clock may run ahead of ours.
pub(super) fn lag_seconds(message_ms: i64, now_ms: i64) -> f64 {
    (now_ms - message_ms).max(0) as f64 / 1000.0
}

pub(super) fn partition_lag(projection: &'static str, partition: i32, messages: i64) {
    ::metrics::gauge!(
        metric::PROJECTION_LAG_MESSAGES,
        "projection" => projection,
        "partition" => partition.to_string()
    )
    .set(messages as f64);
}

/// Nothing left to apply: no lag in time either.
pub(super) fn caught_up(projection: &'static str) {
    ::metrics::gauge!(metric::PROJECTION_LAG_SECONDS, "projection" => projection).set(0.0);
}

pub(super) fn broker_reachable(projection: &'static str, reachable: bool) {
    let value = if reachable { 1.0 } else { 0.0 };
    ::metrics::gauge!(metric::BROKER_REACHABLE, "role" => projection).set(value);
}

pub(super) fn stalled(projection: &'static str) {
    ::metrics::counter!(metric::PROJECTION_STALLS, "projection" => projection).increment(1);
}

pub(super) fn restarted(projection: &'static str) {
    ::metrics::counter!(metric::PROJECTION_RESTARTS, "projection" => projection).increment(1);
}

/// How many of the topic's partitions this process holds the leases of.
pub(super) fn partitions_owned(projection: &'static str, partitions: usize) {
    ::metrics::gauge!(metric::PROJECTION_PARTITIONS_OWNED, "projection" => projection)
        .set(partitions as f64);
}

pub(super) fn assignment_changed(projection: &'static str) {
    ::metrics::counter!(metric::PROJECTION_ASSIGNMENT_CHANGES, "projection" => projection)
        .increment(1);
}

/// A batch that was not committed: a partition it touched had moved to
/// another process.
pub(super) fn fenced(projection: &'static str) {
    ::metrics::counter!(metric::PROJECTION_FENCED_BATCHES, "projection" => projection).increment(1);
}
