//! The task list read model: one row per task, kept at the version of the last
//! event applied. Messages arrive at least once and possibly with gaps; a
//! duplicate is skipped, and the events up to the one a message names are
//! read from the event store, which fills any gap on the way.

use chrono::{DateTime, Utc};
use domain::values::{Due, Priority, Reminders, TagSet, TimeZone};
use domain::{Series, TaskEvent, TaskStatus, Version};
use std::collections::HashMap;

use event_store::global_log::{self, StoredEvent};
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::consumer::{task_ids, Outcome, Projection, ProjectionError, TaskEventMessage};

#[derive(Debug, Default, Clone, Copy)]
pub struct TaskListProjection;

impl Projection for TaskListProjection {
    type Message = TaskEventMessage;

    fn name(&self) -> &'static str {
        "task-list"
    }

    /// The message only says which event happened; the event itself is read
    /// from the event store, so a forged or stale message cannot put anything
    /// into the read model that the store does not hold.
    async fn apply(
        &self,
        tx: &mut PgConnection,
        message: &TaskEventMessage,
    ) -> Result<Outcome, ProjectionError> {
        let outcomes = self.apply_batch(tx, std::slice::from_ref(message)).await?;
        Ok(outcomes[0])
    }

    /// The batch in four steps: lock the batch's rows, read every event they
    /// lack up to the last one named in one query, check that each message
    /// names an event the store holds, then apply each task's events in order.
    /// Events of a task the messages skipped (a gap) are applied on the way.
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        messages: &[TaskEventMessage],
    ) -> Result<Vec<Outcome>, ProjectionError> {
        let (ids, unique) = task_ids(messages)?;
        // Locked in id order, so two writers of overlapping batches cannot deadlock.
        let versions: HashMap<Uuid, Version> = sqlx::query_as(
            "SELECT id, version FROM task_list WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&unique)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let version_of = |id: &Uuid| versions.get(id).copied().unwrap_or(0);

        // Each task is brought up to the highest sequence a message names;
        // `order` keeps the tasks in the order they first appear.
        let mut up_to: HashMap<Uuid, Version> = HashMap::new();
        let mut order = Vec::new();
        let mut outcomes = Vec::with_capacity(messages.len());
        for (id, message) in ids.iter().zip(messages) {
            let reached = up_to.get(id).copied().unwrap_or_else(|| version_of(id));
            if message.data.sequence <= reached {
                outcomes.push(Outcome::Duplicate);
                continue;
            }
            if !up_to.contains_key(id) {
                order.push(*id);
            }
            up_to.insert(*id, message.data.sequence);
            outcomes.push(Outcome::Applied);
        }
        if order.is_empty() {
            return Ok(outcomes);
        }
        let ranges: Vec<(String, Version, Version)> = order
            .iter()
            .map(|id| (id.to_string(), version_of(id), up_to[id]))
            .collect();
        let mut stored: HashMap<Uuid, Vec<StoredEvent>> = HashMap::with_capacity(order.len());
        for event in global_log::aggregates_events(&mut *tx, "Task", &ranges).await? {
            let id = Uuid::parse_str(&event.aggregate_id)
                .map_err(|_| ProjectionError::Invalid("a stored task id is not a UUID".into()))?;
            stored.entry(id).or_default().push(event);
        }

        for (id, message) in ids.iter().zip(messages) {
            let version = version_of(id);
            if message.data.sequence <= version {
                continue;
            }
            let events = stored.get(id).map(Vec::as_slice).unwrap_or_default();
            let named = events.get((message.data.sequence - version - 1) as usize);
            if !named.is_some_and(|e| {
                e.sequence == message.data.sequence && e.event_id.to_string() == message.id
            }) {
                return Err(ProjectionError::Invalid(
                    "the event store holds no such event".into(),
                ));
            }
        }
        // New tasks in one statement, then every other event in its task's order
        // (a task's creation is its first event).
        let mut named = 0;
        let mut created = Vec::new();
        let mut later = Vec::new();
        for id in &order {
            let (version, target) = (version_of(id), up_to[id]);
            let events = stored.remove(id).unwrap_or_default();
            if events.len() as i64 != target - version {
                return Err(ProjectionError::Invalid(format!(
                    "events {} to {target} of this task are not all in the event store",
                    version + 1
                )));
            }
            for event in events {
                let user_id = event.metadata_str("user_id").unwrap_or_default();
                let parsed =
                    parse_event(&event.event_type, &event.event_version, event.event_data())?;
                match change(*id, user_id, event.sequence, parsed) {
                    Change::Insert(row) => created.push(row),
                    Change::Update(other) => later.push((
                        *id,
                        user_id.to_owned(),
                        event.sequence,
                        event.recorded_at,
                        other,
                    )),
                }
                named += 1;
            }
        }
        if !created.is_empty() {
            insert_tasks(tx, created).await?;
        }
        for (id, user_id, sequence, at, event) in later {
            apply_event(tx, id, &user_id, sequence, at, event).await?;
        }
        let applied = outcomes.iter().filter(|o| **o == Outcome::Applied).count();
        if named > applied {
            // Events no message of this batch named: a gap, filled from the store.
            metrics::counter!(infra::metric::PROJECTION_GAPS_HEALED)
                .increment((named - applied) as u64);
        }
        Ok(outcomes)
    }
}

