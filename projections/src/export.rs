//! A user's data, whole (GDPR articles 15 and 20): one JSON document in the
//! shape of `docs/schemas/export.v1.schema.json`. Every task the user created,
//! each with its state and its full history (who, when, what changed) read
//! from the event store, the truth, up to their last change of it when they
//! may no longer read it; their reminders of tasks they may read and their
//! notifications; and
//! their calendar feed's settings (never its secret). Written as it is read,
//! a page of tasks at a time (their histories in one query), so an account of
//! any size exports in the memory of one page's histories.

use chrono::{DateTime, Utc};
use domain::Version;
use event_store::global_log;
use event_store::history::{self, HistoryEntry};
use futures::TryStreamExt as _;
use serde::Serialize;
use sqlx::PgPool;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use uuid::Uuid;

use crate::task_list::reader_key;
use crate::task_query::Readers;

/// The value of the document's `format`; a new shape gets a new version.
pub const EXPORT_FORMAT: &str = "taskledger.export.v1";
/// Task ids read per query.
const TASKS_PER_PAGE: i64 = 200;

/// How much an export held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exported {
    pub tasks: u64,
    pub events: u64,
    pub reminders: u64,
    pub notifications: u64,
}

#[derive(Serialize)]
struct ExportedTask {
    id: String,
    version: Version,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    /// The task as it stands after its last event, its fields named as in
    /// `history`'s changes.
    state: serde_json::Map<String, serde_json::Value>,
    /// Every event, oldest first.
    history: Vec<HistoryEntry>,
}

#[derive(Serialize, sqlx::FromRow)]
struct ExportedReminder {
    reminder_id: Uuid,
    task_id: Uuid,
    title: String,
    due_at: Option<DateTime<Utc>>,
    remind_at: DateTime<Utc>,
    status: String,
    fired_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, sqlx::FromRow)]
struct ExportedNotification {
    id: Uuid,
    /// `REMINDER` or `INVITATION`.
    kind: String,
    /// The task whose reminder fired; none for an invitation.
    task_id: Option<Uuid>,
    title: String,
    due_at: Option<DateTime<Utc>>,
    remind_at: DateTime<Utc>,
    fired_at: DateTime<Utc>,
    read_at: Option<DateTime<Utc>>,
    /// An invitation's list, role and inviter.
    list_id: Option<Uuid>,
    role: Option<String>,
    invited_by: Option<String>,
}

#[derive(Serialize, sqlx::FromRow)]
struct CalendarFeedSettings {
    /// When the feed's URL was made (or last replaced).
    rotated_at: DateTime<Utc>,
}

/// How many tasks `user` created (the tasks their export holds).
pub async fn task_count(pool: &PgPool, user: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM events
          WHERE aggregate_type = 'Task' AND sequence = 1 AND metadata->>'user_id' = $1",
    )
    .bind(user)
    .fetch_one(pool)
    .await
}

