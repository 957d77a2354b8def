//! The consumer runtime every projection runs on. Delivery from Kafka is at
//! least once; effectively-once comes from each projection applying an event
//! only at its task's next sequence (or, for side effects, from deterministic
//! ids), and from storing each partition's next offset in Postgres in the same
//! transaction as the read-model change.
//! A message that cannot be processed goes to `<topic>.dlq` with the reason.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use domain::envelope::{CloudEvent, TaskEventData};
use event_store::kafka::{dead_letter_topic, KafkaSettings};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use sha2::Digest;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

/// The task event as projections receive it.
pub type TaskEventMessage = CloudEvent<TaskEventData>;

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The read model already reflects this event (a redelivery).
    Duplicate,
    /// An unprocessable message this projection already dead-lettered.
    AlreadyConsumed,
    /// Nothing for this projection to do with this event.
    Ignored,
    DeadLettered,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::AlreadyConsumed => "already_consumed",
            Self::Ignored => "ignored",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The message can never be applied; it goes to the dead-letter topic.
    #[error("{0}")]
    Invalid(String),
    /// A transient failure; the message is retried.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Another transient failure (a command that lost a race, say); retried.
    #[error("{0}")]
    Transient(String),
}

/// A read model fed by `task-events`.
pub trait Projection: Send + Sync + 'static {
    /// Names the consumer group and this projection's offset rows.
    fn name(&self) -> &'static str;

    /// Applies one event inside the transaction that will also record its offset.
    fn apply(
        &self,
        tx: &mut PgConnection,
        event: &TaskEventMessage,
    ) -> impl Future<Output = Result<Outcome, ProjectionError>> + Send;
}

#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub topic: String,
    /// Each projection consumes in its own group, `<prefix>-<projection name>`;
    /// the prefix defaults to `taskledger`.
    pub group_prefix: Option<String>,
}

pub struct ProjectionConsumer<P> {
    pool: PgPool,
    consumer: ClosedOffThread,
    dead_letters: FutureProducer,
    topic: String,
    projection: P,
}

impl<P: Projection> ProjectionConsumer<P> {
    pub fn new(
        pool: PgPool,
        kafka: &KafkaSettings,
        settings: ConsumerSettings,
        projection: P,
    ) -> Result<Self, KafkaError> {
        let prefix = settings.group_prefix.as_deref().unwrap_or("taskledger");
        let group = format!("{prefix}-{}", projection.name());
        Ok(Self {
            pool,
            consumer: ClosedOffThread(Some(kafka.consumer(&group)?)),
            dead_letters: kafka.producer()?,
            topic: settings.topic,
            projection,
        })
    }

