//! An example analytics consumer, for teams that read Taskledger's topics
//! (see `docs/analytics.md`): completed tasks per day per user.
//!
//! - Its own consumer group, new to the topic, so it starts from the
//!   beginning and sees the whole history.
//! - Every message is validated against the published JSON Schema
//!   (`docs/schemas/task-event.schema.json`); one that does not match is
//!   counted and skipped, never guessed at.
//! - Each completion is stored under its CloudEvents `id` (the stored event's
//!   id), so a redelivered message, or the whole topic read again, counts once.
//! - Offsets are committed to Kafka after the row is stored: at least once,
//!   made effectively once by the `id`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use infra::kafka::KafkaSettings;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::Message;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The published schema of a `task-events` message.
pub const TASK_EVENT_SCHEMA: &str = include_str!("../../docs/schemas/task-event.schema.json");

/// What the consumer has seen so far.
#[derive(Debug, Default)]
pub struct Counters {
    pub messages: AtomicU64,
    pub invalid: AtomicU64,
    pub completions: AtomicU64,
}

/// The example's own table (it owns no migration of Taskledger's).
pub async fn prepare(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS analytics_completions (
             event_id uuid PRIMARY KEY,
             user_id  text NOT NULL,
             day      date NOT NULL)",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Consumes `topic` as consumer group `group` until `shutdown`.
pub async fn run(
    pool: PgPool,
    kafka: KafkaSettings,
    topic: &str,
    group: &str,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    prepare(&pool).await?;
    let schema: Value = serde_json::from_str(TASK_EVENT_SCHEMA)?;
    let validator = jsonschema::validator_for(&schema).context("the published schema compiles")?;
    let consumer = kafka.consumer(group)?;
    consumer.subscribe(&[topic])?;
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "consumer error");
                continue;
            }
        };
        counters.messages.fetch_add(1, Ordering::Relaxed);
        let event: Option<Value> = message
            .payload()
            .and_then(|payload| serde_json::from_slice(payload).ok());
        match event {
            Some(event) if validator.is_valid(&event) => {
                if event["data"]["event_type"] == "TaskCompleted" && store(&pool, &event).await? {
                    counters.completions.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {
                counters.invalid.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    partition = message.partition(),
                    offset = message.offset(),
                    "skipping a message that does not match the published schema"
                );
            }
        }
        consumer.commit_message(&message, CommitMode::Async)?;
    }
}

/// Stores one completion; false if its id was stored before (a redelivery).
async fn store(pool: &PgPool, event: &Value) -> anyhow::Result<bool> {
    let id =
        Uuid::parse_str(event["id"].as_str().unwrap_or_default()).context("a CloudEvents id")?;
    let user = event["data"]["user_id"].as_str().unwrap_or_default();
    let at: DateTime<Utc> = serde_json::from_value(event["data"]["timestamp"].clone())?;
    let stored = sqlx::query(
        "INSERT INTO analytics_completions (event_id, user_id, day) VALUES ($1, $2, $3)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(id)
    .bind(user)
    .bind(at.date_naive())
    .execute(pool)
    .await?
    .rows_affected();
    Ok(stored == 1)
}

/// Completed tasks per day per user, by day then user.
pub async fn completions_per_day(
    pool: &PgPool,
) -> Result<Vec<(NaiveDate, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT day, user_id, count(*) FROM analytics_completions
          GROUP BY day, user_id ORDER BY day, user_id",
    )
    .fetch_all(pool)
    .await
}
