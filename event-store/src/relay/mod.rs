//! The relay: publishes committed events from the global log to `task-events`,
//! in commit-safe order, and advances its checkpoint only after the broker has
//! acknowledged the whole batch. One relay is active at a time (a session
//! advisory lock); others stand by until the active one's session ends.
//!
//! The relay also watches the topic: one that holds fewer messages than it had
//! published by its previous check was wiped or replaced, which it reports
//! loudly. [`republish`]
//! starts it again from the beginning of the log: in commit order, so each
//! task's events stay in order, with the same CloudEvents ids, so consumers
//! recognise what they already have. The same restart moves the topic to
//! more partitions when it has fewer than configured (`grow_partitions`).

use std::time::{Duration, Instant};

use chrono::Utc;
use domain::envelope::{task_cloud_event_type, CloudEvent, TaskEventData, TASK_EVENT_SOURCE};
use infra::kafka::{BrokerWatch, Grown, KafkaSettings, Producer};
use infra::single_active;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::cloudevents_headers;
use crate::global_log::{self, LogPosition, StoredEvent};
use checkpoint::RelayCheckpoint;

pub mod checkpoint;

/// The channel on which `taskledger republish` asks the active relay to start
/// again from the beginning, and the one on which the relay confirms it; the
/// payload is the relay's name.
pub const CONTROL_CHANNEL: &str = "taskledger_relay_control";
const CONTROL_DONE_CHANNEL: &str = "taskledger_relay_control_done";

#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Names the checkpoint and the advisory lock; relays with one name are one relay.
    pub name: String,
    pub topic: String,
    pub batch_size: i64,
    /// How often to look for new events when the last look found none
    /// (commits notify nothing: a NOTIFY would make every command's commit
    /// wait for every other's; see docs/adr/0011).
    pub idle_poll: Duration,
    /// The partitions the topic has: created with them when the broker lacks
    /// it, and moved to them on activation when it has fewer.
    pub partitions: i32,
    /// How often to compare the topic's messages with what was published.
    pub topic_check_interval: Duration,
    /// Whether a topic found to have lost messages is published again from the
    /// beginning at once, rather than only reported.
    pub republish_lost: bool,
}

pub struct Relay {
    pool: PgPool,
    kafka: KafkaSettings,
    settings: RelaySettings,
}

