//! The consumer runtime every projection runs on.
//!
//! Where a projection stands is the offsets it stores in Postgres, in the same
//! transaction as its read-model changes, and nothing else (docs/adr/0002):
//! one process at a time runs a projection (a session advisory lock, as the
//! relay), assigns itself every partition of the topic and seeks each to the
//! stored offset, so a crash, a rebalance or a broker that forgot its
//! committed offsets can neither skip nor repeat work. Offsets are also
//! committed to the broker, only so that Kafka tools can show the lag.
//!
//! Messages are applied in batches: whatever a poll returns, up to a bound in
//! count and time, in one transaction with the offsets of every partition it
//! touched. A message the projection cannot apply is isolated by applying the
//! batch again one message at a time, and goes to `<topic>.dlq` with the
//! reason; the rest of the batch is applied.
//!
//! Anything that goes wrong beyond one message (the database, the session,
//! the broker, a consumer that stops making progress while its partitions
//! hold messages) ends the activation: the runtime starts again from the
//! offsets in Postgres with a new consumer.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use domain::envelope::{CloudEvent, TaskEventData};
use infra::kafka::{dead_letter_topic, DropOffThread, KafkaConsumer, KafkaSettings, Producer};
use infra::single_active;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, TopicPartitionList};
use sha2::Digest;
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use infra::metric;

/// The task event as projections receive it.
pub type TaskEventMessage = CloudEvent<TaskEventData>;

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The read model already reflects this event (a redelivery).
    Duplicate,
    /// Behind this projection's stored offset: already handled.
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

impl ProjectionError {
    /// Whether applying the same message again can only fail the same way:
    /// refused as invalid, or refused by the database for its data (SQLSTATE
    /// classes 22, data exception, and 23, integrity constraint violation).
    fn is_permanent(&self) -> bool {
        match self {
            Self::Invalid(_) => true,
            Self::Database(error) => error
                .as_database_error()
                .and_then(|e| e.code())
                .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
            Self::Transient(_) => false,
        }
    }
}

/// What a topic carries, parsed from untrusted bytes: a message that cannot
/// be decoded is dead-lettered with the reason.
pub trait ConsumedMessage: Sized + Send + Sync + 'static {
    fn decode(message: &OwnedMessage) -> Result<Self, String>;

    /// The W3C trace context the message carries, if any.
    fn traceparent(&self) -> Option<&str> {
        None
    }
}

/// A read model fed by one topic.
pub trait Projection: Send + Sync + 'static {
    type Message: ConsumedMessage;

    /// Names the lock, the consumer group and this projection's offset rows.
    fn name(&self) -> &'static str;

    /// Applies one event inside the transaction that will also record its offset.
    fn apply(
        &self,
        tx: &mut PgConnection,
        event: &Self::Message,
    ) -> impl Future<Output = Result<Outcome, ProjectionError>> + Send;

    /// Applies a batch in order, one outcome per event. A projection that can
    /// do a batch in fewer statements overrides this. If any event fails, the
    /// runtime undoes the whole call and applies the events one at a time.
    fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[Self::Message],
    ) -> impl Future<Output = Result<Vec<Outcome>, ProjectionError>> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(events.len());
            for event in events {
                outcomes.push(self.apply(tx, event).await?);
            }
            Ok(outcomes)
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub topic: String,
    /// The broker-side group, `<prefix>-<projection name>`, that offsets are
    /// committed under for monitoring; the prefix defaults to `taskledger`.
    pub group_prefix: Option<String>,
    /// The most messages applied in one transaction.
    pub batch_max: usize,
    /// How long a batch waits to fill after its first message.
    pub batch_window: Duration,
    /// A consumer that applies nothing for this long while its partitions
    /// hold messages is replaced.
    pub stall_timeout: Duration,
    /// How often lag, the topic's partitions and its generation are checked.
    pub check_interval: Duration,
}

