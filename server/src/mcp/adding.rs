//! The tool that adds tasks: `add_tasks`, up to twenty at once, each a line
//! of text for quick add or a title with structured fields, made safe to
//! retry by one idempotency key for the whole call.

use api_core::{ApiError, PriorityLevel};
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, Utc};
use event_store::command::Actor;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::changing::ReminderSpec;
use super::operation::TaskTools;
use super::operation::{caller, counted, ToolError};

/// The most tasks one `add_tasks` call creates.
const MAX_NEW_TASKS: usize = 20;

/// A new task: either `text` as a person would type it, or `title` and
/// structured fields.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTaskSpec {
    /// Quick add: "pay rent every month on the 1st 9am #home !high". Words
    /// not understood stay in the title. Give this or `title`.
    pub text: Option<String>,
    /// The user's IANA time zone (such as `Europe/Berlin`) for `text`, `dueDate`
    /// and repeats; default UTC.
    pub time_zone: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<PriorityLevel>,
    /// Letters, digits, `-`, `_` and `/` (a category path such as `work/clients`).
    pub tags: Option<Vec<String>>,
    /// Due at this instant (RFC 3339).
    pub due_at: Option<DateTime<Utc>>,
    /// Due by the end of this day in `timeZone` (all day).
    pub due_date: Option<NaiveDate>,
    pub reminders: Option<Vec<ReminderSpec>>,
    /// An RRULE such as `FREQ=WEEKLY;BYDAY=MO,TH`; needs a due date.
    pub recurrence: Option<String>,
    /// The list to add it to: the user's Inbox (the default) or a shared list
    /// they own or edit (an id from `shared_lists`).
    pub list_id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddTasks {
    /// 1 to 20 tasks.
    pub tasks: Vec<NewTaskSpec>,
    /// Makes a retried call safe: the same key (up to 90 characters) creates
    /// nothing new and answers with the tasks the first call made.
    pub idempotency_key: Option<String>,
}

#[tool_router(router = adding_tools, vis = "pub(super)")]
impl TaskTools {
    #[tool(
        description = "Add one or more tasks (at most 20) for the user: each either as a line of text the way a person says it (dates, times, repeats, reminders, #tags and !priority are understood) or with a title and structured fields. Pass an idempotencyKey so a retried call never adds the tasks twice. Returns each task's id and version, and for text what was understood. A refusal names the index of the task it stopped at and the tasks created before it; retry with the same idempotencyKey to add the rest.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn add_tasks(
        &self,
        Parameters(input): Parameters<AddTasks>,
        Extension(parts): Extension<Parts>,
    ) -> CallToolResult {
        counted(&parts, "add_tasks", self.add_all(&parts, input).await)
    }
}

impl TaskTools {
    /// The tasks one after another, stopping at the first refusal, which
    /// says at which `index` and what was `created` before it.
    async fn add_all(&self, parts: &Parts, input: AddTasks) -> Result<Value, ToolError> {
        let actor = caller(parts)?;
        if input.tasks.is_empty() || input.tasks.len() > MAX_NEW_TASKS {
            return Err(
                ApiError::invalid("tasks", format!("give 1 to {MAX_NEW_TASKS} tasks")).into(),
            );
        }
        if input
            .idempotency_key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.chars().count() > 90)
        {
            return Err(ApiError::invalid("idempotencyKey", "must be 1 to 90 characters").into());
        }
        let mut created = Vec::with_capacity(input.tasks.len());
        // One deadline for the whole call, like one GraphQL request.
        let started = Instant::now();
        for (index, task) in input.tasks.into_iter().enumerate() {
            let key = input
                .idempotency_key
                .as_ref()
                .map(|k| format!("{k}#{index}"));
            let added = match self.admit_next(actor, index, started) {
                Ok(()) => self.add_task(parts, task, key).await,
                Err(refusal) => Err(refusal),
            };
            match added {
                Ok(task) => created.push(task),
                Err(error) => {
                    return Err(error
                        .with("index", json!(index))
                        .with("created", json!(created)))
                }
            }
        }
        Ok(json!({ "tasks": created }))
    }

    /// Whether the task at `index` may still be added: within the call's
    /// deadline and, after the first, within the caller's budget.
    fn admit_next(&self, actor: &Actor, index: usize, started: Instant) -> Result<(), ToolError> {
        if started.elapsed() >= self.deadline {
            return Err(ApiError::Timeout.into());
        }
        if index > 0 {
            self.fairness
                .admit(actor.user_id.as_str())
                .map_err(ApiError::from)?;
        }
        Ok(())
    }

    async fn add_task(
        &self,
        parts: &Parts,
        task: NewTaskSpec,
        key: Option<String>,
    ) -> Result<Value, ToolError> {
        match (task.text, task.title) {
            (Some(text), None) => {
                let fields = [&task.description, &task.recurrence]
                    .iter()
                    .any(|f| f.is_some())
                    || task.priority.is_some()
                    || task.tags.is_some()
                    || task.due_at.is_some()
                    || task.due_date.is_some()
                    || task.reminders.is_some();
                if fields {
                    return Err(ApiError::invalid(
                        "text",
                        "with text, give only timeZone besides it",
                    )
                    .into());
                }
                let data = self
                    .graphql(
                        parts,
                        "add_tasks",
                        "mutation($text: String!, $zone: String, $key: String, $list: ID) { \
                           quickAdd(text: $text, timeZone: $zone, idempotencyKey: $key, listId: $list) { \
                             taskId version title understood { kind text meaning } } }",
                        json!({ "text": text, "zone": task.time_zone, "key": key, "list": task.list_id }),
                    )
                    .await?;
                Ok(data["quickAdd"].clone())
            }
            (None, Some(title)) => {
                let input = json!({
                    "title": title,
                    "description": task.description,
                    "priority": task.priority,
                    "tags": task.tags,
                    "dueAt": task.due_at,
                    "dueDate": task.due_date,
                    "timeZone": task.time_zone,
                    "reminders": task.reminders,
                    "recurrence": task.recurrence,
                    "idempotencyKey": key,
                    "listId": task.list_id,
                });
                let data = self
                    .graphql(
                        parts,
                        "add_tasks",
                        "mutation($input: CreateTaskInput!) { createTask(input: $input) { taskId version } }",
                        json!({ "input": input }),
                    )
                    .await?;
                Ok(data["createTask"].clone())
            }
            _ => Err(ApiError::invalid("text", "give either text or title").into()),
        }
    }
}
