//! The task list read model: one row per task, kept at the version of the last
//! event applied. Messages arrive at least once and possibly with gaps; a
//! duplicate is skipped, and the events up to the one a message names are
//! read from the event store, which fills any gap on the way.

use chrono::{DateTime, Utc};
use domain::TaskEvent;
use event_store::global_log;
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::consumer::{Outcome, Projection, ProjectionError, TaskEventMessage};

#[derive(Debug, Default, Clone, Copy)]
pub struct TaskListProjection;

impl Projection for TaskListProjection {
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
        let data = &message.data;
        let task_id = Uuid::parse_str(&data.task_id)
            .map_err(|_| ProjectionError::Invalid("task_id is not a UUID".into()))?;
        let sequence = i64::try_from(data.sequence)
            .map_err(|_| ProjectionError::Invalid("sequence out of range".into()))?;
        let version: i64 =
            sqlx::query_scalar("SELECT version FROM task_list WHERE id = $1 FOR UPDATE")
                .bind(task_id)
                .fetch_optional(&mut *tx)
                .await?
                .unwrap_or(0);
        if sequence <= version {
            return Ok(Outcome::Duplicate);
        }
        let stored =
            global_log::aggregate_events(&mut *tx, "Task", &data.task_id, version, sequence)
                .await?;
        let Some(named) = stored.last() else {
            return Err(ProjectionError::Invalid(
                "the event store holds no such event".into(),
            ));
        };
        if named.sequence != sequence || named.event_id.to_string() != message.id {
            return Err(ProjectionError::Invalid(
                "the event store holds no such event".into(),
            ));
        }
        if stored.len() as i64 != sequence - version {
            return Err(ProjectionError::Invalid(format!(
                "events {} to {sequence} of this task are not all in the event store",
                version + 1
            )));
        }
        if stored.len() > 1 {
            // Earlier events of this task have not arrived (yet): fill the gap.
            metrics::counter!("taskledger_projection_gaps_healed_total").increment(1);
        }
        for event in stored {
            let user_id = event.metadata_str("user_id").unwrap_or_default().to_owned();
            let parsed = parse_event(&event.event_type, &event.event_data())?;
            apply_event(
                tx,
                task_id,
                &user_id,
                event.sequence,
                event.recorded_at,
                parsed,
            )
            .await?;
        }
        Ok(Outcome::Applied)
    }
}

fn parse_event(event_type: &str, data: &serde_json::Value) -> Result<TaskEvent, ProjectionError> {
    let tagged = serde_json::json!({ event_type: data });
    serde_json::from_value(tagged)
        .map_err(|e| ProjectionError::Invalid(format!("cannot read {event_type}: {e}")))
}

async fn apply_event(
    tx: &mut PgConnection,
    task_id: Uuid,
    user_id: &str,
    sequence: i64,
    at: DateTime<Utc>,
    event: TaskEvent,
) -> Result<(), ProjectionError> {
    let query = match event {
        TaskEvent::TaskCreated {
            title,
            description,
            created_at,
            ..
        } => sqlx::query(
            "INSERT INTO task_list (id, user_id, title, description, status, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'open', $5, $6, $6)",
        )
        .bind(task_id)
        .bind(user_id)
        .bind(title)
        .bind(description)
        .bind(sequence)
        .bind(created_at),
        TaskEvent::TaskEdited {
            title, description, ..
        } => sqlx::query(
            "UPDATE task_list SET title = $3, description = $4, version = $2, updated_at = $5 WHERE id = $1",
        )
        .bind(task_id)
        .bind(sequence)
        .bind(title)
        .bind(description)
        .bind(at),
        TaskEvent::TaskCompleted { completed_at } => sqlx::query(
            "UPDATE task_list SET status = 'completed', completed_at = $3, version = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(task_id)
        .bind(sequence)
        .bind(completed_at),
        TaskEvent::TaskReopened { reopened_at } => sqlx::query(
            "UPDATE task_list SET status = 'open', completed_at = NULL, version = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(task_id)
        .bind(sequence)
        .bind(reopened_at),
        TaskEvent::TaskDeleted { deleted_at } => sqlx::query(
            "UPDATE task_list SET deleted_at = $3, version = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(task_id)
        .bind(sequence)
        .bind(deleted_at),
    };
    let applied = query.execute(&mut *tx).await?.rows_affected();
    if applied != 1 {
        return Err(ProjectionError::Invalid(format!(
            "event {sequence} of task {task_id} has no task to apply to"
        )));
    }
    Ok(())
}

/// A task as the read model holds it.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct TaskRow {
    pub id: Uuid,
    pub user_id: String,
    pub title: String,
    pub description: Option<String>,
    pub status: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, user_id, title, description, status, version, created_at, updated_at, completed_at, deleted_at";

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

/// The keyset position of a row in the newest-first listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedKey {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// Up to `limit` of `user_id`'s tasks, newest first, strictly after `after`.
#[tracing::instrument(skip(executor))]
pub async fn newest_first<'e>(
    executor: impl PgExecutor<'e>,
    user_id: &str,
    after: Option<CreatedKey>,
    limit: i64,
) -> Result<Vec<TaskRow>, sqlx::Error> {
    match after {
        None => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM task_list
                  WHERE user_id = $1 AND deleted_at IS NULL
                  ORDER BY created_at DESC, id DESC LIMIT $2"
            ))
            .bind(user_id)
            .bind(limit)
            .fetch_all(executor)
            .await
        }
        Some(key) => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM task_list
                  WHERE user_id = $1 AND deleted_at IS NULL AND (created_at, id) < ($2, $3)
                  ORDER BY created_at DESC, id DESC LIMIT $4"
            ))
            .bind(user_id)
            .bind(key.created_at)
            .bind(key.id)
            .bind(limit)
            .fetch_all(executor)
            .await
        }
    }
}