impl ConsumerSettings {
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            group_prefix: None,
            batch_max: 1_000,
            batch_window: Duration::from_millis(5),
            stall_timeout: Duration::from_secs(30),
            check_interval: Duration::from_secs(2),
        }
    }
}

pub struct ProjectionConsumer<P> {
    pool: PgPool,
    kafka: KafkaSettings,
    group: String,
    settings: ConsumerSettings,
    projection: P,
}

/// One activation's clients: a new consumer and dead-letter producer each
/// time, since a broker that restarted may have forgotten the old ones.
struct Clients {
    consumer: DropOffThread<KafkaConsumer>,
    dead_letters: DropOffThread<Producer>,
}

impl Clients {
    /// Whether either client lost every broker connection since it started.
    fn lost_broker(&self) -> bool {
        self.consumer.context().broker_lost() || self.dead_letters.broker_lost()
    }
}

/// What the runtime knows of each assigned partition.
#[derive(Debug, Default)]
struct Partitions {
    /// The next offset to apply, per partition, as stored with the read model.
    next: HashMap<i32, i64>,
    last_progress: Option<Instant>,
}

impl<P: Projection> ProjectionConsumer<P> {
    pub fn new(
        pool: PgPool,
        kafka: &KafkaSettings,
        settings: ConsumerSettings,
        projection: P,
    ) -> Self {
        let prefix = settings.group_prefix.as_deref().unwrap_or("taskledger");
        let group = format!("{prefix}-{}", projection.name());
        Self {
            pool,
            kafka: kafka.clone(),
            group,
            settings,
            projection,
        }
    }

