//! A running deployment moved to more partitions: configured with more, the
//! relay replaces `task-events` and publishes the whole log to it again as a
//! new generation, each task's events on one partition and in order; the
//! task-updates publisher replaces `task-updates`; the projections read the
//! new generation and agree with the event store; the live feed notices,
//! resyncs its subscribers and goes on.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use infra::kafka::KafkaSettings;
use rdkafka::consumer::Consumer as _;
use rdkafka::Message as _;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{
    eventually, fresh_settings, read_model_caught_up, spawn_role_process, TestApp,
};
use crate::ws_client::GqlSocket;

const CHANGES: &str = "subscription { taskChanges { kind taskId version } }";
const MINUTE: Duration = Duration::from_secs(60);

async fn generation(pool: &PgPool, topic: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(max(generation), 0) FROM topic_generations WHERE topic = $1",
    )
    .bind(topic)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Tasks each created and, every other one, completed: two events or one.
async fn write(app: &TestApp, token: &str, count: usize, label: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        let (id, _) = app.create_task(token, &format!("{label} {n}")).await;
        if n % 2 == 0 {
            app.complete_task(token, &id).await;
        }
        ids.push(id);
    }
    ids
}

/// Every message of `topic` from its beginning, as (partition, task, sequence),
/// once `expected` have arrived or `within` passed.
async fn read_sequences(
    kafka: &KafkaSettings,
    topic: &str,
    expected: usize,
    within: Duration,
) -> Vec<(i32, String, i64)> {
    let consumer = kafka
        .consumer(&format!("reader-{}", Uuid::new_v4()))
        .expect("a consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut read = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while read.len() < expected {
        let Ok(message) = tokio::time::timeout_at(deadline, consumer.recv()).await else {
            break;
        };
        let Ok(message) = message else { continue };
        let event: Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        read.push((
            message.partition(),
            event["data"]["task_id"].as_str().unwrap().to_owned(),
            event["data"]["sequence"].as_i64().unwrap(),
        ));
    }
    std::thread::spawn(move || drop(consumer));
    read
}

#[tokio::test]
async fn a_deployment_moves_to_more_partitions_with_each_tasks_order_kept() {
    let mut settings = fresh_settings().await;
    settings.common.task_events_partitions = 3;
    let topics = [
        settings.common.task_events_topic.clone(),
        settings.common.task_updates_topic.clone(),
    ];
    let api = TestApp::spawn_with(settings.clone(), taskledger::Roles::API).await;
    let kafka = api.kafka();
    let alice = api.token("alice");
    let mut workers = spawn_role_process(&settings, "workers");
    write(&api, &alice, 12, "before").await;
    read_model_caught_up(&api.pool, MINUTE, "writes on three partitions").await;
    for topic in &topics {
        assert_eq!(kafka.partition_count(topic).await.unwrap(), Some(3));
    }
    let before = generation(&api.pool, &topics[0]).await;
    let mut socket = GqlSocket::connect(&api.address, &alice).await;
    socket.subscribe("live", CHANGES, json!({})).await;

    // The same deployment, its workers restarted configured with eight.
    workers.kill().await.unwrap();
    let mut grown = settings.clone();
    grown.common.task_events_partitions = 8;
    let mut workers = spawn_role_process(&grown, "workers");
    for topic in &topics {
        eventually(MINUTE, || async {
            (kafka.partition_count(topic).await.ok()? == Some(8)).then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("{topic} was not moved to eight partitions"));
    }
    eventually(MINUTE, || async {
        (generation(&api.pool, &topics[0]).await > before).then_some(())
    })
    .await
    .expect("the log was published again as a new generation");

    // The live feed sees the replacement, resyncs its subscriber, and carries
    // what changes once it reads the new partitions.
    let (mut resynced, mut carried) = (false, false);
    for attempt in 0..20 {
        let (id, _) = api.create_task(&alice, &format!("live {attempt}")).await;
        while let Some(payload) = socket.next_payload("live", Duration::from_secs(3)).await {
            let change = &payload["data"]["taskChanges"];
            if change["kind"] == "RESYNC" {
                resynced = true;
            } else if change["taskId"] == id.as_str() {
                carried = true;
                break;
            }
        }
        if carried {
            break;
        }
    }
    assert!(resynced, "the live feed told its subscriber to resync");
    assert!(carried, "a change after the move reached the subscriber");
    write(&api, &alice, 6, "after").await;
    read_model_caught_up(&api.pool, MINUTE, "writes on eight partitions").await;

    // Every stored event once in the new topic, each task's on one partition
    // and in order, the tasks spread beyond the first three partitions.
    let events = api.event_count().await as usize;
    let read = read_sequences(&kafka, &topics[0], events, MINUTE).await;
    assert_eq!(
        read.len(),
        events,
        "each stored event once in the new topic"
    );
    let mut by_task: BTreeMap<&str, (BTreeSet<i32>, Vec<i64>)> = BTreeMap::new();
    for (partition, task, sequence) in &read {
        let entry = by_task.entry(task).or_default();
        entry.0.insert(*partition);
        entry.1.push(*sequence);
    }
    let tasks: i64 = sqlx::query_scalar("SELECT count(DISTINCT aggregate_id) FROM events")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(by_task.len() as i64, tasks);
    for (task, (partitions, sequences)) in &by_task {
        assert_eq!(
            partitions.len(),
            1,
            "task {task} on partitions {partitions:?}"
        );
        let in_order: Vec<i64> = (1..=sequences.len() as i64).collect();
        assert_eq!(sequences, &in_order, "task {task}'s events out of order");
    }
    let used: BTreeSet<i32> = read.iter().map(|(partition, ..)| *partition).collect();
    assert!(
        used.iter().any(|&partition| partition >= 3),
        "every task on the first three of eight partitions: {used:?}"
    );
    workers.kill().await.unwrap();
}
