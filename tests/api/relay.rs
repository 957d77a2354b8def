//! The relay under stress: late commits are not skipped (DESIGN invariant 3),
//! and a relay killed mid-stream loses nothing (invariants 4 and 5).

use std::time::Duration;

use chrono::Utc;
use cqrs_es::Aggregate;
use domain::values::TaskId;
use domain::{Task, TaskEvent, TaskStatus};
use event_store::global_log;
use futures::future::join_all;
use rdkafka::consumer::Consumer;
use serde_json::json;
use taskledger::{Roles, Settings};
use tokio::process::Child;

use crate::helpers::{eventually, fresh_settings, read_topic, spawn_role_process, TestApp};

const WITHOUT_RELAY: Roles = Roles {
    api: true,
    relay: false,
    project: true,
    scheduler: true,
};

#[tokio::test]
async fn an_event_committed_late_is_relayed_not_skipped() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let bob = app.token("bob");

    // A transaction that inserts an event of bob's and stays open (another
    // user's: one user's commands on tasks whose counts share a row of
    // `user_writes` wait for each other's commit)...
    // (written as version 1 of TaskCreated, so it also goes through the upcaster)
    let held_id = TaskId::new();
    let created = json!({ "TaskCreated": {
        "task_id": held_id, "user_id": "bob", "title": "committed late",
        "description": null, "created_at": Utc::now(),
    }});
    let mut held = app.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Task', $1, 1, 'TaskCreated', '1.0', $2, $3)",
    )
    .bind(held_id.to_string())
    .bind(created)
    .bind(json!({ "user_id": "bob", "correlation_id": "held" }))
    .execute(&mut *held)
    .await
    .unwrap();

    // ...while later events commit.
    let (later, _) = app.create_task(&alice, "committed early").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        app.task(&alice, &later).await.is_null(),
        "the relay must wait for the older transaction before passing the later one"
    );
    let checkpoint =
        event_store::relay::checkpoint::load(&app.pool, &app.settings.common.relay_name)
            .await
            .unwrap();
    assert_eq!(
        checkpoint.position.global_position, 0,
        "nothing relayed past the open transaction"
    );
    // Nor counted: a read finds alice's event among those after the count.
    let (counted, stored): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT events FROM user_writes WHERE user_id = 'alice'),
                user_events_stored('alice', 100)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((counted, stored), (None, Some(1)));

    held.commit().await.unwrap();
    let late = app.task_at_version(&bob, &held_id.to_string(), 1).await;
    assert_eq!(late["title"], "committed late");
    app.task_at_version(&alice, &later, 1).await;
    // The relay counts each user's event once, the late one included.
    let counted = eventually(Duration::from_secs(10), || async {
        (counted_by_the_relay(&app.pool).await == [("alice".into(), 1), ("bob".into(), 1)])
            .then_some(())
    })
    .await;
    assert!(
        counted.is_some(),
        "counted: {:?}",
        counted_by_the_relay(&app.pool).await
    );
}

/// Each user's events as the relay has counted them (`user_writes`).
async fn counted_by_the_relay(pool: &sqlx::PgPool) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT user_id, events FROM user_writes ORDER BY user_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

fn start_relay(settings: &Settings) -> Child {
    spawn_role_process(settings, "relay")
}

#[tokio::test]
async fn a_relay_killed_mid_stream_loses_nothing() {
    let settings = fresh_settings().await;
    // The relays run as separate processes, started and killed by the test.
    let app = TestApp::spawn_with(settings.clone(), WITHOUT_RELAY).await;
    let alice = app.token("alice");
    let mut relay = start_relay(&settings);

    let writers = (0..4).map(|writer| {
        let (app, alice) = (&app, &alice);
        async move {
            let mut ids = Vec::new();
            for n in 0..15 {
                let (id, _) = app.create_task(alice, &format!("w{writer} t{n}")).await;
                if n % 2 == 0 {
                    app.complete_task(alice, &id).await;
                }
                ids.push(id);
            }
            ids
        }
    });
    let killer = async {
        // Let the relay get going, then kill it without warning, twice.
        for _ in 0..2 {
            eventually(Duration::from_secs(20), || async {
                let relayed =
                    event_store::relay::checkpoint::load(&app.pool, &settings.common.relay_name)
                        .await
                        .unwrap();
                (relayed.position.global_position > 0).then_some(())
            })
            .await
            .expect("the relay publishes");
            tokio::time::sleep(Duration::from_millis(150)).await;
            relay.kill().await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            relay = start_relay(&settings);
        }
    };
    let (ids, ()) = tokio::join!(join_all(writers), killer);
    let ids: Vec<String> = ids.into_iter().flatten().collect();
    assert_eq!(ids.len(), 60);

    // Every task reaches the version the event store holds for it...
    let versions: Vec<(String, i64)> =
        sqlx::query_as("SELECT aggregate_id, max(sequence) FROM events GROUP BY aggregate_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(versions.len(), 60);
    for (id, version) in &versions {
        app.task_at_version(&alice, id, *version).await;
    }

    // ...and the read model equals a replay of the event store.
    for (id, version) in versions {
        let history = global_log::aggregate_events(&app.pool, "Task", &id, 0, version)
            .await
            .unwrap();
        let mut replayed = Task::default();
        for stored in history {
            let event: TaskEvent = domain::upcast::parse_stored(
                &stored.event_type,
                &stored.event_version,
                stored.event_data(),
            )
            .unwrap();
            replayed.apply(event);
        }
        let row: (String, String, i64) = sqlx::query_as(
            "SELECT title, CASE WHEN deleted_at IS NULL THEN status ELSE 'deleted' END, version
                   FROM task_list WHERE id = $1::uuid",
        )
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        let status = match replayed.status() {
            TaskStatus::Open => "open",
            TaskStatus::Completed => "completed",
            TaskStatus::Deleted => "deleted",
        };
        assert_eq!(
            row,
            (replayed.title().to_owned(), status.to_owned(), version)
        );
    }
    relay.kill().await.unwrap();
}

#[tokio::test]
async fn one_relay_is_active_and_a_standby_takes_over() {
    let settings = fresh_settings().await;
    // The relays run as separate processes, started and killed by the test.
    let app = TestApp::spawn_with(settings.clone(), WITHOUT_RELAY).await;
    let alice = app.token("alice");
    let mut first = start_relay(&settings);
    let mut second = start_relay(&settings);

    let (id, _) = app.create_task(&alice, "relayed by one of two").await;
    app.task_at_version(&alice, &id, 1).await;
    let holders: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND objid::text::bigint = hashtext('taskledger-relay:' || $1)::bigint & 4294967295",
    )
    .bind(&settings.common.relay_name)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(holders, 1, "exactly one relay holds the lock");

    // Whichever was active, stopping the first leaves one relay that carries on.
    first.kill().await.unwrap();
    let (id, _) = app.create_task(&alice, "after one relay died").await;
    app.task_at_version(&alice, &id, 1).await;
    second.kill().await.unwrap();
}

