//! Reading the global log of events in commit-safe order.
//!
//! `global_position` values are handed out at insert, but become visible at
//! commit, so "everything after the highest position seen" skips events whose
//! transaction commits late. Readers therefore only read events whose
//! transaction is older than every transaction still running (the horizon) and
//! order by `(transaction_id, global_position)`; see docs/adr/0001.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

use crate::keys::KeyCache;

/// A point in the global log. `transaction_id` is a Postgres `xid8`, carried as
/// text on the wire because sqlx has no `xid8` codec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogPosition {
    pub transaction_id: u64,
    pub global_position: i64,
}

/// One event as stored, with its place in the global log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub position: LogPosition,
    pub event_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    /// Its personal fields were sealed with a key that is gone: they read as
    /// erased (see `keys`).
    pub erased: bool,
}

impl StoredEvent {
    /// The event's own fields: postgres-es stores `{"TaskCompleted": {...}}`.
    pub fn event_data(&self) -> Value {
        match &self.payload {
            Value::Object(map) if map.len() == 1 => {
                map.values().next().cloned().unwrap_or(Value::Null)
            }
            other => other.clone(),
        }
    }

    /// A metadata value stamped by the command service (`user_id`, `correlation_id`).
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
}

#[derive(FromRow)]
struct EventRow {
    transaction_id: String,
    global_position: i64,
    event_id: Uuid,
    recorded_at: DateTime<Utc>,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
    /// The data key of the user who sealed the event, as `user_keys` holds
    /// it: read with the event, in the same snapshot, so a read after an
    /// erasure committed finds no key.
    #[sqlx(default)]
    sealing_key_id: Option<String>,
    #[sqlx(default)]
    sealing_key: Option<Vec<u8>>,
}

impl StoredEvent {
    /// The event with its personal fields opened (or read as erased).
    fn opened(mut row: EventRow, keys: &mut KeyCache) -> Result<Self, sqlx::Error> {
        let erased = keys
            .open_event(
                &mut row.payload,
                &row.event_type,
                &row.aggregate_id,
                row.sealing_key_id
                    .as_deref()
                    .zip(row.sealing_key.as_deref()),
            )
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let mut event = Self::try_from(row)?;
        event.erased = erased;
        Ok(event)
    }
}

fn opened_all(rows: Vec<EventRow>) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let mut keys = KeyCache::default();
    rows.into_iter()
        .map(|row| StoredEvent::opened(row, &mut keys))
        .collect()
}

/// The event as stored: personal fields still sealed.
impl TryFrom<EventRow> for StoredEvent {
    type Error = sqlx::Error;

    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        let transaction_id = row
            .transaction_id
            .parse()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok(Self {
            position: LogPosition {
                transaction_id,
                global_position: row.global_position,
            },
            event_id: row.event_id,
            recorded_at: row.recorded_at,
            aggregate_type: row.aggregate_type,
            aggregate_id: row.aggregate_id,
            sequence: row.sequence,
            event_type: row.event_type,
            event_version: row.event_version,
            payload: row.payload,
            metadata: row.metadata,
            erased: false,
        })
    }
}

const EVENT_COLUMNS: &str = "transaction_id::text AS transaction_id, global_position, event_id, \
     recorded_at, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata";

/// The events with the data key of whoever sealed each, for reading opened.
pub(crate) const EVENTS_WITH_KEYS: &str =
    "events LEFT JOIN user_keys k ON k.user_id = events.sealed_by";
/// The columns of [`EVENTS_WITH_KEYS`] an opened read selects.
pub(crate) const OPENED_COLUMNS: &str = "transaction_id::text AS transaction_id, global_position, event_id, \
     recorded_at, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, \
     k.key_id AS sealing_key_id, k.wrapped AS sealing_key";

/// Up to `limit` committed events after `after`, in commit-safe order. Events of
/// transactions still running, and of any transaction newer than the oldest one
/// still running, wait for a later call.
#[tracing::instrument(skip(executor), fields(after = ?after))]
pub async fn read_committed_after<'e>(
    executor: impl PgExecutor<'e>,
    after: LogPosition,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events
          WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
            AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY transaction_id, global_position
          LIMIT $3"
    );
    let rows: Vec<EventRow> = sqlx::query_as(&sql)
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(limit)
        .fetch_all(executor)
        .await?;
    rows.into_iter().map(StoredEvent::try_from).collect()
}

/// One aggregate's events with `sequence` in `(after_sequence, up_to]`, in order:
/// how a projection heals a gap and how an auditor replays a task.
#[tracing::instrument(skip(executor))]
pub async fn aggregate_events<'e>(
    executor: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
    after_sequence: i64,
    up_to: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let sql = format!(
        "SELECT {OPENED_COLUMNS} FROM {EVENTS_WITH_KEYS}
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 AND sequence <= $4
          ORDER BY sequence"
    );
    let rows: Vec<EventRow> = sqlx::query_as(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after_sequence)
        .bind(up_to)
        .fetch_all(executor)
        .await?;
    opened_all(rows)
}

/// Several aggregates' events at once: for each `(aggregate_id, after, up_to)`,
/// the events with `sequence` in `(after, up_to]`; ordered by aggregate, then
/// sequence. How a projection reads a whole batch in one query.
#[tracing::instrument(skip_all, fields(aggregates = ranges.len()))]
pub async fn aggregates_events<'e>(
    executor: impl PgExecutor<'e>,
    aggregate_type: &str,
    ranges: &[(String, i64, i64)],
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let sql = format!(
        "SELECT e.* FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS wanted(id, after, up_to)
           CROSS JOIN LATERAL (
                 SELECT {OPENED_COLUMNS} FROM {EVENTS_WITH_KEYS}
                  WHERE aggregate_type = $1 AND aggregate_id = wanted.id
                    AND sequence > wanted.after AND sequence <= wanted.up_to) AS e
          ORDER BY e.aggregate_id, e.sequence"
    );
    let ids: Vec<&str> = ranges.iter().map(|(id, _, _)| id.as_str()).collect();
    let afters: Vec<i64> = ranges.iter().map(|(_, after, _)| *after).collect();
    let up_tos: Vec<i64> = ranges.iter().map(|(_, _, up_to)| *up_to).collect();
    let rows: Vec<EventRow> = sqlx::query_as(&sql)
        .bind(aggregate_type)
        .bind(&ids)
        .bind(&afters)
        .bind(&up_tos)
        .fetch_all(executor)
        .await?;
    opened_all(rows)
}

/// Every event of one aggregate type, ordered by aggregate, then sequence,
/// as a stream (rows arrive as Postgres sends them, so memory stays bounded
/// whatever the store's size): how a rebuild reads the whole store.
pub fn every_aggregates_events<'e, 'q: 'e>(
    executor: impl PgExecutor<'e> + 'e,
    aggregate_type: &'q str,
) -> impl futures::Stream<Item = Result<StoredEvent, sqlx::Error>> + 'e {
    use futures::StreamExt;
    let mut keys = KeyCache::default();
    sqlx::query_as::<_, EventRow>(EVERY_AGGREGATES_EVENTS.as_str())
        .bind(aggregate_type)
        .fetch(executor)
        .map(move |row| row.and_then(|row| StoredEvent::opened(row, &mut keys)))
}

static EVERY_AGGREGATES_EVENTS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {OPENED_COLUMNS} FROM {EVENTS_WITH_KEYS} WHERE aggregate_type = $1 ORDER BY aggregate_id, sequence"
    )
});
