//! Becoming the one process that runs a projection, and where it starts.
//!
//! A session advisory lock makes one process at a time the runner, and every
//! batch runs on that session, so if it dies the lock and the work end
//! together and a standby takes over. The runner assigns itself every
//! partition at the offset stored with the read model: no group membership,
//! no rebalance, no committed group offset read (docs/adr/0002).

use std::collections::HashMap;
use std::time::Duration;

use infra::kafka::{DropOffThread, KafkaConsumer, Producer};
use infra::single_active;
use rdkafka::consumer::Consumer;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

use super::offsets::{resume_assignment, unreachable_offsets, Unreachable};
use super::progress::Progress;
use super::projection::Projection;
use super::projection_consumer::ProjectionConsumer;
use super::settings::lock_key;

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

/// What the runtime holds while it is the projection's one runner.
pub(super) struct Activation {
    /// Declared before the session, so they are let go before its lock is.
    pub clients: Clients,
    /// Holds the lock; every batch runs on it.
    pub session: PgConnection,
    /// The topic's generation the stored offsets belong to.
    pub generation: i64,
    /// How many partitions the topic had when they were assigned.
    pub partitions: i32,
    /// The next offset to apply, per partition, as stored with the read
    /// model: kept in memory, since only the lock's holder writes them.
    pub next: HashMap<i32, i64>,
    pub progress: Progress,
}

impl<P: Projection> ProjectionConsumer<P> {
    /// Waits for the lock and the topic, then assigns every partition at the
    /// offset stored for it; `None` if shut down first.
    pub(super) async fn activate(
        &self,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<Activation>> {
        let name = self.projection.name();
        let topic = self.settings.topic.as_str();
        let mut session = self.pool.acquire().await?.detach();
        if !single_active::wait_for_lock(&mut session, &lock_key(name), name, shutdown).await? {
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
        let partitions = watermarks.len() as i32;
        let offsets = self.offsets(generation);
        let mut next = offsets.load(&mut session).await?;
        for unreachable in unreachable_offsets(&next, &watermarks) {
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
            offsets.reset(&mut session, partition, start).await?;
            next.insert(partition, start);
        }
        clients
            .consumer
            .assign(&resume_assignment(topic, partitions, &next)?)?;
        tracing::info!(
            projection = name,
            topic,
            partitions,
            generation,
            resumed_from = ?next,
            "projection consuming from its offsets in Postgres"
        );
        Ok(Some(Activation {
            clients,
            session,
            generation,
            partitions,
            next,
            progress: Progress::default(),
        }))
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
