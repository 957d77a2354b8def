//! What analytics consumers see on `task-events`, and how a projection treats a
//! message it cannot read.

use std::time::Duration;

use infra::kafka::dead_letter_topic;
use rdkafka::producer::FutureRecord;
use serde_json::json;

use crate::helpers::{read_topic, TestApp};

#[tokio::test]
async fn events_are_published_as_cloudevents_keyed_by_task() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let (id, _) = app.create_task(&alice, "Publish me").await;
    app.graphql(
        Some(&alice),
        "mutation($id: ID!) { completeTask(id: $id) { version } }",
        json!({ "id": id }),
    )
    .await;

    let messages = read_topic(
        &app.kafka(),
        &app.settings.common.task_events_topic,
        Duration::from_secs(20),
        |m| m.len() >= 2,
    )
    .await;
    assert_eq!(messages.len(), 2);
    let (event_ids, positions): (Vec<String>, Vec<i64>) = sqlx::query_as::<_, (uuid::Uuid, i64)>(
        "SELECT event_id, global_position FROM events ORDER BY sequence",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(e, g)| (e.to_string(), g))
    .unzip();

    for (n, message) in messages.iter().enumerate() {
        assert_eq!(message.key.as_deref(), Some(id.as_str()));
        assert_eq!(
            message.header("content-type"),
            Some("application/cloudevents+json")
        );
        let event = message.json();
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["id"], event_ids[n].as_str());
        assert_eq!(event["source"], "taskledger/event-store");
        assert_eq!(event["subject"], id.as_str());
        assert!(event["time"].is_string());
        assert!(event["correlationid"].is_string());
        // What a Dapr subscriber needs to take the message as a structured
        // CloudEvent and hand `data` over as JSON.
        assert_eq!(event["datacontenttype"], "application/json");
        assert!(event["type"].is_string() && event["data"].is_object());
        let data = &event["data"];
        assert_eq!(data["task_id"], id.as_str());
        assert_eq!(data["user_id"], "alice");
        assert_eq!(data["sequence"], n as u64 + 1);
        assert_eq!(data["global_position"], positions[n]);
        // Each event type has its own version: creations 2, completions 3.
        assert_eq!(data["schema_version"], ["2.0", "3.0"][n]);
        assert!(data["timestamp"].is_string());
    }
    let created = messages[0].json();
    assert_eq!(created["type"], "taskledger.task.created.v2");
    assert_eq!(created["data"]["event_type"], "TaskCreated");
    // What the user typed travels sealed with their key (docs/adr/0014).
    let task_data = &created["data"]["task_data"];
    assert!(task_data.get("title").is_none(), "{task_data}");
    assert_eq!(task_data["sealed"]["by"], "alice");
    assert_eq!(
        task_data["sealed"]["fields"],
        json!(["title", "description", "tags"])
    );
    assert!(!String::from_utf8_lossy(&messages[0].value).contains("Publish me"));
    assert_eq!(messages[1].json()["type"], "taskledger.task.completed.v3");
}

