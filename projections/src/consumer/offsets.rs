//! Where a projection stands: the next offset to apply per partition, stored
//! in `projection_offsets` in the same transaction as the read-model changes
//! it accounts for, and the one place a projection resumes from
//! (docs/adr/0002). The broker's group offsets are written only so that Kafka
//! tools show the lag, and never read.

use std::collections::HashMap;

use infra::kafka::KafkaConsumer;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use sqlx::PgConnection;
use uuid::Uuid;

use super::projection::Projection;
use super::projection_consumer::ProjectionConsumer;

/// One projection's rows of `projection_offsets` for one generation of its
/// topic: rows of an older generation point into a topic that is gone.
pub(super) struct ProjectionOffsets<'a> {
    pub projection: &'a str,
    pub topic: &'a str,
    pub generation: i64,
    /// This process among the projection's (docs/adr/0012).
    pub member: Uuid,
}

impl<P: Projection> ProjectionConsumer<P> {
    pub(super) fn offsets(&self, generation: i64) -> ProjectionOffsets<'_> {
        ProjectionOffsets {
            projection: self.projection.name(),
            topic: &self.settings.topic,
            generation,
            member: self.membership.member,
        }
    }
}

impl ProjectionOffsets<'_> {
    /// The next offset of each partition stored with the read model; offsets of
    /// an older generation of the topic are void.
    pub async fn load(&self, session: &mut PgConnection) -> Result<HashMap<i32, i64>, sqlx::Error> {
        let rows: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT partition, next_offset FROM projection_offsets
              WHERE projection = $1 AND topic = $2 AND generation = $3",
        )
        .bind(self.projection)
        .bind(self.topic)
        .bind(self.generation)
        .fetch_all(&mut *session)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Stores `next` as where the projection stands in `partition`.
    pub async fn reset(
        &self,
        session: &mut PgConnection,
        partition: i32,
        next: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE projection_offsets SET next_offset = $5, updated_at = now()
              WHERE projection = $1 AND topic = $2 AND partition = $3 AND generation = $4",
        )
        .bind(self.projection)
        .bind(self.topic)
        .bind(partition)
        .bind(self.generation)
        .bind(next)
        .execute(&mut *session)
        .await?;
        Ok(())
    }

    /// Records, in the batch's transaction, the next offset of every
    /// partition it touched. Within a generation an offset only moves
    /// forward; a new generation's replaces an older one's.
    pub async fn store(
        &self,
        tx: &mut PgConnection,
        next: HashMap<i32, i64>,
    ) -> Result<(), sqlx::Error> {
        let (partitions, offsets): (Vec<i32>, Vec<i64>) = next.into_iter().unzip();
        sqlx::query(
            "INSERT INTO projection_offsets
                    (projection, topic, partition, next_offset, generation, written_by)
             SELECT $1, $2, p, o, $5, $6 FROM unnest($3::int[], $4::bigint[]) AS t(p, o)
             ON CONFLICT (projection, topic, partition) DO UPDATE
                SET next_offset = CASE WHEN projection_offsets.generation = EXCLUDED.generation
                                       THEN GREATEST(projection_offsets.next_offset, EXCLUDED.next_offset)
                                       ELSE EXCLUDED.next_offset END,
                    generation = EXCLUDED.generation,
                    written_by = EXCLUDED.written_by,
                    updated_at = now()",
        )
        .bind(self.projection)
        .bind(self.topic)
        .bind(&partitions)
        .bind(&offsets)
        .bind(self.generation)
        .bind(self.member)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// The next offset of each partition the batch touched.
pub(super) fn next_offsets(batch: &[OwnedMessage]) -> HashMap<i32, i64> {
    let mut next: HashMap<i32, i64> = HashMap::new();
    for message in batch {
        let entry = next.entry(message.partition()).or_default();
        *entry = (*entry).max(message.offset() + 1);
    }
    next
}

/// Whether a message lies below where the projection stands in its
/// partition: a redelivery of something a committed batch accounted for.
pub(super) fn already_consumed(stood: &HashMap<i32, i64>, message: &OwnedMessage) -> bool {
    stood
        .get(&message.partition())
        .is_some_and(|&next| message.offset() < next)
}

/// Moves where the projection stands to what a committed batch stored; never
/// back, as the stored offsets never move back within a generation.
pub(super) fn advance(stood: &mut HashMap<i32, i64>, committed: &HashMap<i32, i64>) {
    for (&partition, &offset) in committed {
        let stood = stood.entry(partition).or_default();
        *stood = (*stood).max(offset);
    }
}

/// A partition that no longer holds the offset stored for it; the projection
/// resumes it at its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unreachable {
    pub partition: i32,
    pub stored: i64,
    /// The partition's low watermark, where it resumes.
    pub start: i64,
    /// The partition's high watermark.
    pub end: i64,
}

impl Unreachable {
    /// Whether the partition ends before the stored offset: the topic is not
    /// the one the offsets were taken on (a broker that lost it), rather than
    /// one whose retention deleted messages this projection never read.
    pub fn topic_replaced(&self) -> bool {
        self.stored > self.end
    }
}

/// The partitions, in order, whose stored offset lies outside what they hold
/// now (`watermarks`, low and high, in partition order). A stored offset equal
/// to the end is reachable: the next message to arrive.
pub(super) fn unreachable_offsets(
    stored: &HashMap<i32, i64>,
    watermarks: &[(i64, i64)],
) -> Vec<Unreachable> {
    (0..)
        .zip(watermarks)
        .filter_map(|(partition, &(start, end))| {
            let &stored = stored.get(&partition)?;
            (stored > end || stored < start).then_some(Unreachable {
                partition,
                stored,
                start,
                end,
            })
        })
        .collect()
}

/// How many messages before its stored offset a partition is read again
/// from when it is assigned; they are below where the projection stands, so
/// they are skipped undecoded. A fetch from inside a batch of tansu's memory
/// engine returns only the batches that start at or after the offset asked
/// for, which would skip the rest of the batch the offset falls in; reading
/// from a little before it fetches that batch whole. Larger than a batch the
/// relay publishes (500 events, and what the producer's linger joins).
pub(super) const RESUME_REWIND: i64 = 2_000;

/// The `partitions` of the topic this process holds, each from
/// [`RESUME_REWIND`] before its stored offset (not before the partition's
/// start, its low watermark in `watermarks`), or from its beginning when none
/// is stored.
pub(super) fn resume_assignment(
    topic: &str,
    partitions: &[i32],
    next: &HashMap<i32, i64>,
    watermarks: &[(i64, i64)],
) -> KafkaResult<TopicPartitionList> {
    let mut assignment = TopicPartitionList::new();
    for &partition in partitions {
        let start = usize::try_from(partition)
            .ok()
            .and_then(|p| watermarks.get(p))
            .map_or(0, |&(low, _)| low);
        let offset = next.get(&partition).map_or(Offset::Beginning, |&next| {
            Offset::Offset((next - RESUME_REWIND).max(start).min(next))
        });
        assignment.add_partition_offset(topic, partition, offset)?;
    }
    Ok(assignment)
}

/// Commits the batch's offsets to the broker so that Kafka tools show the
/// group's lag; Postgres holds the truth, so a failure only costs a log line.
pub(super) fn commit_for_monitoring(
    consumer: &KafkaConsumer,
    topic: &str,
    next: &HashMap<i32, i64>,
) {
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

/// Whether a consumer error says the stored offset is outside its partition
/// (consumers run with `auto.offset.reset=error`: they never jump silently).
pub(super) fn offset_out_of_range(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange)
    )
}
