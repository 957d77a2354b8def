//! `taskledger dlq list|show|replay` against the real broker.

use std::time::Duration;

use infra::kafka::dead_letter_topic;
use rdkafka::producer::FutureRecord;

use crate::helpers::{eventually, read_topic, TestApp};

/// `taskledger dlq ARGS` on the app's broker and topic; its stdout.
fn dlq(app: &TestApp, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_taskledger"))
        .arg("dlq")
        .args(args)
        .args(["--topic", &app.settings.common.task_events_topic])
        .env("TASKLEDGER_ENV", "local")
        .env("KAFKA_BROKERS", &app.settings.common.kafka_brokers)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "dlq {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn dead_letters_are_listed_shown_whole_and_replayed_to_their_topic() {
    let app = TestApp::spawn().await;
    let topic = app.settings.common.task_events_topic.clone();
    app.kafka()
        .producer()
        .unwrap()
        .send(
            FutureRecord::to(&topic)
                .key("garbage")
                .payload("{{{ not json"),
            Duration::from_secs(5),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    // The task list, the reminders projection and the recurrence processor
    // each dead-letter it.
    let dead = read_topic(
        &app.kafka(),
        &dead_letter_topic(&topic),
        Duration::from_secs(20),
        |m| m.len() >= 3,
    )
    .await;
    assert_eq!(dead.len(), 3);
    for message in &dead {
        assert!(message
            .header("dlq-consumer-group")
            .is_some_and(|g| g.starts_with("test-")));
        assert!(message
            .header("dlq-failed-at")
            .is_some_and(|t| t.starts_with("20")));
        assert_eq!(message.header("dlq-source-topic"), Some(topic.as_str()));
    }

    // The tool lists up to the high watermark the broker reports when it
    // starts; tansu may report the newest message a moment after serving it.
    let listed = eventually(Duration::from_secs(10), || async {
        let listed = dlq(&app, &["list"]);
        listed.contains("3 dead letters").then_some(listed)
    })
    .await
    .unwrap_or_else(|| dlq(&app, &["list"]));
    assert!(listed.contains("3 dead letters"), "{listed}");
    assert!(listed.contains("garbage"), "{listed}");
    assert!(listed.contains("not a task event CloudEvent"), "{listed}");
    for projection in ["task-list", "reminders", "recurrence"] {
        assert!(listed.contains(projection), "{listed}");
    }

    let shown = dlq(&app, &["show", "0"]);
    assert!(
        shown.contains("dlq-reason: not a task event CloudEvent"),
        "{shown}"
    );
    assert!(shown.contains("value: {{{ not json"), "{shown}");

    let replayed = dlq(&app, &["replay", "0"]);
    assert!(replayed.contains("replayed"), "{replayed}");
    let back = read_topic(&app.kafka(), &topic, Duration::from_secs(10), |m| {
        m.iter()
            .filter(|m| m.key.as_deref() == Some("garbage"))
            .count()
            >= 2
    })
    .await;
    let copies: Vec<_> = back
        .iter()
        .filter(|m| m.key.as_deref() == Some("garbage"))
        .collect();
    assert_eq!(copies.len(), 2, "the original and the replayed copy");
    assert_eq!(copies[1].value, b"{{{ not json");
    assert!(
        copies[1].header("dlq-reason").is_none(),
        "dlq headers are not carried back"
    );

    // Still unreadable after the "fix": dead-lettered again, and consumption goes on.
    let again = read_topic(
        &app.kafka(),
        &dead_letter_topic(&topic),
        Duration::from_secs(20),
        |m| m.len() >= 6,
    )
    .await;
    assert_eq!(again.len(), 6);
    let (id, version) = app
        .create_task(&app.token("alice"), "after the replay")
        .await;
    app.task_at_version(&app.token("alice"), &id, version).await;

    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_taskledger"))
        .args(["dlq", "show", "999", "--topic", &topic])
        .env("KAFKA_BROKERS", &app.settings.common.kafka_brokers)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no message at offset 999"));
}