#[tokio::test]
async fn unreadable_messages_go_to_the_dead_letter_topic_and_consumption_goes_on() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let topic = app.settings.common.task_events_topic.clone();
    let producer = app.kafka().producer().unwrap();
    let forged = json!({
        "specversion": "1.0", "id": "x", "source": "evil", "type": "taskledger.task.created.v2",
        "subject": "not-a-uuid", "time": "2026-01-01T00:00:00Z", "datacontenttype": "application/json",
        "data": { "event_type": "TaskCreated", "task_id": "not-a-uuid", "task_data": {}, "user_id": "mallory",
                  "timestamp": "2026-01-01T00:00:00Z", "sequence": 1, "global_position": 1, "schema_version": "1.0" }
    })
    .to_string();
    // Well-formed, but names an event the event store does not hold.
    let ghost = uuid::Uuid::new_v4().to_string();
    let invented = forged
        .replace("not-a-uuid", &ghost)
        .replace("\"x\"", &format!("\"{}\"", uuid::Uuid::new_v4()));
    for (key, payload) in [
        ("garbage", "{{{ not json".to_owned()),
        ("not-a-uuid", forged),
        (ghost.as_str(), invented),
    ] {
        producer
            .send(
                FutureRecord::to(&topic).key(key).payload(&payload),
                Duration::from_secs(5),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }

    let (id, _) = app.create_task(&alice, "after the garbage").await;
    app.task_at_version(&alice, &id, 1).await;

    let dead = read_topic(
        &app.kafka(),
        &dead_letter_topic(&topic),
        Duration::from_secs(20),
        |m| m.len() >= 7,
    )
    .await;
    // Each consumer group dead-letters what it cannot read: the task list and
    // the reminders projection all three, the recurrence processor the one
    // that is not even JSON (it ignores creations without reading further).
    let (dead, others): (Vec<_>, Vec<_>) = dead
        .into_iter()
        .partition(|m| m.header("dlq-projection") == Some("task-list"));
    let (by_reminders, by_recurrence): (Vec<_>, Vec<_>) = others
        .into_iter()
        .partition(|m| m.header("dlq-projection") == Some("reminders"));
    let mut reminder_keys: Vec<_> = by_reminders
        .iter()
        .map(|m| m.key.clone().unwrap())
        .collect();
    reminder_keys.sort();
    assert_eq!(by_recurrence.len(), 1);
    assert_eq!(by_recurrence[0].key.as_deref(), Some("garbage"));
    assert_eq!(dead.len(), 3);
    let mut keys: Vec<_> = dead.iter().map(|m| m.key.clone().unwrap()).collect();
    keys.sort();
    let mut expected = vec!["garbage".to_owned(), "not-a-uuid".to_owned(), ghost.clone()];
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(reminder_keys, expected);
    for message in &dead {
        assert!(message.header("dlq-reason").is_some_and(|r| !r.is_empty()));
        assert_eq!(message.header("dlq-source-topic"), Some(topic.as_str()));
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM task_list")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "nothing forged reached the read model");
}

#[tokio::test]
async fn offsets_left_by_an_earlier_incarnation_of_the_topic_skip_nothing() {
    // A broker whose storage was wiped starts the topic's offsets again from 0,
    // while Postgres still holds the offsets reached before.
    let settings = crate::helpers::fresh_settings().await;
    let pool = taskledger::setup(&settings).await.unwrap();
    for partition in 0..settings.common.task_events_partitions {
        sqlx::query(
            "INSERT INTO projection_offsets (projection, topic, partition, next_offset)
             VALUES ('task-list', $1, $2, 1000)",
        )
        .bind(&settings.common.task_events_topic)
        .bind(partition)
        .execute(&pool)
        .await
        .unwrap();
    }
    let app = TestApp::spawn_with(settings, taskledger::Roles::ALL).await;
    let alice = app.token("alice");
    let (id, _) = app.create_task(&alice, "after the wipe").await;
    app.task_at_version(&alice, &id, 1).await;
}

#[tokio::test]
async fn a_message_too_large_for_the_dead_letter_topic_goes_there_cut_short_and_consumption_goes_on(
) {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let topic = app.settings.common.task_events_topic.clone();
    // 5 MB of garbage, produced by a client configured for it and taken by
    // the real broker: the consumers fetch it (they take up to 8 MiB), but
    // the dead-letter producer refuses anything over 1 MB whole.
    let poison: Vec<u8> = (0..5_000_000u32).map(|n| b'a' + (n % 26) as u8).collect();
    let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &app.settings.common.kafka_brokers)
        .set("message.max.bytes", (8 * 1024 * 1024).to_string())
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(&topic).key("poison").payload(&poison),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();

    let (id, _) = app.create_task(&alice, "after the poison").await;
    app.task_at_version(&alice, &id, 1).await;

    let dead = read_topic(
        &app.kafka(),
        &dead_letter_topic(&topic),
        Duration::from_secs(20),
        |m| {
            m.iter()
                .any(|m| m.header("dlq-projection") == Some("task-list"))
        },
    )
    .await;
    let cut = dead
        .iter()
        .find(|m| m.header("dlq-projection") == Some("task-list"))
        .expect("the task list dead-lettered the poison");
    assert_eq!(cut.header("dlq-truncated-from-bytes"), Some("5000000"));
    let digest: String = <sha2::Sha256 as sha2::Digest>::digest(&poison)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(cut.header("dlq-original-sha256"), Some(digest.as_str()));
    assert_eq!(cut.value.len(), projections::DEAD_LETTER_MAX_PAYLOAD);
    assert_eq!(cut.value[..], poison[..cut.value.len()]);
    assert!(cut.header("dlq-reason").is_some_and(|r| !r.is_empty()));
}
