//! The relay: publishes committed events from the global log to `task-events`,
//! in commit-safe order, and advances its checkpoint only after the broker has
//! acknowledged the whole batch. One relay is active at a time (a session
//! advisory lock); others stand by until the active one's session ends.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use domain::envelope::{
    task_cloud_event_type, CloudEvent, TaskEventData, CLOUDEVENTS_CONTENT_TYPE, TASK_EVENT_SOURCE,
};
use futures::future::try_join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::global_log::{self, LogPosition, StoredEvent};

/// The channel the `events` insert trigger notifies on commit.
pub const EVENTS_CHANNEL: &str = "taskledger_events";

#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Names the checkpoint and the advisory lock; relays with one name are one relay.
    pub name: String,
    pub topic: String,
    pub batch_size: i64,
    /// How often to look for events when no notification arrives, for example
    /// after a long transaction unrelated to events held the horizon back.
    pub idle_poll: Duration,
}

pub struct Relay {
    pool: PgPool,
    producer: FutureProducer,
    settings: RelaySettings,
}

impl Relay {
    pub fn new(pool: PgPool, producer: FutureProducer, settings: RelaySettings) -> Self {
        Self {
            pool,
            producer,
            settings,
        }
    }

    /// Runs until `shutdown` is cancelled, restarting after failures.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(relay = %self.settings.name, topic = %self.settings.topic, "relay starting");
        loop {
            match self.run_while_active(&shutdown).await {
                Ok(()) => break,
                Err(error) => {
                    metrics::counter!("taskledger_relay_failures_total").increment(1);
                    tracing::error!(error = ?error, "relay failed; restarting in 1s");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        tracing::info!(relay = %self.settings.name, "relay stopped: shutdown requested");
    }

    async fn run_while_active(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        // All reads and checkpoint writes go through the session holding the lock:
        // if that session dies, the lock and this relay's work end together.
        let mut session = self.pool.acquire().await?.detach();
        if !self.wait_for_lock(&mut session, shutdown).await? {
            return Ok(());
        }
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(EVENTS_CHANNEL).await?;
        let mut checkpoint = global_log::load_checkpoint(&mut session, &self.settings.name).await?;
        tracing::info!(?checkpoint, "relay active");

        while !shutdown.is_cancelled() {
            let batch = global_log::read_committed_after(
                &mut session,
                checkpoint,
                self.settings.batch_size,
            )
            .await?;
            if let Some(last) = batch.last() {
                self.publish(&batch).await?;
                checkpoint = last.position;
                global_log::save_checkpoint(&mut session, &self.settings.name, checkpoint).await?;
                metrics::gauge!("taskledger_relay_global_position")
                    .set(checkpoint.global_position as f64);
                if batch.len() as i64 == self.settings.batch_size {
                    continue;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                notification = listener.recv() => { notification?; }
                () = tokio::time::sleep(self.settings.idle_poll) => {}
            }
        }
        Ok(())
    }

    /// Waits until this relay holds the advisory lock; `false` if shut down first.
    async fn wait_for_lock(
        &self,
        session: &mut PgConnection,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<bool> {
        let mut announced = false;
        loop {
            let acquired: bool = sqlx::query_scalar(
                "SELECT pg_try_advisory_lock(hashtext('taskledger-relay:' || $1))",
            )
            .bind(&self.settings.name)
            .fetch_one(&mut *session)
            .await?;
            if acquired {
                return Ok(true);
            }
            if !announced {
                tracing::info!("another relay is active; standing by");
                announced = true;
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(false),
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Sends the batch and waits for the broker to acknowledge every message.
    #[tracing::instrument(skip_all, fields(topic = %self.settings.topic, events = batch.len()))]
    async fn publish(&self, batch: &[StoredEvent]) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut deliveries = Vec::with_capacity(batch.len());
        for event in batch {
            let payload = serde_json::to_vec(&task_event_message(event))?;
            let headers = OwnedHeaders::new().insert(Header {
                key: "content-type",
                value: Some(CLOUDEVENTS_CONTENT_TYPE),
            });
            let record = FutureRecord::to(&self.settings.topic)
                .key(event.aggregate_id.as_str())
                .payload(&payload)
                .headers(headers);
            let delivery = self
                .producer
                .send_result(record)
                .map_err(|(error, _)| error)
                .context("enqueueing a message")?;
            deliveries.push(delivery);
        }
        for outcome in try_join_all(deliveries)
            .await
            .context("producer dropped a delivery")?
        {
            outcome
                .map_err(|(error, _)| error)
                .context("broker refused a message")?;
        }
        let now = Utc::now();
        for event in batch {
            let delay = (now - event.recorded_at).to_std().unwrap_or_default();
            metrics::histogram!("taskledger_relay_delay_seconds").record(delay.as_secs_f64());
        }
        metrics::counter!("taskledger_relay_published_total").increment(batch.len() as u64);
        metrics::histogram!("taskledger_relay_batch_seconds")
            .record(started.elapsed().as_secs_f64());
        tracing::debug!(
            last = ?batch.last().map(|e| e.position),
            "batch acknowledged"
        );
        Ok(())
    }
}

/// The CloudEvents message for one stored event.
pub fn task_event_message(event: &StoredEvent) -> CloudEvent<TaskEventData> {
    CloudEvent {
        specversion: "1.0".into(),
        id: event.event_id.to_string(),
        source: TASK_EVENT_SOURCE.into(),
        event_type: task_cloud_event_type(&event.event_type, &event.event_version),
        subject: event.aggregate_id.clone(),
        time: event.recorded_at,
        datacontenttype: "application/json".into(),
        correlationid: event.metadata_str("correlation_id").map(str::to_owned),
        data: TaskEventData {
            event_type: event.event_type.clone(),
            task_id: event.aggregate_id.clone(),
            task_data: event.event_data(),
            user_id: event.metadata_str("user_id").unwrap_or_default().to_owned(),
            timestamp: event.recorded_at,
            sequence: u64::try_from(event.sequence).unwrap_or_default(),
            global_position: event.position.global_position,
            schema_version: event.event_version.clone(),
        },
    }
}

/// Keeps `LogPosition` in the public API of this module for callers that
/// inspect where a relay stands.
pub async fn checkpoint_of(pool: &PgPool, relay: &str) -> Result<LogPosition, sqlx::Error> {
    global_log::load_checkpoint(pool, relay).await
}