#[tokio::test]
async fn republish_asks_the_running_relay_to_publish_the_log_again() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let (id, _) = app.create_task(&alice, "published twice").await;
    app.task_at_version(&alice, &id, 1).await;
    let published = eventually(Duration::from_secs(10), || async {
        let checkpoint =
            event_store::relay::checkpoint::load(&app.pool, &app.settings.common.relay_name)
                .await
                .unwrap();
        (checkpoint.published >= 1).then_some(checkpoint.published)
    })
    .await
    .expect("the relay published the creation");

    // The running relay takes the request and confirms it.
    let before = event_store::relay::republish(
        &app.pool,
        &app.settings.common.relay_name,
        &app.settings.common.task_events_topic,
    )
    .await
    .unwrap();
    assert_eq!(before, published);

    // The topic now holds the creation twice, with the same CloudEvents id.
    let messages = read_topic(
        &app.kafka(),
        &app.settings.common.task_events_topic,
        Duration::from_secs(20),
        |m| m.len() >= 2,
    )
    .await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].json()["id"], messages[1].json()["id"]);
    // And the read model is unchanged by the duplicate.
    assert_eq!(app.task(&alice, &id).await["version"], 1);
    // Publishing the log again counts nothing again.
    eventually(Duration::from_secs(10), || async {
        let checkpoint =
            event_store::relay::checkpoint::load(&app.pool, &app.settings.common.relay_name)
                .await
                .unwrap();
        (checkpoint.published >= 1).then_some(())
    })
    .await
    .expect("the relay saved the republished creation");
    assert_eq!(
        counted_by_the_relay(&app.pool).await,
        [("alice".to_owned(), 1)]
    );
}

#[tokio::test]
async fn republish_is_taken_while_the_relay_catches_up_on_a_backlog() {
    let settings = fresh_settings().await;
    let app = TestApp::spawn_with(settings.clone(), Roles::API).await;
    let alice = app.token("alice");
    app.create_task(&alice, "template").await;
    // A backlog of 30,000 creations, copied from the first with new ids.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'Task', gen_random_uuid()::text, 1, event_type, event_version, payload, metadata
           FROM (SELECT * FROM events LIMIT 1) AS t, generate_series(1, 30000)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let total = app.event_count().await;

    let shutdown = tokio_util::sync::CancellationToken::new();
    let relay = taskledger::start(&settings, Roles::RELAY, shutdown.clone())
        .await
        .unwrap();
    eventually(Duration::from_secs(20), || async {
        let checkpoint =
            event_store::relay::checkpoint::load(&app.pool, &settings.common.relay_name)
                .await
                .unwrap();
        (checkpoint.published > 0).then_some(())
    })
    .await
    .expect("the relay starts publishing");

    // Asked mid-way, the relay takes the request at once: it starts again from
    // the beginning without finishing the first pass.
    event_store::relay::republish(
        &app.pool,
        &settings.common.relay_name,
        &settings.common.task_events_topic,
    )
    .await
    .expect("the relay takes the request while catching up");
    let generation: i64 =
        sqlx::query_scalar("SELECT generation FROM topic_generations WHERE topic = $1")
            .bind(&settings.common.task_events_topic)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(generation, 1);
    eventually(Duration::from_secs(60), || async {
        let checkpoint =
            event_store::relay::checkpoint::load(&app.pool, &settings.common.relay_name)
                .await
                .unwrap();
        (checkpoint.published >= total).then_some(())
    })
    .await
    .expect("the relay publishes the whole log again");
    // The topic holds the second pass and only the start of the first (the
    // request came as soon as publishing began); a relay that finished its
    // backlog before taking the request would have published everything twice.
    let consumer = app.kafka().consumer("watermarks").unwrap();
    let mut held = 0;
    for partition in 0..settings.common.task_events_partitions {
        let (_, high) = consumer
            .fetch_watermarks(
                &settings.common.task_events_topic,
                partition,
                Duration::from_secs(5),
            )
            .unwrap();
        held += high;
    }
    assert!(
        held < total + total / 2,
        "{held} messages for {total} events: the first pass was finished before the request"
    );
    shutdown.cancel();
    relay.wait().await.unwrap();
}