    /// Consumes until `shutdown` is cancelled, starting again from the offsets
    /// in Postgres after any failure.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let name = self.projection.name();
        loop {
            match self.run_while_active(&shutdown).await {
                Ok(()) => break,
                Err(error) => {
                    metrics::counter!(metric::PROJECTION_RESTARTS, "projection" => name)
                        .increment(1);
                    tracing::error!(
                        projection = name,
                        error = %format_args!("{error:#}"),
                        "projection failed; starting again from its offsets in Postgres in 1s"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        tracing::info!(projection = name, "projection stopped: shutdown requested");
        Ok(())
    }

    async fn run_while_active(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let name = self.projection.name();
        let topic = self.settings.topic.as_str();
        // Every batch runs on the session that holds the lock: if it dies, the
        // lock and this projector's work end together.
        let mut session = self.pool.acquire().await?.detach();
        let key = format!("taskledger-projection:{name}");
        if !single_active::wait_for_lock(&mut session, &key, name, shutdown).await? {
            return Ok(());
        }
        let consumer = DropOffThread::new(self.kafka.assigned_consumer(&self.group)?);
        let generation = single_active::topic_generation(&mut session, topic).await?;
        let Some(watermarks) = self.wait_for_topic(&consumer, shutdown).await? else {
            return Ok(());
        };
        // Made once the broker answers, so it starts with no broker loss to
        // report.
        let clients = Clients {
            consumer,
            dead_letters: DropOffThread::new(self.kafka.producer()?),
        };
        let count = watermarks.len() as i32;
        let mut partitions = Partitions {
            next: self.stored_offsets(&mut session, generation).await?,
            last_progress: None,
        };
        for (partition, &(low, high)) in (0..).zip(&watermarks) {
            let Some(&stored) = partitions.next.get(&partition) else {
                continue;
            };
            if stored > high {
                // The partition ends before where this projection stood: the
                // topic is not the one the offsets were taken on (a broker that
                // lost it). Its messages are read again; the read model already
                // holds what it has seen, and recognises it by sequence.
                tracing::warn!(
                    projection = name,
                    partition,
                    stored,
                    end = high,
                    "the partition ends before the stored offset: the topic was replaced; \
                     reading it again from the beginning"
                );
            } else if stored < low {
                // Retention deleted messages this projection never read.
                tracing::error!(
                    projection = name,
                    partition,
                    stored,
                    start = low,
                    "messages before the partition's start were deleted unread (retention); \
                     resuming at its start: rebuild the projection to apply them"
                );
            } else {
                continue;
            }
            self.reset_offset(&mut session, generation, partition, low)
                .await?;
            partitions.next.insert(partition, low);
        }
        let mut assignment = TopicPartitionList::new();
        for partition in 0..count {
            let offset = partitions
                .next
                .get(&partition)
                .map_or(Offset::Beginning, |&next| Offset::Offset(next));
            assignment.add_partition_offset(topic, partition, offset)?;
        }
        clients.consumer.assign(&assignment)?;
        tracing::info!(
            projection = name,
            topic,
            partitions = count,
            generation,
            resumed_from = ?partitions.next,
            "projection consuming from its offsets in Postgres"
        );

        let mut check = tokio::time::interval(self.settings.check_interval);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = check.tick() => {
                    self.check(&clients, &mut session, generation, count, &mut partitions).await?;
                }
                first = clients.consumer.recv() => {
                    let first = match first {
                        Ok(message) => message.detach(),
                        Err(error) => {
                            tracing::warn!(projection = name, error = %error, "consumer error");
                            if clients.lost_broker() {
                                anyhow::bail!(
                                    "lost every broker connection; replacing the clients before \
                                     the broker comes back (it may come back empty)"
                                );
                            }
                            if offset_out_of_range(&error) {
                                anyhow::bail!(
                                    "a partition no longer holds the offset this projection \
                                     stands at (the topic was replaced or truncated); \
                                     assigning it again"
                                );
                            }
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    };
                    let batch = self.fill_batch(&clients.consumer, first).await;
                    let applied = self
                        .apply_until_done(&clients, &mut session, &batch, &partitions.next, generation, shutdown)
                        .await?;
                    if !applied {
                        return Ok(());
                    }
                    let next = next_offsets(&batch);
                    for (&partition, &offset) in &next {
                        let stood = partitions.next.entry(partition).or_default();
                        *stood = (*stood).max(offset);
                    }
                    partitions.last_progress = Some(Instant::now());
                    commit_for_monitoring(&clients.consumer, topic, &next);
                }
            }
        }
    }

    /// The topic's partitions' watermarks, once the broker knows the topic
    /// (the relay creates it); `None` if shut down first.
    async fn wait_for_topic(
        &self,
        consumer: &DropOffThread<KafkaConsumer>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<Vec<(i64, i64)>>> {
        let mut announced = false;
        loop {
            match topic_watermarks(consumer, &self.settings.topic).await {
                Ok(Some(watermarks)) => {
                    // Only what the broker says from now on counts.
                    consumer.context().forget();
                    return Ok(Some(watermarks));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(error = %format_args!("{error:#}"), "could not read the topic's metadata")
                }
            }
            if !announced {
                tracing::warn!(
                    projection = self.projection.name(),
                    topic = %self.settings.topic,
                    "waiting for the broker and the topic"
                );
                announced = true;
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// The next offset of each partition stored with the read model; offsets of
    /// an older generation of the topic are void.
    async fn stored_offsets(
        &self,
        session: &mut PgConnection,
        generation: i64,
    ) -> Result<HashMap<i32, i64>, sqlx::Error> {
        let rows: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT partition, next_offset FROM projection_offsets
              WHERE projection = $1 AND topic = $2 AND generation = $3",
        )
        .bind(self.projection.name())
        .bind(&self.settings.topic)
        .bind(generation)
        .fetch_all(&mut *session)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Stores `next` as where the projection stands in `partition`.
    async fn reset_offset(
        &self,
        session: &mut PgConnection,
        generation: i64,
        partition: i32,
        next: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE projection_offsets SET next_offset = $5, updated_at = now()
              WHERE projection = $1 AND topic = $2 AND partition = $3 AND generation = $4",
        )
        .bind(self.projection.name())
        .bind(&self.settings.topic)
        .bind(partition)
        .bind(generation)
        .bind(next)
        .execute(&mut *session)
        .await?;
        Ok(())
    }

    /// Takes what else is ready, up to the batch's bounds in count, time and
    /// bytes ([`BATCH_MAX_BYTES`]).
    async fn fill_batch(
        &self,
        consumer: &DropOffThread<KafkaConsumer>,
        first: OwnedMessage,
    ) -> Vec<OwnedMessage> {
        let mut bytes = payload_len(&first);
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + self.settings.batch_window;
        while batch.len() < self.settings.batch_max && bytes < BATCH_MAX_BYTES {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(message)) => {
                    let message = message.detach();
                    bytes += payload_len(&message);
                    batch.push(message);
                }
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, "consumer error");
                    break;
                }
                Err(_) => break,
            }
        }
        batch
    }

    /// Lag, the partitions, the topic's generation and progress: anything
    /// that calls for a new start ends the activation with an error.
    async fn check(
        &self,
        clients: &Clients,
        session: &mut PgConnection,
        generation: i64,
        count: i32,
        partitions: &mut Partitions,
    ) -> anyhow::Result<()> {
        let name = self.projection.name();
        if clients.lost_broker() {
            anyhow::bail!("lost every broker connection; replacing the clients");
        }
        let now_generation = single_active::topic_generation(session, &self.settings.topic).await?;
        if now_generation != generation {
            anyhow::bail!(
                "the topic was published again from the beginning (generation {generation} → \
                 {now_generation}); reading it again from the start"
            );
        }
        let watermarks = match topic_watermarks(&clients.consumer, &self.settings.topic).await {
            Ok(Some(watermarks)) => watermarks,
            Ok(None) => {
                metrics::gauge!(metric::BROKER_REACHABLE, "role" => name).set(1.0);
                tracing::warn!(
                    projection = name,
                    "the broker does not know the topic (yet)"
                );
                return Ok(());
            }
            Err(error) => {
                metrics::gauge!(metric::BROKER_REACHABLE, "role" => name).set(0.0);
                tracing::debug!(error = %format_args!("{error:#}"), "could not read the topic's watermarks");
                return Ok(());
            }
        };
        metrics::gauge!(metric::BROKER_REACHABLE, "role" => name).set(1.0);
        if watermarks.len() as i32 != count {
            anyhow::bail!(
                "the topic has {} partitions now, not {count}; assigning them again",
                watermarks.len()
            );
        }
        let mut behind = 0;
        for (partition, (low, high)) in watermarks.iter().enumerate() {
            let next = partitions
                .next
                .get(&(partition as i32))
                .copied()
                .unwrap_or(*low);
            let lag = (high - next).max(0);
            behind += lag;
            metrics::gauge!(
                metric::PROJECTION_LAG_MESSAGES,
                "projection" => name,
                "partition" => partition.to_string()
            )
            .set(lag as f64);
        }
        if behind == 0 {
            metrics::gauge!(metric::PROJECTION_LAG_SECONDS, "projection" => name).set(0.0);
            partitions.last_progress = Some(Instant::now());
            return Ok(());
        }
        let since = partitions
            .last_progress
            .get_or_insert_with(Instant::now)
            .elapsed();
        if since > self.settings.stall_timeout {
            metrics::counter!(metric::PROJECTION_STALLS, "projection" => name).increment(1);
            anyhow::bail!(
                "no progress for {since:?} while the partitions hold {behind} messages not \
                 applied; replacing the consumer"
            );
        }
        Ok(())
    }

    /// Applies the batch, retrying transient failures a few times in place
    /// before giving up on this activation; `false` if shut down first.
    async fn apply_until_done(
        &self,
        clients: &Clients,
        session: &mut PgConnection,
        batch: &[OwnedMessage],
        stood: &HashMap<i32, i64>,
        generation: i64,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<bool> {
        let name = self.projection.name();
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            match self
                .apply_batch(clients, session, batch, stood, generation)
                .await
            {
                Ok(outcomes) => {
                    metrics::histogram!(metric::PROJECTION_BATCH_SIZE, "projection" => name)
                        .record(batch.len() as f64);
                    metrics::histogram!(metric::PROJECTION_BATCH_SECONDS, "projection" => name)
                        .record(started.elapsed().as_secs_f64());
                    for outcome in outcomes {
                        metrics::counter!(
                            metric::PROJECTION_MESSAGES,
                            "projection" => name,
                            "outcome" => outcome.as_str()
                        )
                        .increment(1);
                    }
                    if let Some(time) = batch.iter().filter_map(|m| m.timestamp().to_millis()).max()
                    {
                        let lag = chrono::Utc::now().timestamp_millis() - time;
                        metrics::gauge!(metric::PROJECTION_LAG_SECONDS, "projection" => name)
                            .set(lag.max(0) as f64 / 1000.0);
                    }
                    return Ok(true);
                }
                Err(BatchError::Fatal(error)) => return Err(error),
                Err(BatchError::Transient(error)) if attempt < 5 => {
                    tracing::warn!(
                        projection = name,
                        attempt,
                        messages = batch.len(),
                        error = %format_args!("{error:#}"),
                        "could not apply the batch; retrying"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(false),
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay *= 2;
                    attempt += 1;
                }
                Err(BatchError::Transient(error)) => return Err(error),
            }
        }
    }

    /// One transaction: the batch's events applied, messages that cannot be
    /// applied dead-lettered, and the next offset of every partition touched.
    /// `stood` is where this projection stands: what its offsets in Postgres
    /// say, kept in memory, since this process alone writes them (the lock).
    #[tracing::instrument(skip_all, fields(projection = self.projection.name(), messages = batch.len()))]
    async fn apply_batch(
        &self,
        clients: &Clients,
        session: &mut PgConnection,
        batch: &[OwnedMessage],
        stood: &HashMap<i32, i64>,
        generation: i64,
    ) -> Result<Vec<Outcome>, BatchError> {
        let mut tx = session.begin().await.map_err(fatal)?;
        // The read model can be derived again from the event store and the
        // offsets commit with it, so this commit need not wait for the WAL to
        // reach the disk (docs/adr/0005).
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .map_err(fatal)?;

        let mut outcomes = vec![Outcome::AlreadyConsumed; batch.len()];
        let mut events = Vec::with_capacity(batch.len());
        let mut event_slots = Vec::with_capacity(batch.len());
        let mut undecodable = Vec::new();
        for (slot, message) in batch.iter().enumerate() {
            if stood
                .get(&message.partition())
                .is_some_and(|&next| message.offset() < next)
            {
                continue;
            }
            match P::Message::decode(message) {
                Ok(event) => {
                    if let Some(traceparent) = event.traceparent() {
                        infra::trace::link_trace(&tracing::Span::current(), traceparent);
                    }
                    events.push(event);
                    event_slots.push(slot);
                }
                Err(reason) => undecodable.push((slot, reason)),
            }
        }

        sqlx::query("SAVEPOINT batch")
            .execute(&mut *tx)
            .await
            .map_err(fatal)?;
        match self.projection.apply_batch(&mut tx, &events).await {
            Ok(applied) => {
                for (slot, outcome) in event_slots.iter().zip(applied) {
                    outcomes[*slot] = outcome;
                }
            }
            Err(error) if error.is_permanent() => {
                // Find the culprit: the same events one at a time, each in a
                // savepoint of its own.
                sqlx::query("ROLLBACK TO SAVEPOINT batch")
                    .execute(&mut *tx)
                    .await
                    .map_err(fatal)?;
                for (event, &slot) in events.iter().zip(&event_slots) {
                    outcomes[slot] = self
                        .apply_one(clients, &mut tx, event, &batch[slot])
                        .await?;
                }
            }
            Err(error) => return Err(BatchError::Transient(error.into())),
        }
        for (slot, reason) in undecodable {
            self.dead_letter(clients, &batch[slot], &reason)
                .await
                .map_err(BatchError::Transient)?;
            outcomes[slot] = Outcome::DeadLettered;
        }

        let (partitions, offsets): (Vec<i32>, Vec<i64>) = next_offsets(batch).into_iter().unzip();
        sqlx::query(
            "INSERT INTO projection_offsets (projection, topic, partition, next_offset, generation)
             SELECT $1, $2, p, o, $5 FROM unnest($3::int[], $4::bigint[]) AS t(p, o)
             ON CONFLICT (projection, topic, partition) DO UPDATE
                SET next_offset = CASE WHEN projection_offsets.generation = EXCLUDED.generation
                                       THEN GREATEST(projection_offsets.next_offset, EXCLUDED.next_offset)
                                       ELSE EXCLUDED.next_offset END,
                    generation = EXCLUDED.generation,
                    updated_at = now()",
        )
        .bind(self.projection.name())
        .bind(&self.settings.topic)
        .bind(&partitions)
        .bind(&offsets)
        .bind(generation)
        .execute(&mut *tx)
        .await
        .map_err(fatal)?;
        tx.commit().await.map_err(fatal)?;
        Ok(outcomes)
    }

    /// Applies one event in a savepoint; an event that can never be applied
    /// is undone and dead-lettered.
    async fn apply_one(
        &self,
        clients: &Clients,
        tx: &mut PgConnection,
        event: &P::Message,
        message: &OwnedMessage,
    ) -> Result<Outcome, BatchError> {
        sqlx::query("SAVEPOINT one")
            .execute(&mut *tx)
            .await
            .map_err(fatal)?;
        match self.projection.apply(tx, event).await {
            Ok(outcome) => {
                sqlx::query("RELEASE SAVEPOINT one")
                    .execute(&mut *tx)
                    .await
                    .map_err(fatal)?;
                Ok(outcome)
            }
            Err(error) if error.is_permanent() => {
                sqlx::query("ROLLBACK TO SAVEPOINT one")
                    .execute(&mut *tx)
                    .await
                    .map_err(fatal)?;
                let reason = match error {
                    ProjectionError::Invalid(reason) => reason,
                    other => format!("the read model refused it: {other}"),
                };
                self.dead_letter(clients, message, &reason)
                    .await
                    .map_err(BatchError::Transient)?;
                Ok(Outcome::DeadLettered)
            }
            Err(error) => Err(BatchError::Transient(error.into())),
        }
    }

    /// Publishes the message unchanged to `<topic>.dlq`, with why and where
    /// from. A message the dead-letter topic will not take whole (too large)
    /// goes there cut to [`DEAD_LETTER_MAX_PAYLOAD`] bytes, with its size and
    /// SHA-256: consumption never stops on a message that can be neither
    /// applied nor dead-lettered.
    async fn dead_letter(
        &self,
        clients: &Clients,
        message: &OwnedMessage,
        reason: &str,
    ) -> anyhow::Result<()> {
        tracing::warn!(
            projection = self.projection.name(),
            partition = message.partition(),
            offset = message.offset(),
            reason,
            "dead-lettering message"
        );
        match self
            .publish_dead_letter(clients, message, reason, None)
            .await
        {
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
                self.publish_dead_letter(clients, message, reason, Some((payload.len(), hex)))
                    .await
                    .map_err(Into::into)
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn publish_dead_letter(
        &self,
        clients: &Clients,
        message: &OwnedMessage,
        reason: &str,
        truncated: Option<(usize, String)>,
    ) -> Result<(), KafkaError> {
        let dlq = dead_letter_topic(&self.settings.topic);
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let failed_at = chrono::Utc::now().to_rfc3339();
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
                value: Some(self.settings.topic.as_str()),
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
            })
            .insert(Header {
                key: "dlq-consumer-group",
                value: Some(self.group.as_str()),
            })
            .insert(Header {
                key: "dlq-failed-at",
                value: Some(failed_at.as_str()),
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
        clients
            .dead_letters
            .send(record, Duration::from_secs(10))
            .await
            .map(|_| ())
            .map_err(|(error, _)| error)
    }
}

/// Why a batch was not applied.
enum BatchError {
    /// Worth trying the same batch again on the same session.
    Transient(anyhow::Error),
    /// The session or the database failed: start the activation again.
    Fatal(anyhow::Error),
}

fn fatal(error: sqlx::Error) -> BatchError {
    BatchError::Fatal(error.into())
}

/// Commits the batch's offsets to the broker so that Kafka tools show the
/// group's lag; Postgres holds the truth, so a failure only costs a log line.
fn commit_for_monitoring(consumer: &KafkaConsumer, topic: &str, next: &HashMap<i32, i64>) {
    let mut offsets = TopicPartitionList::new();
    for (&partition, &offset) in next {
        if offsets
            .add_partition_offset(topic, partition, Offset::Offset(offset))
            .is_err()
        {
            return;
        }
    }
    if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
        tracing::debug!(error = %error, "could not commit offsets to the broker");
    }
}

/// Each partition's low and high watermark, asked off the async runtime.
async fn topic_watermarks(
    consumer: &DropOffThread<KafkaConsumer>,
    topic: &str,
) -> anyhow::Result<Option<Vec<(i64, i64)>>> {
    let consumer = consumer.handle();
    let topic = topic.to_owned();
    let watermarks = tokio::task::spawn_blocking(move || {
        infra::kafka::topic_watermarks(consumer.client(), &topic, Duration::from_secs(2))
    })
    .await??;
    Ok(watermarks)
}

/// The next offset of each partition the batch touched.
fn next_offsets(batch: &[OwnedMessage]) -> HashMap<i32, i64> {
    let mut next: HashMap<i32, i64> = HashMap::new();
    for message in batch {
        let entry = next.entry(message.partition()).or_default();
        *entry = (*entry).max(message.offset() + 1);
    }
    next
}

/// Whether a consumer error says the stored offset is outside its partition
/// (consumers run with `auto.offset.reset=error`: they never jump silently).
fn offset_out_of_range(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange)
    )
}

/// The most message bytes one batch holds (beyond the first message, which
/// the fetch limit bounds to 8 MiB), however many messages the count allows.
pub const BATCH_MAX_BYTES: usize = 16 * 1024 * 1024;

fn payload_len(message: &OwnedMessage) -> usize {
    message.payload().map_or(0, <[u8]>::len) + message.key().map_or(0, <[u8]>::len)
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

/// The task id each message names, and the same ids sorted without repeats
/// (the order in which a batch locks its rows, so overlapping batches cannot
/// deadlock).
pub(crate) fn task_ids(
    messages: &[TaskEventMessage],
) -> Result<(Vec<uuid::Uuid>, Vec<uuid::Uuid>), ProjectionError> {
    let ids = messages
        .iter()
        .map(|m| uuid::Uuid::parse_str(&m.data.task_id))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ProjectionError::Invalid("task_id is not a UUID".into()))?;
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    Ok((ids, unique))
}

/// Sanity checks beyond the shape: the key, subject and sequence agree.
impl ConsumedMessage for TaskEventMessage {
    fn decode(message: &OwnedMessage) -> Result<Self, String> {
        decode_task_event(message)
    }

    fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }
}

fn decode_task_event(message: &OwnedMessage) -> Result<TaskEventMessage, String> {
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
