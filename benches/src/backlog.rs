//! A backlog of task creations stored and published before the projections
//! start, the bare consumer that reads it as a baseline, and the wait for
//! the task list to apply it: the pipeline and scale benchmarks' first phase.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use crate::{bench_token, graphql, wait_for, BenchApp};

/// Every role but the projections and the scheduler: the backlog is
/// published before anything applies it.
pub const WITHOUT_PROJECTIONS: taskledger::Roles = taskledger::Roles {
    project: false,
    scheduler: false,
    ..taskledger::Roles::ALL
};

/// Stores `count` TaskCreated events for 100 users, copied from a task's
/// creation already in the store (create one first) with new ids and titles,
/// in transactions of 10,000.
pub async fn preload_created_tasks(pool: &sqlx::PgPool, count: i64) -> anyhow::Result<()> {
    let mut stored = 0;
    while stored < count {
        let chunk = (count - stored).min(10_000);
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             SELECT 'Task', n.id, 1, t.event_type, t.event_version,
                    jsonb_set(jsonb_set(jsonb_set(t.payload::jsonb,
                        '{TaskCreated,title}', to_jsonb('backlog task ' || n.i)),
                        '{TaskCreated,task_id}', to_jsonb(n.id)),
                        '{TaskCreated,user_id}', to_jsonb(n.owner))::json,
                    jsonb_set(t.metadata::jsonb, '{user_id}', to_jsonb(n.owner))::json
               FROM (SELECT * FROM events WHERE event_type = 'TaskCreated' LIMIT 1) t,
                    (SELECT i, gen_random_uuid()::text AS id, 'user' || (i % 100) AS owner
                       FROM generate_series($1::bigint, $2::bigint) AS i) AS n",
        )
        .bind(stored)
        .bind(stored + chunk - 1)
        .execute(pool)
        .await?;
        stored += chunk;
    }
    Ok(())
}

/// Stores a backlog of `events` task creations beside one made through the
/// API (their template), and waits until the relay has published them all:
/// the events on the topic.
pub async fn publish_backlog(app: &BenchApp, events: i64) -> anyhow::Result<i64> {
    graphql(
        &reqwest::Client::new(),
        &app.url,
        &bench_token("bench")?,
        "mutation($t: String!) { createTask(input: {title: $t}) { taskId } }",
        json!({ "t": "template" }),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    preload_created_tasks(&app.pool, events).await?;
    let total = events + 1;
    wait_for(
        Duration::from_secs(300),
        "the relay to publish the backlog",
        || async {
            let published: Option<i64> =
                sqlx::query_scalar("SELECT max(published) FROM relay_checkpoints")
                    .fetch_one(&app.pool)
                    .await?;
            Ok(published.unwrap_or(0) >= total)
        },
    )
    .await?;
    Ok(total)
}

/// Reads `total` messages of the app's task-events topic with a consumer
/// that does nothing else: events/s, the baseline of a projection's rate.
pub async fn bare_consumer_rate(app: &BenchApp, total: i64) -> anyhow::Result<f64> {
    use rdkafka::consumer::Consumer;

    let consumer: infra::kafka::KafkaConsumer = app
        .settings
        .common
        .kafka()
        .consumer(&format!("bench-baseline-{}", uuid::Uuid::new_v4()))?;
    consumer.subscribe(&[&app.settings.common.task_events_topic])?;
    let started = Instant::now();
    let mut read = 0;
    while read < total {
        tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .context("the baseline consumer stalled")??;
        read += 1;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Waits, up to `within`, until the task list holds `rows` rows.
pub async fn wait_for_task_list(app: &BenchApp, rows: i64, within: Duration) -> anyhow::Result<()> {
    wait_for(within, "the task list to apply the backlog", || async {
        let held: i64 = sqlx::query_scalar("SELECT count(*) FROM task_list")
            .fetch_one(&app.pool)
            .await?;
        Ok(held >= rows)
    })
    .await
}
