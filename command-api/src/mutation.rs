//! The GraphQL mutation root: one field per task command. Inputs are parsed into
//! validated domain types here, so bad input never reaches the aggregate; every
//! field runs its command through [`change`].

use async_graphql::{Context, InputObject, MaybeUndefined, Object, SimpleObject, ID};
use chrono::{DateTime, NaiveDate, Utc};
use domain::values::{
    Due, Priority, Recurrence, Reminder, TagSet, TaskDescription, TaskId, TaskTitle, TimeZone,
    UserId,
};
use domain::{NewTask, TaskCommand, ValidationError, Version};
use event_store::command::CommandService;

use api_core::consistency::Session;
use api_core::error::{ApiError, ApiResult};
use api_core::request::{actor, service};
use api_core::PriorityLevel;

/// The task a mutation changed and its version afterwards. Pass `version` as
/// `expectedVersion` to make the next change conditional on nothing else having
/// changed the task in between.
#[derive(Debug, SimpleObject)]
pub struct TaskVersion {
    pub task_id: ID,
    pub version: Version,
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
    /// Makes a retry safe: a second create with the same key (yours, up to
    /// 100 characters) answers with the task the first one made.
    pub idempotency_key: Option<String>,
    /// The list it starts in: your Inbox (the default) or a shared list you
    /// own or edit.
    pub list_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateTaskInput {
    pub id: ID,
    /// A new title; omit to keep the current one.
    pub title: Option<String>,
    /// A new description; `null` clears it, omit to keep it.
    pub description: MaybeUndefined<String>,
    /// Apply only if the task is still at this version, else `CONFLICT`.
    pub expected_version: Option<Version>,
}

#[derive(Default)]
pub struct TaskMutation;

#[Object]
impl TaskMutation {
    /// Creates a task owned by the caller, in their Inbox or in `listId`.
    async fn create_task(
        &self,
        ctx: &Context<'_>,
        input: CreateTaskInput,
    ) -> ApiResult<TaskVersion> {
        let list = shared_list(ctx, input.list_id.as_ref())?;
        let details = NewTask {
            list,
            description: input
                .description
                .as_deref()
                .map(TaskDescription::parse)
                .transpose()?,
            priority: input.priority.map_or(Priority::None, Into::into),
            tags: TagSet::parse(&input.tags.unwrap_or_default())?,
            due: parse_due(input.due_at, input.due_date, input.time_zone.as_deref())?,
            reminders: parse_reminders(input.reminders.unwrap_or_default())?,
            recurrence: input
                .recurrence
                .as_deref()
                .map(Recurrence::parse)
                .transpose()?,
        };
        let title = TaskTitle::parse(&input.title)?;
        create(ctx, title, details, input.idempotency_key.as_deref()).await
    }

    /// Changes a task's title and/or description.
    async fn update_task(
        &self,
        ctx: &Context<'_>,
        input: UpdateTaskInput,
    ) -> ApiResult<TaskVersion> {
        let title = input.title.as_deref().map(TaskTitle::parse).transpose()?;
        let description = match input.description {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(text) => Some(Some(TaskDescription::parse(&text)?)),
        };
        change(ctx, &input.id, input.expected_version, |actor| {
            TaskCommand::Edit {
                actor,
                title,
                description,
            }
        })
        .await
    }

    /// Moves a task to another list: a shared list you own or edit, or your
    /// Inbox (its id, as `lists` names it), which makes the task yours.
    /// Moving it where it is changes nothing. Whoever it was given to is
    /// no longer.
    async fn move_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        list_id: ID,
        expected_version: Option<Version>,
    ) -> ApiResult<TaskVersion> {
        let to = shared_list(ctx, Some(&list_id))?;
        change(ctx, &id, expected_version, |actor| TaskCommand::Move {
            actor,
            to,
        })
        .await
    }

