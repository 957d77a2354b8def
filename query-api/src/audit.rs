//! Audit over GraphQL: a task's history, event by event, and the task as it
//! stood at any instant, both read from the event store (the truth), not the
//! read model. Another user's task answers exactly like a missing one.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Json, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::values::TaskId;
use event_store::command::CommandService;
use event_store::history::{self, HistoryError};
use sqlx::PgPool;
use uuid::Uuid;

use crate::paging::page_size;
use crate::query::Task;
use api_core::error::{ApiError, ApiResult};
use api_core::request::{actor, service};

/// One field an event changed.
#[derive(Debug, SimpleObject)]
pub struct FieldChange {
    pub field: String,
    /// The value before (`null` where there was none), as JSON.
    pub old: Json<serde_json::Value>,
    pub new: Json<serde_json::Value>,
}

/// One event of a task's history.
#[derive(Debug, SimpleObject)]
pub struct TaskEventEntry {
    /// The task's version after this event: 1 for its creation.
    pub sequence: i64,
    /// For example `TaskCompleted`.
    pub event_type: String,
    pub event_version: String,
    pub recorded_at: DateTime<Utc>,
    /// The user whose request stored it.
    pub actor: Option<String>,
    /// The `x-correlation-id` of that request.
    pub correlation_id: Option<String>,
    /// The fields of the task it changed, old and new.
    pub changes: Vec<FieldChange>,
    /// The event's own data, in its current shape.
    pub data: Json<serde_json::Value>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Every event of your task `id`, oldest first, 20 a page unless `first`
    /// says otherwise (at most 100); `null` if there is no such task of yours.
    #[graphql(complexity = "(first.unwrap_or(20).clamp(1, 100) as usize) * child_complexity + 1")]
    async fn task_history(
        &self,
        ctx: &Context<'_>,
        id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Option<Connection<String, TaskEventEntry>>> {
        actor(ctx)?;
        let id = parse_id(&id)?;
        let first = page_size(first)?;
        let after_sequence = match after.as_deref() {
            None => 0,
            Some(cursor) => cursor
                .parse::<i64>()
                .ok()
                .filter(|sequence| *sequence > 0)
                .ok_or_else(|| ApiError::invalid("after", "is not a cursor from this history"))?,
        };
        // One more than asked, to tell whether another page follows.
        let found = history::task_history(pool(ctx)?, &id.to_string(), after_sequence, first + 1)
            .await
            .map_err(history_error)?;
        let Some((_, mut entries)) = found else {
            return Ok(None);
        };
        if !readable(ctx, id).await? {
            return Ok(None);
        }
        let has_next = entries.len() as i64 > first;
        entries.truncate(first as usize);
        let mut connection = Connection::new(after_sequence > 0, has_next);
        connection.edges.extend(entries.into_iter().map(|entry| {
            Edge::new(
                entry.sequence.to_string(),
                TaskEventEntry {
                    sequence: entry.sequence,
                    event_type: entry.event_type,
                    event_version: entry.event_version,
                    recorded_at: entry.recorded_at,
                    actor: entry.actor,
                    correlation_id: entry.correlation_id,
                    changes: entry
                        .changes
                        .into_iter()
                        .map(|c| FieldChange {
                            field: c.field,
                            old: Json(c.old),
                            new: Json(c.new),
                        })
                        .collect(),
                    data: Json(entry.data),
                },
            )
        }));
        Ok(Some(connection))
    }

    /// What bringing your task `id` from version `fromVersion` to version
    /// `toVersion` changes, field by field (old: at `fromVersion`, new: at
    /// `toVersion`): the preview of `revertTask(id, toVersion,
    /// expectedVersion: fromVersion)`, or what changed between two versions.
    /// `null` if there is no such task of yours.
    async fn task_diff(
        &self,
        ctx: &Context<'_>,
        id: ID,
        from_version: i64,
        to_version: i64,
    ) -> ApiResult<Option<Vec<FieldChange>>> {
        actor(ctx)?;
        let id = parse_id(&id)?;
        for (field, version) in [("fromVersion", from_version), ("toVersion", to_version)] {
            if version < 1 {
                return Err(ApiError::invalid(field, "must be 1 or more"));
            }
        }
        let found = history::task_diff(pool(ctx)?, &id.to_string(), from_version, to_version)
            .await
            .map_err(history_error)?;
        let Some((_, changes)) = found else {
            return Ok(None);
        };
        if !readable(ctx, id).await? {
            return Ok(None);
        }
        let Some(changes) = changes else {
            return Err(ApiError::invalid(
                "toVersion",
                "a version is past the task's last one",
            ));
        };
        Ok(Some(
            changes
                .into_iter()
                .map(|c| FieldChange {
                    field: c.field,
                    old: Json(c.old),
                    new: Json(c.new),
                })
                .collect(),
        ))
    }

    /// Your task `id` as it stood at `at`, folded from its events up to
    /// then; `null` before it existed, or if there is no such task of yours.
    async fn task_as_of(
        &self,
        ctx: &Context<'_>,
        id: ID,
        at: DateTime<Utc>,
    ) -> ApiResult<Option<Task>> {
        actor(ctx)?;
        let id = parse_id(&id)?;
        let folded = history::task_as_of(pool(ctx)?, &id.to_string(), at)
            .await
            .map_err(history_error)?;
        match folded {
            Some(folded) if readable(ctx, id).await? => Ok(Some(Task::from(folded))),
            _ => Ok(None),
        }
    }
}

/// Whether the caller may read task `id` now: its owner while it is in
/// their Inbox, any member of its shared list. Someone else's task reads as
/// a missing one.
async fn readable(ctx: &Context<'_>, id: Uuid) -> ApiResult<bool> {
    let commands = service::<CommandService>(ctx)?;
    Ok(commands
        .version_of_own(actor(ctx)?, TaskId::from(id))
        .await?
        .is_some())
}

fn history_error(error: HistoryError) -> ApiError {
    ApiError::internal(error)
}

fn parse_id(id: &ID) -> ApiResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| ApiError::invalid("id", "is not a task id"))
}

fn pool<'a>(ctx: &Context<'a>) -> ApiResult<&'a PgPool> {
    service::<PgPool>(ctx)
}