    /// Consumes until `shutdown` is cancelled. A message is finished (committed
    /// or dead-lettered) before the next one starts.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let name = self.projection.name();
        self.consumer
            .subscribe(&[&self.topic])
            .with_context(|| format!("subscribing to {}", self.topic))?;
        tracing::info!(projection = name, topic = %self.topic, "projection consuming");
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => break,
                message = self.consumer.recv() => message,
            };
            match message {
                Ok(message) => self.handle_until_done(&message, &shutdown).await,
                Err(error) => {
                    tracing::warn!(projection = name, error = %error, "consumer error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        tracing::info!(projection = name, "projection stopped: shutdown requested");
        Ok(())
    }

    /// Retries transient failures with backoff; only shutdown interrupts.
    async fn handle_until_done(&self, message: &BorrowedMessage<'_>, shutdown: &CancellationToken) {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.handle(message).await {
                Ok(outcome) => {
                    metrics::counter!(
                        event_store::metric::PROJECTION_MESSAGES,
                        "projection" => self.projection.name(),
                        "outcome" => outcome.as_str()
                    )
                    .increment(1);
                    // Postgres holds the truth; this only saves re-reading after a restart.
                    if let Err(error) = self.consumer.commit_message(message, CommitMode::Async) {
                        tracing::debug!(error = %error, "could not commit the offset to Kafka");
                    }
                    return;
                }
                Err(error) => {
                    tracing::error!(
                        projection = self.projection.name(),
                        partition = message.partition(),
                        offset = message.offset(),
                        error = ?error,
                        "could not process message; retrying"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    #[tracing::instrument(skip_all, fields(projection = self.projection.name(), topic = %self.topic, partition = message.partition(), offset = message.offset(), task_id = tracing::field::Empty))]
    async fn handle(&self, message: &BorrowedMessage<'_>) -> anyhow::Result<Outcome> {
        let (partition, offset) = (message.partition(), message.offset());
        let mut tx = self.pool.begin().await?;
        // Duplicates are recognised by each task's sequence, not by offset: a
        // recreated topic starts its offsets again, and skipping by offset
        // would then drop new messages. The stored offset only keeps a message
        // from being dead-lettered twice.
        let seen = self.already_consumed(&mut tx, partition, offset).await?;

        let outcome = match decode(message) {
            Err(_) if seen => Outcome::AlreadyConsumed,
            Err(reason) => {
                self.dead_letter(message, &reason).await?;
                Outcome::DeadLettered
            }
            Ok(event) => {
                let task_id = event.data.task_id.as_str();
                tracing::Span::current().record("task_id", task_id);
                match self.projection.apply(&mut tx, &event).await {
                    Ok(outcome) => outcome,
                    Err(ProjectionError::Database(error)) if !is_data_error(&error) => {
                        return Err(error.into())
                    }
                    Err(ProjectionError::Transient(reason)) => anyhow::bail!(reason),
                    Err(ProjectionError::Database(error)) => {
                        // The data itself is refused: retrying cannot help.
                        tx.rollback().await?;
                        tx = self.pool.begin().await?;
                        if self.already_consumed(&mut tx, partition, offset).await? {
                            return Ok(Outcome::AlreadyConsumed);
                        }
                        self.dead_letter(message, &format!("the read model refused it: {error}"))
                            .await?;
                        Outcome::DeadLettered
                    }
                    Err(ProjectionError::Invalid(reason)) => {
                        // Undo whatever part was written; keep only the offset.
                        tx.rollback().await?;
                        tx = self.pool.begin().await?;
                        if self.already_consumed(&mut tx, partition, offset).await? {
                            return Ok(Outcome::AlreadyConsumed);
                        }
                        self.dead_letter(message, &reason).await?;
                        Outcome::DeadLettered
                    }
                }
            }
        };

        sqlx::query(
            "INSERT INTO projection_offsets (projection, topic, partition, next_offset)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (projection, topic, partition) DO UPDATE
                SET next_offset = GREATEST(projection_offsets.next_offset, EXCLUDED.next_offset),
                    updated_at = now()",
        )
        .bind(self.projection.name())
        .bind(&self.topic)
        .bind(partition)
        .bind(offset + 1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Locks this partition's offset row and says whether `offset` is behind it.
    async fn already_consumed(
        &self,
        tx: &mut PgConnection,
        partition: i32,
        offset: i64,
    ) -> Result<bool, sqlx::Error> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT next_offset FROM projection_offsets
              WHERE projection = $1 AND topic = $2 AND partition = $3
              FOR UPDATE",
        )
        .bind(self.projection.name())
        .bind(&self.topic)
        .bind(partition)
        .fetch_optional(&mut *tx)
        .await?;
        Ok(next.is_some_and(|next| offset < next))
    }

    /// Publishes the message unchanged to `<topic>.dlq`, with why and where
    /// from. A message the dead-letter topic will not take whole (too large)
    /// goes there cut to [`DEAD_LETTER_MAX_PAYLOAD`] bytes, with its size and
    /// SHA-256: consumption never stops on a message that can be neither
    /// applied nor dead-lettered.
    async fn dead_letter(&self, message: &BorrowedMessage<'_>, reason: &str) -> anyhow::Result<()> {
        tracing::warn!(reason, "dead-lettering message");
        match self.publish_dead_letter(message, reason, None).await {
            Ok(()) => Ok(()),
            Err(error) if is_too_large(&error) => {
                let payload = message.payload().unwrap_or_default();
                let digest = sha2::Sha256::digest(payload);
                let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
                tracing::warn!(
                    size = payload.len(),
                    sha256 = %hex,
                    "the dead-letter topic refused the whole message; sending it cut short"
                );
                self.publish_dead_letter(message, reason, Some((payload.len(), hex)))
                    .await
                    .map_err(Into::into)
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn publish_dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        reason: &str,
        truncated: Option<(usize, String)>,
    ) -> Result<(), KafkaError> {
        let dlq = dead_letter_topic(&self.topic);
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let mut headers = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for header in original.iter() {
                headers = headers.insert(header);
            }
        }
        let mut headers = headers
            .insert(Header {
                key: "dlq-reason",
                value: Some(reason),
            })
            .insert(Header {
                key: "dlq-source-topic",
                value: Some(self.topic.as_str()),
            })
            .insert(Header {
                key: "dlq-source-partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "dlq-source-offset",
                value: Some(offset.as_str()),
            })
            .insert(Header {
                key: "dlq-projection",
                value: Some(self.projection.name()),
            });
        let size;
        if let Some((original_size, sha256)) = &truncated {
            size = original_size.to_string();
            headers = headers
                .insert(Header {
                    key: "dlq-truncated-from-bytes",
                    value: Some(size.as_str()),
                })
                .insert(Header {
                    key: "dlq-original-sha256",
                    value: Some(sha256.as_str()),
                });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&dlq).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            let cut = if truncated.is_some() {
                &payload[..payload.len().min(DEAD_LETTER_MAX_PAYLOAD)]
            } else {
                payload
            };
            record = record.payload(cut);
        }
        self.dead_letters
            .send(record, Duration::from_secs(10))
            .await
            .map(|_| ())
            .map_err(|(error, _)| error)
    }
}

/// How much of a message too large for the dead-letter topic is kept there.
pub const DEAD_LETTER_MAX_PAYLOAD: usize = 64 * 1024;

/// Whether the producer or the broker refused a message for its size.
fn is_too_large(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize)
    )
}

/// A consumer that leaves its group on a thread of its own when dropped.
/// Closing waits for the broker to confirm, and a broker that restarted may
/// never do so: a role that stops, or a runtime that shuts down, must not hang
/// on it.
struct ClosedOffThread(Option<StreamConsumer>);

impl std::ops::Deref for ClosedOffThread {
    type Target = StreamConsumer;

    fn deref(&self) -> &StreamConsumer {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for ClosedOffThread {
    fn drop(&mut self) {
        if let Some(consumer) = self.0.take() {
            let spawned = std::thread::Builder::new()
                .name("consumer-close".into())
                .spawn(move || drop(consumer));
            if let Err(error) = spawned {
                tracing::warn!(%error, "could not close the consumer off-thread");
            }
        }
    }
}

/// Errors of SQLSTATE classes 22 (data exception) and 23 (integrity
/// constraint violation): the same message would fail the same way again.
fn is_data_error(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code.starts_with("22") || code.starts_with("23"))
}

/// Parses and sanity-checks a message: untrusted bytes become a task event or a
/// reason to dead-letter them.
fn decode(message: &BorrowedMessage<'_>) -> Result<TaskEventMessage, String> {
    let payload = message.payload().ok_or("message has no payload")?;
    let event: TaskEventMessage =
        serde_json::from_slice(payload).map_err(|e| format!("not a task event CloudEvent: {e}"))?;
    if event.specversion != "1.0" {
        return Err(format!(
            "unsupported CloudEvents specversion {}",
            event.specversion
        ));
    }
    if event.subject != event.data.task_id {
        return Err("subject and data.task_id differ".into());
    }
    if message
        .key()
        .is_some_and(|key| key != event.data.task_id.as_bytes())
    {
        return Err("message key is not the task id".into());
    }
    if event.data.sequence < 1 {
        return Err("sequence must be at least 1".into());
    }
    Ok(event)
}
