//! Starting to run a projection: its clients, its share of the topic's
//! partitions, and where each starts.
//!
//! Any number of processes run a projection; each applies the partitions
//! whose leases it holds (`leases`, docs/adr/0012) and assigns itself those at
//! the offset stored with the read model: no group membership, no broker-side
//! rebalance, no committed group offset read (docs/adr/0002). The share is
//! settled again at every check, and the assignment follows it.

use std::collections::HashMap;
use std::time::Duration;

use infra::kafka::{DropOffThread, KafkaConsumer, Producer};
use infra::single_active;
use rdkafka::consumer::Consumer;
use rdkafka::{Message, Offset, TopicPartitionList};
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

use super::leases::Owned;
use super::metrics;
use super::offsets::{resume_assignment, unreachable_offsets, Unreachable};
use super::progress::Progress;
use super::projection::Projection;
use super::projection_consumer::ProjectionConsumer;

/// One activation's clients: a new consumer and dead-letter producer each
/// time, since a broker that restarted may have forgotten the old ones.
pub(super) struct Clients {
    pub consumer: DropOffThread<KafkaConsumer>,
    pub dead_letters: DropOffThread<Producer>,
}

impl Clients {
    /// Whether either client lost every broker connection since it started.
    pub fn lost_broker(&self) -> bool {
        self.consumer.context().broker_lost() || self.dead_letters.broker_lost()
    }
}

/// What the runtime holds while it runs the projection.
pub(super) struct Activation {
    pub clients: Clients,
    /// Every batch and every round of the leases runs on it.
    pub session: PgConnection,
    /// The topic's generation the stored offsets belong to.
    pub generation: i64,
    /// How many partitions the topic had when they were assigned.
    pub partitions: i32,
    /// The partitions this process holds the leases of, and their epochs.
    pub owned: Owned,
    /// The next offset to apply, per partition held, as stored with the read
    /// model: kept in memory, since only a lease's holder writes them.
    pub next: HashMap<i32, i64>,
    pub progress: Progress,
}

