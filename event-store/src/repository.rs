//! The cqrs-es repository over the `events` table, in as few round trips as
//! Postgres allows: a command's events go in as one statement (an implicit
//! transaction, so the commit travels with it), whatever their number. The
//! primary key on (aggregate, sequence) refuses a lost race, as before; the
//! columns the global log adds (position, transaction id, event id, time)
//! and the triggers (the relay's wake-up, each user's count) are the table's
//! own, untouched. See docs/adr/0011.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use futures::TryStreamExt;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

const SELECT: &str =
    "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata
   FROM events";

/// A command's events in one statement: each column an array, the JSON
/// columns as text (parsed by the cast).
const INSERT: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
 SELECT $1, $2, e.sequence, e.event_type, e.event_version, e.payload::json, e.metadata::json
   FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
     AS e (sequence, event_type, event_version, payload, metadata)";

/// Replays stream through a channel of this many events.
const STREAM_CHANNEL: usize = 200;

#[derive(Debug, Clone)]
pub struct EventRepository {
    pool: PgPool,
}

impl EventRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn select(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: i64,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 ORDER BY sequence"
        ))
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after)
        .fetch_all(&self.pool)
        .await
        .map_err(persistence)?;
        rows.iter().map(event_of).collect()
    }
}

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.select(A::TYPE, aggregate_id, 0).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let after = i64::try_from(last_sequence).unwrap_or(i64::MAX);
        self.select(A::TYPE, aggregate_id, after).await
    }

    /// Tasks are event-sourced without stored snapshots: a command on a
    /// task this process holds warm loads nothing (`command::Warm`).
    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if snapshot_update.is_some() {
            return Err(PersistenceError::UnknownError(
                "this repository stores no snapshots".into(),
            ));
        }
        let Some(first) = events.first() else {
            return Ok(());
        };
        if events.iter().any(|e| e.aggregate_id != first.aggregate_id) {
            return Err(PersistenceError::UnknownError(
                "one commit holds the events of one aggregate".into(),
            ));
        }
        let mut sequences = Vec::with_capacity(events.len());
        let mut types = Vec::with_capacity(events.len());
        let mut versions = Vec::with_capacity(events.len());
        let mut payloads = Vec::with_capacity(events.len());
        let mut metadata = Vec::with_capacity(events.len());
        for event in events {
            sequences.push(i64::try_from(event.sequence).unwrap_or(i64::MAX));
            types.push(event.event_type.as_str());
            versions.push(event.event_version.as_str());
            payloads.push(event.payload.to_string());
            metadata.push(event.metadata.to_string());
        }
        sqlx::query(INSERT)
            .bind(A::TYPE)
            .bind(first.aggregate_id.as_str())
            .bind(sequences)
            .bind(types)
            .bind(versions)
            .bind(payloads)
            .bind(metadata)
            .execute(&self.pool)
            .await
            .map_err(persistence)?;
        Ok(())
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        let events = self.get_events::<A>(aggregate_id).await?;
        Ok(replay(events).await)
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let (mut feed, stream) = ReplayStream::new(STREAM_CHANNEL);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let query = format!("{SELECT} WHERE aggregate_type = $1 ORDER BY global_position");
            let mut rows = sqlx::query(&query).bind(A::TYPE).fetch(&pool);
            loop {
                let next = match rows.try_next().await {
                    Ok(Some(row)) => event_of(&row),
                    Ok(None) => return,
                    Err(error) => Err(persistence(error)),
                };
                let failed = next.is_err();
                if feed.push(next).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(stream)
    }
}

async fn replay(events: Vec<SerializedEvent>) -> ReplayStream {
    let (mut feed, stream) = ReplayStream::new(events.len().max(1));
    for event in events {
        if feed.push(Ok(event)).await.is_err() {
            break;
        }
    }
    stream
}

fn event_of(row: &PgRow) -> Result<SerializedEvent, PersistenceError> {
    let sequence: i64 = row.try_get("sequence").map_err(persistence)?;
    Ok(SerializedEvent::new(
        row.try_get("aggregate_id").map_err(persistence)?,
        usize::try_from(sequence).unwrap_or_default(),
        row.try_get("aggregate_type").map_err(persistence)?,
        row.try_get("event_type").map_err(persistence)?,
        row.try_get("event_version").map_err(persistence)?,
        row.try_get("payload").map_err(persistence)?,
        row.try_get("metadata").map_err(persistence)?,
    ))
}

/// A lost race (the primary key refusing a sequence someone else took) is
/// cqrs-es's optimistic lock error; the rest keep their kind.
fn persistence(error: sqlx::Error) -> PersistenceError {
    match &error {
        sqlx::Error::Database(e)
            if e.code().as_deref() == Some("23505") && e.constraint() == Some("events_pkey") =>
        {
            PersistenceError::OptimisticLockError
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
            PersistenceError::ConnectionError(Box::new(error))
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            PersistenceError::DeserializationError(Box::new(error))
        }
        _ => PersistenceError::UnknownError(Box::new(error)),
    }
}
