//! A backlog of task events stored and published before the projections
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
/// in transactions of 10,000. The copies are plain, as events stored before
/// sealing began (SQL holds no data key; a box copied to another task would
/// not open): what opening costs per event is `./dev bench sealing`'s.
pub async fn preload_created_tasks(pool: &sqlx::PgPool, count: i64) -> anyhow::Result<()> {
    let mut stored = 0;
    while stored < count {
        let chunk = (count - stored).min(10_000);
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             SELECT 'Task', n.id, 1, t.event_type, t.event_version,
                    jsonb_build_object('TaskCreated', (t.payload::jsonb -> 'TaskCreated') - 'sealed'
                        || jsonb_build_object('task_id', n.id, 'user_id', n.owner,
                                              'title', 'backlog task ' || n.i,
                                              'description', NULL, 'tags', '[]'::jsonb))::json,
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

/// What a backlog holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backlog {
    /// Task creations only.
    Creates,
    /// Each task created, edited, tagged and completed: four events, the
    /// kinds spread out as users make them (`preload_mixed_tasks`).
    Mix,
}

/// Stores a backlog of `events` events of `kind` beside a task made through
/// the API (their template), and waits until the relay has published them
/// all: the events on the topic.
pub async fn publish_backlog(app: &BenchApp, events: i64, kind: Backlog) -> anyhow::Result<i64> {
    let client = reqwest::Client::new();
    let token = bench_token("bench")?;
    let run = |query: &'static str, variables: serde_json::Value| {
        let (client, token) = (&client, &token);
        async move {
            graphql(client, &app.url, token, query, variables)
                .await
                .map_err(anyhow::Error::msg)
        }
    };
    let created = run(
        "mutation($t: String!) { createTask(input: {title: $t}) { taskId } }",
        json!({ "t": "template" }),
    )
    .await?;
    let mut template_events = 1;
    let stored = match kind {
        Backlog::Creates => {
            preload_created_tasks(&app.pool, events).await?;
            events
        }
        Backlog::Mix => {
            let id = created["data"]["createTask"]["taskId"].clone();
            run(
                "mutation($id: ID!) { updateTask(input: {id: $id, title: \"template, edited\"}) { version } }",
                json!({ "id": id }),
            )
            .await?;
            run(
                "mutation($id: ID!) { addTags(id: $id, tags: [\"home\", \"errand\"]) { version } }",
                json!({ "id": id }),
            )
            .await?;
            run(
                "mutation($id: ID!) { completeTask(id: $id) { version } }",
                json!({ "id": id }),
            )
            .await?;
            template_events = 4;
            preload_mixed_tasks(&app.pool, events).await?
        }
    };
    let total = stored + template_events;
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

/// Tasks whose four events a mixed backlog stores round by round: each
/// round's events are of one kind, so a projection batch (at most 1,000
/// messages) rarely holds two events of one task, the costliest case.
const MIX_ROUND: i64 = 2_500;

/// Stores about `events` events for 100 users: tasks created, edited, tagged
/// and completed, copied from the template task's four events with new ids
/// and titles. Answers the events stored.
pub async fn preload_mixed_tasks(pool: &sqlx::PgPool, events: i64) -> anyhow::Result<i64> {
    let tasks = events / 4;
    let mut done = 0;
    while done < tasks {
        let chunk = (tasks - done).min(MIX_ROUND);
        let mut tx = pool.begin().await?;
        sqlx::query(
            "CREATE TEMPORARY TABLE mix_tasks ON COMMIT DROP AS
             SELECT i, gen_random_uuid()::text AS id, 'user' || (i % 100) AS owner
               FROM generate_series($1::bigint, $2::bigint) AS i",
        )
        .bind(done)
        .bind(done + chunk - 1)
        .execute(&mut *tx)
        .await?;
        for sequence in 1..=4_i64 {
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                 SELECT 'Task', n.id, t.sequence, t.event_type, t.event_version,
                        CASE t.event_type
                          WHEN 'TaskCreated' THEN jsonb_build_object('TaskCreated',
                              (t.payload::jsonb -> 'TaskCreated') - 'sealed'
                              || jsonb_build_object('task_id', n.id, 'user_id', n.owner,
                                                    'title', 'backlog task ' || n.i,
                                                    'description', NULL, 'tags', '[]'::jsonb))
                          WHEN 'TaskEdited' THEN jsonb_build_object('TaskEdited',
                              (t.payload::jsonb -> 'TaskEdited') - 'sealed'
                              || jsonb_build_object('title', 'backlog task ' || n.i || ', edited',
                                                    'description', NULL))
                          WHEN 'TaskTagsChanged' THEN jsonb_build_object('TaskTagsChanged',
                              (t.payload::jsonb -> 'TaskTagsChanged') - 'sealed'
                              || jsonb_build_object('tags', jsonb_build_array('errand', 'home')))
                          ELSE t.payload::jsonb
                        END::json,
                        jsonb_set(t.metadata::jsonb, '{user_id}', to_jsonb(n.owner))::json
                   FROM (SELECT e.* FROM events e
                          WHERE e.aggregate_id = (SELECT aggregate_id FROM events
                                                   WHERE event_type = 'TaskCreated'
                                                   ORDER BY global_position LIMIT 1)
                            AND e.sequence = $1) AS t,
                        mix_tasks AS n
                  ORDER BY n.i",
            )
            .bind(sequence)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        done += chunk;
    }
    Ok(tasks * 4)
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

/// Waits, up to `within`, until the task list has applied `events` events
/// (a row's version is the number of its task's events).
pub async fn wait_for_task_list(
    app: &BenchApp,
    events: i64,
    within: Duration,
) -> anyhow::Result<()> {
    wait_for(within, "the task list to apply the backlog", || async {
        let held: i64 =
            sqlx::query_scalar("SELECT coalesce(sum(version), 0)::bigint FROM task_list")
                .fetch_one(&app.pool)
                .await?;
        Ok(held >= events)
    })
    .await
}
