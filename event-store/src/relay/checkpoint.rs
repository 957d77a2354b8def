//! Where a relay stands in the global log: the last position whose whole batch
//! the broker acknowledged, and how many messages it has published since it
//! last started from the beginning. Saved on the session that holds the
//! relay's lock.

use sqlx::{PgConnection, PgExecutor};

use crate::global_log::LogPosition;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCheckpoint {
    pub position: LogPosition,
    /// Messages acknowledged since the checkpoint last started from the
    /// beginning: a topic holding fewer has lost some.
    pub published: i64,
}

/// The relay's checkpoint, or the start of the log.
#[tracing::instrument(skip(executor))]
pub async fn load<'e>(
    executor: impl PgExecutor<'e>,
    relay: &str,
) -> Result<RelayCheckpoint, sqlx::Error> {
    let row: Option<(String, i64, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, global_position, published
           FROM relay_checkpoints WHERE relay = $1",
    )
    .bind(relay)
    .fetch_optional(executor)
    .await?;
    match row {
        None => Ok(RelayCheckpoint::default()),
        Some((xid, global_position, published)) => Ok(RelayCheckpoint {
            position: LogPosition {
                transaction_id: xid.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                global_position,
            },
            published,
        }),
    }
}

/// Records `checkpoint` as where the relay stands, and counts each user's
/// events up to it (`user_writes`, event-store migration 1016; ADR 0010): the
/// position is below the transaction horizon, so nothing can be added before
/// it later. A position the count has passed (a relay republishing from the
/// beginning, or behind another) counts nothing.
#[tracing::instrument(skip(executor))]
pub async fn save<'e>(
    executor: impl PgExecutor<'e>,
    relay: &str,
    checkpoint: RelayCheckpoint,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH saved AS (
             INSERT INTO relay_checkpoints (relay, transaction_id, global_position, published)
             VALUES ($1, $2::text::xid8, $3, $4)
             ON CONFLICT (relay) DO UPDATE
                SET transaction_id = EXCLUDED.transaction_id,
                    global_position = EXCLUDED.global_position,
                    published = EXCLUDED.published,
                    updated_at = now())
         SELECT user_writes_count_through($2::text::xid8, $3)",
    )
    .bind(relay)
    .bind(checkpoint.position.transaction_id.to_string())
    .bind(checkpoint.position.global_position)
    .bind(checkpoint.published)
    .execute(executor)
    .await?;
    Ok(())
}

/// Starts relay `relay` again from the beginning of the log and raises the
/// generation of `topic`, in one transaction: consumers that see the new
/// generation read the topic again from its beginning.
#[tracing::instrument(skip(session))]
pub async fn restart(
    session: &mut PgConnection,
    relay: &str,
    topic: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = sqlx::Connection::begin(&mut *session).await?;
    save(&mut *tx, relay, RelayCheckpoint::default()).await?;
    sqlx::query(
        "INSERT INTO topic_generations (topic, generation) VALUES ($1, 1)
         ON CONFLICT (topic) DO UPDATE
            SET generation = topic_generations.generation + 1, updated_at = now()",
    )
    .bind(topic)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
