//! The cqrs-es repository over the `events` table, in as few round trips as
//! Postgres allows: a command's events go in as one statement (an implicit
//! transaction, so the commit travels with it), whatever their number. The
//! primary key on (aggregate, sequence) refuses a lost race, as before; the
//! columns the global log adds (position, transaction id, event id, time)
//! and its triggers (the shared lists' members and heads) are the table's
//! own, untouched. Every `SNAPSHOT_EVERY` events a task's folded state is
//! stored in the same statement, sealed as its events are, and a task is
//! loaded as its snapshot and the events after it in one statement. See
//! docs/adr/0011.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use futures::TryStreamExt;
use infra::postgres::ReadyPool;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use std::sync::Arc;

use crate::keys::{self, DataKey, KeyCache, Keyring};

/// A task's folded state is stored at every multiple of this many events.
pub const SNAPSHOT_EVERY: usize = 25;

/// Each event with the data key of whoever sealed it (see `keys`).
const SELECT: &str =
    "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
            k.key_id AS sealing_key_id, k.wrapped AS sealing_key
   FROM events LEFT JOIN user_keys k ON k.user_id = events.sealed_by";

mod statement;

use statement::{checked_lists, Shape, STATEMENTS};
pub use statement::{NotAllowedInList, CHECKED_LISTS};

/// A task's snapshot with the data key that sealed it.
const SELECT_SNAPSHOT: &str =
    "SELECT s.sequence, s.state, k.key_id AS sealing_key_id, k.wrapped AS sealing_key
   FROM task_snapshots s LEFT JOIN user_keys k ON k.user_id = s.sealed_by
  WHERE s.aggregate_type = $1 AND s.aggregate_id = $2";

/// A task as one statement reads it: its snapshot, if any (the row without
/// an event type), then the events after it, each with its data key. A
/// snapshot whose key is gone is passed over and every event read: in a
/// shared list it was sealed with the key of whichever member's commit
/// took it, and what the others typed must outlive that member's erasure.
const LOAD: &str = "WITH snapshot AS (
  SELECT s.sequence, s.state, k.key_id, k.wrapped
    FROM task_snapshots s LEFT JOIN user_keys k ON k.user_id = s.sealed_by
   WHERE s.aggregate_type = $1 AND s.aggregate_id = $2
     AND (s.sealed_by IS NULL OR k.key_id IS NOT NULL)
)
SELECT 0 AS part, NULL::text AS event_type, NULL::text AS event_version, sequence, state AS payload,
       key_id AS sealing_key_id, wrapped AS sealing_key
  FROM snapshot
 UNION ALL
SELECT 1, e.event_type, e.event_version, e.sequence, e.payload, k.key_id, k.wrapped
  FROM events e LEFT JOIN user_keys k ON k.user_id = e.sealed_by
 WHERE e.aggregate_type = $1 AND e.aggregate_id = $2
   AND e.sequence > coalesce((SELECT sequence FROM snapshot), 0)
 ORDER BY part, sequence";

/// Replays stream through a channel of this many events.
const STREAM_CHANNEL: usize = 200;

#[derive(Debug, Clone)]
pub struct EventRepository {
    pool: PgPool,
    /// The command service's, for a task's load and commit, the
    /// statements run most: on `pool`'s database, with as many connections
    /// at most, taken back without sqlx's ping (`infra::postgres`).
    ready: Option<ReadyPool>,
    keys: Keyring,
}

impl EventRepository {
    pub fn new(pool: PgPool) -> Self {
        Self {
            keys: Keyring::new(pool.clone()),
            ready: None,
            pool,
        }
    }

    /// The same, loading and committing on a [`ReadyPool`] of its own.
    pub fn with_ready_pool(mut self) -> Self {
        self.ready = Some(ReadyPool::new(
            (*self.pool.connect_options()).clone(),
            self.pool.options().get_max_connections(),
        ));
        self
    }

