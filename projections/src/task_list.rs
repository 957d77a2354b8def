//! The task list read model: one row per task, kept at the version of the last
//! event applied. Each batch reads back the events it names (and any its
//! messages skipped) from the event store, and applies them in order.

mod row;

use chrono::{DateTime, Utc};
use domain::values::Reminders;
use domain::{TaskEvent, Version};
use event_store::history::task_event;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::consumer::{Outcome, ProjectionError};
use crate::named_events::{NamedEvents, PerTaskProjection, ReadFrom};

pub use row::{StoredStatus, TaskRow, COLUMNS};

#[derive(Debug, Default, Clone, Copy)]
pub struct TaskListProjection;

impl PerTaskProjection for TaskListProjection {
    const NAME: &'static str = "task-list";
    const LOCK_VERSIONS: &'static str =
        "SELECT id, version FROM task_list WHERE id = ANY($1) ORDER BY id FOR UPDATE";
    /// The events the rows lack.
    const READ_FROM: ReadFrom = ReadFrom::HeldVersion;

    /// Applies each task's events in order: new tasks in one statement (a
    /// task's creation is its first event), then every other event. Events
    /// of a task the messages skipped (a gap) are applied on the way.
    async fn apply_named(
        &self,
        tx: &mut PgConnection,
        named: NamedEvents,
    ) -> Result<Vec<Outcome>, ProjectionError> {
        let gap = named.gap_events();
        let mut created = Vec::new();
        let mut later = Vec::new();
        for task in named.tasks {
            for event in task.events {
                let user_id = event.metadata_str("user_id").unwrap_or_default();
                let parsed =
                    task_event(&event).map_err(|e| ProjectionError::Invalid(e.to_string()))?;
                match change(task.id, user_id, event.sequence, parsed) {
                    Change::Insert(row) => created.push(row),
                    Change::Update(other) => later.push((
                        task.id,
                        user_id.to_owned(),
                        event.sequence,
                        event.recorded_at,
                        other,
                    )),
                }
            }
        }
        // Rows take their `change_seq` as they are written, and the
        // task-updates publisher reads them in that order past a checkpoint:
        // two processes' batches must commit in the order they took their
        // numbers, or a number taken first and committed last is passed
        // over. So the writes of every batch, in whichever process, run one
        // at a time, from here to the commit (docs/adr/0012).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('taskledger-task-list-changes'))")
            .execute(&mut *tx)
            .await?;
        if !created.is_empty() {
            insert_tasks(tx, created).await?;
        }
        for (id, user_id, sequence, at, event) in later {
            apply_event(tx, id, &user_id, sequence, at, event).await?;
        }
        if gap > 0 {
            metrics::counter!(infra::metric::PROJECTION_GAPS_HEALED).increment(gap as u64);
        }
        Ok(named.outcomes)
    }
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
        created @ TaskEvent::TaskCreated { .. } => Change::Insert(NewRow {
            id,
            user_id: user_id.to_owned(),
            version,
            created,
        }),
        other => Change::Update(other),
    }
}

/// A task's first row: its id, owner and version beside the `TaskCreated`
/// event whose fields fill the rest.
struct NewRow {
    id: Uuid,
    user_id: String,
    version: Version,
    created: TaskEvent,
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
        let TaskEvent::TaskCreated {
            title,
            description,
            created_at,
            priority,
            tags,
            due,
            reminders,
            series,
            ..
        } = row.created
        else {
            return Err(ProjectionError::Invalid(
                "a new row needs a creation".into(),
            ));
        };
        self.id.push(row.id);
        self.user_id.push(row.user_id);
        self.title.push(title);
        self.description.push(description);
        self.version.push(row.version);
        self.created_at.push(created_at);
        self.priority.push(priority.rank());
        self.tags.push(serde_json::Value::from(tags.to_strings()));
        self.due_at.push(due.map(|d| d.instant()));
        self.due_date.push(due.and_then(|d| d.date()));
        self.time_zone.push(due.map(|d| d.time_zone.to_string()));
        self.reminders.push(to_json(&reminders)?);
        self.recurrence
            .push(series.as_ref().map(|s| s.rule.as_str().to_owned()));
        self.series_id.push(series.as_ref().map(|s| s.id));
        self.occurrence
            .push(series.as_ref().map(|s| s.occurrence as i32));
        Ok(())
    }
}

fn to_json(reminders: &Reminders) -> Result<serde_json::Value, ProjectionError> {
    serde_json::to_value(reminders).map_err(|e| ProjectionError::Invalid(e.to_string()))
}

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