fn parse_event(
    event_type: &str,
    event_version: &str,
    data: serde_json::Value,
) -> Result<TaskEvent, ProjectionError> {
    domain::upcast::parse_stored(event_type, event_version, data).map_err(|e| {
        ProjectionError::Invalid(format!("cannot read {event_type} {event_version}: {e}"))
    })
}

/// An UPDATE of one row that also moves its version ($2) and `updated_at` ($3).
macro_rules! update {
    ($set:literal) => {
        concat!(
            "UPDATE task_list SET ",
            $set,
            ", version = $2, updated_at = $3, change_seq = nextval('task_change_seq') WHERE id = $1"
        )
    };
}

async fn apply_event(
    tx: &mut PgConnection,
    task_id: Uuid,
    user_id: &str,
    sequence: Version,
    at: DateTime<Utc>,
    event: TaskEvent,
) -> Result<(), ProjectionError> {
    let query = match event {
        TaskEvent::TaskCreated { .. } => {
            let Change::Insert(row) = change(task_id, user_id, sequence, event) else {
                return Err(ProjectionError::Invalid("not a creation".into()));
            };
            return insert_tasks(tx, vec![row]).await;
        }
        TaskEvent::TaskEdited {
            title, description, ..
        } => sqlx::query(update!("title = $4, description = $5"))
            .bind(task_id)
            .bind(sequence)
            .bind(at)
            .bind(title)
            .bind(description),
        TaskEvent::TaskCompleted {
            completed_at,
            stopped_repeating,
            ..
        } => sqlx::query(update!(
            "status = 'completed', completed_at = $4,
             recurrence = CASE WHEN $5 THEN NULL ELSE recurrence END,
             series_id = CASE WHEN $5 THEN NULL ELSE series_id END,
             occurrence = CASE WHEN $5 THEN NULL ELSE occurrence END"
        ))
        .bind(task_id)
        .bind(sequence)
        .bind(at)
        .bind(completed_at)
        .bind(stopped_repeating),
        TaskEvent::TaskReopened { .. } => {
            sqlx::query(update!("status = 'open', completed_at = NULL"))
                .bind(task_id)
                .bind(sequence)
                .bind(at)
        }
        TaskEvent::TaskDeleted { deleted_at } => sqlx::query(update!("deleted_at = $4"))
            .bind(task_id)
            .bind(sequence)
            .bind(at)
            .bind(deleted_at),
        TaskEvent::TaskRestored { .. } => sqlx::query(update!("deleted_at = NULL"))
            .bind(task_id)
            .bind(sequence)
            .bind(at),
        TaskEvent::TaskPrioritySet { priority, .. } => sqlx::query(update!("priority = $4"))
            .bind(task_id)
            .bind(sequence)
            .bind(at)
            .bind(priority.rank()),
        TaskEvent::TaskTagsChanged { tags, .. } => sqlx::query(update!("tags = $4"))
            .bind(task_id)
            .bind(sequence)
            .bind(at)
            .bind(tags.to_strings()),
        TaskEvent::TaskDueDateSet { due, .. } => {
            sqlx::query(update!("due_at = $4, due_date = $5, time_zone = $6"))
                .bind(task_id)
                .bind(sequence)
                .bind(at)
                .bind(due.instant())
                .bind(due.date())
                .bind(due.time_zone.to_string())
        }
        TaskEvent::TaskDueDateCleared { .. } => {
            sqlx::query(update!("due_at = NULL, due_date = NULL, time_zone = NULL"))
                .bind(task_id)
                .bind(sequence)
                .bind(at)
        }
        TaskEvent::TaskRemindersSet { reminders, .. } => sqlx::query(update!("reminders = $4"))
            .bind(task_id)
            .bind(sequence)
            .bind(at)
            .bind(to_json(&reminders)?),
        TaskEvent::TaskRecurrenceSet { series, .. } => {
            sqlx::query(update!("recurrence = $4, series_id = $5, occurrence = $6"))
                .bind(task_id)
                .bind(sequence)
                .bind(at)
                .bind(series.rule.as_str().to_owned())
                .bind(series.id)
                .bind(series.occurrence as i32)
        }
        TaskEvent::TaskRecurrenceCleared { .. } => sqlx::query(update!(
            "recurrence = NULL, series_id = NULL, occurrence = NULL"
        ))
        .bind(task_id)
        .bind(sequence)
        .bind(at),
    };
    let applied = query.execute(&mut *tx).await?.rows_affected();
    if applied != 1 {
        return Err(ProjectionError::Invalid(format!(
            "event {sequence} of task {task_id} has no task to apply to"
        )));
    }
    Ok(())
}