impl Relay {
    pub fn new(pool: PgPool, kafka: KafkaSettings, settings: RelaySettings) -> Self {
        Self {
            pool,
            kafka,
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
                    metrics::counter!(infra::metric::RELAY_FAILURES).increment(1);
                    tracing::error!(error = %format_args!("{error:#}"), "relay failed; restarting in 1s");
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
        let key = lock_key(&self.settings.name);
        if !single_active::wait_for_lock(&mut session, &key, &self.settings.name, shutdown).await? {
            return Ok(());
        }
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen_all([CONTROL_CHANNEL]).await?;
        // Before the producer exists, so that it sees the topic as it is now.
        self.grow_partitions(&mut session).await?;
        // A new producer for every activation: after a failure the broker may
        // have forgotten the old one's idempotence state (a restarted broker
        // answers its producer id with UnknownProducerId for good).
        let producer = infra::kafka::DropOffThread::new(self.kafka.producer()?);
        let mut checkpoint = checkpoint::load(&mut session, &self.settings.name).await?;
        tracing::info!(?checkpoint, "relay active");
        let mut topic_check = tokio::time::interval(self.settings.topic_check_interval);
        // The first tick is now: a broker that restarted empty gets its topic
        // back before anything is published to it.
        topic_check.tick().await;
        let published = checkpoint.published;
        self.check_topic(&mut session, &producer, &mut checkpoint, published)
            .await?;
        // What the topic must hold at the next check: the messages
        // acknowledged by this one. Those acknowledged since may not show in
        // the broker's watermarks yet (tansu, under load, reported dozens
        // fewer for longer than a second), which is no loss.
        let mut settled = checkpoint.published;

        let mut lag_measured: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            if lag_measured.is_none_or(|at| at.elapsed() >= Duration::from_secs(2)) {
                record_lag(&mut session, checkpoint.position).await?;
                lag_measured = Some(Instant::now());
            }
            if producer.broker_lost() {
                metrics::gauge!(infra::metric::BROKER_REACHABLE, "role" => "relay").set(0.0);
                anyhow::bail!(
                    "lost every broker connection; a new producer when the broker is back \
                     (it may come back empty)"
                );
            }
            let batch = global_log::read_committed_after(
                &mut session,
                checkpoint.position,
                self.settings.batch_size,
            )
            .await?;
            if let Some(last) = batch.last() {
                self.publish(&producer, &batch).await?;
                metrics::gauge!(infra::metric::BROKER_REACHABLE, "role" => "relay").set(1.0);
                checkpoint = RelayCheckpoint {
                    position: last.position,
                    published: checkpoint.published + batch.len() as i64,
                };
                checkpoint::save(&mut session, &self.settings.name, checkpoint).await?;
                metrics::gauge!(infra::metric::RELAY_GLOBAL_POSITION)
                    .set(checkpoint.position.global_position as f64);
                if batch.len() as i64 == self.settings.batch_size {
                    // Catching up: a republish request is taken now, not at
                    // the end of the backlog (the command waits 10 s for it).
                    if let Ok(notification) =
                        tokio::time::timeout(Duration::ZERO, listener.recv()).await
                    {
                        self.on_notification(&notification?, &mut session, &mut checkpoint)
                            .await?;
                    }
                    continue;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                notification = listener.recv() => {
                    self.on_notification(&notification?, &mut session, &mut checkpoint).await?;
                }
                () = tokio::time::sleep(self.settings.idle_poll) => {}
                _ = topic_check.tick() => {
                    self.check_topic(&mut session, &producer, &mut checkpoint, settled).await?;
                    settled = checkpoint.published;
                }
            }
        }
        Ok(())
    }

    /// A notification on the relay's channels: a republish request for this
    /// relay starts it again from the beginning of the log and confirms; new
    /// events need nothing here (the loop reads them next).
    async fn on_notification(
        &self,
        notification: &sqlx::postgres::PgNotification,
        session: &mut PgConnection,
        checkpoint: &mut RelayCheckpoint,
    ) -> anyhow::Result<()> {
        if notification.channel() != CONTROL_CHANNEL || notification.payload() != self.settings.name
        {
            return Ok(());
        }
        tracing::warn!(
            published = checkpoint.published,
            "republish requested: publishing the whole log again from the beginning"
        );
        *checkpoint = RelayCheckpoint::default();
        checkpoint::restart(session, &self.settings.name, &self.settings.topic).await?;
        metrics::gauge!(infra::metric::RELAY_TOPIC_MISSING).set(0.0);
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CONTROL_DONE_CHANNEL)
            .bind(&self.settings.name)
            .execute(&mut *session)
            .await?;
        Ok(())
    }

    /// A topic with fewer partitions than configured is replaced by one with
    /// as many (infra::kafka's `partitions`), and the whole log published to
    /// it again from the beginning as a new generation: each task's events
    /// land on its new partition in order, and consumers read the new
    /// generation from its start. Run while no producer of this relay exists.
    async fn grow_partitions(&self, session: &mut PgConnection) -> anyhow::Result<()> {
        let (topic, partitions) = (&self.settings.topic, self.settings.partitions);
        if self
            .kafka
            .grow_partitions(session, topic, partitions)
            .await?
            == Grown::Replaced
        {
            checkpoint::restart(session, &self.settings.name, topic).await?;
            infra::kafka::replacement_done(session, topic).await?;
            tracing::warn!(
                %topic,
                partitions,
                "moved the topic to more partitions: publishing the whole log again"
            );
        }
        Ok(())
    }