    /// Gives a task to a member of its list (in an Inbox: its owner).
    /// Giving it to whom it is given changes nothing.
    async fn assign_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        user_id: String,
        expected_version: Option<Version>,
    ) -> ApiResult<TaskVersion> {
        let assignee = UserId::parse(&user_id)
            .map_err(|_| ApiError::invalid("userId", "must be a user id"))?;
        change(ctx, &id, expected_version, |actor| TaskCommand::Assign {
            actor,
            assignee: Some(assignee),
        })
        .await
    }

    /// Gives a task to no one.
    async fn unassign_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<Version>,
    ) -> ApiResult<TaskVersion> {
        change(ctx, &id, expected_version, |actor| TaskCommand::Assign {
            actor,
            assignee: None,
        })
        .await
    }

    /// Marks a task done. Completing a completed task changes nothing. For a
    /// recurring task this starts the next occurrence, unless `stopRepeating`.
    async fn complete_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = false)] stop_repeating: bool,
        expected_version: Option<Version>,
    ) -> ApiResult<TaskVersion> {
        change(ctx, &id, expected_version, |actor| TaskCommand::Complete {
            actor,
            stop_repeating,
        })
        .await
    }

    /// Marks a completed task open again.
    async fn reopen_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<Version>,
    ) -> ApiResult<TaskVersion> {
        change(ctx, &id, expected_version, |actor| TaskCommand::Reopen {
            actor,
        })
        .await
    }

    /// Deletes a task. Its history stays in the event store.
    async fn delete_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<Version>,
    ) -> ApiResult<TaskVersion> {
        change(ctx, &id, expected_version, |actor| TaskCommand::Delete {
            actor,
        })
        .await
    }

    /// Brings a deleted task back.
    async fn restore_task(&self, ctx: &Context<'_>, id: ID) -> ApiResult<TaskVersion> {
        change(ctx, &id, None, |actor| TaskCommand::Restore { actor }).await
    }

    async fn set_priority(
        &self,
        ctx: &Context<'_>,
        id: ID,
        priority: PriorityLevel,
    ) -> ApiResult<TaskVersion> {
        change(ctx, &id, None, |actor| TaskCommand::SetPriority {
            actor,
            priority: priority.into(),
        })
        .await
    }

    async fn add_tags(
        &self,
        ctx: &Context<'_>,
        id: ID,
        tags: Vec<String>,
    ) -> ApiResult<TaskVersion> {
        let tags = TagSet::parse(&tags)?;
        change(ctx, &id, None, |actor| TaskCommand::AddTags { actor, tags }).await
    }

    async fn remove_tags(
        &self,
        ctx: &Context<'_>,
        id: ID,
        tags: Vec<String>,
    ) -> ApiResult<TaskVersion> {
        let tags = TagSet::parse(&tags)?;
        change(ctx, &id, None, |actor| TaskCommand::RemoveTags {
            actor,
            tags,
        })
        .await
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
    ) -> ApiResult<TaskVersion> {
        let due = parse_due(due_at, due_date, time_zone.as_deref())?.ok_or_else(|| {
            ApiError::invalid(
                "due",
                "give dueAt or dueDate (use clearDueDate to remove it)",
            )
        })?;
        change(ctx, &id, None, |actor| TaskCommand::SetDueDate {
            actor,
            due,
        })
        .await
    }

    async fn clear_due_date(&self, ctx: &Context<'_>, id: ID) -> ApiResult<TaskVersion> {
        change(ctx, &id, None, |actor| TaskCommand::ClearDueDate { actor }).await
    }

    /// Replaces the task's reminders (an empty list removes them all).
    async fn set_reminders(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reminders: Vec<ReminderInput>,
    ) -> ApiResult<TaskVersion> {
        let reminders = parse_reminders(reminders)?;
        change(ctx, &id, None, |actor| TaskCommand::SetReminders {
            actor,
            reminders,
        })
        .await
    }

    /// Makes the task repeat by an RRULE, from its due date.
    async fn set_recurrence(
        &self,
        ctx: &Context<'_>,
        id: ID,
        rule: String,
    ) -> ApiResult<TaskVersion> {
        let rule = Recurrence::parse(&rule)?;
        change(ctx, &id, None, |actor| TaskCommand::SetRecurrence {
            actor,
            rule,
        })
        .await
    }

    async fn clear_recurrence(&self, ctx: &Context<'_>, id: ID) -> ApiResult<TaskVersion> {
        change(ctx, &id, None, |actor| TaskCommand::ClearRecurrence {
            actor,
        })
        .await
    }
}

/// Creates the caller's task. With an idempotency key the task's id is derived
/// from the caller and the key, so a retry finds the task the first attempt
/// made and answers with it instead of making another.
pub(crate) async fn create(
    ctx: &Context<'_>,
    title: TaskTitle,
    details: NewTask,
    idempotency_key: Option<&str>,
) -> ApiResult<TaskVersion> {
    let actor = actor(ctx)?;
    let task_id = match idempotency_key {
        None => TaskId::new(),
        Some(key) => idempotent_task_id(&actor.user_id, key)?,
    };
    let created = run(ctx, task_id, None, |owner| TaskCommand::Create {
        task_id,
        owner,
        title,
        details,
    })
    .await;
    match created {
        Err(ApiError::AlreadyExists) if idempotency_key.is_some() => {
            let version = service::<CommandService>(ctx)?
                .version_of_own(actor, task_id)
                .await?
                .ok_or(ApiError::AlreadyExists)?;
            Ok(TaskVersion {
                task_id: ID(task_id.to_string()),
                version,
            })
        }
        other => other,
    }
}

