//! `revertTask`: a task brought back to the values of an earlier version by
//! one new event (`TaskReverted`), the history keeping both. The earlier
//! version is folded from the event store here; the aggregate decides; the
//! client's `expectedVersion` makes a revert over someone else's later
//! change a conflict, as for any command. `undo(correlationId)` does the same
//! for every task one earlier request of the caller's changed.

use async_graphql::{Context, Object, ID};
use domain::values::TaskId;
use domain::{TaskCommand, Version};
use event_store::command::CommandService;
use event_store::{global_log, history};
use sqlx::PgPool;

use crate::mutation::{run, TaskVersion};
use api_core::error::{ApiError, ApiResult};
use api_core::request::{actor, service};

/// How far back `undo` reaches.
const UNDO_DAYS: i32 = 30;
/// The most tasks one `undo` brings back.
const UNDO_MAX_TASKS: usize = 100;

#[derive(Default)]
pub struct RevertMutation;

#[Object]
impl RevertMutation {
    /// Brings your task back to how it stood at version `toVersion`: its
    /// title, description, priority, tags, due date, reminders and whether
    /// it was done (its recurrence stays). Appends one `TaskReverted` event;
    /// `taskHistory` shows both. `expectedVersion` is the version you saw:
    /// if the task changed since, the revert is refused with `CONFLICT`.
    /// `taskDiff(id, fromVersion: expectedVersion, toVersion)` previews it.
    async fn revert_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        to_version: Version,
        expected_version: Version,
    ) -> ApiResult<TaskVersion> {
        let task_id = TaskId::parse(id.as_str())?;
        if to_version < 1 {
            return Err(ApiError::invalid("toVersion", "must be 1 or more"));
        }
        if to_version >= expected_version {
            return Err(ApiError::invalid(
                "toVersion",
                "must be earlier than expectedVersion",
            ));
        }
        let actor = actor(ctx)?;
        let earlier = folded_at(service::<PgPool>(ctx)?, task_id, to_version).await?;
        // A task the caller may not read answers exactly like a missing one;
        // whether they may change it is the command's to check.
        let readable = service::<CommandService>(ctx)?
            .version_of_own(actor, task_id)
            .await?
            .is_some();
        let Some(earlier) = earlier.filter(|_| readable) else {
            return Err(ApiError::NotFound);
        };
        if earlier.version < to_version {
            return Err(ApiError::invalid(
                "toVersion",
                "is past the task's last version",
            ));
        }
        run(ctx, task_id, Some(expected_version), |actor| {
            TaskCommand::Revert {
                actor,
                to_version,
                earlier: Box::new(earlier.task),
            }
        })
        .await
    }

    /// Undoes what one earlier request of yours did (its `x-correlation-id`,
    /// which `taskHistory` shows on each event), within 30 days: every task
    /// it changed goes back to how it stood before, by one new event each; a
    /// task it created is deleted (and can be restored), one it deleted is
    /// restored, one it restored is deleted again. Refused with
    /// `CONFLICT`, changing nothing, when any of those tasks changed since:
    /// undoing would overwrite the later change.
    async fn undo(&self, ctx: &Context<'_>, correlation_id: String) -> ApiResult<Vec<TaskVersion>> {
        if correlation_id.is_empty()
            || correlation_id.len() > 128
            || !correlation_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ApiError::invalid(
                "correlationId",
                "is not a correlation id (1 to 128 visible ASCII characters)",
            ));
        }
        let actor = actor(ctx)?;
        let pool = service::<PgPool>(ctx)?;
        // Per task: the first and last version the request wrote, whether it
        // deleted or restored the task, and the task's version now.
        let changed: Vec<(String, i64, i64, bool, bool, i64)> = sqlx::query_as(
            "SELECT r.aggregate_id, r.first, r.last, r.deleted, r.restored,
                    (SELECT max(sequence) FROM events n
                      WHERE n.aggregate_type = 'Task' AND n.aggregate_id = r.aggregate_id)
               FROM (SELECT aggregate_id, min(sequence) AS first, max(sequence) AS last,
                            bool_or(event_type = 'TaskDeleted') AS deleted,
                            bool_or(event_type = 'TaskRestored') AS restored
                       FROM events
                      WHERE aggregate_type = 'Task' AND metadata->>'correlation_id' = $1
                        AND metadata->>'user_id' = $2
                        AND recorded_at > now() - make_interval(days => $3)
                      GROUP BY aggregate_id) AS r
              ORDER BY r.aggregate_id
              LIMIT $4",
        )
        .bind(&correlation_id)
        .bind(actor.user_id.as_str())
        .bind(UNDO_DAYS)
        .bind(UNDO_MAX_TASKS as i64 + 1)
        .fetch_all(pool)
        .await
        .map_err(ApiError::internal)?;
        if changed.is_empty() {
            return Err(ApiError::NotFound);
        }
        if changed.len() > UNDO_MAX_TASKS {
            return Err(ApiError::invalid(
                "correlationId",
                format!("the request changed more than {UNDO_MAX_TASKS} tasks"),
            ));
        }
        // One the caller may no longer read (they left its list) answers as
        // missing, before any version is compared and reported.
        let commands = service::<CommandService>(ctx)?;
        for (id, ..) in &changed {
            if commands
                .version_of_own(actor, TaskId::parse(id)?)
                .await?
                .is_none()
            {
                return Err(ApiError::NotFound);
            }
        }
        // All or nothing: a later change on any of them refuses the whole undo.
        if let Some((_, _, last, _, _, now)) =
            changed.iter().find(|(_, _, last, _, _, now)| last != now)
        {
            return Err(ApiError::Conflict {
                expected: *last,
                actual: *now,
            });
        }
        let mut undone = Vec::with_capacity(changed.len());
        for (id, first, last, deleted, restored, _) in changed {
            let task_id = TaskId::parse(&id)?;
            if first == 1 {
                undone.push(
                    run(ctx, task_id, Some(last), |actor| TaskCommand::Delete {
                        actor,
                    })
                    .await?,
                );
                continue;
            }
            let mut version = last;
            if deleted {
                version = run(ctx, task_id, Some(version), |actor| TaskCommand::Restore {
                    actor,
                })
                .await?
                .version;
            }
            let earlier = folded_at(pool, task_id, first - 1)
                .await?
                .ok_or(ApiError::NotFound)?;
            let mut reverted = run(ctx, task_id, Some(version), |actor| TaskCommand::Revert {
                actor,
                to_version: first - 1,
                earlier: Box::new(earlier.task),
            })
            .await?;
            // A task the request brought back from the bin goes back there.
            if restored && !deleted {
                let version = reverted.version;
                reverted = run(ctx, task_id, Some(version), |actor| TaskCommand::Delete {
                    actor,
                })
                .await?;
            }
            undone.push(reverted);
        }
        Ok(undone)
    }
}

/// Task `id` folded from its events up to `version`; `None` if it has none.
async fn folded_at(
    pool: &PgPool,
    id: TaskId,
    version: Version,
) -> ApiResult<Option<history::FoldedTask>> {
    let stored = global_log::aggregate_events(pool, "Task", &id.to_string(), 0, version)
        .await
        .map_err(ApiError::internal)?;
    history::fold_task(&stored).map_err(ApiError::internal)
}