    /// Checks the topic holds at least the `settled` messages published
    /// and, if it lost some and the relay is set to, starts again from the
    /// beginning of the log.
    async fn check_topic(
        &self,
        session: &mut PgConnection,
        producer: &Producer,
        checkpoint: &mut RelayCheckpoint,
        settled: i64,
    ) -> anyhow::Result<()> {
        if self
            .topic_lost_messages(producer, settled.min(checkpoint.published))
            .await?
            && self.settings.republish_lost
        {
            tracing::warn!("publishing the whole log again from the beginning");
            *checkpoint = RelayCheckpoint::default();
            checkpoint::restart(session, &self.settings.name, &self.settings.topic).await?;
            // The count starts again with the republished log; the next check
            // measures against it.
            metrics::gauge!(infra::metric::RELAY_TOPIC_MISSING).set(0.0);
        }
        Ok(())
    }

    /// Compares the messages the topic holds with what this relay published
    /// and says loudly whether the topic has lost some. A topic the broker no
    /// longer knows is created again. A broker that cannot be asked is left to
    /// the publish path, which fails and retries on its own.
    async fn topic_lost_messages(
        &self,
        producer: &Producer,
        published: i64,
    ) -> anyhow::Result<bool> {
        let started = Instant::now();
        let held = match self.count_messages(producer).await? {
            TopicCount::Unanswered => return Ok(false),
            TopicCount::Held(held) => held,
            TopicCount::Unknown => {
                tracing::error!(topic = %self.settings.topic, "the broker does not know the topic; creating it");
                self.kafka
                    .ensure_topics(&[
                        (self.settings.topic.as_str(), self.settings.partitions),
                        (
                            infra::kafka::dead_letter_topic(&self.settings.topic).as_str(),
                            1,
                        ),
                    ])
                    .await?;
                0
            }
        };
        let missing = (published - held).max(0);
        tracing::debug!(?held, published, elapsed = ?started.elapsed(), "topic checked");
        metrics::gauge!(infra::metric::RELAY_TOPIC_MISSING).set(missing as f64);
        if missing > 0 {
            tracing::error!(
                topic = %self.settings.topic,
                published,
                held,
                missing,
                "the topic holds fewer messages than this relay published: the broker lost \
                 them (wiped or replaced), and consumers reading from the beginning miss \
                 that history. `taskledger republish` publishes it again"
            );
        }
        Ok(missing > 0)
    }

    /// What the broker says the topic holds.
    async fn count_messages(&self, producer: &Producer) -> anyhow::Result<TopicCount> {
        let client: FutureProducer<BrokerWatch> = (**producer).clone();
        let topic = self.settings.topic.clone();
        match tokio::task::spawn_blocking(move || topic_message_count(&client, &topic)).await? {
            Ok(Some(held)) => Ok(TopicCount::Held(held)),
            Ok(None) => Ok(TopicCount::Unknown),
            Err(error) => {
                tracing::debug!(error = %format_args!("{error:#}"), "could not count the topic's messages");
                Ok(TopicCount::Unanswered)
            }
        }
    }

    /// Sends the batch and waits for the broker to acknowledge every message.
    #[tracing::instrument(skip_all, fields(topic = %self.settings.topic, events = batch.len()))]
    async fn publish(&self, producer: &Producer, batch: &[StoredEvent]) -> anyhow::Result<()> {
        let started = Instant::now();
        // The batch's span follows each request it publishes for.
        let span = tracing::Span::current();
        for traceparent in batch
            .iter()
            .filter_map(|event| event.metadata_str("traceparent"))
        {
            infra::trace::link_trace(&span, traceparent);
        }
        let payloads = batch
            .iter()
            .map(|event| serde_json::to_vec(&task_event_message(event)))
            .collect::<Result<Vec<_>, _>>()?;
        let records: Vec<_> = batch
            .iter()
            .zip(&payloads)
            .map(|(event, payload)| {
                FutureRecord::to(&self.settings.topic)
                    .key(event.aggregate_id.as_str())
                    .payload(payload.as_slice())
                    .headers(cloudevents_headers())
                    // The commit time, so consumers can tell how far behind they are.
                    .timestamp(event.recorded_at.timestamp_millis())
            })
            .collect();
        producer.send_all(records).await?;
        let now = Utc::now();
        for event in batch {
            let delay = (now - event.recorded_at).to_std().unwrap_or_default();
            metrics::histogram!(infra::metric::RELAY_DELAY_SECONDS).record(delay.as_secs_f64());
        }
        metrics::counter!(infra::metric::RELAY_PUBLISHED).increment(batch.len() as u64);
        metrics::histogram!(infra::metric::RELAY_BATCH_SECONDS)
            .record(started.elapsed().as_secs_f64());
        tracing::debug!(
            last = ?batch.last().map(|e| e.position),
            "batch acknowledged"
        );
        Ok(())
    }
}