/// The shared list `list_id` names, or `None` for the caller's Inbox (no
/// id, or their Inbox's). Whether they belong to it is checked at commit.
pub(crate) fn shared_list(
    ctx: &Context<'_>,
    list_id: Option<&ID>,
) -> ApiResult<Option<uuid::Uuid>> {
    let Some(list_id) = list_id else {
        return Ok(None);
    };
    let list = uuid::Uuid::parse_str(list_id.as_str())
        .map_err(|_| ApiError::invalid("listId", "must be a UUID"))?;
    let inbox = domain::list::inbox_of(&actor(ctx)?.user_id);
    Ok((list != inbox).then_some(list))
}

/// Namespaces the task ids made from idempotency keys.
const IDEMPOTENCY_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c1f_93a4_5b1e_4e0f_9f3a_8d2c_71b4_e5a0);

fn idempotent_task_id(user: &UserId, key: &str) -> Result<TaskId, ValidationError> {
    if key.is_empty() || key.chars().count() > 100 {
        return Err(ValidationError::new(
            "idempotencyKey",
            "must be 1 to 100 characters",
        ));
    }
    let name = format!("{}\n{key}", user.as_str());
    Ok(TaskId::from(uuid::Uuid::new_v5(
        &IDEMPOTENCY_NAMESPACE,
        name.as_bytes(),
    )))
}

/// Runs the command `command(caller)` builds on the caller's task `id`; with
/// `expected_version`, only if the task is still at that version. Input is
/// parsed before this is called, so a refusal never costs a database read.
async fn change(
    ctx: &Context<'_>,
    id: &ID,
    expected_version: Option<Version>,
    command: impl FnOnce(UserId) -> TaskCommand,
) -> ApiResult<TaskVersion> {
    let task_id = TaskId::parse(id.as_str())?;
    if expected_version.is_some_and(|v| v < 0) {
        return Err(ApiError::invalid("expectedVersion", "must not be negative"));
    }
    run(ctx, task_id, expected_version, command).await
}

pub(crate) async fn run(
    ctx: &Context<'_>,
    task_id: TaskId,
    expected_version: Option<Version>,
    command: impl FnOnce(UserId) -> TaskCommand,
) -> ApiResult<TaskVersion> {
    let actor = actor(ctx)?;
    let outcome = service::<CommandService>(ctx)?
        .execute(
            actor,
            task_id,
            command(actor.user_id.clone()),
            expected_version,
        )
        .await?;
    // The caller's next reads wait for this write (docs/adr/0010).
    if let Some(session) = ctx.data_opt::<Session>() {
        session.wrote(actor.user_id.as_str());
    }
    Ok(TaskVersion {
        task_id: ID(outcome.task_id.to_string()),
        version: outcome.version,
    })
}

fn parse_due(
    due_at: Option<DateTime<Utc>>,
    due_date: Option<NaiveDate>,
    time_zone: Option<&str>,
) -> Result<Option<Due>, ValidationError> {
    let zone = time_zone
        .map(TimeZone::parse)
        .transpose()?
        .unwrap_or(TimeZone::UTC);
    match (due_at, due_date) {
        (Some(_), Some(_)) => Err(ValidationError::new(
            "due",
            "give dueAt or dueDate, not both",
        )),
        (Some(at), None) => Due::parse_at(at, zone).map(Some),
        (None, Some(date)) => Due::parse_all_day(date, zone).map(Some),
        (None, None) => Ok(None),
    }
}

fn parse_reminders(inputs: Vec<ReminderInput>) -> Result<Vec<Reminder>, ValidationError> {
    if inputs.len() > domain::values::Reminders::MAX {
        return Err(ValidationError::new(
            "reminders",
            "a task has at most 10 reminders",
        ));
    }
    inputs
        .into_iter()
        .map(|input| match (input.at, input.minutes_before) {
            (Some(at), None) => Ok(Reminder::At(at)),
            (None, Some(minutes)) => {
                u32::try_from(minutes)
                    .map(Reminder::MinutesBefore)
                    .map_err(|_| {
                        ValidationError::new("reminders", "minutesBefore must not be negative")
                    })
            }
            _ => Err(ValidationError::new(
                "reminders",
                "each reminder gives exactly one of at and minutesBefore",
            )),
        })
        .collect()
}
