//! The metrics a batch and a check record, read back from a recorder of the
//! test's own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use rdkafka::message::{OwnedMessage, Timestamp};

use super::super::metrics::{batch_applied, broker_reachable, lag_seconds, partition_lag};
use super::{Duration, Outcome, TOPIC};

/// Every metric's last value (a counter's total), by name and sorted labels.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<HashMap<String, f64>>>);

struct Slot {
    key: String,
    recorded: Recorded,
}

impl Slot {
    fn update(&self, f: impl FnOnce(&mut f64)) {
        f(self
            .recorded
            .0
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default());
    }
}

impl CounterFn for Slot {
    fn increment(&self, value: u64) {
        self.update(|v| *v += value as f64);
    }

    fn absolute(&self, value: u64) {
        self.update(|v| *v = v.max(value as f64));
    }
}

impl GaugeFn for Slot {
    fn increment(&self, value: f64) {
        self.update(|v| *v += value);
    }

    fn decrement(&self, value: f64) {
        self.update(|v| *v -= value);
    }

    fn set(&self, value: f64) {
        self.update(|v| *v = value);
    }
}

impl HistogramFn for Slot {
    fn record(&self, value: f64) {
        self.update(|v| *v = value);
    }
}

impl Recorded {
    fn slot(&self, key: &Key) -> Arc<Slot> {
        let mut labels: Vec<_> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        Arc::new(Slot {
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
            recorded: self.clone(),
        })
    }

    fn get(&self, key: &str) -> Option<f64> {
        self.0.lock().unwrap().get(key).copied()
    }
}

impl Recorder for Recorded {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.slot(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.slot(key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.slot(key))
    }
}

fn stamped(offset: i64, millis: i64) -> OwnedMessage {
    OwnedMessage::new(
        None,
        None,
        TOPIC.to_owned(),
        Timestamp::CreateTime(millis),
        0,
        offset,
        None,
    )
}

#[test]
fn lag_in_seconds_is_never_negative() {
    assert_eq!(lag_seconds(1_000, 3_500), 2.5);
    assert_eq!(
        lag_seconds(5_000, 3_000),
        0.0,
        "a producer's clock ahead of ours"
    );
}

#[test]
fn a_batch_counts_each_outcome_under_its_label_and_its_lag_from_the_newest_message() {
    let recorded = Recorded::default();
    let now = chrono::Utc::now().timestamp_millis();
    let batch = [
        stamped(0, now - 60_000),
        stamped(1, now - 2_000),
        stamped(2, now - 30_000),
    ];
    let outcomes = [Outcome::Applied, Outcome::Applied, Outcome::DeadLettered];
    metrics::with_local_recorder(&recorded, || {
        batch_applied("task-list", &batch, Duration::from_millis(250), &outcomes);
    });
    let messages = |outcome: &str| {
        recorded.get(&format!(
            "taskledger_projection_messages_total{{outcome={outcome},projection=task-list}}"
        ))
    };
    assert_eq!(messages("applied"), Some(2.0));
    assert_eq!(messages("dead_lettered"), Some(1.0));
    assert_eq!(messages("duplicate"), None);
    assert_eq!(
        recorded.get("taskledger_projection_batch_messages{projection=task-list}"),
        Some(3.0)
    );
    assert_eq!(
        recorded.get("taskledger_projection_batch_seconds{projection=task-list}"),
        Some(0.25)
    );
    let lag = recorded
        .get("taskledger_projection_lag_seconds{projection=task-list}")
        .unwrap();
    assert!(
        (2.0..30.0).contains(&lag),
        "lag {lag}s: from the newest message"
    );
}

#[test]
fn a_batch_without_timestamps_leaves_the_lag_in_seconds_alone() {
    let recorded = Recorded::default();
    let batch = [OwnedMessage::new(
        None,
        None,
        TOPIC.to_owned(),
        Timestamp::NotAvailable,
        0,
        0,
        None,
    )];
    metrics::with_local_recorder(&recorded, || {
        batch_applied("task-list", &batch, Duration::ZERO, &[Outcome::Applied]);
    });
    assert_eq!(
        recorded.get("taskledger_projection_lag_seconds{projection=task-list}"),
        None
    );
}

#[test]
fn lag_is_a_gauge_per_partition_and_reachability_one_per_role() {
    let recorded = Recorded::default();
    metrics::with_local_recorder(&recorded, || {
        partition_lag("reminders", 2, 17);
        broker_reachable("reminders", false);
    });
    assert_eq!(
        recorded.get("taskledger_projection_lag_messages{partition=2,projection=reminders}"),
        Some(17.0)
    );
    assert_eq!(
        recorded.get("taskledger_broker_reachable{role=reminders}"),
        Some(0.0)
    );
    metrics::with_local_recorder(&recorded, || broker_reachable("reminders", true));
    assert_eq!(
        recorded.get("taskledger_broker_reachable{role=reminders}"),
        Some(1.0)
    );
}
