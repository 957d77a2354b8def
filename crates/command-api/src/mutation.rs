//! The GraphQL mutation root: one field per task command. Inputs are parsed into
//! validated domain types here, so bad input never reaches the aggregate.

use async_graphql::{Context, InputObject, MaybeUndefined, Object, SimpleObject, ID};
use domain::values::{TaskDescription, TaskId, TaskTitle};
use domain::{TaskCommand, ValidationError};

use crate::error::validation_error;
use crate::{Actor, CommandError, CommandService, ErrorCode};

/// The task a mutation changed and its version afterwards. Pass `version` as
/// `expectedVersion` to make the next change conditional on nothing else having
/// changed the task in between.
#[derive(Debug, SimpleObject)]
pub struct TaskVersion {
    pub task_id: ID,
    pub version: i64,
}

#[derive(InputObject)]
pub struct CreateTaskInput {
    /// 1 to 200 characters; surrounding whitespace is trimmed.
    pub title: String,
    /// Up to 10,000 characters.
    pub description: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateTaskInput {
    pub id: ID,
    /// A new title; omit to keep the current one.
    pub title: Option<String>,
    /// A new description; `null` clears it, omit to keep it.
    pub description: MaybeUndefined<String>,
    /// Apply only if the task is still at this version, else `CONFLICT`.
    pub expected_version: Option<i64>,
}

#[derive(Default)]
pub struct TaskMutation;

#[Object]
impl TaskMutation {
    /// Creates a task owned by the caller.
    async fn create_task(
        &self,
        ctx: &Context<'_>,
        input: CreateTaskInput,
    ) -> async_graphql::Result<TaskVersion> {
        let actor = Actor::from_context(ctx)?;
        let title = TaskTitle::parse(&input.title).map_err(|e| validation_error(&e))?;
        let description = input
            .description
            .as_deref()
            .map(TaskDescription::parse)
            .transpose()
            .map_err(|e| validation_error(&e))?;
        let task_id = TaskId::new();
        let command = TaskCommand::Create {
            task_id,
            owner: actor.user_id.clone(),
            title,
            description,
        };
        run(ctx, actor, task_id, command, None).await
    }

    /// Changes a task's title and/or description.
    async fn update_task(
        &self,
        ctx: &Context<'_>,
        input: UpdateTaskInput,
    ) -> async_graphql::Result<TaskVersion> {
        let actor = Actor::from_context(ctx)?;
        let task_id = parse_id(&input.id)?;
        let title = input
            .title
            .as_deref()
            .map(TaskTitle::parse)
            .transpose()
            .map_err(|e| validation_error(&e))?;
        let description = match input.description {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(text) => Some(Some(
                TaskDescription::parse(&text).map_err(|e| validation_error(&e))?,
            )),
        };
        let command = TaskCommand::Edit {
            actor: actor.user_id.clone(),
            title,
            description,
        };
        let expected = parse_version(input.expected_version)?;
        run(ctx, actor, task_id, command, expected).await
    }

    /// Marks a task done. Completing a completed task changes nothing.
    async fn complete_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i64>,
    ) -> async_graphql::Result<TaskVersion> {
        let actor = Actor::from_context(ctx)?;
        let command = TaskCommand::Complete {
            actor: actor.user_id.clone(),
        };
        run(
            ctx,
            actor,
            parse_id(&id)?,
            command,
            parse_version(expected_version)?,
        )
        .await
    }

    /// Marks a completed task open again.
    async fn reopen_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i64>,
    ) -> async_graphql::Result<TaskVersion> {
        let actor = Actor::from_context(ctx)?;
        let command = TaskCommand::Reopen {
            actor: actor.user_id.clone(),
        };
        run(
            ctx,
            actor,
            parse_id(&id)?,
            command,
            parse_version(expected_version)?,
        )
        .await
    }

    /// Deletes a task. Its history stays in the event store.
    async fn delete_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i64>,
    ) -> async_graphql::Result<TaskVersion> {
        let actor = Actor::from_context(ctx)?;
        let command = TaskCommand::Delete {
            actor: actor.user_id.clone(),
        };
        run(
            ctx,
            actor,
            parse_id(&id)?,
            command,
            parse_version(expected_version)?,
        )
        .await
    }
}

async fn run(
    ctx: &Context<'_>,
    actor: &Actor,
    task_id: TaskId,
    command: TaskCommand,
    expected_version: Option<u64>,
) -> async_graphql::Result<TaskVersion> {
    let service = ctx.data::<CommandService>().map_err(|_| {
        tracing::error!("CommandService missing from the schema data");
        ErrorCode::Internal.error("internal error")
    })?;
    let outcome = service
        .execute(actor, task_id, command, expected_version)
        .await
        .map_err(CommandError::into_graphql)?;
    Ok(TaskVersion {
        task_id: ID(outcome.task_id.to_string()),
        version: outcome.version as i64,
    })
}

fn parse_id(id: &ID) -> async_graphql::Result<TaskId> {
    TaskId::parse(id.as_str()).map_err(|e| validation_error(&e))
}

fn parse_version(version: Option<i64>) -> async_graphql::Result<Option<u64>> {
    version
        .map(|v| {
            u64::try_from(v).map_err(|_| {
                validation_error(&ValidationError::new(
                    "expectedVersion",
                    "must not be negative",
                ))
            })
        })
        .transpose()
}
