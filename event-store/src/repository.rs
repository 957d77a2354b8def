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
use std::sync::Arc;

use crate::keys::{self, DataKey, KeyCache, Keyring};

/// Each event with the data key of whoever sealed it (see `keys`).
const SELECT: &str =
    "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
            k.key_id AS sealing_key_id, k.wrapped AS sealing_key
   FROM events LEFT JOIN user_keys k ON k.user_id = events.sealed_by";

/// A command's events in one statement: each column an array, the JSON
/// columns as text (parsed by the cast).
const INSERT: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
 SELECT $1, $2, e.sequence, e.event_type, e.event_version, e.payload::json, e.metadata::json
   FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
     AS e (sequence, event_type, event_version, payload, metadata)";

/// The same, only while the key that sealed the events is still stored: a
/// key erased after this process cached it seals nothing more.
const INSERT_SEALED: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
 SELECT $1, $2, e.sequence, e.event_type, e.event_version, e.payload::json, e.metadata::json
   FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
     AS e (sequence, event_type, event_version, payload, metadata)
  WHERE EXISTS (SELECT 1 FROM user_keys WHERE user_id = $8 AND key_id = $9)";

/// Replays stream through a channel of this many events.
const STREAM_CHANNEL: usize = 200;

#[derive(Debug, Clone)]
pub struct EventRepository {
    pool: PgPool,
    keys: Keyring,
}

impl EventRepository {
    pub fn new(pool: PgPool) -> Self {
        Self {
            keys: Keyring::new(pool.clone()),
            pool,
        }
    }

    /// The events' payloads as text, their personal fields sealed with the
    /// key of the user whose request wrote them; and that key, if any sealed.
    async fn sealed_payloads(
        &self,
        events: &[SerializedEvent],
    ) -> Result<(Vec<String>, Option<Arc<DataKey>>), PersistenceError> {
        let mut payloads = Vec::with_capacity(events.len());
        let mut used = None;
        for event in events {
            let mut payload = event.payload.clone();
            let writer = event.metadata.get("user_id").and_then(Value::as_str);
            if let (Some(writer), Some(fields)) = (writer, payload.get_mut(&event.event_type)) {
                if keys::has_personal(fields) {
                    let key = match &used {
                        Some(key) => Arc::clone(key),
                        None => self.keys.for_writing(writer).await.map_err(key_error)?,
                    };
                    keys::seal(fields, &key, &event.aggregate_id).map_err(key_error)?;
                    used = Some(key);
                }
            }
            payloads.push(payload.to_string());
        }
        Ok((payloads, used))
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
        let mut keys = KeyCache::default();
        rows.iter().map(|row| event_of(row, &mut keys)).collect()
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
        let mut metadata = Vec::with_capacity(events.len());
        for event in events {
            sequences.push(i64::try_from(event.sequence).unwrap_or(i64::MAX));
            types.push(event.event_type.as_str());
            versions.push(event.event_version.as_str());
            metadata.push(event.metadata.to_string());
        }
        // A key erased since this process cached it is forgotten and the
        // events sealed again, with the user's new key.
        for _ in 0..2 {
            let (payloads, key) = self.sealed_payloads(events).await?;
            let statement = sqlx::query(if key.is_some() { INSERT_SEALED } else { INSERT })
                .bind(A::TYPE)
                .bind(first.aggregate_id.as_str())
                .bind(&sequences)
                .bind(&types)
                .bind(&versions)
                .bind(payloads)
                .bind(&metadata);
            let statement = match &key {
                Some(key) => statement.bind(&key.user_id).bind(&key.key_id),
                None => statement,
            };
            let stored = statement
                .execute(&self.pool)
                .await
                .map_err(persistence)?
                .rows_affected();
            match key {
                Some(key) if stored == 0 => self.keys.forget(&key.user_id),
                _ => return Ok(()),
            }
        }
        Err(PersistenceError::UnknownError(
            "the writer's data key was erased twice while sealing".into(),
        ))
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
            let mut keys = KeyCache::default();
            loop {
                let next = match rows.try_next().await {
                    Ok(Some(row)) => event_of(&row, &mut keys),
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

/// A stored event with its personal fields opened (or read as erased).
fn event_of(row: &PgRow, keys: &mut KeyCache) -> Result<SerializedEvent, PersistenceError> {
    let sequence: i64 = row.try_get("sequence").map_err(persistence)?;
    let aggregate_id: String = row.try_get("aggregate_id").map_err(persistence)?;
    let event_type: String = row.try_get("event_type").map_err(persistence)?;
    let mut payload: Value = row.try_get("payload").map_err(persistence)?;
    let key_id: Option<String> = row.try_get("sealing_key_id").map_err(persistence)?;
    let wrapped: Option<Vec<u8>> = row.try_get("sealing_key").map_err(persistence)?;
    keys.open_event(
        &mut payload,
        &event_type,
        &aggregate_id,
        key_id.as_deref().zip(wrapped.as_deref()),
    )
    .map_err(key_error)?;
    Ok(SerializedEvent::new(
        aggregate_id,
        usize::try_from(sequence).unwrap_or_default(),
        row.try_get("aggregate_type").map_err(persistence)?,
        event_type,
        row.try_get("event_version").map_err(persistence)?,
        payload,
        row.try_get("metadata").map_err(persistence)?,
    ))
}

fn key_error(error: keys::KeyError) -> PersistenceError {
    PersistenceError::UnknownError(Box::new(error))
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
