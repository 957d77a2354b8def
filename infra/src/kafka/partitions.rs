//! Moving a topic to more partitions.
//!
//! Kafka can add partitions to a topic in place, but every key whose hash
//! then lands elsewhere would have its later messages on a new partition and
//! its earlier ones on the old: a consumer could apply a task's newer events
//! before its older ones. So a topic that has fewer partitions than asked for
//! is replaced instead (deleted, then created with the partitions asked for),
//! and whoever owns its content publishes it again: the relay republishes the
//! whole log in commit order as a new generation (docs/adr/0002), and the
//! task-updates publisher goes on (its subscribers resync). A topic with more
//! partitions than asked for is left as it is: fewer would strand consumers.
//!
//! A replacement is announced in Postgres first (`topic_replacements`):
//! every consumer of the topic checks for it at least every
//! [`REPLACEMENT_NOTICE`] and lets go of the topic until the row is gone, so
//! nothing fetches from the topic while it is deleted.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

use super::{BrokerWatch, KafkaSettings};

/// What [`KafkaSettings::grow_partitions`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grown {
    /// The topic has at least the partitions asked for (or was just created
    /// with them): nothing to publish again.
    AsAsked,
    /// The topic was replaced by an empty one with the partitions asked for
    /// (by this call, or by one cut off before it finished): its content
    /// must be published again, then [`replacement_done`] called.
    Replaced,
}

/// The longest a consumer of a topic goes without checking whether the topic
/// is being replaced.
pub const REPLACEMENT_NOTICE: Duration = Duration::from_secs(2);
/// How long a replacement waits, once announced, before deleting the topic:
/// every consumer has checked at least twice by then.
const REPLACEMENT_GRACE: Duration = Duration::from_secs(6);
/// How long the broker is given to forget a deleted topic before it is
/// created again.
const RECREATE_TRIES: u32 = 40;
const RECREATE_PAUSE: Duration = Duration::from_millis(250);

impl KafkaSettings {
    /// Makes `topic` have at least `partitions`: creates it when missing, and
    /// replaces it when it has fewer (see the module's documentation). Only
    /// the single active owner of a topic's content may call this, on the
    /// session that holds its lock.
    pub async fn grow_partitions(
        &self,
        session: &mut PgConnection,
        topic: &str,
        partitions: i32,
    ) -> anyhow::Result<Grown> {
        let held = self.partition_count(topic).await?;
        if held.is_none_or(|held| held >= partitions) {
            if held.is_none() {
                self.ensure_topics(&[(topic, partitions)]).await?;
            }
            // A replacement cut off after the topic was replaced still needs
            // its content published again.
            return Ok(if being_replaced(session, &[topic]).await? {
                Grown::Replaced
            } else {
                Grown::AsAsked
            });
        }
        tracing::warn!(
            topic,
            from = held,
            to = partitions,
            "the topic has fewer partitions than configured; replacing it once its consumers \
             let go"
        );
        sqlx::query(
            "INSERT INTO topic_replacements (topic, partitions) VALUES ($1, $2)
             ON CONFLICT (topic) DO UPDATE SET partitions = EXCLUDED.partitions",
        )
        .bind(topic)
        .bind(partitions)
        .execute(&mut *session)
        .await?;
        tokio::time::sleep(REPLACEMENT_GRACE).await;
        self.replace_topic(topic, partitions).await?;
        Ok(Grown::Replaced)
    }

    async fn replace_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        let admin: AdminClient<BrokerWatch> = self
            .base()
            .create_with_context(BrokerWatch::new(&self.security))?;
        let options = AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(10)))
            .request_timeout(Some(Duration::from_secs(10)));
        for result in admin.delete_topics(&[topic], &options).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((topic, code)) => anyhow::bail!("could not delete topic {topic}: {code:?}"),
            }
        }
        let new_topic = [NewTopic::new(topic, partitions, TopicReplication::Fixed(1))];
        for _ in 0..RECREATE_TRIES {
            let result = admin.create_topics(&new_topic, &options).await?;
            match result.into_iter().next() {
                Some(Ok(_)) => {}
                // Still being deleted, or already created again by another
                // process starting (with the partitions asked for, or not).
                Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {}
                Some(Err((topic, code))) => {
                    anyhow::bail!("could not create topic {topic} again: {code:?}")
                }
                None => anyhow::bail!("the broker answered nothing for topic {topic}"),
            }
            if self
                .partition_count(topic)
                .await?
                .is_some_and(|now| now >= partitions)
            {
                return Ok(());
            }
            tokio::time::sleep(RECREATE_PAUSE).await;
        }
        anyhow::bail!("topic {topic} did not come back with {partitions} partitions")
    }

    /// How many partitions `topic` has; `None` when the broker does not know it.
    pub async fn partition_count(&self, topic: &str) -> anyhow::Result<Option<i32>> {
        let client: BaseConsumer<BrokerWatch> = self
            .base()
            .create_with_context(BrokerWatch::new(&self.security))?;
        let topic = topic.to_owned();
        let count = tokio::task::spawn_blocking(move || {
            topic_partition_count(client.client(), &topic, Duration::from_secs(5))
        })
        .await??;
        Ok(count)
    }
}

/// How many partitions the broker says `topic` has, through any client;
/// `None` when it does not know the topic (or cannot describe it now).
/// Blocking: call it off the async runtime.
pub fn topic_partition_count<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    timeout: Duration,
) -> Result<Option<i32>, KafkaError> {
    let metadata = client.fetch_metadata(Some(topic), timeout)?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len() as i32)
        .filter(|&count| count > 0))
}

/// Ends the replacement of `topic` once its content is being published
/// again: its consumers take it up.
pub async fn replacement_done(session: &mut PgConnection, topic: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM topic_replacements WHERE topic = $1")
        .bind(topic)
        .execute(&mut *session)
        .await?;
    Ok(())
}

/// Whether any of `topics` is being replaced.
pub async fn being_replaced(session: &mut PgConnection, topics: &[&str]) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT FROM topic_replacements WHERE topic = ANY($1))")
        .bind(topics)
        .fetch_one(&mut *session)
        .await
}

/// Waits, checking every [`REPLACEMENT_NOTICE`], until none of `topics` is
/// being replaced; `false` if `shutdown` came first.
pub async fn wait_while_replaced(
    session: &mut PgConnection,
    topics: &[&str],
    shutdown: &CancellationToken,
) -> sqlx::Result<bool> {
    let mut told = false;
    while being_replaced(session, topics).await? {
        if !told {
            tracing::info!(
                ?topics,
                "waiting while a topic is replaced by one with more partitions"
            );
            told = true;
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(false),
            () = tokio::time::sleep(REPLACEMENT_NOTICE) => {}
        }
    }
    Ok(true)
}
