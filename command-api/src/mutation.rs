//! The GraphQL mutation root: one field per task command. Inputs are parsed into
//! validated domain types here, so bad input never reaches the aggregate.

use async_graphql::{Context, Enum, InputObject, MaybeUndefined, Object, SimpleObject, ID};
use chrono::{DateTime, NaiveDate, Utc};
use domain::values::{
    Due, Priority, Recurrence, Reminder, TagSet, TaskDescription, TaskId, TaskTitle, TimeZone,
};
use domain::{NewTask, TaskCommand, ValidationError};

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

/// How much a task matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "Priority", remote = "domain::values::Priority")]
pub enum PriorityLevel {
    None,
    Low,
    Medium,
    High,
    Urgent,
}

/// One reminder: give exactly one of `at` and `minutesBefore`.
#[derive(InputObject)]
pub struct ReminderInput {
    /// Remind at this instant. One in the past is kept but never fires.
    pub at: Option<DateTime<Utc>>,
    /// Remind this many minutes before the due time; moves with it.
    pub minutes_before: Option<i32>,
}

#[derive(InputObject)]
pub struct CreateTaskInput {
    /// 1 to 200 characters; surrounding whitespace is trimmed.
    pub title: String,
    /// Up to 10,000 characters.
    pub description: Option<String>,
    /// Default `NONE`.
    pub priority: Option<PriorityLevel>,
    /// Up to 20 tags of letters, digits, `-`, `_` and `/` (a category path such
    /// as `work/clients`); case-insensitive.
    pub tags: Option<Vec<String>>,
    /// Due at this instant. Give this or `dueDate`, not both.
    pub due_at: Option<DateTime<Utc>>,
    /// Due by the end of this day in `timeZone` (an all-day task).
    pub due_date: Option<NaiveDate>,
    /// The IANA zone the due date and recurrence are read in; default `UTC`.
    pub time_zone: Option<String>,
    pub reminders: Option<Vec<ReminderInput>>,
    /// An RRULE such as `FREQ=WEEKLY;BYDAY=MO` (FREQ DAILY/WEEKLY/MONTHLY/YEARLY,
    /// INTERVAL, BYDAY, BYMONTHDAY, COUNT, UNTIL); needs a due date.
    pub recurrence: Option<String>,
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
        let details = NewTask {
            description,
            priority: input.priority.map_or(Priority::None, Into::into),
            tags: TagSet::parse(&input.tags.unwrap_or_default())
                .map_err(|e| validation_error(&e))?,
            due: parse_due(input.due_at, input.due_date, input.time_zone.as_deref())?,
            reminders: parse_reminders(input.reminders.unwrap_or_default())?,
            recurrence: input
                .recurrence
                .as_deref()
                .map(Recurrence::parse)
                .transpose()
                .map_err(|e| validation_error(&e))?,
        };
        let task_id = TaskId::new();
        let command = TaskCommand::Create {
            task_id,
            owner: actor.user_id.clone(),
            title,
            details,
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

    /// Marks a task done. Completing a completed task changes nothing. For a
    /// recurring task this starts the next occurrence, unless `stopRepeating`.
    async fn complete_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = false)] stop_repeating: bool,
        expected_version: Option<i64>,
    ) -> async_graphql::Result<TaskVersion> {
        let actor = Actor::from_context(ctx)?;
        let command = TaskCommand::Complete {
            actor: actor.user_id.clone(),
            stop_repeating,
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

    /// Brings a deleted task back.
    async fn restore_task(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<TaskVersion> {
        let actor = Actor::from_context(ctx)?;
        let command = TaskCommand::Restore {
            actor: actor.user_id.clone(),
        };
        run(ctx, actor, parse_id(&id)?, command, None).await
    }

    async fn set_priority(
        &self,
        ctx: &Context<'_>,
        id: ID,
        priority: PriorityLevel,
    ) -> async_graphql::Result<TaskVersion> {
        let actor = Actor::from_context(ctx)?;
        let command = TaskCommand::SetPriority {
            actor: actor.user_id.clone(),
            priority: priority.into(),
        };
        run(ctx, actor, parse_id(&id)?, command, None).await
    }

    async fn add_tags(
        &self,
        ctx: &Context<'_>,
        id: ID,
        tags: Vec<String>,
    ) -> async_graphql::Result<TaskVersion> {
        let actor = Actor::from_context(ctx)?;
        let command = TaskCommand::AddTags {
            actor: actor.user_id.clone(),
            tags: TagSet::parse(&tags).map_err(|e| validation_error(&e))?,
        };
        run(ctx, actor, parse_id(&id)?, command, None).await
    }

    async fn remove_tags(
        &self,
        ctx: &Context<'_>,
        id: ID,
        tags: Vec<String>,
    ) -> async_graphql::Result<TaskVersion> {
        let actor = Actor::from_context(ctx)?;
        let command = TaskCommand::RemoveTags {
            actor: actor.user_id.clone(),
            tags: TagSet::parse(&tags).map_err(|e| validation_error(&e))?,
        };
        run(ctx, actor, parse_id(&id)?, command, None).await
    }

    /// Sets the due date: `dueAt` (an instant) or `dueDate` (all day), read in
    /// `timeZone` (default `UTC`). Reminders relative to it move with it.
    async fn set_due_date(
        &self,
        ctx: &Context<'_>,
        id: ID,
        due_at: Option<DateTime<Utc>>,
        due_date: Option<NaiveDate>,
        time_zone: Option<String>,
    ) -> async_graphql::Result<TaskVersion> {
        let actor = Actor::from_context(ctx)?;
        let Some(due) = parse_due(due_at, due_date, time_zone.as_deref())? else {
            return Err(validation_error(&ValidationError::new(
                "due",
                "give dueAt or dueDate (use clearDueDate to remove it)",
            )));
        };
        let command = TaskCommand::SetDueDate {
            actor: actor.user_id.clone(),
            due,
        };
        run(ctx, actor, parse_id(&id)?, command, None).await
    }

    async fn clear_due_date(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<TaskVersion> {
        let actor = Actor::from_context(ctx)?;
        let command = TaskCommand::ClearDueDate {
            actor: actor.user_id.clone(),
        };
        run(ctx, actor, parse_id(&id)?, command, None).await
    }

    /// Replaces the task's reminders (an empty list removes them all).
    async fn set_reminders(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reminders: Vec<ReminderInput>,
    ) -> async_graphql::Result<TaskVersion> {
        let actor = Actor::from_context(ctx)?;
        let command = TaskCommand::SetReminders {
            actor: actor.user_id.clone(),
            reminders: parse_reminders(reminders)?,
        };
        run(ctx, actor, parse_id(&id)?, command, None).await
    }

    /// Makes the task repeat by an RRULE, from its due date.
    async fn set_recurrence(
        &self,
        ctx: &Context<'_>,
        id: ID,
        rule: String,
    ) -> async_graphql::Result<TaskVersion> {
        let actor = Actor::from_context(ctx)?;
        let command = TaskCommand::SetRecurrence {
            actor: actor.user_id.clone(),
            rule: Recurrence::parse(&rule).map_err(|e| validation_error(&e))?,
        };
        run(ctx, actor, parse_id(&id)?, command, None).await
    }

    async fn clear_recurrence(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<TaskVersion> {
        let actor = Actor::from_context(ctx)?;
        let command = TaskCommand::ClearRecurrence {
            actor: actor.user_id.clone(),
        };
        run(ctx, actor, parse_id(&id)?, command, None).await
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

fn parse_due(
    due_at: Option<DateTime<Utc>>,
    due_date: Option<NaiveDate>,
    time_zone: Option<&str>,
) -> async_graphql::Result<Option<Due>> {
    let zone = time_zone
        .map(TimeZone::parse)
        .transpose()
        .map_err(|e| validation_error(&e))?
        .unwrap_or(TimeZone::UTC);
    match (due_at, due_date) {
        (Some(_), Some(_)) => Err(validation_error(&ValidationError::new(
            "due",
            "give dueAt or dueDate, not both",
        ))),
        (Some(at), None) => Due::parse_at(at, zone)
            .map(Some)
            .map_err(|e| validation_error(&e)),
        (None, Some(date)) => Due::parse_all_day(date, zone)
            .map(Some)
            .map_err(|e| validation_error(&e)),
        (None, None) => Ok(None),
    }
}

fn parse_reminders(inputs: Vec<ReminderInput>) -> async_graphql::Result<Vec<Reminder>> {
    if inputs.len() > domain::values::Reminders::MAX {
        return Err(validation_error(&ValidationError::new(
            "reminders",
            "a task has at most 10 reminders",
        )));
    }
    inputs
        .into_iter()
        .map(|input| match (input.at, input.minutes_before) {
            (Some(at), None) => Ok(Reminder::At(at)),
            (None, Some(minutes)) => {
                u32::try_from(minutes)
                    .map(Reminder::MinutesBefore)
                    .map_err(|_| {
                        validation_error(&ValidationError::new(
                            "reminders",
                            "minutesBefore must not be negative",
                        ))
                    })
            }
            _ => Err(validation_error(&ValidationError::new(
                "reminders",
                "each reminder gives exactly one of at and minutesBefore",
            ))),
        })
        .collect()
}
