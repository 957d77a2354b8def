//! The names a projection goes by, and the defaults of its bounds.

use std::time::Duration;

use super::super::ConsumerSettings;

#[test]
fn defaults_bound_a_batch_and_watch_progress() {
    let settings = ConsumerSettings::new("task-events");
    assert_eq!(settings.topic, "task-events");
    assert_eq!(settings.group_prefix, None);
    assert_eq!(settings.batch_max, 1_000);
    assert_eq!(settings.batch_window, Duration::from_millis(5));
    assert_eq!(settings.stall_timeout, Duration::from_secs(30));
    assert_eq!(settings.check_interval, Duration::from_secs(2));
    assert_eq!(settings.lease_ttl, Duration::from_secs(10));
}

#[test]
fn the_group_is_the_prefix_and_the_projection_name() {
    let mut settings = ConsumerSettings::new("task-events");
    assert_eq!(settings.consumer_group("task-list"), "taskledger-task-list");
    settings.group_prefix = Some("ci-7".into());
    assert_eq!(settings.consumer_group("task-list"), "ci-7-task-list");
}