    /// Runs one statement on a connection of the ready pool if there is
    /// one, else of the event store's pool.
    async fn run<T>(
        &self,
        statement: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, PersistenceError> {
        match &self.ready {
            Some(ready) => ready.run(statement).await,
            None => match self.pool.acquire().await {
                Ok(mut conn) => statement(&mut conn).await,
                Err(error) => Err(error),
            },
        }
        .map_err(persistence)
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

impl EventRepository {
    /// Aggregate `aggregate_id` (a task, a list) folded, and how many
    /// events it has: its snapshot and the events after it, read in one
    /// statement. A snapshot that no longer reads as the aggregate (its
    /// shape changed) is passed over and every event folded instead.
    pub async fn load<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<(A, usize), PersistenceError> {
        let load = sqlx::query(LOAD).bind(A::TYPE).bind(aggregate_id);
        let rows = self.run(async |conn| load.fetch_all(conn).await).await?;
        let mut keys = KeyCache::default();
        let mut aggregate = A::default();
        let mut sequence = 0;
        for row in &rows {
            let at: i64 = row.try_get("sequence").map_err(persistence)?;
            let mut payload: Value = row.try_get("payload").map_err(persistence)?;
            let key = key_of(row)?;
            let key = key.get();
            match row
                .try_get::<Option<String>, _>("event_type")
                .map_err(persistence)?
            {
                None => {
                    let erased = keys
                        .open_fields(&mut payload, aggregate_id, key)
                        .map_err(key_error)?;
                    match serde_json::from_value::<A>(payload) {
                        // A snapshot that reads as erased in part (in a
                        // shared list, a member's text sealed under another
                        // member's key) is passed over: each event opens
                        // with its own writer's key.
                        Ok(snapshot) if !erased => aggregate = snapshot,
                        Ok(_) => return self.fold_every_event::<A>(aggregate_id).await,
                        Err(error) => {
                            tracing::warn!(%error, aggregate_id, "a snapshot no longer reads; folding the events");
                            return self.fold_every_event::<A>(aggregate_id).await;
                        }
                    }
                }
                Some(event_type) => {
                    keys.open_event(&mut payload, &event_type, aggregate_id, key)
                        .map_err(key_error)?;
                    let version: String = row.try_get("event_version").map_err(persistence)?;
                    apply_stored(&mut aggregate, &event_type, &version, payload)?;
                }
            }
            sequence = usize::try_from(at).unwrap_or_default();
        }
        Ok((aggregate, sequence))
    }

    /// Aggregate `aggregate_id` folded from every one of its events.
    async fn fold_every_event<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<(A, usize), PersistenceError> {
        let events = self.select(A::TYPE, aggregate_id, 0).await?;
        fold(A::default(), 0, events)
    }

    /// `state` (a task's snapshot) sealed with the key of `writer`, whose
    /// events it follows; and that key.
    async fn sealed_snapshot(
        &self,
        state: &Value,
        writer: &str,
        key: Option<&Arc<DataKey>>,
        aggregate_id: &str,
    ) -> Result<(String, Arc<DataKey>), PersistenceError> {
        let key = match key {
            Some(key) => Arc::clone(key),
            None => self.keys.for_writing(writer).await.map_err(key_error)?,
        };
        let mut state = state.clone();
        keys::seal(&mut state, &key, aggregate_id).map_err(key_error)?;
        Ok((state.to_string(), key))
    }
}

/// An aggregate's stored snapshot, opened: its state after event `sequence`.
#[derive(Debug, Clone)]
pub struct OpenedSnapshot<A> {
    pub sequence: i64,
    pub state: A,
}

/// The snapshots of aggregates `ids` that open whole, by aggregate id, read
/// on `executor` (a projection's transaction): how a reader that folds a
/// task starts where its snapshot was taken. One whose key is gone, that
/// reads as erased in part, or that no longer reads as the aggregate is left
/// out, as [`EventRepository::load`] passes it over.
pub async fn opened_snapshots<'e, A: Aggregate>(
    executor: impl sqlx::PgExecutor<'e>,
    ids: &[String],
) -> Result<std::collections::HashMap<String, OpenedSnapshot<A>>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT s.aggregate_id, s.sequence, s.state AS payload,
                k.key_id AS sealing_key_id, k.wrapped AS sealing_key
           FROM task_snapshots s LEFT JOIN user_keys k ON k.user_id = s.sealed_by
          WHERE s.aggregate_type = $1 AND s.aggregate_id = ANY($2)
            AND (s.sealed_by IS NULL OR k.key_id IS NOT NULL)",
    )
    .bind(A::TYPE)
    .bind(ids)
    .fetch_all(executor)
    .await?;
    let mut keys = KeyCache::default();
    let mut opened = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get("aggregate_id")?;
        let sequence: i64 = row.try_get("sequence")?;
        let mut payload: Value = row.try_get("payload")?;
        let key_id: Option<String> = row.try_get("sealing_key_id")?;
        let wrapped: Option<Vec<u8>> = row.try_get("sealing_key")?;
        let key = key_id.as_deref().zip(wrapped.as_deref());
        let erased = keys
            .open_fields(&mut payload, &id, key)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        if let (false, Ok(state)) = (erased, serde_json::from_value::<A>(payload)) {
            opened.insert(id, OpenedSnapshot { sequence, state });
        }
    }
    Ok(opened)
}

/// `aggregate` at `sequence` with `events` applied after it.
fn fold<A: Aggregate>(
    mut aggregate: A,
    mut sequence: usize,
    events: Vec<SerializedEvent>,
) -> Result<(A, usize), PersistenceError> {
    for event in events {
        apply_stored(
            &mut aggregate,
            &event.event_type,
            &event.event_version,
            event.payload,
        )?;
        sequence = event.sequence;
    }
    Ok((aggregate, sequence))
}

/// A stored (opened) event applied to `aggregate`, read in its current
/// version.
fn apply_stored<A: Aggregate>(
    aggregate: &mut A,
    event_type: &str,
    event_version: &str,
    payload: Value,
) -> Result<(), PersistenceError> {
    let payload = crate::upcast(event_type, event_version, payload);
    aggregate.apply(serde_json::from_value::<A::Event>(payload)?);
    Ok(())
}

