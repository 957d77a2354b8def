//! `revertTask`: a task brought back to the values of an earlier version by
//! one new event (`TaskReverted`), the history keeping both. The earlier
//! version is folded from the event store here; the aggregate decides; the
//! client's `expectedVersion` makes a revert over someone else's later
//! change a conflict, as for any command.

use async_graphql::{Context, Object, ID};
use domain::values::TaskId;
use domain::{TaskCommand, Version};
use event_store::{global_log, history};
use sqlx::PgPool;

use crate::mutation::{run, TaskVersion};
use api_core::error::{ApiError, ApiResult};
use api_core::request::{actor, service};

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
        let stored = global_log::aggregate_events(
            service::<PgPool>(ctx)?,
            "Task",
            &task_id.to_string(),
            0,
            to_version,
        )
        .await
        .map_err(ApiError::internal)?;
        let earlier = history::fold_task(&stored).map_err(ApiError::internal)?;
        // Another user's task answers exactly like a missing one.
        let Some(earlier) = earlier.filter(|f| f.task.owner() == Some(&actor.user_id)) else {
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
}