/// How many committed events wait to be published (counted up to 100,000),
/// and the age of the oldest, as gauges.
async fn record_lag(session: &mut PgConnection, after: LogPosition) -> Result<(), sqlx::Error> {
    let (waiting, oldest): (i64, Option<f64>) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM (SELECT FROM events
                  WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
                  LIMIT 100000) AS waiting),
                (SELECT extract(epoch FROM now() - recorded_at)::float8 FROM events
                  WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
                  ORDER BY transaction_id, global_position LIMIT 1)",
    )
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .fetch_one(&mut *session)
    .await?;
    metrics::gauge!(infra::metric::RELAY_LAG_EVENTS).set(waiting as f64);
    metrics::gauge!(infra::metric::RELAY_OLDEST_UNPUBLISHED_SECONDS).set(oldest.unwrap_or(0.0));
    Ok(())
}

/// How many messages a topic holds, as far as the broker can say.
enum TopicCount {
    /// The sum of its partitions' high watermarks.
    Held(i64),
    /// The broker does not know the topic.
    Unknown,
    /// The broker could not be asked.
    Unanswered,
}

/// How many messages `topic` has ever held: the sum of its partitions' high
/// watermarks (tansu, like Kafka without retention, deletes none); `None` for
/// a topic the broker does not know. Blocking.
fn topic_message_count(
    producer: &FutureProducer<BrokerWatch>,
    topic: &str,
) -> anyhow::Result<Option<i64>> {
    let watermarks =
        infra::kafka::topic_watermarks(producer.client(), topic, Duration::from_secs(5))?;
    Ok(watermarks.map(|partitions| partitions.iter().map(|(_, high)| high).sum()))
}

/// Asks relay `name` to publish the whole log again from the beginning. With
/// no relay active, resets its checkpoint directly; otherwise the active relay
/// does it on notice and confirms. Returns how many messages the relay had
/// published before.
pub async fn republish(pool: &PgPool, name: &str, topic: &str) -> anyhow::Result<i64> {
    let mut session = pool.acquire().await?;
    let before = checkpoint::load(&mut *session, name).await?;
    let key = lock_key(name);
    if single_active::try_lock(&mut session, &key).await? {
        let reset = checkpoint::restart(&mut session, name, topic).await;
        single_active::unlock(&mut session, &key).await?;
        reset?;
        return Ok(before.published);
    }
    let mut done = PgListener::connect_with(pool).await?;
    done.listen(CONTROL_DONE_CHANNEL).await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CONTROL_CHANNEL)
        .bind(name)
        .execute(&mut *session)
        .await?;
    let confirmed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if done.recv().await?.payload() == name {
                return Ok::<_, sqlx::Error>(());
            }
        }
    })
    .await;
    match confirmed {
        Ok(result) => result.map(|()| before.published).map_err(Into::into),
        Err(_) => anyhow::bail!("the active relay did not confirm within 10 s"),
    }
}

/// The advisory lock that makes relays of one name one relay.
fn lock_key(name: &str) -> String {
    format!("taskledger-relay:{name}")
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
        traceparent: event.metadata_str("traceparent").map(str::to_owned),
        data: TaskEventData {
            event_type: event.event_type.clone(),
            task_id: event.aggregate_id.clone(),
            task_data: event.event_data(),
            user_id: event.metadata_str("user_id").unwrap_or_default().to_owned(),
            timestamp: event.recorded_at,
            sequence: event.sequence,
            global_position: event.position.global_position,
            schema_version: event.event_version.clone(),
        },
    }
}