/// What an event does to the task list: a new row, or a change to one.
enum Change {
    Insert(NewRow),
    Update(TaskEvent),
}

/// The row a `TaskCreated` event makes; any other event changes a row.
fn change(id: Uuid, user_id: &str, version: Version, event: TaskEvent) -> Change {
    match event {
        TaskEvent::TaskCreated {
            title,
            description,
            created_at,
            priority,
            tags,
            due,
            reminders,
            series,
            ..
        } => Change::Insert(NewRow {
            id,
            user_id: user_id.to_owned(),
            title,
            description,
            version,
            created_at,
            priority,
            tags,
            due,
            reminders,
            series,
        }),
        other => Change::Update(other),
    }
}

struct NewRow {
    id: Uuid,
    user_id: String,
    title: String,
    description: Option<String>,
    version: Version,
    created_at: DateTime<Utc>,
    priority: Priority,
    tags: TagSet,
    due: Option<Due>,
    reminders: Reminders,
    series: Option<Series>,
}

/// Inserts new tasks in one statement: each column as an array, tags (arrays
/// of varying length, which Postgres arrays cannot nest) as JSON.
async fn insert_tasks(tx: &mut PgConnection, rows: Vec<NewRow>) -> Result<(), ProjectionError> {
    let count = rows.len();
    let mut columns = NewColumns::default();
    for row in rows {
        columns.push(row)?;
    }
    let inserted = sqlx::query(
        "INSERT INTO task_list (id, user_id, title, description, status, version, created_at, updated_at,
                                priority, tags, due_at, due_date, time_zone, reminders, recurrence,
                                series_id, occurrence)
         SELECT id, user_id, title, description, 'open', version, created_at, created_at, priority,
                ARRAY(SELECT jsonb_array_elements_text(tags)), due_at, due_date, time_zone, reminders,
                recurrence, series_id, occurrence
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[],
                       $7::smallint[], $8::jsonb[], $9::timestamptz[], $10::date[], $11::text[],
                       $12::jsonb[], $13::text[], $14::uuid[], $15::int[])
             AS t(id, user_id, title, description, version, created_at, priority, tags, due_at,
                  due_date, time_zone, reminders, recurrence, series_id, occurrence)",
    )
    .bind(columns.id)
    .bind(columns.user_id)
    .bind(columns.title)
    .bind(columns.description)
    .bind(columns.version)
    .bind(columns.created_at)
    .bind(columns.priority)
    .bind(columns.tags)
    .bind(columns.due_at)
    .bind(columns.due_date)
    .bind(columns.time_zone)
    .bind(columns.reminders)
    .bind(columns.recurrence)
    .bind(columns.series_id)
    .bind(columns.occurrence)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted as usize != count {
        return Err(ProjectionError::Invalid(format!(
            "{inserted} of {count} new tasks were inserted"
        )));
    }
    Ok(())
}