impl<P: Projection> ProjectionConsumer<P> {
    /// Waits for the topic, settles this process's share of its partitions
    /// and assigns them at the offsets stored for them; `None` if shut down
    /// first.
    pub(super) async fn activate(
        &self,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<Activation>> {
        let topic = self.settings.topic.as_str();
        let mut session = self.pool.acquire().await?.detach();
        // A batch left open by a process that stopped (paused, or cut off)
        // holds its rows and leases until Postgres ends it: after the lease's
        // time, and not before a dead letter's send could give up (10 s).
        let idle = self.settings.lease_ttl.max(Duration::from_secs(15));
        sqlx::query(&format!(
            "SET idle_in_transaction_session_timeout = {}",
            idle.as_millis()
        ))
        .execute(&mut session)
        .await?;
        if !infra::kafka::wait_while_replaced(&mut session, &[topic], shutdown).await? {
            return Ok(None);
        }
        let consumer = DropOffThread::new(self.kafka.assigned_consumer(&self.group)?);
        let generation = single_active::topic_generation(&mut session, topic).await?;
        let Some(watermarks) = self.wait_for_topic(&consumer, shutdown).await? else {
            return Ok(None);
        };
        // Made once the broker answers, so it starts with no broker loss to
        // report.
        let clients = Clients {
            consumer,
            dead_letters: DropOffThread::new(self.kafka.producer()?),
        };
        let mut active = Activation {
            clients,
            session,
            generation,
            partitions: watermarks.len() as i32,
            owned: Owned::new(),
            next: HashMap::new(),
            progress: Progress::default(),
        };
        let owned = self
            .membership
            .balance(&mut active.session, active.partitions)
            .await?;
        self.assign(&mut active, owned).await?;
        Ok(Some(active))
    }

    /// Settles this process's share again; if it changed, assigns what it
    /// holds now.
    pub(super) async fn rebalance(&self, active: &mut Activation) -> anyhow::Result<()> {
        let owned = self
            .membership
            .balance(&mut active.session, active.partitions)
            .await?;
        if owned != active.owned {
            self.assign(active, owned).await?;
        }
        Ok(())
    }

    /// Assigns the consumer the partitions in `owned`, each from a little
    /// before the offset stored for it (see [`resume_assignment`]; a
    /// partition that no longer holds it starts at its beginning).
    async fn assign(&self, active: &mut Activation, owned: Owned) -> anyhow::Result<()> {
        let name = self.projection.name();
        let topic = self.settings.topic.as_str();
        let offsets = self.offsets(active.generation);
        let mut next = offsets.load(&mut active.session).await?;
        next.retain(|partition, _| owned.contains_key(partition));
        let (watermarks, unreachable) = self.unreachable(&active.clients.consumer, &next).await?;
        for unreachable in unreachable {
            let Unreachable {
                partition,
                stored,
                start,
                end,
            } = unreachable;
            if unreachable.topic_replaced() {
                // Its messages are read again; the read model already holds
                // what it has seen, and recognises it by sequence.
                tracing::warn!(
                    projection = name,
                    partition,
                    stored,
                    end,
                    "the partition ends before the stored offset: the topic was replaced; \
                     reading it again from the beginning"
                );
            } else {
                tracing::error!(
                    projection = name,
                    partition,
                    stored,
                    start,
                    "messages before the partition's start were deleted unread (retention); \
                     resuming at its start: rebuild the projection to apply them"
                );
            }
            offsets.reset(&mut active.session, partition, start).await?;
            next.insert(partition, start);
        }
        let partitions: Vec<i32> = owned.keys().copied().collect();
        active.clients.consumer.assign(&resume_assignment(
            topic,
            &partitions,
            &next,
            &watermarks,
        )?)?;
        metrics::partitions_owned(name, partitions.len());
        if !active.owned.is_empty() || !owned.is_empty() {
            metrics::assignment_changed(name);
        }
        tracing::info!(
            projection = name,
            topic,
            partitions = active.partitions,
            owned = ?partitions,
            generation = active.generation,
            resumed_from = ?next,
            "projection consuming its partitions from their offsets in Postgres"
        );
        active.owned = owned;
        active.next = next;
        Ok(())
    }

    /// The topic's watermarks, read after the offsets (a partition's
    /// previous holder may have stored one up to the moment it let go), and
    /// the partitions whose offset in `next` lies outside them. An offset
    /// beyond the reported end is checked by reading from the message before
    /// that end: tansu's memory engine reports as a partition's end one past
    /// the first offset of its last batch, behind the messages it serves.
    async fn unreachable(
        &self,
        consumer: &DropOffThread<KafkaConsumer>,
        next: &HashMap<i32, i64>,
    ) -> anyhow::Result<(Vec<(i64, i64)>, Vec<Unreachable>)> {
        let Some(watermarks) = topic_watermarks(consumer, &self.settings.topic).await? else {
            anyhow::bail!("the broker no longer knows the topic");
        };
        let mut found = Vec::new();
        for unreachable in unreachable_offsets(next, &watermarks) {
            let Unreachable {
                partition,
                stored,
                start,
                end,
            } = unreachable;
            if unreachable.topic_replaced()
                && end > start
                && self.serves_up_to(partition, end - 1, stored - 1).await?
            {
                continue;
            }
            found.push(unreachable);
        }
        Ok((watermarks, found))
    }

    /// Whether the broker serves `partition` up to offset `last`, read from
    /// `from` by a consumer of its own (within two seconds).
    async fn serves_up_to(&self, partition: i32, from: i64, last: i64) -> anyhow::Result<bool> {
        let consumer = DropOffThread::new(self.kafka.assigned_consumer(&self.group)?);
        let mut at = TopicPartitionList::new();
        at.add_partition_offset(&self.settings.topic, partition, Offset::Offset(from))?;
        consumer.assign(&at)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(message)) if message.offset() >= last => return Ok(true),
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => return Ok(false),
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
}

/// Each partition's low and high watermark, asked off the async runtime.
pub(super) async fn topic_watermarks(
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
