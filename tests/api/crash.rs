//! A projector is a process that dies: killed without warning (SIGKILL) in the
//! middle of a write load, at several points, it starts again and resumes from
//! the offsets stored with the read models, whatever the broker's committed
//! offsets say. Afterwards the read models equal the event store, nothing
//! valid was dead-lettered, and new tasks still appear.

use std::time::Duration;

use futures::future::join_all;
use infra::kafka::dead_letter_topic;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use taskledger::settings::Settings;
use taskledger::Roles;
use tokio::process::Child;
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    assert_no_errors, eventually, fresh_settings, read_model_caught_up, read_topic,
    spawn_role_process, TestApp,
};

const API_AND_RELAY: Roles = Roles {
    api: true,
    relay: true,
    project: false,
    scheduler: false,
};

/// `taskledger project` as a process of its own, to be killed.
fn start_projector(settings: &Settings) -> Child {
    spawn_role_process(settings, "project")
}

async fn offsets_total(app: &TestApp) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>(
        "SELECT sum(next_offset)::bigint FROM projection_offsets WHERE projection = 'task-list'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
    .unwrap_or(0)
}

/// Messages the relay has had acknowledged.
async fn published(app: &TestApp) -> i64 {
    event_store::relay::checkpoint::load(&app.pool, &app.settings.common.relay_name)
        .await
        .unwrap()
        .published
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_during_a_write_load_resumes_from_postgres_and_applies_every_event() {
    let settings = fresh_settings().await;
    let app = TestApp::spawn_with(settings.clone(), API_AND_RELAY).await;
    let alice = app.token("alice");
    let mut projectors = vec![start_projector(&settings)];

    // Four writers: plain tasks, edits, and recurring tasks completed at once,
    // so both projections (the task list and the recurrence processor) work.
    let writers = (0..4).map(|writer| {
        let (app, alice) = (&app, &alice);
        async move {
            for n in 0..60 {
                let input = if n % 6 == 0 {
                    json!({ "title": format!("w{writer} r{n}"),
                            "dueAt": "2027-03-26T08:00:00Z", "recurrence": "FREQ=DAILY" })
                } else {
                    json!({ "title": format!("w{writer} t{n}") })
                };
                let body = app
                    .graphql(
                        Some(alice),
                        "mutation($input: CreateTaskInput!) { createTask(input: $input) { taskId } }",
                        json!({ "input": input }),
                    )
                    .await;
                assert_no_errors(&body);
                let id = body["data"]["createTask"]["taskId"].clone();
                if n % 3 == 0 {
                    let body = app
                        .graphql(
                            Some(alice),
                            "mutation($id: ID!) { completeTask(id: $id) { version } setPriority(id: $id, priority: HIGH) { version } }",
                            json!({ "id": id }),
                        )
                        .await;
                    assert_no_errors(&body);
                }
            }
        }
    });
    // Kill points: as soon as the projector first commits (mid-batch, most
    // likely), a little later, and later still with a second projector
    // beside it sharing the partitions, of which the older one dies.
    // On a busy machine the writers may finish before the last kill; the
    // projector has then made all the progress there is to make once it has
    // consumed everything published.
    let writing = std::sync::atomic::AtomicBool::new(true);
    let writers = async {
        join_all(writers).await;
        writing.store(false, std::sync::atomic::Ordering::Relaxed);
    };
    let killer = async {
        for (round, delay) in [0u64, 40, 150].into_iter().enumerate() {
            let before = offsets_total(&app).await;
            eventually(Duration::from_secs(30), || async {
                let now = offsets_total(&app).await;
                let idle = !writing.load(std::sync::atomic::Ordering::Relaxed)
                    && now >= published(&app).await;
                (now > before || idle).then_some(())
            })
            .await
            .expect("the projector makes progress");
            if round == 2 {
                projectors.push(start_projector(&settings));
            }
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let mut victim = projectors.remove(0);
            victim.kill().await.unwrap();
            victim.wait().await.unwrap();
            if round < 2 {
                projectors.push(start_projector(&settings));
            }
        }
    };
    tokio::join!(writers, killer);

    let took = read_model_caught_up(&app.pool, Duration::from_secs(60), "the crashes").await;
    eprintln!("caught up {took:?} after the load ended");
    // Field by field, not only versions: `taskledger verify`.
    let (passed, printed) = crate::verify::run_verify(&settings);
    assert!(passed, "taskledger verify after the crashes:\n{printed}");

    // A task created now still appears.
    let (id, _) = app.create_task(&alice, "after the crashes").await;
    app.task_at_version(&alice, &id, 1).await;

    // Nothing valid went to the dead-letter topic.
    let dead = read_topic(
        &app.kafka(),
        &dead_letter_topic(&app.settings.common.task_events_topic),
        Duration::from_secs(2),
        |received| !received.is_empty(),
    )
    .await;
    assert!(dead.is_empty(), "dead-lettered: {:?}", dead[0].json());
}

#[tokio::test]
async fn broker_offsets_ahead_of_postgres_skip_nothing() {
    let settings = fresh_settings().await;
    let app = TestApp::spawn_with(settings.clone(), API_AND_RELAY).await;
    let alice = app.token("alice");
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(app.create_task(&alice, &format!("t{n}")).await.0);
    }
    let events = app.event_count().await;
    read_topic(
        &app.kafka(),
        &app.settings.common.task_events_topic,
        Duration::from_secs(20),
        |received| received.len() as i64 >= events,
    )
    .await;

    // The broker says the task-list group has read everything (a crash after
    // the broker commit and before the Postgres one, or a tool that moved it).
    let group = format!(
        "{}-task-list",
        settings.common.consumer_group_prefix.as_deref().unwrap()
    );
    let consumer = app.kafka().consumer(&group).unwrap();
    let mut ahead = TopicPartitionList::new();
    for partition in 0..settings.common.task_events_partitions {
        let (_, high) = consumer
            .fetch_watermarks(
                &settings.common.task_events_topic,
                partition,
                Duration::from_secs(5),
            )
            .unwrap();
        ahead
            .add_partition_offset(
                &settings.common.task_events_topic,
                partition,
                Offset::Offset(high + 100),
            )
            .unwrap();
    }
    consumer.commit(&ahead, CommitMode::Sync).unwrap();
    drop(consumer);

    let shutdown = CancellationToken::new();
    let projector = taskledger::start(&settings, Roles::PROJECT, shutdown.clone())
        .await
        .unwrap();
    read_model_caught_up(
        &app.pool,
        Duration::from_secs(20),
        "broker offsets past the end",
    )
    .await;
    for id in &ids {
        app.task_at_version(&alice, id, 1).await;
    }
    shutdown.cancel();
    projector.wait().await.unwrap();
}