/// The `(key id, wrapped key)` read with a row, if its key is still stored.
struct RowKey(Option<(String, Vec<u8>)>);

impl RowKey {
    fn get(&self) -> Option<(&str, &[u8])> {
        self.0
            .as_ref()
            .map(|(id, wrapped)| (id.as_str(), wrapped.as_slice()))
    }
}

fn key_of(row: &PgRow) -> Result<RowKey, PersistenceError> {
    let key_id: Option<String> = row.try_get("sealing_key_id").map_err(persistence)?;
    let wrapped: Option<Vec<u8>> = row.try_get("sealing_key").map_err(persistence)?;
    Ok(RowKey(key_id.zip(wrapped)))
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

    /// The aggregate's snapshot, opened (see `load`, which reads it
    /// with the events after it in one statement); `None` when the key that
    /// sealed it is gone: it was taken by a member's commit, and what the
    /// others typed must outlive that member's erasure, so the aggregate is
    /// folded from its events.
    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        let Some(row) = sqlx::query(SELECT_SNAPSHOT)
            .bind(A::TYPE)
            .bind(aggregate_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(persistence)?
        else {
            return Ok(None);
        };
        let sequence: i64 = row.try_get("sequence").map_err(persistence)?;
        let mut state: Value = row.try_get("state").map_err(persistence)?;
        let key = key_of(&row)?;
        let key = key.get();
        if KeyCache::default()
            .open_fields(&mut state, aggregate_id, key)
            .map_err(key_error)?
        {
            return Ok(None);
        }
        let current_sequence = usize::try_from(sequence).unwrap_or_default();
        Ok(Some(SerializedSnapshot {
            aggregate_id: aggregate_id.to_owned(),
            aggregate: state,
            current_sequence,
            current_snapshot: current_sequence / SNAPSHOT_EVERY,
        }))
    }

    /// A command's events in one statement, with the task's snapshot when
    /// cqrs-es asks for one (the events reached a multiple of
    /// `SNAPSHOT_EVERY`: the state it hands over is folded to that one).
    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        if events.iter().any(|e| e.aggregate_id != first.aggregate_id) {
            return Err(PersistenceError::UnknownError(
                "one commit holds the events of one aggregate".into(),
            ));
        }
        let last = events.last().map_or(0, |e| e.sequence);
        let snapshot_at = i64::try_from(last / SNAPSHOT_EVERY * SNAPSHOT_EVERY).unwrap_or(0);
        // A snapshot is sealed with the writer's key, or not taken.
        let writer = first.metadata.get("user_id").and_then(Value::as_str);
        let snapshot = match (snapshot_update, writer) {
            (Some((_, state, _)), Some(writer)) if snapshot_at > 0 => Some((state, writer)),
            _ => None,
        };
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
        let checked = checked_lists(first)?;
        // A key erased since this process cached it is forgotten and the
        // events sealed again, with the user's new key.
        for _ in 0..2 {
            let (payloads, key) = self.sealed_payloads(events).await?;
            let sealed_snapshot = match &snapshot {
                Some((state, writer)) => Some(
                    self.sealed_snapshot(state, writer, key.as_ref(), &first.aggregate_id)
                        .await?,
                ),
                None => None,
            };
            // A snapshot is sealed with the events' key, or the writer's.
            let key = sealed_snapshot.as_ref().map(|(_, k)| Arc::clone(k)).or(key);
            let shape = Shape {
                sealed: key.is_some(),
                snapshot: sealed_snapshot.is_some(),
                checked: checked.is_some(),
            };
            let mut statement = sqlx::query(&STATEMENTS[shape.index()])
                .bind(A::TYPE)
                .bind(first.aggregate_id.as_str())
                .bind(&sequences)
                .bind(&types)
                .bind(&versions)
                .bind(payloads)
                .bind(&metadata);
            if let Some(key) = &key {
                statement = statement.bind(&key.user_id).bind(&key.key_id);
            }
            if let Some((state, _)) = sealed_snapshot {
                statement = statement.bind(snapshot_at).bind(state);
            }
            if let Some((lists, writer)) = &checked {
                statement = statement.bind(lists).bind(writer);
            }
            let stored = if shape.answers() {
                let row = self
                    .run(async |conn| statement.fetch_one(conn).await)
                    .await?;
                let allowed: bool = row.try_get("allowed").map_err(persistence)?;
                if !allowed {
                    return Err(PersistenceError::UnknownError(Box::new(NotAllowedInList)));
                }
                let stored: i64 = row.try_get("stored").map_err(persistence)?;
                u64::try_from(stored).unwrap_or_default()
            } else {
                self.run(async |conn| statement.execute(conn).await)
                    .await?
                    .rows_affected()
            };
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
    let key = key_of(row)?;
    keys.open_event(&mut payload, &event_type, &aggregate_id, key.get())
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