/// Writes `user`'s export to `out`, calling `progress` with the tasks written
/// so far after each page. Fails on the first error; what was written until
/// then is not a complete document.
pub async fn export_user<W: AsyncWrite + Unpin>(
    pool: &PgPool,
    user: &str,
    out: &mut W,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<Exported> {
    let mut exported = Exported::default();
    let head = serde_json::json!({
        "format": EXPORT_FORMAT,
        "user_id": user,
        "exported_at": Utc::now(),
    })
    .to_string();
    // The head's fields, then the lists, in one object.
    out.write_all(head.trim_end_matches('}').as_bytes()).await?;
    out.write_all(b",\"tasks\":[").await?;
    // Whose tasks the user reads now: a task they created is exported whole
    // only while they may read it (ADR 0016).
    let readers = Readers::of(pool, user).await?;
    let readable = |task: &domain::Task| {
        let owner = task.owner().map_or("", |owner| owner.as_str());
        readers.keys().contains(&reader_key(task.list(), owner))
    };
    let mut after = String::new();
    loop {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT aggregate_id FROM events
              WHERE aggregate_type = 'Task' AND sequence = 1
                AND metadata->>'user_id' = $1 AND aggregate_id > $2
              ORDER BY aggregate_id LIMIT $3",
        )
        .bind(user)
        .bind(&after)
        .bind(TASKS_PER_PAGE)
        .fetch_all(pool)
        .await?;
        let Some(last) = ids.last() else { break };
        after = last.clone();
        // The page's histories in one query, ordered by task then sequence.
        let ranges: Vec<(String, i64, i64)> = ids.into_iter().map(|id| (id, 0, i64::MAX)).collect();
        let stored = global_log::aggregates_events(pool, "Task", &ranges).await?;
        for stored in stored.chunk_by(|a, b| a.aggregate_id == b.aggregate_id) {
            let id = stored[0].aggregate_id.clone();
            let Some(now) = history::fold_task(stored)? else {
                continue;
            };
            // One they may no longer read (they left its list, or it moved
            // into another's Inbox) is exported as it stood after their last
            // change of it, with the history up to then: what others did
            // after is not theirs to see.
            let (stored, folded) = if readable(&now.task) {
                (stored, now)
            } else {
                let last = stored
                    .iter()
                    .rposition(|event| written_by(event, user))
                    .unwrap_or(0);
                let seen = &stored[..=last];
                let Some(then) = history::fold_task(seen)? else {
                    continue;
                };
                (seen, then)
            };
            let task = ExportedTask {
                history: history::history_entries(stored, 0)?,
                id,
                version: folded.version,
                created_at: folded.created_at,
                updated_at: folded.updated_at,
                completed_at: folded.completed_at,
                deleted_at: folded.deleted_at,
                state: domain::history::fields(&folded.task),
            };
            separate(out, exported.tasks).await?;
            out.write_all(&serde_json::to_vec(&task)?).await?;
            exported.tasks += 1;
            exported.events += task.history.len() as u64;
        }
        progress(exported.tasks);
    }
    out.write_all(b"],\"reminders\":[").await?;
    // A reminder's title follows its task: only those of tasks the user may
    // read now.
    let mut reminders = sqlx::query_as::<_, ExportedReminder>(
        "SELECT r.reminder_id, r.task_id, r.title, r.due_at, r.remind_at, r.status, r.fired_at
           FROM reminders r JOIN task_list t ON t.id = r.task_id
          WHERE r.user_id = $1
            AND (t.user_id = $1
                 OR EXISTS (SELECT 1 FROM list_members m
                             WHERE m.list_id = t.list_id AND m.user_id = $1))
          ORDER BY r.remind_at, r.reminder_id",
    )
    .bind(user)
    .fetch(pool);
    while let Some(reminder) = reminders.try_next().await? {
        separate(out, exported.reminders).await?;
        out.write_all(&serde_json::to_vec(&reminder)?).await?;
        exported.reminders += 1;
    }
    drop(reminders);
    out.write_all(b"],\"notifications\":[").await?;
    let mut notifications = sqlx::query_as::<_, ExportedNotification>(
        "SELECT id, kind, task_id, title, due_at, remind_at, fired_at, read_at, list_id, role,
                from_user AS invited_by
           FROM notifications WHERE user_id = $1 ORDER BY seq",
    )
    .bind(user)
    .fetch(pool);
    while let Some(notification) = notifications.try_next().await? {
        separate(out, exported.notifications).await?;
        out.write_all(&serde_json::to_vec(&notification)?).await?;
        exported.notifications += 1;
    }
    drop(notifications);
    // The API's table: a database only the workers ever migrated has none.
    let feeds: bool = sqlx::query_scalar("SELECT to_regclass('calendar_feeds') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    let feed: Option<CalendarFeedSettings> = if feeds {
        sqlx::query_as("SELECT rotated_at FROM calendar_feeds WHERE user_id = $1")
            .bind(user)
            .fetch_optional(pool)
            .await?
    } else {
        None
    };
    out.write_all(b"],\"calendar_feed\":").await?;
    out.write_all(&serde_json::to_vec(&feed)?).await?;
    out.write_all(b"}\n").await?;
    out.flush().await?;
    Ok(exported)
}

/// Whether `user`'s request stored `event`.
fn written_by(event: &global_log::StoredEvent, user: &str) -> bool {
    event
        .metadata
        .get("user_id")
        .and_then(serde_json::Value::as_str)
        == Some(user)
}

/// A comma before every item of a list but its first.
async fn separate<W: AsyncWrite + Unpin>(out: &mut W, written: u64) -> std::io::Result<()> {
    if written > 0 {
        out.write_all(b",").await?;
    }
    Ok(())
}