/// New rows as columns, for `insert_tasks`.
#[derive(Default)]
struct NewColumns {
    id: Vec<Uuid>,
    user_id: Vec<String>,
    title: Vec<String>,
    description: Vec<Option<String>>,
    version: Vec<Version>,
    created_at: Vec<DateTime<Utc>>,
    priority: Vec<i16>,
    tags: Vec<serde_json::Value>,
    due_at: Vec<Option<DateTime<Utc>>>,
    due_date: Vec<Option<chrono::NaiveDate>>,
    time_zone: Vec<Option<String>>,
    reminders: Vec<serde_json::Value>,
    recurrence: Vec<Option<String>>,
    series_id: Vec<Option<Uuid>>,
    occurrence: Vec<Option<i32>>,
}

impl NewColumns {
    fn push(&mut self, row: NewRow) -> Result<(), ProjectionError> {
        self.id.push(row.id);
        self.user_id.push(row.user_id);
        self.title.push(row.title);
        self.description.push(row.description);
        self.version.push(row.version);
        self.created_at.push(row.created_at);
        self.priority.push(row.priority.rank());
        self.tags
            .push(serde_json::Value::from(row.tags.to_strings()));
        self.due_at.push(row.due.map(|d| d.instant()));
        self.due_date.push(row.due.and_then(|d| d.date()));
        self.time_zone
            .push(row.due.map(|d| d.time_zone.to_string()));
        self.reminders.push(to_json(&row.reminders)?);
        self.recurrence
            .push(row.series.as_ref().map(|s| s.rule.as_str().to_owned()));
        self.series_id.push(row.series.as_ref().map(|s| s.id));
        self.occurrence
            .push(row.series.as_ref().map(|s| s.occurrence as i32));
        Ok(())
    }
}

fn to_json(reminders: &Reminders) -> Result<serde_json::Value, ProjectionError> {
    serde_json::to_value(reminders).map_err(|e| ProjectionError::Invalid(e.to_string()))
}

/// A task as the read model holds it.
#[derive(Debug, Clone, PartialEq, FromRow, serde::Serialize, serde::Deserialize)]
pub struct TaskRow {
    pub id: Uuid,
    pub user_id: String,
    pub title: String,
    pub description: Option<String>,
    pub status: String,
    pub version: Version,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub priority: i16,
    pub tags: Vec<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub due_date: Option<chrono::NaiveDate>,
    pub time_zone: Option<String>,
    pub reminders: serde_json::Value,
    pub recurrence: Option<String>,
    pub series_id: Option<Uuid>,
    pub occurrence: Option<i32>,
    /// The number of the last change: the owner's change cursor.
    pub change_seq: i64,
}

impl TaskRow {
    /// Where the task stands: the trash overrides whether it was done.
    pub fn status(&self) -> TaskStatus {
        match (&self.deleted_at, self.status.as_str()) {
            (Some(_), _) => TaskStatus::Deleted,
            (None, "completed") => TaskStatus::Completed,
            (None, _) => TaskStatus::Open,
        }
    }

    /// The due date as the domain knows it.
    pub fn due(&self) -> Option<Due> {
        let zone = self
            .time_zone
            .as_deref()
            .and_then(|z| TimeZone::parse(z).ok())
            .unwrap_or(TimeZone::UTC);
        match (self.due_date, self.due_at) {
            (Some(date), _) => Some(Due::all_day(date, zone)),
            (None, Some(at)) => Some(Due::at(at, zone)),
            (None, None) => None,
        }
    }

    pub fn reminders(&self) -> Reminders {
        serde_json::from_value(self.reminders.clone()).unwrap_or_default()
    }

    /// The next reminder that will fire after `now`, if any.
    pub fn next_reminder_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.reminders().next_after(now, self.due().as_ref())
    }
}

pub const COLUMNS: &str =
    "id, user_id, title, description, status, version, created_at, updated_at, \
     completed_at, deleted_at, priority, tags, due_at, due_date, time_zone, reminders, recurrence, \
     series_id, occurrence, change_seq";

/// One of `user_id`'s tasks that is not deleted.
#[tracing::instrument(skip(executor))]
pub async fn find<'e>(
    executor: impl PgExecutor<'e>,
    user_id: &str,
    id: Uuid,
) -> Result<Option<TaskRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM task_list WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(executor)
    .await
}
